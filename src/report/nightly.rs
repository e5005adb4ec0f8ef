//! `oxbake nightly`'s table: one row per role, then the failures and the
//! verdict.

use super::table::table as render;
use crate::pipeline::nightly::{NightlyReport, Promotion, RoleReport, describe};

/// The table: one row per role, then the failures.
pub fn table(report: &NightlyReport) -> String {
    let rows: Vec<Vec<String>> = report.roles.iter().map(row).collect();
    let header = [
        "role", "decision", "version", "promoted", "pruned", "time", "status",
    ];
    let mut text = render(&header, &rows);
    for r in report.roles.iter().filter(|r| r.error.is_some()) {
        let error = r.error.as_deref().unwrap_or_default();
        text.push_str(&format!("{}: {error}\n", r.role));
    }
    if let Some(e) = &report.prune_error {
        text.push_str(&format!("prune: {e}\n"));
    }
    for p in &report.channel_problems {
        text.push_str(&format!("{p}\n"));
    }
    let what = if report.plan { "plan" } else { "nightly" };
    let verdict = if report.ok() { "ok" } else { "FAILED" };
    text.push_str(&format!("{what} {verdict} in {:.2}s\n", report.seconds));
    text
}

fn row(r: &RoleReport) -> Vec<String> {
    let promoted = match &r.promotion {
        None => "-".to_owned(),
        Some(Promotion::AlreadyIn { channel }) => format!("in {channel}"),
        Some(Promotion::Promoted { channel }) => format!("-> {channel}"),
        Some(Promotion::Planned { channel }) => format!("would -> {channel}"),
        Some(Promotion::Failed { channel, .. }) => format!("failed -> {channel}"),
    };
    vec![
        r.role.clone(),
        describe(&r.decision),
        r.version.map_or_else(|| "-".to_owned(), |v| v.to_string()),
        promoted,
        r.pruned.len().to_string(),
        format!("{:.1}s", r.seconds),
        format!("{:?}", r.status).to_lowercase(),
    ]
}
