//! A role as the project defines it, resolved once: its recipe, its
//! lineage, the variables its templates see and the group sshd lets in.
//! Build, smoke test, deploy seeds, inputs and rendering read it instead
//! of looking the role up and computing its variables each on their own.
//! Its inputs ([`inputs`]) and the project's checks of its recipe
//! ([`validate`]) live here too: they read the project, which the recipe
//! model below them must not.

pub mod inputs;
pub mod validate;

use std::collections::BTreeMap;

use minijinja::Value;

use crate::project::{Project, RecipeFile};
use crate::recipe::Recipe;
use crate::recipe::model::TemplateFile;
use crate::suite::Suite;

/// The variable that restricts SSH logins to one group.
pub const SSH_GROUP_VAR: &str = "ssh_allow_group";

/// One role of a project, resolved.
#[derive(Debug, Clone)]
pub struct Role<'p> {
    pub name: String,
    pub file: &'p RecipeFile,
    /// The role and its ancestors, the root first (see [`Project::lineage`]).
    pub lineage: Vec<&'p RecipeFile>,
    /// The project's variables, then each ancestor's, then its own.
    pub vars: BTreeMap<String, toml::Value>,
    /// The group sshd lets in, if the role restricts logins to one.
    pub ssh_group: Option<String>,
    /// The Debian release of the base image its lineage starts from.
    pub suite: Suite,
}

impl<'p> Role<'p> {
    /// `name` as `project` defines it; `None` if it defines no such role.
    pub fn resolve(project: &'p Project, name: &str) -> Option<Self> {
        let file = project.recipes.get(name)?;
        let vars = role_vars(project, name);
        Some(Role {
            name: name.to_owned(),
            file,
            lineage: project.lineage(name),
            ssh_group: ssh_group(&vars),
            suite: suite(project, name),
            vars,
        })
    }

    pub fn recipe(&self) -> &'p Recipe {
        &self.file.recipe
    }

    /// The deploy templates of the role's lineage, the farthest ancestor's
    /// first: what a parent writes at deploy (base's firewall rule for the
    /// monitoring VM, say), every role built from it writes too.
    pub fn deploy_templates(&self) -> impl Iterator<Item = &'p TemplateFile> + '_ {
        self.lineage
            .iter()
            .flat_map(|f| f.recipe.deploy.templates.iter())
    }

    /// The commands a deployed VM runs once its files are in place: each
    /// ancestor's `commands`, then the role's own `commands` (with
    /// `bootstrap`, its `bootstrap_commands` instead).
    pub fn deploy_commands(&self, bootstrap: bool) -> Vec<&'p str> {
        let (own, ancestors) = self.lineage.split_last().expect("a lineage holds the role");
        let mut out: Vec<&str> = ancestors
            .iter()
            .flat_map(|f| f.recipe.deploy.commands.iter().map(String::as_str))
            .collect();
        let deploy = &own.recipe.deploy;
        let mine = if bootstrap {
            &deploy.bootstrap_commands
        } else {
            &deploy.commands
        };
        out.extend(mine.iter().map(String::as_str));
        out
    }

    /// What the role's bake templates see: its variables and `role`.
    pub fn bake_context(&self) -> Value {
        context_of(self.vars.clone(), &self.name)
    }
}

/// The Debian release a role builds on: what the root of its lineage names
/// with `base`, else bookworm. (`oxbake check` refuses a `base` it does not
/// know, and one on a role with `from`.)
pub fn suite(project: &Project, role: &str) -> Suite {
    project
        .lineage(role)
        .first()
        .and_then(|root| root.recipe.base.as_ref())
        .and_then(|base| base.get_ref().parse().ok())
        .unwrap_or_default()
}

/// The variables a role's templates see: the project's, then each
/// ancestor's, then its own (later ones win).
pub fn role_vars(project: &Project, role: &str) -> BTreeMap<String, toml::Value> {
    let mut vars = project.config.vars.clone();
    for file in project.lineage(role) {
        vars.extend(file.recipe.vars.clone());
    }
    vars
}

/// What a role's bake templates see: its variables and `role`.
pub fn bake_context(project: &Project, role: &str) -> Value {
    context_of(role_vars(project, role), role)
}

fn context_of(mut vars: BTreeMap<String, toml::Value>, role: &str) -> Value {
    vars.insert("role".to_owned(), toml::Value::String(role.to_owned()));
    Value::from(minijinja::value::Serde(&vars))
}

/// The group sshd lets in, from a role's variables.
pub fn ssh_group(vars: &BTreeMap<String, toml::Value>) -> Option<String> {
    vars.get(SSH_GROUP_VAR)
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}
