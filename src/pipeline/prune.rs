//! `oxbake prune`: retention. The plan ([`super::prune_plan`]) says which
//! images stay; each other one goes, in this order:
//!
//! 1. before anything is destroyed, every record folder that will change
//!    is probed (lock + a write there), and every template is proved to be
//!    its record's and no other record's ([`super::ownership`]); an image
//!    that fails either stays and is reported `failed` (exit 1);
//! 2. per image, under the registry lock: a marker is written next to the
//!    record, the template is destroyed (the target proves ownership again),
//!    then the record and the marker go (see `registry::remove` for why this
//!    order leaves no record without its template that `ls` does not flag).
//!
//! `--dry-run` runs step 1 too, so it reports what the real run will do. A
//! template the target refuses to destroy because linked clones use it
//! stays, with a warning. The history in `channels.toml` is never touched.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::artifact::template_of;
use super::context::Context;
use super::nightly::chain;
use super::ownership;
use super::prune_copies::{CopyTargets, Kept, deployed_on};
use super::prune_plan::{self, DeployedImage, PlanInput, PruneAction, PruneEntry};
use crate::registry::{ImageSummary, Registry, RegistryError, Version};
use crate::target::{TargetError, TemplatePresence};

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

/// Plans (keeping `keep` newest versions of each role, `[retention].keep`)
/// and, unless `dry_run`, removes what the plan lets go. Images recorded on
/// other targets than the context's stay.
pub async fn prune(
    ctx: &Context<'_>,
    keep: usize,
    dry_run: bool,
) -> Result<PruneReport, PruneError> {
    // Summaries, not records: the package lists are of no use here, and
    // the history is not read.
    let records = ctx.registry.summaries(None)?;
    let channels = ctx.registry.channels_without_history()?;
    let mut deployed = deployed(ctx).await?;
    let copies = CopyTargets::open(ctx, &records, &mut deployed).await;
    let mut entries = prune_plan::plan(&PlanInput {
        records: &records,
        channels: &channels,
        deployed: &deployed,
        keep,
        target: ctx.target_name,
    });
    let by_id: HashMap<(&str, Version), &ImageSummary> = records
        .iter()
        .map(|r| ((r.role.as_str(), r.version), r))
        .collect();
    let find = |e: &PruneEntry| by_id.get(&(e.role.as_str(), e.version)).copied();
    let claims = ownership::Claims::of(&records);
    for entry in entries.iter_mut() {
        if let Some(record) = find(entry)
            && ctx.registry.is_being_removed(&entry.role, &entry.version)
        {
            unfinished(ctx, entry, record, dry_run).await;
        }
    }
    let unwritable = probe(ctx.registry, &entries);
    for entry in entries
        .iter_mut()
        .filter(|e| e.action == PruneAction::Remove)
    {
        let Some(record) = find(entry) else { continue };
        if let Some(why) = unwritable.get(&entry.role) {
            fail(entry, why.clone());
            continue;
        }
        let root = &ctx.project.root;
        if let Err(why) = ownership::prove(ctx.target, ctx.target_name, record, &claims, root).await
        {
            fail(entry, why);
            continue;
        }
        if let Err(why) = copies.prove(ctx, record, &claims).await {
            fail(entry, why);
            continue;
        }
        if !dry_run {
            remove(ctx, &copies, entry, record).await;
        }
    }
    Ok(PruneReport { dry_run, entries })
}

/// A record an earlier prune marked and did not finish: if its template is
/// gone it goes too whatever the plan says (a record without its template
/// is of no use); if the template is still there the marker goes.
async fn unfinished(ctx: &Context<'_>, entry: &mut PruneEntry, record: &ImageSummary, dry: bool) {
    let identity = ownership::identity(record);
    let template = template_of(record, &ctx.project.root);
    match ctx.target.verify_template(&template, &identity).await {
        Ok(TemplatePresence::Gone) => {
            entry.action = PruneAction::Remove;
            entry.why = vec!["an earlier prune destroyed its template and stopped".into()];
        }
        Ok(TemplatePresence::Ours) if entry.action == PruneAction::Keep && !dry => {
            if let Err(e) = ctx.registry.unmark(&record.role, &record.version) {
                entry.why.push(chain(&e));
            }
        }
        Ok(TemplatePresence::Ours) => {}
        Err(e) => fail(entry, format!("kept its template: {e}")),
    }
}

/// For each role that loses an image, why its record folder cannot be
/// written (nothing of that role is destroyed then).
fn probe(registry: &Registry, entries: &[PruneEntry]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.action == PruneAction::Remove) {
        if out.contains_key(&entry.role) {
            continue;
        }
        if let Err(e) = registry.probe_writable(&entry.role) {
            let why = format!(
                "the registry cannot be written, so nothing was destroyed: {}",
                chain(&e)
            );
            out.insert(entry.role.clone(), why);
        }
    }
    out
}

/// The images the target's deployed VMs run.
async fn deployed(ctx: &Context<'_>) -> Result<Vec<DeployedImage>, PruneError> {
    deployed_on(ctx.target)
        .await
        .map_err(|e| PruneError::ListVms {
            target: ctx.target_name.to_owned(),
            source: Box::new(e),
        })
}

/// Marks the record, destroys its published copies (forgetting each) and
/// its template, then removes the record and the marker; updates `entry`
/// with the result.
async fn remove(
    ctx: &Context<'_>,
    copies: &CopyTargets,
    entry: &mut PruneEntry,
    record: &ImageSummary,
) {
    let image = record.id();
    let removal = match ctx.registry.begin_removal(&record.role, &record.version) {
        Ok(removal) => removal,
        Err(e) => return fail(entry, format!("nothing was destroyed: {}", chain(&e))),
    };
    let marker = removal.marker();
    let identity = ownership::identity(record);
    let destroyed = match copies.remove(ctx, &removal, record).await {
        Ok(()) => ctx
            .target
            .destroy_template(&template_of(record, &ctx.project.root), &identity)
            .await
            .map_err(|e| match e {
                TargetError::TemplateInUse { name, user } => Kept::InUse { name, user },
                e => Kept::Failed(format!("cannot destroy its template: {e}")),
            }),
        Err(kept) => Err(kept),
    };
    if let Err(error) = destroyed {
        let left = removal.abandon().err().map(|e| {
            format!(
                "its marker `{}` stays ({}): `oxbake ls` reports it until `oxbake prune` runs again",
                marker.display(),
                chain(&e)
            )
        });
        match error {
            Kept::InUse { name, user } => {
                ctx.progress.warn(format!(
                    "prune: kept `{image}`: template `{name}` is still used by {user}"
                ));
                entry.action = PruneAction::Keep;
                entry.why.push(format!("its template has clones ({user})"));
            }
            Kept::Failed(why) => fail(entry, why),
        }
        entry.why.extend(left);
        return;
    }
    match removal.finish() {
        Ok(_) => {
            entry.action = PruneAction::Removed;
            entry.why.clear();
            ctx.progress.info(format!("prune: removed `{image}`"));
        }
        Err(e) => fail(
            entry,
            format!(
                "its template was destroyed but its record stays ({}); `{}` marks it, so \
                 `oxbake ls` reports it and the next `oxbake prune` finishes",
                chain(&e),
                marker.display()
            ),
        ),
    }
}

fn fail(entry: &mut PruneEntry, why: String) {
    entry.action = PruneAction::Failed;
    entry.why.push(why);
}
