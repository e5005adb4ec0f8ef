//! `gc` removes only VMs whose labels it has read; a template any disk is
//! backed by survives `prune`, whatever the VMs' labels say.

use oxbake::suite::Suite;
use oxbake::target::{Source, Target, VmKind};

use super::{base_image, path_of, recorded_template, spec, target};
use crate::support::project::TestProject;

#[test]
fn gc_leaves_vms_whose_labels_cannot_be_read_and_prune_keeps_their_template() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let project = TestProject::copy();
    let cache = tempfile::tempdir().unwrap();
    let env = [("OXBAKE_CACHE_DIR", cache.path().to_str().unwrap())];
    let config = project.read("oxbake.toml").replace("keep = 5", "keep = 1");
    project.write("oxbake.toml", &config);
    let base = base_image(&cache.path().join("images/base.qcow2"));
    let t = target(project.root(), &base);
    let (old, tpl) = recorded_template(&rt, &t, project.root(), "ui");
    let (_new, _) = recorded_template(&rt, &t, project.root(), "ui");

    // Three deployed VMs on the old image: vm.toml garbled, vm.toml that
    // cannot be read (a folder), no vm.toml; and a builder of a dead run.
    let vms = project.path(".oxbake/local/vms");
    for name in ["lab-ui-1", "lab-ui-2", "lab-ui-3"] {
        let deployed = spec(name, Source::Template(tpl.clone()), VmKind::Deployed);
        rt.block_on(t.create_vm(&deployed)).unwrap();
    }
    std::fs::write(vms.join("lab-ui-1/vm.toml"), "name = [garbled").unwrap();
    std::fs::remove_file(vms.join("lab-ui-2/vm.toml")).unwrap();
    std::fs::create_dir(vms.join("lab-ui-2/vm.toml")).unwrap();
    std::fs::remove_file(vms.join("lab-ui-3/vm.toml")).unwrap();
    rt.block_on(t.create_vm(&spec(
        "ui-b",
        Source::Base(Suite::Bookworm),
        VmKind::Builder,
    )))
    .unwrap();

    for args in [&["gc", "--dry-run"][..], &["gc"]] {
        let run = project.oxbake_env(args, &env);
        assert_eq!(run.code(), 1, "{args:?}: {}", run.stderr());
        let said = format!("{}{}", run.stdout(), run.stderr());
        for name in ["lab-ui-1", "lab-ui-2", "lab-ui-3"] {
            let file = vms.join(name).join("vm.toml");
            assert!(said.contains(&file.display().to_string()), "{said}");
            assert!(
                vms.join(name).join("disk.qcow2").exists(),
                "{args:?} removed {name}"
            );
        }
        assert!(said.contains("cannot be parsed"), "{said}");
        assert!(said.contains("cannot be read"), "{said}");
        assert!(said.contains("no labels"), "{said}");
    }
    assert!(
        !vms.join("ui-b").exists(),
        "gc kept a leftover it could read"
    );

    // The old image is past retention and no label says a VM runs it, but
    // the deployed disks are backed by its template: prune keeps both.
    let run = project.oxbake_env(&["prune"], &env);
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        path_of(&tpl).exists(),
        "prune removed a template in use: {said}"
    );
    assert!(said.contains("vm `lab-ui-1`"), "{said}");
    let registry = oxbake::registry::Registry::for_project(project.root());
    assert!(registry.get("ui", &old.version).is_ok(), "{said}");
}
