//! `oxbake build --target sim` against the Proxmox VE simulator, with a
//! fault at each step before the guest is reached: the clone task, the
//! config (lock timeout), the guest agent, the API itself (503s, a refused
//! connection, a server that never answers) and the operator's signals.
//! The simulator's VMs are in memory: no guest boots, so this matrix is
//! cheap and runs without the `e2e` feature.

use std::path::Path;
use std::time::Duration;

use super::leftovers::RegistrySnapshot;
use super::runner::{Action, Invocation};
use super::sim_project::{closed_port, silent_port};
use super::table::{Matrix, Row, row};
use crate::support::project::TestProject;
use crate::support::pve_sim::{BASE_VMID, Faults, PveSim, TOKEN_ID, TOKEN_SECRET};

const SECRET_ENV: &str = "OXBAKE_FAULTS_PVE_SECRET";

/// Points the project's `sim` target at `endpoint` (the simulator's
/// certificate pinned) with a short boot timeout.
pub fn use_sim(project: &TestProject, endpoint: &str, fingerprint: &str, boot_timeout: u64) {
    let config = project.read("oxbake.toml");
    let config = match config.find("\n# fault-matrix target\n") {
        Some(at) => config[..at].to_owned(),
        None => config,
    };
    let config = set_boot_timeout(&config, boot_timeout);
    project.write(
        "oxbake.toml",
        &format!(
            "{config}\n# fault-matrix target\n[targets.sim]\nkind = \"proxmox\"\n\
             endpoint = \"{endpoint}\"\nnodes = [\"pve1\"]\nstorage = \"local-lvm\"\n\
             bridge = \"vmbr1\"\nvmid_range = [200, 299]\nbase_template = {BASE_VMID}\n\
             token_id = \"{TOKEN_ID}\"\ntoken_secret_env = \"{SECRET_ENV}\"\n\
             fingerprint = \"{fingerprint}\"\n"
        ),
    );
}

fn set_boot_timeout(config: &str, secs: u64) -> String {
    config
        .lines()
        .map(|l| {
            if l.starts_with("boot_timeout") {
                format!("boot_timeout = {secs}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A build of `role` on the simulator's target.
pub fn build<'a>(project: &'a Path, args: &'a [&'a str]) -> Invocation<'a> {
    Invocation::new(project, args)
        .env(SECRET_ENV, TOKEN_SECRET)
        .deadline(Duration::from_secs(120))
}

/// One fault against a fresh simulator.
struct Case {
    fault: &'static str,
    step: &'static str,
    expected: i32,
    /// Texts the error output must hold.
    says: &'static [&'static str],
    boot_timeout: u64,
    set: fn(&mut Faults),
    /// A progress line and the fault fired when it shows.
    on: Option<(&'static str, &'static str)>,
}

pub(super) const BUILD: &[&str] = &["build", "base", "--target", "sim"];

fn cases() -> Vec<Case> {
    vec![
        Case {
            fault: "clone task ends in error",
            step: "create the builder VM",
            expected: 1,
            says: &["clone failed: storage full"],
            boot_timeout: 5,
            set: |f| f.fail_next_clone = Some("storage full".into()),
            on: None,
        },
        Case {
            fault: "lock timeout (500) on config",
            step: "create the builder VM",
            expected: 1,
            says: &["got timeout"],
            boot_timeout: 5,
            set: |f| f.lock_timeout_next_config = true,
            on: None,
        },
        Case {
            fault: "guest agent never answers",
            step: "boot and connect over SSH",
            expected: 1,
            says: &["guest agent: no answer within 4s (boot_timeout)"],
            boot_timeout: 4,
            set: |f| f.agent_never = true,
            on: None,
        },
        Case {
            fault: "API answers 503 to every GET",
            step: "create the builder VM",
            expected: 1,
            says: &["503"],
            boot_timeout: 5,
            set: |f| f.unavailable_gets = 10_000,
            on: None,
        },
        Case {
            fault: "SIGINT during a slow clone task",
            step: "create the builder VM",
            expected: 130,
            says: &["interrupted"],
            boot_timeout: 5,
            set: |f| f.task_time = Duration::from_secs(2),
            on: Some(("create the builder VM", "INT")),
        },
        Case {
            fault: "SIGTERM while waiting for the agent",
            step: "boot and connect over SSH",
            expected: 130,
            says: &["interrupted", "removed builder VM"],
            boot_timeout: 60,
            set: |f| f.agent_never = true,
            on: Some(("boot and connect over SSH", "TERM")),
        },
        Case {
            fault: "SIGINT while waiting for the agent",
            step: "boot and connect over SSH",
            expected: 130,
            says: &["interrupted", "removed builder VM"],
            boot_timeout: 60,
            set: |f| f.agent_never = true,
            on: Some(("boot and connect over SSH", "INT")),
        },
        Case {
            fault: "no SSH behind the agent's address",
            step: "boot and connect over SSH",
            expected: 1,
            says: &["SSH"],
            boot_timeout: 4,
            set: |_| {},
            on: None,
        },
    ]
}

fn run_case(runtime: &tokio::runtime::Runtime, project: &TestProject, case: &Case) -> Row {
    let sim = runtime.block_on(PveSim::start());
    use_sim(
        project,
        &sim.endpoint(),
        &sim.fingerprint(),
        case.boot_timeout,
    );
    sim.faults(case.set);
    let before = RegistrySnapshot::take(project.root());
    let mut run = build(project.root(), BUILD);
    if let Some((trigger, sig)) = case.on {
        run = run.on(trigger, Action::Signal(sig, Duration::from_millis(1500)));
    }
    let out = run.run();
    let leftovers = sim_leftovers(&sim);
    row(
        case.fault,
        case.step,
        case.expected,
        case.says,
        &out,
        leftovers,
        &before,
        project.root(),
    )
}

/// The simulator's VMs (but the base template) and volumes (seed ISOs,
/// uploads).
pub(super) fn sim_leftovers(sim: &PveSim) -> Vec<String> {
    let mut leftovers: Vec<String> = sim
        .vmids()
        .into_iter()
        .filter(|id| *id != BASE_VMID)
        .map(|id| format!("vm {id}"))
        .collect();
    leftovers.extend(
        sim.volumes()
            .into_iter()
            .map(|(v, _)| format!("volume {v}")),
    );
    leftovers
}

fn unreachable_api(project: &TestProject, m: &mut Matrix) {
    let fingerprint = "AA:".repeat(31) + "AA";
    let port = closed_port();
    use_sim(
        project,
        &format!("https://127.0.0.1:{port}"),
        &fingerprint,
        5,
    );
    let before = RegistrySnapshot::take(project.root());
    let out = build(project.root(), BUILD).run();
    m.push(row(
        "API refuses the connection",
        "create the builder VM",
        1,
        &["Connection refused"],
        &out,
        Vec::new(),
        &before,
        project.root(),
    ));
    let port = silent_port();
    use_sim(
        project,
        &format!("https://127.0.0.1:{port}"),
        &fingerprint,
        5,
    );
    // Each request gives up after 2 s (GETs after 4 tries), so the
    // interrupted creation and the clean-up's listing end in seconds, not
    // at their 30 s limits.
    let config = project.read("oxbake.toml");
    project.write("oxbake.toml", &format!("{config}request_timeout = 2\n"));
    let out = build(project.root(), BUILD)
        .on(
            "create the builder VM",
            Action::Signal("TERM", Duration::from_secs(2)),
        )
        .deadline(Duration::from_secs(120))
        .run();
    m.push(row(
        "API never answers, then SIGTERM",
        "create the builder VM",
        130,
        &[
            "interrupted",
            "cannot list VMs to clean up",
            "no answer within 2s (4 attempts)",
        ],
        &out,
        Vec::new(),
        &before,
        project.root(),
    ));
}

#[test]
fn fault_matrix_against_the_simulator() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let project = TestProject::copy();
    let mut m = Matrix::new("oxbake build on the Proxmox simulator (no guest)");
    for case in cases() {
        m.push(run_case(&runtime, &project, &case));
    }
    unreachable_api(&project, &mut m);
    m.finish();
}
