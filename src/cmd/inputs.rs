//! `oxbake inputs ROLE`

use super::Ctx;
use crate::error::Error;
use crate::pipeline::RegistryLineage;
use crate::registry::Registry;
use crate::report::table::table;
use crate::role::inputs;
use crate::target::BaseIdentities;

pub async fn run(ctx: &Ctx<'_>, role: &str, target: Option<&str>) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    project.recipe(role).map_err(Error::Usage)?;
    let (_, settings) = project.config.target(target)?;
    let registry = Registry::for_project(&project.root);
    let lineage = RegistryLineage {
        registry: &registry,
        bases: BaseIdentities::of_target(&settings).await?,
    };
    let inputs = inputs::inputs(&project, role, &lineage)?;
    let rows: Vec<Vec<String>> = inputs
        .inputs
        .iter()
        .map(|i| {
            let kind = serde_json::to_value(&i.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            vec![
                kind.unwrap_or_default(),
                i.name.clone(),
                i.sha256[..16].to_owned(),
            ]
        })
        .collect();
    let text = format!(
        "{} {}\nbuilds on Debian {}\n\n{}",
        inputs.role,
        inputs.hash,
        inputs.suite,
        table(&["kind", "input", "sha256"], &rows)
    );
    ctx.out
        .result(&text, &serde_json::to_value(&inputs).unwrap_or_default());
    Ok(())
}
