//! The local target trusts no file it did not just check: a template is
//! cloned only while it holds what its record says, `gc` leaves a VM whose
//! labels it cannot read, a template a disk is backed by is kept, backing
//! chains survive moving the project, and `ls --target local` matches
//! records with their files. Nothing boots: disks are made with qemu-img.

mod drift;
mod gc;
mod verify;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use oxbake::progress::Progress;
use oxbake::suite::Suite;
use oxbake::target::local::{AccelMode, LocalTarget};
use oxbake::target::{Artifact, Labels, Source, Target, TemplateMeta, TemplateRef, VmKind, VmSpec};
use sha2::{Digest, Sha256};

/// A 64 MiB qcow2 file with no backing file.
pub fn base_image(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    qemu_img(&["create", "-q", "-f", "qcow2"], path, &["64M"]);
    path.to_path_buf()
}

/// Runs `qemu-img ARGS PATH REST`; panics unless it succeeds.
pub fn qemu_img(args: &[&str], path: &Path, rest: &[&str]) -> String {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .arg(path)
        .args(rest)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "qemu-img {args:?} {}: {text}",
        path.display()
    );
    text
}

pub fn target(project: &Path, base: &Path) -> LocalTarget {
    LocalTarget::new(
        project,
        Some(base.to_path_buf()),
        AccelMode::Tcg,
        Progress::silent(),
    )
}

pub fn spec(name: &str, source: Source, kind: VmKind) -> VmSpec {
    VmSpec {
        name: name.into(),
        source,
        cores: 1,
        memory_mib: 256,
        disk_gib: None,
        labels: Labels::new("dead-run", "ui", kind),
        network: None,
        node: None,
    }
}

/// A template `name` made the way a build makes one: a VM on `source`,
/// turned into a template.
pub async fn template(t: &LocalTarget, name: &str, source: Source) -> TemplateRef {
    let meta = meta_of(name);
    let mut builder = spec(&format!("{name}-b"), source, VmKind::Builder);
    builder.labels.role = meta.role.clone();
    let vm = t.create_vm(&builder).await.unwrap();
    t.make_template(&vm, name, &meta).await.unwrap()
}

/// The metadata of the template `ROLE-VERSION` the test helpers make.
pub fn meta_of(name: &str) -> TemplateMeta {
    let (role, version) = name.rsplit_once('-').expect("ROLE-VERSION");
    TemplateMeta {
        role: role.into(),
        version: version.into(),
        inputs: "0".repeat(64),
        parent: None,
    }
}

pub fn path_of(template: &TemplateRef) -> &Path {
    match &template.artifact {
        Artifact::Local { path, .. } => path,
        Artifact::Proxmox { .. } => panic!("{template:?}"),
    }
}

pub fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// Flips the last byte of a read-only file in place, keeping its size,
/// inode and modification time (only its ctime tells).
pub fn flip_last_byte(path: &Path) {
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut data = std::fs::read(path).unwrap();
    *data.last_mut().unwrap() ^= 0x01;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &data[data.len() - 1..], data.len() as u64 - 1)
        .unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o444)).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

/// An image of `role` recorded in the registry of `project` with a real
/// template made on `t` (named `ROLE-VERSION`, as a build names it).
pub fn recorded_template(
    rt: &tokio::runtime::Runtime,
    t: &LocalTarget,
    project: &Path,
    role: &str,
) -> (oxbake::registry::ImageRecord, TemplateRef) {
    let registry = oxbake::registry::Registry::for_project(project);
    let mut made = None;
    let record =
        crate::channels::record_with(&registry, role, crate::channels::Img::root(), |role, v| {
            let tpl = rt.block_on(template(
                t,
                &format!("{role}-{v}"),
                Source::Base(Suite::Bookworm),
            ));
            let Artifact::Local { path, sha256 } = &tpl.artifact else {
                panic!("{tpl:?}")
            };
            let artifact = oxbake::registry::Artifact::Local {
                path: path.strip_prefix(project).unwrap().to_path_buf(),
                sha256: sha256.parse().unwrap(),
            };
            made = Some(tpl);
            artifact
        });
    (record, made.unwrap())
}
