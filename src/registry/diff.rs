//! `oxbake diff ROLE V1 V2`: what changed between two images' package
//! manifests.

use std::collections::BTreeMap;

use serde::Serialize;

use super::ImageRecord;

/// One package whose version differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub name: String,
    pub from: String,
    pub to: String,
}

/// Packages added, removed and changed from one image to another, each list
/// in name order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    pub from: String,
    pub to: String,
    pub added: BTreeMap<String, String>,
    pub removed: BTreeMap<String, String>,
    pub changed: Vec<PackageChange>,
    pub unchanged: usize,
}

impl PackageDiff {
    /// Compares `old`'s packages with `new`'s.
    pub fn between(old: &ImageRecord, new: &ImageRecord) -> Self {
        let mut diff = Self {
            from: old.id(),
            to: new.id(),
            ..Self::default()
        };
        for (name, version) in &new.packages {
            match old.packages.get(name) {
                None => {
                    diff.added.insert(name.clone(), version.clone());
                }
                Some(before) if before != version => diff.changed.push(PackageChange {
                    name: name.clone(),
                    from: before.clone(),
                    to: version.clone(),
                }),
                Some(_) => diff.unchanged += 1,
            }
        }
        for (name, version) in &old.packages {
            if !new.packages.contains_key(name) {
                diff.removed.insert(name.clone(), version.clone());
            }
        }
        diff
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }

    /// One line per difference: `+ name version`, `- name version`,
    /// `~ name old -> new`.
    pub fn lines(&self) -> Vec<String> {
        let added = self.added.iter().map(|(n, v)| format!("+ {n} {v}"));
        let removed = self.removed.iter().map(|(n, v)| format!("- {n} {v}"));
        let changed = self
            .changed
            .iter()
            .map(|c| format!("~ {} {} -> {}", c.name, c.from, c.to));
        added.chain(removed).chain(changed).collect()
    }
}
