//! [`admit`] with a real `vde_switch` (no QEMU is started).

use std::path::Path;

use super::*;
use crate::progress::{Event, Progress};
use crate::suite::Suite;
use crate::target::local::AccelMode;
use crate::target::{Labels, Source, Target, VmKind, VmSpec};

fn network(address: &str) -> VmNetwork {
    VmNetwork {
        segment: "lab".into(),
        address: address.parse().unwrap(),
        prefix: 24,
        gateway: "10.99.0.1".parse().unwrap(),
        ports: vec![],
    }
}

async fn target_with_vm(project: &Path, progress: Progress) -> LocalTarget {
    let base = project.join("base.qcow2");
    let ok = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&base)
        .arg("64M")
        .status()
        .unwrap();
    assert!(ok.success());
    let t = LocalTarget::new(project, Some(base), AccelMode::Tcg, progress);
    let spec = VmSpec {
        name: "lab-db-1".into(),
        source: Source::Base(Suite::Bookworm),
        cores: 1,
        memory_mib: 256,
        disk_gib: None,
        labels: Labels::new("r1", "db", VmKind::Deployed),
        network: Some(network("10.99.0.10")),
        node: None,
    };
    t.create_vm(&spec).await.unwrap();
    t
}

#[tokio::test]
async fn the_first_start_starts_the_switch_and_later_ones_share_it() {
    let dir = tempfile::tempdir().unwrap();
    let t = target_with_vm(dir.path(), Progress::silent()).await;
    let (lock, segment) = admit(&t, "lab-db-1", &network("10.99.0.10")).await.unwrap();
    drop(lock);
    let Switch::Running { pid } = segment.switch().await.unwrap() else {
        panic!("no switch");
    };
    let (_lock, again) = admit(&t, "lab-db-2", &network("10.99.0.11")).await.unwrap();
    assert_eq!(again.switch().await.unwrap(), Switch::Running { pid });
    segment.remove().await.unwrap();
}

/// A switch that died with no VM on it is restarted (with a warning).
#[tokio::test]
async fn a_dead_switch_without_running_vms_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let (progress, mut events) = Progress::channel();
    let t = target_with_vm(dir.path(), progress).await;
    let segment = Segment::new(t.state.root(), "lab").unwrap();
    let first = segment.start().await.unwrap();
    assert!(process::kill(first).await);
    assert_eq!(segment.switch().await.unwrap(), Switch::Dead);
    let (_lock, segment) = admit(&t, "lab-db-1", &network("10.99.0.10")).await.unwrap();
    let Switch::Running { pid } = segment.switch().await.unwrap() else {
        panic!("the switch was not restarted");
    };
    assert_ne!(pid, first);
    let warned = std::iter::from_fn(|| events.try_recv().ok())
        .any(|e| matches!(e, Event::Warn(line) if line.contains("starting a new one")));
    assert!(warned);
    segment.remove().await.unwrap();
}
