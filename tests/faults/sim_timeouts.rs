//! The simulator matrix's rows for an API that is slow to answer, with a
//! short `request_timeout`: a clone POST carried out but answered late or
//! never (the VM must still be found and removed), a GET that never gets
//! an answer (retried, then the build fails), and a second signal while
//! the clean-up of a first one runs (the clean-up must finish).

use std::collections::BTreeMap;
use std::time::Duration;

use super::leftovers::RegistrySnapshot;
use super::runner::{Action, signal};
use super::sim::{BUILD, build, sim_leftovers, use_sim};
use super::table::{Matrix, Row, row};
use crate::support::project::TestProject;
use crate::support::pve_sim::{BASE_VMID, HeldAnswer, NODE, PveSim, SignalOn, SimVm, TOKEN_SECRET};

/// Seconds each API request may wait in these rows.
const REQUEST_TIMEOUT: u64 = 2;

/// A fresh simulator as the project's `sim` target, with the short
/// request timeout.
fn sim_target(runtime: &tokio::runtime::Runtime, project: &TestProject) -> PveSim {
    sim_target_booting(runtime, project, 60)
}

/// As [`sim_target`], with `boot_timeout` seconds for the boot wait.
fn sim_target_booting(
    runtime: &tokio::runtime::Runtime,
    project: &TestProject,
    boot_timeout: u64,
) -> PveSim {
    let sim = runtime.block_on(PveSim::start());
    use_sim(project, &sim.endpoint(), &sim.fingerprint(), boot_timeout);
    // The sim target is the file's last section.
    let config = project.read("oxbake.toml");
    project.write(
        "oxbake.toml",
        &format!("{config}request_timeout = {REQUEST_TIMEOUT}\n"),
    );
    sim
}

/// Adds what the row must show besides the table's checks.
fn also(mut r: Row, problems: Vec<String>) -> Row {
    if !problems.is_empty() {
        r.unclear.extend(problems);
    }
    r
}

/// The clone is carried out, its answer comes after `after` (`None`:
/// never) while oxbake waits only `REQUEST_TIMEOUT`.
fn unanswered_clone(
    runtime: &tokio::runtime::Runtime,
    project: &TestProject,
    fault: &str,
    after: Option<Duration>,
) -> Row {
    let sim = sim_target(runtime, project);
    sim.faults(|f| {
        f.held_answers.push(HeldAnswer {
            method: "POST",
            suffix: "/clone",
            after,
        })
    });
    let before = RegistrySnapshot::take(project.root());
    let out = build(project.root(), BUILD).run();
    let says = [
        format!("proxmox `{}`", sim.endpoint()),
        format!("POST /nodes/pve1/qemu/9000/clone: no answer within {REQUEST_TIMEOUT}s"),
        "proxmox made vm 200 after all; removed it".to_owned(),
    ];
    let says: Vec<&str> = says.iter().map(String::as_str).collect();
    let r = row(
        fault,
        "create the builder VM",
        1,
        &says,
        &out,
        sim_leftovers(&sim),
        &before,
        project.root(),
    );
    let mut problems = Vec::new();
    if out.stderr.contains(TOKEN_SECRET) {
        problems.push("stderr shows the token secret".to_owned());
    }
    if sim.count("POST", "/clone") != 1 {
        problems.push(format!(
            "{} clone POSTs, want 1",
            sim.count("POST", "/clone")
        ));
    }
    also(r, problems)
}

/// Every agent GET is left without an answer: retried, then exit 1.
fn unanswered_get(runtime: &tokio::runtime::Runtime, project: &TestProject) -> Row {
    let sim = sim_target(runtime, project);
    let path = "/agent/network-get-interfaces";
    sim.faults(|f| {
        f.held_answers.push(HeldAnswer {
            method: "GET",
            suffix: path,
            after: None,
        })
    });
    let before = RegistrySnapshot::take(project.root());
    let out = build(project.root(), BUILD).run();
    let says =
        format!("GET /nodes/pve1/qemu/200{path}: no answer within {REQUEST_TIMEOUT}s (4 attempts)");
    let r = row(
        "agent GET never answered",
        "boot and connect over SSH",
        1,
        &[&says, "removed builder VM"],
        &out,
        sim_leftovers(&sim),
        &before,
        project.root(),
    );
    let gets = sim.count("GET", path);
    let problems = if gets == 4 {
        Vec::new()
    } else {
        vec![format!("{gets} agent GETs, want 4 (one and 3 retries)")]
    };
    also(r, problems)
}

/// The API freezes (no TLS handshake, no answer) once the boot wait
/// begins, for a little longer than `boot_timeout`: the wait ends at its
/// limit with its own message, however the requests inside it hang, and
/// the clean-up runs once the API is back.
fn frozen_boot_wait(runtime: &tokio::runtime::Runtime, project: &TestProject) -> Row {
    const BOOT: u64 = 5;
    let sim = sim_target_booting(runtime, project, BOOT);
    let before = RegistrySnapshot::take(project.root());
    let freeze = |_pid: u32| sim.freeze_for(Duration::from_secs(BOOT + 1));
    let out = build(project.root(), BUILD)
        .on(
            "boot and connect over SSH",
            Action::Call(Duration::ZERO, Box::new(freeze)),
        )
        .run();
    let says = format!("an address from the guest agent: no answer within {BOOT}s (boot_timeout)");
    let r = row(
        "API frozen during the boot wait",
        "boot and connect over SSH",
        1,
        &[&says, "removed builder VM"],
        &out,
        sim_leftovers(&sim),
        &before,
        project.root(),
    );
    let mut problems = Vec::new();
    if out.stderr.contains("operation timed out") {
        problems.push("stderr shows a raw transport error".to_owned());
    }
    // Building up to the boot wait takes well under a minute on the
    // simulator; an unbounded wait (four 10 s connects per request) would not.
    if out.elapsed > Duration::from_secs(BOOT + 40) {
        problems.push(format!("took {:?}", out.elapsed));
    }
    also(r, problems)
}

/// SIGINT while waiting for the agent; SIGTERM when the clean-up's stop
/// request reaches the API. The clean-up must still finish: exit 130,
/// nothing left.
fn second_signal(runtime: &tokio::runtime::Runtime, project: &TestProject) -> Row {
    let sim = sim_target(runtime, project);
    sim.faults(|f| f.agent_never = true);
    let before = RegistrySnapshot::take(project.root());
    let arm = |pid: u32| {
        sim.faults(|f| {
            f.signal_on = Some(SignalOn {
                method: "POST",
                suffix: "/status/stop",
                pid,
                signal: "TERM",
                hold: Duration::from_millis(500),
            })
        });
        signal(pid, "INT");
    };
    let out = build(project.root(), BUILD)
        .on(
            "boot and connect over SSH",
            Action::Call(Duration::from_millis(1500), Box::new(arm)),
        )
        .run();
    let r = row(
        "SIGINT, then SIGTERM during the clean-up",
        "boot and connect over SSH",
        130,
        &[
            "interrupted again: the clean-up goes on",
            "removed builder VM",
        ],
        &out,
        sim_leftovers(&sim),
        &before,
        project.root(),
    );
    let mut armed = false;
    sim.faults(|f| armed = f.signal_on.is_some());
    let mut problems = Vec::new();
    if armed {
        problems.push("the clean-up never sent the stop request the SIGTERM waits for".to_owned());
    }
    let again = out.stderr.find("interrupted again");
    let removed = out.stderr.find("removed builder VM");
    if !matches!((again, removed), (Some(a), Some(r)) if a < r) {
        problems.push("the VM was not removed after the second signal".to_owned());
    }
    also(r, problems)
}

#[test]
fn fault_matrix_api_timeouts_on_the_simulator() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let project = TestProject::copy();
    let mut m = Matrix::new("oxbake build on the Proxmox simulator: slow API, second signal");
    m.push(unanswered_clone(
        &runtime,
        &project,
        "clone POST done, answered after 6s",
        Some(Duration::from_secs(6)),
    ));
    m.push(unanswered_clone(
        &runtime,
        &project,
        "clone POST done, never answered",
        None,
    ));
    m.push(unanswered_get(&runtime, &project));
    m.push(frozen_boot_wait(&runtime, &project));
    m.push(second_signal(&runtime, &project));
    m.finish();
}

/// A VM like the one a clone leaves when it appears only after oxbake
/// stopped looking: named and described by oxbake, but never tagged.
fn untagged(name: &str, description: Option<&str>) -> SimVm {
    let mut config = BTreeMap::from([
        ("name".to_owned(), name.to_owned()),
        ("tags".to_owned(), "base".to_owned()),
        ("scsi0".to_owned(), "local-lvm:vm-disk-0,size=4G".to_owned()),
    ]);
    if let Some(d) = description {
        config.insert("description".to_owned(), d.to_owned());
    }
    SimVm {
        node: NODE.into(),
        config,
        ..Default::default()
    }
}

/// `oxbake gc` finds a late clone by the labels in its description (in
/// oxbake's VMID range only), and leaves untagged VMs without them alone.
#[test]
fn gc_removes_a_late_clone_by_the_labels_in_its_description() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let project = TestProject::copy();
    let sim = sim_target(&runtime, &project);
    let labels = r#"{"oxbake":{"labels":{"run_id":"0badc0de","role":"base","kind":"builder"}}}"#;
    let described =
        format!("Managed by oxbake; do not edit the block below.\n\n```json\n{labels}\n```\n");
    sim.insert_vm(250, untagged("build-base-0badc0de", Some(&described)));
    sim.insert_vm(251, untagged("someone-elses", None));
    sim.insert_vm(120, untagged("outside-the-range", Some(&described)));
    let out = build(project.root(), &["gc", "--target", "sim"]).run();
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("removed `build-base-0badc0de`"),
        "{}",
        out.stderr
    );
    assert_eq!(sim.vmids(), [120, 251, BASE_VMID]);
}
