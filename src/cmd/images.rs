//! `oxbake ls [ROLE]` and `oxbake show ROLE[@VERSION]`

use super::Ctx;
use crate::error::Error;
use crate::registry::{ImageRef, Registry, report};

pub fn ls(ctx: &Ctx<'_>, role: Option<&str>) -> Result<(), Error> {
    let registry = Registry::for_project(&ctx.project_root()?);
    let records = registry.list(role)?;
    let channels = registry.channels()?;
    let text = if records.is_empty() {
        match role {
            Some(role) => {
                format!("no images of role `{role}` yet (build one with `oxbake build {role}`)\n")
            }
            None => "no images yet (build one with `oxbake build ROLE`)\n".to_owned(),
        }
    } else {
        report::ls_table(&records, &channels)
    };
    ctx.out.result(&text, &report::ls_json(&records, &channels));
    Ok(())
}

pub fn show(ctx: &Ctx<'_>, image: &str) -> Result<(), Error> {
    let registry = Registry::for_project(&ctx.project_root()?);
    let reference: ImageRef = image.parse()?;
    let record = registry.resolve(&reference)?;
    let channels = registry.channels()?;
    ctx.out.result(
        &report::show_text(&record, &channels),
        &report::show_json(&record, &channels),
    );
    Ok(())
}
