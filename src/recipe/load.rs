//! Reading one recipe file. Steps are read one by one (the `kind` key picks
//! the step's shape), so that one bad step does not hide the others and every
//! error keeps its place in the file.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::model::{Action, Recipe, Step};
use crate::diag::{Diagnostic, Diagnostics};
use crate::tomlfile::{self, Kinded};

/// Parses a recipe; every problem found is returned, not only the first.
pub fn parse(path: &Path, text: &str) -> Result<Recipe, Diagnostics> {
    let mut problems = Diagnostics::default();
    let doc = tomlfile::parse_without::<Recipe>(path, text, "step")?;
    let steps = doc
        .taken
        .map_or_else(Vec::new, |s| parse_steps(path, text, s, &mut problems));
    tomlfile::combine(doc.rest, problems, |recipe| recipe.steps = steps)
}

fn parse_steps(
    path: &Path,
    text: &str,
    raw: Spanned<DeValue<'_>>,
    problems: &mut Diagnostics,
) -> Vec<Step> {
    let span = raw.span();
    let DeValue::Array(items) = raw.into_inner() else {
        problems.push(Diagnostic::at(
            path,
            text,
            span.start,
            "`step` must be an array of tables ([[step]])",
        ));
        return Vec::new();
    };
    let mut steps = Vec::new();
    for item in items.iter().cloned() {
        match parse_step(path, text, item) {
            Ok(step) => steps.push(step),
            Err(d) => problems.push(d),
        }
    }
    steps
}

fn parse_step(path: &Path, text: &str, item: Spanned<DeValue<'_>>) -> Result<Step, Diagnostic> {
    let no_kind = format!("step has no `kind`; expected one of {}", kinds());
    let mut step = Kinded::split(path, text, item, "each step must be a table", &no_kind)?;
    let at = |offset: usize, msg: String| Diagnostic::at(path, text, offset, msg);
    let kind_offset = step.kind_offset();
    let Some(kind_name) = step.name().map(str::to_owned) else {
        return Err(at(kind_offset, "`kind` must be a string".to_owned()));
    };
    let name: Option<String> = take(path, text, &mut step.table, "name")?;
    let when: Option<Spanned<String>> = take(path, text, &mut step.table, "when")?;
    let span = step.span.clone();
    let rest = step.rest();
    let action = match kind_name.as_str() {
        "apt" => Action::Apt(tomlfile::from_value(path, text, rest)?),
        "file" => Action::File(tomlfile::from_value(path, text, rest)?),
        "template" => Action::Template(tomlfile::from_value(path, text, rest)?),
        "shell" => Action::Shell(tomlfile::from_value(path, text, rest)?),
        "service" => Action::Service(tomlfile::from_value(path, text, rest)?),
        "user" => Action::User(tomlfile::from_value(path, text, rest)?),
        "group" => Action::Group(tomlfile::from_value(path, text, rest)?),
        other => {
            return Err(at(
                kind_offset,
                format!("unknown step kind `{other}`; expected one of {}", kinds()),
            ));
        }
    };
    Ok(Step {
        name,
        when,
        span,
        action,
    })
}

fn take<T: DeserializeOwned>(
    path: &Path,
    text: &str,
    table: &mut DeTable<'_>,
    key: &str,
) -> Result<Option<T>, Diagnostic> {
    table
        .remove(key)
        .map(|v| tomlfile::from_value(path, text, v))
        .transpose()
}

fn kinds() -> String {
    Action::KINDS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
