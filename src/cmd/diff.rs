//! `oxbake diff ROLE V1 V2`

use super::Ctx;
use crate::error::Error;
use crate::registry::{PackageDiff, Registry, Version};

pub fn run(ctx: &Ctx<'_>, role: &str, v1: &str, v2: &str) -> Result<(), Error> {
    let registry = Registry::for_project(&ctx.project_root()?);
    let old = registry.get(role, &v1.parse::<Version>()?)?;
    let new = registry.get(role, &v2.parse::<Version>()?)?;
    let diff = PackageDiff::between(&old, &new);
    let mut text = format!(
        "{} -> {}: {} added, {} removed, {} changed, {} unchanged\n",
        diff.from,
        diff.to,
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len(),
        diff.unchanged
    );
    for line in diff.lines() {
        text.push_str(&line);
        text.push('\n');
    }
    let json = serde_json::to_value(&diff).unwrap_or_default();
    ctx.out.result(&text, &json);
    Ok(())
}
