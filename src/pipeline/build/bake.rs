//! One role's bake: builder VM → SSH → steps → checks → clean-up → template
//! → registry record. Whatever fails, and on interrupt, every VM of the run
//! is destroyed (unless `keep_on_failure`) and no record is written.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::phase::{Phase, Timings};
use super::{BuildOptions, ResolvedRole};
use crate::guest::{ClientKey, Command, HostKeyPair, fingerprint};
use crate::pipeline::BuildError;
use crate::pipeline::context::Context;
use crate::pipeline::log::BuildLog;
use crate::pipeline::vm;
use crate::progress::Event;
use crate::recipe::Recipe;
use crate::recipe::model::Action;
use crate::registry::{BuilderIdentity, ImageRecord};
use crate::secrets::Secrets;

/// One role's bake over the command's context.
pub(super) struct Builder<'p, 'a> {
    pub(super) p: &'p Context<'a>,
    /// The role's name (in every message).
    pub(super) role: String,
    pub(super) recipe: &'a Recipe,
    pub(super) resolved: ResolvedRole<'a>,
    pub(super) opts: BuildOptions,
    pub(super) run_id: String,
    pub(super) log: BuildLog,
    pub(super) secrets: Secrets,
    /// Where the builder answers, once known (for `--keep-on-failure`).
    pub(super) endpoint: Arc<Mutex<Option<SocketAddr>>>,
    /// The one-time key oxbake logs in with, and the host key it pins.
    pub(super) client: ClientKey,
    pub(super) host: HostKeyPair,
    /// How long each phase took so far.
    pub(super) timings: Timings,
    /// The package cache the builder's apt goes through (local builders).
    pub(super) apt: Option<crate::aptcache::AptCache>,
}

impl<'p, 'a> Builder<'p, 'a> {
    pub async fn new(
        p: &'p Context<'a>,
        resolved: ResolvedRole<'a>,
        opts: &BuildOptions,
    ) -> Result<Self, BuildError> {
        let role = resolved.role.name.as_str();
        let recipe = resolved.role.recipe();
        let vars = &resolved.role.vars;
        let names: Vec<&str> = recipe
            .steps
            .iter()
            .filter(|s| s.enabled(vars))
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
        let apt = super::machine::start_apt_cache(p.target, &p.progress, &log, role).await;
        Ok(Self {
            p,
            role: role.to_owned(),
            recipe,
            resolved,
            opts: opts.clone(),
            run_id,
            log,
            secrets,
            endpoint: Arc::default(),
            client,
            host,
            timings: Timings::default(),
            apt,
        })
    }

    pub async fn run(self) -> Result<(ImageRecord, PathBuf), BuildError> {
        let started = Instant::now();
        let steps = Phase::all(self.recipe).len();
        self.p.progress.send(Event::TaskStarted {
            task: self.role.clone(),
            steps,
        });
        self.p.progress.info(format!(
            "{}: build log {}",
            self.role,
            self.log.path.display()
        ));
        let _alive = crate::pipeline::runs::RunGuard::start(&self.p.dirs().runs(), &self.run_id);
        // Each phase watches for an interrupt itself (see `phase`), so that
        // the creation of the builder VM is never cut off half-way.
        let result = self.bake().await;
        self.report_apt_cache();
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
                Phase::CreateVm.name(),
                self.create_vm_or_finish(client, host),
            )
            .await?;
        let mut guest = self
            .phase(Phase::Connect.name(), self.connect(&vm, client, host))
            .await?;
        self.phase(
            Phase::CloudInit.name(),
            self.wait_cloud_init(guest.as_mut()),
        )
        .await?;
        let machine_id = self
            .phase(Phase::Prepare.name(), self.prepare(guest.as_mut()))
            .await?;
        let identity = BuilderIdentity {
            machine_id,
            host_key: fingerprint(host.public_key()),
        };
        self.apply_steps(guest.as_mut()).await?;
        let checks = self
            .phase(Phase::Checks.name(), self.checks(guest.as_mut()))
            .await?;
        let (packages, repositories) = self
            .phase(Phase::Manifest.name(), self.manifest(guest.as_mut()))
            .await?;
        // The version is held from here: the clean-up writes it into the
        // image's os-release, the record names it.
        let reservation = self.p.registry.reserve(&self.role)?;
        self.phase(
            Phase::Clean.name(),
            self.clean(guest.as_mut(), &vm, &reservation.version),
        )
        .await?;
        let _ = guest.close().await;
        self.phase(Phase::ShutDown.name(), self.shutdown(&vm))
            .await?;
        // The log is the template's record: it must be whole on disk first.
        self.log.sync().map_err(|e| self.log_err(e))?;
        // Once the template is being made, it is finished and recorded.
        self.phase_shielded(
            Phase::Record.name(),
            self.record(reservation, &vm, identity, checks, packages, repositories),
        )
        .await
    }

    pub(super) fn root(&self, script: impl Into<String>) -> Command {
        self.secrets.values().fold(
            Command::new(script)
                .run_as("root")
                .timeout(Duration::from_secs(
                    self.p.project.config.defaults.step_timeout,
                )),
            |c, s| c.secret(s),
        )
    }

    pub(super) fn log_err(&self, source: std::io::Error) -> BuildError {
        BuildError::Log {
            role: self.role.clone(),
            path: self.log.path.clone(),
            source,
        }
    }

    pub(super) fn target_err(
        &self,
        what: &'static str,
        source: crate::target::TargetError,
    ) -> BuildError {
        BuildError::Target {
            role: self.role.clone(),
            what,
            source: Box::new(source),
        }
    }

    pub(super) fn guest_err(
        &self,
        what: &'static str,
        source: crate::guest::GuestError,
    ) -> BuildError {
        BuildError::Guest {
            role: self.role.clone(),
            what,
            source: Box::new(source),
        }
    }
}
