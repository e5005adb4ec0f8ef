//! A role's inputs: everything its image depends on, and one sha256 over
//! them. The recipe counts in a canonical form (reordering tables or editing
//! comments and whitespace keeps the hash); files and templates count by
//! their bytes; the parent counts by its own inputs hash and the version it
//! was built as. The deploy part does not count: it changes no image.

use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

use super::role_vars;
use crate::project::Project;
use crate::recipe::model::{Action, Recipe};
use crate::render;
use crate::suite::Suite;

/// What the image of a role has been built from, where it lives in the
/// registry, or what the base image is.
pub trait Lineage {
    /// The target's base image of `suite`, for roles without `from`.
    fn base_identity(&self, suite: Suite) -> String;
    /// The newest unrevoked version of `role` built from inputs `hash`.
    fn built_version(&self, role: &str, hash: &str) -> Option<String>;
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    Recipe,
    Vars,
    Parent,
    Base,
    Template,
    File,
    Script,
    Key,
}

/// One input and the digest it contributes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Input {
    pub kind: InputKind,
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inputs {
    pub role: String,
    pub hash: String,
    /// The Debian release the role builds on (its base image's identity,
    /// or its parent's hash, carries it into `hash`).
    pub suite: Suite,
    pub inputs: Vec<Input>,
}

#[derive(Debug, thiserror::Error)]
pub enum InputsError {
    #[error("role `{0}` is not in this project")]
    UnknownRole(String),
    #[error("role `{role}`: {source}")]
    Source {
        role: String,
        source: crate::project::SourceError,
    },
    #[error("cannot read input `{path}` of role `{role}`")]
    Read {
        role: String,
        path: String,
        source: std::io::Error,
    },
}

/// The inputs of `role` (which must have passed `oxbake check`).
pub fn inputs(project: &Project, role: &str, lineage: &dyn Lineage) -> Result<Inputs, InputsError> {
    let file = project
        .recipes
        .get(role)
        .ok_or_else(|| InputsError::UnknownRole(role.to_owned()))?;
    let recipe = &file.recipe;
    let mut items = BTreeSet::new();
    items.insert(Input {
        kind: InputKind::Recipe,
        name: file.path.display().to_string(),
        sha256: digest(canonical(recipe).as_bytes()),
    });
    let vars = serde_json::to_string(&role_vars(project, role)).unwrap_or_default();
    items.insert(Input {
        kind: InputKind::Vars,
        name: "variables".to_owned(),
        sha256: digest(vars.as_bytes()),
    });
    match &recipe.from {
        Some(parent) => {
            let parent = inputs(project, parent.get_ref(), lineage)?;
            let version = lineage
                .built_version(&parent.role, &parent.hash)
                .unwrap_or_else(|| "(not built)".to_owned());
            items.insert(Input {
                kind: InputKind::Parent,
                name: format!("{}@{version}", parent.role),
                sha256: parent.hash,
            });
        }
        None => {
            let base = lineage.base_identity(super::suite(project, role));
            items.insert(Input {
                kind: InputKind::Base,
                sha256: digest(base.as_bytes()),
                name: base,
            });
        }
    }
    let values = role_vars(project, role);
    for (kind, dir, name) in referenced_files(project, recipe, &values) {
        let rel = format!("{dir}/{name}");
        // Only through the same resolution `check` accepts: never through
        // a link out of files/ or templates/.
        let real = project
            .source_path(dir, &name)
            .map_err(|source| InputsError::Source {
                role: role.to_owned(),
                source,
            })?;
        let bytes = std::fs::read(real).map_err(|source| InputsError::Read {
            role: role.to_owned(),
            path: rel.clone(),
            source,
        })?;
        items.insert(Input {
            kind,
            name: rel,
            sha256: digest(&bytes),
        });
    }
    let inputs: Vec<Input> = items.into_iter().collect();
    let mut hasher = Sha256::new();
    for i in &inputs {
        let kind = serde_json::to_string(&i.kind).unwrap_or_default();
        hasher.update(format!("{kind}\t{}\t{}\n", i.name, i.sha256));
    }
    Ok(Inputs {
        role: role.to_owned(),
        hash: hex::encode(hasher.finalize()),
        suite: super::suite(project, role),
        inputs,
    })
}

/// The recipe as JSON with sorted keys, without its deploy part.
fn canonical(recipe: &Recipe) -> String {
    let mut bake = recipe.clone();
    bake.deploy = Default::default();
    serde_json::to_string(&bake).unwrap_or_default()
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The folder (`files`, `templates`) and name of every file the bake reads,
/// templates with the templates they include.
fn referenced_files(
    project: &Project,
    recipe: &Recipe,
    vars: &BTreeMap<String, toml::Value>,
) -> Vec<(InputKind, &'static str, String)> {
    let mut out = Vec::new();
    let mut templates = Vec::new();
    for step in recipe.steps.iter().filter(|s| s.enabled(vars)) {
        match &step.action {
            Action::File(f) => out.push((InputKind::File, "files", f.source.get_ref().clone())),
            Action::Template(t) => templates.push(t.source.get_ref().clone()),
            Action::Shell(sh) => {
                if let Some(s) = &sh.script {
                    out.push((InputKind::Script, "files", s.get_ref().clone()));
                }
            }
            Action::Apt(apt) => {
                for r in &apt.repositories {
                    out.push((InputKind::Key, "files", r.key.get_ref().clone()));
                }
            }
            Action::Service(_) | Action::User(_) | Action::Group(_) => {}
        }
    }
    let mut seen = BTreeSet::new();
    while let Some(name) = templates.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Ok(path) = project.source_path("templates", &name)
            && let Ok(source) = std::fs::read_to_string(&path)
        {
            templates.extend(render::references(&source));
        }
        out.push((InputKind::Template, "templates", name));
    }
    out
}
