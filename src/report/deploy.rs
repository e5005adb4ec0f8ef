//! `oxbake deploy --plan`'s table: one row per VM and what happens to it,
//! in which wave, and what a replacement costs its role.

use super::table::table;
use crate::config::Replace;
use crate::pipeline::deploy::plan::{Action, Desired, Plan};

/// The plan as a table, one row per VM.
pub fn plan(plan: &Plan) -> String {
    let rows: Vec<Vec<String>> = plan
        .actions
        .iter()
        .map(|a| {
            let mut row = match a {
                Action::Create { want } if want.bootstrap => {
                    row("create", want, "-", "bootstraps the role")
                }
                Action::Create { want } => row("create", want, "-", ""),
                Action::Replace {
                    want,
                    old,
                    why,
                    strategy,
                    unavailable,
                } => {
                    let why = if want.bootstrap {
                        format!("{why}; bootstraps the role")
                    } else {
                        why.clone()
                    };
                    let mut r = row("replace", want, &old.name, &why);
                    r.push(strategy_name(*strategy).into());
                    r.push(unavailable.clone());
                    r
                }
                Action::Keep { want, vm } => row("keep", want, &vm.name, ""),
                Action::Start { want, vm } => row("start", want, &vm.name, "stopped"),
                Action::Destroy { vm } => vec![
                    "destroy".into(),
                    vm.role.clone(),
                    vm.name.clone(),
                    vm.version.clone().unwrap_or_default(),
                    vm.node.clone().unwrap_or_else(|| "-".into()),
                    String::new(),
                ],
            };
            row.resize(8, "-".into());
            let wave = match (a, plan.wave_of(a.role())) {
                (Action::Destroy { .. }, _) => "first".to_owned(),
                (_, None) => "last".to_owned(),
                (_, Some(w)) => (w + 1).to_string(),
            };
            row.insert(0, wave);
            row
        })
        .collect();
    table(
        &[
            "wave",
            "action",
            "role",
            "vm",
            "version",
            "node",
            "why",
            "strategy",
            "unavailable",
        ],
        &rows,
    )
}

fn strategy_name(s: Replace) -> &'static str {
    match s {
        Replace::StopFirst => "stop-first",
    }
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
