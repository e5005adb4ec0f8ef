//! Issue 6's acceptance: `oxbake build ui --target sim` bakes base, then
//! ui, on the QEMU-backed simulator. Both templates exist with their tags
//! and JSON description, the registry records name them (node, VMID,
//! name), no builder VM, seed ISO or QEMU process remains, and
//! `oxbake ls --target sim` finds registry and cluster in sync, then names
//! what differs once they are not.

use std::time::Instant;

use crate::support::e2e::vm_lock;
use crate::support::figures::figure;
use crate::support::pve_sim::{PveSim, SimVm};
use crate::support::qemu::Reaper;

use super::{assert_ok, assert_only_templates, assert_template, latest, project};

#[test]
fn ui_bakes_on_the_simulator_and_leaves_only_its_templates() {
    let _vms = vm_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sim, guests) = runtime.block_on(PveSim::start_qemu_backed());
    let _reaper = Reaper(guests.dir().to_path_buf());
    let project = project(&sim, "pve-e2e-project");

    let started = Instant::now();
    let run = PveSim::oxbake(&project, &["build", "ui", "--target", "sim", "--json"]);
    figure(format!(
        "pve e2e: base + ui baked in {:.0}s",
        started.elapsed().as_secs_f64()
    ));
    assert_ok(&run, &guests, "oxbake build ui --target sim");
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let built: Vec<&str> = report["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["outcome"] == "built")
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert_eq!(built, ["base", "ui"], "{report}");

    let base = latest(&project, "base");
    let ui = latest(&project, "ui");
    assert_eq!(ui.parent.to_string(), base.id());
    let base_vmid = assert_template(&sim, &base, None);
    let ui_vmid = assert_template(&sim, &ui, Some(base.id()));
    assert_only_templates(&sim, &guests, &[base_vmid, ui_vmid]);

    let ls = PveSim::oxbake(&project, &["ls", "--target", "sim", "--json"]);
    assert_eq!(ls.code(), 0, "{}", ls.stderr());
    let doc: serde_json::Value = serde_json::from_str(&ls.stdout()).unwrap();
    assert_eq!(doc["target"]["in_sync"], true, "{doc}");

    ls_names_the_drift(&sim, &project, base_vmid, &base.id());
}

/// The base template removed behind oxbake's back and a stray oxbake
/// template added: `ls --target` names both, in text and JSON.
fn ls_names_the_drift(
    sim: &PveSim,
    project: &crate::support::project::TestProject,
    base_vmid: u32,
    base_id: &str,
) {
    let mut stray: SimVm = sim.vm(base_vmid).unwrap();
    stray
        .config
        .insert("name".into(), "stray-2026.01.01.1".into());
    sim.insert_vm(298, stray);
    sim.remove_vm(base_vmid);
    let ls = PveSim::oxbake(project, &["ls", "--target", "sim"]);
    assert_eq!(ls.code(), 0, "{}", ls.stderr());
    let text = ls.stdout();
    assert!(
        text.contains(&format!("missing on the target: {base_id}")),
        "{text}"
    );
    assert!(
        text.contains("not in the registry: template pve1/298 (stray-2026.01.01.1)"),
        "{text}"
    );
    let ls = PveSim::oxbake(project, &["ls", "--target", "sim", "--json"]);
    let doc: serde_json::Value = serde_json::from_str(&ls.stdout()).unwrap();
    assert_eq!(doc["target"]["in_sync"], false, "{doc}");
    assert_eq!(doc["target"]["missing_on_target"][0]["image"], base_id);
    assert_eq!(
        doc["target"]["not_in_registry"][0]["name"],
        "stray-2026.01.01.1"
    );
}
