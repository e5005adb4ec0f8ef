//! `oxbake publish ROLE@VERSION --target sim`: an image baked on the local
//! target (a real qcow2 overlay on a backing file, made with qemu-img) is
//! flattened, uploaded as `import` content with its checksum, imported into
//! a VM, converted into a template and recorded as a second artifact of the
//! same version. Each refusal (no `import` content, PVE 8.1, a missing
//! privilege) and an upload cut off half-way leave the cluster and the
//! registry as they were. A deploy on the simulator then clones the
//! published template.

use oxbake::pipeline::cancel;
use oxbake::pipeline::publish::{self, PublishRequest};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::{Artifact, ImageRecord, Registry};

use crate::support::deploy_sim::Harness;
use crate::support::local_image::{local_record, project_with_image};
use crate::support::project::TestProject;
use crate::support::pve_sim::{NODE, PveSim, TOKEN_SECRET, VMID_RANGE};

fn record_file(project: &TestProject, record: &ImageRecord) -> String {
    project.read(&format!("images/{}/{}.toml", record.role, record.version))
}

/// The file name in a logged upload's fields.
fn uploaded_name(body: &str) -> String {
    let start = body.find("\"filename\": \"").expect("a filename field") + 13;
    let end = body[start..].find('"').unwrap() + start;
    body[start..end].to_owned()
}

fn import_volumes(sim: &PveSim) -> Vec<String> {
    sim.volumes()
        .into_iter()
        .map(|(volid, _)| volid)
        .filter(|v| v.contains(":import/"))
        .collect()
}

/// Runs the binary without holding up the simulator's runtime.
async fn oxbake(project: &TestProject, args: &[&str]) -> crate::support::project::Run {
    tokio::task::block_in_place(|| PveSim::oxbake(project, args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_ships_the_image_and_records_a_second_artifact() {
    let sim = PveSim::start().await;
    let (project, record) = project_with_image(&sim);
    let image = record.id();

    let run = oxbake(&project, &["publish", &image, "--target", "sim", "--json"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    for out in [run.stdout(), run.stderr()] {
        assert!(!out.contains(TOKEN_SECRET), "the token was shown: {out}");
    }
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let published = &doc["publish"];
    assert_eq!(published["published"], true, "{doc}");
    assert_eq!(published["template"], format!("ui-{}", record.version));
    let vmid = published["vmid"].as_u64().unwrap() as u32;
    assert!((VMID_RANGE[0]..=VMID_RANGE[1]).contains(&vmid), "{doc}");
    let sha = published["sha256"].as_str().unwrap().to_owned();

    // The template: converted, labelled like a build's, its disk imported.
    let vm = sim.vm(vmid).expect("the template VM");
    assert!(vm.is_template(), "{vm:?}");
    assert_eq!(vm.name(), format!("ui-{}", record.version));
    assert!(vm.config["tags"].contains("kind-template"), "{vm:?}");
    assert!(vm.config["description"].contains(&record.version.to_string()));
    assert!(
        vm.config["scsi0"].starts_with(&format!("local-lvm:base-{vmid}-disk-0")),
        "{vm:?}"
    );
    // The upload: import content, the flattened file's sha256 to verify.
    let upload = sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/storage/local/upload"))
        .expect("an upload");
    assert!(
        upload.body.contains("\"content\": \"import\""),
        "{upload:?}"
    );
    assert!(upload.body.contains(&format!("\"checksum\": \"{sha}\"")));
    assert!(upload.body.contains("\"checksum-algorithm\": \"sha256\""));
    // Named after the image and the run (`oxbake gc` reads the run back).
    let filename = uploaded_name(&upload.body);
    let prefix = format!("oxbake-ui-{}-", record.version);
    assert!(filename.starts_with(&prefix), "{filename}");
    assert_eq!(
        filename.len(),
        prefix.len() + 8 + ".qcow2".len(),
        "{filename}"
    );
    let volid = format!("local:import/{filename}");
    // Created with import-from, never as a template; then converted.
    let create = sim
        .requests()
        .into_iter()
        .find(|r| r.method == "POST" && r.path.ends_with(&format!("/nodes/{NODE}/qemu")))
        .expect("a create");
    let encoded =
        oxbake::target::proxmox::encode_component(&format!("local-lvm:0,import-from={volid}"));
    assert!(
        create.body.contains(&format!("scsi0={encoded}")),
        "{create:?}"
    );
    assert!(!create.body.contains("template="), "{create:?}");
    assert_eq!(sim.count("POST", &format!("/qemu/{vmid}/template")), 1);
    assert!(import_volumes(&sim).is_empty(), "the import volume stays");

    // The record: the built artifact as it was, the copy beside it.
    let after = Registry::for_project(project.root())
        .get("ui", &record.version)
        .unwrap();
    assert_eq!(after.artifact, record.artifact);
    assert_eq!(after.published.len(), 1);
    let copy = &after.published[0];
    assert_eq!(copy.target, "sim");
    assert_eq!(copy.sha256.to_string(), sha);
    assert_eq!(
        copy.artifact,
        Artifact::Proxmox {
            node: NODE.into(),
            vmid,
            template: format!("ui-{}", record.version),
        }
    );
    assert!(record_file(&project, &after).contains("[[published]]"));

    // Again: the copy is there, nothing is done.
    let vms = sim.vmids();
    let text = record_file(&project, &after);
    let again = oxbake(&project, &["publish", &image, "--target", "sim"]).await;
    assert_eq!(again.code(), 0, "{}", again.stderr());
    assert!(
        again.stdout().contains("already published"),
        "{}",
        again.stdout()
    );
    assert_eq!(sim.vmids(), vms);
    assert_eq!(sim.count("POST", "/upload"), 1);
    assert_eq!(record_file(&project, &after), text);

    // Its template gone: published again, the entry replaced. On PVE 8.3
    // with a warning: its storage may be too old for qcow2 uploads.
    assert!(sim.remove_vm(vmid).is_some());
    sim.faults(|f| f.pve_version = "8.3.2".into());
    let third = oxbake(&project, &["publish", &image, "--target", "sim", "--json"]).await;
    assert_eq!(third.code(), 0, "{}", third.stderr());
    assert!(
        third.stderr().contains("runs PVE 8.3: uploading a qcow2"),
        "{}",
        third.stderr()
    );
    let doc: serde_json::Value = serde_json::from_str(&third.stdout()).unwrap();
    let new_vmid = doc["publish"]["vmid"].as_u64().unwrap() as u32;
    let last = Registry::for_project(project.root())
        .get("ui", &record.version)
        .unwrap();
    assert_eq!(last.published.len(), 1, "one copy per target");
    assert!(
        matches!(last.published[0].artifact, Artifact::Proxmox { vmid, .. } if vmid == new_vmid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_names_what_is_missing_and_changes_nothing() {
    let sim = PveSim::start().await;
    let (project, record) = project_with_image(&sim);
    let before = record_file(&project, &record);
    let vms = sim.vmids();
    type Set = fn(&mut crate::support::pve_sim::Faults);
    let cases: [(Set, &[&str]); 4] = [
        (
            |f| f.no_import_content = true,
            &[
                "storage `local` on node `pve1` does not take `import` content",
                "backup,iso,vztmpl",
            ],
        ),
        (
            |f| f.pve_version = "8.1.4".into(),
            &["runs PVE 8.1", "needs PVE 8.2 or later"],
        ),
        (
            |f| f.denied = vec![("/storage/local".into(), "Datastore.AllocateTemplate".into())],
            &[
                "token `oxbake@pve!test` lacks Datastore.AllocateTemplate on /storage/local \
                 (the upload)",
            ],
        ),
        (
            |f| f.denied = vec![("/vms".into(), "VM.Allocate".into())],
            &["lacks VM.Allocate on /vms (the template VM)"],
        ),
    ];
    for (set, expected) in cases {
        sim.faults(|f| {
            f.no_import_content = false;
            f.pve_version = "8.4.1".into();
            f.denied.clear();
            set(f);
        });
        let run = oxbake(&project, &["publish", &record.id(), "--target", "sim"]).await;
        assert_eq!(run.code(), 1, "{}", run.stderr());
        let err = run.stderr();
        for part in expected {
            assert!(err.contains(part), "`{part}` not in: {err}");
        }
        assert!(err.contains("nothing was uploaded"), "{err}");
        assert!(!err.contains(TOKEN_SECRET), "{err}");
        assert_eq!(sim.count("POST", "/upload"), 0, "{err}");
        assert_eq!(sim.vmids(), vms);
        assert_eq!(record_file(&project, &record), before);
    }
    // --json: one error document on stdout.
    let run = oxbake(
        &project,
        &["publish", &record.id(), "--target", "sim", "--json"],
    )
    .await;
    assert_eq!(run.code(), 1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["error"]["exit"], 1, "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("VM.Allocate")
    );
    // Bad input: a target that is not proxmox, an unknown one (exit 2).
    for target in ["local", "nowhere"] {
        let run = oxbake(&project, &["publish", &record.id(), "--target", target]).await;
        assert_eq!(run.code(), 2, "{}", run.stderr());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_off_half_way_leaves_no_volume_vm_or_record() {
    let sim = PveSim::start().await;
    let (project, record) = project_with_image(&sim);
    let before = record_file(&project, &record);
    let vms = sim.vmids();
    sim.faults(|f| f.cut_upload_at = Some(64 * 1024));
    let run = oxbake(&project, &["publish", &record.id(), "--target", "sim"]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let err = run.stderr();
    assert!(err.contains("uploading"), "{err}");
    assert!(!err.contains(TOKEN_SECRET), "{err}");
    let cut = sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/upload"))
        .expect("the upload arrived");
    assert_eq!(cut.status, 0, "the connection was dropped: {cut:?}");
    assert!(import_volumes(&sim).is_empty());
    assert_eq!(sim.vmids(), vms, "no VM was made");
    assert_eq!(sim.count("POST", &format!("/nodes/{NODE}/qemu")), 0);
    assert_eq!(record_file(&project, &record), before);
    // No scratch copy is left either.
    let scratch = project.path(".oxbake/scratch");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_fails_removes_its_vm_and_the_volume() {
    let sim = PveSim::start().await;
    let (project, record) = project_with_image(&sim);
    let before = record_file(&project, &record);
    let vms = sim.vmids();
    sim.faults(|f| f.fail_convert = true);
    let run = oxbake(&project, &["publish", &record.id(), "--target", "sim"]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("making the template failed"),
        "{}",
        run.stderr()
    );
    assert_eq!(sim.count("POST", &format!("/nodes/{NODE}/qemu")), 1);
    assert_eq!(sim.vmids(), vms, "the VM was removed");
    assert!(import_volumes(&sim).is_empty(), "the volume was removed");
    assert_eq!(record_file(&project, &record), before);
}

/// Deploy on the proxmox target picks the published copy: the clone goes
/// to the published template's VMID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_on_the_target_clones_the_published_template() {
    let h = Harness::one_wave(1).await;
    let root = h.dir.path();
    let record = local_record(root, "services");
    let registry = Registry::for_project(root);
    registry
        .set_channel("services", "dev", &record.version, "test", "published")
        .unwrap();
    // Not published yet: the cluster cannot clone a local file.
    let vms = h.sim.vmids();
    let err = h.deploy_quiet().await.unwrap_err();
    let text = oxbake::error_chain::chain(&err);
    assert!(text.contains("oxbake publish"), "{text}");
    assert_eq!(h.sim.vmids(), vms, "nothing was made");
    let project = Project::load(root).unwrap();
    let req = PublishRequest {
        role: "services",
        version: record.version,
        target: "sim",
    };
    let pve = h.sim.target(Progress::silent());
    let outcome = publish::publish(
        &project,
        &registry,
        &pve,
        &req,
        &Progress::silent(),
        cancel::never(),
    )
    .await
    .unwrap();
    assert!(outcome.published);
    let clones_before = h
        .sim
        .count("POST", &format!("/qemu/{}/clone", outcome.vmid));
    assert_eq!(clones_before, 0);
    h.deploy_quiet().await.unwrap();
    assert_eq!(
        h.sim
            .count("POST", &format!("/qemu/{}/clone", outcome.vmid)),
        1,
        "the deploy cloned the published template"
    );
}

/// Ctrl-C while Proxmox copies the upload into place: the copy is let
/// finish, then its volume is removed; no VM, no record change, exit 130's
/// error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_the_upload_leaves_nothing_behind() {
    let sim = PveSim::start().await;
    let (project, record) = project_with_image(&sim);
    let before = record_file(&project, &record);
    let vms = sim.vmids();
    sim.faults(|f| {
        f.task_times
            .insert("imgcopy", std::time::Duration::from_millis(1500));
    });
    let loaded = Project::load(project.root()).unwrap();
    let registry = Registry::for_project(project.root());
    let req = PublishRequest {
        role: "ui",
        version: record.version,
        target: "sim",
    };
    let pve = sim.target(Progress::silent());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let interrupt = async {
        // Once the upload's copy task runs.
        while sim.count("POST", "/upload") == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        tx.send(true).unwrap();
    };
    let progress = Progress::silent();
    let publishing = publish::publish(&loaded, &registry, &pve, &req, &progress, rx);
    let (result, ()) = tokio::join!(publishing, interrupt);
    let err = result.unwrap_err();
    assert!(err.is_interrupted(), "{err}");
    assert!(import_volumes(&sim).is_empty(), "the copied volume stays");
    let upload = sim
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/upload"))
        .unwrap();
    assert_eq!(
        sim.count("DELETE", &uploaded_name(&upload.body)),
        1,
        "the copy finished, then its volume was removed"
    );
    assert_eq!(sim.vmids(), vms, "no VM was made");
    assert_eq!(record_file(&project, &record), before);
}

/// A publish killed mid-way leaves its volume: `oxbake gc` removes it by
/// the run id in its name, once the run has ended, and leaves a live run's
/// and volumes that are not oxbake's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_the_uploads_of_runs_that_ended() {
    let sim = PveSim::start().await;
    let project = TestProject::copy();
    sim.add_to(&project, "sim");
    let dead = "local:import/oxbake-ui-2026.12.06.1-0badc0de.qcow2";
    let live = "local:import/oxbake-ui-2026.12.06.2-00c0ffee.qcow2";
    let foreign = "local:import/debian-12-genericcloud.qcow2";
    for volid in [dead, live, foreign] {
        sim.insert_volume(volid, b"QFI".to_vec());
    }
    // A run that is alive: an oxbake process (by its command line) holds it.
    let mut holder = std::process::Command::new("sh")
        .args(["-c", "sleep 60", "oxbake-publish"])
        .spawn()
        .unwrap();
    let runs = project.path(".oxbake/runs");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("00c0ffee"), holder.id().to_string()).unwrap();
    let dry = oxbake(&project, &["gc", "--target", "sim", "--dry-run", "--json"]).await;
    assert_eq!(dry.code(), 0, "{}", dry.stderr());
    let doc: serde_json::Value = serde_json::from_str(&dry.stdout()).unwrap();
    assert_eq!(doc["uploads"][0]["name"], dead, "{doc}");
    assert_eq!(doc["uploads"][0]["removed"], false, "{doc}");
    assert_eq!(doc["uploads"].as_array().unwrap().len(), 1, "{doc}");
    assert_eq!(import_volumes(&sim).len(), 3);

    let run = oxbake(&project, &["gc", "--target", "sim"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.stdout().contains("0badc0de"), "{}", run.stdout());
    assert_eq!(import_volumes(&sim), [foreign, live]);
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// `oxbake prune --json`'s entry for `image`: its action and reasons.
fn pruned(run: &crate::support::project::Run, image: &str) -> (String, String) {
    let entry = crate::support::output::prune_entry(&run.stdout(), image);
    (
        entry["action"].as_str().unwrap().to_owned(),
        entry["why"].to_string(),
    )
}

/// A version the retention lets go loses its copy on the cluster with its
/// record, and only once the copy proved to be its own: a copy whose
/// description was changed, one a linked clone uses and a cluster that
/// cannot be reached each keep the version (and the copy), and
/// `--dry-run` removes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_a_published_copy_with_its_version_once_it_proves_its_own() {
    let sim = PveSim::start().await;
    let project = TestProject::copy();
    sim.add_to(&project, "sim");
    let config = project.read("oxbake.toml");
    assert!(config.contains("keep = 5"), "{config}");
    project.write("oxbake.toml", &config.replace("keep = 5", "keep = 1"));
    let old = local_record(project.root(), "ui");
    let run = oxbake(
        &project,
        &["publish", &old.id(), "--target", "sim", "--json"],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let vmid = doc["publish"]["vmid"].as_u64().unwrap() as u32;
    let newer = local_record(project.root(), "ui");
    let old_file = format!("images/ui/{}.toml", old.version);
    let unchanged = |what: &str| {
        assert!(sim.vm(vmid).is_some(), "{what}: the copy stays");
        let record = Registry::for_project(project.root()).get("ui", &old.version);
        assert_eq!(
            record.unwrap().published.len(),
            1,
            "{what}: the record keeps it"
        );
    };

    // A copy that does not prove to be the image's stays.
    let genuine = sim.remove_vm(vmid).unwrap();
    let mut forged = genuine.clone();
    forged
        .config
        .insert("description".into(), "made by hand".into());
    sim.insert_vm(vmid, forged);
    let run = oxbake(&project, &["prune", "--json"]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let (action, why) = pruned(&run, &old.id());
    assert_eq!(action, "failed", "{why}");
    assert!(why.contains("its copy on target `sim`"), "{why}");
    unchanged("a forged description");
    sim.remove_vm(vmid);
    sim.insert_vm(vmid, genuine);

    // A copy a linked clone uses stays, and so does its version.
    let clone = VMID_RANGE[1];
    let user = crate::support::pve_sim::state::SimVm {
        node: NODE.into(),
        linked_from: Some(vmid),
        ..Default::default()
    };
    sim.insert_vm(clone, user);
    let run = oxbake(&project, &["prune", "--json"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let (action, why) = pruned(&run, &old.id());
    assert_eq!(action, "keep", "{why}");
    assert!(why.contains("clones"), "{why}");
    assert!(
        run.stderr().contains("on target `sim` is still used"),
        "{}",
        run.stderr()
    );
    unchanged("a linked clone");
    assert!(project.root().join(&old_file).exists());
    sim.remove_vm(clone);

    // A cluster that cannot be reached keeps what was published to it.
    let reachable = project.read("oxbake.toml");
    let endpoint = sim.endpoint();
    assert!(reachable.contains(&endpoint), "{reachable}");
    project.write(
        "oxbake.toml",
        &reachable.replace(&endpoint, "https://127.0.0.1:9"),
    );
    let run = oxbake(&project, &["prune", "--json"]).await;
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let (action, why) = pruned(&run, &old.id());
    assert_eq!(action, "failed", "{why}");
    assert!(
        why.contains("published to target `sim`, which cannot be used"),
        "{why}"
    );
    unchanged("an unreachable cluster");
    project.write("oxbake.toml", &reachable);

    let run = oxbake(&project, &["prune", "--dry-run", "--json"]).await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert_eq!(pruned(&run, &old.id()).0, "remove");
    unchanged("--dry-run");

    let run = oxbake(&project, &["prune", "--json"]).await;
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert_eq!(pruned(&run, &old.id()).0, "removed");
    assert_eq!(pruned(&run, &newer.id()).0, "keep");
    assert!(sim.vm(vmid).is_none(), "the copy was destroyed");
    assert!(!project.root().join(&old_file).exists(), "the record went");
    assert!(
        run.stderr()
            .contains(&format!("removed `{}`'s copy on target `sim`", old.id())),
        "{}",
        run.stderr()
    );
}

/// A channel that moved between a version published to the cluster and one
/// that was only built locally: `rollback --target sim` marks the published
/// copy and passes over the version that has no template there (it used to
/// stop with "another target's template" after the channel had moved).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_tags_mark_the_published_copy_and_pass_over_versions_not_there() {
    let sim = PveSim::start().await;
    let (project, local_only) = project_with_image(&sim);
    let published = local_record(project.root(), "ui");
    let run = oxbake(
        &project,
        &["publish", &published.id(), "--target", "sim", "--json"],
    )
    .await;
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    let vmid = doc["publish"]["vmid"].as_u64().unwrap() as u32;
    let registry = Registry::for_project(project.root());
    for (version, why) in [(&published.version, "out"), (&local_only.version, "back")] {
        registry
            .set_channel("ui", "dev", version, "test", why)
            .unwrap();
    }
    let back = oxbake(
        &project,
        &["rollback", "ui", "--channel", "dev", "--target", "sim"],
    )
    .await;
    assert_eq!(back.code(), 0, "{}", back.stderr());
    let channels = registry.channels().unwrap();
    assert_eq!(channels.get("dev", "ui"), Some(published.version));
    let tags = |sim: &PveSim| sim.vm(vmid).unwrap().config["tags"].clone();
    assert!(
        tags(&sim).split(';').any(|t| t == "ch-dev"),
        "{}",
        tags(&sim)
    );

    // Where the images were built (the local target), channel `staging`
    // is rolled back off the published version, whose copy still has a
    // `ch-staging` tag: the marks follow the channel onto the cluster.
    let mut vm = sim.vm(vmid).unwrap();
    let stale = format!("{};ch-staging", tags(&sim));
    vm.config.insert("tags".into(), stale);
    sim.insert_vm(vmid, vm);
    let moves = [(&local_only.version, "out"), (&published.version, "bad")];
    for channel in ["staging", "prod"] {
        for (version, why) in moves {
            registry
                .set_channel("ui", channel, version, "test", why)
                .unwrap();
        }
    }
    let local = oxbake(&project, &["rollback", "ui", "--channel", "staging"]).await;
    assert_eq!(local.code(), 0, "{}", local.stderr());
    let channels = registry.channels().unwrap();
    assert_eq!(channels.get("staging", "ui"), Some(local_only.version));
    // (`prod` was moved onto it in the registry meanwhile.)
    assert_eq!(tags(&sim), "ch-dev;ch-prod;kind-template;oxbake;role-ui");

    // The cluster cannot be used (here: its token's secret is not given):
    // the channel still moves, with a warning that names the target.
    let unreachable =
        tokio::task::block_in_place(|| project.oxbake(&["rollback", "ui", "--channel", "prod"]));
    assert_eq!(unreachable.code(), 0, "{}", unreachable.stderr());
    assert!(
        unreachable
            .stderr()
            .contains("its marks on target `sim` were not updated"),
        "{}",
        unreachable.stderr()
    );
    let channels = registry.channels().unwrap();
    assert_eq!(channels.get("prod", "ui"), Some(local_only.version));
}
