//! `oxbake deploy ENV` with a fault at each step before a guest is reached,
//! on the in-memory Proxmox simulator (no boot). The environment already
//! runs an older version, so every deploy is a rolling replacement: the
//! new VM's clone task, its config (lock timeout), the guest agent, SSH,
//! the API itself (503s, refused connections, no answer), the operator's
//! signals and a full state disk. After each: the contract's exit code,
//! the new VM removed, the earlier VM running again with its config
//! unchanged (stop-first stopped it), no seed ISO, images/ byte for byte
//! the same. With no guest behind it the earlier VM cannot be proven
//! healthy, so the errors also say it is not back in service, with the
//! new VM's failure in full. Rows with a running guest are in
//! `guest_rows` (feature `e2e`).

use std::time::Duration;

use oxbake::progress::Progress;
use oxbake::registry::Registry;
use oxbake::target::{Artifact, Source, TemplateRef};

use super::earlier;
use super::leftovers::RegistrySnapshot;
use super::runner::Action;
use super::sim_cases::{Case, Steps, api_cases};
use super::sim_project::{
    SimProject, TEMPLATE_VMID, black_hole, full_state_disk, refused, sim_leftovers,
};
use super::table::{Matrix, Row, row};
use crate::support::pve_sim::{NODE, PveSim, SimVm};

const DEPLOY: &[&str] = &["deploy", "fx"];
const CREATING: &str = "creating vm `fx-base-1-";

fn cases() -> Vec<Case> {
    api_cases(&Steps {
        create: "create the new VM",
        boot: "boot the new VM",
        list: "list the environment",
        list_fails: Some("cannot list VMs"),
        cannot_create: "cannot create",
        removed: "removed vm",
        trigger: CREATING,
    })
}

/// The environment's earlier VM, made and started through oxbake's own
/// Proxmox code: `fx-base-1` running an older version.
fn earlier_vm(runtime: &tokio::runtime::Runtime, sim: &PveSim) -> (u32, SimVm) {
    let target = sim.target(Progress::silent());
    let template = TemplateRef {
        name: "base-template".into(),
        artifact: Artifact::Proxmox {
            node: NODE.into(),
            vmid: TEMPLATE_VMID,
            name: "base-template".into(),
        },
    };
    let vm = earlier::start(runtime, &target, Source::Template(template));
    // The handle's id is `NODE/VMID`.
    let vmid = vm.id.rsplit('/').next().and_then(|id| id.parse().ok());
    let vmid: u32 = vmid.expect("a vmid");
    (vmid, sim.vm(vmid).expect("the earlier VM"))
}

/// Leftovers, and the earlier VM if it changed, stopped or went.
fn after(sim: &PveSim, (vmid, was): &(u32, SimVm)) -> Vec<String> {
    let mut out = sim_leftovers(sim, &[*vmid]);
    match sim.vm(*vmid) {
        None => out.push(format!("earlier vm {vmid} removed")),
        Some(now) if !now.running => out.push(format!("earlier vm {vmid} stopped")),
        Some(now) if now.config != was.config => {
            out.push(format!("earlier vm {vmid} changed: {:?}", now.config));
        }
        Some(_) => {}
    }
    out
}

fn run_case(runtime: &tokio::runtime::Runtime, p: &SimProject, case: &Case) -> Row {
    let sim = p.sim(runtime, case.boot_timeout);
    let earlier = earlier_vm(runtime, &sim);
    sim.faults(case.set);
    let before = RegistrySnapshot::take(p.project.root());
    let out = case.arm(p.run(DEPLOY)).run();
    case.judge(&out, after(&sim, &earlier), &before, p.project.root())
}

/// The API refuses connections; never answers (SIGTERM); the state disk
/// is full.
fn more(runtime: &tokio::runtime::Runtime, p: &SimProject, m: &mut Matrix) {
    let sim = p.sim(runtime, 5);
    let earlier = earlier_vm(runtime, &sim);
    let root = p.project.root();
    let before = RegistrySnapshot::take(root);
    p.configure(refused(sim.cli_settings()), 5);
    let out = p.run(DEPLOY).run();
    let says: &[&str] = &["Connection refused", "cannot list VMs"];
    let left = after(&sim, &earlier);
    m.push(row(
        "API refuses the connection",
        "list the environment",
        1,
        says,
        &out,
        left,
        &before,
        root,
    ));
    p.configure(black_hole(sim.cli_settings()), 5);
    let term = Action::Signal("TERM", Duration::ZERO);
    let out = p.run(DEPLOY).after(Duration::from_secs(3), term).run();
    let left = after(&sim, &earlier);
    let says: &[&str] = &["interrupted"];
    let fault = "API never answers, then SIGTERM";
    m.push(row(
        fault,
        "list the environment",
        130,
        says,
        &out,
        left,
        &before,
        root,
    ));
    p.configure(sim.cli_settings(), 5);
    let full = full_state_disk(p);
    let out = p.run(DEPLOY).run();
    drop(full);
    let says: &[&str] = &["No space left on device"];
    let left = after(&sim, &earlier);
    m.push(row(
        "state disk full",
        "the environment's key",
        1,
        says,
        &out,
        left,
        &before,
        root,
    ));
}

#[test]
fn fault_matrix_of_deploy_on_the_simulator() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let p = SimProject::new();
    Registry::for_project(p.project.root())
        .set_channel("base", "dev", &p.version, "faults", "deploy rows")
        .unwrap();
    let mut m = Matrix::new("oxbake deploy on the Proxmox simulator (no guest)");
    for case in cases() {
        m.push(run_case(&runtime, &p, &case));
    }
    more(&runtime, &p, &mut m);
    m.finish();
}
