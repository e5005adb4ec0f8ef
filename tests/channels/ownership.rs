//! `oxbake prune` destroys a template only when it is provably the one its
//! record names, on the Proxmox simulator: the registry is hand-editable
//! input, so a tampered record, a tampered template description or two
//! records claiming one VMID must leave every template in place, fail the
//! image with a reason naming the template, and `--dry-run` must say so too.

use oxbake::guest::SshConnector;
use oxbake::pipeline::prune::{PruneReport, prune};
use oxbake::pipeline::prune_plan::{PruneAction, PruneEntry};
use oxbake::pipeline::{Context, cancel};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::{ImageRecord, Registry, Version};
use oxbake::target::BaseIdentities;
use oxbake::target::TemplateRef;
use oxbake::target::proxmox::ProxmoxTarget;

use super::sim::{image, vmid};
use crate::support::project::TestProject;
use crate::support::pve_sim::PveSim;

/// Three images; `prod` runs the middle one; `keep = 1` lets the oldest go.
pub(super) struct Setup {
    pub sim: PveSim,
    pub t: ProxmoxTarget,
    pub project: TestProject,
    pub registry: Registry,
    pub old: (ImageRecord, TemplateRef),
    pub prod: (ImageRecord, TemplateRef),
}

pub(super) async fn setup() -> Setup {
    let sim = PveSim::start().await;
    let t = sim.target(Progress::silent());
    let project = TestProject::copy();
    let registry = Registry::for_project(project.root());
    let old = image(&t, &registry).await;
    let prod = image(&t, &registry).await;
    let _newest = image(&t, &registry).await;
    registry
        .set_channel("ui", "prod", &prod.0.version, "alice", "release")
        .unwrap();
    Setup {
        sim,
        t,
        project,
        registry,
        old,
        prod,
    }
}

impl Setup {
    pub(super) async fn prune(&self, dry_run: bool) -> PruneReport {
        let project = Project::load(self.project.root()).unwrap();
        let ctx = Context {
            project: &project,
            registry: &self.registry,
            target: &self.t,
            target_name: "pve",
            bases: &BaseIdentities::from_fn(|_| String::new()),
            connector: &SshConnector,
            progress: Progress::silent(),
            cancel: cancel::never(),
        };
        prune(&ctx, 1, dry_run).await.unwrap()
    }

    /// The old image's entry in `report`.
    pub(super) fn old_entry<'r>(&self, report: &'r PruneReport) -> &'r PruneEntry {
        report
            .entries
            .iter()
            .find(|e| e.version == self.old.0.version)
            .expect("the old image is in the report")
    }

    /// Rewrites a line of the record of `version`.
    fn edit_record(&self, version: &Version, from: &str, to: &str) {
        let path = self.registry.dir().join(format!("ui/{version}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{from} not in {text}");
        std::fs::write(&path, text.replace(from, to)).unwrap();
    }

    /// Points the old record at `tpl` (its VMID and name), as a hand edit.
    fn claim(&self, tpl: &TemplateRef) {
        let (old, old_tpl) = &self.old;
        self.edit_record(
            &old.version,
            &format!("vmid = {}\ntemplate = \"{}\"", vmid(old_tpl), old_tpl.name),
            &format!("vmid = {}\ntemplate = \"{}\"", vmid(tpl), tpl.name),
        );
    }
}

/// The old image's entry failed (in both runs), naming the template and
/// what did not match; every template is still there.
fn assert_kept(s: &Setup, report: &PruneReport, needles: &[&str]) {
    let entry = s.old_entry(report);
    assert_eq!(entry.action, PruneAction::Failed, "{entry:?}");
    let why = entry.why.join("; ");
    for needle in needles {
        assert!(why.contains(needle), "`{needle}` not in: {why}");
    }
    assert!(report.failed(), "the run fails (exit 1)");
    assert!(s.sim.vm(vmid(&s.prod.1)).is_some(), "prod's template stays");
    assert!(
        s.sim.vm(vmid(&s.old.1)).is_some(),
        "no template was destroyed"
    );
    assert!(
        s.registry.get("ui", &s.old.0.version).is_ok(),
        "record stays"
    );
    assert!(s.registry.pending_removals().unwrap().is_empty());
}

async fn both_runs_keep(s: &Setup, needles: &[&str]) {
    let dry = s.prune(true).await;
    assert_kept(s, &dry, needles);
    let real = s.prune(false).await;
    assert_kept(s, &real, needles);
    let fates = |r: &PruneReport| -> Vec<_> { r.entries.iter().map(|e| e.action).collect() };
    assert_eq!(fates(&dry), fates(&real), "--dry-run said what the run did");
}

#[tokio::test]
async fn a_record_edited_to_the_vmid_and_name_prod_runs_keeps_prods_template() {
    let s = setup().await;
    let prod_tpl = s.prod.1.clone();
    s.claim(&prod_tpl);
    let at = format!(
        "{}/{} (`{}`)",
        crate::support::pve_sim::NODE,
        vmid(&prod_tpl),
        prod_tpl.name
    );
    both_runs_keep(
        &s,
        &[
            &format!("kept template {at}"),
            &format!("also claimed by `{}`", s.prod.0.id()),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_record_pointing_at_an_unrecorded_template_of_another_version_keeps_it() {
    let s = setup().await;
    // The newest record is lost (a bad merge): its template is claimed by
    // no record, and the old record is edited to point at it.
    let newest = s.registry.list(None).unwrap()[0].clone();
    let path = s.registry.dir().join(format!("ui/{}.toml", newest.version));
    let newest_tpl = oxbake::pipeline::artifact::template_of(&newest, s.project.root());
    std::fs::remove_file(path).unwrap();
    s.claim(&newest_tpl);
    let want = format!("ui-{}", s.old.0.version);
    both_runs_keep(
        &s,
        &[
            "is not the one the record names",
            &format!("the VM is named `{}`, expected `{want}`", newest_tpl.name),
            &format!("its description's version is `{}`", newest.version),
        ],
    )
    .await;
    assert!(s.sim.vm(vmid(&newest_tpl)).is_some());
}

#[tokio::test]
async fn a_tampered_description_keeps_the_template() {
    let s = setup().await;
    let id = vmid(&s.old.1);
    let mut vm = s.sim.vm(id).unwrap();
    let description = vm.config["description"].clone();
    let inputs = s.old.0.inputs.to_string();
    assert!(description.contains(&inputs), "{description}");
    let forged = description.replace(&inputs, &"c".repeat(64));
    vm.config.insert("description".into(), forged);
    s.sim.insert_vm(id, vm);
    both_runs_keep(
        &s,
        &[&format!(
            "its description's inputs is `{}`, expected `{inputs}`",
            "c".repeat(64)
        )],
    )
    .await;
}

#[tokio::test]
async fn a_record_whose_template_name_was_edited_keeps_the_template() {
    let s = setup().await;
    let (old, old_tpl) = &s.old;
    let other = format!("ui-{}", s.prod.0.version);
    s.edit_record(
        &old.version,
        &format!("template = \"{}\"", old_tpl.name),
        &format!("template = \"{other}\""),
    );
    both_runs_keep(
        &s,
        &[&format!(
            "the record's template name `{other}` is not `{}`",
            old_tpl.name
        )],
    )
    .await;
}

#[tokio::test]
async fn two_records_claiming_one_vmid_keep_it_even_when_neither_runs() {
    let s = setup().await;
    // Drop the channel: now only the claim protects prod's template.
    let channels = s.registry.dir().join("channels.toml");
    let text = std::fs::read_to_string(&channels).unwrap();
    let text = text.replace(&format!("ui = \"{}\"", s.prod.0.version), "");
    std::fs::write(&channels, text).unwrap();
    s.claim(&s.prod.1.clone());
    // keep = 1: both the old and the prod image are past retention.
    let report = s.prune(false).await;
    for record in [&s.old.0, &s.prod.0] {
        let e = report
            .entries
            .iter()
            .find(|e| e.version == record.version)
            .unwrap();
        assert_eq!(e.action, PruneAction::Failed, "{e:?}");
        assert!(e.why.join(" ").contains("also claimed by"), "{e:?}");
    }
    assert!(s.sim.vm(vmid(&s.prod.1)).is_some());
}
