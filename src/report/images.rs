//! The reports of `oxbake ls [ROLE]` and `oxbake show ROLE[@VERSION]`, as
//! text (aligned tables) and as one JSON document each for `--json`. The CLI
//! prints what these functions return.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::table::render;
use crate::registry::{Artifact, Channels, ImageRecord, ImageSummary, PhaseTiming, Revocation};

const LS_HEADERS: [&str; 8] = [
    "ROLE",
    "VERSION",
    "CREATED (UTC)",
    "PARENT",
    "TARGET",
    "CHECKS",
    "CHANNELS",
    "REVOKED",
];

/// The `ls` table: one line per record, in the order given
/// (see [`crate::registry::Registry::summaries`]).
pub fn ls_table(records: &[ImageSummary], channels: &Channels) -> String {
    if records.is_empty() {
        return "no image versions recorded\n".to_string();
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let (passed, total) = r.checks_passed;
            vec![
                r.role.clone(),
                r.version.to_string(),
                minutes(r.created),
                r.parent.to_string(),
                r.target.clone(),
                format!("{passed}/{total}"),
                or_dash(channels.channels_of(&r.role, &r.version).join(",")),
                if r.is_revoked() { "yes" } else { "-" }.to_string(),
            ]
        })
        .collect();
    render(0, &LS_HEADERS, &rows)
}

/// The `ls --json` document: `{"images": [...]}`.
pub fn ls_json(records: &[ImageSummary], channels: &Channels) -> Value {
    let images: Vec<Value> = records
        .iter()
        .map(|r| {
            let (passed, total) = r.checks_passed;
            json!({
                "role": r.role,
                "version": r.version.to_string(),
                "created": seconds(r.created),
                "parent": r.parent.to_string(),
                "target": r.target,
                "checks": { "passed": passed, "total": total },
                "channels": channels.channels_of(&r.role, &r.version),
                "revoked": revocation_json(r.revoked.as_ref()),
            })
        })
        .collect();
    json!({ "images": images })
}

/// The `show` text: every field, then the bake's timings (records written
/// before oxbake kept them have none), repositories, checks and packages.
pub fn show_text(record: &ImageRecord, channels: &Channels) -> String {
    let mut out = render(0, &[], &summary_rows(record, channels));
    if !record.timings.is_empty() {
        let total: u64 = record.timings.iter().map(|t| t.millis).sum();
        out.push_str(&format!(
            "
timings ({} s in all)
",
            secs(total)
        ));
        let timings: Vec<Vec<String>> = record
            .timings
            .iter()
            .map(|t| vec![t.phase.clone(), secs(t.millis)])
            .collect();
        out.push_str(&render(2, &["PHASE", "SECONDS"], &timings));
    }
    out.push_str(&format!("\nrepositories ({})\n", record.repositories.len()));
    let repositories: Vec<Vec<String>> = record
        .repositories
        .iter()
        .map(|(source, digest)| vec![source.clone(), format!("InRelease sha256:{digest}")])
        .collect();
    out.push_str(&render(2, &[], &repositories));
    let (passed, total) = record.checks_passed();
    out.push_str(&format!("\nchecks ({passed} of {total} passed)\n"));
    let checks: Vec<Vec<String>> = record
        .checks
        .iter()
        .map(|c| {
            let status = if c.passed { "ok" } else { "FAILED" };
            vec![
                status.into(),
                c.name.clone(),
                c.command.clone(),
                c.detail.clone(),
            ]
        })
        .collect();
    out.push_str(&render(2, &[], &checks));
    out.push_str(&format!("\npackages ({})\n", record.packages.len()));
    let packages: Vec<Vec<String>> = record
        .packages
        .iter()
        .map(|(name, version)| vec![name.clone(), version.clone()])
        .collect();
    out.push_str(&render(2, &[], &packages));
    out
}

/// The `show --json` document: the record's fields plus `id`, `channels`,
/// check and package counts.
pub fn show_json(record: &ImageRecord, channels: &Channels) -> Value {
    let (passed, total) = record.checks_passed();
    let checks: Vec<Value> = record
        .checks
        .iter()
        .map(|c| json!({ "name": c.name, "command": c.command, "passed": c.passed, "detail": c.detail }))
        .collect();
    let repositories: serde_json::Map<String, Value> = record
        .repositories
        .iter()
        .map(|(source, digest)| (source.clone(), Value::from(digest.as_str())))
        .collect();
    json!({
        "id": record.id(),
        "role": record.role,
        "version": record.version.to_string(),
        "created": seconds(record.created),
        "inputs": record.inputs.as_str(),
        "parent": record.parent.to_string(),
        "target": record.target,
        "artifact": artifact_json(&record.artifact),
        "published": record
            .published
            .iter()
            .map(|p| json!({
                "target": p.target,
                "when": seconds(p.when),
                "sha256": p.sha256.as_str(),
                "artifact": artifact_json(&p.artifact),
            }))
            .collect::<Vec<_>>(),
        "size": record.size,
        "channels": channels.channels_of(&record.role, &record.version),
        "revoked": revocation_json(record.revoked.as_ref()),
        "repositories": repositories,
        "checks": checks,
        "checks_passed": passed,
        "checks_total": total,
        "timings": timings_json(&record.timings),
        "package_count": record.packages.len(),
        "packages": record.packages,
    })
}

fn summary_rows(record: &ImageRecord, channels: &Channels) -> Vec<Vec<String>> {
    let pair = |key: &str, value: String| vec![key.to_string(), value];
    let mut rows = vec![
        pair("image", record.id()),
        pair("created", seconds(record.created)),
        pair("inputs", format!("sha256:{}", record.inputs)),
        pair("parent", record.parent.to_string()),
        pair("target", record.target.clone()),
    ];
    match &record.artifact {
        Artifact::Local { path, sha256 } => {
            rows.push(pair("artifact", format!("local file {}", path.display())));
            rows.push(pair("artifact sha256", sha256.to_string()));
        }
        Artifact::Proxmox {
            node,
            vmid,
            template,
        } => {
            let text = format!("proxmox template {template} (vmid {vmid} on node {node})");
            rows.push(pair("artifact", text));
        }
    }
    for copy in &record.published {
        let at = copy.artifact.describe();
        let text = format!("on `{}` as {at}, {}", copy.target, seconds(copy.when));
        rows.push(pair("published", text));
    }
    if let Some(size) = record.size {
        rows.push(pair("size", human_size(size)));
    }
    let pointing = channels
        .channels_of(&record.role, &record.version)
        .join(", ");
    rows.push(pair("channels", or_dash(pointing)));
    let revoked = match &record.revoked {
        Some(r) => format!("yes, {} by {}: {}", seconds(r.when), r.who, r.reason),
        None => "no".to_string(),
    };
    rows.push(pair("revoked", revoked));
    rows
}

fn artifact_json(artifact: &Artifact) -> Value {
    match artifact {
        Artifact::Local { path, sha256 } => json!({
            "kind": "local",
            "path": path.to_string_lossy(),
            "sha256": sha256.as_str(),
        }),
        Artifact::Proxmox {
            node,
            vmid,
            template,
        } => json!({
            "kind": "proxmox",
            "node": node,
            "vmid": vmid,
            "template": template,
        }),
    }
}

/// `[{"phase": …, "step": N or null, "seconds": 81.234}, …]`.
fn timings_json(timings: &[PhaseTiming]) -> Value {
    timings
        .iter()
        .map(|t| json!({ "phase": t.phase, "step": t.step, "seconds": t.millis as f64 / 1000.0 }))
        .collect()
}

/// Milliseconds as seconds with one decimal: `81.2`.
fn secs(millis: u64) -> String {
    format!("{:.1}", millis as f64 / 1000.0)
}

fn revocation_json(revoked: Option<&Revocation>) -> Value {
    revoked.map_or(
        Value::Null,
        |r| json!({ "reason": r.reason, "when": seconds(r.when), "who": r.who }),
    )
}

fn seconds(ts: Timestamp) -> String {
    format!("{ts:.0}")
}

fn minutes(ts: Timestamp) -> String {
    ts.to_zoned_datetime(TimeZone::UTC)
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

fn or_dash(text: String) -> String {
    if text.is_empty() {
        "-".to_string()
    } else {
        text
    }
}

#[cfg(test)]
mod tests;

/// Bytes as `1.23 GiB (1320702443 bytes)`.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = "bytes";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit == "bytes" {
        format!("{bytes} bytes")
    } else {
        format!("{value:.2} {unit} ({bytes} bytes)")
    }
}
