//! `oxbake inspect ROLE[@VERSION]`: a local template read offline against
//! the hygiene list (see `pipeline/inspect.rs`).

use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::pipeline::inspect;
use crate::registry::{ImageRef, Registry};
use crate::report::table::table;

pub async fn run(ctx: &Ctx<'_>, image: &str) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let reference: ImageRef = image.parse()?;
    let record = registry.resolve(&reference)?;
    let scratch = crate::pipeline::WorkDirs::of(&project.root).scratch();
    let (file, findings) = inspect::image(&project, &record, &scratch).await?;
    let text = if findings.is_empty() {
        format!("`{}` ({}): clean\n", record.id(), file.display())
    } else {
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| vec![f.path.clone(), f.what.clone()])
            .collect();
        table(&["path", "problem"], &rows)
    };
    ctx.out.result(
        &text,
        &json!({ "image": record.id(), "file": file, "findings": findings }),
    );
    if !findings.is_empty() {
        return Err(Error::Failed(format!(
            "image `{}` is not clean: {} finding(s)",
            record.id(),
            findings.len()
        )));
    }
    Ok(())
}
