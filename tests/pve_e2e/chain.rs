//! A bake through `oxbake build --target sim` on the QEMU-backed simulator,
//! sized small: a root role (cloned from the simulator's base template,
//! one step, one check) and a child of it, baked by one command. Both
//! templates exist with their tags and JSON description, the child names
//! its parent, the registry records name them (node, VMID, name), no
//! builder VM, seed ISO or QEMU process remains, and `oxbake ls --target
//! sim` finds registry and cluster in sync, then names what differs once
//! they are not. (The shipped roles' recipes bake in the local fixture; the
//! pipeline is the same for both targets.)

use std::time::Instant;

use crate::support::e2e::vm_lock;
use crate::support::figures::figure;
use crate::support::project::TestProject;
use crate::support::pve_sim::{PveSim, SimVm};
use crate::support::qemu::Reaper;

use super::{assert_ok, assert_only_templates, assert_template, latest, marker_role, project};

/// A child of `mini`: its step and check need the parent's marker.
const CHILD: &str = r#"role = "minichild"
description = "test role: a child of mini"
from = "mini"

[[step]]
name = "copy the parent's marker"
kind = "shell"
run = "cp /etc/oxbake-sim-marker /etc/oxbake-sim-child"

[[check]]
name = "the parent's marker came along"
run = "cat /etc/oxbake-sim-child"
stdout_contains = ["baked-on-sim"]
"#;

#[test]
fn a_role_and_its_child_bake_on_the_simulator_and_leave_only_their_templates() {
    let _vms = vm_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sim, guests) = runtime.block_on(PveSim::start_qemu_backed());
    let _reaper = Reaper(guests.dir().to_path_buf());
    let project = project(&sim, "pve-chain-project");
    let recipe = marker_role("mini", "test role: one step, one check", "");
    project.write("recipes/mini.toml", &recipe);
    project.write("recipes/minichild.toml", CHILD);

    let started = Instant::now();
    let run = PveSim::oxbake(
        &project,
        &["build", "minichild", "--target", "sim", "--json"],
    );
    figure(format!(
        "pve e2e: a root role and its child baked in {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    assert_ok(&run, &guests, "oxbake build minichild --target sim");
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["target"], "sim", "{report}");
    let built: Vec<&str> = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "built")
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["mini", "minichild"], "{report}");

    let root = latest(&project, "mini");
    let child = latest(&project, "minichild");
    assert_eq!(report["roles"][0]["version"], root.version.to_string());
    assert_eq!(child.parent.to_string(), root.id());
    let root_vmid = assert_template(&sim, &root, None);
    let child_vmid = assert_template(&sim, &child, Some(root.id()));
    assert_only_templates(&sim, &guests, &[root_vmid, child_vmid]);

    let ls = PveSim::oxbake(&project, &["ls", "--target", "sim", "--json"]);
    assert_eq!(ls.code(), 0, "{}", ls.stderr());
    let doc: serde_json::Value = serde_json::from_str(&ls.stdout()).unwrap();
    assert_eq!(doc["target"]["in_sync"], true, "{doc}");

    ls_names_the_drift(&sim, &project, root_vmid, &root.id());
}

/// The root template removed behind oxbake's back and a stray oxbake
/// template added: `ls --target` names both, in text and JSON.
fn ls_names_the_drift(sim: &PveSim, project: &TestProject, root_vmid: u32, root_id: &str) {
    let mut stray: SimVm = sim.vm(root_vmid).unwrap();
    stray
        .config
        .insert("name".into(), "stray-2026.01.01.1".into());
    sim.insert_vm(298, stray);
    sim.remove_vm(root_vmid);
    let ls = PveSim::oxbake(project, &["ls", "--target", "sim"]);
    assert_eq!(ls.code(), 0, "{}", ls.stderr());
    let text = ls.stdout();
    assert!(
        text.contains(&format!("missing on the target: {root_id}")),
        "{text}"
    );
    assert!(
        text.contains("not in the registry: template pve1/298 (stray-2026.01.01.1)"),
        "{text}"
    );
    let ls = PveSim::oxbake(project, &["ls", "--target", "sim", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&ls.stdout()).unwrap();
    assert_eq!(doc["target"]["in_sync"], false, "{doc}");
    assert_eq!(doc["target"]["missing_on_target"][0]["image"], root_id);
    assert_eq!(
        doc["target"]["not_in_registry"][0]["name"],
        "stray-2026.01.01.1"
    );
}
