//! Which images `oxbake prune` keeps, and why: the newest N per role, any
//! image a channel points at, one a deployed VM runs (on the pruned target
//! or one the image was published to), one on another target, and
//! (transitively) the parent of any image that stays. An image that goes
//! loses its published copies with it (`super::prune_copies`).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::registry::{Channels, ImageHead, ImageRecord, Parent, Version};

/// What happens (or would happen) to one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PruneAction {
    Keep,
    /// Would go (`--dry-run`), or is about to.
    Remove,
    Removed,
    /// Removing it failed; the reason says why.
    Failed,
}

/// One image and its fate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PruneEntry {
    pub role: String,
    pub version: Version,
    pub action: PruneAction,
    /// Why it stays (or why removing it failed); empty for one that goes.
    pub why: Vec<String>,
}

/// A deployed VM: its name and the image it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployedImage {
    pub vm: String,
    pub role: String,
    pub version: String,
}

/// The inputs of the decision: the records, or their summaries (what
/// `oxbake prune` reads).
pub struct PlanInput<'a, I = ImageRecord> {
    pub records: &'a [I],
    pub channels: &'a Channels,
    pub deployed: &'a [DeployedImage],
    pub keep: usize,
    /// The target being pruned; images on other targets stay.
    pub target: &'a str,
}

/// Decides every image's fate, children before parents (then newest first),
/// so that removing in this order never pulls a template from under another.
pub fn plan<I: ImageHead>(input: &PlanInput<'_, I>) -> Vec<PruneEntry> {
    let mut why: BTreeMap<(String, Version), Vec<String>> = BTreeMap::new();
    let mut by_role: BTreeMap<&str, Vec<&I>> = BTreeMap::new();
    for record in input.records {
        by_role.entry(record.role()).or_default().push(record);
        why.insert(key(record), own_reasons(input, record));
    }
    for records in by_role.values_mut() {
        records.sort_by_key(|r| std::cmp::Reverse(*r.version()));
        for record in records.iter().take(input.keep) {
            let reasons = why.entry(key(*record)).or_default();
            reasons.insert(0, format!("one of the newest {}", input.keep));
        }
    }
    keep_parents(input.records, &mut why);
    let mut entries: Vec<PruneEntry> = input
        .records
        .iter()
        .map(|r| {
            let reasons = why.remove(&key(r)).unwrap_or_default();
            PruneEntry {
                role: r.role().to_owned(),
                version: *r.version(),
                action: if reasons.is_empty() {
                    PruneAction::Remove
                } else {
                    PruneAction::Keep
                },
                why: reasons,
            }
        })
        .collect();
    let depth = depths(input.records);
    entries.sort_by_key(|e| {
        let k = (e.role.clone(), e.version);
        std::cmp::Reverse((depth.get(&k).copied(), e.version, e.role.clone()))
    });
    entries
}

/// How many ancestors each image has in the registry: a child is always
/// deeper than its parent, whatever their versions.
fn depths(records: &[impl ImageHead]) -> BTreeMap<(String, Version), usize> {
    let parent_of = parents(records);
    records
        .iter()
        .map(|r| {
            let mut depth = 0;
            let mut at = key(r);
            while let Some(parent) = parent_of.get(&at) {
                depth += 1;
                if depth > records.len() {
                    break;
                }
                at = parent.clone();
            }
            (key(r), depth)
        })
        .collect()
}

type Key = (String, Version);

/// Image -> the image it was built from.
fn parents(records: &[impl ImageHead]) -> BTreeMap<Key, Key> {
    records
        .iter()
        .filter_map(|r| match r.parent() {
            Parent::Image { role, version } => Some((key(r), (role.clone(), *version))),
            Parent::Base(_) => None,
        })
        .collect()
}

fn key(record: &impl ImageHead) -> Key {
    (record.role().to_owned(), *record.version())
}

/// The reasons an image stays on its own account.
fn own_reasons<I: ImageHead>(input: &PlanInput<'_, I>, record: &I) -> Vec<String> {
    let mut reasons = Vec::new();
    for channel in input.channels.channels_of(record.role(), record.version()) {
        reasons.push(format!("channel `{channel}` points at it"));
    }
    let version = record.version().to_string();
    for vm in input
        .deployed
        .iter()
        .filter(|d| d.role == record.role() && d.version == version)
    {
        reasons.push(format!("deployed VM `{}` runs it", vm.vm));
    }
    if record.target() != input.target {
        reasons.push(format!("it lives on target `{}`", record.target()));
    }
    reasons
}

/// Keeps the parent of every image that stays, transitively.
fn keep_parents(records: &[impl ImageHead], why: &mut BTreeMap<(String, Version), Vec<String>>) {
    let parents = parents(records);
    let mut work: Vec<(String, Version)> = why
        .iter()
        .filter(|(_, reasons)| !reasons.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    let mut seen: BTreeSet<(String, Version)> = work.iter().cloned().collect();
    while let Some(child) = work.pop() {
        let Some(parent) = parents.get(&child) else {
            continue;
        };
        if let Some(reasons) = why.get_mut(parent) {
            reasons.push(format!(
                "kept image `{}@{}` was built from it",
                child.0, child.1
            ));
            if seen.insert(parent.clone()) {
                work.push(parent.clone());
            }
        }
    }
}
