//! The NICs of a local VM. A builder or smoke VM has one: QEMU's user-mode
//! network (DHCP, internet through the host, SSH forwarded from a loopback
//! port). A deployed VM has two, each with a MAC derived from its segment
//! and address, so its seed (made before the VM) can name them:
//!
//! - `eth0` on the environment's segment ([`super::segment`]): the declared
//!   static address, no default route. It comes first on the PCI bus, so
//!   the kernel already calls it `eth0`, as on Proxmox, where templates
//!   (keepalived's `interface eth0`, …) expect the environment's network.
//! - `eth1`, the management NIC: user-mode, on a subnet chosen not to
//!   overlap the environment's, with the default route (the archive for
//!   `apt`), SSH and the role's `ports` forwarded from loopback ports. Each
//!   forwarded port is published as `nets/SEGMENT/ADDRESS-PORT` (the
//!   loopback port in it), so a client on the host finds it.

use std::net::Ipv4Addr;
use std::path::Path;

use super::segment::{Segment, segment_dir};
use super::state::STATE_FILE;
use crate::target::{TargetError, VmNetwork, VmNics};

/// Management subnets (/24), the first that does not overlap the
/// environment's is used; QEMU's default comes first.
const MANAGEMENT_NETS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 0, 2, 0),
    Ipv4Addr::new(172, 30, 2, 0),
    Ipv4Addr::new(192, 168, 202, 0),
];

/// A VM's network for one launch: the declared network and the loopback
/// port each offered port is forwarded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetLaunch {
    pub network: VmNetwork,
    /// (guest port, loopback port), one per offered port.
    pub forwards: Vec<(u16, u16)>,
}

/// The network's base address for `address/prefix`.
pub fn subnet(address: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let bits = u32::from(address);
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    Ipv4Addr::from(bits & mask)
}

fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let prefix = a.1.min(b.1);
    subnet(a.0, prefix) == subnet(b.0, prefix)
}

/// The management NIC's /24 for a VM on `network`.
pub fn management_net(network: &VmNetwork) -> Ipv4Addr {
    let env = (network.address, network.prefix);
    MANAGEMENT_NETS
        .into_iter()
        .find(|net| !overlaps((*net, 24), env))
        // A /0../7 environment overlaps all of them; QEMU then refuses it.
        .unwrap_or(MANAGEMENT_NETS[0])
}

/// The NICs a deployed VM on `network` gets.
pub fn nics(network: &VmNetwork) -> VmNics {
    VmNics::Segment {
        segment_mac: mac_on(network, "segment"),
        management_mac: mac_on(network, "management"),
    }
}

/// A stable, locally administered MAC (QEMU's 52:54:00 prefix) for one NIC
/// of the VM at `network`'s address: replacements at the same place get
/// the same MACs, which the address guard keeps from ever running twice.
fn mac_on(network: &VmNetwork, nic: &str) -> String {
    super::qemu::mac_for(&format!("{}\0{}\0{nic}", network.segment, network.address))
}

/// One NIC: its `-netdev` and `-device` values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nic {
    pub netdev: String,
    pub device: String,
}

/// The NICs of a launch, in PCI order. `mac` is the VM's recorded MAC (the
/// only NIC's of a VM without a network, the management NIC's otherwise).
pub fn nic_args(
    ssh_port: u16,
    mac: &str,
    net: Option<&NetLaunch>,
) -> Result<Vec<Nic>, TargetError> {
    let ssh = format!("hostfwd=tcp:127.0.0.1:{ssh_port}-:22");
    let Some(net) = net else {
        return Ok(vec![Nic {
            netdev: format!("user,id=n0,{ssh}"),
            device: format!("virtio-net-pci,netdev=n0,mac={mac}"),
        }]);
    };
    let n = &net.network;
    let segment = Segment::new(Path::new("."), &n.segment)?;
    let VmNics::Segment { segment_mac, .. } = nics(n) else {
        unreachable!("a local VM's NICs are a segment's");
    };
    let mut user = format!("user,id=n1,net={}/24,{ssh}", management_net(n));
    for (guest, host) in &net.forwards {
        user.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
    }
    Ok(vec![
        Nic {
            netdev: format!("vde,id=n0,sock={}", segment.qemu_sock()),
            device: format!("virtio-net-pci,netdev=n0,mac={segment_mac}"),
        },
        Nic {
            netdev: user,
            device: format!("virtio-net-pci,netdev=n1,mac={mac}"),
        },
    ])
}

fn port_file_name(address: Ipv4Addr, port: u16) -> String {
    format!("{address}-{port}")
}

/// Writes this VM's port files (after QEMU started).
pub async fn publish(state_root: &Path, net: &NetLaunch) -> Result<(), TargetError> {
    crate::target::validate_name(&net.network.segment)?;
    let dir = segment_dir(state_root, &net.network.segment);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    for (guest, host) in &net.forwards {
        let path = dir.join(port_file_name(net.network.address, *guest));
        STATE_FILE
            .write_async(path.clone(), format!("{host}\n").into_bytes())
            .await
            .map_err(|e| TargetError::io(&path, e.source))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab(address: [u8; 4], prefix: u8) -> VmNetwork {
        VmNetwork {
            segment: "lab".into(),
            address: address.into(),
            prefix,
            gateway: Ipv4Addr::new(10, 99, 0, 1),
            ports: vec![443],
        }
    }

    #[test]
    fn a_deployed_vm_gets_the_segment_first_and_the_management_nic_second() {
        let net = NetLaunch {
            network: lab([10, 99, 0, 20], 24),
            forwards: vec![(443, 41443)],
        };
        let VmNics::Segment {
            segment_mac,
            management_mac,
        } = nics(&net.network)
        else {
            panic!("not a segment");
        };
        let got = nic_args(40022, &management_mac, Some(&net)).unwrap();
        assert_eq!(
            got,
            [
                Nic {
                    netdev: "vde,id=n0,sock=../../nets/lab/sock".into(),
                    device: format!("virtio-net-pci,netdev=n0,mac={segment_mac}"),
                },
                Nic {
                    netdev: "user,id=n1,net=10.0.2.0/24,hostfwd=tcp:127.0.0.1:40022-:22,\
                             hostfwd=tcp:127.0.0.1:41443-:443"
                        .into(),
                    device: format!("virtio-net-pci,netdev=n1,mac={management_mac}"),
                },
            ]
        );
        assert!(!got.iter().any(|n| n.netdev.contains("guestfwd")));
    }

    #[test]
    fn a_vm_without_network_has_one_user_mode_nic() {
        let got = nic_args(40022, "52:54:00:01:02:03", None).unwrap();
        assert_eq!(
            got,
            [Nic {
                netdev: "user,id=n0,hostfwd=tcp:127.0.0.1:40022-:22".into(),
                device: "virtio-net-pci,netdev=n0,mac=52:54:00:01:02:03".into(),
            }]
        );
    }

    #[test]
    fn the_management_subnet_never_overlaps_the_environment() {
        assert_eq!(
            management_net(&lab([10, 99, 0, 20], 24)),
            Ipv4Addr::new(10, 0, 2, 0)
        );
        assert_eq!(
            management_net(&lab([10, 0, 2, 20], 24)),
            Ipv4Addr::new(172, 30, 2, 0)
        );
        assert_eq!(
            management_net(&lab([10, 1, 0, 5], 8)),
            Ipv4Addr::new(172, 30, 2, 0)
        );
        assert_eq!(
            management_net(&lab([172, 30, 0, 1], 16)),
            Ipv4Addr::new(10, 0, 2, 0)
        );
        assert_eq!(
            subnet(Ipv4Addr::new(10, 99, 0, 21), 24),
            Ipv4Addr::new(10, 99, 0, 0)
        );
    }

    #[test]
    fn macs_are_stable_per_place_and_differ_per_nic_and_place() {
        let a = nics(&lab([10, 99, 0, 20], 24));
        assert_eq!(a, nics(&lab([10, 99, 0, 20], 24)));
        assert_ne!(a, nics(&lab([10, 99, 0, 21], 24)));
        let VmNics::Segment {
            segment_mac,
            management_mac,
        } = a
        else {
            panic!("not a segment");
        };
        assert_ne!(segment_mac, management_mac);
        assert!(segment_mac.starts_with("52:54:00:"));
    }

    #[tokio::test]
    async fn forwarded_ports_are_published_for_the_host() {
        let root = tempfile::tempdir().unwrap();
        let net = NetLaunch {
            network: lab([10, 99, 0, 20], 24),
            forwards: vec![(443, 41443)],
        };
        publish(root.path(), &net).await.unwrap();
        let file = segment_dir(root.path(), "lab").join("10.99.0.20-443");
        assert_eq!(std::fs::read_to_string(file).unwrap(), "41443\n");
    }
}
