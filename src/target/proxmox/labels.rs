//! How oxbake marks what it owns on Proxmox: tags (keys only, lower-cased by
//! Proxmox) for listing, and a JSON block in the description with the exact
//! values.

use serde_json::{Value, json};

use crate::target::{Labels, TemplateMeta, VmKind};

const FENCE: &str = "```json\n";

/// The tag every oxbake VM and template carries.
pub const OXBAKE_TAG: &str = "oxbake";

/// Turns any text into a valid tag value (`[a-z0-9_][a-z0-9_+.-]*`).
pub fn tag_value(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(['-', '+', '.']) {
        out.insert(0, '_');
    }
    out
}

pub fn kind_name(kind: VmKind) -> &'static str {
    match kind {
        VmKind::Builder => "builder",
        VmKind::Smoke => "smoke",
        VmKind::Deployed => "deployed",
    }
}

pub fn vm_tags(labels: &Labels) -> Vec<String> {
    let mut tags = vec![
        OXBAKE_TAG.to_string(),
        format!("role-{}", tag_value(&labels.role)),
        format!("run-{}", tag_value(&labels.run_id)),
        format!("kind-{}", kind_name(labels.kind)),
    ];
    if let Some(env) = &labels.env {
        tags.push(format!("env-{}", tag_value(env)));
    }
    if let Some(version) = &labels.version {
        tags.push(format!("v-{}", tag_value(version)));
    }
    tags
}

pub fn template_tags(role: &str) -> Vec<String> {
    vec![
        OXBAKE_TAG.to_string(),
        format!("role-{}", tag_value(role)),
        "kind-template".to_string(),
    ]
}

/// The description of a VM: its labels and when it was made (now).
pub fn vm_description(labels: &Labels) -> String {
    let created = jiff::Timestamp::now().to_string();
    describe(&json!({ "oxbake": { "labels": labels, "created": created } }))
}

pub fn template_description(meta: &TemplateMeta) -> String {
    describe(&json!({ "oxbake": { "template": meta } }))
}

fn describe(doc: &Value) -> String {
    format!("Managed by oxbake; do not edit the block below.\n\n{FENCE}{doc}\n```\n")
}

/// The JSON block of a description, if it has one.
pub fn parse_description(text: &str) -> Option<Value> {
    let start = text.find(FENCE)? + FENCE.len();
    let end = text[start..].find("```")? + start;
    serde_json::from_str(text[start..end].trim()).ok()
}

/// The labels recorded in a description.
pub fn labels_from_description(text: &str) -> Option<Labels> {
    let doc = parse_description(text)?;
    serde_json::from_value(doc.get("oxbake")?.get("labels")?.clone()).ok()
}

/// When the VM of a description was made, if its block says.
pub fn created_from_description(text: &str) -> Option<jiff::Timestamp> {
    let doc = parse_description(text)?;
    doc.get("oxbake")?.get("created")?.as_str()?.parse().ok()
}

/// The labels of a description that has a JSON block; `None` without a
/// block, an error saying why when the block has no readable labels.
pub fn labels_of_block(text: &str) -> Option<Result<Labels, String>> {
    text.find(FENCE)?;
    let labels = labels_from_description(text);
    Some(labels.ok_or_else(|| "the description's oxbake block cannot be parsed".to_owned()))
}

/// Labels read back from tags alone (lower-cased, sanitised values).
pub fn labels_from_tags(tags: &[String]) -> Option<Labels> {
    let find = |prefix: &str| {
        tags.iter()
            .find_map(|t| t.strip_prefix(prefix).map(str::to_string))
    };
    let kind = match find("kind-")?.as_str() {
        "builder" => VmKind::Builder,
        "smoke" => VmKind::Smoke,
        "deployed" => VmKind::Deployed,
        _ => return None,
    };
    Some(Labels {
        run_id: find("run-")?,
        role: find("role-")?,
        kind,
        env: find("env-"),
        version: find("v-"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_through_the_description() {
        let labels = Labels {
            run_id: "Run:2026-01-01".into(),
            role: "web".into(),
            kind: VmKind::Builder,
            env: None,
            version: None,
        };
        let before = jiff::Timestamp::now();
        let d = vm_description(&labels);
        assert_eq!(labels_from_description(&d), Some(labels.clone()));
        let created = created_from_description(&d).unwrap();
        assert!(created >= before && created <= jiff::Timestamp::now());
        assert_eq!(created_from_description("no block"), None);
        let tags = vm_tags(&labels);
        assert_eq!(
            tags,
            ["oxbake", "role-web", "run-run_2026-01-01", "kind-builder"]
        );
        let back = labels_from_tags(&tags).unwrap();
        assert_eq!((back.role.as_str(), back.kind), ("web", VmKind::Builder));
        assert_eq!(tag_value(".x y"), "_.x_y");
    }
}
