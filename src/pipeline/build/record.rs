//! The template and its registry record.

use std::time::Instant;

use super::bake::Builder;
use super::phase::Phase;
use crate::pipeline::hygiene::ImageId;
use crate::pipeline::inspect;
use crate::pipeline::{BuildError, artifact};
use crate::registry::Version;
use crate::registry::{self, BuilderIdentity, CheckResult, ImageRecord, NewImage, Parent};
use crate::target::local::image_fs::ImageFs;
use crate::target::{Artifact, TemplateMeta, TemplateRef, VmHandle};

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
        let started = Instant::now();
        let parent = match &self.resolved.parent {
            Some(p) => Parent::Image {
                role: p.role.clone(),
                version: p.version,
            },
            None => Parent::Base(self.p.bases.of(self.resolved.role.suite).to_owned()),
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
        if let Err(e) = self.inspect(&template, &version).await {
            if let Err(gone) = self.p.target.destroy_template(&template, &meta).await {
                self.p.progress.warn(format!(
                    "{}: could not remove template `{}`: {gone}",
                    self.role, template.name
                ));
            }
            return Err(e);
        }
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
        let timings = self.timings.with_current(Phase::Record, started);
        let image = NewImage {
            inputs: self.resolved.hash.clone(),
            parent,
            target: self.p.target_name.to_owned(),
            artifact,
            repositories,
            packages,
            checks,
            builder: Some(identity),
            size,
        };
        let committed = reservation.commit_timed(image, timings);
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

    /// A local template's file is inspected offline before it is recorded
    /// (see `pipeline/inspect.rs`); Proxmox templates are not (their disks
    /// are not files oxbake can read: docs/operations.md).
    async fn inspect(&self, template: &TemplateRef, version: &Version) -> Result<(), BuildError> {
        let Artifact::Local { path, .. } = &template.artifact else {
            return Ok(());
        };
        self.p.progress.info(format!(
            "{}: inspecting template `{}` offline",
            self.role, template.name
        ));
        let fail = |e| self.target_err("cannot inspect the template", e);
        let fs = ImageFs::open(path, &self.p.dirs().scratch())
            .await
            .map_err(fail)?;
        let operations = self.clean_operations()?;
        let version = version.to_string();
        let image = ImageId {
            role: &self.role,
            version: &version,
        };
        let secrets: Vec<&str> = self.secrets.values().collect();
        let findings = inspect::inspect(&fs, image, &operations, &secrets)
            .await
            .map_err(fail)?;
        if findings.is_empty() {
            return Ok(());
        }
        Err(BuildError::NotClean {
            role: self.role.clone(),
            template: template.name.clone(),
            findings,
        })
    }
}
