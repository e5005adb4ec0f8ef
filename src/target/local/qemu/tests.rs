use std::path::PathBuf;

use super::*;

fn files() -> VmFiles {
    VmFiles {
        dir: PathBuf::from("/p/.oxbake/local/vms/web-b"),
    }
}

fn launch(accel: Accel) -> Launch {
    Launch {
        accel,
        cores: 2,
        memory_mib: 2048,
        ssh_port: 40022,
        mac: "52:54:00:01:02:03".into(),
        with_seed: true,
        net: None,
    }
}

fn joined(args: &[OsString]) -> String {
    args.iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The value after the first occurrence of `flag`.
fn value_of(args: &[OsString], flag: &str) -> String {
    let at = args
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} missing"));
    args[at + 1].to_string_lossy().into_owned()
}

#[test]
fn tcg_runs_multi_threaded_without_host_cpu() {
    let args = args(&files(), &launch(Accel::Tcg)).unwrap();
    assert_eq!(value_of(&args, "-accel"), "tcg,thread=multi");
    assert!(!joined(&args).contains("-cpu"));
}

/// `-cpu host` makes QEMU abort on hosts whose KVM rejects some MSRs, so
/// KVM keeps QEMU's default CPU model.
#[test]
fn kvm_keeps_the_default_cpu_model() {
    let args = args(&files(), &launch(Accel::Kvm)).unwrap();
    assert_eq!(value_of(&args, "-accel"), "kvm");
    assert!(!joined(&args).contains("-cpu"));
}

#[test]
fn resources_and_ssh_forward_come_from_the_launch() {
    let args = args(&files(), &launch(Accel::Tcg)).unwrap();
    assert_eq!(value_of(&args, "-m"), "2048");
    assert_eq!(value_of(&args, "-smp"), "2");
    assert_eq!(
        value_of(&args, "-netdev"),
        "user,id=n0,hostfwd=tcp:127.0.0.1:40022-:22"
    );
    assert!(joined(&args).contains("virtio-net-pci,netdev=n0,mac=52:54:00:01:02:03"));
}

#[test]
fn sockets_are_relative_and_logs_absolute() {
    let args = args(&files(), &launch(Accel::Tcg)).unwrap();
    assert_eq!(value_of(&args, "-qmp"), "unix:qmp.sock,server=on,wait=off");
    assert_eq!(
        value_of(&args, "-chardev"),
        "socket,path=qga.sock,server=on,wait=off,id=qga0"
    );
    assert_eq!(
        value_of(&args, "-serial"),
        "file:/p/.oxbake/local/vms/web-b/serial.log"
    );
    assert_eq!(
        value_of(&args, "-pidfile"),
        "/p/.oxbake/local/vms/web-b/pid"
    );
    assert!(joined(&args).contains("name=org.qemu.guest_agent.0"));
    assert_eq!(args.last().unwrap(), "-daemonize");
}

#[test]
fn seed_drive_is_attached_only_when_present() {
    let with = joined(&args(&files(), &launch(Accel::Tcg)).unwrap());
    assert!(with.contains("file=seed.iso,format=raw,if=virtio,readonly=on"));
    let without = joined(
        &args(
            &files(),
            &Launch {
                with_seed: false,
                ..launch(Accel::Tcg)
            },
        )
        .unwrap(),
    );
    assert!(!without.contains("seed.iso"));
    assert!(
        without
            .contains("file=disk.qcow2,format=qcow2,if=virtio,discard=unmap,detect-zeroes=unmap")
    );
}

#[test]
fn mac_is_stable_and_local() {
    assert_eq!(mac_for("web-b"), mac_for("web-b"));
    assert_ne!(mac_for("web-b"), mac_for("web-c"));
    assert!(mac_for("x").starts_with("52:54:00:"));
    assert_eq!(mac_for("x").len(), 17);
}

/// A deployed VM: the segment NIC first (the guest's `eth0`), then the
/// management NIC with the recorded MAC; no guest forwarding relays.
#[test]
fn a_deployed_vm_is_on_its_segment_and_a_management_nic() {
    let network = crate::target::VmNetwork {
        segment: "lab".into(),
        address: "10.99.0.20".parse().unwrap(),
        prefix: 24,
        gateway: "10.99.0.1".parse().unwrap(),
        ports: vec![],
    };
    let launch = Launch {
        net: Some(super::super::netdev::NetLaunch {
            network,
            forwards: vec![],
        }),
        ..launch(Accel::Tcg)
    };
    let args = args(&files(), &launch).unwrap();
    let netdevs: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "-netdev")
        .map(|w| w[1].to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        netdevs,
        [
            "vde,id=n0,sock=../../nets/lab/sock",
            "user,id=n1,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:40022-:22",
        ]
    );
    assert!(joined(&args).contains("virtio-net-pci,netdev=n1,mac=52:54:00:01:02:03"));
    assert!(!joined(&args).contains("guestfwd"));
}
