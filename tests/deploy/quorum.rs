//! A role whose recipe keeps a majority (`[deploy] quorum = "majority"`)
//! and bootstraps its first VM (`bootstrap_commands`), in process against
//! the Proxmox simulator: a first deploy of three, a second one that is a
//! no-op although slot 1 was seeded with the bootstrap commands, and a
//! count lowered from 3 to 1 refused before anything is changed.

use oxbake::pipeline::deploy::DeployError;

use crate::support::deploy_sim::Harness;
use crate::support::pve_sim::BASE_VMID;

/// The services recipe of the harness's project, made a quorum role with
/// bootstrap commands.
fn make_quorum_role(h: &Harness) {
    let path = h.dir.path().join("recipes/services.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "[deploy]\n",
        "[deploy]\nquorum = \"majority\"\nbootstrap_commands = [\"echo first of the role\"]\n",
    );
    std::fs::write(path, text).unwrap();
}

fn vm_count(h: &Harness) -> usize {
    h.sim
        .vmids()
        .into_iter()
        .filter(|v| *v != BASE_VMID)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_role_bootstraps_once_and_its_majority_is_not_destroyed() {
    let h = Harness::one_wave(3).await;
    make_quorum_role(&h);
    let first = h.deploy_quiet().await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|d| d.action == "create"), "{first:?}");
    assert_eq!(vm_count(&h), 3);

    let again = h.deploy_quiet().await.unwrap();
    assert!(
        again.iter().all(|d| d.action == "keep"),
        "the bootstrap seed must not look changed: {again:?}"
    );

    h.set_services(1);
    let changes = |h: &Harness| {
        h.sim
            .requests()
            .iter()
            .filter(|r| r.method != "GET")
            .count()
    };
    let before = changes(&h);
    let refused = h.deploy_quiet().await.unwrap_err();
    let DeployError::Quorum { source, .. } = &refused else {
        panic!("{refused:?}");
    };
    let reason = source.to_string();
    for part in ["`services`", "destroys 2 of 3", "leaving 1", "majority"] {
        assert!(reason.contains(part), "{reason}");
    }
    assert!(!refused.is_invalid_input(), "exit 1, not 2");
    assert_eq!(changes(&h), before, "a refused plan changed the cluster");
    assert_eq!(vm_count(&h), 3);
}
