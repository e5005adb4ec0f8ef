//! The local target's segments with a real `vde_switch` (Debian's vde2) and
//! no guest: the switch is started, proved and stopped; one that died is
//! detected; the address guard refuses a second VM at a held address; the
//! last VM takes its segment along; `gc` removes only oxbake's unused ones.
//! A "running VM" is a shell whose command line passes for its QEMU.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use oxbake::progress::{Event, Progress};
use oxbake::suite::Suite;
use oxbake::target::local::segment::{Segment, Switch};
use oxbake::target::local::{AccelMode, LocalTarget};
use oxbake::target::{
    Labels, Source, Target, TargetError, VmHandle, VmKind, VmNetwork, VmNics, VmSpec,
};

fn base_image(dir: &Path) -> PathBuf {
    let path = dir.join("base.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("64M")
        .status()
        .unwrap();
    assert!(ok.success());
    path
}

fn target(project: &Path, progress: Progress) -> LocalTarget {
    LocalTarget::new(project, Some(base_image(project)), AccelMode::Tcg, progress)
}

fn state(project: &Path) -> PathBuf {
    project.join(".oxbake/local")
}

/// Two VMs of `lab` at two addresses.
const PAIR: [(&str, &str); 2] = [("lab-db-1", "10.99.0.10"), ("lab-db-2", "10.99.0.11")];

/// Creates (not starts) one deployed VM per `(name, address)` of `lab`.
async fn create<const N: usize>(t: &LocalTarget, vms: [(&str, &str); N]) -> [VmHandle; N] {
    let mut made = Vec::new();
    for (name, address) in vms {
        made.push(t.create_vm(&deployed(name, address)).await.unwrap());
    }
    made.try_into().unwrap()
}

fn deployed(name: &str, address: &str) -> VmSpec {
    VmSpec {
        name: name.into(),
        source: Source::Base(Suite::Bookworm),
        cores: 1,
        memory_mib: 256,
        disk_gib: None,
        labels: Labels {
            run_id: "r1".into(),
            role: "db".into(),
            kind: VmKind::Deployed,
            env: Some("lab".into()),
            version: Some("1".into()),
        },
        network: Some(VmNetwork {
            segment: "lab".into(),
            address: address.parse().unwrap(),
            prefix: 24,
            gateway: "10.99.0.1".parse().unwrap(),
            ports: vec![],
        }),
        node: None,
    }
}

/// A shell whose command line passes for the QEMU of `vm` (its program
/// name says `qemu-system`, an argument is the VM's pid file), with its pid
/// in that pid file.
struct FakeQemu(Child);

impl FakeQemu {
    fn start(project: &Path, vm: &str) -> Self {
        let sh = project.join("qemu-system-x86_64");
        if !sh.exists() {
            std::os::unix::fs::symlink("/bin/sh", &sh).unwrap();
        }
        let pid_file = state(project).join("vms").join(vm).join("pid");
        let child = Command::new(&sh)
            .args(["-c", "while :; do sleep 1; done"])
            .arg(&pid_file)
            .spawn()
            .unwrap();
        std::fs::write(&pid_file, child.id().to_string()).unwrap();
        Self(child)
    }
}

impl Drop for FakeQemu {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !matches!(stat.rsplit_once(") ").map(|(_, r)| &r[..1]), Some("Z")))
}

fn kill(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    for _ in 0..50 {
        if !alive(pid) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("pid {pid} does not end");
}

/// `port/allprint` on the management socket: the switch answers.
fn mgmt_answers(segment: &Segment) -> bool {
    let out = Command::new("socat")
        .args([
            "-t1",
            "-",
            &format!("UNIX-CONNECT:{}", segment.mgmt().display()),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"port/allprint\n")?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("1000 Success")
}

#[tokio::test]
async fn a_switch_is_started_proved_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let segment = Segment::new(&state(dir.path()), "lab").unwrap();
    assert_eq!(segment.switch().await.unwrap(), Switch::Absent);
    let pid = segment.start().await.unwrap();
    assert_eq!(segment.switch().await.unwrap(), Switch::Running { pid });
    assert!(mgmt_answers(&segment));
    assert!(segment.dir().join("sock/ctl").exists());
    segment.remove().await.unwrap();
    assert!(!alive(pid), "the switch still runs");
    assert!(!segment.dir().exists());
    assert_eq!(segment.switch().await.unwrap(), Switch::Absent);
}

#[tokio::test]
async fn a_dead_switch_is_detected_and_a_foreign_pid_never_killed() {
    let dir = tempfile::tempdir().unwrap();
    let segment = Segment::new(&state(dir.path()), "lab").unwrap();
    let pid = segment.start().await.unwrap();
    kill(pid);
    assert_eq!(segment.switch().await.unwrap(), Switch::Dead);

    // The record names a live process that is not the switch (a reused
    // pid): dead for oxbake, and left alone.
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    let record = segment.dir().join("switch.toml");
    let text = std::fs::read_to_string(&record).unwrap();
    let text = text.replace(&format!("pid = {pid}"), &format!("pid = {}", other.id()));
    std::fs::write(&record, text).unwrap();
    assert_eq!(segment.switch().await.unwrap(), Switch::Dead);
    segment.remove().await.unwrap();
    assert!(
        alive(other.id()),
        "a process oxbake does not own was killed"
    );
    other.kill().unwrap();
    other.wait().unwrap();
}

#[tokio::test]
async fn a_second_vm_at_a_held_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Progress::silent());
    let [old, new] = create(
        &t,
        [("lab-db-1-a", "10.99.0.10"), ("lab-db-1-b", "10.99.0.10")],
    )
    .await;
    let _running = FakeQemu::start(dir.path(), &old.name);
    let err = t.start(&new).await.unwrap_err();
    assert!(matches!(err, TargetError::AddressInUse { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "address 10.99.0.10 on segment `lab` is held by running vm `lab-db-1-a`"
    );
    remove(&t, &[old, new]).await;
}

#[tokio::test]
async fn a_switch_that_died_under_running_vms_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (progress, mut events) = Progress::channel();
    let t = target(dir.path(), progress);
    let [a, b] = create(&t, PAIR).await;
    let segment = Segment::new(&state(dir.path()), "lab").unwrap();
    let pid = segment.start().await.unwrap();
    let _running = FakeQemu::start(dir.path(), &a.name);
    kill(pid);

    let err = t.start(&b).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "segment `lab`: its switch is not running while vm(s) `lab-db-1` are attached to it \
         (they lost their network); stop them, then start them again"
    );
    t.list_vms().await.unwrap();
    let mut warned = false;
    while let Ok(event) = events.try_recv() {
        if let Event::Warn(line) = event {
            warned |= line.contains("segment `lab`: its switch is not running");
        }
    }
    assert!(warned, "listing does not warn about the dead switch");
    remove(&t, &[a, b]).await;
}

#[tokio::test]
async fn the_last_vm_takes_its_segment_along() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Progress::silent());
    let [a, b] = create(&t, PAIR).await;
    let segment = Segment::new(&state(dir.path()), "lab").unwrap();
    let pid = segment.start().await.unwrap();
    t.destroy(&a).await.unwrap();
    assert_eq!(segment.switch().await.unwrap(), Switch::Running { pid });
    t.destroy(&b).await.unwrap();
    assert!(!alive(pid), "the switch outlived the last vm");
    assert!(!segment.dir().exists());
}

#[tokio::test]
async fn gc_removes_only_oxbakes_unused_segments() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Progress::silent());
    let root = state(dir.path());
    let used = Segment::new(&root, "lab").unwrap();
    let unused = Segment::new(&root, "old").unwrap();
    let [vm] = create(&t, [PAIR[0]]).await;
    let used_pid = used.start().await.unwrap();
    let unused_pid = unused.start().await.unwrap();
    let foreign = root.join("nets/foreign");
    std::fs::create_dir_all(&foreign).unwrap();

    let found = t.sweep_networks(true).await.unwrap();
    let names: Vec<(&str, bool, bool)> = found
        .iter()
        .map(|n| (n.name.as_str(), n.removed, n.unknown.is_some()))
        .collect();
    assert_eq!(names, [("foreign", false, true), ("old", false, false)]);
    assert!(alive(unused_pid), "a dry run removed a switch");

    let found = t.sweep_networks(false).await.unwrap();
    assert!(found.iter().any(|n| n.name == "old" && n.removed));
    assert!(!alive(unused_pid));
    assert!(!unused.dir().exists());
    assert!(foreign.exists(), "a folder oxbake did not make was removed");
    assert_eq!(
        used.switch().await.unwrap(),
        Switch::Running { pid: used_pid }
    );
    remove(&t, &[vm]).await;
    assert!(!alive(used_pid));
}

#[tokio::test]
async fn a_deployed_vm_gets_a_segment_nic_and_a_management_nic_by_mac() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Progress::silent());
    let network = deployed("x", "10.99.0.10").network.unwrap();
    let VmNics::Segment {
        segment_mac,
        management_mac,
    } = t.nics(&network)
    else {
        panic!("the local target puts a deployed vm on a segment");
    };
    assert_ne!(segment_mac, management_mac);
    let [vm] = create(&t, [PAIR[0]]).await;
    let record = std::fs::read_to_string(root_vm(dir.path(), &vm).join("vm.toml")).unwrap();
    assert!(record.contains(&management_mac), "{record}");
    remove(&t, &[vm]).await;
}

fn root_vm(project: &Path, vm: &VmHandle) -> PathBuf {
    state(project).join("vms").join(&vm.id)
}

async fn remove(t: &LocalTarget, vms: &[VmHandle]) {
    for vm in vms {
        t.destroy(vm).await.unwrap();
    }
}
