//! An apt repository of a recipe: its name makes file names on the guest,
//! its key is a file in files/, and its credentials go only over HTTPS,
//! or over plain HTTP where the recipe says so (with a warning).

use std::collections::BTreeSet;

use super::RecipeCheck;
use crate::diag::Diagnostic;
use crate::recipe::model::AptRepository;
use crate::{render, tomlfile};

impl RecipeCheck<'_> {
    /// `[step, at]`: the step's index and the repository's in it; `offset`
    /// is where the step starts.
    pub(super) fn repository(
        &mut self,
        repo: &AptRepository,
        [step, at]: [usize; 2],
        offset: usize,
        vars: &BTreeSet<String>,
    ) {
        let name = repo.name.get_ref();
        if !valid_repository_name(name) {
            let message = format!(
                "repository name `{}` must be letters, digits, `.`, `-` and `_`, without `..` \
                 or a leading `.` (it names files in /etc/apt/)",
                name.escape_default()
            );
            self.at(repo.name.span().start, message);
        }
        self.source_file("files", "key", &repo.key);
        let before = self.problems.len();
        for text in [
            Some(&repo.url),
            repo.username.as_ref(),
            repo.debian.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            self.inline_template(offset, text, vars);
        }
        if self.problems.len() == before {
            let (step, at) = (step.to_string(), at.to_string());
            let place = |key| {
                let keys = ["step", step.as_str(), "repository", at.as_str(), key];
                tomlfile::offset_of(&self.file.text, &keys).max(offset)
            };
            let (url_at, debian_at) = (place("url"), place("debian"));
            self.credentials(repo, url_at);
            self.release(repo, debian_at);
        }
    }

    /// A repository that says which Debian release it is for (`debian`)
    /// must be for the one the role builds on: packages built for another
    /// release install against the wrong libraries, or not at all.
    fn release(&mut self, repo: &AptRepository, offset: usize) {
        let Some(debian) = &repo.debian else { return };
        let role = self.file.recipe.role.get_ref();
        let renderer = render::Renderer::new(&self.project.templates_dir());
        let context = crate::role::bake_context(self.project, role);
        let Ok(release) = renderer.render_str("repository debian", debian, &context) else {
            return;
        };
        let release = release.trim();
        let suite = crate::role::suite(self.project, role);
        if release.is_empty() || release == suite.name() {
            return;
        }
        let root = self
            .project
            .lineage(role)
            .first()
            .map(|f| f.recipe.role.get_ref().clone());
        let from = match root {
            Some(root) if root != *role => format!(" (the base of role `{root}`)"),
            _ => String::new(),
        };
        let message = format!(
            "repository `{}` is for Debian {} (`debian`), but this role builds on \
             {suite}{from}: use a repository built for {suite} and say so in `debian`",
            repo.name.get_ref().escape_default(),
            release.escape_default(),
        );
        self.at(offset, message);
    }

    /// No credentials in the URL; credentials go over `https://` only, or
    /// `http://` with `allow_insecure_credentials` (a warning). The URL is rendered with
    /// the role's variables, as the build does; messages show its scheme,
    /// never the URL (it may hold userinfo).
    fn credentials(&mut self, repo: &AptRepository, offset: usize) {
        let role = self.file.recipe.role.get_ref();
        let renderer = render::Renderer::new(&self.project.templates_dir());
        let context = crate::role::bake_context(self.project, role);
        let Ok(url) = renderer.render_str("repository url", &repo.url, &context) else {
            return;
        };
        let name = repo.name.get_ref();
        let parsed = reqwest::Url::parse(url.trim());
        let scheme = parsed.as_ref().map_or("", |u| u.scheme());
        let userinfo = parsed
            .as_ref()
            .is_ok_and(|u| !u.username().is_empty() || u.password().is_some());
        let refused = if userinfo {
            Some(format!(
                "repository `{name}`: the URL holds userinfo (`USER:PASSWORD@`); give the login \
                 as `username` and `password_secret`, never in the URL"
            ))
        } else if scheme == "https" || !repo.has_credentials() {
            None
        } else if scheme == "http" && repo.allow_insecure_credentials {
            let message = format!(
                "recipe `{role}`: repository `{name}`: credentials go over plain http:// \
                 (`allow_insecure_credentials = true`); anyone on the path can read them"
            );
            let d = Diagnostic::at(&self.file.path, &self.file.text, offset, message);
            self.warnings.push(d);
            None
        } else {
            let shown = if scheme.is_empty() {
                "no scheme".to_owned()
            } else {
                format!("`{scheme}://`")
            };
            Some(format!(
                "repository `{name}`: credentials are sent only over https://, and the URL has \
                 {shown}; use https://, or set `allow_insecure_credentials = true` on this \
                 repository to send them in clear"
            ))
        };
        if let Some(message) = refused {
            self.at(offset, message);
        }
    }
}

/// A name apt reads in /etc/apt/sources.list.d/ and that stays one file
/// name: letters, digits, `.`, `-`, `_`, no `..`, not starting with `.`.
fn valid_repository_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
}
