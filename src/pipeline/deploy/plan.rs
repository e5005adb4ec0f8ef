//! What a deploy does, computed from what the environment wants and what the
//! target runs: per slot (role, index) create, replace, keep; every other
//! VM of the environment is destroyed. Roles go in waves (their `after`),
//! every VM of a wave at once; a replacement says how it is done and what
//! it costs the role. Pure: no target, no registry.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::config::Replace;

use crate::target::{ManagedVm, VmHandle, VmKind, VmState};

use super::tag::DeployTag;

/// One VM the environment wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    pub role: String,
    /// 1-based index within the role.
    pub slot: u32,
    pub hostname: String,
    pub version: String,
    /// Hash of everything the VM's seed is made from (see [`super::seed`]).
    pub seed: String,
    /// The Proxmox node it is placed on (see [`node_for`]); `None`: the
    /// target's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Whether the VM starts its role from nothing (runs the role's
    /// `bootstrap_commands`; see [`mark_bootstrap`]).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bootstrap: bool,
}

/// One deployed VM of the environment, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Existing {
    pub name: String,
    #[serde(skip)]
    pub handle: VmHandle,
    pub role: String,
    pub version: Option<String>,
    #[serde(skip)]
    pub tag: Option<DeployTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Whether the target lists it as running.
    pub running: bool,
    /// When the target made it, if it says.
    #[serde(skip)]
    pub created: Option<jiff::Timestamp>,
}

impl Existing {
    /// The VMs of environment `env` among everything a target lists.
    pub fn of_env(vms: &[ManagedVm], env: &str) -> Vec<Existing> {
        vms.iter()
            .filter_map(|vm| {
                let labels = vm.labels.get()?;
                let ours = labels.kind == VmKind::Deployed && labels.env.as_deref() == Some(env);
                ours.then(|| Existing {
                    name: vm.handle.name.clone(),
                    handle: vm.handle.clone(),
                    role: labels.role.clone(),
                    version: labels.version.clone(),
                    tag: DeployTag::parse(&labels.run_id),
                    node: vm.node.clone(),
                    running: vm.state == VmState::Running,
                    created: vm.created,
                })
            })
            .collect()
    }

    fn slot(&self) -> Option<u32> {
        self.tag.as_ref().map(|t| t.slot)
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    Create {
        want: Desired,
    },
    Replace {
        want: Desired,
        old: Existing,
        why: String,
        strategy: Replace,
        /// What the replacement costs, e.g. `down for one boot + checks`
        /// or `none: 1 of 2 serving` (see [`unavailable`]).
        unavailable: String,
    },
    Keep {
        want: Desired,
        vm: Existing,
    },
    /// A VM that is as wanted but stopped (a host restart, an operator):
    /// started again and proven healthy, as after a failed replacement.
    Start {
        want: Desired,
        vm: Existing,
    },
    Destroy {
        vm: Existing,
    },
}

/// The steps of one deploy: the destroys, then wave by wave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The roles in the order they are deployed: every role of a wave
    /// needs only roles of earlier waves; a wave's VMs are made at once.
    pub waves: Vec<Vec<String>>,
    /// How many replacements of one role run at once.
    #[serde(skip)]
    pub max_unavailable: BTreeMap<String, u32>,
}

/// How the environment orders and replaces its roles.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// See [`Plan::waves`]; roles not named here go into one last wave.
    pub waves: Vec<Vec<String>>,
    /// Per role, its `max_unavailable` (default 1) and strategy.
    pub roles: BTreeMap<String, (Replace, u32)>,
}

impl Rules {
    fn of(&self, role: &str) -> (Replace, u32) {
        self.roles
            .get(role)
            .copied()
            .unwrap_or((Replace::StopFirst, 1))
    }
}

impl Plan {
    /// Nothing to create, replace or destroy.
    pub fn is_noop(&self) -> bool {
        self.actions
            .iter()
            .all(|a| matches!(a, Action::Keep { .. }))
    }

    /// The wave (0-based) `role` is deployed in.
    pub fn wave_of(&self, role: &str) -> Option<usize> {
        self.waves.iter().position(|w| w.iter().any(|r| r == role))
    }

    /// How many replacements of `role` may run at once.
    pub fn max_unavailable(&self, role: &str) -> u32 {
        self.max_unavailable.get(role).copied().unwrap_or(1).max(1)
    }
}

impl Action {
    /// The role the step is about.
    pub fn role(&self) -> &str {
        match self {
            Action::Create { want }
            | Action::Replace { want, .. }
            | Action::Keep { want, .. }
            | Action::Start { want, .. } => &want.role,
            Action::Destroy { vm } => &vm.role,
        }
    }
}

/// Round robin placement: the role's VM `index` (0-based) goes to
/// `nodes[index % len]`; no nodes, no placement. Stable: a VM keeps its
/// node as long as the list does.
pub fn node_for(nodes: &[String], index: usize) -> Option<String> {
    (!nodes.is_empty()).then(|| nodes[index % nodes.len()].clone())
}

/// [`compute_with`] the default rules: one wave, one replacement at a time.
pub fn compute(desired: &[Desired], existing: &[Existing]) -> Plan {
    compute_with(desired, existing, &Rules::default())
}

/// Matches each wanted VM with the environment's VM in the same slot, then
/// orders the steps by wave (destroys first) and says what each
/// replacement costs.
pub fn compute_with(desired: &[Desired], existing: &[Existing], rules: &Rules) -> Plan {
    let mut left: Vec<&Existing> = existing.iter().collect();
    let mut actions = Vec::new();
    for want in desired {
        let same_slot = |e: &&Existing| e.role == want.role && e.slot() == Some(want.slot);
        let current = left
            .iter()
            .position(|e| same_slot(e) && why_differs(want, e).is_none())
            .or_else(|| left.iter().position(same_slot));
        let want = want.clone();
        actions.push(match current.map(|i| left.remove(i)) {
            None => Action::Create { want },
            Some(vm) => match why_differs(&want, vm) {
                None if !vm.running => Action::Start {
                    want,
                    vm: vm.clone(),
                },
                None => Action::Keep {
                    want,
                    vm: vm.clone(),
                },
                Some(why) => Action::Replace {
                    strategy: rules.of(&want.role).0,
                    want,
                    old: vm.clone(),
                    why,
                    unavailable: String::new(),
                },
            },
        });
    }
    let mut waves: Vec<Vec<String>> = rules.waves.clone();
    let mut unplaced: Vec<String> = desired
        .iter()
        .map(|d| d.role.clone())
        .filter(|r| !waves.iter().flatten().any(|w| w == r))
        .collect();
    unplaced.dedup();
    if !unplaced.is_empty() {
        waves.push(unplaced);
    }
    let wave_of = |role: &str| waves.iter().position(|w| w.iter().any(|r| r == role));
    // A stable sort: within a wave, the slots keep their order.
    actions.sort_by_key(|a| wave_of(a.role()));
    let max_unavailable: BTreeMap<String, u32> = waves
        .iter()
        .flatten()
        .map(|r| (r.clone(), rules.of(r).1.max(1)))
        .collect();
    let costs: BTreeMap<String, String> = max_unavailable
        .iter()
        .map(|(role, max)| (role.clone(), unavailable(&actions, role, *max)))
        .collect();
    for a in &mut actions {
        if let Action::Replace {
            want, unavailable, ..
        } = a
        {
            unavailable.clone_from(&costs[&want.role]);
        }
    }
    // VMs nobody wants go first: one of them may hold an address that a
    // new VM of this deploy is given.
    let destroys = left
        .into_iter()
        .map(|vm| Action::Destroy { vm: vm.clone() });
    let actions = destroys.chain(actions).collect();
    Plan {
        actions,
        waves,
        max_unavailable,
    }
}

/// Keeps the VMs of `roles` (roles that keep data) that the plan would
/// replace: their data exists nowhere else. Each is kept as it is (a
/// stopped one started again), with why it would have been replaced:
/// (vm, why).
pub fn hold_data(plan: &mut Plan, roles: &BTreeSet<String>) -> Vec<(String, String)> {
    let mut held = Vec::new();
    for a in &mut plan.actions {
        if let Action::Replace { want, old, why, .. } = a
            && roles.contains(&old.role)
        {
            held.push((old.name.clone(), why.clone()));
            let (want, vm) = (want.clone(), old.clone());
            *a = match vm.running {
                true => Action::Keep { want, vm },
                false => Action::Start { want, vm },
            };
        }
    }
    held
}

/// Marks the VM that starts each of `roles` from nothing: where the
/// environment runs no VM of the role (none listed, or none running), the
/// lowest slot that gets a new VM (a create, or a replacement of a stopped
/// one) runs the role's `bootstrap_commands`; every other VM its
/// `commands`. A role with a running VM is joined, never bootstrapped.
pub fn mark_bootstrap(plan: &mut Plan, existing: &[Existing], roles: &[&str]) {
    for role in roles {
        if existing.iter().any(|e| e.role == *role && e.running) {
            continue;
        }
        let first = plan
            .actions
            .iter_mut()
            .filter_map(|a| match a {
                Action::Create { want } | Action::Replace { want, .. } if want.role == *role => {
                    Some(want)
                }
                _ => None,
            })
            .min_by_key(|want| want.slot);
        if let Some(want) = first {
            want.bootstrap = true;
        }
    }
}

/// What replacing `role`'s VMs, `max` at a time, stop-first, costs it: the
/// VMs serving now (running, kept or replaced) less those down at once.
/// None left: the role is down for one boot and its checks.
pub fn unavailable(actions: &[Action], role: &str, max: u32) -> String {
    let of_role = actions.iter().filter(|a| a.role() == role);
    let (mut serving, mut replaced) = (0u32, 0u32);
    for a in of_role {
        match a {
            Action::Keep { .. } => serving += 1,
            Action::Replace { old, .. } if old.running => {
                serving += 1;
                replaced += 1;
            }
            _ => {}
        }
    }
    let left = serving - replaced.min(max);
    if left == 0 {
        "down for one boot + checks".to_owned()
    } else {
        format!("none: {left} of {serving} serving")
    }
}

fn why_differs(want: &Desired, vm: &Existing) -> Option<String> {
    let version = vm.version.as_deref().unwrap_or("?");
    if version != want.version {
        return Some(format!("version {version} -> {}", want.version));
    }
    if let (Some(want_node), Some(node)) = (&want.node, &vm.node)
        && want_node != node
    {
        return Some(format!("node {node} -> {want_node}"));
    }
    match &vm.tag {
        Some(tag) if tag.seed == want.seed => None,
        _ => Some("cloud-init data changed".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(role: &str, slot: u32, version: &str) -> Desired {
        Desired {
            role: role.into(),
            slot,
            hostname: format!("lab-{role}-{slot}"),
            version: version.into(),
            seed: "aa".into(),
            node: None,
            bootstrap: false,
        }
    }

    fn vm(role: &str, slot: u32, version: &str) -> Existing {
        let name = format!("lab-{role}-{slot}");
        Existing {
            name: name.clone(),
            handle: VmHandle {
                name: name.clone(),
                id: name,
            },
            role: role.into(),
            version: Some(version.into()),
            tag: DeployTag::parse(&format!("0a0b0c0d.{slot}.aa")),
            node: None,
            running: true,
            created: None,
        }
    }

    fn costs(plan: &Plan) -> Vec<String> {
        plan.actions
            .iter()
            .map(|a| match a {
                Action::Create { want } => format!("create {}", want.hostname),
                Action::Replace {
                    want, unavailable, ..
                } => format!("replace {}: {unavailable}", want.hostname),
                Action::Keep { want, .. } => format!("keep {}", want.hostname),
                Action::Start { want, .. } => format!("start {}", want.hostname),
                Action::Destroy { vm } => format!("destroy {}", vm.name),
            })
            .collect()
    }

    #[test]
    fn steps_go_wave_by_wave_and_replacements_say_what_they_cost() {
        let desired = [
            want("ui", 1, "2"),
            want("ui", 2, "2"),
            want("db", 1, "2"),
            want("cache", 1, "1"),
        ];
        let existing = [
            vm("ui", 1, "1"),
            vm("ui", 2, "1"),
            vm("db", 1, "1"),
            vm("cache", 1, "1"),
            vm("old", 1, "1"),
        ];
        let rules = Rules {
            waves: vec![vec!["cache".into(), "db".into()], vec!["ui".into()]],
            roles: BTreeMap::new(),
        };
        let plan = compute_with(&desired, &existing, &rules);
        assert_eq!(
            costs(&plan),
            [
                "destroy lab-old-1",
                "replace lab-db-1: down for one boot + checks",
                "keep lab-cache-1",
                "replace lab-ui-1: none: 1 of 2 serving",
                "replace lab-ui-2: none: 1 of 2 serving",
            ]
        );
        assert_eq!(plan.wave_of("ui"), Some(1));
        assert_eq!(plan.max_unavailable("ui"), 1);
        let all_at_once = Rules {
            roles: [("ui".to_string(), (Replace::StopFirst, 2))].into(),
            ..rules
        };
        let plan = compute_with(&desired, &existing, &all_at_once);
        assert_eq!(
            costs(&plan)[3],
            "replace lab-ui-1: down for one boot + checks"
        );
        assert_eq!(plan.max_unavailable("ui"), 2);
    }

    #[test]
    fn a_stopped_vm_as_wanted_is_started_and_does_not_count_as_serving() {
        let stopped = Existing {
            running: false,
            ..vm("ui", 2, "2")
        };
        let plan = compute(
            &[want("ui", 1, "2"), want("ui", 2, "2"), want("ui", 3, "2")],
            &[vm("ui", 1, "1"), stopped.clone(), vm("ui", 3, "2")],
        );
        assert_eq!(
            costs(&plan),
            [
                "replace lab-ui-1: none: 1 of 2 serving",
                "start lab-ui-2",
                "keep lab-ui-3",
            ]
        );
        assert!(!plan.is_noop());
        let only_stopped = compute(&[want("ui", 2, "2")], &[stopped]);
        assert!(!only_stopped.is_noop(), "a stopped VM is work to do");
    }

    #[test]
    fn a_role_with_a_kept_vm_keeps_serving_while_its_other_slot_is_replaced() {
        let plan = compute(
            &[want("ui", 1, "2"), want("ui", 2, "1"), want("ui", 3, "2")],
            &[vm("ui", 1, "1"), vm("ui", 2, "1")],
        );
        assert_eq!(
            costs(&plan),
            [
                "replace lab-ui-1: none: 1 of 2 serving",
                "keep lab-ui-2",
                "create lab-ui-3",
            ]
        );
        assert_eq!(plan.waves, [["ui"]]);
    }

    fn bootstraps(plan: &Plan) -> Vec<&str> {
        plan.actions
            .iter()
            .filter_map(|a| match a {
                Action::Create { want } | Action::Replace { want, .. } if want.bootstrap => {
                    Some(want.hostname.as_str())
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn the_lowest_new_slot_bootstraps_a_role_that_runs_nowhere() {
        let desired = [want("db", 1, "1"), want("db", 2, "1"), want("db", 3, "1")];
        // A first deploy: slot 1 bootstraps, the others join.
        let mut plan = compute(&desired, &[]);
        mark_bootstrap(&mut plan, &[], &["db"]);
        assert_eq!(bootstraps(&plan), ["lab-db-1"]);
        // Slot 1 still runs: the new slots join it.
        let existing = [vm("db", 1, "1")];
        let mut plan = compute(&desired, &existing);
        mark_bootstrap(&mut plan, &existing, &["db"]);
        assert!(bootstraps(&plan).is_empty());
        // Only a stopped VM left in slot 2: the lowest new slot starts anew.
        let stopped = [Existing {
            running: false,
            ..vm("db", 2, "0")
        }];
        let mut plan = compute(&desired, &stopped);
        mark_bootstrap(&mut plan, &stopped, &["db"]);
        assert_eq!(bootstraps(&plan), ["lab-db-1"]);
        // A role without bootstrap commands is never marked.
        let mut plan = compute(&desired, &[]);
        mark_bootstrap(&mut plan, &[], &[]);
        assert!(bootstraps(&plan).is_empty());
    }

    #[test]
    fn round_robin_is_stable_and_wraps() {
        let nodes = ["pve1".to_string(), "pve2".to_string()];
        let placed: Vec<_> = (0..5).map(|i| node_for(&nodes, i).unwrap()).collect();
        assert_eq!(placed, ["pve1", "pve2", "pve1", "pve2", "pve1"]);
        assert_eq!(node_for(&nodes[..1], 7).as_deref(), Some("pve1"));
        assert_eq!(node_for(&[], 0), None);
    }

    #[test]
    fn a_vm_on_another_node_is_replaced_and_an_unplaced_one_is_not() {
        let want = Desired {
            role: "ui".into(),
            slot: 2,
            hostname: "lab-ui-2".into(),
            version: "1".into(),
            seed: "aa".into(),
            node: Some("pve2".into()),
            bootstrap: false,
        };
        let vm = Existing {
            name: "lab-ui-2".into(),
            handle: VmHandle {
                name: "lab-ui-2".into(),
                id: "pve1/201".into(),
            },
            role: "ui".into(),
            version: Some("1".into()),
            tag: DeployTag::parse("0a0b0c0d.2.aa"),
            node: Some("pve1".into()),
            running: true,
            created: None,
        };
        assert_eq!(
            why_differs(&want, &vm).as_deref(),
            Some("node pve1 -> pve2")
        );
        let here = Existing {
            node: Some("pve2".into()),
            ..vm.clone()
        };
        assert_eq!(why_differs(&want, &here), None);
        let unplaced = Desired { node: None, ..want };
        assert_eq!(why_differs(&unplaced, &vm), None);
    }
}
