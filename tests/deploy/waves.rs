//! Deploys in waves, in parallel, with stop-first replacement, in process
//! against the Proxmox simulator (see `support/deploy_sim.rs`): the order
//! of waves, the `--jobs` bound measured as clones in flight at once in
//! the simulator, a replacement that never runs beside the VM it replaces,
//! a failed one that brings the old VM back, and a failure or interrupt
//! mid-wave that leaves no half-made VM and keeps the others running.

use std::collections::BTreeSet;
use std::time::Duration;

use oxbake::pipeline::cancel;
use oxbake::pipeline::deploy::DeployError;
use oxbake::progress::{Event, Progress};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

use crate::support::deploy_sim::Harness;
use crate::support::pve_sim::{BASE_VMID, NODE, PowerEvent};

fn drain(events: &mut UnboundedReceiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(event) = events.try_recv() {
        out.push(event);
    }
    out
}

fn infos(events: &[Event]) -> Vec<String> {
    let line = |e: &Event| match e {
        Event::Info(line) => Some(line.clone()),
        _ => None,
    };
    events.iter().filter_map(line).collect()
}

/// The simulator's guests other than the base template.
fn vms(h: &Harness) -> BTreeSet<u32> {
    h.sim
        .vmids()
        .into_iter()
        .filter(|v| *v != BASE_VMID)
        .collect()
}

/// After every start and stop: no two running services VMs of one slot
/// (its static address), and at least one serving.
fn one_vm_per_address_and_one_serving(log: &[PowerEvent]) {
    let slot = |name: &str| name.get(..15).unwrap_or_default().to_owned();
    for event in log {
        let up: Vec<&String> = event
            .running
            .iter()
            .filter(|n| n.starts_with("grid-services-"))
            .collect();
        let slots: BTreeSet<String> = up.iter().map(|n| slot(n)).collect();
        assert_eq!(slots.len(), up.len(), "one address, two VMs: {event:?}");
        assert!(!up.is_empty(), "no services VM serving: {event:?}");
    }
}

fn running(h: &Harness, ids: &BTreeSet<u32>) -> bool {
    ids.iter()
        .all(|id| h.sim.vm(*id).is_some_and(|vm| vm.running))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waves_go_in_order_and_a_wave_runs_at_most_jobs_at_once() {
    let h = Harness::new(4).await;
    h.sim.faults(|f| {
        f.task_times.insert("qmclone", Duration::from_millis(400));
    });
    let (progress, mut events) = Progress::channel();
    let done = h.deploy(Some(3), progress, cancel::never()).await.unwrap();
    assert_eq!(done.len(), 5);
    assert_eq!(done[0].vm, "grid-base-1", "{done:?}");
    assert_eq!(h.sim.most_in_flight("qmclone"), 3, "bounded by --jobs 3");
    let events = drain(&mut events);
    // One progress line (task) per VM, its stages as steps.
    let lines_of_vms: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::TaskStarted { task, steps: 3 } => Some(task.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(lines_of_vms.len(), 5, "{lines_of_vms:?}");
    assert!(lines_of_vms.contains(&"vm grid-services-4"));
    let finished_ok = events
        .iter()
        .filter(|e| matches!(e, Event::TaskFinished { ok: true, .. }))
        .count();
    assert_eq!(finished_ok, 5);
    let lines = infos(&events);
    let healthy = lines
        .iter()
        .position(|l| l == "vm `grid-base-1` is healthy")
        .unwrap();
    let first_service = lines
        .iter()
        .position(|l| l.starts_with("creating vm `grid-services-"))
        .unwrap();
    assert!(healthy < first_service, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wave 2: services (4 vm(s), at most 3 at once)"))
    );
    assert_eq!(vms(&h).len(), 5);
    assert!(running(&h, &vms(&h)));

    // The target's own bound (`deploy_jobs`, 4) when --jobs is not given;
    // one wave of five.
    let h = Harness::one_wave(5).await;
    h.sim.faults(|f| {
        f.task_times.insert("qmclone", Duration::from_millis(400));
    });
    let done = h
        .deploy(None, Progress::silent(), cancel::never())
        .await
        .unwrap();
    assert_eq!(done.len(), 5);
    assert_eq!(h.sim.most_in_flight("qmclone"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacement_stops_the_old_vm_first_and_a_failed_one_brings_it_back() {
    let h = Harness::new(2).await;
    h.deploy_quiet().await.unwrap();
    let before = vms(&h);
    let services: BTreeSet<u32> = before
        .iter()
        .copied()
        .filter(|id| h.sim.vm(*id).unwrap().name().starts_with("grid-services-"))
        .collect();
    assert_eq!(services.len(), 2);

    // A healthy new version: each old VM stops before its successor (which
    // takes its address) starts, and one slot at a time (max_unavailable
    // 1), so the other slot serves throughout: the simulator's own log of
    // every start and stop, with what ran right after it.
    h.release("services", 'c');
    let seen = h.sim.power_log().len();
    let done = h
        .deploy(None, Progress::silent(), cancel::never())
        .await
        .unwrap();
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|d| d.action == "replace"));
    let after = vms(&h);
    assert_eq!(after.len(), 3);
    let names: BTreeSet<String> = after
        .iter()
        .map(|id| h.sim.vm(*id).unwrap().name())
        .collect();
    assert!(
        !names.contains("grid-services-1") && !names.contains("grid-services-2"),
        "{names:?}"
    );
    let log = h.sim.power_log()[seen..].to_vec();
    one_vm_per_address_and_one_serving(&log);
    let downs: Vec<&str> = log
        .iter()
        .filter(|e| !e.up)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(downs, ["grid-services-1", "grid-services-2"], "{log:#?}");
    let ups = log.iter().filter(|e| e.up).count();
    assert_eq!(ups, 2, "{log:#?}");
    assert!(
        !log[0].up && log[1].up && !log[2].up && log[3].up,
        "{log:#?}"
    );

    // A new version whose VMs fail their health: the old VM is started
    // again and proven healthy, the new one is gone, the other slot was
    // never touched.
    let bad = h.release("services", 'd');
    h.guests.failing.lock().unwrap().insert(bad.to_string());
    let logins = h.guests.logins.lock().unwrap().len();
    let seen = h.sim.power_log().len();
    let (progress, mut events) = Progress::channel();
    let err = h.deploy(None, progress, cancel::never()).await.unwrap_err();
    assert!(
        matches!(&err, DeployError::Check { check, .. } if check == "cloud-init finished"),
        "{err}"
    );
    // The line says which stage failed (the new VM's checks) and that
    // starting the old one again worked; the slot's work as a whole failed.
    let stages: Vec<(String, bool)> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e {
            Event::StepFinished { step, ok, .. } => Some((step, ok)),
            _ => None,
        })
        .collect();
    let stage = |name: &str| {
        stages
            .iter()
            .find(|(s, _)| s.starts_with(name))
            .map(|s| s.1)
    };
    assert_eq!(stage("checks"), Some(false), "{stages:?}");
    assert_eq!(stage("start grid-services-"), Some(true), "{stages:?}");
    assert_eq!(vms(&h), after, "nothing else left");
    assert!(running(&h, &after), "every VM runs again");
    let relogged = h.guests.logins.lock().unwrap()[logins..].to_vec();
    assert_eq!(
        relogged.len(),
        2,
        "the new VM, then the old one: {relogged:?}"
    );
    assert!(after.contains(&relogged[1]), "the old VM proven healthy");
    let names_now: BTreeSet<String> = vms(&h)
        .iter()
        .map(|id| h.sim.vm(*id).unwrap().name())
        .collect();
    assert_eq!(names_now, names, "the same VMs, no other");
    let log = h.sim.power_log()[seen..].to_vec();
    one_vm_per_address_and_one_serving(&log);
    let ups: Vec<bool> = log.iter().map(|e| e.up).collect();
    assert_eq!(
        ups,
        [false, true, false, true],
        "old down, new up, new down, old up: {log:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_mid_wave_removes_what_it_made_and_keeps_the_rest() {
    let h = Harness::new(1).await;
    h.deploy_quiet().await.unwrap();
    let kept = vms(&h);
    assert_eq!(kept.len(), 2);
    h.set_services(4);
    h.sim.faults(|f| {
        f.task_times.insert("qmclone", Duration::from_millis(300));
        f.fail_next_clone = Some("storage full".into());
    });
    let err = h
        .deploy(Some(3), Progress::silent(), cancel::never())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot create"), "{err}");
    assert_eq!(vms(&h), kept, "no half-made VM is left");
    assert!(running(&h, &kept));

    // An interrupt while the clones run: the same.
    h.sim.faults(|f| {
        f.task_times.insert("qmclone", Duration::from_millis(800));
    });
    let (tx, rx) = watch::channel(false);
    let interrupt = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(true).unwrap();
    };
    let (result, ()) = tokio::join!(h.deploy(Some(3), Progress::silent(), rx), interrupt);
    assert!(result.unwrap_err().is_interrupted());
    assert_eq!(vms(&h), kept, "no half-made VM is left");
    assert!(running(&h, &kept));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_vm_that_cannot_be_proven_again_still_runs_and_both_errors_are_named() {
    let h = Harness::one_wave(1).await;
    h.deploy_quiet().await.unwrap();
    let before = vms(&h);
    // Its pinned host key is gone: oxbake cannot log in to prove it.
    std::fs::remove_file(h.dir.path().join(".oxbake/known_hosts/grid")).unwrap();
    let bad = h.release("services", 'e');
    h.guests.failing.lock().unwrap().insert(bad.to_string());
    let err = h
        .deploy(None, Progress::silent(), cancel::never())
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, DeployError::NotBroughtBack { vm, .. } if vm == "grid-services-1"),
        "{text}"
    );
    assert!(text.contains("cloud-init finished"), "{text}");
    assert_eq!(vms(&h), before, "the new VM is gone");
    assert!(running(&h, &before), "the old one was started first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_vm_is_started_again_and_proven_healthy() {
    use oxbake::target::{Target, VmHandle};
    let h = Harness::new(1).await;
    h.deploy_quiet().await.unwrap();
    let all = vms(&h);
    let id = *all
        .iter()
        .find(|id| h.sim.vm(**id).unwrap().name().starts_with("grid-services-"))
        .unwrap();
    // As after a host restart or an operator's `qm stop`.
    let handle = VmHandle {
        name: h.sim.vm(id).unwrap().name(),
        id: format!("{NODE}/{id}"),
    };
    let target = h.target(Progress::silent());
    target
        .shutdown(&handle, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!h.sim.vm(id).unwrap().running);
    let logins = h.guests.logins.lock().unwrap().len();
    let done = h
        .deploy(None, Progress::silent(), cancel::never())
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = done.iter().map(|d| (d.action, d.vm.as_str())).collect();
    assert_eq!(actions, [("start", handle.name.as_str())], "{done:?}");
    assert_eq!(vms(&h), all, "the same VMs, no other");
    assert!(running(&h, &all), "every VM runs");
    let relogged = h.guests.logins.lock().unwrap()[logins..].to_vec();
    assert_eq!(relogged, [id], "proven healthy over SSH");
    let again = h
        .deploy(None, Progress::silent(), cancel::never())
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
}
