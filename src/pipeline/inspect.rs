//! The offline inspection of a finished template: its file system, read
//! without booting it ([`ImageFs`]), must hold what the clean-up promised
//! (each selected operation's [`Proof`]s), what every clean-up does (no
//! builder user, no passwd backups, no apt credentials, os-release naming
//! the image) and no secret the build used, found by value anywhere on the
//! file system. A booted clone cannot see this: its first boot rewrites
//! what the template left behind.

use serde::Serialize;

use super::hygiene::{APT_PROXY_CONF, BUILDER_USER, ImageId, UNSAFE_IO};
use std::path::{Path, PathBuf};

use crate::project::Project;
use crate::recipe::clean::{Operation, Proof, select};
use crate::registry::{Artifact, ImageRecord};
use crate::target::TargetError;
use crate::target::local::image_fs::{ImageFs, Place};

/// `oxbake inspect ROLE[@VERSION]`: the local template of `record`,
/// inspected with its role's clean-up as the recipe now selects it (the
/// defaults if the role is gone). Secrets are looked for by the build,
/// which knows which ones it used. Returns the template file and the
/// findings.
pub async fn image(
    project: &Project,
    record: &ImageRecord,
    scratch: &Path,
) -> Result<(PathBuf, Vec<Finding>), TargetError> {
    let refuse = |why: String| TargetError::Inspect {
        image: record.id(),
        why,
    };
    let Artifact::Local { path, .. } = &record.artifact else {
        return Err(refuse(
            "only local templates are files oxbake can read offline; a Proxmox template's disk is not (docs/operations.md)".to_owned(),
        ));
    };
    let file = project.root.join(path);
    let operations = match project.recipes.get(&record.role) {
        Some(recipe) => recipe.recipe.clean_operations(),
        None => select(&["defaults"]),
    }
    .map_err(|e| refuse(e.to_string()))?;
    let fs = ImageFs::open(&file, scratch).await?;
    let version = record.version.to_string();
    let id = ImageId {
        role: &record.role,
        version: &version,
    };
    let findings = inspect(&fs, id, &operations, &[]).await?;
    Ok((file, findings))
}

/// One thing a template must not hold, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The file (or `free space at …`).
    pub path: String,
    /// What is wrong, in a phrase.
    pub what: String,
}

/// What every clean-up does, whatever operations a recipe selects.
const ALWAYS: &[Proof] = &[
    Proof::Absent("/etc/passwd-"),
    Proof::Absent("/etc/shadow-"),
    Proof::Absent("/etc/group-"),
    Proof::Absent("/etc/gshadow-"),
    Proof::Absent("/etc/sudoers.d/90-cloud-init-users"),
    Proof::NoEntryStarting("/etc/apt/auth.conf.d", "oxbake-"),
    Proof::Absent(APT_PROXY_CONF),
];

/// Inspects `fs`: the proofs of `operations` and of every clean-up, the
/// image's os-release, and `secrets` (by value; never shown).
pub async fn inspect(
    fs: &ImageFs,
    image: ImageId<'_>,
    operations: &[&Operation],
    secrets: &[&str],
) -> Result<Vec<Finding>, TargetError> {
    let mut findings = Vec::new();
    let unsafe_io = Proof::Absent(UNSAFE_IO);
    let proofs = ALWAYS
        .iter()
        .chain([&unsafe_io])
        .chain(operations.iter().flat_map(|op| op.proves.iter()));
    for proof in proofs {
        check(fs, proof, &mut findings).await?;
    }
    let home = format!("/home/{BUILDER_USER}");
    if exists(fs, &home).await? {
        findings.push(Finding {
            path: home,
            what: "the builder user's home must not be in a template".to_owned(),
        });
    }
    for file in ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow"] {
        let text = fs.read(file).await?.unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        if text.lines().any(names_builder) {
            findings.push(Finding {
                path: file.to_owned(),
                what: format!("names the builder user `{BUILDER_USER}`"),
            });
        }
    }
    os_release(fs, image, &mut findings).await?;
    let values: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
    for (index, place) in fs.find(&values).await? {
        let what = format!("holds the value of secret #{} the build used", index + 1);
        let path = match place {
            Place::File(path) => path,
            Place::FreeSpace { offset } => {
                format!("free space at byte {offset} of the file system")
            }
        };
        findings.push(Finding { path, what });
    }
    findings.dedup();
    Ok(findings)
}

/// A passwd/group/shadow line of the builder user, or a group line that
/// lists it as a member.
fn names_builder(line: &str) -> bool {
    let fields: Vec<&str> = line.split(':').collect();
    fields.first() == Some(&BUILDER_USER)
        || fields
            .get(3)
            .is_some_and(|members| members.split(',').any(|u| u == BUILDER_USER))
}

async fn check(
    fs: &ImageFs,
    proof: &Proof,
    findings: &mut Vec<Finding>,
) -> Result<(), TargetError> {
    let mut found = |path: String, what: &str| {
        findings.push(Finding {
            path,
            what: what.to_owned(),
        })
    };
    match *proof {
        Proof::Absent(path) => {
            if exists(fs, path).await? {
                found(path.to_owned(), "must not exist in a template");
            }
        }
        Proof::EmptyFile(path) => match fs.read(path).await? {
            None => found(path.to_owned(), "must exist, empty"),
            Some(bytes) if !bytes.is_empty() => found(path.to_owned(), "must be empty"),
            Some(_) => {}
        },
        Proof::EmptyDir(dir) => {
            for entry in entries(fs, dir).await? {
                found(format!("{dir}/{}", entry), "must not be in a template");
            }
        }
        Proof::NoEntryStarting(dir, prefix) => {
            for entry in entries(fs, dir).await? {
                if entry.starts_with(prefix) {
                    found(format!("{dir}/{entry}"), "must not be in a template");
                }
            }
        }
        Proof::EmptyFilesUnder(dir) => {
            for (path, entry) in fs.walk(dir).await? {
                if entry.is_file() && entry.size > 0 {
                    found(path, "must be empty in a template");
                }
            }
        }
        Proof::NoneNamed(dir, name) => {
            for (path, entry) in fs.walk(dir).await? {
                if entry.name == name {
                    found(path, "must not be in a template");
                }
            }
        }
    }
    Ok(())
}

async fn entries(fs: &ImageFs, dir: &str) -> Result<Vec<String>, TargetError> {
    let listed = fs.list(&[dir]).await?;
    Ok(listed
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.name)
        .collect())
}

async fn exists(fs: &ImageFs, path: &str) -> Result<bool, TargetError> {
    let (parent, name) = match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((parent, name)) => (parent, name),
        None => return Ok(false),
    };
    Ok(entries(fs, parent).await?.iter().any(|e| e == name))
}

/// os-release names the image: `IMAGE_ID=ROLE`, `IMAGE_VERSION=VERSION`.
async fn os_release(
    fs: &ImageFs,
    image: ImageId<'_>,
    findings: &mut Vec<Finding>,
) -> Result<(), TargetError> {
    let path = "/usr/lib/os-release";
    let text = fs.read(path).await?.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let value = |key: &str| {
        text.lines()
            .rev()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim_matches('"').to_owned())
    };
    for (key, want) in [("IMAGE_ID", image.role), ("IMAGE_VERSION", image.version)] {
        if value(key).as_deref() != Some(want) {
            findings.push(Finding {
                path: path.to_owned(),
                what: format!("must say {key}={want}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::target::local::image_fs::fixture;

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// What a clean template's file system looks like.
    fn clean_root(root: &Path) {
        write(root, "etc/machine-id", "");
        write(
            root,
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nops:x:1000:1000::/home/ops:/bin/bash\n",
        );
        write(root, "etc/group", "root:x:0:\nssh-users:x:1001:ops\n");
        write(
            root,
            "usr/lib/os-release",
            "ID=debian\nIMAGE_ID=ui\nIMAGE_VERSION=2026.12.04.1\n",
        );
        write(root, "var/log/nginx/access.log", "");
        write(root, "etc/ssh/sshd_config", "PasswordAuthentication no\n");
        std::fs::create_dir_all(root.join("var/lib/dhcp")).unwrap();
        std::fs::create_dir_all(root.join("tmp")).unwrap();
    }

    const IMAGE: ImageId<'static> = ImageId {
        role: "ui",
        version: "2026.12.04.1",
    };

    async fn findings(root: &Path, dir: &Path, secrets: &[&str]) -> Vec<Finding> {
        let qcow2 = fixture(dir, root);
        let fs = ImageFs::open(&qcow2, &dir.join("scratch")).await.unwrap();
        let operations = select(&["defaults"]).unwrap();
        inspect(&fs, IMAGE, &operations, secrets).await.unwrap()
    }

    #[tokio::test]
    async fn a_clean_template_passes_and_each_trace_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        clean_root(&root);
        assert_eq!(findings(&root, dir.path(), &["hunter2-XYZ"]).await, []);

        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        clean_root(&root);
        write(
            &root,
            "var/lib/dhcp/dhclient.eth0.leases",
            "lease { fixed-address 10.0.2.15; }\n",
        );
        write(&root, "etc/hostname", "build-ui-1a2b\n");
        write(&root, "etc/ssh/ssh_host_ed25519_key", "KEY\n");
        write(&root, "var/lib/systemd/random-seed", "seed");
        write(&root, "var/log/nginx/access.log", "GET /\n");
        write(&root, "etc/app/db.conf", "password = hunter2-XYZ\n");
        write(
            &root,
            "etc/passwd-",
            "oxbake-build:x:1001:1001::/home/oxbake-build:/bin/sh\n",
        );
        write(
            &root,
            "etc/group",
            "root:x:0:\nssh-users:x:1001:ops,oxbake-build\n",
        );
        write(&root, "usr/lib/os-release", "ID=debian\n");
        let found = findings(&root, dir.path(), &["hunter2-XYZ"]).await;
        let paths: Vec<&str> = found.iter().map(|f| f.path.as_str()).collect();
        for path in [
            "/var/lib/dhcp/dhclient.eth0.leases",
            "/etc/hostname",
            "/etc/ssh/ssh_host_ed25519_key",
            "/var/lib/systemd/random-seed",
            "/var/log/nginx/access.log",
            "/etc/app/db.conf",
            "/etc/passwd-",
            "/etc/group",
            "/usr/lib/os-release",
        ] {
            assert!(paths.contains(&path), "{path} not named: {found:#?}");
        }
        // A secret is named by number, never shown.
        assert!(found.iter().all(|f| !f.what.contains("hunter2")));
    }

    #[tokio::test]
    async fn a_dropped_operation_is_not_held_against_the_template() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        clean_root(&root);
        write(&root, "var/log/nginx/access.log", "GET /\n");
        let qcow2 = fixture(dir.path(), &root);
        let fs = ImageFs::open(&qcow2, &dir.path().join("scratch"))
            .await
            .unwrap();
        let kept = select(&["defaults", "-logfiles"]).unwrap();
        assert_eq!(inspect(&fs, IMAGE, &kept, &[]).await.unwrap(), []);
    }
}
