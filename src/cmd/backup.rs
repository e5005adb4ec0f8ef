//! `oxbake backup ENV [--now]` and `oxbake restore ENV --from SNAPSHOT`:
//! the database backups of an environment (see
//! [`crate::pipeline::deploy::backup`]).

use serde_json::json;

use super::Ctx;
use super::deploy::with_deployer;
use crate::error::Error;
use crate::registry::Registry;
use crate::report::age::{age, age_seconds};
use crate::report::table;

pub async fn backup(ctx: &Ctx<'_>, env: &str, now: bool) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let (taken, list) = with_deployer(ctx, &project, &registry, (env, None), async |d| {
        let taken = match now {
            true => Some(d.backup_now().await?),
            false => None,
        };
        Ok((taken, d.snapshots().await?))
    })
    .await?;
    let at = jiff::Timestamp::now();
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|s| {
            vec![
                s.short_id.clone(),
                s.time.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
                age(s.time, at),
            ]
        })
        .collect();
    let mut text = match &taken {
        Some(s) => format!("took snapshot {} of environment `{env}`\n", s.short_id),
        None => String::new(),
    };
    if list.is_empty() {
        text.push_str(&format!(
            "environment `{env}` has no backup yet (`oxbake backup {env} --now` takes one)\n"
        ));
    } else {
        text.push_str(&table::table(&["snapshot", "time", "age"], &rows));
    }
    let docs: Vec<serde_json::Value> = list
        .iter()
        .map(|s| {
            json!({
                "id": s.id, "short_id": s.short_id, "time": s.time.to_string(),
                "age_seconds": age_seconds(s.time, at),
            })
        })
        .collect();
    let doc = json!({
        "env": env,
        "taken": taken.map(|s| s.id),
        "snapshots": docs,
    });
    ctx.out.result(&text, &doc);
    Ok(())
}

pub async fn restore(
    ctx: &Ctx<'_>,
    env: &str,
    from: &str,
    reason: Option<&str>,
) -> Result<(), Error> {
    if reason.is_some_and(|r| r.trim().is_empty()) {
        return Err(Error::Usage(
            "--reason is empty: say why the cluster's data may be overwritten".into(),
        ));
    }
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let done = with_deployer(ctx, &project, &registry, (env, None), async |d| {
        d.restore(from, reason).await
    })
    .await?;
    let text = format!(
        "restored environment `{env}` from snapshot {}: `{}` started a new cluster{}\n",
        done.short_id,
        done.first,
        match done.joined.len() {
            0 => String::new(),
            _ => format!(", {} joined it", done.joined.join(", ")),
        }
    );
    ctx.out
        .result(&text, &serde_json::to_value(&done).unwrap_or_default());
    Ok(())
}
