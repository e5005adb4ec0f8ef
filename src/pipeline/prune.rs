//! `oxbake prune`: retention. The plan ([`super::prune_plan`]) says which
//! images stay; each other one loses its template (`destroy_template`) and
//! then its record. A template the target refuses to destroy because linked
//! clones use it stays, with a warning. The history in `channels.toml` is
//! never touched.

use std::path::Path;

use serde::Serialize;

use super::artifact::template_of;
use super::prune_plan::{self, DeployedImage, PlanInput, PruneAction, PruneEntry};
use crate::progress::Progress;
use crate::registry::{Registry, RegistryError};
use crate::target::{Target, TargetError, VmKind};

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("prune: cannot list the VMs of target `{target}` (needed to keep what they run)")]
    ListVms {
        target: String,
        #[source]
        source: Box<TargetError>,
    },
}

/// What prune works on.
pub struct PruneCtx<'a> {
    pub root: &'a Path,
    pub registry: &'a Registry,
    pub target: &'a dyn Target,
    /// The target's name in oxbake.toml; images recorded on others stay.
    pub target_name: &'a str,
    /// `[retention].keep`: how many of each role's newest versions stay.
    pub keep: usize,
    pub progress: Progress,
}

/// Every image considered, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub entries: Vec<PruneEntry>,
}

impl PruneReport {
    pub fn failed(&self) -> bool {
        self.entries.iter().any(|e| e.action == PruneAction::Failed)
    }
}

/// Plans and, unless `dry_run`, removes what the plan lets go.
pub async fn prune(ctx: &PruneCtx<'_>, dry_run: bool) -> Result<PruneReport, PruneError> {
    let records = ctx.registry.list(None)?;
    let channels = ctx.registry.channels()?;
    let deployed = deployed(ctx).await?;
    let mut entries = prune_plan::plan(&PlanInput {
        records: &records,
        channels: &channels,
        deployed: &deployed,
        keep: ctx.keep,
        target: ctx.target_name,
    });
    if !dry_run {
        for entry in entries
            .iter_mut()
            .filter(|e| e.action == PruneAction::Remove)
        {
            remove(ctx, entry).await;
        }
    }
    Ok(PruneReport { dry_run, entries })
}

/// The images the target's deployed VMs run.
async fn deployed(ctx: &PruneCtx<'_>) -> Result<Vec<DeployedImage>, PruneError> {
    let vms = ctx
        .target
        .list_vms()
        .await
        .map_err(|e| PruneError::ListVms {
            target: ctx.target_name.to_owned(),
            source: Box::new(e),
        })?;
    Ok(vms
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

/// Destroys the template, then the record; updates `entry` with the result.
async fn remove(ctx: &PruneCtx<'_>, entry: &mut PruneEntry) {
    let image = format!("{}@{}", entry.role, entry.version);
    let record = match ctx.registry.get(&entry.role, &entry.version) {
        Ok(record) => record,
        Err(e) => return fail(entry, e.to_string()),
    };
    match ctx
        .target
        .destroy_template(&template_of(&record, ctx.root))
        .await
    {
        Ok(()) => {}
        Err(TargetError::TemplateInUse { name, user }) => {
            ctx.progress.warn(format!(
                "prune: kept `{image}`: template `{name}` is still used by {user}"
            ));
            entry.action = PruneAction::Keep;
            entry.why.push(format!("its template has clones ({user})"));
            return;
        }
        Err(e) => return fail(entry, format!("cannot destroy its template: {e}")),
    }
    match ctx.registry.remove(&entry.role, &entry.version) {
        Ok(_) => {
            entry.action = PruneAction::Removed;
            ctx.progress.info(format!("prune: removed `{image}`"));
        }
        Err(e) => fail(entry, e.to_string()),
    }
}

fn fail(entry: &mut PruneEntry, why: String) {
    entry.action = PruneAction::Failed;
    entry.why.push(why);
}
