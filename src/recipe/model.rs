//! The recipe format: one TOML file per role in `recipes/`.
//!
//! Every table denies unknown keys, so a misspelled key is an error rather
//! than a silently ignored setting. Paths and names that later checks point
//! at are kept with their spans.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// A role's recipe as written.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// The role's name; images are named after it.
    #[schemars(with = "String")]
    pub role: Spanned<String>,
    /// What one line says about the role (shown by `oxbake ls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The parent role whose image this one starts from; none means the
    /// target's base image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub from: Option<Spanned<String>>,
    /// The Debian release of the base image a root role (one without
    /// `from`) builds on: `bookworm` (the default) or `trixie`. A role with
    /// `from` builds on its parent's. Left out of the serialised recipe
    /// while unset, so recipes without it keep their inputs hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub base: Option<Spanned<String>>,
    /// Values for the bake-phase templates. No secrets here: they would end
    /// up in the image and in the inputs list.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub vars: BTreeMap<String, toml::Value>,
    /// The bake steps, in order (`[[step]]` tables). Each is read on its
    /// own by the loader, which picks the variant from `kind`.
    #[serde(skip_deserializing, rename = "step")]
    pub steps: Vec<Step>,
    /// What must hold in the finished image.
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
    /// What happens when a VM is deployed from the image.
    #[serde(default)]
    pub deploy: Deploy,
    /// The clean-up operations, virt-sysprep style: `defaults`, `-NAME` to
    /// drop one, `NAME` to add one (see [`crate::recipe::clean`]). Left out
    /// of the serialised recipe while it is the default, so that recipes
    /// that do not set it keep their inputs hash.
    #[serde(default = "default_clean", skip_serializing_if = "is_default_clean")]
    #[schemars(with = "Vec<String>")]
    pub clean: Vec<Spanned<String>>,
}

fn default_clean() -> Vec<Spanned<String>> {
    vec![Spanned::new(0..0, "defaults".to_owned())]
}

fn is_default_clean(clean: &[Spanned<String>]) -> bool {
    matches!(clean, [only] if only.get_ref() == "defaults")
}

impl Recipe {
    /// The clean-up operations the recipe selects, in run order.
    pub fn clean_operations(
        &self,
    ) -> Result<Vec<&'static super::clean::Operation>, super::clean::UnknownOperation> {
        let names: Vec<&str> = self.clean.iter().map(|c| c.get_ref().as_str()).collect();
        super::clean::select(&names)
    }
}

/// One bake step: `kind` selects what it does, `name` labels it in progress
/// output and logs, `when` names a variable that must be set (non-empty,
/// not false) for the step to run.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Step {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub when: Option<Spanned<String>>,
    /// Where the step's table starts in the recipe.
    #[serde(skip)]
    pub span: std::ops::Range<usize>,
    #[serde(flatten)]
    pub action: Action,
}

impl Step {
    /// Whether the step runs with these variables: always without `when`,
    /// else when the variable it names is set (a non-empty string or array,
    /// `true`, a non-zero number).
    pub fn enabled(&self, vars: &BTreeMap<String, toml::Value>) -> bool {
        let Some(when) = &self.when else {
            return true;
        };
        match vars.get(when.get_ref()) {
            None => false,
            Some(toml::Value::String(s)) => !s.is_empty(),
            Some(toml::Value::Boolean(b)) => *b,
            Some(toml::Value::Integer(i)) => *i != 0,
            Some(toml::Value::Float(f)) => *f != 0.0,
            Some(toml::Value::Array(a)) => !a.is_empty(),
            Some(toml::Value::Table(t)) => !t.is_empty(),
            Some(toml::Value::Datetime(_)) => true,
        }
    }
}

/// What a step does.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Action {
    Apt(Apt),
    File(FileCopy),
    Template(TemplateFile),
    Shell(Shell),
    Service(Service),
    User(User),
    Group(Group),
}

impl Action {
    /// The values `kind` may take.
    pub const KINDS: &'static [&'static str] = &[
        "apt", "file", "template", "shell", "service", "user", "group",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Action::Apt(_) => "apt",
            Action::File(_) => "file",
            Action::Template(_) => "template",
            Action::Shell(_) => "shell",
            Action::Service(_) => "service",
            Action::User(_) => "user",
            Action::Group(_) => "group",
        }
    }
}

/// Installs packages, after adding any extra repositories.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Apt {
    pub packages: Vec<String>,
    #[serde(default, rename = "repository", skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<AptRepository>,
}

/// An extra apt source with its signing key and optional credentials.
/// `url` and `username` may name variables with `{{ … }}`; the password only
/// ever comes from a secret, by name.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AptRepository {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    pub url: String,
    pub suite: String,
    /// The Debian release the repository's packages are built for
    /// (`bullseye`, `bookworm`, …; may name variables with `{{ … }}`).
    /// `oxbake check` refuses an enabled step whose repository is for
    /// another release than the role builds on. Left out of the canonical
    /// recipe while unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debian: Option<String>,
    #[serde(default = "default_components")]
    pub components: Vec<String>,
    /// The repository's signing key (ASCII-armoured or binary), in `files/`.
    #[schemars(with = "String")]
    pub key: Spanned<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The name of the secret that holds the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub password_secret: Option<Spanned<String>>,
    /// Credentials go over plain `http://` only when this says so: `check`
    /// refuses them otherwise, and warns when it is set. Left out of the
    /// canonical recipe while false, so existing inputs hashes stay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_credentials: bool,
}

impl AptRepository {
    /// Whether apt logs in to it (a user or a password is given).
    pub fn has_credentials(&self) -> bool {
        self.username.is_some() || self.password_secret.is_some()
    }
}

fn default_components() -> Vec<String> {
    vec!["main".to_owned()]
}

/// A file placed in the image: copied from `files/` (a `file` step) or
/// rendered from `templates/` (a `template` step, and deploy templates).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Placed {
    #[schemars(with = "String")]
    pub source: Spanned<String>,
    #[schemars(with = "String")]
    pub dest: Spanned<String>,
    #[serde(default = "default_file_mode")]
    #[schemars(with = "String")]
    pub mode: Spanned<String>,
    #[serde(default = "default_owner")]
    #[schemars(with = "String")]
    pub owner: Spanned<String>,
}

/// Copies a file from `files/` into the image.
pub type FileCopy = Placed;

/// Renders a template from `templates/` with the recipe's variables.
pub type TemplateFile = Placed;

/// Runs a shell command (`run`) or a script from `files/` (`script`).
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Shell {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub script: Option<Spanned<String>>,
    #[serde(default = "default_user")]
    pub user: String,
    /// Seconds before the command is killed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

/// Enables, disables or masks systemd units.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub units: Vec<String>,
    pub action: ServiceAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServiceAction {
    Enable,
    Disable,
    Mask,
}

/// Creates a user.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub user: String,
    #[serde(default)]
    pub system: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default = "default_login_shell")]
    pub shell: String,
}

/// Creates a group.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub group: String,
    #[serde(default)]
    pub system: bool,
}

/// A command run in the finished image (at bake, and again in smoke tests)
/// and what its result must be.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    pub run: String,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default)]
    pub exit: i32,
    /// Substrings that stdout must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdout_contains: Vec<String>,
    /// Substrings that stdout must not hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stdout_lacks: Vec<String>,
    /// Checks that need deploy-time values run only in smoke tests and
    /// after deploys, not at bake.
    #[serde(default)]
    pub deployed_only: bool,
    /// A state that comes in its own time (a service starting, a cluster
    /// syncing): the check runs again, a second apart, until it passes or
    /// this many seconds are over; the last run is the result. 0: once.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "at_most_600"
    )]
    #[schemars(range(max = 600))]
    pub within_seconds: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A check waits at most 10 minutes: a state that takes longer is a fault.
fn at_most_600<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = u32::deserialize(d)?;
    if n > 600 {
        return Err(serde::de::Error::custom(format!(
            "within_seconds is at most 600 (10 minutes), not {n}"
        )));
    }
    Ok(n)
}

/// The deploy phase: templates rendered on the operator's machine with the
/// environment's values and secrets, delivered by cloud-init.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// Names of the per-environment values the templates read as `env.NAME`.
    #[serde(default)]
    pub values: Vec<String>,
    /// Names of the secrets the templates read as `secrets.NAME`.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Secrets that an environment need not set (those of a choice it may
    /// not make, such as an S3 repository's keys): `secrets.NAME` is ""
    /// where none is found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub optional_secrets: Vec<String>,
    #[serde(default, rename = "template")]
    pub templates: Vec<TemplateFile>,
    /// Commands run once the files are in place (reload services, …).
    #[serde(default)]
    pub commands: Vec<String>,
    /// Run instead of `commands` by the one VM that starts the role from
    /// nothing: the lowest created slot when the environment runs no VM of
    /// the role (a cluster's first node). Empty: every VM runs `commands`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bootstrap_commands: Vec<String>,
    /// A rule the plan keeps for the role's running VMs (see [`Quorum`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quorum: Option<Quorum>,
    /// The role's VMs hold data that exists nowhere else (a backup
    /// repository): a deploy never destroys or replaces a running one (the
    /// plan is refused), and `oxbake destroy` keeps them unless `--all`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keeps_data: bool,
}

/// What a role's VMs need to keep serving, so that a plan may not take it
/// away in one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Quorum {
    /// More than half of the role's running VMs must stay up (a Galera or
    /// Raft cluster): a plan that destroys, or stops at once, half of them
    /// or more is refused.
    Majority,
}

fn default_file_mode() -> Spanned<String> {
    Spanned::new(0..0, "0644".to_owned())
}

fn default_owner() -> Spanned<String> {
    Spanned::new(0..0, "root:root".to_owned())
}

fn default_user() -> String {
    "root".to_owned()
}

fn default_login_shell() -> String {
    "/usr/sbin/nologin".to_owned()
}
