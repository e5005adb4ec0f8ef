//! The order in which `oxbake prune` removes a template and its record,
//! with a fault at each step (Proxmox simulator): the registry cannot be
//! written (nothing is destroyed), the template cannot be destroyed (the
//! record stays, unflagged, as it is still whole), the record cannot be
//! removed (its marker stays, `ls` flags it, promotion refuses it, and the
//! next prune finishes). Files are made immutable with `chattr +i`, which
//! holds for root too.

use std::path::{Path, PathBuf};
use std::process::Command;

use oxbake::pipeline::prune_plan::PruneAction;
use oxbake::registry::RegistryError;

use super::ownership::setup;
use super::sim::vmid;

/// `chattr +i` on a path until dropped.
struct Immutable(PathBuf);

impl Immutable {
    fn new(path: &Path) -> Self {
        chattr("+i", path);
        let probe = if path.is_dir() {
            std::fs::write(path.join("probe"), "x").is_err()
        } else {
            std::fs::remove_file(path).is_err()
        };
        assert!(probe, "`{}` is still writable", path.display());
        Self(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        chattr("-i", &self.0);
    }
}

fn chattr(flag: &str, path: &Path) {
    let status = Command::new("chattr").arg(flag).arg(path).status().unwrap();
    assert!(status.success(), "chattr {flag} {}", path.display());
}

#[tokio::test]
async fn an_unwritable_registry_destroys_nothing_and_dry_run_says_so() {
    let s = setup().await;
    let dir = s.registry.dir().join("ui");
    let guard = Immutable::new(&dir);
    for dry_run in [true, false] {
        let report = s.prune(dry_run).await;
        let e = s.old_entry(&report);
        assert_eq!(e.action, PruneAction::Failed, "{e:?}");
        let why = e.why.join("; ");
        assert!(
            why.contains("the registry cannot be written, so nothing was destroyed")
                && why.contains("images/ui"),
            "{why}"
        );
        assert!(s.sim.vm(vmid(&s.old.1)).is_some(), "template destroyed");
    }
    drop(guard);
    assert!(s.registry.get("ui", &s.old.0.version).is_ok());
}

#[tokio::test]
async fn a_template_that_cannot_be_destroyed_keeps_its_record_unmarked() {
    let s = setup().await;
    let id = vmid(&s.old.1);
    let mut vm = s.sim.vm(id).unwrap();
    vm.lock = Some("backup".into());
    s.sim.insert_vm(id, vm);
    let report = s.prune(false).await;
    let e = s.old_entry(&report);
    assert_eq!(e.action, PruneAction::Failed, "{e:?}");
    assert!(
        e.why.join(" ").contains("cannot destroy its template"),
        "{e:?}"
    );
    assert!(s.sim.vm(id).is_some());
    assert!(s.registry.get("ui", &s.old.0.version).is_ok());
    assert!(
        s.registry.pending_removals().unwrap().is_empty(),
        "marker removed"
    );
}

#[tokio::test]
async fn a_record_that_cannot_be_removed_stays_marked_until_the_next_prune() {
    let s = setup().await;
    let (old, old_tpl) = &s.old;
    let record = s.registry.dir().join(format!("ui/{}.toml", old.version));
    let guard = Immutable::new(&record);
    let report = s.prune(false).await;
    let e = s.old_entry(&report);
    assert_eq!(e.action, PruneAction::Failed, "{e:?}");
    let marker = format!("images/ui/{}.pruning", old.version);
    assert!(e.why.join(" ").contains(&marker), "{e:?}");
    assert!(s.sim.vm(vmid(old_tpl)).is_none(), "the template went first");
    drop(guard);

    // `ls` flags the record; it cannot be promoted meanwhile.
    let attention = s.registry.attention(None).unwrap();
    assert_eq!(attention.removals.len(), 1, "{attention:?}");
    assert!(attention.text().contains(&format!("ui@{}", old.version)));
    let run = s.project.oxbake(&["ls"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stdout().contains("a prune stopped while removing it"),
        "{}",
        run.stdout()
    );
    let err = s
        .registry
        .set_channel("ui", "dev", &old.version, "t", "x")
        .unwrap_err();
    assert!(matches!(err, RegistryError::BeingRemoved { .. }), "{err}");

    // The next prune finishes: the template is gone, so the record goes.
    let report = s.prune(false).await;
    let e = s.old_entry(&report);
    assert_eq!(e.action, PruneAction::Removed, "{e:?}");
    assert!(s.registry.get("ui", &old.version).is_err());
    assert!(s.registry.attention(None).unwrap().is_empty());
}
