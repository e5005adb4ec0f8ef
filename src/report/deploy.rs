//! `oxbake deploy --plan`'s table: one row per VM and what happens to it.

use super::table::table;
use crate::pipeline::deploy::plan::{Action, Desired, Plan};

/// The plan as a table, one row per VM.
pub fn plan(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .actions
        .iter()
        .map(|a| match a {
            Action::Create { want } => row("create", want, "-", ""),
            Action::Replace { want, old, why } => row("replace", want, &old.name, why),
            Action::Keep { want, vm } => row("keep", want, &vm.name, ""),
            Action::Destroy { vm } => vec![
                "destroy".into(),
                vm.role.clone(),
                vm.name.clone(),
                vm.version.clone().unwrap_or_default(),
                vm.node.clone().unwrap_or_else(|| "-".into()),
                String::new(),
            ],
        })
        .collect();
    table(&["action", "role", "vm", "version", "node", "why"], &rows)
}

fn row(action: &str, want: &Desired, vm: &str, why: &str) -> Vec<String> {
    let vm = if vm == "-" {
        want.hostname.as_str()
    } else {
        vm
    };
    vec![
        action.into(),
        want.role.clone(),
        vm.into(),
        want.version.clone(),
        want.node.clone().unwrap_or_else(|| "-".into()),
        why.into(),
    ]
}
