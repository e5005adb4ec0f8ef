//! What `oxbake ls --target NAME` adds under the table: the drift between the
//! registry and the target ([`crate::pipeline::drift`]), as text and JSON.

use serde_json::{Value, json};

use crate::pipeline::drift::Drift;
use crate::target::{self, TemplateRef};

fn template_location(t: &TemplateRef) -> String {
    match &t.artifact {
        target::Artifact::Proxmox { node, vmid, .. } => format!("{node}/{vmid} ({})", t.name),
        target::Artifact::Local { path, .. } => path.display().to_string(),
    }
}

/// The lines `ls --target` adds under the table.
pub fn drift_text(target_name: &str, drift: &Drift) -> String {
    if drift.is_empty() {
        return format!(
            "\ntarget `{target_name}`: every record has its template, and no template lacks a record\n"
        );
    }
    let mut out = format!("\ntarget `{target_name}`:\n");
    for (id, at) in &drift.missing {
        out.push_str(&format!(
            "  missing on the target: {id} (recorded at {at})\n"
        ));
    }
    for t in &drift.unrecorded {
        out.push_str(&format!(
            "  not in the registry: template {}\n",
            template_location(t)
        ));
    }
    out
}

/// The `target` member of `ls --target --json`.
pub fn drift_json(target_name: &str, drift: &Drift) -> Value {
    let missing: Vec<Value> = drift
        .missing
        .iter()
        .map(|(id, at)| json!({ "image": id, "recorded_at": at }))
        .collect();
    let unrecorded: Vec<Value> = drift
        .unrecorded
        .iter()
        .map(|t| json!({ "name": t.name, "at": template_location(t) }))
        .collect();
    json!({
        "name": target_name,
        "in_sync": drift.is_empty(),
        "missing_on_target": missing,
        "not_in_registry": unrecorded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_is_told_in_lines_and_in_json() {
        let (drift, synced) = crate::pipeline::drift::tests::sample();
        let text = drift_text("pve", &drift);
        assert!(
            text.contains("missing on the target: ui@2026.11.25.2"),
            "{text}"
        );
        assert!(
            text.contains("not in the registry: template pve1/9200 (stray-2026.11.20.1)"),
            "{text}"
        );
        assert_eq!(drift_json("pve", &drift)["in_sync"], false);
        assert_eq!(drift_json("pve", &synced)["in_sync"], true);
    }
}
