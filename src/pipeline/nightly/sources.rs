//! The apt sources a role's image was built with, and the names apt gives
//! their lists: the base image's Debian sources and every repository an apt
//! step of the role or of its ancestors added (their source lists stay in
//! the image).

use super::NightlyError;
use crate::project::Project;
use crate::recipe::Action;
use crate::recipe::model::AptRepository;
use crate::render::Renderer;
use crate::role::bake_context;
use crate::suite::Suite;

/// One apt source (`deb URL SUITE …`), with its login when it needs one.
#[derive(Clone)]
pub struct AptSource {
    pub url: String,
    pub suite: String,
    pub login: Option<Login>,
}

/// A repository's credentials; the password is never shown.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for AptSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AptSource")
            .field("url", &self.url)
            .field("suite", &self.suite)
            .field("login", &self.login.as_ref().map(|l| &l.username))
            .finish()
    }
}

impl AptSource {
    pub fn new(url: &str, suite: &str) -> Self {
        Self {
            url: url.to_owned(),
            suite: suite.to_owned(),
            login: None,
        }
    }

    /// Where the signed release file is: `URL/dists/SUITE/InRelease`, or
    /// `URL/SUITE/InRelease` for a flat repository (a suite ending in `/`).
    pub fn in_release_url(&self) -> String {
        format!("{}InRelease", self.dists())
    }

    /// The name apt stores the file under in /var/lib/apt/lists.
    pub fn list_file(&self) -> String {
        format!("{}InRelease", uri_to_file_name(&self.dists()))
    }

    fn dists(&self) -> String {
        let url = self.url.trim_end_matches('/');
        if self.suite.ends_with('/') {
            let suite = self.suite.trim_start_matches('/');
            format!("{url}/{suite}")
        } else {
            format!("{url}/dists/{}/", self.suite)
        }
    }
}

/// apt's `URItoFileName`: the scheme and any login dropped, unsafe bytes
/// quoted as `%xx`, every `/` turned into `_`.
pub fn uri_to_file_name(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, rest)| rest);
    let rest = match rest.split_once('/') {
        Some((host, path)) => format!("{}/{path}", strip_login(host)),
        None => strip_login(rest).to_owned(),
    };
    let mut out = String::new();
    for b in rest.bytes() {
        if b"\\|{}[]<>\"^~_=!@#$%^&*".contains(&b) || b <= 0x20 || b >= 0x7f {
            out.push_str(&format!("%{b:02x}"));
        } else if b == b'/' {
            out.push('_');
        } else {
            out.push(char::from(b));
        }
    }
    out
}

fn strip_login(host: &str) -> &str {
    host.rsplit_once('@').map_or(host, |(_, h)| h)
}

/// The Debian sources of a base image of `suite` (mmdebstrap's and Debian's
/// cloud images'): the mirror's `SUITE`, `SUITE-updates` and
/// `SUITE-backports`, and the security archive's `SUITE-security`.
pub fn debian_sources(mirror: &str, suite: Suite) -> Vec<AptSource> {
    let mirror = mirror.trim_end_matches('/');
    let security = mirror.replace("/debian", "/debian-security");
    let name = suite.name();
    let mut sources: Vec<AptSource> = ["", "-updates", "-backports"]
        .iter()
        .map(|tail| AptSource::new(mirror, &format!("{name}{tail}")))
        .collect();
    let security_suite = format!("{name}-security");
    sources.push(AptSource::new(&security, &security_suite));
    sources.push(AptSource::new(
        "http://security.debian.org/debian-security",
        &security_suite,
    ));
    sources
}

/// A repository an apt step adds, with the secret its password is in.
#[derive(Debug, Clone)]
pub struct StepSource {
    pub source: AptSource,
    /// The role whose recipe adds it.
    pub role: String,
    pub username: Option<String>,
    pub password_secret: Option<String>,
}

/// The repositories the enabled apt steps of `role` and its ancestors add,
/// with URL, suite and user name rendered from each recipe's variables.
pub fn step_sources(project: &Project, role: &str) -> Result<Vec<StepSource>, NightlyError> {
    let renderer = Renderer::new(&project.templates_dir());
    let mut found = Vec::new();
    for file in project.lineage(role) {
        let owner = file.recipe.role.get_ref();
        let vars = crate::role::role_vars(project, owner);
        let context = bake_context(project, owner);
        let repos = file
            .recipe
            .steps
            .iter()
            .filter(|s| s.enabled(&vars))
            .filter_map(|s| match &s.action {
                Action::Apt(apt) => Some(apt.repositories.iter()),
                _ => None,
            })
            .flatten();
        for repo in repos {
            found.push(step_source(&renderer, &context, owner, repo)?);
        }
    }
    Ok(found)
}

fn step_source(
    renderer: &Renderer,
    context: &minijinja::Value,
    owner: &str,
    repo: &AptRepository,
) -> Result<StepSource, NightlyError> {
    let render = |what: &'static str, text: &str| {
        renderer
            .render_str(what, text, context)
            .map_err(|source| NightlyError::Render {
                role: owner.to_owned(),
                source,
            })
    };
    let username = match &repo.username {
        Some(user) => Some(render("repository username", user)?),
        None => None,
    };
    Ok(StepSource {
        source: AptSource::new(
            &render("repository url", &repo.url)?,
            &render("repository suite", &repo.suite)?,
        ),
        role: owner.to_owned(),
        username,
        password_secret: repo.password_secret.as_ref().map(|s| s.get_ref().clone()),
    })
}
