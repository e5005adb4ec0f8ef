//! Prune's decision, without a target: which images stay and why.

use oxbake::pipeline::prune_plan::{DeployedImage, PlanInput, PruneAction, plan};
use oxbake::registry::{Channels, ImageRecord, Registry};

use super::{Img, record};

fn decide(
    records: &[ImageRecord],
    channels: &Channels,
    deployed: &[DeployedImage],
    keep: usize,
) -> Vec<(String, PruneAction, Vec<String>)> {
    plan(&PlanInput {
        records,
        channels,
        deployed,
        keep,
        target: "local",
    })
    .into_iter()
    .map(|e| (format!("{}@{}", e.role, e.version), e.action, e.why))
    .collect()
}

#[test]
fn keeps_newest_channel_deployed_foreign_and_parents_of_kept_children() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    let b: Vec<ImageRecord> = (0..4)
        .map(|_| record(&registry, "base", Img::root()))
        .collect();
    let u: Vec<ImageRecord> = [0, 1, 2, 3, 3, 3]
        .iter()
        .map(|&p| record(&registry, "ui", Img::child_of(&b[p])))
        .collect();
    let other = record(
        &registry,
        "web",
        Img {
            target: "pve",
            ..Img::root()
        },
    );
    let old_web = record(&registry, "web", Img::root());
    record(&registry, "web", Img::root());
    let newest_web = record(&registry, "web", Img::root());
    registry
        .set_channel("ui", "prod", &u[0].version, "t", "x")
        .unwrap();
    let deployed = [DeployedImage {
        vm: "prod-ui-1".into(),
        role: "ui".into(),
        version: u[1].version.to_string(),
    }];
    let records = registry.list(None).unwrap();
    let decided = decide(&records, &registry.channels().unwrap(), &deployed, 2);
    let action = |r: &ImageRecord| decided.iter().find(|d| d.0 == r.id()).unwrap();
    let removed: Vec<String> = decided
        .iter()
        .filter(|d| d.1 == PruneAction::Remove)
        .map(|d| d.0.clone())
        .collect();
    assert_eq!(removed, [u[3].id(), u[2].id(), old_web.id()]);
    assert_eq!(action(&u[0]).2, ["channel `prod` points at it"]);
    assert_eq!(action(&u[1]).2, ["deployed VM `prod-ui-1` runs it"]);
    assert_eq!(
        action(&b[0]).2,
        [format!("kept image `{}` was built from it", u[0].id())]
    );
    assert_eq!(
        action(&b[1]).2,
        [format!("kept image `{}` was built from it", u[1].id())]
    );
    assert_eq!(action(&b[3]).2[0], "one of the newest 2");
    assert_eq!(action(&other).2, ["it lives on target `pve`"]);
    assert_eq!(action(&newest_web).2, ["one of the newest 2"]);
    // Children come before their parents, whatever the versions say.
    let pos = |id: &str| decided.iter().position(|d| d.0 == id).unwrap();
    for child in &u {
        let oxbake::registry::Parent::Image { role, version } = &child.parent else {
            panic!()
        };
        assert!(pos(&child.id()) < pos(&format!("{role}@{version}")));
    }
}

#[test]
fn a_chain_of_parents_is_kept_transitively() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    let base = record(&registry, "base", Img::root());
    let mid = record(&registry, "mid", Img::child_of(&base));
    let top = record(&registry, "top", Img::child_of(&mid));
    for _ in 0..2 {
        record(&registry, "base", Img::root());
        record(&registry, "mid", Img::root());
    }
    let records = registry.list(None).unwrap();
    let decided = decide(&records, &Channels::default(), &[], 1);
    let kept = |id: String| {
        decided
            .iter()
            .any(|d| d.0 == id && d.1 == PruneAction::Keep)
    };
    assert!(kept(top.id()) && kept(mid.id()) && kept(base.id()));
    let removed = decided
        .iter()
        .filter(|d| d.1 == PruneAction::Remove)
        .count();
    assert_eq!(removed, 2, "{decided:?}");
}

#[test]
fn a_published_image_goes_like_any_other_unless_a_vm_on_its_copy_target_runs_it() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(dir.path());
    let r: Vec<ImageRecord> = (0..3)
        .map(|_| record(&registry, "web", Img::root()))
        .collect();
    let copy = |version: &oxbake::registry::Version, vmid| oxbake::registry::Published {
        target: "pve".into(),
        when: "2026-12-06T10:00:00Z".parse().unwrap(),
        sha256: "d".repeat(64).parse().unwrap(),
        artifact: oxbake::registry::Artifact::Proxmox {
            node: "pve1".into(),
            vmid,
            template: format!("web-{version}"),
        },
    };
    registry
        .publish("web", &r[0].version, copy(&r[0].version, 9150), None)
        .unwrap();
    registry
        .publish("web", &r[1].version, copy(&r[1].version, 9151), None)
        .unwrap();
    let records = registry.list(None).unwrap();
    // The prune collects the VMs of the copies' targets with its own.
    let deployed = [DeployedImage {
        vm: "pve-web-1".into(),
        role: "web".into(),
        version: r[1].version.to_string(),
    }];
    let decided = decide(&records, &registry.channels().unwrap(), &deployed, 1);
    let oldest = decided.iter().find(|d| d.0 == r[0].id()).unwrap();
    assert_eq!(oldest.1, PruneAction::Remove, "{decided:?}");
    let middle = decided.iter().find(|d| d.0 == r[1].id()).unwrap();
    assert_eq!(middle.1, PruneAction::Keep, "{decided:?}");
    assert_eq!(middle.2, ["deployed VM `pve-web-1` runs it"]);
}
