//! A role whose recipe sets `[deploy] quorum = "majority"` (a Galera
//! cluster) keeps more than half of its running VMs through a deploy: a
//! plan whose destroys would leave fewer, or whose replacements would stop
//! a majority of them at once (`max_unavailable`), is refused before
//! anything is touched. A role's only VM is a majority of one: it is not
//! replaced in place (its replacement would start an empty cluster).
//! Pure: the plan only.

use std::collections::{BTreeMap, BTreeSet};

use crate::recipe::model::Quorum;

use super::plan::{Action, Plan};

/// Why a plan would take a role's majority away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumError {
    #[error(
        "role `{role}` keeps a majority of its running VMs (quorum = \"majority\"): \
         the plan destroys {destroyed} of {running}, leaving {left}; \
         lower `count` by fewer at a time"
    )]
    Destroys {
        role: String,
        running: u32,
        destroyed: u32,
        left: u32,
    },
    #[error(
        "role `{role}` keeps a majority of its running VMs (quorum = \"majority\"): \
         `max_unavailable` = {max} would stop {stopped} of {serving} at once; \
         at most fewer than half may be stopped"
    )]
    Replaces {
        role: String,
        serving: u32,
        stopped: u32,
        max: u32,
    },
    #[error(
        "role `{role}` keeps data that exists nowhere else (keeps_data): the plan destroys \
         vm `{vm}`, and its data would go with it; copy the data off it first, then \
         `oxbake destroy ENV --all`"
    )]
    KeepsData { role: String, vm: String },
}

/// Refuses `plan` if it destroys a VM of a role that keeps data
/// (`[deploy] keeps_data`): its data would go with it. (Replacements of
/// such VMs are kept instead: [`super::plan::hold_data`].)
pub fn check_keeps_data(plan: &Plan, keeps: &BTreeSet<String>) -> Result<(), QuorumError> {
    for a in &plan.actions {
        if let Action::Destroy { vm } = a
            && keeps.contains(&vm.role)
        {
            return Err(QuorumError::KeepsData {
                role: vm.role.clone(),
                vm: vm.name.clone(),
            });
        }
    }
    Ok(())
}

/// Refuses `plan` if it breaks the quorum of a role of `rules`.
pub fn check(plan: &Plan, rules: &BTreeMap<String, Quorum>) -> Result<(), QuorumError> {
    for (role, Quorum::Majority) in rules {
        let of_role = || plan.actions.iter().filter(|a| a.role() == role);
        let (mut running, mut destroyed, mut replaced) = (0u32, 0u32, 0u32);
        for a in of_role() {
            match a {
                Action::Keep { vm, .. } | Action::Destroy { vm } if vm.running => {
                    running += 1;
                    destroyed += u32::from(matches!(a, Action::Destroy { .. }));
                }
                Action::Replace { old, .. } if old.running => {
                    running += 1;
                    replaced += 1;
                }
                _ => {}
            }
        }
        if running == 0 {
            continue;
        }
        let left = running - destroyed;
        if destroyed > 0 && !is_majority(left, running) {
            return Err(QuorumError::Destroys {
                role: role.clone(),
                running,
                destroyed,
                left,
            });
        }
        let max = plan.max_unavailable(role);
        let stopped = replaced.min(max);
        if is_majority(stopped, left) {
            return Err(QuorumError::Replaces {
                role: role.clone(),
                serving: left,
                stopped,
                max,
            });
        }
    }
    Ok(())
}

/// More than half.
fn is_majority(part: u32, of: u32) -> bool {
    2 * part > of
}

#[cfg(test)]
mod tests;
