//! `oxbake gc [--dry-run] [--target T]`

use serde_json::json;

use super::{Ctx, targets};
use crate::error::Error;
use crate::output::table;
use crate::pipeline::gc;

pub async fn run(ctx: &Ctx<'_>, target: Option<&str>, dry_run: bool) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let open = targets::open(&project, target, &ctx.progress, false).await?;
    let runs = project.root.join(".oxbake/runs");
    let found = gc::collect(open.target.as_ref(), &runs, dry_run, &ctx.progress).await?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|l| {
            let status = match (&l.error, l.removed) {
                (Some(e), _) => format!("failed: {e}"),
                (None, true) => "removed".to_owned(),
                (None, false) => "would remove".to_owned(),
            };
            let kind = l
                .kind
                .map(|k| format!("{k:?}").to_lowercase())
                .unwrap_or_else(|| "?".into());
            vec![
                l.name.clone(),
                kind,
                l.role.clone().unwrap_or_default(),
                l.run_id.clone().unwrap_or_default(),
                status,
            ]
        })
        .collect();
    let text = if found.is_empty() {
        format!("no leftover VMs on target `{}`\n", open.name)
    } else {
        table(&["vm", "kind", "role", "run", "status"], &rows)
    };
    ctx.out.result(
        &text,
        &json!({ "target": open.name, "dry_run": dry_run, "leftovers": found }),
    );
    if found.iter().any(|l| l.error.is_some()) {
        return Err(Error::Usage("some leftovers could not be removed".into()));
    }
    Ok(())
}
