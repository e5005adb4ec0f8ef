//! `oxbake sbom ROLE[@VERSION] [--format cyclonedx|spdx]`

use super::Ctx;
use crate::error::Error;
use crate::registry::{ImageRef, Registry};
use crate::report::sbom::{self, SbomFormat};

pub fn run(ctx: &Ctx<'_>, image: &str, format: &str) -> Result<(), Error> {
    let format = match format {
        "spdx" => SbomFormat::Spdx,
        _ => SbomFormat::Cyclonedx,
    };
    let registry = Registry::for_project(&ctx.project_root()?);
    let reference: ImageRef = image.parse()?;
    let record = registry.resolve(&reference)?;
    let doc = sbom::document(&record, format);
    // The document is the result, with or without --json.
    let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    ctx.out.result(&format!("{text}\n"), &doc);
    Ok(())
}
