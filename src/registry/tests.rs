//! Tests of the registry as a whole: files on disk, round trips, errors.

use std::collections::BTreeMap;
use std::fs;

use jiff::Timestamp;

use super::*;

fn fixed_now() -> Timestamp {
    "2026-11-25T10:03:12.5Z".parse().unwrap()
}

fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::for_project(dir.path()).with_clock(fixed_now);
    (dir, registry)
}

fn sha(byte: char) -> Sha256 {
    byte.to_string().repeat(64).parse().unwrap()
}

pub(super) fn image(checks: &[(&str, bool)]) -> NewImage {
    NewImage {
        inputs: sha('a'),
        parent: "base@2026.11.24.1".parse().unwrap(),
        target: "local".into(),
        artifact: Artifact::Local {
            path: "/var/lib/oxbake/ui.qcow2".into(),
            sha256: sha('b'),
        },
        repositories: BTreeMap::from([("http://deb.debian.org/debian bookworm".into(), sha('c'))]),
        packages: BTreeMap::from([
            ("nginx".into(), "1.22.1-9".into()),
            ("libstdc++6".into(), "12.2.0-14".into()),
        ]),
        checks: checks
            .iter()
            .map(|(name, passed)| CheckResult {
                name: (*name).into(),
                command: format!("check-{name}"),
                passed: *passed,
                detail: String::new(),
            })
            .collect(),
        builder: None,
        size: None,
    }
}

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

#[test]
fn records_allocate_increasing_versions_and_round_trip() {
    let (_dir, reg) = registry();
    let first = reg.record("ui", image(&[("nginx", true)])).unwrap();
    let second = reg.record("ui", image(&[])).unwrap();
    assert_eq!(first.version, v("2026.11.25.1"));
    assert_eq!(second.version, v("2026.11.25.2"));
    assert_eq!(first.created.to_string(), "2026-11-25T10:03:12Z");
    assert_eq!(reg.get("ui", &first.version).unwrap(), first);
    assert_eq!(reg.versions("ui").unwrap(), [first.version, second.version]);
    assert_eq!(reg.roles().unwrap(), ["ui"]);
    let latest = reg.resolve(&"ui".parse().unwrap()).unwrap();
    assert_eq!(latest, second);
}

#[test]
fn record_with_hands_the_version_to_the_builder() {
    let (_dir, reg) = registry();
    let record = reg
        .record_with("web", |version| NewImage {
            artifact: Artifact::Proxmox {
                node: "pve1".into(),
                vmid: 9001,
                template: format!("oxbake-web-{version}"),
            },
            ..image(&[])
        })
        .unwrap();
    let Artifact::Proxmox { template, .. } = &record.artifact else {
        panic!("wrong artifact");
    };
    assert_eq!(template, "oxbake-web-2026.11.25.1");
    assert_eq!(reg.get("web", &record.version).unwrap(), record);
}

#[test]
fn the_file_is_plain_toml_with_every_field() {
    let (dir, reg) = registry();
    reg.record("ui", image(&[("nginx", true)])).unwrap();
    let text = fs::read_to_string(dir.path().join("images/ui/2026.11.25.1.toml")).unwrap();
    for line in [
        "role = \"ui\"",
        "version = \"2026.11.25.1\"",
        "parent = \"base@2026.11.24.1\"",
        "created = \"2026-11-25T10:03:12Z\"",
        "[artifact]",
        "kind = \"local\"",
        "\"libstdc++6\" = \"12.2.0-14\"",
        "[[checks]]",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(!text.contains("revoked"));
    let names: Vec<_> = fs::read_dir(dir.path().join("images/ui"))
        .unwrap()
        .collect();
    assert_eq!(names.len(), 1, "temporary files were left behind");
}

#[test]
fn revoking_changes_only_the_revoked_table() {
    let (_dir, reg) = registry();
    let record = reg.record("ui", image(&[])).unwrap();
    let revoked = reg
        .revoke("ui", &record.version, "CVE-2026-1", "alice")
        .unwrap();
    assert_eq!(revoked.revoked.as_ref().unwrap().who, "alice");
    let reread = reg.get("ui", &record.version).unwrap();
    assert_eq!(reread, revoked);
    assert_eq!(
        ImageRecord {
            revoked: None,
            ..reread
        },
        record
    );
    let err = reg
        .revoke("ui", &record.version, "again", "bob")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "image `ui@2026.11.25.1` is already revoked (CVE-2026-1)"
    );
    assert_eq!(reg.latest("ui", true).unwrap(), None);
    assert_eq!(reg.latest("ui", false).unwrap(), Some(revoked));
}

#[test]
fn parse_errors_point_at_line_and_column() {
    let (dir, reg) = registry();
    let record = reg.record("ui", image(&[])).unwrap();
    let path = dir.path().join("images/ui/2026.11.25.1.toml");
    let text = fs::read_to_string(&path).unwrap();
    let cases = [
        (
            "inputs = \"",
            "inputs = \"nothex",
            "images/ui/2026.11.25.1.toml:4:10: ",
        ),
        (
            "target = ",
            "colour = \"red\"\ntarget = ",
            "images/ui/2026.11.25.1.toml:6:1: ",
        ),
        (
            "role = \"ui\"",
            "role = \"web\"",
            "images/ui/2026.11.25.1.toml:2:8: role does not match",
        ),
    ];
    for (from, to, expected) in cases {
        fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let err = reg.get("ui", &record.version).unwrap_err();
        assert!(err.to_string().starts_with(expected), "{err}");
    }
}

#[test]
fn stray_files_are_reported_and_hidden_files_ignored() {
    let (dir, reg) = registry();
    reg.record("ui", image(&[])).unwrap();
    fs::write(dir.path().join("images/ui/.oxbake-x.tmp"), "").unwrap();
    fs::write(dir.path().join("images/ui/README.md"), "").unwrap();
    assert_eq!(reg.versions("ui").unwrap().len(), 1);
    fs::write(dir.path().join("images/ui/2026.11.25.01.toml"), "").unwrap();
    let err = reg.versions("ui").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`images/ui/2026.11.25.01.toml`"),
        "{err}"
    );
}

#[test]
fn channels_keep_history_and_roll_back() {
    let (dir, reg) = registry();
    let a = reg.record("ui", image(&[])).unwrap().version;
    let b = reg.record("ui", image(&[])).unwrap().version;
    let c = reg.record("ui", image(&[])).unwrap().version;
    for version in [a, b, c] {
        assert!(
            reg.set_channel("ui", "prod", &version, "ci", "nightly")
                .unwrap()
                .changed
        );
    }
    assert!(
        !reg.set_channel("ui", "prod", &c, "ci", "again")
            .unwrap()
            .changed
    );
    reg.revoke("ui", &b, "broken", "alice").unwrap();
    let change = reg.rollback("ui", "prod", "alice", "bad release").unwrap();
    assert_eq!((change.from, change.to), (Some(c), a));
    let channels = reg.channels().unwrap();
    assert_eq!(channels.get("prod", "ui"), Some(a));
    assert_eq!(channels.history.len(), 4);
    let last = channels.history.last().unwrap();
    assert_eq!(last.action, ChannelAction::Rollback);
    assert_eq!(last.why, "bad release");
    let err = reg.rollback("ui", "prod", "alice", "").unwrap_err();
    assert!(
        matches!(err, RegistryError::NothingToRollBack { .. }),
        "{err}"
    );
    let err = reg.set_channel("ui", "prod", &b, "ci", "").unwrap_err();
    assert!(err.to_string().contains("is revoked (broken)"), "{err}");
    let text = fs::read_to_string(dir.path().join("images/channels.toml")).unwrap();
    assert!(
        text.contains("[channels.prod]") && text.contains("[[history]]"),
        "{text}"
    );
}

#[test]
fn channel_changes_need_an_existing_image_and_valid_names() {
    let (_dir, reg) = registry();
    let err = reg
        .set_channel("ui", "dev", &v("2026.11.25.1"), "ci", "")
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "image `ui@2026.11.25.1` not found: `images/ui/2026.11.25.1.toml` does not exist"
    );
    let err = reg
        .set_channel("ui", "Prod", &v("2026.11.25.1"), "ci", "")
        .unwrap_err();
    assert!(matches!(err, RegistryError::InvalidChannel { .. }));
    let err = reg.record("../x", image(&[])).unwrap_err();
    assert!(matches!(err, RegistryError::InvalidRole { .. }));
}

#[test]
fn missing_registry_reads_as_empty() {
    let (_dir, reg) = registry();
    assert!(reg.roles().unwrap().is_empty());
    assert!(reg.versions("ui").unwrap().is_empty());
    assert_eq!(reg.channels().unwrap(), Channels::default());
    let err = reg.resolve(&"ui".parse().unwrap()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "role `ui` has no image versions in `images/ui`"
    );
}

#[test]
fn find_by_inputs_skips_revoked_and_other_inputs() {
    let (_dir, reg) = registry();
    let a = reg.record("ui", image(&[])).unwrap();
    let other = NewImage {
        inputs: sha('d'),
        ..image(&[])
    };
    reg.record("ui", other).unwrap();
    assert_eq!(
        reg.find_by_inputs("ui", &sha('a')).unwrap(),
        Some(a.clone())
    );
    reg.revoke("ui", &a.version, "bad", "me").unwrap();
    assert_eq!(reg.find_by_inputs("ui", &sha('a')).unwrap(), None);
    assert_eq!(reg.list(None).unwrap().len(), 2);
}

#[test]
fn summaries_are_the_listed_records_without_packages() {
    let (_dir, reg) = registry();
    reg.record("ui", image(&[("nginx", true), ("port", false)]))
        .unwrap();
    reg.record("ui", image(&[])).unwrap();
    reg.record("base", image(&[])).unwrap();
    let listed: Vec<ImageSummary> = reg
        .list(None)
        .unwrap()
        .into_iter()
        .map(Into::into)
        .collect();
    let summaries = reg.summaries(None).unwrap();
    assert_eq!(summaries, listed);
    let ids: Vec<String> = summaries.iter().map(ImageSummary::id).collect();
    assert_eq!(
        ids,
        ["base@2026.11.25.1", "ui@2026.11.25.2", "ui@2026.11.25.1"]
    );
    assert_eq!(summaries[2].checks_passed, (1, 2));
    assert_eq!(reg.summaries(Some("ui")).unwrap(), listed[1..]);
}

#[test]
fn a_template_size_is_recorded_and_read_back() {
    let (dir, reg) = registry();
    let sized = NewImage {
        size: Some(1_320_702_443),
        builder: Some(BuilderIdentity {
            machine_id: "0123456789abcdef0123456789abcdef".into(),
            host_key: "SHA256:abc".into(),
        }),
        ..image(&[("nginx -t", true)])
    };
    let record = reg.record("ui", sized).unwrap();
    let back = reg.get("ui", &record.version).unwrap();
    assert_eq!(back.size, Some(1_320_702_443));
    let text = std::fs::read_to_string(dir.path().join("images/ui/2026.11.25.1.toml")).unwrap();
    assert!(text.contains("size = 1320702443"), "{text}");
    // Records written before sizes were kept still read.
    let plain = reg.record("web", image(&[])).unwrap();
    assert_eq!(reg.get("web", &plain.version).unwrap().size, None);
}

#[test]
fn timings_round_trip_and_records_without_them_still_load() {
    let (dir, reg) = registry();
    let timings = vec![
        PhaseTiming {
            phase: "boot and connect over SSH".into(),
            step: None,
            millis: 81_234,
        },
        PhaseTiming {
            phase: "step 1/2: common packages".into(),
            step: Some(1),
            millis: 256_001,
        },
    ];
    let reservation = reg.reserve("ui").unwrap();
    let record = reservation
        .commit_timed(image(&[("nginx", true)]), timings.clone())
        .unwrap();
    assert_eq!(record.timings, timings);
    let path = dir.path().join("images/ui/2026.11.25.1.toml");
    let text = fs::read_to_string(&path).unwrap();
    assert!(
        text.contains(
            "[[timings]]\nphase = \"step 1/2: common packages\"\nstep = 1\nmillis = 256001\n"
        ),
        "{text}"
    );
    assert_eq!(reg.get("ui", &record.version).unwrap(), record);
    // The whole-file parser (what the quick one falls back to) reads them too.
    let whole: ImageRecord = toml::from_str(&text).unwrap();
    assert_eq!(whole, record);

    // A record written before timings were kept: no `timings` at all.
    let old = reg.record("ui", image(&[])).unwrap();
    assert!(old.timings.is_empty());
    let old_path = dir.path().join(format!("images/ui/{}.toml", old.version));
    let old_text = fs::read_to_string(&old_path).unwrap();
    assert!(!old_text.contains("timings"), "{old_text}");
    assert_eq!(reg.get("ui", &old.version).unwrap(), old);
    assert_eq!(reg.summaries(Some("ui")).unwrap().len(), 2);
}

#[test]
fn a_bad_timing_points_at_its_line() {
    let (dir, reg) = registry();
    let timings = vec![PhaseTiming {
        phase: "prepare".into(),
        step: None,
        millis: 5,
    }];
    let record = reg
        .reserve("ui")
        .unwrap()
        .commit_timed(image(&[]), timings)
        .unwrap();
    let path = dir.path().join("images/ui/2026.11.25.1.toml");
    let text = fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .position(|l| l == "millis = 5")
        .expect("the timing's line")
        + 1;
    fs::write(&path, text.replace("millis = 5", "millis = -5")).unwrap();
    let err = reg.get("ui", &record.version).unwrap_err().to_string();
    let at = format!("images/ui/2026.11.25.1.toml:{line}:10: ");
    assert!(err.starts_with(&at), "{err}");
}

#[test]
fn a_removal_checks_the_channels_but_not_their_history() {
    let (dir, reg) = registry();
    let kept = reg.record("ui", image(&[])).unwrap().version;
    let old = reg.record("ui", image(&[])).unwrap().version;
    reg.set_channel("ui", "prod", &kept, "ci", "release")
        .unwrap();
    let path = dir.path().join("images/channels.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("who = \"ci\"", "who = 3")).unwrap();
    assert!(reg.channels().is_err(), "the history is broken");
    let err = reg.remove("ui", &kept).unwrap_err();
    assert!(matches!(err, RegistryError::InChannel { .. }), "{err}");
    assert!(reg.remove("ui", &old).unwrap());
    assert_eq!(reg.versions("ui").unwrap(), [kept]);
}

#[test]
fn publishing_adds_one_copy_per_target_and_old_records_still_load() {
    let (dir, reg) = registry();
    let record = reg.record("ui", image(&[])).unwrap();
    // A record written before `[[published]]` existed reads as never published.
    let text = fs::read_to_string(dir.path().join("images/ui/2026.11.25.1.toml")).unwrap();
    assert!(!text.contains("published"), "{text}");
    assert!(record.published.is_empty());
    let copy = |vmid| Published {
        target: "pve".into(),
        // The registry's clock, in whole seconds.
        when: "2026-11-25T10:03:12Z".parse().unwrap(),
        sha256: sha('e'),
        artifact: Artifact::Proxmox {
            node: "pve1".into(),
            vmid,
            template: "ui-2026.11.25.1".into(),
        },
    };
    let published = reg
        .publish("ui", &record.version, copy(9101), None)
        .unwrap();
    assert_eq!(published.published, [copy(9101)]);
    let reread = reg.get("ui", &record.version).unwrap();
    assert_eq!(reread, published);
    assert_eq!(
        ImageRecord {
            published: Vec::new(),
            ..reread.clone()
        },
        record,
        "nothing else changed"
    );
    let text = fs::read_to_string(dir.path().join("images/ui/2026.11.25.1.toml")).unwrap();
    assert!(text.contains("[[published]]"), "{text}");
    assert!(text.contains("oxbake publish"), "{text}");
    // Where the image is, per target.
    assert_eq!(reread.artifact_on("local"), Some(&reread.artifact));
    assert_eq!(reread.artifact_on("pve"), Some(&copy(9101).artifact));
    assert_eq!(reread.artifact_on("other"), None);
    let summary = reg.summaries(Some("ui")).unwrap().remove(0);
    assert_eq!(summary.artifact_on("pve"), Some(&copy(9101).artifact));

    // A second copy on the same target is refused, unless it replaces the
    // one recorded (proven gone by the caller).
    let err = reg
        .publish("ui", &record.version, copy(9102), None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "image `ui@2026.11.25.1` is already published to target `pve` as pve1/9101 \
         (`ui-2026.11.25.1`)"
    );
    let wrong = copy(9105).artifact;
    assert!(
        reg.publish("ui", &record.version, copy(9102), Some(&wrong))
            .is_err()
    );
    let replaced = reg
        .publish(
            "ui",
            &record.version,
            copy(9102),
            Some(&copy(9101).artifact),
        )
        .unwrap();
    assert_eq!(replaced.published, [copy(9102)]);
    // A prune that destroyed the copy forgets it under its removal's lock,
    // leaving the rest as built; forgetting a copy that is not there
    // changes nothing.
    let removal = reg.begin_removal("ui", &record.version).unwrap();
    assert_eq!(removal.forget_copy("pve").unwrap(), record);
    let path = dir.path().join("images/ui/2026.11.25.1.toml");
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(removal.forget_copy("pve").unwrap(), record);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    removal.abandon().unwrap();
    assert_eq!(reg.get("ui", &record.version).unwrap(), record);
    let summary = reg.summaries(Some("ui")).unwrap().remove(0);
    assert!(summary.published.is_empty(), "{summary:?}");
    // Not to the target it was built on, not once revoked.
    let home = Published {
        target: "local".into(),
        ..copy(1)
    };
    let err = reg.publish("ui", &record.version, home, None).unwrap_err();
    assert!(err.to_string().contains("it was built there"), "{err}");
    reg.revoke("ui", &record.version, "CVE-2026-2", "alice")
        .unwrap();
    let other = Published {
        target: "pve2".into(),
        ..copy(1)
    };
    let err = reg.publish("ui", &record.version, other, None).unwrap_err();
    assert!(
        err.to_string().contains("it is revoked (CVE-2026-2)"),
        "{err}"
    );
}
