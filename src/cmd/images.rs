//! `oxbake ls [ROLE]` and `oxbake show ROLE[@VERSION]`

use super::Ctx;
use crate::error::Error;
use crate::pipeline::drift;
use crate::pipeline::open;
use crate::registry::{ImageRef, Registry, Version};
use crate::report::{self, images};

/// The registry's images; with `target`, also what differs between the
/// registry and that target's templates.
pub async fn ls(ctx: &Ctx<'_>, role: Option<&str>, target: Option<&str>) -> Result<(), Error> {
    let registry = Registry::for_project(&ctx.project_root()?);
    let attention = registry.attention(role)?;
    let records = match registry.summaries(role) {
        Ok(records) => records,
        Err(e) => {
            // A record a channel points at may be what cannot be read.
            for p in &attention.channels {
                ctx.progress.warn(p.to_string());
            }
            return Err(e.into());
        }
    };
    let channels = registry.channels()?;
    let mut text = if records.is_empty() {
        match role {
            Some(role) => {
                format!("no images of role `{role}` yet (build one with `oxbake build {role}`)\n")
            }
            None => "no images yet (build one with `oxbake build ROLE`)\n".to_owned(),
        }
    } else {
        images::ls_table(&records, &channels)
    };
    text.push_str(&attention.text());
    let mut doc = images::ls_json(&records, &channels);
    let (channel_problems, removals) = attention.json();
    doc["channel_problems"] = channel_problems;
    doc["unfinished_removals"] = removals;
    if let Some(target) = target {
        let project = ctx.checked_project()?;
        let open = open::open(&project, Some(target), &ctx.progress, false).await?;
        let mut templates = open.target.list_templates().await?;
        // `ROLE` narrows the comparison as it narrows the list.
        if let Some(role) = role {
            let prefix = format!("{role}-");
            templates.retain(|t| {
                t.name
                    .strip_prefix(&prefix)
                    .is_some_and(|v| v.parse::<Version>().is_ok())
            });
        }
        let found = drift::compare(&records, &open.name, &templates, &project.root);
        text.push_str(&report::drift::drift_text(&open.name, &found));
        doc["target"] = report::drift::drift_json(&open.name, &found);
    }
    ctx.out.result(&text, &doc);
    Ok(())
}

pub fn show(ctx: &Ctx<'_>, image: &str) -> Result<(), Error> {
    let registry = Registry::for_project(&ctx.project_root()?);
    let reference: ImageRef = image.parse()?;
    let record = registry.resolve(&reference)?;
    // Which channels point at it; the history is not shown, so not read.
    let channels = registry.channels_without_history()?;
    ctx.out.result(
        &images::show_text(&record, &channels),
        &images::show_json(&record, &channels),
    );
    Ok(())
}
