//! Per-role node placement on Proxmox, against the in-memory simulator with
//! two nodes: `deploy --plan` places the VMs round robin and shows it, the
//! target clones onto the named node (`target`), `destroy` finds the
//! environment's VMs on every node, and `oxbake check` refuses nodes the
//! target does not have (or a local target).

use oxbake::config::ProxmoxSettings;
use oxbake::pipeline::deploy::tag::DeployTag;
use oxbake::progress::Progress;
use oxbake::suite::Suite;
use oxbake::target::{Labels, Source, Target, VmKind, VmSpec};

use super::{SECRETS, channel_with};
use crate::support::project::{Run, TestProject};
use crate::support::pve_sim::cli::SECRET_ENV;
use crate::support::pve_sim::{NODE, PveSim, TOKEN_SECRET};
use oxbake::registry::Artifact;

const UI: &str = "[environments.lab.roles.ui]\naddresses = [\"10.99.0.20\"]\n";
const UI_ON_TWO_NODES: &str = "[environments.lab.roles.ui]\ncount = 3\n\
    addresses = [\"10.99.0.20\", \"10.99.0.21\", \"10.99.0.22\"]\n\
    nodes = [\"pve1\", \"pve2\"]\n";

fn oxbake(project: &TestProject, args: &[&str]) -> Run {
    let mut env = SECRETS.to_vec();
    env.push((SECRET_ENV, TOKEN_SECRET));
    tokio::task::block_in_place(|| project.oxbake_env(args, &env))
}

/// A project whose `lab` runs on the simulator (nodes pve1 and pve2) with
/// three ui VMs on both nodes.
fn two_node_project(sim: &PveSim) -> TestProject {
    sim.add_node("pve2");
    let project = TestProject::copy();
    let settings = ProxmoxSettings {
        nodes: vec![NODE.into(), "pve2".into()],
        ..sim.cli_settings()
    };
    PveSim::add_target(&project, "sim", settings);
    let text = project.read("oxbake.toml");
    assert!(text.contains(UI), "the shipped lab changed");
    let text = text.replace(UI, UI_ON_TWO_NODES).replace(
        "[environments.lab]\n",
        "[environments.lab]\ntarget = \"sim\"\n",
    );
    project.write("oxbake.toml", &text);
    channel_with(project.root(), |role| Artifact::Proxmox {
        node: NODE.into(),
        vmid: 9100 + role.len() as u32,
        template: format!("{role}-template"),
    });
    project
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_places_a_role_round_robin_on_the_listed_nodes() {
    let sim = PveSim::start().await;
    let project = two_node_project(&sim);
    let plan = oxbake(&project, &["deploy", "lab", "--plan", "--json"]);
    assert_eq!(plan.code(), 0, "{}", plan.stderr());
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout()).unwrap();
    let placed: Vec<(String, Option<String>)> = doc["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let want = &a["want"];
            let node = want["node"].as_str().map(str::to_owned);
            (want["hostname"].as_str().unwrap().to_owned(), node)
        })
        .collect();
    let expected = [
        ("lab-backend-1", None),
        ("lab-services-1", None),
        ("lab-ui-1", Some("pve1")),
        ("lab-ui-2", Some("pve2")),
        ("lab-ui-3", Some("pve1")),
    ];
    let expected: Vec<(String, Option<String>)> = expected
        .iter()
        .map(|(h, n)| (h.to_string(), n.map(str::to_owned)))
        .collect();
    assert_eq!(placed, expected);

    let table = oxbake(&project, &["deploy", "lab", "--plan"]);
    assert_eq!(table.code(), 0, "{}", table.stderr());
    let text = table.stdout();
    let header = text.lines().next().unwrap();
    assert!(header.split_whitespace().any(|c| c == "NODE"), "{text}");
    let ui2 = text.lines().find(|l| l.contains("lab-ui-2")).unwrap();
    assert!(ui2.split_whitespace().any(|c| c == "pve2"), "{text}");
    let backend = text.lines().find(|l| l.contains("lab-backend-1")).unwrap();
    assert!(backend.split_whitespace().any(|c| c == "-"), "{text}");
}

fn deployed(name: &str, slot: u32, node: &str) -> VmSpec {
    let tag = DeployTag {
        deploy_id: "0a0b0c0d".into(),
        slot,
        seed: "00".into(),
    };
    VmSpec {
        name: name.into(),
        source: Source::Base(Suite::Bookworm),
        cores: 1,
        memory_mib: 512,
        disk_gib: None,
        labels: Labels {
            env: Some("lab".into()),
            version: Some("2026.11.25.1".into()),
            ..Labels::new(tag.to_string(), "ui", VmKind::Deployed)
        },
        network: None,
        node: Some(node.into()),
    }
}

/// The target clones onto the spec's node and addresses the VM there; an
/// unknown node is refused by the cluster and leaves nothing; `destroy`
/// removes the environment's VMs from both nodes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clones_go_to_their_node_and_destroy_finds_them_on_every_node() {
    let sim = PveSim::start().await;
    let project = two_node_project(&sim);
    let target = sim.target(Progress::silent());
    let one = target
        .create_vm(&deployed("lab-ui-1", 1, "pve1"))
        .await
        .unwrap();
    let two = target
        .create_vm(&deployed("lab-ui-2", 2, "pve2"))
        .await
        .unwrap();
    assert!(one.id.starts_with("pve1/"), "{one:?}");
    assert!(two.id.starts_with("pve2/"), "{two:?}");
    let vmid = |h: &oxbake::target::VmHandle| h.id.split('/').nth(1).unwrap().parse::<u32>();
    assert_eq!(sim.vm(vmid(&two).unwrap()).unwrap().node, "pve2");
    let clones: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/clone"))
        .collect();
    assert_eq!(clones.len(), 2);
    // The clone call goes to the template's node; `target` names the new one.
    assert!(
        clones
            .iter()
            .all(|r| r.path.starts_with("/api2/json/nodes/pve1/"))
    );
    assert!(!clones[0].body.contains("target="), "{:?}", clones[0]);
    assert!(clones[1].body.contains("target=pve2"), "{:?}", clones[1]);
    let later = format!("/nodes/pve2/qemu/{}/config", vmid(&two).unwrap());
    assert!(sim.count("POST", &later) >= 1, "configured on its node");

    let before = sim.vmids();
    let err = target
        .create_vm(&deployed("lab-ui-3", 3, "pve9"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no such cluster node 'pve9'"),
        "{err}"
    );
    assert_eq!(sim.vmids(), before, "nothing left by the refused clone");

    let listed = target.list_vms().await.unwrap();
    let nodes: Vec<_> = listed.iter().filter_map(|vm| vm.node.clone()).collect();
    assert_eq!(nodes, ["pve1", "pve2"]);

    let plan = oxbake(&project, &["deploy", "lab", "--plan", "--json"]);
    assert_eq!(plan.code(), 0, "{}", plan.stderr());
    let doc: serde_json::Value = serde_json::from_str(&plan.stdout()).unwrap();
    let old_nodes: Vec<&str> = doc["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["old"]["node"].as_str())
        .collect();
    assert_eq!(old_nodes, ["pve1", "pve2"], "{doc}");
    // Each replacement is stop-first; the old VMs were made, never
    // started, so none of the role serves and each costs a boot; one wave
    // (no `after`); the target's deploy_jobs.
    let replaces: Vec<&serde_json::Value> = doc["plan"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["action"] == "replace")
        .collect();
    assert_eq!(replaces.len(), 2, "{doc}");
    for r in &replaces {
        assert_eq!(r["strategy"], "stop-first", "{doc}");
        assert_eq!(r["old"]["running"], false, "{doc}");
        assert_eq!(r["unavailable"], "down for one boot + checks", "{doc}");
    }
    assert_eq!(
        doc["plan"]["waves"],
        serde_json::json!([["backend", "services", "ui"]])
    );
    assert_eq!(doc["jobs"], 4);
    let table = oxbake(&project, &["deploy", "lab", "--plan"]);
    let text = table.stdout();
    let row = text.lines().find(|l| l.contains("lab-ui-1")).unwrap();
    assert!(
        row.starts_with("1 ")
            && row.contains("stop-first")
            && row.ends_with("down for one boot + checks"),
        "{text}"
    );
    assert!(text.ends_with("at most 4 vm(s) at once\n"), "{text}");

    let destroyed = oxbake(&project, &["destroy", "lab", "--json"]);
    assert_eq!(destroyed.code(), 0, "{}", destroyed.stderr());
    let doc: serde_json::Value = serde_json::from_str(&destroyed.stdout()).unwrap();
    assert_eq!(
        doc["destroyed"],
        serde_json::json!(["lab-ui-1", "lab-ui-2"])
    );
    for h in [&one, &two] {
        let id = vmid(h).unwrap();
        assert!(sim.vm(id).is_none(), "{h:?} is gone");
        let node = h.id.split('/').next().unwrap();
        let path = format!("/nodes/{node}/qemu/{id}");
        assert_eq!(sim.count("DELETE", &path), 1, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_refuses_an_unknown_node_and_nodes_on_a_local_target() {
    let sim = PveSim::start().await;
    let project = two_node_project(&sim);
    let text = project.read("oxbake.toml");
    // The environment's list comes before the target's (appended last).
    let wrong = text.replacen("\"pve2\"]\n", "\"pve9\"]\n", 1);
    project.write("oxbake.toml", &wrong);
    let line = text
        .lines()
        .position(|l| l.starts_with("nodes = [\"pve1\", \"pve2\"]"))
        .unwrap()
        + 1;
    let run = oxbake(&project, &["deploy", "lab", "--plan"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert_eq!(
        run.stderr().trim(),
        format!(
            "oxbake.toml:{line}:18: environment `lab`, role `ui`: node `pve9` is not one of \
             target `sim`'s nodes (pve1, pve2)"
        )
    );
    assert!(sim.requests().is_empty(), "nothing was contacted");

    project.write("oxbake.toml", &text.replace("target = \"sim\"\n", ""));
    let run = oxbake(&project, &["check"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert_eq!(
        run.stderr().trim(),
        format!(
            "oxbake.toml:{}:10: environment `lab`, role `ui`: `nodes` needs a proxmox target; \
             target `local` runs every VM on this machine: remove `nodes`",
            line - 1
        )
    );
}
