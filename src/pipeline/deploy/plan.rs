//! What a deploy does, computed from what the environment wants and what the
//! target runs: per slot (role, index) create, replace, keep; every other
//! VM of the environment is destroyed. Pure: no target, no registry.

use serde::Serialize;

use crate::target::{ManagedVm, VmHandle, VmKind};

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
    },
    Keep {
        want: Desired,
        vm: Existing,
    },
    Destroy {
        vm: Existing,
    },
}

/// The steps of one deploy, in the order they run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub actions: Vec<Action>,
}

impl Plan {
    /// Nothing to create, replace or destroy.
    pub fn is_noop(&self) -> bool {
        self.actions
            .iter()
            .all(|a| matches!(a, Action::Keep { .. }))
    }
}

/// Round robin placement: the role's VM `index` (0-based) goes to
/// `nodes[index % len]`; no nodes, no placement. Stable: a VM keeps its
/// node as long as the list does.
pub fn node_for(nodes: &[String], index: usize) -> Option<String> {
    (!nodes.is_empty()).then(|| nodes[index % nodes.len()].clone())
}

/// Matches each wanted VM with the environment's VM in the same slot.
pub fn compute(desired: &[Desired], existing: &[Existing]) -> Plan {
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
                None => Action::Keep {
                    want,
                    vm: vm.clone(),
                },
                Some(why) => Action::Replace {
                    want,
                    old: vm.clone(),
                    why,
                },
            },
        });
    }
    actions.extend(
        left.into_iter()
            .map(|vm| Action::Destroy { vm: vm.clone() }),
    );
    Plan { actions }
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
