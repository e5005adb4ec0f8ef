//! Which images `oxbake prune` keeps, and why: the newest N per role, any
//! image a channel points at, one a deployed VM runs, one on another target,
//! and (transitively) the parent of any image that stays.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::registry::{Channels, ImageRecord, Parent, Version};

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

/// The inputs of the decision.
pub struct PlanInput<'a> {
    pub records: &'a [ImageRecord],
    pub channels: &'a Channels,
    pub deployed: &'a [DeployedImage],
    pub keep: usize,
    /// The target being pruned; images on other targets stay.
    pub target: &'a str,
}

/// Decides every image's fate, children before parents (newest first), so
/// that removing in this order never pulls a template from under another.
pub fn plan(input: &PlanInput<'_>) -> Vec<PruneEntry> {
    let mut why: BTreeMap<(String, Version), Vec<String>> = BTreeMap::new();
    let mut by_role: BTreeMap<&str, Vec<&ImageRecord>> = BTreeMap::new();
    for record in input.records {
        by_role.entry(&record.role).or_default().push(record);
        why.insert(key(record), own_reasons(input, record));
    }
    for records in by_role.values_mut() {
        records.sort_by_key(|r| std::cmp::Reverse(r.version));
        for record in records.iter().take(input.keep) {
            let reasons = why.entry(key(record)).or_default();
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
                role: r.role.clone(),
                version: r.version,
                action: if reasons.is_empty() {
                    PruneAction::Remove
                } else {
                    PruneAction::Keep
                },
                why: reasons,
            }
        })
        .collect();
    let created: BTreeMap<(String, Version), jiff::Timestamp> =
        input.records.iter().map(|r| (key(r), r.created)).collect();
    entries.sort_by_key(|e| {
        let k = (e.role.clone(), e.version);
        std::cmp::Reverse((created.get(&k).copied(), e.version, e.role.clone()))
    });
    entries
}

fn key(record: &ImageRecord) -> (String, Version) {
    (record.role.clone(), record.version)
}

/// The reasons an image stays on its own account.
fn own_reasons(input: &PlanInput<'_>, record: &ImageRecord) -> Vec<String> {
    let mut reasons = Vec::new();
    for channel in input.channels.channels_of(&record.role, &record.version) {
        reasons.push(format!("channel `{channel}` points at it"));
    }
    let version = record.version.to_string();
    for vm in input
        .deployed
        .iter()
        .filter(|d| d.role == record.role && d.version == version)
    {
        reasons.push(format!("deployed VM `{}` runs it", vm.vm));
    }
    if record.target != input.target {
        reasons.push(format!("it lives on target `{}`", record.target));
    }
    reasons
}

/// Keeps the parent of every image that stays, transitively.
fn keep_parents(records: &[ImageRecord], why: &mut BTreeMap<(String, Version), Vec<String>>) {
    let parents: BTreeMap<(String, Version), (String, Version)> = records
        .iter()
        .filter_map(|r| match &r.parent {
            Parent::Image { role, version } => Some((key(r), (role.clone(), *version))),
            Parent::Base(_) => None,
        })
        .collect();
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
