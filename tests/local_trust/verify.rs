//! A local template is checked against the sha256 its record names before
//! anything is cloned from it, and so is every template below it in its
//! backing chain; backing files are named relative to the disk, so the
//! project folder can move.

use oxbake::suite::Suite;
use oxbake::target::{Artifact, Source, Target, TargetError, TemplateRef, VmKind};

use super::{
    base_image, flip_last_byte, meta_of, path_of, qemu_img, sha256_of, spec, target, template,
};
use crate::channels::{Img, record_with};
use crate::support::project::TestProject;

fn assert_changed(err: &TargetError, path: &std::path::Path, expected: &str) {
    let text = err.to_string();
    let actual = sha256_of(path);
    assert!(
        text.contains(&path.display().to_string())
            && text.contains(expected)
            && text.contains(&actual),
        "{text}"
    );
    assert!(
        matches!(err, TargetError::TemplateChanged { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_template_that_changed_since_its_record_is_never_cloned() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(&dir.path().join("cache/base.qcow2"));
    let project = dir.path().join("project");
    let t = target(&project, &base);
    let parent = template(&t, "base-1", Source::Base(Suite::Bookworm)).await;
    let child = template(&t, "ui-1", Source::Template(parent.clone())).await;
    let clone =
        |name: &str, from: &TemplateRef| spec(name, Source::Template(from.clone()), VmKind::Smoke);
    let vms = project.join(".oxbake/local/vms");

    // Untouched: cloned (twice, the second time on the stamp of the first).
    for name in ["ok-1", "ok-2"] {
        let vm = t.create_vm(&clone(name, &child)).await.unwrap();
        t.destroy(&vm).await.unwrap();
    }

    // One byte of the parent changes, size and mtime kept: every clone of
    // the parent and of its child is refused, naming the parent's file.
    let parent_sha = match &parent.artifact {
        Artifact::Local { sha256, .. } => sha256.clone(),
        _ => unreachable!(),
    };
    flip_last_byte(path_of(&parent));
    for from in [&parent, &child] {
        let err = t.create_vm(&clone("bad", from)).await.unwrap_err();
        assert_changed(&err, path_of(&parent), &parent_sha);
        assert!(!vms.join("bad").exists(), "a refused clone left its folder");
    }
    // Changed back: the contents match again and clones work.
    flip_last_byte(path_of(&parent));
    let vm = t.create_vm(&clone("ok-3", &child)).await.unwrap();
    t.destroy(&vm).await.unwrap();

    // The child itself changes.
    let child_sha = match &child.artifact {
        Artifact::Local { sha256, .. } => sha256.clone(),
        _ => unreachable!(),
    };
    flip_last_byte(path_of(&child));
    let err = t.create_vm(&clone("bad", &child)).await.unwrap_err();
    assert_changed(&err, path_of(&child), &child_sha);

    // A record that names another sha256 than the file has.
    let lying = TemplateRef {
        name: parent.name.clone(),
        artifact: Artifact::Local {
            path: path_of(&parent).to_path_buf(),
            sha256: "0".repeat(64),
        },
    };
    let err = t.create_vm(&clone("bad", &lying)).await.unwrap_err();
    assert_changed(&err, path_of(&parent), &"0".repeat(64));
    assert!(!vms.join("bad").exists());
}

#[test]
fn promote_of_a_changed_local_template_fails_with_exit_1_naming_the_file() {
    let project = TestProject::copy();
    let cache = tempfile::tempdir().unwrap();
    let registry = oxbake::registry::Registry::for_project(project.root());
    let mut file = None;
    let record = record_with(&registry, "ui", Img::root(), |role, v| {
        let rel = format!(".oxbake/local/templates/{role}-{v}.qcow2");
        let path = base_image(&project.path(&rel));
        let sha256 = sha256_of(&path);
        file = Some(path);
        oxbake::registry::Artifact::Local {
            path: rel.into(),
            sha256: sha256.parse().unwrap(),
        }
    });
    let file = file.unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o444)).unwrap();
    let expected = sha256_of(&file);
    flip_last_byte(&file);
    let version = record.version.to_string();
    let run = project.oxbake_env(
        &["promote", "ui", &version, "--to", "dev"],
        &[("OXBAKE_CACHE_DIR", cache.path().to_str().unwrap())],
    );
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    let canonical = file.canonicalize().unwrap();
    assert!(
        err.contains(&canonical.display().to_string())
            && err.contains(&expected)
            && err.contains(&sha256_of(&file)),
        "{err}"
    );
    assert!(
        !project.path(".oxbake/local/vms").exists()
            || std::fs::read_dir(project.path(".oxbake/local/vms"))
                .unwrap()
                .next()
                .is_none()
    );
}

#[tokio::test]
async fn backing_chains_survive_moving_the_project_folder() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_image(&dir.path().join("cache/base.qcow2"));
    let before = dir.path().join("before");
    let t = target(&before, &base);
    let parent = template(&t, "base-1", Source::Base(Suite::Bookworm)).await;
    let child = template(&t, "ui-1", Source::Template(parent.clone())).await;
    t.create_vm(&spec(
        "lab-ui-1",
        Source::Template(child.clone()),
        VmKind::Deployed,
    ))
    .await
    .unwrap();

    let after = dir.path().join("after");
    std::fs::rename(&before, &after).unwrap();
    let moved = |p: &std::path::Path| after.join(p.strip_prefix(&before).unwrap());
    let disks = [
        moved(path_of(&child)),
        after.join(".oxbake/local/vms/lab-ui-1/disk.qcow2"),
    ];
    for disk in &disks {
        qemu_img(&["check", "-q"], disk, &[]);
        let chain = qemu_img(&["info", "-U", "--backing-chain"], disk, &[]);
        assert!(!chain.contains(&before.display().to_string()), "{chain}");
        assert!(
            chain.contains("base-1.qcow2") && chain.contains("cache/base.qcow2"),
            "{chain}"
        );
    }

    // The moved target still clones and still protects what is in use.
    let t = target(&after, &base);
    let moved_ref = |r: &TemplateRef| match &r.artifact {
        Artifact::Local { path, sha256 } => TemplateRef {
            name: r.name.clone(),
            artifact: Artifact::Local {
                path: moved(path),
                sha256: sha256.clone(),
            },
        },
        _ => unreachable!(),
    };
    let vm = t
        .create_vm(&spec(
            "smoke",
            Source::Template(moved_ref(&child)),
            VmKind::Smoke,
        ))
        .await
        .unwrap();
    t.destroy(&vm).await.unwrap();
    let err = t
        .destroy_template(&moved_ref(&parent), &meta_of(&parent.name))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "template `base-1` is still used by template `ui-1`"
    );
    let err = t
        .destroy_template(&moved_ref(&child), &meta_of(&child.name))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "template `ui-1` is still used by vm `lab-ui-1`"
    );
}
