//! Concurrent `oxbake build` and `oxbake promote` runs on one project,
//! through the CLI, against the Proxmox simulator (its VMs are in memory, so
//! no guest boots; the guest agent is switched off, so every build or smoke
//! test holds its VM until its boot timeout and then fails: what is proved
//! is who waits for whom, which VMIDs are taken, and that images/ stays
//! intact). Records written by parallel processes are proved at the
//! registry level in tests/registry.rs.

use std::collections::BTreeSet;
use std::thread;
use std::time::{Duration, Instant};

use oxbake::config::TargetSettings;
use oxbake::pipeline::RegistryLineage;
use oxbake::project::Project;
use oxbake::registry::{Artifact, NewImage, Registry, Version};
use oxbake::target::BaseIdentities;

use crate::faults::leftovers::{RegistrySnapshot, passed_image, seed_registry};
use crate::faults::runner::{Outcome, signal};
use crate::faults::sim::{build, use_sim};
use crate::faults::sim_project::{SimProject, TEMPLATE_VMID};
use crate::support::project::TestProject;
use crate::support::pve_sim::{BASE_VMID, NODE, PveSim};

fn root_role(name: &str) -> String {
    format!(
        "role = \"{name}\"\ndescription = \"concurrency test role\"\n\n[[step]]\n\
         name = \"hello\"\nkind = \"shell\"\nrun = \"true\"\n"
    )
}

struct Setup {
    _runtime: tokio::runtime::Runtime,
    sim: PveSim,
    project: TestProject,
}

/// A project on a fresh simulator whose agent never answers; builds hold
/// their VM for `boot_timeout` seconds.
fn setup(boot_timeout: u64) -> Setup {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime.block_on(PveSim::start());
    let project = TestProject::copy();
    for role in ["r1", "r2", "r3"] {
        project.write(&format!("recipes/{role}.toml"), &root_role(role));
    }
    seed_registry(project.root());
    use_sim(&project, &sim.endpoint(), &sim.fingerprint(), boot_timeout);
    sim.faults(|f| f.agent_never = true);
    Setup {
        _runtime: runtime,
        sim,
        project,
    }
}

/// Runs `oxbake build ROLE --target sim` on a thread.
fn spawn_build(project: &TestProject, role: &str) -> thread::JoinHandle<Outcome> {
    let root = project.root().to_path_buf();
    let role = role.to_owned();
    thread::spawn(move || {
        let args = ["build", role.as_str(), "--target", "sim"];
        build(&root, &args).run()
    })
}

/// Waits until the simulator holds `n` VMs besides the base template.
fn wait_for_vms(sim: &PveSim, n: usize) {
    let started = Instant::now();
    while sim.vmids().len() < n + 1 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{n} builder VMs never appeared: {:?}",
            sim.vmids()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The VMIDs the clone requests asked for.
fn cloned_ids(sim: &PveSim) -> Vec<String> {
    sim.requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/clone") && r.status == 200)
        .filter_map(|r| {
            r.body
                .split('&')
                .find_map(|kv| kv.strip_prefix("newid=").map(str::to_owned))
        })
        .collect()
}

#[test]
fn a_second_build_of_the_same_role_waits_for_the_first() {
    let s = setup(6);
    let before = RegistrySnapshot::take(s.project.root());
    let first = spawn_build(&s.project, "r1");
    wait_for_vms(&s.sim, 1);
    let second = build(s.project.root(), &["build", "r1", "--target", "sim"]).run();
    let first = first.join().unwrap();
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert_eq!(second.code, 1, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("is building or promoting `r1` in this project; waiting for it to finish"),
        "{}",
        second.stderr
    );
    // The second only cloned after the first had gone: never two at once.
    assert_eq!(cloned_ids(&s.sim).len(), 2);
    assert_eq!(s.sim.vmids(), [BASE_VMID], "no VM left");
    assert_eq!(before.changes(s.project.root()), Vec::<String>::new());
}

#[test]
fn three_roles_build_at_once_on_distinct_vmids() {
    let s = setup(8);
    let before = RegistrySnapshot::take(s.project.root());
    let builds: Vec<_> = ["r1", "r2", "r3"]
        .iter()
        .map(|role| spawn_build(&s.project, role))
        .collect();
    // All three hold a VM at the same time: nobody waited for anybody.
    wait_for_vms(&s.sim, 3);
    let vmids: BTreeSet<u32> = s.sim.vmids().into_iter().collect();
    for b in builds {
        let out = b.join().unwrap();
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(!out.stderr.contains("waiting for it"), "{}", out.stderr);
    }
    let ids = cloned_ids(&s.sim);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert_eq!(distinct.len(), 3, "no VMID was used twice: {ids:?}");
    assert_eq!(vmids.len(), 4, "base and three builders: {vmids:?}");
    assert_eq!(s.sim.vmids(), [BASE_VMID], "no VM left");
    assert_eq!(before.changes(s.project.root()), Vec::<String>::new());
}

#[test]
fn an_interrupt_ends_the_wait_for_the_lock() {
    let s = setup(20);
    let first = spawn_build(&s.project, "r2");
    wait_for_vms(&s.sim, 1);
    let second = build(s.project.root(), &["build", "r2", "--target", "sim"])
        .on(
            "waiting for it to finish",
            crate::faults::runner::Action::Call(
                Duration::from_millis(500),
                Box::new(|pid| {
                    signal(pid, "INT");
                }),
            ),
        )
        .run();
    assert_eq!(second.code, 130, "{}", second.stderr);
    assert!(second.fired, "it waited: {}", second.stderr);
    assert_eq!(cloned_ids(&s.sim).len(), 1, "the second never cloned");
    let first = first.join().unwrap();
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert_eq!(s.sim.vmids(), [BASE_VMID], "no VM left");
}

#[test]
fn a_promote_waits_for_a_build_of_its_role_and_a_prune_does_not() {
    let s = setup(6);
    // The seeded `earlier` image is in `dev`; a recipe lets it be built.
    s.project
        .write("recipes/earlier.toml", &root_role("earlier"));
    let version = oxbake::registry::Registry::for_project(s.project.root())
        .latest("earlier", true)
        .unwrap()
        .unwrap()
        .version
        .to_string();
    let before = RegistrySnapshot::take(s.project.root());
    let building = spawn_build(&s.project, "earlier");
    wait_for_vms(&s.sim, 1);

    let prune = build(s.project.root(), &["prune"]).run();
    assert_eq!(prune.code, 0, "{}", prune.stderr);
    assert!(!prune.stderr.contains("waiting for it"), "{}", prune.stderr);
    assert_eq!(s.sim.vmids().len(), 2, "the build still holds its VM");

    let promote = build(
        s.project.root(),
        &["promote", "earlier", &version, "--to", "dev"],
    )
    .run();
    let built = building.join().unwrap();
    assert_eq!(built.code, 1, "{}", built.stderr);
    assert_eq!(promote.code, 0, "{}", promote.stderr);
    assert!(
        promote.stderr.contains(
            "is building or promoting `earlier` in this project; waiting for it to finish"
        ),
        "{}",
        promote.stderr
    );
    assert_eq!(s.sim.vmids(), [BASE_VMID], "no VM left");
    assert_eq!(before.changes(s.project.root()), Vec::<String>::new());
}

/// Two promotes of one role on one project: the second waits for the
/// first's role lock (its smoke test holds a VM until the agent times
/// out), so the two smoke VMs never exist at once; each then fails its
/// smoke test on its own, and images/ is unchanged.
#[test]
fn two_promotes_of_one_role_take_turns() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let p = SimProject::new();
    let sim = p.sim(&runtime, 6);
    sim.faults(|f| f.agent_never = true);
    let templates = sim.vmids().len();
    let before = RegistrySnapshot::take(p.project.root());
    let version = p.version.to_string();
    let args = ["promote", "base", version.as_str(), "--to", "dev"];
    let (first, second, most) = thread::scope(|scope| {
        let first = scope.spawn(|| p.run(&args).run());
        wait_for_vms(&sim, templates);
        let second = scope.spawn(|| p.run(&args).run());
        let mut most = 0;
        while !(first.is_finished() && second.is_finished()) {
            most = most.max(sim.vmids().len() - templates);
            thread::sleep(Duration::from_millis(50));
        }
        (first.join().unwrap(), second.join().unwrap(), most)
    });
    for out in [&first, &second] {
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("guest agent"), "{}", out.stderr);
    }
    assert!(
        second
            .stderr
            .contains("is building or promoting `base` in this project; waiting for it to finish"),
        "{}",
        second.stderr
    );
    assert_eq!(most, 1, "the smoke VMs never ran side by side");
    assert_eq!(sim.vmids().len(), templates, "no VM left");
    assert_eq!(before.changes(p.project.root()), Vec::<String>::new());
}

/// Records an image of `base` built from its current inputs on target
/// `sim` (template [`TEMPLATE_VMID`]), so a nightly finds it up to date.
fn record_current_base(p: &SimProject) -> Version {
    let root = p.project.root();
    let project = Project::load(root).unwrap();
    let Some(TargetSettings::Proxmox(sim)) = project.config.targets.get("sim") else {
        panic!("no proxmox target `sim`");
    };
    let registry = Registry::for_project(root);
    let lineage = RegistryLineage {
        registry: &registry,
        // The bookworm base's identity, as the command computes it.
        bases: BaseIdentities::from_fn(|_| {
            format!("proxmox:{}#{}", sim.endpoint, sim.base_template)
        }),
    };
    let inputs = oxbake::role::inputs::inputs(&project, "base", &lineage).unwrap();
    let artifact = Artifact::Proxmox {
        node: NODE.into(),
        vmid: TEMPLATE_VMID,
        template: "base-template".into(),
    };
    let image = NewImage {
        inputs: inputs.hash.parse().unwrap(),
        ..passed_image('c', "sim", artifact)
    };
    registry.record("base", image).unwrap().version
}

#[test]
fn a_nightly_and_a_promote_of_one_role_take_turns() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let p = SimProject::new();
    let sim = p.sim(&runtime, 6);
    sim.faults(|f| f.agent_never = true);
    // Only `base`: the nightly finds its image up to date and promotes it
    // to `dev`, as the promote run does (the environments of the other
    // roles go with them).
    p.project.keep_only_base();
    let version = record_current_base(&p).to_string();
    let templates = sim.vmids().len();
    let before = RegistrySnapshot::take(p.project.root());
    let promote = ["promote", "base", version.as_str(), "--to", "dev"];
    let nightly = ["nightly", "--target", "sim"];
    let (first, second, most) = thread::scope(|scope| {
        let first = scope.spawn(|| p.run(&promote).run());
        while sim.vmids().len() < templates + 1 {
            assert!(
                !first.is_finished(),
                "the promote ended before its smoke VM"
            );
            thread::sleep(Duration::from_millis(50));
        }
        let second = scope.spawn(|| p.run(&nightly).run());
        let mut most = 0;
        while !(first.is_finished() && second.is_finished()) {
            most = most.max(sim.vmids().len() - templates);
            thread::sleep(Duration::from_millis(50));
        }
        (first.join().unwrap(), second.join().unwrap(), most)
    });
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(first.stderr.contains("guest agent"), "{}", first.stderr);
    assert_eq!(
        second.code, 1,
        "the nightly's promote failed too: {}",
        second.stderr
    );
    assert!(
        second
            .stderr
            .contains("is building or promoting `base` in this project; waiting for it to finish"),
        "the nightly's promote waits for the lock: {}",
        second.stderr
    );
    assert_eq!(most, 1, "the smoke VMs never ran side by side");
    assert_eq!(sim.vmids().len(), templates, "no VM left");
    assert_eq!(before.changes(p.project.root()), Vec::<String>::new());
}
