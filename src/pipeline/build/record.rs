//! The template and its registry record.

use std::sync::Mutex;

use super::bake::Builder;
use crate::pipeline::{BuildError, artifact};
use crate::registry::{self, BuilderIdentity, CheckResult, ImageRecord, NewImage, Parent};
use crate::target::{TemplateMeta, TemplateRef, VmHandle};

impl Builder<'_, '_> {
    /// Allocates the version, turns the VM into the template `ROLE-VERSION`
    /// and writes the record, all under the registry lock. If the record
    /// cannot be written, the template goes too.
    pub(super) async fn record(
        &self,
        vm: &VmHandle,
        identity: BuilderIdentity,
        checks: Vec<CheckResult>,
        packages: std::collections::BTreeMap<String, String>,
        repositories: std::collections::BTreeMap<String, registry::Sha256>,
    ) -> Result<ImageRecord, BuildError> {
        let made: Mutex<Option<(TemplateRef, TemplateMeta)>> = Mutex::new(None);
        let parent = match &self.resolved.parent {
            Some(p) => Parent::Image {
                role: p.role.clone(),
                version: p.version,
            },
            None => Parent::Base(self.p.base_identity.to_owned()),
        };
        let inputs = self.resolved.hash.clone();
        let meta = |version: &registry::Version| TemplateMeta {
            role: self.role.clone(),
            version: version.to_string(),
            inputs: self.resolved.inputs.hash.clone(),
            parent: self.resolved.parent.as_ref().map(ImageRecord::id),
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
}
