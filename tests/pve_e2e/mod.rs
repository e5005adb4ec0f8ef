//! End-to-end bakes on the Proxmox target through the `oxbake` binary:
//! the PVE simulator's VMs are QEMU guests (support::pve_sim::qemu_guests),
//! reached through the `ssh_forward` its target section carries. Each test
//! holds `vm_lock()` and has its own project copy (its registry is not the
//! local fixture's).
#![cfg(feature = "e2e")]

mod chain;
mod deploy;

use std::path::PathBuf;

use oxbake::registry::{Artifact, ImageRecord, Registry};
use oxbake::target::proxmox::parse_description;

use crate::support::project::{Run, TestProject};
use crate::support::pve_sim::qemu_guests::QemuGuests;
use crate::support::pve_sim::{BASE_VMID, NODE, PveSim};

/// A root role whose one step writes a marker file and whose first check
/// reads it back; `more` follows (further checks, a `[deploy]` table).
fn marker_role(role: &str, description: &str, more: &str) -> String {
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

/// A fresh copy of the project in the test target folder, with the
/// simulator as target `sim`.
fn project(sim: &PveSim, name: &str) -> TestProject {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let project = TestProject::copy_to(&dir);
    sim.add_to(&project, "sim");
    project
}

/// Fails with what oxbake printed and the tail of every guest's console.
fn assert_ok(run: &Run, guests: &QemuGuests, what: &str) {
    if run.code() == 0 {
        return;
    }
    let mut consoles = String::new();
    for vmid in guests.disks() {
        let log = guests.console(vmid);
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        consoles.push_str(&format!("--- console of VM {vmid}:\n{}\n", tail.join("\n")));
    }
    panic!("{what}: exit {}\n{}\n{consoles}", run.code(), run.stderr());
}

/// The template of `record` exists on the simulator, tagged and described
/// as the record says (`parent`: the parent image's id, if any). Returns
/// its VMID.
fn assert_template(sim: &PveSim, record: &ImageRecord, parent: Option<String>) -> u32 {
    assert_eq!(record.target, "sim");
    let Artifact::Proxmox {
        node,
        vmid,
        template: name,
    } = &record.artifact
    else {
        panic!(
            "{}: not a proxmox artifact: {:?}",
            record.id(),
            record.artifact
        );
    };
    assert_eq!(node, NODE);
    let vm = sim.vm(*vmid).expect("the template VM exists");
    assert!(vm.is_template(), "{} is a template", record.id());
    assert_eq!(&vm.name(), name);
    assert_eq!(name, &format!("{}-{}", record.role, record.version));
    let tags: Vec<&str> = vm.config["tags"].split(';').collect();
    let role_tag = format!("role-{}", record.role);
    assert!(
        tags.contains(&"oxbake") && tags.contains(&role_tag.as_str()),
        "{tags:?}"
    );
    let doc = parse_description(&vm.config["description"]).expect("JSON description");
    let meta = &doc["oxbake"]["template"];
    assert_eq!(meta["version"], record.version.to_string(), "{doc}");
    assert_eq!(meta["inputs"], record.inputs.to_string(), "{doc}");
    assert_eq!(meta["parent"].as_str().map(str::to_string), parent, "{doc}");
    *vmid
}

/// Only the base template and `templates` remain: no builder VM, no seed
/// ISO, no QEMU process, no disk but the templates'.
fn assert_only_templates(sim: &PveSim, guests: &QemuGuests, templates: &[u32]) {
    let mut want = templates.to_vec();
    want.sort();
    let mut all = want.clone();
    all.push(BASE_VMID);
    all.sort();
    assert_eq!(sim.vmids(), all, "no builder VM remains");
    let volumes: Vec<String> = sim.volumes().into_iter().map(|(v, _)| v).collect();
    assert!(volumes.is_empty(), "seed ISOs left: {volumes:?}");
    guests.sweep();
    assert_eq!(guests.disks(), want, "only template disks remain");
    let running: Vec<u32> = want
        .iter()
        .copied()
        .filter(|id| guests.pid(*id).is_some())
        .collect();
    assert!(running.is_empty(), "templates still running: {running:?}");
}

fn latest(project: &TestProject, role: &str) -> ImageRecord {
    Registry::for_project(project.root())
        .latest(role, true)
        .unwrap()
        .unwrap_or_else(|| panic!("no `{role}` record"))
}
