//! `oxbake deploy --plan` against the Proxmox simulator (the in-memory
//! guests): the plan only reads, secrets stay out of it, and a revoked
//! version is refused before the cluster is contacted.

use oxbake::registry::{Artifact, Registry};

use super::{SECRETS, channel_with};
use crate::support::project::{Run, TestProject};
use crate::support::pve_sim::cli::SECRET_ENV;
use crate::support::pve_sim::{NODE, PveSim, TOKEN_SECRET};

fn oxbake(project: &TestProject, args: &[&str]) -> Run {
    let mut env = SECRETS.to_vec();
    env.push((SECRET_ENV, TOKEN_SECRET));
    tokio::task::block_in_place(|| project.oxbake_env(args, &env))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_on_the_simulator_only_reads_and_a_revoked_version_is_refused() {
    let sim = PveSim::start().await;
    let project = TestProject::copy();
    sim.add_to(&project, "sim");
    let text = project.read("oxbake.toml").replace(
        "[environments.lab]\n",
        "[environments.lab]\ntarget = \"sim\"\n",
    );
    project.write("oxbake.toml", &text);
    let versions = channel_with(project.root(), |role| Artifact::Proxmox {
        node: NODE.into(),
        vmid: 9100 + role.len() as u32,
        template: format!("{role}-template"),
    });
    let plan = oxbake(&project, &["deploy", "lab", "--plan", "--json"]);
    assert_eq!(plan.code(), 0, "{}", plan.stderr());
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout()).unwrap();
    let actions = doc["plan"]["actions"].as_array().unwrap();
    let created: Vec<&str> = actions
        .iter()
        .map(|a| a["want"]["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(created, ["lab-backend-1", "lab-services-1", "lab-ui-1"]);
    assert!(actions.iter().all(|a| a["action"] == "create"));
    let requests = sim.requests();
    assert!(!requests.is_empty());
    assert!(requests.iter().all(|r| r.method == "GET"), "{requests:?}");
    for (_, secret) in SECRETS {
        assert!(!plan.stdout().contains(secret) && !plan.stderr().contains(secret));
    }

    Registry::for_project(project.root())
        .revoke("backend", &versions["backend"], "broken schema", "test")
        .unwrap();
    let before = sim.requests().len();
    let refused = oxbake(&project, &["deploy", "lab"]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    let expected = format!(
        "`backend@{}` (channel `dev`) is revoked: broken schema",
        versions["backend"]
    );
    assert!(refused.stderr().contains(&expected), "{}", refused.stderr());
    assert_eq!(sim.requests().len(), before, "the cluster was contacted");
}
