//! `oxbake check`

use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::project::{self, Project};
use crate::registry::Registry;
use crate::role::validate;

pub fn run(ctx: &Ctx<'_>) -> Result<(), Error> {
    let root = project::find_root(ctx.cli.dir.as_deref())?;
    let (project, mut problems) = Project::load_partial(&root);
    if let Some(project) = &project {
        let found = validate::findings(project);
        problems.extend(found.problems);
        problems.extend(Registry::for_project(&root).channel_diagnostics());
        // Allowed but risky: shown on stderr, the check still passes.
        let warnings = found.warnings.into_sorted();
        for w in &warnings {
            ctx.progress.warn(w.to_string());
        }
        if problems.is_empty() {
            let n = project.recipes.len();
            let text = format!("ok: oxbake.toml and {n} recipe(s) are valid\n");
            let roles: Vec<&String> = project.recipes.keys().collect();
            let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
            ctx.out.result(
                &text,
                &json!({ "ok": true, "roles": roles, "problems": [], "warnings": warnings }),
            );
            return Ok(());
        }
    }
    if ctx.out.json {
        let list: Vec<_> = problems
            .clone()
            .into_sorted()
            .into_iter()
            .map(|d| json!({ "path": d.path, "line": d.line, "column": d.column, "message": d.message }))
            .collect();
        ctx.out
            .result("", &json!({ "ok": false, "problems": list }));
    }
    Err(Error::Invalid(problems))
}
