//! `oxbake promote` through a real smoke test of the baked ui image (one
//! VM boot), then the next channel refused and the history checked.

use oxbake::registry::{ChannelAction, Registry};

use crate::support::e2e::{baked, vm_lock};

#[test]
fn promote_boots_a_smoke_test_then_refuses_to_skip_staging() {
    let baked = baked();
    let _vms = vm_lock();
    let project = &baked.project;
    let registry = Registry::for_project(project.root());
    let ui = registry.latest("ui", true).unwrap().expect("baked ui");
    let v = ui.version.to_string();
    // Another test may have put it in dev through the registry API already.
    let fresh = registry.channels().unwrap().get("dev", "ui") != Some(ui.version);
    let run = project.oxbake(&["promote", "ui", &v, "--to", "dev", "--json"]);
    eprintln!("{}", run.stderr());
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["promotion"]["changed"], fresh);
    if fresh {
        let smoke = &doc["promotion"]["smoke"];
        assert!(smoke["hygiene"].as_array().unwrap().len() >= 6, "{smoke}");
        assert!(!smoke["checks"].as_array().unwrap().is_empty(), "{smoke}");
        assert!(run.stderr().contains("smoke test of"), "{}", run.stderr());
    } else {
        eprintln!("ui was already in dev: no smoke test ran");
    }

    let before = crate::channels::snapshot(&project.path("images"));
    let run = project.oxbake(&["promote", "ui", &v, "--to", "prod"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(
        run.stderr().contains("is not in channel `staging`"),
        "{}",
        run.stderr()
    );
    assert_eq!(crate::channels::snapshot(&project.path("images")), before);

    let channels = registry.channels().unwrap();
    assert_eq!(channels.get("dev", "ui"), Some(ui.version));
    assert_eq!(channels.get("prod", "ui"), None);
    let last = channels.history_of("ui", "dev").last().unwrap();
    assert_eq!(last.action, ChannelAction::Set);
    assert_eq!(last.to, ui.version);
    if fresh {
        assert_eq!(last.why, "promote");
    }
    let run = project.oxbake(&["ls", "ui"]);
    assert!(run.stdout().contains("dev"), "{}", run.stdout());
}
