//! What a bake does inside the builder VM: wait for cloud-init, prepare,
//! the recipe's steps, the checks, the package manifest, the clean-up.

use std::time::Duration;

use super::bake::Builder;
use crate::guest::{Command, GuestSession};
use crate::pipeline::BuildError;
use crate::pipeline::checks::run_checks;
use crate::pipeline::hygiene::{self, BUILDER_USER};
use crate::pipeline::steps::{self, StepContext};
use crate::progress::Event;
use crate::recipe::Check;
use crate::registry::{self, CheckResult};
use crate::render::Renderer;
use crate::target::VmHandle;

impl Builder<'_, '_> {
    pub(super) async fn wait_cloud_init(
        &self,
        guest: &mut dyn GuestSession,
    ) -> Result<(), BuildError> {
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
    pub(super) async fn prepare(&self, guest: &mut dyn GuestSession) -> Result<String, BuildError> {
        let group = self.resolved.role.ssh_group.as_deref();
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

    pub(super) async fn apply_steps(&self, guest: &mut dyn GuestSession) -> Result<(), BuildError> {
        let vars = &self.resolved.role.vars;
        let renderer =
            Renderer::new(&self.p.project.templates_dir()).redacting(self.secrets.values());
        let ctx = StepContext {
            project: self.p.project,
            renderer: &renderer,
            vars: self.resolved.role.bake_context(),
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
            if !step.enabled(vars) {
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
            self.recipe_step(i + 1, &label, work).await?;
        }
        Ok(())
    }

    pub(super) async fn checks(
        &self,
        guest: &mut dyn GuestSession,
    ) -> Result<Vec<CheckResult>, BuildError> {
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

    pub(super) async fn manifest(
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

    /// The clean-up (os-release names the image `version` will be), then
    /// the builder user's removal and the trim of free space, with the
    /// disk's size before and after where the target can tell.
    pub(super) async fn clean(
        &self,
        guest: &mut dyn GuestSession,
        vm: &VmHandle,
        version: &crate::registry::Version,
    ) -> Result<(), BuildError> {
        let operations = self.clean_operations()?;
        let version = version.to_string();
        let image = hygiene::ImageId {
            role: &self.role,
            version: &version,
        };
        let script = hygiene::clean_script(image, &operations);
        guest
            .exec_checked(&self.root(script))
            .await
            .map_err(|e| self.guest_err("the clean-up failed", e))?;
        let before = self.disk_size(vm).await?;
        guest
            .exec_checked(&self.root(hygiene::finish_script(BUILDER_USER)))
            .await
            .map_err(|e| self.guest_err("removing the builder user or the trim failed", e))?;
        if let (Some(before), Some(after)) = (before, self.disk_size(vm).await?) {
            let line = format!(
                "{}: trimmed free space: disk {} before, {} after",
                self.role,
                mib(before),
                mib(after)
            );
            self.log.line(&line);
            self.p.progress.info(line);
        }
        Ok(())
    }

    async fn disk_size(&self, vm: &VmHandle) -> Result<Option<u64>, BuildError> {
        self.p
            .target
            .disk_size(vm)
            .await
            .map_err(|e| self.target_err("cannot read the disk's size", e))
    }

    /// The clean-up operations the role's recipe selects (checked by
    /// `oxbake check`, so an unknown one here is a recipe changed since).
    pub(super) fn clean_operations(
        &self,
    ) -> Result<Vec<&'static crate::recipe::clean::Operation>, BuildError> {
        self.resolved
            .role
            .recipe()
            .clean_operations()
            .map_err(|e| BuildError::Clean {
                role: self.role.clone(),
                why: e.to_string(),
            })
    }
}

/// `bytes` in MiB with the exact figure: `109.7 MiB (115023872 bytes)`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB ({bytes} bytes)", bytes as f64 / 1048576.0)
}
