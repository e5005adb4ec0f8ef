//! TLS fails closed through the CLI: `oxbake build ROLE --target sim` with a
//! wrong pinned fingerprint, or with no pin and a certificate no system
//! root vouches for, exits 1 after the handshake. The message names the
//! endpoint (and, when pinned, both fingerprints); the simulator saw no
//! request and has nothing new.

use crate::support::project::{Run, TestProject};
use crate::support::pve_sim::{BASE_VMID, PveSim};

const WRONG: &str = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:\
                     00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";

/// Builds `base` with the simulator as target `sim`, its settings changed
/// by `change`.
async fn build_with(
    sim: &PveSim,
    change: impl FnOnce(&mut oxbake::config::ProxmoxSettings),
) -> Run {
    let project = TestProject::copy();
    let mut settings = sim.cli_settings();
    change(&mut settings);
    PveSim::add_target(&project, "sim", settings);
    let run = tokio::task::spawn_blocking(move || {
        PveSim::oxbake(&project, &["build", "base", "--target", "sim"])
    });
    run.await.unwrap()
}

fn assert_untouched(sim: &PveSim) {
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert_eq!(sim.vmids(), [BASE_VMID]);
    assert!(sim.volumes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pinned_fingerprint_stops_the_build_after_the_handshake() {
    let sim = PveSim::start().await;
    let run = build_with(&sim, |s| s.fingerprint = Some(WRONG.into())).await;
    let err = run.stderr();
    assert_eq!(run.code(), 1, "{err}");
    assert!(err.contains(&sim.endpoint()), "{err}");
    assert!(err.contains(WRONG), "expected fingerprint missing: {err}");
    assert!(
        err.contains(&sim.fingerprint()),
        "actual fingerprint missing: {err}"
    );
    assert!(
        !err.contains(crate::support::pve_sim::TOKEN_SECRET),
        "{err}"
    );
    assert_untouched(&sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_ca_without_a_pin_stops_the_build() {
    let sim = PveSim::start().await;
    let run = build_with(&sim, |s| s.fingerprint = None).await;
    let err = run.stderr();
    assert_eq!(run.code(), 1, "{err}");
    let refused = format!("proxmox `{}`: TLS handshake refused", sim.endpoint());
    assert!(err.contains(&refused), "{err}");
    assert!(
        err.contains("`ca_file`") && err.contains("`fingerprint`"),
        "{err}"
    );
    assert_untouched(&sim);
}
