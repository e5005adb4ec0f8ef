//! End to end on the local target's segment: an environment `seg` with two
//! VMs of `base` and one of `ui` on one vde segment. Each VM listens on a
//! port declared nowhere (7777) and connects to the two others; every
//! listener must see exactly the two peers' static addresses as sources.
//! From the segment (ARP of the ui VM) the two base addresses have two
//! different MACs, the switch shows three QEMUs plugged in, a base VM that
//! was stopped is started again by the next deploy and is back at its
//! address, and `destroy`
//! takes the segment along. Boots three guests (TCG: several minutes).
#![cfg(feature = "e2e")]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use oxbake::progress::Progress;
use oxbake::registry::Registry;
use oxbake::target::local::{AccelMode, LocalTarget};
use oxbake::target::{Target, VmHandle};

use crate::support::e2e::{
    baked, current, env_ssh, record_again, self_signed, tls_key, vm_lock, vm_names,
};
use crate::support::figures::figure;
use crate::support::project::{Run, TestProject, copy_tree};

const PORT: u16 = 7777;
const VMS: [(&str, &str); 3] = [
    ("seg-base-1", "10.98.0.11"),
    ("seg-base-2", "10.98.0.12"),
    ("seg-ui-1", "10.98.0.21"),
];

/// Records the source address of every connection to PORT, one a line.
/// (The roles' firewall drops undeclared ports: the test opens PORT in it
/// first, as an operator's own deploy command would.)
const LISTENER: &str = "import socket\n\
s = socket.socket()\n\
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('0.0.0.0', 7777))\n\
s.listen()\n\
while True:\n    c, (ip, _) = s.accept()\n    open('/run/oxbake-peers', 'a').write(ip + '\\n')\n    c.close()\n";

#[test]
fn vms_of_one_environment_share_a_segment_with_their_own_addresses() {
    let baked = baked();
    let _vms = vm_lock();
    let project = &baked.project;
    let registry = Registry::for_project(project.root());
    for role in ["base", "ui"] {
        let latest = registry.latest(role, true).unwrap().expect("baked");
        registry
            .set_channel(role, "dev", &latest.version, "test", "e2e segment")
            .unwrap();
    }
    let original = project.read("oxbake.toml");
    let recipe = project.read("recipes/base.toml");
    // The replacements below record newer versions of base; other tests
    // read the fixture's registry, so it is put back as it was.
    let images = tempfile::tempdir().unwrap();
    copy_tree(&project.root().join("images"), images.path());
    project.write("oxbake.toml", &with_seg_env(&original, project.root()));
    let result = std::panic::catch_unwind(|| {
        scenario(project);
        rolling_replacement(project);
        failed_replacement(project, &recipe);
    });
    let destroy = oxbake(project, &["destroy", "seg"]);
    project.write("oxbake.toml", &original);
    project.write("recipes/base.toml", &recipe);
    std::fs::remove_dir_all(project.root().join("images")).unwrap();
    copy_tree(images.path(), &project.root().join("images"));
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(destroy.code(), 0, "{}", destroy.stderr());
    assert!(
        !project.root().join(".oxbake/local/nets/seg").exists(),
        "the segment outlived its last vm"
    );
}

fn scenario(project: &TestProject) {
    let deployed = oxbake(project, &["deploy", "seg"]);
    assert_eq!(deployed.code(), 0, "{}", deployed.stderr());
    let root = project.root();
    for (vm, _) in VMS {
        let script = format!(
            "sudo rm -f /run/oxbake-peers && \
             sudo nft insert rule inet oxbake input tcp dport {PORT} accept && \
             sudo systemd-run --unit=oxbake-listen python3 -c \"{LISTENER}\""
        );
        assert_ok(&ssh(root, vm, &script), vm);
    }
    std::thread::sleep(Duration::from_secs(2));
    for (vm, own) in VMS {
        for (_, peer) in VMS.iter().filter(|(_, a)| *a != own) {
            let connect = format!(
                "python3 -c \"import socket; socket.create_connection(('{peer}', {PORT}), 10).close()\""
            );
            assert_ok(&ssh(root, vm, &connect), vm);
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    for (vm, own) in VMS {
        let out = ssh(root, vm, "cat /run/oxbake-peers");
        assert_ok(&out, vm);
        let mut seen: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        seen.sort();
        let mut peers: Vec<String> = VMS
            .iter()
            .filter(|(_, a)| *a != own)
            .map(|(_, a)| a.to_string())
            .collect();
        peers.sort();
        eprintln!("segment: {vm} ({own}) saw connections from {seen:?}");
        assert_eq!(seen, peers, "{vm} must see its peers' own addresses");
    }

    // From the segment: two base addresses, two MACs.
    let neigh = ssh(root, "seg-ui-1", "ip -4 neigh show dev eth0");
    assert_ok(&neigh, "seg-ui-1");
    let neigh = String::from_utf8_lossy(&neigh.stdout).into_owned();
    let mac_of = |address: &str| {
        neigh
            .lines()
            .find(|l| l.starts_with(&format!("{address} ")))
            .and_then(|l| l.split_whitespace().skip_while(|w| *w != "lladdr").nth(1))
            .map(str::to_owned)
    };
    let (one, two) = (mac_of("10.98.0.11"), mac_of("10.98.0.12"));
    eprintln!("segment: arp of seg-ui-1:\n{neigh}");
    assert!(one.is_some() && two.is_some() && one != two, "{neigh}");
    let ports = switch_ports(root);
    assert_eq!(ports.matches("prog   : QEMU").count(), 3, "{ports}");

    // A stopped VM (a host restart, an operator) is found by the next
    // deploy, started again with its disk, MACs and address, and proven
    // healthy; nothing else changes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = LocalTarget::new(root, None, AccelMode::Tcg, Progress::silent());
    let vm = VmHandle {
        name: "seg-base-2".into(),
        id: "seg-base-2".into(),
    };
    rt.block_on(target.shutdown(&vm, Duration::from_secs(120)))
        .unwrap();
    let before = vm_names(root);
    let plan = oxbake(project, &["deploy", "seg", "--plan"]);
    let row = plan.stdout();
    let row = row
        .lines()
        .find(|l| l.contains("seg-base-2"))
        .unwrap_or_default();
    assert!(
        row.contains("start") && row.contains("stopped"),
        "{}",
        plan.stdout()
    );
    let started = oxbake(project, &["deploy", "seg"]);
    assert_eq!(started.code(), 0, "{}", started.stderr());
    assert!(
        started
            .stderr()
            .contains("vm `seg-base-2` is running and healthy again"),
        "{}",
        started.stderr()
    );
    assert_eq!(vm_names(root), before, "the same VMs, no other");
    let addr = ssh(root, "seg-base-2", "ip -4 -o addr show dev eth0");
    assert_ok(&addr, "seg-base-2");
    assert!(String::from_utf8_lossy(&addr.stdout).contains("10.98.0.12/24"));
    let again =
        "python3 -c \"import socket; socket.create_connection(('10.98.0.12', 22), 10).close()\"";
    assert_ok(&ssh(root, "seg-ui-1", again), "seg-ui-1");
}

/// Tries both base addresses' SSH port every 0.2 s from the ui VM and
/// writes `TIME BASE1 BASE2` (1: answered) a line.
const POLLER: &str = "import socket, time\n\
out = open('/run/oxbake-poll', 'a')\n\
while True:\n    t = time.time()\n    seen = []\n    for a in ('10.98.0.11', '10.98.0.12'):\n        try:\n            socket.create_connection((a, 22), 1).close()\n            seen.append('1')\n        except Exception:\n            seen.append('0')\n    out.write('%.2f %s %s\\n' % (t, seen[0], seen[1]))\n    out.flush()\n    time.sleep(0.2)\n";

/// A newer version of base: the same template recorded again, so a deploy
/// replaces both base VMs and nothing else.
fn newer_base(project: &TestProject, why: &str) {
    record_again(project, "base", "dev", why);
}

/// Both base VMs are replaced, one slot at a time, while the ui VM polls
/// both from the segment: one answers at every moment, each was down for
/// a while, and the switch never had more than the three VMs plugged in
/// (stop-first: an old VM and its replacement never run at once).
fn rolling_replacement(project: &TestProject) {
    let root = project.root();
    newer_base(project, "rolling replacement");
    // The plan: both base slots replaced stop-first, one at a time, so one
    // of the two serves throughout; nothing else changes.
    let plan = oxbake(project, &["deploy", "seg", "--plan"]);
    let text = plan.stdout();
    let replaced: Vec<&str> = text.lines().filter(|l| l.contains(" replace ")).collect();
    assert_eq!(replaced.len(), 2, "{text}");
    for row in &replaced {
        assert!(
            row.contains("stop-first") && row.ends_with("none: 1 of 2 serving"),
            "{text}"
        );
    }
    let start = format!(
        "sudo rm -f /run/oxbake-poll && sudo systemd-run --unit=oxbake-poll python3 -c \"{POLLER}\""
    );
    assert_ok(&ssh(root, "seg-ui-1", &start), "seg-ui-1");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (done, root) = (done.clone(), root.to_path_buf());
        std::thread::spawn(move || {
            let mut most = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                most = most.max(switch_ports(&root).matches("prog   : QEMU").count());
                std::thread::sleep(Duration::from_millis(250));
            }
            most
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let rolled = oxbake(project, &["deploy", "seg"]);
    std::thread::sleep(Duration::from_secs(2));
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let most = sampler.join().unwrap();
    assert_eq!(rolled.code(), 0, "{}", rolled.stderr());
    let poll = ssh(
        root,
        "seg-ui-1",
        "sudo systemctl stop oxbake-poll; cat /run/oxbake-poll",
    );
    assert_ok(&poll, "seg-ui-1");
    let samples: Vec<(f64, bool, bool)> = String::from_utf8_lossy(&poll.stdout)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()? == "1", w.next()? == "1"))
        })
        .collect();
    assert!(samples.len() > 10, "{samples:?}");
    let span = samples.last().unwrap().0 - samples[0].0;
    let down = |pick: fn(&(f64, bool, bool)) -> bool| samples.iter().filter(|s| !pick(s)).count();
    let (one, two) = (down(|s| s.1), down(|s| s.2));
    let neither = samples.iter().filter(|s| !s.1 && !s.2).count();
    figure(format!(
        "rolling replacement of base (2 VMs): {} samples over {span:.0}s; 10.98.0.11 unreachable \
         in {one}, 10.98.0.12 in {two}, both at once in {neither}; at most {most} VMs on the segment",
        samples.len()
    ));
    assert_eq!(neither, 0, "both base VMs were unreachable at once");
    assert!(one > 0 && two > 0, "the poll did not see both replacements");
    assert!(
        most <= 3,
        "{most} VMs on the segment: an old VM ran beside its replacement"
    );
    // Each replacement's host key took its slot's line over.
    let known = project.read(".oxbake/known_hosts/seg");
    for slot in ["seg-base-1", "seg-base-2"] {
        let now = current(root, slot);
        assert_ne!(now, slot, "{slot} was not replaced");
        let names = |name: &str| {
            known
                .lines()
                .any(|l| l.split_whitespace().nth(3) == Some(name))
        };
        assert!(names(&now) && !names(slot), "{known}");
    }
}

/// A replacement whose new VM fails a check (deployed-only, true only on
/// VMs that existed before) ends with the old VM running and healthy at
/// its address, exit 1, and nothing else left.
fn failed_replacement(project: &TestProject, recipe: &str) {
    let root = project.root();
    for slot in ["seg-base-1", "seg-base-2"] {
        assert_ok(&ssh(root, slot, "sudo touch /etc/oxbake-was-here"), slot);
    }
    project.write(
        "recipes/base.toml",
        &format!(
            "{recipe}\n[[check]]\nname = \"deployed before\"\nrun = \"test -e /etc/oxbake-was-here && echo here\"\nstdout_contains = [\"here\"]\ndeployed_only = true\n"
        ),
    );
    newer_base(project, "a replacement that fails");
    let before = vm_names(root);
    let failed = oxbake(project, &["deploy", "seg"]);
    project.write("recipes/base.toml", recipe);
    assert_eq!(failed.code(), 1, "{}", failed.stderr());
    assert!(
        failed.stderr().contains("deployed before"),
        "{}",
        failed.stderr()
    );
    assert_eq!(vm_names(root), before, "a VM was left or lost");
    let addr = ssh(
        root,
        "seg-base-1",
        "ip -4 -o addr show dev eth0; test -e /etc/oxbake-was-here && echo old",
    );
    assert_ok(&addr, "seg-base-1");
    let text = String::from_utf8_lossy(&addr.stdout);
    assert!(
        text.contains("10.98.0.11/24") && text.contains("old"),
        "{text}"
    );
}

/// `port/allprint` of the segment's switch.
fn switch_ports(root: &Path) -> String {
    let mgmt = root.join(".oxbake/local/nets/seg/mgmt");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "echo port/allprint | socat -t1 - UNIX-CONNECT:{}",
            mgmt.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output, vm: &str) {
    assert!(
        out.status.success(),
        "{vm}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// OpenSSH to the VM holding `slot` through its forwarded port, checking
/// the host key oxbake pinned for its address (the port changes when the
/// VM starts again).
fn ssh(root: &Path, slot: &str, script: &str) -> Output {
    let address = VMS.iter().find(|(n, _)| *n == slot).unwrap().1;
    env_ssh(root, "seg", &current(root, slot), Some(address), script)
}

fn oxbake(project: &TestProject, args: &[&str]) -> Run {
    let key = tls_key(project.root(), "seg");
    let run = project.oxbake_env(args, &[("OXBAKE_SECRET_TLS_PRIVATE_KEY", &key)]);
    eprintln!("oxbake {}:\n{}", args.join(" "), run.stderr());
    run
}

/// The environment `seg`: two base VMs and one ui VM (with a real
/// certificate, so its `nginx -t` passes). Its `dns` is QEMU's resolver on
/// the management NIC: nothing on the segment serves names.
fn with_seg_env(original: &str, root: &Path) -> String {
    let cert = self_signed(root, "seg", "seg.example");
    format!(
        r#"{original}
[environments.seg]
channel = "dev"
user = "ops"
ssh_keys = []

[environments.seg.network]
prefix = 24
gateway = "10.98.0.1"
dns = ["10.0.2.3"]

[environments.seg.roles.base]
count = 2
memory_mib = 1024
addresses = ["10.98.0.11", "10.98.0.12"]

[environments.seg.roles.ui]
memory_mib = 1024
addresses = ["10.98.0.21"]

[environments.seg.roles.ui.values]
backend_address = "10.98.0.11"
backend_port = 8009
server_name = "seg.example"
tls_certificate = """
{cert}"""
"#
    )
}
