//! The smallest bake through `oxbake build --target sim`: a root role
//! (the simulator's base template), one shell step, one check.

use crate::support::e2e::vm_lock;
use crate::support::pve_sim::PveSim;
use crate::support::qemu::Reaper;

use super::{assert_ok, assert_only_templates, assert_template, latest, project};

/// A root role whose one step writes a marker file and whose first check
/// reads it back; `more` follows (further checks, a `[deploy]` table).
pub(super) fn marker_role(role: &str, description: &str, more: &str) -> String {
    format!(
        r#"role = "{role}"
description = "{description}"

[[step]]
name = "write a marker"
kind = "shell"
run = "echo baked-on-sim > /etc/oxbake-sim-marker"

[[check]]
name = "the marker is there"
run = "cat /etc/oxbake-sim-marker"
stdout_contains = ["baked-on-sim"]
{more}"#
    )
}

#[test]
fn a_minimal_role_bakes_through_the_cli_on_the_simulator() {
    let _vms = vm_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sim, guests) = runtime.block_on(PveSim::start_qemu_backed());
    let _reaper = Reaper(guests.dir().to_path_buf());
    let project = project(&sim, "pve-mini-project");
    let recipe = marker_role("mini", "test role: one step, one check", "");
    project.write("recipes/mini.toml", &recipe);

    let run = PveSim::oxbake(&project, &["build", "mini", "--target", "sim", "--json"]);
    assert_ok(&run, &guests, "oxbake build mini --target sim");
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["target"], "sim", "{report}");
    assert_eq!(report["roles"][0]["outcome"], "built", "{report}");

    let record = latest(&project, "mini");
    assert_eq!(report["roles"][0]["version"], record.version.to_string());
    let vmid = assert_template(&sim, &record, None);
    assert_only_templates(&sim, &guests, &[vmid]);
}
