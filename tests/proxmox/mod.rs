//! The Proxmox client and target against the API simulator
//! (tests/support/pve_sim): error classes, encodings and TLS pinning
//! (`client`), the target's lifecycle (`lifecycle`) and its fault paths
//! (`faults`), which node a task lives on (`tasks`), and shipping a local
//! image to the cluster (`publish`).

mod cli_ls;
mod cli_tls;
mod client;
mod deadlines;
mod faults;
mod lifecycle;
mod publish;
mod tasks;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxbake::progress::Progress;
use oxbake::suite::Suite;
use oxbake::target::proxmox::{
    ApiToken, ConfigChange, Form, PveClient, PveError, TlsTrust, VmRef, decode_sshkeys,
    parse_description, parse_fingerprint,
};
use oxbake::target::{
    Artifact, CloudInit, Labels, Source, Target, TargetError, TemplateMeta, VmHandle, VmKind,
    VmSpec,
};
use tokio::io::AsyncWriteExt;

use crate::support::pve_sim::{self, BASE_VMID, NODE, PveSim, SimVm};

fn base() -> VmRef {
    VmRef {
        node: NODE.into(),
        vmid: BASE_VMID,
    }
}

fn spec(name: &str, source: Source) -> VmSpec {
    VmSpec {
        name: name.into(),
        source,
        cores: 2,
        memory_mib: 2048,
        disk_gib: Some(10),
        labels: Labels {
            run_id: "Run-7".into(),
            role: "web".into(),
            kind: VmKind::Builder,
            env: None,
            version: None,
        },
        network: None,
        node: None,
    }
}

fn vmid(h: &VmHandle) -> u32 {
    h.id.rsplit('/').next().unwrap().parse().unwrap()
}

fn seed() -> CloudInit {
    CloudInit {
        user_data: "#cloud-config\n{\"users\": []}\n".into(),
        meta_data: "{\"instance-id\": \"i-1\"}\n".into(),
        network_config: None,
    }
}

/// A listener that greets like sshd, and a route to it that records the
/// address the target wanted.
async fn fake_sshd() -> (oxbake::target::proxmox::SshRoute, Arc<Mutex<Vec<IpAddr>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"SSH-2.0-sim\r\n").await;
        }
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let route: oxbake::target::proxmox::SshRoute = Arc::new(move |_, ip| {
        log.lock().unwrap().push(ip);
        SocketAddr::from(([127, 0, 0, 1], port))
    });
    (route, seen)
}
