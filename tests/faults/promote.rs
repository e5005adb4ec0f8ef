//! `oxbake promote` with a fault at each step of its smoke test before a
//! guest is reached, on the in-memory Proxmox simulator (no boot): the
//! smoke clone's task, its config (lock timeout), the guest agent, SSH,
//! the API itself (503s, refused connections, no answer) and the
//! operator's signals. After each: the contract's exit code, no smoke VM
//! or seed ISO left, the template's `ch-` tags unchanged, images/ (records
//! and channels.toml) byte for byte the same. The rows with a running
//! guest are in `guest_rows` (feature `e2e`).

use std::time::Duration;

use super::leftovers::RegistrySnapshot;
use super::runner::Action;
use super::sim_cases::{Case, Steps, api_cases};
use super::sim_project::{
    SimProject, TEMPLATE_VMID, black_hole, full_state_disk, record_template, refused,
    sim_leftovers, template,
};
use super::table::{Matrix, Row, row};

const SMOKE: &str = "booting a fresh clone";

fn cases() -> Vec<Case> {
    api_cases(&Steps {
        create: "smoke: create the VM",
        boot: "smoke: boot",
        list: "smoke: create the VM",
        list_fails: None,
        cannot_create: "cannot create the VM",
        removed: "removed VM",
        trigger: SMOKE,
    })
}

fn run_case(runtime: &tokio::runtime::Runtime, p: &SimProject, case: &Case) -> Row {
    let sim = p.sim(runtime, case.boot_timeout);
    sim.faults(case.set);
    let before = RegistrySnapshot::take(p.project.root());
    let version = p.version.to_string();
    let args = ["promote", "base", &version, "--to", "dev"];
    let out = case.arm(p.run(&args)).run();
    case.judge(&out, sim_leftovers(&sim, &[]), &before, p.project.root())
}

/// The API refuses connections, then never answers (ended by SIGTERM).
fn unreachable_api(runtime: &tokio::runtime::Runtime, p: &SimProject, m: &mut Matrix) {
    let sim = p.sim(runtime, 5);
    let version = p.version.to_string();
    let args = ["promote", "base", &version, "--to", "dev"];
    p.configure(refused(sim.cli_settings()), 5);
    let before = RegistrySnapshot::take(p.project.root());
    let out = p.run(&args).run();
    m.push(row(
        "API refuses the connection",
        "smoke: create the VM",
        1,
        &["Connection refused"],
        &out,
        sim_leftovers(&sim, &[]),
        &before,
        p.project.root(),
    ));
    p.configure(black_hole(sim.cli_settings()), 5);
    let out = p
        .run(&args)
        .on(SMOKE, Action::Signal("TERM", Duration::from_secs(2)))
        .run();
    m.push(row(
        "API never answers, then SIGTERM",
        "smoke: create the VM",
        130,
        &["interrupted", "cannot list VMs to clean up"],
        &out,
        sim_leftovers(&sim, &[]),
        &before,
        p.project.root(),
    ));
}

/// The state folder's disk is full before the promotion starts.
fn state_disk_full(runtime: &tokio::runtime::Runtime, p: &SimProject, m: &mut Matrix) {
    let sim = p.sim(runtime, 5);
    let version = p.version.to_string();
    let args = ["promote", "base", &version, "--to", "dev"];
    let before = RegistrySnapshot::take(p.project.root());
    let full = full_state_disk(p);
    let out = p.run(&args).run();
    drop(full);
    m.push(row(
        "state disk full",
        "take the role's lock",
        1,
        &["No space left on device"],
        &out,
        sim_leftovers(&sim, &[]),
        &before,
        p.project.root(),
    ));
}

#[test]
fn fault_matrix_of_promote_on_the_simulator() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let p = SimProject::new();
    let mut m = Matrix::new("oxbake promote on the Proxmox simulator (no guest)");
    for case in cases() {
        m.push(run_case(&runtime, &p, &case));
    }
    unreachable_api(&runtime, &p, &mut m);
    state_disk_full(&runtime, &p, &mut m);
    m.finish();
}

/// The channel moves in images/channels.toml (the record) before the
/// templates' `ch-` tags follow. When the tag write fails (after a
/// rollback here: no guest needed; it works on the target the channel's
/// image was built on), the error says that the channel already moved and
/// how to set the tags; that promote then sets them on every template the
/// channel pointed at, without a smoke test and without a VM.
#[test]
fn a_failed_tag_write_says_the_channel_moved_and_promote_sets_the_tags() {
    use oxbake::registry::Registry;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let p = SimProject::new();
    let sim = p.sim(&runtime, 5);
    let newer_vmid = TEMPLATE_VMID + 1;
    sim.insert_vm(newer_vmid, template());
    let registry = Registry::for_project(p.project.root());
    let newer = record_template(&registry, 'd', newer_vmid);
    for v in [&p.version, &newer] {
        registry
            .set_channel("base", "dev", v, "faults", "setup")
            .unwrap();
    }
    let vms_before = sim.vmids();
    sim.faults(|f| f.lock_timeout_next_config = true);
    let args = [
        "rollback",
        "base",
        "--channel",
        "dev",
        "--reason",
        "bad",
        "--target",
        "sim",
    ];
    let out = p.run(&args).run();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let older = p.version.to_string();
    for says in [
        format!("already points at `{older}` in images/channels.toml"),
        format!("run `oxbake promote base {older} --to dev`"),
        "got timeout".to_owned(),
    ] {
        assert!(out.stderr.contains(&says), "{says:?} in {}", out.stderr);
    }
    let dev = registry.channels().unwrap().get("dev", "base");
    assert_eq!(dev, Some(p.version), "the rollback is recorded");
    let out = p.run(&["promote", "base", &older, "--to", "dev"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains(SMOKE), "no smoke test: {}", out.stderr);
    let tags = |vmid| sim.vm(vmid).unwrap().config["tags"].clone();
    assert_eq!(tags(TEMPLATE_VMID), "ch-dev;kind-template;oxbake;role-base");
    assert_eq!(tags(newer_vmid), "kind-template;oxbake;role-base");
    assert_eq!(sim.vmids(), vms_before, "no VM made");
}
