//! `oxbake gc [--dry-run] [--target T]`: leftover VMs, then networks no VM
//! uses, then uploads of runs that ended, then the project's scratch
//! folders of processes that ended.

use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::pipeline::open;
use crate::pipeline::{WorkDirs, gc};
use crate::report::table::table;

pub async fn run(ctx: &Ctx<'_>, target: Option<&str>, dry_run: bool) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let open = open::open(&project, target, &ctx.progress, false).await?;
    let runs = WorkDirs::of(&project.root).runs();
    let found = gc::collect(open.target.as_ref(), &runs, dry_run, &ctx.progress).await?;
    let nets = gc::networks(open.target.as_ref(), dry_run, &ctx.progress).await?;
    let uploads = gc::uploads(open.target.as_ref(), &runs, dry_run, &ctx.progress).await?;
    let scratch_dir = WorkDirs::of(&project.root).scratch();
    let scratch = gc::scratch(&scratch_dir, dry_run, &ctx.progress)
        .map_err(|e| Error::Failed(format!("cannot read `{}`: {e}", scratch_dir.display())))?;
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|l| {
            let status = status(&l.unknown, &l.error, l.removed);
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
    let mut text = if found.is_empty() {
        format!("no leftover VMs on target `{}`\n", open.name)
    } else {
        table(&["vm", "kind", "role", "run", "status"], &rows)
    };
    if !nets.is_empty() {
        let rows: Vec<Vec<String>> = nets
            .iter()
            .map(|n| vec![n.name.clone(), status(&n.unknown, &n.error, n.removed)])
            .collect();
        text.push_str(&table(&["network", "status"], &rows));
    }
    if !uploads.is_empty() {
        let rows: Vec<Vec<String>> = uploads
            .iter()
            .map(|u| {
                let status = status(&None, &u.error, u.removed);
                vec![u.name.clone(), u.run_id.clone(), status]
            })
            .collect();
        text.push_str(&table(&["upload", "run", "status"], &rows));
    }
    if !scratch.is_empty() {
        let rows: Vec<Vec<String>> = scratch
            .iter()
            .map(|f| {
                let status = status(&None, &f.error, f.removed);
                vec![f.name.clone(), f.bytes.to_string(), status]
            })
            .collect();
        text.push_str(&table(&["scratch", "bytes", "status"], &rows));
    }
    ctx.out.result(
        &text,
        &json!({
            "target": open.name, "dry_run": dry_run, "leftovers": found, "networks": nets,
            "uploads": uploads, "scratch": scratch,
        }),
    );
    let failed = found.iter().filter(|l| l.error.is_some()).count()
        + nets.iter().filter(|n| n.error.is_some()).count()
        + uploads.iter().filter(|u| u.error.is_some()).count()
        + scratch.iter().filter(|f| f.error.is_some()).count();
    let unknown: Vec<&str> = found
        .iter()
        .filter_map(|l| l.unknown.as_deref())
        .chain(nets.iter().filter_map(|n| n.unknown.as_deref()))
        .collect();
    let mut problems = Vec::new();
    if failed > 0 {
        problems.push(format!("{failed} leftover(s) could not be removed"));
    }
    if !unknown.is_empty() {
        problems.push(format!(
            "{} vm(s) of unknown origin left alone: {}",
            unknown.len(),
            unknown.join("; ")
        ));
    }
    if !problems.is_empty() {
        return Err(Error::Failed(problems.join("; ")));
    }
    Ok(())
}

fn status(unknown: &Option<String>, error: &Option<String>, removed: bool) -> String {
    match (unknown, error, removed) {
        (Some(why), _, _) => format!("unknown, left alone: {why}"),
        (None, Some(e), _) => format!("failed: {e}"),
        (None, None, true) => "removed".to_owned(),
        (None, None, false) => "would remove".to_owned(),
    }
}
