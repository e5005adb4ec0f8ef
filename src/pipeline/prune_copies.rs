//! The other places of the images `oxbake prune` considers: the targets
//! their copies were published to (`oxbake publish`). An image the plan
//! lets go loses every copy before its own template and its record, each
//! copy proved to be the image's first; the VMs deployed on those targets
//! keep the images they run, as the pruned target's own VMs do. A target
//! that cannot be opened or listed keeps every image published to it.

use std::collections::{BTreeMap, BTreeSet};

use super::artifact::template_on;
use super::context::Context;
use super::nightly::chain;
use super::open;
use super::ownership::{self, Claims};
use super::prune_plan::DeployedImage;
use crate::registry::{ImageHead, Removal};
use crate::target::{OpenTarget, Target, TargetError, VmKind};

/// The targets the copies live on, each opened once, or why it could not
/// be used.
pub struct CopyTargets {
    targets: BTreeMap<String, Result<OpenTarget, String>>,
}

impl CopyTargets {
    /// Opens every target a copy of one of `records` (those of the pruned
    /// target) lives on, and adds the images their deployed VMs run to
    /// `deployed`.
    pub async fn open(
        ctx: &Context<'_>,
        records: &[impl ImageHead],
        deployed: &mut Vec<DeployedImage>,
    ) -> Self {
        let names: BTreeSet<&str> = records
            .iter()
            .filter(|r| r.target() == ctx.target_name)
            .flat_map(|r| r.published().iter().map(|p| p.target.as_str()))
            .collect();
        let mut targets = BTreeMap::new();
        for name in names {
            let opened = match open::open(ctx.project, Some(name), &ctx.progress, false).await {
                Ok(t) => match deployed_on(t.target.as_ref()).await {
                    Ok(vms) => {
                        deployed.extend(vms);
                        Ok(t)
                    }
                    Err(e) => Err(format!("cannot list its VMs: {e}")),
                },
                Err(e) => Err(chain(&e)),
            };
            targets.insert(name.to_owned(), opened);
        }
        Self { targets }
    }

    /// Proves each of `record`'s copies is its own, changing nothing; the
    /// first that does not prove it says why.
    pub async fn prove(
        &self,
        ctx: &Context<'_>,
        record: &impl ImageHead,
        claims: &Claims,
    ) -> Result<(), String> {
        for copy in record.published() {
            let target = self.target(&copy.target)?;
            ownership::prove(target, &copy.target, record, claims, &ctx.project.root)
                .await
                .map_err(|why| format!("{why} (its copy on target `{}`)", copy.target))?;
        }
        Ok(())
    }

    /// Destroys each of `record`'s copies and forgets it in the record
    /// (under `removal`'s lock),
    /// stopping at the first that fails.
    pub async fn remove(
        &self,
        ctx: &Context<'_>,
        removal: &Removal<'_>,
        record: &impl ImageHead,
    ) -> Result<(), Kept> {
        for copy in record.published() {
            let target = self.target(&copy.target).map_err(Kept::Failed)?;
            let template = template_on(record, &copy.target, &ctx.project.root);
            target
                .destroy_template(&template, &ownership::identity(record))
                .await
                .map_err(|e| match e {
                    TargetError::TemplateInUse { name, user } => Kept::InUse {
                        name: format!("{name}` on target `{}", copy.target),
                        user,
                    },
                    e => Kept::Failed(format!(
                        "cannot destroy its copy on target `{}`: {e}",
                        copy.target
                    )),
                })?;
            removal.forget_copy(&copy.target).map_err(|e| {
                Kept::Failed(format!(
                    "its copy on target `{}` was destroyed but the record still lists it ({})",
                    copy.target,
                    chain(&e)
                ))
            })?;
            ctx.progress.info(format!(
                "prune: removed `{}`'s copy on target `{}`",
                record.id(),
                copy.target
            ));
        }
        Ok(())
    }

    fn target(&self, name: &str) -> Result<&dyn Target, String> {
        match self.targets.get(name) {
            Some(Ok(t)) => Ok(t.target.as_ref()),
            Some(Err(why)) => Err(format!(
                "kept: it is published to target `{name}`, which cannot be used: {why}"
            )),
            None => Err(format!("kept: target `{name}` was not opened")),
        }
    }
}

/// Why an image's template (or one of its copies) stayed.
pub enum Kept {
    /// Linked clones use the template `name`.
    InUse { name: String, user: String },
    /// Anything else, said in full.
    Failed(String),
}

/// The images `target`'s deployed VMs run.
pub async fn deployed_on(target: &dyn Target) -> Result<Vec<DeployedImage>, TargetError> {
    Ok(target
        .list_vms()
        .await?
        .into_iter()
        .filter_map(|vm| {
            let labels = vm.labels.into_read()?;
            (labels.kind == VmKind::Deployed).then(|| DeployedImage {
                vm: vm.handle.name,
                role: labels.role,
                version: labels.version.unwrap_or_default(),
            })
        })
        .collect())
}
