//! One role's bake: builder VM → SSH → steps → checks → clean-up → template
//! → registry record. Whatever fails, and on interrupt, every VM of the run
//! is destroyed (unless `keep_on_failure`) and no record is written.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::artifact;
use super::build::BuildOptions;
use super::checks::run_checks;
use super::context::Context;
use super::log::BuildLog;
use super::steps::{self, StepContext};
use super::vm::{self, Stage};
use super::{BuildError, hygiene};
use crate::guest::{
    ClientKey, Command, GuestSession, HostKeyPair, OutputSinks, Timing, fingerprint,
};
use crate::progress::Event;
use crate::recipe::inputs::Inputs;
use crate::recipe::model::Action;
use crate::recipe::validate::role_vars;
use crate::recipe::{Check, Recipe};
use crate::registry::{self, BuilderIdentity, CheckResult, ImageRecord, NewImage, Parent};
use crate::render::Renderer;
use crate::secrets::Secrets;
use crate::target::cloudinit::{BuilderSeed, HostKey, builder_seed};
use crate::target::{Labels, Source, TemplateMeta, TemplateRef, VmHandle, VmKind, VmSpec};

/// The user cloud-init creates on builder VMs, removed by the clean-up.
pub const BUILDER_USER: &str = "oxbake-build";
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long the clean-up waits for the target to list the run's VMs.
const CLEANUP_LIST_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) struct Builder<'p, 'a> {
    p: &'p Context<'a>,
    role: String,
    recipe: Recipe,
    inputs: Inputs,
    parent: Option<ImageRecord>,
    opts: BuildOptions,
    run_id: String,
    log: BuildLog,
    secrets: Secrets,
    /// Where the builder answers, once known (for `--keep-on-failure`).
    endpoint: Arc<Mutex<Option<SocketAddr>>>,
    /// The one-time key oxbake logs in with, and the host key it pins.
    client: ClientKey,
    host: HostKeyPair,
}

impl<'p, 'a> Builder<'p, 'a> {
    pub fn new(
        p: &'p Context<'a>,
        role: &str,
        inputs: Inputs,
        parent: Option<ImageRecord>,
        opts: &BuildOptions,
    ) -> Result<Self, BuildError> {
        let file = p
            .project
            .recipes
            .get(role)
            .ok_or_else(|| crate::recipe::inputs::InputsError::UnknownRole(role.to_owned()))?;
        let recipe = file.recipe.clone();
        let vars = role_vars(p.project, role);
        let names: Vec<&str> = recipe
            .steps
            .iter()
            .filter(|s| s.enabled(&vars))
            .filter_map(|s| match &s.action {
                Action::Apt(apt) => Some(
                    apt.repositories
                        .iter()
                        .filter_map(|r| r.password_secret.as_ref().map(|n| n.get_ref().as_str())),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        let project = p.project;
        let secrets = Secrets::load(&project.root, &project.config.secrets, names)?;
        let client = ClientKey::generate().map_err(|e| BuildError::Guest {
            role: role.to_owned(),
            what: "cannot make the one-time SSH key",
            source: Box::new(e),
        })?;
        let host = HostKeyPair::generate().map_err(|e| BuildError::Guest {
            role: role.to_owned(),
            what: "cannot make the builder's host key",
            source: Box::new(e),
        })?;
        let run_id = vm::run_id();
        let log = BuildLog::create(&p.dirs().logs(), role, &run_id).map_err(|source| {
            BuildError::Log {
                role: role.to_owned(),
                path: p.dirs().logs(),
                source,
            }
        })?;
        Ok(Self {
            p,
            role: role.to_owned(),
            recipe,
            inputs,
            parent,
            opts: opts.clone(),
            run_id,
            log,
            secrets,
            endpoint: Arc::default(),
            client,
            host,
        })
    }

    pub async fn run(self) -> Result<(ImageRecord, PathBuf), BuildError> {
        let started = Instant::now();
        let steps = self.recipe.steps.len() + 9;
        self.p.progress.send(Event::TaskStarted {
            task: self.role.clone(),
            steps,
        });
        self.p.progress.info(format!(
            "{}: build log {}",
            self.role,
            self.log.path.display()
        ));
        let _alive = super::runs::RunGuard::start(&self.p.dirs().runs(), &self.run_id);
        // Each phase watches for an interrupt itself (see `phase`), so that
        // the creation of the builder VM is never cut off half-way.
        let result = self.bake().await;
        let ok = result.is_ok();
        if let Err(e) = &result {
            self.after_failure(e).await;
        }
        self.p.progress.send(Event::TaskFinished {
            task: self.role.clone(),
            ok,
            elapsed: started.elapsed(),
        });
        result.map(|record| (record, self.log.path.clone()))
    }

    async fn bake(&self) -> Result<ImageRecord, BuildError> {
        let (client, host) = (&self.client, &self.host);
        let vm = self
            .phase_shielded(
                "create the builder VM",
                self.create_vm_or_finish(client, host),
            )
            .await?;
        let mut guest = self
            .phase("boot and connect over SSH", self.connect(&vm, client, host))
            .await?;
        self.phase("wait for cloud-init", self.wait_cloud_init(guest.as_mut()))
            .await?;
        let machine_id = self.phase("prepare", self.prepare(guest.as_mut())).await?;
        let identity = BuilderIdentity {
            machine_id,
            host_key: fingerprint(host.public_key()),
        };
        self.apply_steps(guest.as_mut()).await?;
        let checks = self.phase("checks", self.checks(guest.as_mut())).await?;
        let (packages, repositories) = self
            .phase("package manifest", self.manifest(guest.as_mut()))
            .await?;
        self.phase("clean up the image", self.clean(guest.as_mut()))
            .await?;
        let _ = guest.close().await;
        self.phase("shut down", self.shutdown(&vm)).await?;
        // The log is the template's record: it must be whole on disk first.
        self.log.sync().map_err(|e| self.log_err(e))?;
        // Once the template is being made, it is finished and recorded.
        self.phase_shielded(
            "make the template and record it",
            self.record(&vm, identity, checks, packages, repositories),
        )
        .await
    }

    /// Runs one phase as a progress step; an interrupt, or a build log
    /// that can no longer be written, ends it at once.
    async fn phase<T>(
        &self,
        name: &str,
        work: impl Future<Output = Result<T, BuildError>>,
    ) -> Result<T, BuildError> {
        let mut cancel = self.p.cancel.clone();
        let work = async {
            tokio::select! {
                r = work => r,
                _ = cancel.wait_for(|c| *c) => Err(BuildError::Interrupted),
                e = self.log.failed() => Err(self.log_err(e)),
            }
        };
        self.phase_shielded(name, work).await
    }

    /// Runs one phase to its end even if the operator interrupts meanwhile.
    async fn phase_shielded<T>(
        &self,
        name: &str,
        work: impl Future<Output = Result<T, BuildError>>,
    ) -> Result<T, BuildError> {
        let started = Instant::now();
        self.p.progress.send(Event::StepStarted {
            task: self.role.clone(),
            step: name.to_owned(),
        });
        self.log.section(name);
        let result = match self.log.failure() {
            Some(e) => Err(self.log_err(e)),
            None => work.await,
        };
        self.p.progress.send(Event::StepFinished {
            task: self.role.clone(),
            step: name.to_owned(),
            ok: result.is_ok(),
            elapsed: started.elapsed(),
        });
        result
    }

    /// Creates the builder VM. An interrupt does not cut the creation off
    /// at once: a clone dropped half-way would leave a VM that carries no
    /// labels yet, so the clean-up could not find it. It gets
    /// [`vm::CREATE_GRACE`] to finish (and be labelled), then the build ends.
    async fn create_vm_or_finish(
        &self,
        client: &ClientKey,
        host: &HostKeyPair,
    ) -> Result<VmHandle, BuildError> {
        let announce = || {
            self.p.progress.info(format!(
                "{}: interrupted: letting the builder VM's creation finish (up to {}s) \
                 so that it can be removed",
                self.role,
                vm::CREATE_GRACE.as_secs()
            ))
        };
        vm::finish_creating(self.p, self.create_vm(client, host), announce)
            .await
            .unwrap_or(Err(BuildError::Interrupted))
    }

    async fn create_vm(
        &self,
        client: &ClientKey,
        host: &HostKeyPair,
    ) -> Result<VmHandle, BuildError> {
        let defaults = &self.p.project.config.defaults;
        let source = match &self.parent {
            Some(parent) => Source::Template(artifact::template_of(parent, &self.p.project.root)),
            None => Source::Base,
        };
        let spec = VmSpec {
            name: format!("build-{}-{}", self.role, self.run_id),
            source,
            cores: defaults.cores,
            memory_mib: defaults.memory_mib,
            disk_gib: Some(defaults.disk_gib),
            labels: Labels {
                run_id: self.run_id.clone(),
                role: self.role.clone(),
                kind: VmKind::Builder,
                env: None,
                version: None,
            },
            network: None,
            node: None,
        };
        let vm = self
            .p
            .target
            .create_vm(&spec)
            .await
            .map_err(|e| self.target_err("cannot create the builder VM", e))?;
        let private = host
            .private_openssh()
            .map_err(|e| self.guest_err("cannot encode the host key", e))?;
        let public = host
            .public_line()
            .map_err(|e| self.guest_err("cannot encode the host key", e))?;
        let authorized = client
            .public_line()
            .map_err(|e| self.guest_err("cannot encode the SSH key", e))?;
        let vars = role_vars(self.p.project, &self.role);
        let ssh_group = vars
            .get("ssh_allow_group")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let seed = builder_seed(&BuilderSeed {
            instance_id: &format!("oxbake-{}", self.run_id),
            hostname: &spec.name,
            user: BUILDER_USER,
            authorized_key: &authorized,
            host_key: HostKey {
                private_openssh: &private,
                public_openssh: &public,
            },
            mac: None,
            group: ssh_group.as_deref(),
        });
        vm::seed_and_start(self.p, &vm, &seed)
            .await
            .map_err(|(stage, e)| match stage {
                Stage::Start => self.target_err("cannot start the builder VM", e),
                _ => self.target_err("cannot attach cloud-init data", e),
            })?;
        Ok(vm)
    }

    async fn connect(
        &self,
        vm: &VmHandle,
        client: &ClientKey,
        host: &HostKeyPair,
    ) -> Result<Box<dyn GuestSession>, BuildError> {
        let boot = Duration::from_secs(self.p.project.config.defaults.boot_timeout);
        let addr = vm::ssh_endpoint(self.p, vm, boot)
            .await
            .map_err(|(_, e)| self.target_err("the builder VM's SSH never answered", e))?;
        if let Ok(mut slot) = self.endpoint.lock() {
            *slot = Some(addr);
        }
        // A guest busy installing packages under emulation may answer
        // keepalives slowly: allow it a minute before calling it dead.
        let timing = Timing {
            connect_deadline: boot,
            keepalive_interval: Duration::from_secs(10),
            keepalive_max: 6,
            ..Timing::default()
        };
        let sinks = OutputSinks::new(self.p.progress.clone(), Some(self.log.sink()));
        vm::connect(
            self.p,
            addr,
            BUILDER_USER,
            client.clone(),
            host,
            timing,
            sinks,
        )
        .await
        .map_err(|e| self.guest_err("cannot log in to the builder VM", e))
    }

    async fn wait_cloud_init(&self, guest: &mut dyn GuestSession) -> Result<(), BuildError> {
        let out = guest
            .exec(&self.root("cloud-init status --wait >/dev/null; cloud-init status --long"))
            .await
            .map_err(|e| self.guest_err("cloud-init did not finish", e))?;
        if !out.stdout_tail.contains("status: done") {
            self.p.progress.warn(format!(
                "{}: cloud-init finished with problems: {}",
                self.role,
                out.stdout_tail.trim()
            ));
        }
        Ok(())
    }

    /// Returns the builder's machine-id.
    async fn prepare(&self, guest: &mut dyn GuestSession) -> Result<String, BuildError> {
        let vars = role_vars(self.p.project, &self.role);
        let group = vars.get("ssh_allow_group").and_then(|v| v.as_str());
        let out = guest
            .exec_checked(
                &self
                    .root(hygiene::prepare_script(BUILDER_USER, group))
                    .capture(),
            )
            .await
            .map_err(|e| self.guest_err("cannot prepare the builder VM", e))?;
        Ok(out.stdout.trim().to_owned())
    }

    async fn apply_steps(&self, guest: &mut dyn GuestSession) -> Result<(), BuildError> {
        let vars = role_vars(self.p.project, &self.role);
        let renderer =
            Renderer::new(&self.p.project.templates_dir()).redacting(self.secrets.values());
        let ctx = StepContext {
            project: self.p.project,
            renderer: &renderer,
            vars: crate::render::bake_context(self.p.project, &self.role),
            secrets: &self.secrets,
            timeout: Duration::from_secs(self.p.project.config.defaults.step_timeout),
        };
        let total = self.recipe.steps.len();
        for (i, step) in self.recipe.steps.iter().enumerate() {
            let name = step
                .name
                .clone()
                .unwrap_or_else(|| step.action.kind().to_owned());
            let label = format!("step {}/{total}: {name}", i + 1);
            if !step.enabled(&vars) {
                self.p.progress.info(format!(
                    "{}: {label}: skipped (`{}` is not set)",
                    self.role,
                    step.when
                        .as_ref()
                        .map(|w| w.get_ref().as_str())
                        .unwrap_or_default()
                ));
                self.p.progress.send(Event::StepFinished {
                    task: self.role.clone(),
                    step: label,
                    ok: true,
                    elapsed: Duration::ZERO,
                });
                continue;
            }
            let work = async {
                steps::apply(&step.action, &ctx, &mut *guest)
                    .await
                    .map_err(|source| BuildError::Step {
                        role: self.role.clone(),
                        index: i + 1,
                        total,
                        step: name.clone(),
                        source: Box::new(source),
                    })
            };
            self.phase(&label, work).await?;
        }
        Ok(())
    }

    async fn checks(&self, guest: &mut dyn GuestSession) -> Result<Vec<CheckResult>, BuildError> {
        let built: Vec<&Check> = self
            .recipe
            .checks
            .iter()
            .filter(|c| !c.deployed_only)
            .collect();
        let mut warn_failed = |r: &CheckResult| {
            if !r.passed {
                self.p.progress.warn(format!(
                    "{}: check `{}` failed: {}",
                    self.role, r.name, r.detail
                ));
            }
            true
        };
        let results = run_checks(guest, &built, &mut warn_failed)
            .await
            .map_err(|e| self.guest_err("a check could not run", e))?;
        let failed: Vec<&str> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.name.as_str())
            .collect();
        if failed.is_empty() {
            Ok(results)
        } else {
            Err(BuildError::Checks {
                role: self.role.clone(),
                failed: failed.len(),
                total: results.len(),
                names: failed
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }

    async fn manifest(
        &self,
        guest: &mut dyn GuestSession,
    ) -> Result<
        (
            std::collections::BTreeMap<String, String>,
            std::collections::BTreeMap<String, registry::Sha256>,
        ),
        BuildError,
    > {
        // Captured, not streamed line by line to the screen: hundreds of
        // package names say nothing to the operator.
        let quiet = |script: &str| {
            Command::new(script)
                .run_as("root")
                .timeout(Duration::from_secs(120))
                .capture()
        };
        let packages = guest
            .exec_checked(&quiet(hygiene::MANIFEST))
            .await
            .map_err(|e| self.guest_err("cannot list the installed packages", e))?;
        let digests = guest
            .exec_checked(&quiet(hygiene::REPOSITORY_DIGESTS))
            .await
            .map_err(|e| self.guest_err("cannot read the repository metadata", e))?;
        let packages = hygiene::parse_manifest(&packages.stdout);
        let repositories = hygiene::parse_digests(&digests.stdout)
            .into_iter()
            .filter_map(|(k, v)| v.parse().ok().map(|v| (k, v)))
            .collect();
        Ok((packages, repositories))
    }

    async fn clean(&self, guest: &mut dyn GuestSession) -> Result<(), BuildError> {
        guest
            .exec_checked(&self.root(hygiene::clean_script(BUILDER_USER)))
            .await
            .map_err(|e| self.guest_err("the clean-up failed", e))?;
        Ok(())
    }

    async fn shutdown(&self, vm: &VmHandle) -> Result<(), BuildError> {
        let forced = self
            .p
            .target
            .shutdown(vm, SHUTDOWN_TIMEOUT)
            .await
            .map_err(|e| self.target_err("cannot shut the builder VM down", e))?;
        if forced {
            self.p.progress.warn(format!(
                "{}: the builder VM did not power off in {}s and was stopped",
                self.role,
                SHUTDOWN_TIMEOUT.as_secs()
            ));
        }
        Ok(())
    }

    /// Allocates the version, turns the VM into the template `ROLE-VERSION`
    /// and writes the record, all under the registry lock. If the record
    /// cannot be written, the template goes too.
    async fn record(
        &self,
        vm: &VmHandle,
        identity: BuilderIdentity,
        checks: Vec<CheckResult>,
        packages: std::collections::BTreeMap<String, String>,
        repositories: std::collections::BTreeMap<String, registry::Sha256>,
    ) -> Result<ImageRecord, BuildError> {
        let made: Mutex<Option<(TemplateRef, TemplateMeta)>> = Mutex::new(None);
        let parent = match &self.parent {
            Some(p) => Parent::Image {
                role: p.role.clone(),
                version: p.version,
            },
            None => Parent::Base(self.p.base_identity.to_owned()),
        };
        let inputs: registry::Sha256 = self.inputs.hash.parse()?;
        let meta = |version: &registry::Version| TemplateMeta {
            role: self.role.clone(),
            version: version.to_string(),
            inputs: self.inputs.hash.clone(),
            parent: self.parent.as_ref().map(ImageRecord::id),
        };
        let handle = tokio::runtime::Handle::current();
        let result = tokio::task::block_in_place(|| {
            self.p.registry.record_try_with(&self.role, |version| {
                let name = format!("{}-{version}", self.role);
                let template = handle
                    .block_on(self.p.target.make_template(vm, &name, &meta(version)))
                    .map_err(|e| self.target_err("cannot make the template", e))?;
                let artifact = artifact::to_registry(&template.artifact, &self.p.project.root)?;
                if let Ok(mut slot) = made.lock() {
                    *slot = Some((template, meta(version)));
                }
                Ok::<_, BuildError>(NewImage {
                    inputs,
                    parent,
                    target: self.p.target_name.to_owned(),
                    artifact,
                    repositories,
                    packages,
                    checks,
                    builder: Some(identity),
                })
            })
        });
        if result.is_err() {
            let template = made.lock().ok().and_then(|mut m| m.take());
            if let Some((template, meta)) = template
                && let Err(e) = self.p.target.destroy_template(&template, &meta).await
            {
                self.p.progress.warn(format!(
                    "{}: could not remove template `{}`: {e}",
                    self.role, template.name
                ));
            }
        }
        result
    }

    /// Destroys every VM of this run, or keeps it and says how to reach it.
    async fn after_failure(&self, error: &BuildError) {
        // A target that stopped answering must not hold the operator for
        // the client's whole request timeout; `oxbake gc` finds leftovers.
        let listed = tokio::time::timeout(CLEANUP_LIST_TIMEOUT, self.p.target.list_vms())
            .await
            .unwrap_or_else(|_| {
                Err(crate::target::TargetError::Timeout {
                    name: format!("build-{}-{}", self.role, self.run_id),
                    what: "the list of VMs to clean up".to_owned(),
                    secs: CLEANUP_LIST_TIMEOUT.as_secs(),
                })
            });
        let vms = match listed {
            Ok(vms) => vms,
            Err(e) => {
                self.p.progress.warn(format!(
                    "{}: cannot list VMs to clean up run {}: {e}; `oxbake gc` removes \
                     what is left once the target answers",
                    self.role, self.run_id
                ));
                return;
            }
        };
        let ours = vms
            .into_iter()
            .filter(|m| m.labels.get().is_some_and(|l| l.run_id == self.run_id));
        for vm in ours {
            if self.opts.keep_on_failure && !error.is_interrupted() {
                self.keep(&vm.handle);
                continue;
            }
            vm::remove(
                self.p,
                &vm.handle,
                &format!("{}: ", self.role),
                "builder VM",
            )
            .await;
        }
    }

    /// Leaves the VM running; its one-time key goes into a 0600 file
    /// beside the build logs so that the operator can log in.
    fn keep(&self, vm: &VmHandle) {
        let endpoint = self.endpoint.lock().ok().and_then(|e| *e);
        let key_file = self
            .p
            .dirs()
            .logs()
            .join(format!("{}-{}.key", self.role, self.run_id));
        let how = match (endpoint, self.save_key(&key_file)) {
            (Some(addr), Ok(())) => format!(
                "reach it with: ssh -i {} -p {} {BUILDER_USER}@{}",
                key_file.display(),
                addr.port(),
                addr.ip()
            ),
            (Some(_), Err(e)) => format!(
                "its key could not be saved to `{}`: {e}",
                key_file.display()
            ),
            (None, _) => {
                "it never answered on SSH; see its serial console in the state folder".to_owned()
            }
        };
        self.p.progress.warn(format!(
            "{}: kept builder VM `{}` (--keep-on-failure); {how}",
            self.role, vm.name
        ));
    }

    fn save_key(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = self
            .client
            .private_openssh()
            .map_err(std::io::Error::other)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(text.as_bytes())
    }

    fn root(&self, script: impl Into<String>) -> Command {
        self.secrets.values().fold(
            Command::new(script)
                .run_as("root")
                .timeout(Duration::from_secs(
                    self.p.project.config.defaults.step_timeout,
                )),
            |c, s| c.secret(s),
        )
    }

    fn log_err(&self, source: std::io::Error) -> BuildError {
        BuildError::Log {
            role: self.role.clone(),
            path: self.log.path.clone(),
            source,
        }
    }

    fn target_err(&self, what: &'static str, source: crate::target::TargetError) -> BuildError {
        BuildError::Target {
            role: self.role.clone(),
            what,
            source: Box::new(source),
        }
    }

    fn guest_err(&self, what: &'static str, source: crate::guest::GuestError) -> BuildError {
        BuildError::Guest {
            role: self.role.clone(),
            what,
            source: Box::new(source),
        }
    }
}
