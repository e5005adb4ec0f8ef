//! The template and its registry record.

use super::bake::Builder;
use crate::pipeline::{BuildError, artifact};
use crate::registry::{self, BuilderIdentity, CheckResult, ImageRecord, NewImage, Parent};
use crate::target::{TemplateMeta, VmHandle};

impl Builder<'_, '_> {
    /// Turns the VM into the template `ROLE-VERSION` of the reserved version
    /// (outside any registry lock) and commits the record. If the record
    /// cannot be written, the template goes too.
    pub(super) async fn record(
        &self,
        reservation: registry::Reservation<'_>,
        vm: &VmHandle,
        identity: BuilderIdentity,
        checks: Vec<CheckResult>,
        packages: std::collections::BTreeMap<String, String>,
        repositories: std::collections::BTreeMap<String, registry::Sha256>,
    ) -> Result<ImageRecord, BuildError> {
        let parent = match &self.resolved.parent {
            Some(p) => Parent::Image {
                role: p.role.clone(),
                version: p.version,
            },
            None => Parent::Base(self.p.base_identity.to_owned()),
        };
        let version = reservation.version;
        let meta = TemplateMeta {
            role: self.role.clone(),
            version: version.to_string(),
            inputs: self.resolved.inputs.hash.clone(),
            parent: self.resolved.parent.as_ref().map(ImageRecord::id),
        };
        let name = format!("{}-{version}", self.role);
        let template = self
            .p
            .target
            .make_template(vm, &name, &meta)
            .await
            .map_err(|e| self.target_err("cannot make the template", e))?;
        let artifact = artifact::to_registry(&template.artifact, &self.p.project.root)?;
        // A size the target cannot read is not worth failing a finished bake.
        let size = match self.p.target.template_size(&template).await {
            Ok(size) => size,
            Err(e) => {
                self.p.progress.warn(format!(
                    "{}: cannot read the size of template `{}`: {e}",
                    self.role, template.name
                ));
                None
            }
        };
        let committed = reservation.commit(NewImage {
            inputs: self.resolved.hash.clone(),
            parent,
            target: self.p.target_name.to_owned(),
            artifact,
            repositories,
            packages,
            checks,
            builder: Some(identity),
            size,
        });
        if committed.is_err()
            && let Err(e) = self.p.target.destroy_template(&template, &meta).await
        {
            self.p.progress.warn(format!(
                "{}: could not remove template `{}`: {e}",
                self.role, template.name
            ));
        }
        Ok(committed?)
    }
}
