//! `oxbake.toml`: the project's settings. Every table denies unknown keys.
//! Secrets never live here: a Proxmox token secret is read from the
//! environment variable the target names.

mod checks;
mod environment;
pub mod limits;
mod names;
pub mod schema;
mod target;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::de::DeValue;

use crate::diag::{Diagnostic, Diagnostics};
use crate::tomlfile;

pub use environment::{Environment, Network, Replace, RoleSettings};
pub use names::is_valid_name;
pub use target::{Accel, LocalSettings, ProxmoxSettings, SshForward, TargetSettings};

/// Reads `oxbake.toml`, reporting every problem found.
pub fn parse(path: &Path, text: &str) -> Result<Config, Diagnostics> {
    let mut problems = Diagnostics::default();
    let doc = tomlfile::parse_without::<Config>(path, text, "targets")?;
    let mut targets = BTreeMap::new();
    if let Some(raw) = doc.taken {
        let span = raw.span();
        match raw.into_inner() {
            DeValue::Table(table) => {
                for (name, value) in table.iter() {
                    match target::parse_target(path, text, value.clone()) {
                        Ok(t) => {
                            targets.insert(name.get_ref().to_string(), t);
                        }
                        Err(d) => problems.push(d),
                    }
                }
            }
            _ => problems.push(Diagnostic::at(
                path,
                text,
                span.start,
                "`targets` must be a table",
            )),
        }
    }
    let source = doc.source;
    if let Ok(config) = &doc.rest {
        let default = &config.project.default_target;
        if default != "local" && !targets.contains_key(default) && problems.is_empty() {
            let offset = source
                .key_start(&["project", "default_target"])
                .unwrap_or(0);
            problems.push(source.at(
                offset,
                format!("default target `{default}` is not defined in [targets]"),
            ));
        }
    }
    let config = tomlfile::combine(doc.rest, problems, |config| {
        config.targets = targets;
        config.source = source;
    })?;
    let problems = checks::settings(&config);
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(problems)
    }
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub project: ProjectSettings,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub retention: Retention,
    /// Values every recipe sees as variables (a recipe's own `[vars]` win).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub vars: BTreeMap<String, toml::Value>,
    /// Where secrets come from besides the environment.
    #[serde(default)]
    pub secrets: SecretsSettings,
    /// Where VMs live, by name. `local` exists even when not listed. Read by
    /// [`parse`], one target at a time, since `kind` picks the shape.
    #[serde(skip_deserializing)]
    pub targets: BTreeMap<String, TargetSettings>,
    /// Where the channels' versions run (`[environments.NAME]`).
    #[serde(default)]
    pub environments: BTreeMap<String, Environment>,
    /// The file's text and where each key and value of it is, for the
    /// checks that point into it after the typed read.
    #[serde(skip)]
    pub source: tomlfile::Source,
}

#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectSettings {
    pub name: String,
    /// The target used when `--target` is not given.
    #[serde(default = "default_target")]
    pub default_target: String,
    /// Promotion order: a version reaches a channel from the one before it.
    #[serde(default = "default_channels")]
    pub channels: Vec<String>,
}

/// The size of builder VMs and how long a build may take.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_cores")]
    pub cores: u32,
    #[serde(default = "default_memory")]
    pub memory_mib: u32,
    #[serde(default = "default_disk")]
    pub disk_gib: u32,
    /// Seconds one bake step may run before it is killed.
    #[serde(default = "default_step_timeout")]
    pub step_timeout: u64,
    /// Seconds to wait for a booting guest to answer on SSH.
    #[serde(default = "default_boot_timeout")]
    pub boot_timeout: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            cores: default_cores(),
            memory_mib: default_memory(),
            disk_gib: default_disk(),
            step_timeout: default_step_timeout(),
            boot_timeout: default_boot_timeout(),
        }
    }
}

/// What `oxbake prune` keeps: the newest `keep` versions of each role, and
/// every version a channel points at, whatever its age.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep: default_keep(),
        }
    }
}

/// `[secrets]`: an Ansible-compatible vault file and where its password
/// comes from (the file `password_file`, else the variable `password_env`,
/// default `OXBAKE_VAULT_PASSWORD`). Paths are relative to the project.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

fn default_target() -> String {
    "local".to_owned()
}

fn default_channels() -> Vec<String> {
    ["dev", "staging", "prod"].map(str::to_owned).to_vec()
}

fn default_cores() -> u32 {
    2
}

fn default_memory() -> u32 {
    2048
}

fn default_disk() -> u32 {
    8
}

fn default_step_timeout() -> u64 {
    1800
}

fn default_boot_timeout() -> u64 {
    600
}

fn default_keep() -> u32 {
    5
}

#[cfg(test)]
mod tests;

/// A target that the command line, a record or an environment names and
/// oxbake.toml does not define.
#[derive(Debug, thiserror::Error)]
#[error("unknown target `{name}`; oxbake.toml defines {}", .known.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", "))]
pub struct UnknownTarget {
    pub name: String,
    pub known: Vec<String>,
}

impl Config {
    /// The settings of the target `name` names (default: the project's
    /// default target); `local` needs no table of its own.
    pub fn target(&self, name: Option<&str>) -> Result<(String, TargetSettings), UnknownTarget> {
        let name = name.unwrap_or(&self.project.default_target).to_owned();
        match self.targets.get(&name) {
            Some(settings) => Ok((name, settings.clone())),
            None if name == "local" => Ok((name, TargetSettings::Local(LocalSettings::default()))),
            None => Err(UnknownTarget {
                name,
                known: self.targets.keys().cloned().collect(),
            }),
        }
    }
}
