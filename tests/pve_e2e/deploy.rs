//! `oxbake publish`, `deploy`, `destroy` and `prune` on the QEMU-backed
//! simulator: a one-step role baked on the local target is published to
//! the cluster (flattened, uploaded as `import` content, imported into a
//! VM, converted), a one-VM environment deploys from the published
//! template (clone, NoCloud seed ISO with the static address, start,
//! cloud-init done, checks), the seed ISO is gone once the VM is healthy, a
//! second deploy does nothing, a revoked version is refused, prune keeps
//! the version while the VM runs it, and once the environment is destroyed
//! prune removes both places of the version: the published template and
//! the local one, then the record.

use oxbake::registry::Registry;

use crate::support::e2e::vm_lock;
use crate::support::output::prune_entry;
use crate::support::pve_sim::PveSim;
use crate::support::qemu::Reaper;

use super::{assert_ok, assert_only_templates, latest, project};

/// What `dmini` adds to the marker role: a check of the deployed value and
/// the `[deploy]` table that writes it.
const DEPLOYED: &str = r#"
[[check]]
name = "the deployed greeting arrived by cloud-init"
run = "cat /etc/oxbake-greeting"
stdout_contains = ["hello from simlab"]
deployed_only = true

[deploy]
values = ["greeting"]
commands = ["test -s /etc/oxbake-greeting"]

[[deploy.template]]
source = "dmini/greeting.j2"
dest = "/etc/oxbake-greeting"
"#;

/// QEMU's user network gives every guest 10.0.2.15 behind 10.0.2.2, so
/// the environment's static address is that one.
const ENV: &str = r#"
[environments.simlab]
target = "sim"
channel = "dev"
user = "ops"
ssh_keys = []

[environments.simlab.network]
prefix = 24
gateway = "10.0.2.2"
dns = ["10.0.2.3"]

[environments.simlab.roles.dmini]
addresses = ["10.0.2.15"]
memory_mib = 1024

[environments.simlab.roles.dmini.values]
greeting = "hello from simlab"
"#;

#[test]
fn a_published_image_deploys_and_prune_removes_both_places_on_the_simulator() {
    let _vms = vm_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sim, guests) = runtime.block_on(PveSim::start_qemu_backed());
    let _reaper = Reaper(guests.dir().to_path_buf());
    let project = project(&sim, "pve-deploy-project");
    let description = "test role: one step, one check that needs the deployed values";
    let recipe = super::marker_role("dmini", description, DEPLOYED);
    project.write("recipes/dmini.toml", &recipe);
    project.write("templates/dmini/greeting.j2", "{{ env.greeting }}\n");
    let config = project.read("oxbake.toml");
    project.write("oxbake.toml", &format!("{config}{ENV}"));

    let build = PveSim::oxbake(&project, &["build", "dmini"]);
    assert_ok(&build, &guests, "oxbake build dmini (local)");
    let record = latest(&project, "dmini");
    assert_eq!(record.target, "local");
    let image = record.id();
    let publish = PveSim::oxbake(&project, &["publish", &image, "--target", "sim", "--json"]);
    assert_ok(&publish, &guests, "oxbake publish --target sim");
    let doc: serde_json::Value = serde_json::from_str(&publish.stdout()).unwrap();
    assert_eq!(doc["publish"]["published"], true, "{doc}");
    let template = doc["publish"]["vmid"].as_u64().unwrap() as u32;
    let vm = sim.vm(template).expect("the published template");
    assert!(vm.is_template(), "{vm:?}");
    assert_eq!(vm.name(), format!("dmini-{}", record.version));
    let uploads: Vec<String> = sim.volumes().into_iter().map(|(v, _)| v).collect();
    assert!(uploads.is_empty(), "the import volume stays: {uploads:?}");
    let registry = Registry::for_project(project.root());
    let published = &registry.get("dmini", &record.version).unwrap().published;
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0].target, "sim");
    registry
        .set_channel("dmini", "dev", &record.version, "test", "deploy on sim")
        .unwrap();

    let deploy = PveSim::oxbake(&project, &["deploy", "simlab", "--json"]);
    assert_ok(&deploy, &guests, "oxbake deploy simlab");
    let deployed: Vec<u32> = sim
        .vmids()
        .into_iter()
        .filter(|id| sim.vm(*id).is_some_and(|vm| !vm.is_template()))
        .collect();
    assert_eq!(deployed.len(), 1, "one deployed VM: {deployed:?}");
    let clones = sim.count("POST", &format!("/qemu/{template}/clone"));
    assert_eq!(clones, 1, "the deploy cloned the published template");
    let vm = sim.vm(deployed[0]).unwrap();
    let tags: Vec<&str> = vm.config["tags"].split(';').collect();
    let version_tag = format!("v-{}", record.version);
    for tag in [
        "oxbake",
        "role-dmini",
        "kind-deployed",
        "env-simlab",
        &version_tag,
    ] {
        assert!(tags.contains(&tag), "{tag} missing from {tags:?}");
    }
    let volumes: Vec<String> = sim.volumes().into_iter().map(|(v, _)| v).collect();
    assert!(
        volumes.is_empty(),
        "the seed ISO stays after health: {volumes:?}"
    );

    // oxbake logged in only with the host key it seeded, and pinned it.
    let known = project.read(".oxbake/known_hosts/simlab");
    let line: Vec<&str> = known.split_whitespace().collect();
    assert_eq!(line.len(), 4, "{known}");
    assert!(line[0].starts_with("10.0.2.15,[127.0.0.1]:"), "{known}");
    assert_eq!((line[1], line[3]), ("ssh-ed25519", vm.name().as_str()));

    let again = PveSim::oxbake(&project, &["deploy", "simlab"]);
    assert_ok(&again, &guests, "second oxbake deploy simlab");
    assert_eq!(
        again.stdout(),
        "nothing to do: environment `simlab` is up to date\n"
    );

    // `status` reads the VM's age from the block oxbake wrote into its
    // description.
    let status = PveSim::oxbake(&project, &["status", "simlab", "--json"]);
    assert_ok(&status, &guests, "oxbake status simlab");
    let doc: serde_json::Value = serde_json::from_str(&status.stdout()).unwrap();
    let listed = &doc["vms"][0];
    assert_eq!(listed["health"], "healthy", "{doc:#}");
    let age = listed["age_seconds"].as_i64().unwrap_or(-1);
    assert!((0..900).contains(&age), "{doc:#}");
    let created: jiff::Timestamp = listed["created"].as_str().unwrap().parse().unwrap();
    assert!(created <= jiff::Timestamp::now(), "{doc:#}");

    registry
        .revoke("dmini", &record.version, "bad marker", "test")
        .unwrap();
    let refused = PveSim::oxbake(&project, &["deploy", "simlab"]);
    assert_eq!(refused.code(), 1, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("is revoked: bad marker"),
        "{}",
        refused.stderr()
    );

    // A newer version in the channel (recorded directly: its bake is not
    // what this test is about) and a retention of one: the VM on the
    // cluster still runs the published copy, so prune keeps the version.
    let newer = registry
        .record(
            "dmini",
            oxbake::registry::NewImage {
                inputs: "f".repeat(64).parse().unwrap(),
                parent: record.parent.clone(),
                target: "local".into(),
                artifact: oxbake::registry::Artifact::Local {
                    path: ".oxbake/local/templates/dmini-stand-in.qcow2".into(),
                    sha256: "0".repeat(64).parse().unwrap(),
                },
                repositories: Default::default(),
                packages: Default::default(),
                checks: Vec::new(),
                builder: None,
                size: None,
            },
        )
        .unwrap();
    registry
        .set_channel("dmini", "dev", &newer.version, "test", "newer")
        .unwrap();
    let config = project.read("oxbake.toml");
    project.write("oxbake.toml", &config.replace("keep = 5", "keep = 1"));
    let kept = PveSim::oxbake(&project, &["prune", "--dry-run", "--json"]);
    assert_ok(&kept, &guests, "oxbake prune --dry-run");
    let entry = prune_entry(&kept.stdout(), &image);
    assert_eq!(entry["action"], "keep", "{entry}");
    let why = entry["why"].to_string();
    assert!(
        why.contains(&format!("deployed VM `{}` runs it", vm.name())),
        "{why}"
    );

    let destroy = PveSim::oxbake(&project, &["destroy", "simlab"]);
    assert_ok(&destroy, &guests, "oxbake destroy simlab");
    assert_eq!(project.read(".oxbake/known_hosts/simlab"), "");
    assert_only_templates(&sim, &guests, &[template]);

    let local_file = match &record.artifact {
        oxbake::registry::Artifact::Local { path, .. } => project.root().join(path),
        other => panic!("not a local artifact: {other:?}"),
    };
    assert!(local_file.exists(), "{}", local_file.display());
    let prune = PveSim::oxbake(&project, &["prune", "--json"]);
    assert_ok(&prune, &guests, "oxbake prune");
    assert_eq!(prune_entry(&prune.stdout(), &image)["action"], "removed");
    assert_only_templates(&sim, &guests, &[]);
    assert!(!local_file.exists(), "the local template stays");
    assert!(
        registry.get("dmini", &record.version).is_err(),
        "the record stays"
    );
}
