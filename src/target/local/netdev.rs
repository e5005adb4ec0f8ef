//! The user-mode network of a deployed local VM: QEMU's slirp set to the
//! environment's subnet, the VM at its declared address, its offered ports
//! forwarded to loopback ports, and each peer's `address:port` relayed to
//! the loopback port that peer's QEMU listens on.
//!
//! Peers are found at connection time: every VM writes the loopback port of
//! each offered port to `nets/SEGMENT/ADDRESS-PORT` when it starts, and a
//! relay (`guestfwd=…-cmd:`, one process per connection) reads it. So a
//! peer that starts later, or a replacement at the same address, is reached
//! without restarting anyone.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::state::STATE_FILE;
use crate::target::{TargetError, VmNetwork};

/// The relay QEMU runs per guest connection: `sh RELAY FILE`, where FILE
/// holds the loopback port to connect to.
const RELAY: &str = "#!/bin/sh\n# Written by oxbake: relays one guest connection to a peer VM.\n\
exec socat - \"TCP:127.0.0.1:$(cat \"$(dirname \"$0\")/$1\")\"\n";

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

/// The `-netdev` value. QEMU with `-daemonize` changes to `/`, so the relay
/// is named by its absolute path, quoted for the relay's argument parser
/// (GLib shell rules) and with commas doubled for QEMU's option parser.
pub fn netdev(ssh_port: u16, net: Option<&NetLaunch>, state_root: &Path) -> String {
    let Some(net) = net else {
        return format!("user,id=n0,hostfwd=tcp:127.0.0.1:{ssh_port}-:22");
    };
    let n = &net.network;
    let mut out = format!(
        "user,id=n0,net={}/{},host={},dhcpstart={}",
        subnet(n.address, n.prefix),
        n.prefix,
        n.gateway,
        n.address
    );
    out.push_str(&format!(
        ",hostfwd=tcp:127.0.0.1:{ssh_port}-{}:22",
        n.address
    ));
    for (guest, host) in &net.forwards {
        out.push_str(&format!(
            ",hostfwd=tcp:127.0.0.1:{host}-{}:{guest}",
            n.address
        ));
    }
    let relay = segment_dir(state_root, &n.segment).join("relay");
    let relay = shell_quote(&relay.to_string_lossy()).replace(',', ",,");
    for peer in &n.peers {
        out.push_str(&format!(
            ",guestfwd=tcp:{}:{}-cmd:sh {relay} {}",
            peer.ip(),
            peer.port(),
            port_file_name(*peer.ip(), peer.port())
        ));
    }
    out
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

fn port_file_name(address: Ipv4Addr, port: u16) -> String {
    format!("{address}-{port}")
}

/// The segment folder `nets/SEGMENT` below the state folder.
pub fn segment_dir(state_root: &Path, segment: &str) -> PathBuf {
    state_root.join("nets").join(segment)
}

/// Writes the relay script and this VM's port files (after QEMU started).
pub async fn publish(state_root: &Path, net: &NetLaunch) -> Result<(), TargetError> {
    crate::target::validate_name(&net.network.segment)?;
    let dir = segment_dir(state_root, &net.network.segment);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| TargetError::io(&dir, e))?;
    write(&dir.join("relay"), RELAY).await?;
    for (guest, host) in &net.forwards {
        let file = dir.join(port_file_name(net.network.address, *guest));
        write(&file, &format!("{host}\n")).await?;
    }
    Ok(())
}

async fn write(path: &Path, text: &str) -> Result<(), TargetError> {
    STATE_FILE
        .write_async(path.to_path_buf(), text.as_bytes().to_vec())
        .await
        .map_err(|e| TargetError::io(path, e.source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_and_netdev_of_a_deployed_vm() {
        assert_eq!(
            subnet(Ipv4Addr::new(10, 99, 0, 21), 24),
            Ipv4Addr::new(10, 99, 0, 0)
        );
        let net = NetLaunch {
            network: VmNetwork {
                segment: "lab".into(),
                address: Ipv4Addr::new(10, 99, 0, 20),
                prefix: 24,
                gateway: Ipv4Addr::new(10, 99, 0, 1),
                ports: vec![443],
                peers: vec!["10.99.0.10:8009".parse().unwrap()],
            },
            forwards: vec![(443, 41443)],
        };
        assert_eq!(
            netdev(40022, Some(&net), Path::new("/p/.oxbake/local")),
            "user,id=n0,net=10.99.0.0/24,host=10.99.0.1,dhcpstart=10.99.0.20,\
             hostfwd=tcp:127.0.0.1:40022-10.99.0.20:22,hostfwd=tcp:127.0.0.1:41443-10.99.0.20:443,\
             guestfwd=tcp:10.99.0.10:8009-cmd:sh '/p/.oxbake/local/nets/lab/relay' 10.99.0.10-8009"
        );
        assert_eq!(
            netdev(40022, None, Path::new("/p")),
            "user,id=n0,hostfwd=tcp:127.0.0.1:40022-:22"
        );
    }

    #[tokio::test]
    async fn the_relay_reaches_the_port_a_peer_published() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let root = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut net = NetLaunch {
            network: VmNetwork {
                segment: "lab".into(),
                address: Ipv4Addr::new(10, 99, 0, 10),
                prefix: 24,
                gateway: Ipv4Addr::new(10, 99, 0, 1),
                ports: vec![8009],
                peers: vec![],
            },
            forwards: vec![(8009, port)],
        };
        publish(root.path(), &net).await.unwrap();
        net.forwards.clear();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"backend says hi\n").await.unwrap();
        });
        let dir = segment_dir(root.path(), "lab");
        let mut relay = tokio::process::Command::new("sh")
            .arg(dir.join("relay"))
            .arg("10.99.0.10-8009")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = String::new();
        let mut stdout = relay.stdout.take().unwrap();
        stdout.read_to_string(&mut out).await.unwrap();
        server.await.unwrap();
        assert_eq!(out, "backend says hi\n");
    }
}
