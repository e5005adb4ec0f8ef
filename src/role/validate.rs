//! `oxbake check`: everything about a project that can be known without
//! contacting anything. Every problem is reported, each at its place.

use std::collections::BTreeSet;
use std::path::Path;

use toml::Spanned;

mod phase;
mod repository;

use phase::Phase;

use super::role_vars;
use crate::config::{TargetSettings, limits};
use crate::diag::{Diagnostic, Diagnostics};
use crate::project::{Project, RecipeFile, SourceError};
use crate::recipe::model::{Action, Recipe, Shell, TemplateFile};
use crate::render;
use crate::suite::Suite;
use crate::tomlfile;

/// Names every template can read besides the role's variables.
pub const BUILTINS: &[&str] = &["role"];
/// Fields of `vm.*` in deploy templates.
pub const VM_FIELDS: &[&str] = &[
    "name", "hostname", "fqdn", "address", "prefix", "gateway", "dns", "index", "env", "role",
    "version",
];
/// Fields of `image.*` in deploy templates: the image the VM is cloned from.
pub const IMAGE_FIELDS: &[&str] = &["version", "packages"];

/// What `oxbake check` finds in a project.
#[derive(Debug, Default)]
pub struct Findings {
    /// What refuses the project: `check` and every command exit 2.
    pub problems: Diagnostics,
    /// What works but is risky, allowed explicitly (credentials over plain
    /// HTTP): `check` shows it and passes.
    pub warnings: Diagnostics,
}

/// Checks a loaded project; an empty result means it is clean.
pub fn validate(project: &Project) -> Diagnostics {
    findings(project).problems
}

/// Checks a loaded project, with the warnings.
pub fn findings(project: &Project) -> Findings {
    let mut found = Findings::default();
    for file in project.recipes.values() {
        let mut v = RecipeCheck {
            project,
            file,
            problems: &mut found.problems,
            warnings: &mut found.warnings,
        };
        v.run();
    }
    found.problems.extend(crate::environment::validate(project));
    found
}

struct RecipeCheck<'a> {
    project: &'a Project,
    file: &'a RecipeFile,
    problems: &'a mut Diagnostics,
    warnings: &'a mut Diagnostics,
}

impl RecipeCheck<'_> {
    fn run(&mut self) {
        let recipe = &self.file.recipe;
        self.role_name(recipe);
        self.parent(recipe);
        self.base(recipe);
        let values = role_vars(self.project, recipe.role.get_ref());
        let vars: BTreeSet<String> = values.keys().cloned().collect();
        for (index, step) in recipe.steps.iter().enumerate() {
            if let Some(when) = &step.when
                && !vars.contains(when.get_ref())
            {
                let message = format!(
                    "`when` names variable `{}`, which no `[vars]` defines",
                    when.get_ref()
                );
                self.at(when.span().start, message);
            }
            // A step that is off needs none of its files (the OX repository
            // key is only there where the repository is configured).
            if step.enabled(&values) {
                self.action(&step.action, index, step.span.start, &vars);
            }
        }
        for (index, check) in recipe.checks.iter().enumerate() {
            let index = index.to_string();
            let place = |key: &str| tomlfile::offset_of(&self.file.text, &["check", &index, key]);
            if check.run.trim().is_empty() {
                let offset = place("run");
                self.at(offset, format!("check `{}` has an empty `run`", check.name));
            }
            if !(0..=255).contains(&check.exit) {
                let offset = place("exit");
                let message = format!(
                    "check `{}`: `exit` = {} can never happen: exit codes are 0 to 255",
                    check.name, check.exit
                );
                self.at(offset, message);
            }
        }
        self.deploy(recipe, &vars);
        self.clean(recipe);
    }

    /// Every clean-up operation a recipe names must exist.
    fn clean(&mut self, recipe: &Recipe) {
        for item in &recipe.clean {
            let names = [item.get_ref().as_str()];
            if let Err(e) = crate::recipe::clean::select(&names) {
                self.at(item.span().start, e.to_string());
            }
        }
    }

    fn role_name(&mut self, recipe: &Recipe) {
        let name = recipe.role.get_ref();
        let ok = !name.is_empty()
            && name.len() <= 40
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            self.at(recipe.role.span().start, format!("role name `{name}` must be lowercase letters, digits and `-`, starting with a letter"));
        }
    }

    fn parent(&mut self, recipe: &Recipe) {
        let Some(from) = &recipe.from else { return };
        let parent = from.get_ref();
        if self.project.broken.contains(parent) {
            return;
        }
        if !self.project.recipes.contains_key(parent) {
            self.at(
                from.span().start,
                format!("`from` names unknown role `{parent}`"),
            );
            return;
        }
        let mut seen = vec![recipe.role.get_ref().clone()];
        let mut next = Some(parent.clone());
        while let Some(name) = next {
            if seen.contains(&name) {
                seen.push(name);
                self.at(
                    from.span().start,
                    format!("`from` makes a cycle: {}", seen.join(" → ")),
                );
                return;
            }
            seen.push(name.clone());
            next = self
                .project
                .recipes
                .get(&name)
                .and_then(|f| f.recipe.from.as_ref())
                .map(|f| f.get_ref().clone());
        }
    }

    /// `base` names a suite oxbake knows, on a role without `from` (a child
    /// builds on its parent's image, so on its parent's suite).
    fn base(&mut self, recipe: &Recipe) {
        let Some(base) = &recipe.base else { return };
        if let Some(from) = &recipe.from {
            let message = format!(
                "`base` is for a role without `from`: this role builds on role `{}`'s image, \
                 so on its Debian release",
                from.get_ref()
            );
            self.at(base.span().start, message);
        } else {
            match base.get_ref().parse::<Suite>() {
                Ok(suite) => self.base_templates(suite, base.span().start),
                Err(e) => self.at(base.span().start, format!("`base`: {e}")),
            }
        }
    }

    /// A warning for each proxmox target without a base template of the
    /// role's release: building the role there would fail.
    fn base_templates(&mut self, suite: Suite, offset: usize) {
        for (name, target) in &self.project.config.targets {
            if let TargetSettings::Proxmox(p) = target
                && p.base_template_of(suite).is_none()
            {
                let message = format!(
                    "recipe `{}`: target `{name}` has no base template for {suite} (set its \
                     `base_templates.{suite}`); building this role there fails",
                    self.file.recipe.role.get_ref()
                );
                let d = Diagnostic::at(&self.file.path, &self.file.text, offset, message);
                self.warnings.push(d);
            }
        }
    }

    fn action(&mut self, action: &Action, index: usize, offset: usize, vars: &BTreeSet<String>) {
        match action {
            Action::Apt(apt) => {
                if apt.packages.is_empty() && apt.repositories.is_empty() {
                    self.at(
                        offset,
                        "apt step installs nothing: `packages` is empty".to_owned(),
                    );
                }
                for p in &apt.packages {
                    if !valid_package(p) {
                        self.at(offset, format!("`{p}` is not a valid package name"));
                    }
                }
                for (at, repo) in apt.repositories.iter().enumerate() {
                    self.repository(repo, [index, at], offset, vars);
                }
            }
            Action::File(f) => {
                self.source_file("files", "source", &f.source);
                self.dest(&f.dest);
                self.mode_owner(&f.mode, &f.owner);
            }
            Action::Template(t) => self.template(t, vars, Phase::Bake),
            Action::Shell(sh) => self.shell(sh, index, offset),
            Action::Service(s) => {
                if s.units.is_empty() {
                    self.at(offset, "service step names no `units`".to_owned());
                }
            }
            Action::User(u) => self.name_ok(offset, "user", &u.user),
            Action::Group(g) => self.name_ok(offset, "group", &g.group),
        }
    }

    fn shell(&mut self, sh: &Shell, index: usize, offset: usize) {
        match (&sh.run, &sh.script) {
            (Some(_), Some(script)) => self.at(
                script.span().start,
                "shell step has both `run` and `script`; keep one".to_owned(),
            ),
            (None, None) => self.at(offset, "shell step needs `run` or `script`".to_owned()),
            (None, Some(script)) => {
                self.source_file("files", "script", script);
            }
            (Some(_), None) => {}
        }
        if let Some(message) = sh
            .timeout
            .and_then(|t| limits::TIMEOUT_SECS.problem("timeout", t))
        {
            let index = index.to_string();
            let at = tomlfile::offset_of(&self.file.text, &["step", &index, "timeout"]);
            self.at(at.max(offset), message);
        }
    }

    fn deploy(&mut self, recipe: &Recipe, vars: &BTreeSet<String>) {
        let values: BTreeSet<String> = recipe.deploy.values.iter().cloned().collect();
        let deploy = &recipe.deploy;
        let secrets: BTreeSet<String> = (deploy
            .secrets
            .iter()
            .chain(&deploy.optional_secrets)
            .cloned())
        .collect();
        let roles: BTreeSet<String> = self.project.recipes.keys().cloned().collect();
        if values.contains("roles") {
            let at = tomlfile::offset_of(&self.file.text, &["deploy", "values"]);
            self.at(
                at,
                "a deploy value may not be named `roles`: `env.roles` lists the environment's \
                 VMs per role"
                    .to_owned(),
            );
        }
        for t in &recipe.deploy.templates {
            self.template(
                t,
                vars,
                Phase::Deploy {
                    values: &values,
                    secrets: &secrets,
                    roles: &roles,
                },
            );
        }
    }

    fn template(&mut self, t: &TemplateFile, vars: &BTreeSet<String>, phase: Phase<'_>) {
        self.dest(&t.dest);
        self.mode_owner(&t.mode, &t.owner);
        let name = t.source.get_ref();
        let Some(path) = self.source_file("templates", "source", &t.source) else {
            return;
        };
        let Ok(source) = std::fs::read_to_string(self.project.root.join(&path)) else {
            self.at(
                t.source.span().start,
                format!("template `{name}` is not UTF-8 text"),
            );
            return;
        };
        if let Some((range, message)) = render::syntax_error(name, &source) {
            let offset = range.map_or(0, |r| r.start);
            self.problems.push(Diagnostic::at(
                &path,
                &source,
                offset,
                format!("template syntax error: {message}"),
            ));
            return;
        }
        let before = self.problems.len();
        for included in render::references(&source) {
            let message = match self.project.source_path("templates", &included) {
                Ok(_) => continue,
                Err(
                    e @ SourceError::OutsideFolder { .. } | e @ SourceError::OutsideProject { .. },
                ) => {
                    format!("template `{included}`: {e}")
                }
                Err(_) => format!("template `{included}` does not exist in templates/"),
            };
            let offset = source.find(&included).unwrap_or(0);
            self.problems
                .push(Diagnostic::at(&path, &source, offset, message));
        }
        for d in render::refs::problems(&self.project.root, &path, &source) {
            self.problems.push(d);
        }
        for var in render::undeclared(name, &source) {
            if let Some(message) = phase.problem(&var, vars) {
                let offset = render::first_use(&source, &var);
                self.problems
                    .push(Diagnostic::at(&path, &source, offset, message));
            }
        }
        if matches!(phase, Phase::Bake) && self.problems.len() == before {
            self.render(name);
        }
    }

    /// Renders a bake template as the build will, so that what only shows
    /// when it runs (endless recursion, a loop out of fuel, an include by a
    /// computed name, a type error) is found here rather than mid-build.
    fn render(&mut self, name: &str) {
        let renderer = render::Renderer::new(&self.project.templates_dir());
        let context = crate::role::bake_context(self.project, self.file.recipe.role.get_ref());
        if let Err(render::RenderError::Template {
            name: at,
            line,
            message,
        }) = renderer.render(name, &context)
        {
            self.problems.push(Diagnostic {
                path: Path::new("templates").join(&at),
                line,
                column: 1,
                message: format!("template `{name}` does not render: {message}"),
            });
        }
    }

    fn inline_template(&mut self, offset: usize, text: &str, vars: &BTreeSet<String>) {
        if let Some((_, message)) = render::syntax_error("value", text) {
            self.at(
                offset,
                format!("template syntax error in `{text}`: {message}"),
            );
            return;
        }
        for var in render::undeclared("value", text) {
            if let Some(message) = Phase::Bake.problem(&var, vars) {
                self.at(offset, message);
            }
        }
    }

    /// Checks that `rel` (the value of `key`) names a file inside the folder
    /// `dir` (every symlink followed) and returns its path relative to the
    /// project.
    fn source_file(
        &mut self,
        dir: &str,
        key: &str,
        rel: &Spanned<String>,
    ) -> Option<std::path::PathBuf> {
        let name = rel.get_ref();
        let offset = rel.span().start;
        if let Some(message) = tomlfile::plain_path(key, name) {
            self.at(offset, message);
            return None;
        }
        match self.project.source_path(dir, name) {
            Ok(_) => Some(Path::new(dir).join(name)),
            Err(e) => {
                self.at(offset, e.to_string());
                None
            }
        }
    }

    fn dest(&mut self, dest: &Spanned<String>) {
        let d = dest.get_ref();
        if let Some(message) = tomlfile::plain_path("dest", d) {
            self.at(dest.span().start, message);
            return;
        }
        let clean = d.starts_with('/')
            && !d.ends_with('/')
            && d.split('/')
                .skip(1)
                .all(|c| !c.is_empty() && c != "." && c != "..");
        if !clean {
            self.at(
                dest.span().start,
                format!("destination `{d}` must be an absolute file path without `.` or `..`"),
            );
        }
    }

    fn mode_owner(&mut self, mode: &Spanned<String>, owner: &Spanned<String>) {
        let m = mode.get_ref();
        let octal = (3..=4).contains(&m.len()) && m.bytes().all(|b| (b'0'..=b'7').contains(&b));
        if !octal {
            self.at(
                mode.span().start,
                format!(
                    "mode `{}` must be 3 or 4 octal digits, as a string (\"0644\")",
                    m.escape_default()
                ),
            );
        }
        let o = owner.get_ref();
        let parts: Vec<&str> = o.split(':').collect();
        if parts.len() > 2 || parts.iter().any(|p| !valid_account(p)) {
            self.at(
                owner.span().start,
                format!("owner `{o}` must be `user` or `user:group`"),
            );
        }
    }

    fn name_ok(&mut self, offset: usize, what: &str, name: &str) {
        if !valid_account(name) {
            self.at(offset, format!("{what} name `{name}` is not valid"));
        }
    }

    fn at(&mut self, offset: usize, message: String) {
        self.problems.push(Diagnostic::at(
            &self.file.path,
            &self.file.text,
            offset,
            format!("recipe `{}`: {message}", self.file.recipe.role.get_ref()),
        ));
    }
}

fn valid_package(name: &str) -> bool {
    let base = name.split_once('=').map_or(name, |(n, _)| n);
    !base.is_empty()
        && base
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.:".contains(c))
}

fn valid_account(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-".contains(c))
}
