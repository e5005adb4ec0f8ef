//! End to end on the local target's segment: an environment `seg` with two
//! VMs of `base` and one of `ui` on one vde segment. Each VM listens on a
//! port declared nowhere (7777) and connects to the two others; every
//! listener must see exactly the two peers' static addresses as sources.
//! From the segment (ARP of the ui VM) the two base addresses have two
//! different MACs, the switch shows three QEMUs plugged in, a base VM that
//! is stopped and started again is back at its address, and `destroy`
//! takes the segment along. Boots three guests (TCG: several minutes).
#![cfg(feature = "e2e")]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use oxbake::progress::Progress;
use oxbake::registry::Registry;
use oxbake::target::local::{AccelMode, LocalTarget};
use oxbake::target::{Target, VmHandle};

use crate::support::e2e::{baked, vm_lock};
use crate::support::project::{Run, TestProject};

const PORT: u16 = 7777;
const VMS: [(&str, &str); 3] = [
    ("seg-base-1", "10.98.0.11"),
    ("seg-base-2", "10.98.0.12"),
    ("seg-ui-1", "10.98.0.21"),
];

/// Records the source address of every connection to PORT, one a line.
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
    project.write("oxbake.toml", &with_seg_env(&original, project.root()));
    let result = std::panic::catch_unwind(|| scenario(project));
    let destroy = oxbake(project, &["destroy", "seg"]);
    project.write("oxbake.toml", &original);
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

    // A stopped VM starts again with its disk, MACs and address.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let target = LocalTarget::new(root, None, AccelMode::Tcg, Progress::silent());
    let vm = VmHandle {
        name: "seg-base-2".into(),
        id: "seg-base-2".into(),
    };
    rt.block_on(async {
        target
            .shutdown(&vm, Duration::from_secs(120))
            .await
            .unwrap();
        target.start(&vm).await.unwrap();
        target
            .ssh_endpoint(&vm, Duration::from_secs(600))
            .await
            .unwrap();
    });
    let addr = ssh(root, "seg-base-2", "ip -4 -o addr show dev eth0");
    assert_ok(&addr, "seg-base-2");
    assert!(String::from_utf8_lossy(&addr.stdout).contains("10.98.0.12/24"));
    let again =
        "python3 -c \"import socket; socket.create_connection(('10.98.0.12', 22), 10).close()\"";
    assert_ok(&ssh(root, "seg-ui-1", again), "seg-ui-1");
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

/// OpenSSH through the VM's forwarded port, checking the host key oxbake
/// pinned for its address (the port changes when the VM starts again).
fn ssh(root: &Path, vm: &str, script: &str) -> Output {
    let address = VMS.iter().find(|(n, _)| *n == vm).unwrap().1;
    let port =
        std::fs::read_to_string(root.join(format!(".oxbake/local/vms/{vm}/ssh_port"))).unwrap();
    Command::new("ssh")
        .args(["-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            root.join(".oxbake/known_hosts/seg").display()
        ))
        .arg("-o")
        .arg(format!("HostKeyAlias={address}"))
        .args(["-o", "BatchMode=yes", "-i"])
        .arg(root.join(".oxbake/deploy/seg.key"))
        .args(["-p", port.trim(), "ops@127.0.0.1", script])
        .output()
        .unwrap()
}

fn oxbake(project: &TestProject, args: &[&str]) -> Run {
    let key = std::fs::read_to_string(project.root().join(".oxbake/test-tls/seg-key.pem")).unwrap();
    let run = project.oxbake_env(args, &[("OXBAKE_SECRET_TLS_PRIVATE_KEY", &key)]);
    eprintln!("oxbake {}:\n{}", args.join(" "), run.stderr());
    run
}

/// The environment `seg`: two base VMs and one ui VM (with a real
/// certificate, so its `nginx -t` passes). Its `dns` is QEMU's resolver on
/// the management NIC: nothing on the segment serves names.
fn with_seg_env(original: &str, root: &Path) -> String {
    let dir = root.join(".oxbake/test-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=seg.example", "-keyout"])
        .arg(dir.join("seg-key.pem"))
        .arg("-out")
        .arg(dir.join("seg-cert.pem"))
        .status()
        .unwrap();
    assert!(status.success());
    let cert = std::fs::read_to_string(dir.join("seg-cert.pem")).unwrap();
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
