use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::registry::{
    ChannelAction, CheckResult, HistoryEntry, NewImage, PhaseTiming, Sha256, Version,
};

fn sha(byte: char) -> Sha256 {
    byte.to_string().repeat(64).parse().unwrap()
}

fn record(role: &str, version: &str, parent: &str, artifact: Artifact) -> ImageRecord {
    let image = NewImage {
        inputs: sha('a'),
        parent: parent.parse().unwrap(),
        target: "local".into(),
        artifact,
        repositories: BTreeMap::from([("http://deb.debian.org/debian bookworm".into(), sha('c'))]),
        packages: BTreeMap::from([
            ("nginx".into(), "1.22.1-9".into()),
            ("adduser".into(), "3.134".into()),
        ]),
        checks: vec![
            CheckResult {
                name: "nginx-config".into(),
                command: "nginx -t".into(),
                passed: true,
                detail: String::new(),
            },
            CheckResult {
                name: "port".into(),
                command: "ss -ltn".into(),
                passed: false,
                detail: "nothing on :443\nsecond line".into(),
            },
        ],
        builder: None,
        size: None,
    };
    let created = "2026-11-25T10:03:12Z".parse().unwrap();
    ImageRecord::new(role, version.parse().unwrap(), created, image)
}

fn local() -> Artifact {
    Artifact::Local {
        path: "/srv/images/ui.qcow2".into(),
        sha256: sha('b'),
    }
}

fn proxmox() -> Artifact {
    Artifact::Proxmox {
        node: "pve1".into(),
        vmid: 9001,
        template: "oxbake-base-2026.11.24.1".into(),
    }
}

fn channels(pairs: &[(&str, &str, &str)]) -> Channels {
    let mut channels = Channels::default();
    for (channel, role, version) in pairs {
        channels.apply(HistoryEntry {
            when: "2026-11-25T11:00:00Z".parse().unwrap(),
            who: "ci".into(),
            action: ChannelAction::Set,
            role: (*role).into(),
            channel: (*channel).into(),
            from: None,
            to: version.parse::<Version>().unwrap(),
            why: String::new(),
        });
    }
    channels
}

fn sample() -> (Vec<ImageRecord>, Channels) {
    let mut revoked = record("ui", "2026.11.25.9", "base@2026.11.24.1", local());
    revoked.revoked = Some(Revocation {
        reason: "CVE".into(),
        when: "2026-11-26T08:00:00Z".parse().unwrap(),
        who: "alice".into(),
    });
    let records = vec![
        record(
            "base",
            "2026.11.24.1",
            "base-image:debian-12-0a1b",
            proxmox(),
        ),
        record("ui", "2026.11.25.10", "base@2026.11.24.1", local()),
        revoked,
    ];
    let channels = channels(&[
        ("dev", "ui", "2026.11.25.10"),
        ("prod", "ui", "2026.11.25.10"),
        ("dev", "base", "2026.11.24.1"),
    ]);
    (records, channels)
}

fn summaries(records: Vec<ImageRecord>) -> Vec<ImageSummary> {
    records.into_iter().map(ImageSummary::from).collect()
}

#[test]
fn ls_table_lines_up_every_column() {
    let (records, channels) = sample();
    let records = summaries(records);
    let expected = "\
ROLE  VERSION        CREATED (UTC)     PARENT                     TARGET  CHECKS  CHANNELS  REVOKED
base  2026.11.24.1   2026-11-25 10:03  base-image:debian-12-0a1b  local   1/2     dev       -
ui    2026.11.25.10  2026-11-25 10:03  base@2026.11.24.1          local   1/2     dev,prod  -
ui    2026.11.25.9   2026-11-25 10:03  base@2026.11.24.1          local   1/2     -         yes
";
    assert_eq!(ls_table(&records, &channels), expected);
    assert_eq!(ls_table(&[], &channels), "no image versions recorded\n");
}

#[test]
fn ls_json_is_one_document() {
    let (records, channels) = sample();
    let records = summaries(records);
    let doc = ls_json(&records, &channels);
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    assert_eq!(
        images[1],
        json!({
            "role": "ui",
            "version": "2026.11.25.10",
            "created": "2026-11-25T10:03:12Z",
            "parent": "base@2026.11.24.1",
            "target": "local",
            "checks": { "passed": 1, "total": 2 },
            "channels": ["dev", "prod"],
            "revoked": null,
        })
    );
    assert_eq!(
        images[2]["revoked"],
        json!({ "reason": "CVE", "when": "2026-11-26T08:00:00Z", "who": "alice" })
    );
}

#[test]
fn show_text_lists_every_field_and_section() {
    let (records, channels) = sample();
    let a = "a".repeat(64);
    let b = "b".repeat(64);
    let c = "c".repeat(64);
    let expected = format!(
        "\
image            ui@2026.11.25.9
created          2026-11-25T10:03:12Z
inputs           sha256:{a}
parent           base@2026.11.24.1
target           local
artifact         local file /srv/images/ui.qcow2
artifact sha256  {b}
channels         -
revoked          yes, 2026-11-26T08:00:00Z by alice: CVE

repositories (1)
  http://deb.debian.org/debian bookworm  InRelease sha256:{c}

checks (1 of 2 passed)
  ok      nginx-config  nginx -t
  FAILED  port          ss -ltn   nothing on :443 …

packages (2)
  adduser  3.134
  nginx    1.22.1-9
"
    );
    assert_eq!(show_text(&records[2], &channels), expected);
    let base = show_text(&records[0], &channels);
    assert!(base.contains(
        "artifact  proxmox template oxbake-base-2026.11.24.1 (vmid 9001 on node pve1)\n"
    ));
    assert!(base.contains("channels  dev\n"));
}

#[test]
fn show_json_has_the_record_and_its_counts() {
    let (records, channels) = sample();
    let doc = show_json(&records[0], &channels);
    assert_eq!(doc["id"], "base@2026.11.24.1");
    assert_eq!(doc["inputs"], "a".repeat(64));
    assert_eq!(
        doc["artifact"],
        json!({ "kind": "proxmox", "node": "pve1", "vmid": 9001, "template": "oxbake-base-2026.11.24.1" })
    );
    assert_eq!(doc["channels"], json!(["dev"]));
    assert_eq!(doc["revoked"], json!(null));
    assert_eq!(
        (doc["checks_passed"].clone(), doc["checks_total"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(doc["checks"][1]["detail"], "nothing on :443\nsecond line");
    assert_eq!(doc["package_count"], 2);
    assert_eq!(
        doc["packages"],
        json!({ "adduser": "3.134", "nginx": "1.22.1-9" })
    );
    assert_eq!(
        doc["repositories"]["http://deb.debian.org/debian bookworm"],
        "c".repeat(64)
    );
}

#[test]
fn sizes_read_in_binary_units_with_the_exact_bytes() {
    assert_eq!(super::human_size(512), "512 bytes");
    assert_eq!(super::human_size(1536), "1.50 KiB (1536 bytes)");
    assert_eq!(
        super::human_size(1_320_702_443),
        "1.23 GiB (1320702443 bytes)"
    );
}

fn timed(mut record: ImageRecord) -> ImageRecord {
    let timing = |phase: &str, step, millis| PhaseTiming {
        phase: phase.into(),
        step,
        millis,
    };
    record.timings = vec![
        timing("create the builder VM", None, 2_960),
        timing("boot and connect over SSH", None, 81_234),
        timing("step 1/2: common packages", Some(1), 256_001),
        timing("step 2/2: services", Some(2), 74_000),
    ];
    record
}

#[test]
fn show_text_has_a_table_of_timings_when_the_record_has_them() {
    let (records, channels) = sample();
    let untimed = show_text(&records[1], &channels);
    assert!(!untimed.contains("timings"), "{untimed}");
    let text = show_text(&timed(records[1].clone()), &channels);
    let expected = "
revoked          no

timings (414.2 s in all)
  PHASE                      SECONDS
  create the builder VM      3.0
  boot and connect over SSH  81.2
  step 1/2: common packages  256.0
  step 2/2: services         74.0

repositories (1)
";
    assert!(text.contains(expected), "{text}");
}

#[test]
fn show_json_has_the_timings() {
    let (records, channels) = sample();
    assert_eq!(show_json(&records[1], &channels)["timings"], json!([]));
    let doc = show_json(&timed(records[1].clone()), &channels);
    assert_eq!(
        doc["timings"][1],
        json!({ "phase": "boot and connect over SSH", "step": null, "seconds": 81.234 })
    );
    assert_eq!(
        doc["timings"][2],
        json!({ "phase": "step 1/2: common packages", "step": 1, "seconds": 256.001 })
    );
    assert_eq!(doc["timings"].as_array().unwrap().len(), 4);
}

#[test]
fn show_lists_the_published_copies() {
    let mut r = record(
        "ui",
        "2026.12.06.1",
        "base-image:debian-12",
        Artifact::Local {
            path: ".oxbake/local/templates/ui-2026.12.06.1.qcow2".into(),
            sha256: sha('b'),
        },
    );
    let channels = Channels::default();
    assert_eq!(show_json(&r, &channels)["published"], json!([]));
    r.published.push(crate::registry::Published {
        target: "pve".into(),
        when: "2026-12-06T15:40:02Z".parse().unwrap(),
        sha256: sha('d'),
        artifact: Artifact::Proxmox {
            node: "pve1".into(),
            vmid: 9104,
            template: "ui-2026.12.06.1".into(),
        },
    });
    let doc = show_json(&r, &channels);
    assert_eq!(
        doc["published"],
        json!([{
            "target": "pve",
            "when": "2026-12-06T15:40:02Z",
            "sha256": "d".repeat(64),
            "artifact": { "kind": "proxmox", "node": "pve1", "vmid": 9104, "template": "ui-2026.12.06.1" },
        }])
    );
    let text = show_text(&r, &channels);
    assert!(
        text.contains("on `pve` as pve1/9104 (`ui-2026.12.06.1`), 2026-12-06T15:40:02Z"),
        "{text}"
    );
}
