//! `oxbake init [DIR]`

use std::path::Path;

use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::project::init::{self, InitError};

pub fn run(ctx: &Ctx<'_>, dir: Option<&Path>) -> Result<(), Error> {
    // `-C DIR` names the folder too; DIR wins.
    let dir = dir.or(ctx.cli.dir.as_deref()).unwrap_or(Path::new("."));
    let done = init::init(dir).map_err(|e| match e {
        e @ (InitError::Exists(_) | InitError::Taken(_)) => Error::Usage(e.to_string()),
        e => Error::Failed(crate::error_chain::chain(&e)),
    })?;
    let mut text = String::new();
    for path in &done.created {
        text.push_str(&format!("created {}\n", path.display()));
    }
    for path in &done.amended {
        text.push_str(&format!("added .oxbake/ to {}\n", path.display()));
    }
    text.push_str(&format!(
        "project `{}`: next, `oxbake -C {} check`, then `oxbake -C {} build base`\n",
        done.name,
        dir.display(),
        dir.display()
    ));
    let doc = json!({
        "name": done.name,
        "created": done.created,
        "amended": done.amended,
    });
    ctx.out.result(&text, &doc);
    Ok(())
}
