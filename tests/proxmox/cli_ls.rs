//! `oxbake ls --target sim`: the registry against the simulator's
//! templates, through the CLI. A record whose template is gone is missing
//! on the target; an oxbake template no record names is not in the
//! registry; records of other targets are not compared.

use oxbake::registry::{Artifact, ImageRecord, NewImage, Registry};

use crate::support::project::TestProject;
use crate::support::pve_sim::{NODE, PveSim, SimVm};

fn record(project: &TestProject, target: &str, vmid: u32) -> ImageRecord {
    Registry::for_project(project.root())
        .record_with("web", |v| NewImage {
            inputs: "a".repeat(64).parse().unwrap(),
            parent: "base@2026.11.24.1".parse().unwrap(),
            target: target.into(),
            artifact: Artifact::Proxmox {
                node: NODE.into(),
                vmid,
                template: format!("web-{v}"),
            },
            repositories: Default::default(),
            packages: Default::default(),
            checks: Vec::new(),
            builder: None,
            size: None,
        })
        .unwrap()
}

fn template(name: &str) -> SimVm {
    let mut vm = SimVm {
        node: NODE.into(),
        ..Default::default()
    };
    for (k, v) in [
        ("name", name),
        ("tags", "kind-template;oxbake;role-web"),
        ("template", "1"),
        ("memory", "1024"),
    ] {
        vm.config.insert(k.into(), v.into());
    }
    vm
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_names_templates_missing_on_either_side() {
    let sim = PveSim::start().await;
    let project = TestProject::copy();
    sim.add_to(&project, "sim");
    let present = record(&project, "sim", 210);
    let gone = record(&project, "sim", 211);
    record(&project, "pve", 9100);
    sim.insert_vm(210, template(&format!("web-{}", present.version)));
    sim.insert_vm(212, template("web-2026.01.01.1"));

    let run = tokio::task::spawn_blocking(move || {
        let json = PveSim::oxbake(&project, &["ls", "--target", "sim", "--json"]);
        let text = PveSim::oxbake(&project, &["ls", "web", "--target", "sim"]);
        (json, text)
    });
    let (json, text) = run.await.unwrap();
    assert_eq!(json.code(), 0, "{}", json.stderr());
    let doc: serde_json::Value = serde_json::from_str(&json.stdout()).unwrap();
    let target = &doc["target"];
    assert_eq!(target["in_sync"], false, "{doc}");
    let missing = target["missing_on_target"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{doc}");
    assert_eq!(missing[0]["image"], gone.id());
    let stray = target["not_in_registry"].as_array().unwrap();
    assert_eq!(stray.len(), 1, "{doc}");
    assert_eq!(stray[0]["name"], "web-2026.01.01.1");

    assert_eq!(text.code(), 0, "{}", text.stderr());
    let out = text.stdout();
    assert!(
        out.contains(&format!("missing on the target: {}", gone.id())),
        "{out}"
    );
    assert!(
        out.contains("not in the registry: template pve1/212 (web-2026.01.01.1)"),
        "{out}"
    );
    assert!(!out.contains(&format!("{}/210", NODE)), "{out}");
}
