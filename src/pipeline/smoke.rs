//! Smoke tests: a fresh clone of a template, booted with real cloud-init
//! like any deployed VM, must be a new machine (its own machine-id and SSH
//! host keys, no builder user, key or credentials, cloud-init finished
//! cleanly) and must pass the role's checks. Promotion is gated on this; the
//! end-to-end tests use it to prove what a build leaves in an image.

use std::time::{Duration, Instant};

use serde_json::json;

use super::cancel;
use super::checks::run_checks;
use super::context::Context;
use super::hygiene::BUILDER_USER;
use super::vm::{self, Stage, VmFailure};
use crate::guest::{ClientKey, Command, GuestSession, HostKeyPair, OutputSinks, Timing};
use crate::recipe::{Check, Recipe};
use crate::registry::{BuilderIdentity, CheckResult};
use crate::target::cloudinit::{cloud_config, dhcp_network_config, meta_data};
use crate::target::{
    CloudInit, Labels, Source, TargetError, TemplateRef, VmHandle, VmKind, VmSpec,
};

/// The user a smoke VM is reached as.
pub const SMOKE_USER: &str = "oxbake-smoke";

#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("smoke test of `{template}`: {what}")]
    Target {
        template: String,
        what: &'static str,
        #[source]
        source: TargetError,
    },
    #[error("smoke test of `{template}`: {what}")]
    Guest {
        template: String,
        what: &'static str,
        #[source]
        source: crate::guest::GuestError,
    },
    /// The operator interrupted; the smoke VM was removed.
    #[error("smoke test of `{template}`: interrupted")]
    Interrupted { template: String },
}

/// What a smoke test found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeReport {
    pub hygiene: Vec<CheckResult>,
    pub checks: Vec<CheckResult>,
    /// Who the clone turned out to be: two clones of one template must
    /// differ in each of these.
    pub identity: CloneIdentity,
}

/// A booted clone's own identity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CloneIdentity {
    pub machine_id: String,
    /// The ed25519 host key's fingerprint.
    pub host_key: String,
    /// The SHA-256 of `/var/lib/systemd/random-seed` (never the seed),
    /// empty if the clone has none.
    #[serde(skip)]
    pub random_seed: String,
}

impl CloneIdentity {
    fn from_facts(facts: &str) -> Self {
        Self {
            machine_id: fact(facts, "machine_id"),
            host_key: fact(facts, "host_key"),
            random_seed: fact(facts, "random_seed"),
        }
    }
}

impl SmokeReport {
    pub fn passed(&self) -> bool {
        self.hygiene.iter().chain(&self.checks).all(|c| c.passed)
    }

    pub fn failures(&self) -> Vec<&CheckResult> {
        self.hygiene
            .iter()
            .chain(&self.checks)
            .filter(|c| !c.passed)
            .collect()
    }
}

/// A smoke test's own knobs, over the command's [`Context`] (whose
/// interrupt removes the VM and ends the test with
/// [`SmokeError::Interrupted`]).
pub struct Smoke<'a> {
    pub ctx: &'a Context<'a>,
    pub cores: u32,
    pub memory_mib: u32,
    pub boot_timeout: Duration,
    /// The group sshd lets in, if the image restricts logins to one.
    pub ssh_group: Option<String>,
}

impl Smoke<'_> {
    /// Boots a clone of `template`, examines it, and destroys it whatever
    /// happened.
    pub async fn run(
        &self,
        template: &TemplateRef,
        recipe: &Recipe,
        builder: Option<&BuilderIdentity>,
    ) -> Result<SmokeReport, SmokeError> {
        let run_id = vm::run_id();
        let spec = VmSpec {
            name: format!("smoke-{}-{run_id}", recipe.role.get_ref()),
            source: Source::Template(template.clone()),
            cores: self.cores,
            memory_mib: self.memory_mib,
            disk_gib: None,
            labels: Labels {
                run_id,
                role: recipe.role.get_ref().clone(),
                kind: VmKind::Smoke,
                env: None,
                version: None,
            },
            network: None,
            node: None,
        };
        let _alive = super::runs::RunGuard::start(&self.ctx.dirs().runs(), &spec.labels.run_id);
        let started = Instant::now();
        let interrupted = || SmokeError::Interrupted {
            template: template.name.clone(),
        };
        let vm = match vm::create(self.ctx, &spec).await {
            Ok(vm) => vm,
            Err(VmFailure::Target { source, .. }) => {
                return Err(self.target_err(template, "cannot create the VM", source));
            }
            Err(VmFailure::Interrupted) => return Err(interrupted()),
        };
        let examined = cancel::unless_interrupted(
            &self.ctx.cancel,
            self.examine(&vm, &spec.name, template, recipe, builder),
        )
        .await;
        let result = match examined {
            Some(result) => result,
            None => Err(interrupted()),
        };
        vm::remove(self.ctx, &vm, "smoke test: ", "VM").await;
        self.ctx.progress.info(format!(
            "smoke test of `{}` took {:.0}s",
            template.name,
            started.elapsed().as_secs_f64()
        ));
        result
    }

    async fn examine(
        &self,
        vm: &VmHandle,
        hostname: &str,
        template: &TemplateRef,
        recipe: &Recipe,
        builder: Option<&BuilderIdentity>,
    ) -> Result<SmokeReport, SmokeError> {
        let key =
            ClientKey::generate().map_err(|e| self.guest_err(template, "cannot make a key", e))?;
        let line = key
            .public_line()
            .map_err(|e| self.guest_err(template, "cannot make a key", e))?;
        let host = HostKeyPair::generate()
            .map_err(|e| self.guest_err(template, "cannot make a host key", e))?;
        let seed = self
            .seed(hostname, &line, &host)
            .map_err(|e| self.guest_err(template, "cannot make a host key", e))?;
        let addr = vm::boot(self.ctx, vm, &seed, self.boot_timeout)
            .await
            .map_err(|(stage, e)| {
                let what = match stage {
                    Stage::Create | Stage::Seed => "cannot attach cloud-init data",
                    Stage::Start => "cannot start the VM",
                    Stage::Ssh => "SSH never answered",
                };
                self.target_err(template, what, e)
            })?;
        // The seed gives the clone its host key, so it is pinned like a
        // deployed VM's; the hygiene checks look at what the image itself
        // carried (recorded before cloud-init wrote the key).
        let sinks = OutputSinks::new(self.ctx.progress.clone(), None);
        let mut guest = vm::connect(
            self.ctx,
            addr,
            SMOKE_USER,
            key,
            &host,
            Timing::default(),
            sinks,
        )
        .await
        .map_err(|e| self.guest_err(template, "cannot log in", e))?;
        self.ctx.progress.info(format!(
            "smoke test of `{}`: logged in to `{hostname}`, running the checks",
            template.name
        ));
        let report = self
            .inspect(guest.as_mut(), recipe, builder)
            .await
            .map_err(|e| self.guest_err(template, "a check could not run", e));
        let _ = guest.close().await;
        report
    }

    async fn inspect(
        &self,
        guest: &mut dyn GuestSession,
        recipe: &Recipe,
        builder: Option<&BuilderIdentity>,
    ) -> Result<SmokeReport, crate::guest::GuestError> {
        let facts = guest.exec(&root(FACTS).capture()).await?;
        let hygiene = hygiene_results(&facts.stdout, builder);
        let built: Vec<&Check> = recipe.checks.iter().filter(|c| !c.deployed_only).collect();
        let checks = run_checks(guest, &built, &mut |_| true).await?;
        Ok(SmokeReport {
            hygiene,
            checks,
            identity: CloneIdentity::from_facts(&facts.stdout),
        })
    }

    fn seed(
        &self,
        hostname: &str,
        key_line: &str,
        host: &HostKeyPair,
    ) -> Result<CloudInit, crate::guest::GuestError> {
        let mut user = json!({
            "name": SMOKE_USER,
            "shell": "/bin/sh",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": true,
            "ssh_authorized_keys": [key_line.trim()],
        });
        if let Some(group) = &self.ssh_group {
            user["groups"] = json!(group);
        }
        let doc = json!({
            // `bootcmd` runs before cloud-init's ssh module writes the key.
            "bootcmd": [IMAGE_HOST_KEYS],
            "users": [user],
            "disable_root": true,
            "ssh_pwauth": false,
            "ssh_deletekeys": true,
            "ssh_genkeytypes": [],
            "ssh_keys": {
                "ed25519_private": host.private_openssh()?,
                "ed25519_public": host.public_line()?.trim(),
            },
        });
        Ok(CloudInit {
            user_data: cloud_config(&doc),
            meta_data: meta_data(&format!("oxbake-{hostname}"), hostname),
            network_config: Some(dhcp_network_config(None)),
        })
    }

    fn target_err(
        &self,
        template: &TemplateRef,
        what: &'static str,
        source: TargetError,
    ) -> SmokeError {
        SmokeError::Target {
            template: template.name.clone(),
            what,
            source,
        }
    }

    fn guest_err(
        &self,
        template: &TemplateRef,
        what: &'static str,
        source: crate::guest::GuestError,
    ) -> SmokeError {
        SmokeError::Guest {
            template: template.name.clone(),
            what,
            source,
        }
    }
}

fn root(script: &str) -> Command {
    Command::new(script)
        .run_as("root")
        .timeout(Duration::from_secs(600))
}

/// Lists the host key files the image came with (there must be none).
const IMAGE_HOST_KEYS: &str =
    "ls /etc/ssh | grep '^ssh_host_' | tr '\\n' ' ' > /run/oxbake-image-host-keys; true";

/// Prints one `key=value` line per fact the hygiene checks judge.
const FACTS: &str = r#"cloud-init status --wait >/dev/null 2>&1
echo "machine_id=$(cat /etc/machine-id)"
echo "host_key=$(ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2)"
echo "random_seed=$(sha256sum /var/lib/systemd/random-seed 2>/dev/null | cut -d' ' -f1)"
echo "image_host_keys=$(cat /run/oxbake-image-host-keys 2>/dev/null || echo unknown)"
echo "cloud_init=$(cloud-init status --long | tr '\n' ' ')"
echo "instances=$(ls /var/lib/cloud/instances | tr '\n' ' ')"
echo "builder_user=$(getent passwd oxbake-build | cut -d: -f1)"
echo "builder_home=$(ls -d /home/oxbake-build 2>/dev/null)"
echo "apt_credentials=$(ls /etc/apt/auth.conf.d 2>/dev/null | tr '\n' ' ')"
echo "history=$(ls /root/.bash_history /home/*/.bash_history 2>/dev/null | tr '\n' ' ')"
"#;

/// The value of `key=value` in [`FACTS`]' output, or empty.
fn fact(facts: &str, key: &str) -> String {
    facts
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn hygiene_results(facts: &str, builder: Option<&BuilderIdentity>) -> Vec<CheckResult> {
    let fact = |key: &str| fact(facts, key);
    let result = |name: &str, passed: bool, detail: String| CheckResult {
        name: name.to_owned(),
        command: "hygiene".to_owned(),
        passed,
        detail: if passed { String::new() } else { detail },
    };
    let machine_id = fact("machine_id");
    let host_key = fact("host_key");
    let image_keys = fact("image_host_keys");
    let cloud_init = fact("cloud_init");
    let instances: Vec<String> = fact("instances")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    vec![
        result(
            "a new machine-id",
            machine_id.len() == 32 && builder.is_none_or(|b| b.machine_id != machine_id),
            format!("machine-id `{machine_id}` is empty or the builder's"),
        ),
        result(
            "new SSH host keys",
            image_keys.is_empty()
                && host_key.starts_with("SHA256:")
                && builder.is_none_or(|b| b.host_key != host_key),
            format!(
                "host key `{host_key}` is missing or the builder's, or the image carried \
                 host keys: `{image_keys}`"
            ),
        ),
        result(
            "a random seed of its own",
            fact("random_seed").len() == 64,
            "/var/lib/systemd/random-seed was not written at this boot".to_owned(),
        ),
        result(
            "no builder user or key",
            fact("builder_user").is_empty() && fact("builder_home").is_empty(),
            format!("user `{BUILDER_USER}` or its home is still there"),
        ),
        result(
            "cloud-init finished without errors, one instance only",
            cloud_init.contains("status: done") && instances.len() == 1,
            format!("cloud-init: `{cloud_init}`; instances: {instances:?}"),
        ),
        result(
            "no build credentials",
            fact("apt_credentials").is_empty(),
            format!("/etc/apt/auth.conf.d holds `{}`", fact("apt_credentials")),
        ),
        result(
            "no shell history",
            fact("history").is_empty(),
            format!("history files: {}", fact("history")),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clean_clone_passes_and_the_builder_itself_does_not() {
        let builder = BuilderIdentity {
            machine_id: "b".repeat(32),
            host_key: "SHA256:builder".into(),
        };
        let clean = format!(
            "machine_id={}\nhost_key=SHA256:new\nrandom_seed={}\nimage_host_keys=\ncloud_init=status: done \ninstances=oxbake-smoke-1 \nbuilder_user=\nbuilder_home=\napt_credentials=\nhistory=\n",
            "c".repeat(32),
            "d".repeat(64)
        );
        assert!(
            hygiene_results(&clean, Some(&builder))
                .iter()
                .all(|c| c.passed)
        );
        let dirty = clean
            .replace(&"c".repeat(32), &"b".repeat(32))
            .replace("SHA256:new", "SHA256:builder")
            .replace("builder_user=", "builder_user=oxbake-build")
            .replace("apt_credentials=", "apt_credentials=oxbake-ox.conf");
        let failed: Vec<String> = hygiene_results(&dirty, Some(&builder))
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        let carried = clean.replace(
            "image_host_keys=",
            "image_host_keys=ssh_host_ed25519_key ssh_host_ed25519_key.pub",
        );
        let failed_keys: Vec<String> = hygiene_results(&carried, Some(&builder))
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed_keys, ["new SSH host keys"]);
        let no_seed = clean.replace(&"d".repeat(64), "");
        let failed_seed: Vec<String> = hygiene_results(&no_seed, Some(&builder))
            .into_iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect();
        assert_eq!(failed_seed, ["a random seed of its own"]);
        assert_eq!(
            CloneIdentity::from_facts(&clean),
            CloneIdentity {
                machine_id: "c".repeat(32),
                host_key: "SHA256:new".into(),
                random_seed: "d".repeat(64),
            }
        );
        assert_eq!(
            failed,
            [
                "a new machine-id",
                "new SSH host keys",
                "no builder user or key",
                "no build credentials"
            ]
        );
    }
}
