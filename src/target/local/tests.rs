//! The local target's file handling, without booting anything: VMs are
//! created, templated and destroyed on a tiny qcow2 "base image".

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::*;
use crate::suite::Suite;
use crate::target::{Artifact, Labels, Source, TemplateMeta, VmKind, VmState};

fn base_image(dir: &Path) -> PathBuf {
    let path = dir.join("base.qcow2");
    let ok = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("64M")
        .status()
        .unwrap();
    assert!(ok.success());
    path
}

fn spec(name: &str, source: Source) -> VmSpec {
    VmSpec {
        name: name.into(),
        source,
        cores: 1,
        memory_mib: 256,
        disk_gib: Some(1),
        labels: Labels {
            run_id: "r1".into(),
            role: "web".into(),
            kind: VmKind::Builder,
            env: None,
            version: None,
        },
        network: None,
        node: None,
    }
}

/// What a build would record for version 1 of `role`.
fn meta(role: &str) -> TemplateMeta {
    TemplateMeta {
        role: role.into(),
        version: "1".into(),
        inputs: "0".repeat(64),
        parent: None,
    }
}

fn target(project: &Path, base: Option<PathBuf>) -> LocalTarget {
    LocalTarget::new(project, base, AccelMode::Tcg, Progress::silent())
}

fn backing_chain(disk: &Path) -> String {
    let out = std::process::Command::new("qemu-img")
        .args(["info", "-U", "--backing-chain"])
        .arg(disk)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_created_vm_is_a_private_overlay_with_labels() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Some(base_image(dir.path())));
    let vm = t
        .create_vm(&spec("web-b", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    let files = t.state.vm("web-b");
    assert_eq!(
        std::fs::metadata(&files.dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        lifecycle::virtual_size(&files.disk()).await.unwrap(),
        1 << 30
    );
    assert!(backing_chain(&files.disk()).contains("base.qcow2"));
    let listed = t.list_vms().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].handle, vm);
    assert_eq!(listed[0].state, VmState::Stopped);
    assert_eq!(listed[0].labels.get().unwrap().run_id, "r1");
}

#[tokio::test]
async fn names_must_be_unique_and_a_base_must_exist() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Some(base_image(dir.path())));
    t.create_vm(&spec("web-b", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    let err = t
        .create_vm(&spec("web-b", Source::Base(Suite::Bookworm)))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "vm `web-b` already exists");
    let err = target(dir.path(), None)
        .create_vm(&spec("x", Source::Base(Suite::Bookworm)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TargetError::NoBaseImage(Suite::Bookworm)),
        "{err}"
    );
    let err = t
        .create_vm(&spec("y", Source::Base(Suite::Trixie)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no trixie base image: run `oxbake base bootstrap --suite trixie` or \
         `oxbake base import … --suite trixie`"
    );
}

#[tokio::test]
async fn a_failed_create_leaves_no_folder_behind() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(dir.path());
    let t = target(dir.path(), Some(base.clone()));
    std::fs::write(&base, b"not an image").unwrap();
    let err = t
        .create_vm(&spec("web-b", Source::Base(Suite::Bookworm)))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("command `qemu-img"), "{err}");
    assert_eq!(t.list_vms().await.unwrap(), vec![]);
    assert!(!t.state.vm("web-b").dir.exists());
}

#[tokio::test]
async fn templates_form_backing_chains_and_protect_their_children() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Some(base_image(dir.path())));
    let mut base_spec = spec("base-b", Source::Base(Suite::Bookworm));
    base_spec.labels.role = "base".into();
    let vm = t.create_vm(&base_spec).await.unwrap();
    let parent = t.make_template(&vm, "base-1", &meta("base")).await.unwrap();
    assert!(
        !t.state.vm("base-b").dir.exists(),
        "the VM became the template"
    );
    let Artifact::Local { path, sha256 } = &parent.artifact else {
        panic!("{parent:?}")
    };
    assert_eq!(
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777,
        0o444
    );
    assert_eq!(sha256, &base_meta::sha256_file(path).await.unwrap());

    let child_vm = t
        .create_vm(&spec("web-b", Source::Template(parent.clone())))
        .await
        .unwrap();
    let child = t
        .make_template(&child_vm, "web-1", &meta("web"))
        .await
        .unwrap();
    let Artifact::Local {
        path: child_path, ..
    } = &child.artifact
    else {
        panic!()
    };
    let chain = backing_chain(child_path);
    assert!(
        chain.contains("base-1.qcow2") && chain.contains("base.qcow2"),
        "{chain}"
    );
    assert_eq!(
        t.list_templates().await.unwrap(),
        vec![parent.clone(), child.clone()]
    );

    let err = t
        .destroy_template(&parent, &meta("base"))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "template `base-1` is still used by template `web-1`"
    );
    t.destroy_template(&child, &meta("web")).await.unwrap();
    t.destroy_template(&parent, &meta("base")).await.unwrap();
    assert_eq!(t.list_templates().await.unwrap(), vec![]);
}

#[tokio::test]
async fn template_names_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Some(base_image(dir.path())));
    let a = t
        .create_vm(&spec("a", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    t.make_template(&a, "web-1", &meta("web")).await.unwrap();
    let b = t
        .create_vm(&spec("b", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    let err = t
        .make_template(&b, "web-1", &meta("web"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "template `web-1` already exists");
    assert!(t.state.vm("b").disk().exists(), "the VM is left as it was");
}

#[tokio::test]
async fn destroy_removes_the_folder_and_tolerates_a_missing_vm() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Some(base_image(dir.path())));
    let vm = t
        .create_vm(&spec("web-b", Source::Base(Suite::Bookworm)))
        .await
        .unwrap();
    t.destroy(&vm).await.unwrap();
    assert!(!t.state.vm("web-b").dir.exists());
    t.destroy(&vm).await.unwrap();
    let err = t.start(&vm).await.unwrap_err();
    assert_eq!(err.to_string(), "vm `web-b` does not exist");
}

#[tokio::test]
async fn proxmox_templates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let t = target(dir.path(), Some(base_image(dir.path())));
    let foreign = TemplateRef {
        name: "web-1".into(),
        artifact: Artifact::Proxmox {
            node: "pve1".into(),
            vmid: 9001,
            name: "web-1".into(),
        },
    };
    let err = t
        .create_vm(&spec("x", Source::Template(foreign)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "template `web-1` belongs to another target (an image baked on the local target \
         reaches a proxmox one with `oxbake publish`)"
    );
}
