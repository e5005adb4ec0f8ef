//! `oxbake prune [--dry-run] [--target T]`

use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::pipeline::open;
use crate::pipeline::prune_plan::PruneAction;
use crate::pipeline::{cancel, prune};
use crate::registry::Registry;
use crate::report::table::table;

pub async fn run(ctx: &Ctx<'_>, target: Option<&str>, dry_run: bool) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let open = open::open(&project, target, &ctx.progress, false).await?;
    let pctx = ctx.pipeline(&project, &registry, &open, cancel::never());
    let keep = project.config.retention.keep as usize;
    let report = prune::prune(&pctx, keep, dry_run).await?;
    let rows: Vec<Vec<String>> = report
        .entries
        .iter()
        .map(|e| {
            let action = match (e.action, dry_run) {
                (PruneAction::Keep, _) => "keep",
                (PruneAction::Remove, true) => "would remove",
                (PruneAction::Remove, false) => "remove",
                (PruneAction::Removed, _) => "removed",
                (PruneAction::Failed, _) => "failed",
            };
            vec![
                format!("{}@{}", e.role, e.version),
                action.to_owned(),
                e.why.join("; "),
            ]
        })
        .collect();
    let text = if rows.is_empty() {
        "no images in the registry\n".to_owned()
    } else {
        table(&["image", "action", "why"], &rows)
    };
    ctx.out
        .result(&text, &json!({ "target": open.name, "prune": report }));
    if report.failed() {
        return Err(Error::Failed("some images could not be removed".into()));
    }
    Ok(())
}
