//! End-to-end test of the local target: base image, builder VM, template,
//! overlay VM, clean-up. Boots real QEMU guests (TCG: a few minutes).
#![cfg(feature = "e2e")]
// The test reports its timings on stderr (`--nocapture`).
#![allow(clippy::print_stderr)]

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use oxbake::progress::Progress;
use oxbake::suite::Suite;

use crate::support::e2e::vm_lock;
use crate::support::qemu::{Reaper, qemu_pids};
use oxbake::target::cloudinit::{BuilderSeed, HostKey, builder_seed};
use oxbake::target::local::base::{self, BootstrapOptions};
use oxbake::target::local::{AccelMode, LocalTarget};
use oxbake::target::{Artifact, Labels, Source, Target, VmHandle, VmKind, VmSpec};

const USER: &str = "oxbake";

#[test]
fn base_image_bootstrap_is_cached() {
    let _vms = vm_lock();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(base_image_bootstrap_is_cached_body());
}

async fn base_image_bootstrap_is_cached_body() {
    let opts = BootstrapOptions::new(base::default_cache_dir(), Suite::Bookworm);
    let t = Instant::now();
    let first = base::bootstrap(&opts, &Progress::silent()).await.unwrap();
    eprintln!("bootstrap: {:?}", t.elapsed());
    let t = Instant::now();
    let second = base::bootstrap(&opts, &Progress::silent()).await.unwrap();
    let cached = t.elapsed();
    eprintln!("cached bootstrap: {cached:?}");
    assert_eq!(first, second);
    assert!(cached.as_secs_f64() < 1.0, "{cached:?}");
}

/// A client key and a guest host key made with ssh-keygen in a 0700 folder.
struct Keys {
    dir: tempfile::TempDir,
    client_pub: String,
    host_private: String,
    host_pub: String,
}

impl Keys {
    fn generate() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        for name in ["client", "host"] {
            let ok = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
                .arg(dir.path().join(name))
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
        Self {
            client_pub: read("client.pub"),
            host_private: read("host"),
            host_pub: read("host.pub"),
            dir,
        }
    }

    fn seed(&self, instance: &str) -> oxbake::target::CloudInit {
        builder_seed(&BuilderSeed {
            instance_id: instance,
            hostname: instance,
            user: USER,
            authorized_key: &self.client_pub,
            host_key: HostKey {
                private_openssh: &self.host_private,
                public_openssh: &self.host_pub,
            },
            mac: None,
            group: None,
            apt_proxy: None,
        })
    }

    /// Runs `command` in the guest with the host key pinned.
    fn ssh(&self, addr: SocketAddr, command: &str) -> String {
        let known = self.dir.path().join("known_hosts");
        std::fs::write(
            &known,
            format!("[{}]:{} {}", addr.ip(), addr.port(), self.host_pub),
        )
        .unwrap();
        let out = Command::new("ssh")
            .args([
                "-F",
                "/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "IdentitiesOnly=yes",
            ])
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", known.display()))
            .arg("-i")
            .arg(self.dir.path().join("client"))
            .args([
                "-p",
                &addr.port().to_string(),
                &format!("{USER}@{}", addr.ip()),
                command,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "`{command}`: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

fn spec(name: &str, source: Source, kind: VmKind) -> VmSpec {
    VmSpec {
        name: name.into(),
        source,
        cores: 2,
        memory_mib: 2048,
        disk_gib: Some(10),
        labels: Labels {
            run_id: "e2e-run".into(),
            role: "web".into(),
            kind,
            env: None,
            version: None,
        },
        network: None,
        node: None,
    }
}

async fn boot(target: &LocalTarget, vm: &VmHandle, keys: &Keys, instance: &str) -> SocketAddr {
    let t = Instant::now();
    target
        .set_cloud_init(vm, &keys.seed(instance))
        .await
        .unwrap();
    target.start(vm).await.unwrap();
    let addr = target
        .ssh_endpoint(vm, Duration::from_secs(600))
        .await
        .unwrap();
    eprintln!("{}: ssh answers after {:?}", vm.name, t.elapsed());
    let status = keys.ssh(addr, "cloud-init status --wait");
    assert!(status.contains("status: done"), "{status}");
    eprintln!("{}: cloud-init done after {:?}", vm.name, t.elapsed());
    addr
}

#[test]
fn builder_vm_becomes_a_template_that_an_overlay_vm_boots_from() {
    let _vms = vm_lock();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(builder_vm_becomes_a_template_that_an_overlay_vm_boots_from_body());
}

async fn builder_vm_becomes_a_template_that_an_overlay_vm_boots_from_body() {
    let total = Instant::now();
    let image = base::bootstrap(
        &BootstrapOptions::new(base::default_cache_dir(), Suite::Bookworm),
        &Progress::silent(),
    )
    .await
    .unwrap();
    let project = tempfile::tempdir().unwrap();
    let _reaper = Reaper(project.path().to_path_buf());
    let (progress, mut events) = Progress::channel();
    let target = LocalTarget::new(
        project.path(),
        Some(image.path.clone()),
        AccelMode::Auto,
        progress,
    );
    let keys = Keys::generate();

    let builder = target
        .create_vm(&spec(
            "e2e-builder",
            Source::Base(Suite::Bookworm),
            VmKind::Builder,
        ))
        .await
        .unwrap();
    let addr = boot(&target, &builder, &keys, "e2e-builder").await;
    let facts = keys.ssh(
        addr,
        "sudo touch /etc/oxbake-baked && hostname && df -BG --output=size / | tail -1",
    );
    assert!(facts.starts_with("e2e-builder\n"), "{facts}");
    let size: u32 = facts
        .lines()
        .last()
        .unwrap()
        .trim()
        .trim_end_matches('G')
        .parse()
        .unwrap();
    assert!(size >= 9, "root file system not grown: {size}G");
    let t = Instant::now();
    assert!(
        !target
            .shutdown(&builder, Duration::from_secs(120))
            .await
            .unwrap(),
        "shutdown had to force"
    );
    eprintln!("e2e-builder: powered off in {:?}", t.elapsed());

    let meta = oxbake::target::TemplateMeta {
        role: "web".into(),
        version: "1.0.0".into(),
        inputs: "0".repeat(64),
        parent: None,
    };
    let template = target
        .make_template(&builder, "web-1.0.0", &meta)
        .await
        .unwrap();
    let Artifact::Local { path, .. } = &template.artifact else {
        panic!("{template:?}")
    };
    assert_eq!(
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(
        target.list_templates().await.unwrap(),
        vec![template.clone()]
    );
    assert!(
        target.list_vms().await.unwrap().is_empty(),
        "the builder VM became the template"
    );

    let smoke = target
        .create_vm(&spec(
            "e2e-smoke",
            Source::Template(template.clone()),
            VmKind::Smoke,
        ))
        .await
        .unwrap();
    let chain = Command::new("qemu-img")
        .args(["info", "-U", "--backing-chain"])
        .arg(
            project
                .path()
                .join(".oxbake/local/vms/e2e-smoke/disk.qcow2"),
        )
        .output()
        .unwrap();
    let chain = String::from_utf8_lossy(&chain.stdout);
    // The template is named relative to the overlay (the project folder
    // may move), so qemu-img shows it as `../../templates/NAME`.
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        chain.contains(&format!("backing file: ../../templates/{name}"))
            && chain.contains(&image.path.to_string_lossy().into_owned()),
        "{chain}"
    );
    let addr = boot(&target, &smoke, &keys, "e2e-smoke").await;
    assert_eq!(
        keys.ssh(addr, "test -f /etc/oxbake-baked && hostname"),
        "e2e-smoke\n"
    );
    let listed = target.list_vms().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels.get().unwrap().kind, VmKind::Smoke);

    let err = target.destroy_template(&template, &meta).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "template `web-1.0.0` is still used by vm `e2e-smoke`"
    );
    target.destroy(&smoke).await.unwrap();
    target.destroy_template(&template, &meta).await.unwrap();
    assert!(target.list_vms().await.unwrap().is_empty());
    assert!(target.list_templates().await.unwrap().is_empty());
    assert_eq!(qemu_pids(project.path()), Vec::<String>::new());
    assert_eq!(
        std::fs::read_dir(project.path().join(".oxbake/local/vms"))
            .unwrap()
            .count(),
        0
    );
    drop(target);
    while let Ok(event) = events.try_recv() {
        eprintln!("event: {event:?}");
    }
    eprintln!("total: {:?}", total.elapsed());
}
