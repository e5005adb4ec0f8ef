//! `oxbake.toml`: the project's settings. Every table denies unknown keys.
//! Secrets never live here: a Proxmox token secret is read from the
//! environment variable the target names.

use std::collections::BTreeMap;

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;
use toml::de::DeValue;

use crate::diag::{Diagnostic, Diagnostics};
use crate::tomlfile::{self, Kinded};

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
                    match parse_target(path, text, value.clone()) {
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
    if let Ok(config) = &doc.rest {
        let default = &config.project.default_target;
        if default != "local" && !targets.contains_key(default) && problems.is_empty() {
            let offset = text.find("default_target").unwrap_or(0);
            problems.push(Diagnostic::at(
                path,
                text,
                offset,
                format!("default target `{default}` is not defined in [targets]"),
            ));
        }
    }
    tomlfile::combine(doc.rest, problems, |config| config.targets = targets)
}

fn parse_target(
    path: &Path,
    text: &str,
    raw: Spanned<DeValue<'_>>,
) -> Result<TargetSettings, Diagnostic> {
    let no_kind = "target has no `kind`; expected `local` or `proxmox`";
    let target = Kinded::split(path, text, raw, "a target must be a table", no_kind)?;
    let kind_offset = target.kind_offset();
    match target.name() {
        Some("local") => Ok(TargetSettings::Local(tomlfile::from_value(
            path,
            text,
            target.rest(),
        )?)),
        Some("proxmox") => proxmox(path, text, target.rest()).map(TargetSettings::Proxmox),
        _ => Err(Diagnostic::at(
            path,
            text,
            kind_offset,
            "unknown target kind; expected `local` or `proxmox`",
        )),
    }
}

/// Secrets never live in oxbake.toml (it is committed): a `token_secret` is
/// refused by name, without its value, and so is a reversed VMID range.
fn proxmox(
    path: &Path,
    text: &str,
    raw: Spanned<DeValue<'_>>,
) -> Result<ProxmoxSettings, Diagnostic> {
    if let DeValue::Table(table) = raw.get_ref()
        && let Some((key, _)) = table.get_key_value("token_secret")
    {
        return Err(Diagnostic::at(
            path,
            text,
            key.span().start,
            "`token_secret`: secrets never live in oxbake.toml; put the token secret in the \
             environment variable that `token_secret_env` names (default `OXBAKE_PVE_TOKEN_SECRET`)",
        ));
    }
    let range = match raw.get_ref() {
        DeValue::Table(table) => table.get("vmid_range").cloned(),
        _ => None,
    };
    // serde reads the first two items of a longer array into `[u32; 2]`
    // and drops the rest without a word.
    if let Some(range) = &range
        && let DeValue::Array(items) = range.get_ref()
        && items.len() != 2
    {
        return Err(Diagnostic::at(
            path,
            text,
            range.span().start,
            format!(
                "`vmid_range` must be two VMIDs, [first, last]; found {} items",
                items.len()
            ),
        ));
    }
    let timeouts = timeout_spans(&raw);
    let settings: ProxmoxSettings = tomlfile::from_value(path, text, raw)?;
    let values = [settings.request_timeout, settings.task_timeout];
    if let Some(((key, offset), _)) = timeouts.iter().zip(values).find(|(_, v)| *v == 0) {
        return Err(Diagnostic::at(
            path,
            text,
            offset.unwrap_or(0),
            format!("`{key}` must be at least 1 (seconds)"),
        ));
    }
    let [first, last] = settings.vmid_range;
    if first > last {
        let offset = range.map_or(0, |r| r.span().start);
        return Err(Diagnostic::at(
            path,
            text,
            offset,
            format!(
                "`vmid_range` [{first}, {last}] is reversed: the first VMID must not exceed the last"
            ),
        ));
    }
    if let Some(forward) = &settings.ssh_forward
        && forward.port(last).is_none()
    {
        let offset = text.find("ssh_forward").unwrap_or(span_start(&range));
        return Err(Diagnostic::at(
            path,
            text,
            offset,
            format!(
                "`ssh_forward`: port_base {} + VMID {last} is beyond port 65535",
                forward.port_base
            ),
        ));
    }
    Ok(settings)
}

/// Where the values of the timeout keys are, for the check that they
/// are not 0 (a request or task that may take no time always fails).
fn timeout_spans(raw: &Spanned<DeValue<'_>>) -> [(&'static str, Option<usize>); 2] {
    let at = |key: &str| match raw.get_ref() {
        DeValue::Table(table) => table.get(key).map(|v| v.span().start),
        _ => None,
    };
    [
        ("request_timeout", at("request_timeout")),
        ("task_timeout", at("task_timeout")),
    ]
}

fn span_start(value: &Option<Spanned<DeValue<'_>>>) -> usize {
    value.as_ref().map_or(0, |v| v.span().start)
}

/// The whole file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub project: ProjectSettings,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub retention: Retention,
    /// Values every recipe sees as variables (a recipe's own `[vars]` win).
    #[serde(default)]
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
    pub environments: BTreeMap<String, crate::environment::Environment>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Deserialize, Serialize)]
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
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SecretsSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
}

/// One target's connection settings.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
// Settings exist a few times per run; boxing would only complicate matching.
#[allow(clippy::large_enum_variant)]
pub enum TargetSettings {
    Local(LocalSettings),
    Proxmox(ProxmoxSettings),
}

/// QEMU on this machine.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// `auto` (KVM only when a guest really runs under it), `kvm` or `tcg`.
    #[serde(default)]
    pub accel: Accel,
    /// Where VMs and templates are kept, relative to the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// A Proxmox VE cluster reached through its HTTP API.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProxmoxSettings {
    /// `https://host:8006`
    pub endpoint: String,
    /// The nodes builder VMs may run on; the first is used by default.
    pub nodes: Vec<String>,
    pub storage: String,
    #[serde(default = "default_bridge")]
    pub bridge: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Inclusive range of VMIDs oxbake may allocate.
    pub vmid_range: [u32; 2],
    /// The VMID of the template roles without a parent start from.
    pub base_template: u32,
    /// `user@realm!tokenname`
    pub token_id: String,
    /// The environment variable holding the token secret.
    #[serde(default = "default_token_env")]
    pub token_secret_env: String,
    /// A CA certificate (PEM) to trust instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// The server certificate's SHA-256 fingerprint, pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The storage (content type `iso`) that receives cloud-init seed ISOs.
    #[serde(default = "default_iso_storage")]
    pub iso_storage: String,
    /// Full clones instead of linked clones of templates.
    #[serde(default)]
    pub full_clone: bool,
    /// Builder VMs reached through port forwards instead of directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_forward: Option<SshForward>,
    /// Seconds one API request may wait for its answer (GETs are retried).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: u64,
    /// Seconds one Proxmox task (clone, start, upload, …) may run.
    #[serde(default = "default_task_timeout")]
    pub task_timeout: u64,
}

/// `ssh_forward = { host = "203.0.113.5", port_base = 22000 }`: builder VMs
/// sit behind forwards (a NAT bridge on the node, a bastion), one port per
/// VMID: oxbake connects to `host`, port `port_base + VMID`, instead of the
/// guest agent's address, port 22.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SshForward {
    pub host: std::net::IpAddr,
    pub port_base: u16,
}

impl SshForward {
    /// The forwarded port of `vmid`, if it is a port at all.
    pub fn port(&self, vmid: u32) -> Option<u16> {
        u32::from(self.port_base)
            .checked_add(vmid)
            .and_then(|p| u16::try_from(p).ok())
    }
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

fn default_bridge() -> String {
    "vmbr0".to_owned()
}

fn default_iso_storage() -> String {
    "local".to_owned()
}

fn default_request_timeout() -> u64 {
    120
}

fn default_task_timeout() -> u64 {
    600
}

fn default_token_env() -> String {
    "OXBAKE_PVE_TOKEN_SECRET".to_owned()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse(Path::new("oxbake.toml"), "[project]\nname = \"ox\"\n").unwrap();
        assert_eq!(c.project.default_target, "local");
        assert_eq!(c.project.channels, ["dev", "staging", "prod"]);
        assert_eq!(c.defaults.cores, 2);
    }

    const PVE: &str = "[project]\nname = \"ox\"\n[targets.pve]\nkind = \"proxmox\"\n\
        endpoint = \"https://pve:8006\"\nnodes = [\"pve1\"]\nstorage = \"s\"\n\
        vmid_range = [9000, 9999]\nbase_template = 9000\ntoken_id = \"a@pve!b\"\n";

    #[test]
    fn a_token_secret_is_refused_without_showing_it() {
        parse(Path::new("oxbake.toml"), PVE).unwrap();
        let text = format!("{PVE}token_secret = \"hunter2-very-secret\"\n");
        let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(
            d.message.contains("secrets never live in oxbake.toml"),
            "{d}"
        );
        assert!(!d.to_string().contains("hunter2"), "{d}");
        assert_eq!((d.line, d.column), (11, 1), "{d}");
    }

    #[test]
    fn reversed_vmid_range_and_unknown_default_target_are_refused() {
        let text = PVE.replace("[9000, 9999]", "[9000, 9100, 9999]");
        let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(d.message.contains("found 3 items"), "{d}");
        assert_eq!((d.line, d.column), (8, 14), "{d}");
        let text = PVE.replace("[9000, 9999]", "[9999, 9000]");
        let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(d.message.contains("reversed"), "{d}");
        assert_eq!((d.line, d.column), (8, 14), "{d}");
        let text = "[project]\nname = \"ox\"\ndefault_target = \"pve\"\n";
        let all = parse(Path::new("oxbake.toml"), text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(d.message.contains("default target `pve`"), "{d}");
        assert_eq!(d.line, 3, "{d}");
        let with_pve = PVE.replace(
            "name = \"ox\"\n",
            "name = \"ox\"\ndefault_target = \"pve\"\n",
        );
        parse(Path::new("oxbake.toml"), &with_pve).unwrap();
    }

    #[test]
    fn secrets_table_is_read_and_checked() {
        let text = "[project]\nname = \"ox\"\n[secrets]\nvault = \"group_vars/all/vault.yml\"\npassword_env = \"PW\"\n";
        let c = parse(Path::new("oxbake.toml"), text).unwrap();
        assert_eq!(c.secrets.vault.as_deref(), Some("group_vars/all/vault.yml"));
        assert_eq!(c.secrets.password_env.as_deref(), Some("PW"));
        let bad = text.replace("password_env", "pasword_env");
        let all = parse(Path::new("oxbake.toml"), &bad).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(d.message.contains("pasword_env"), "{d}");
    }

    #[test]
    fn unknown_key_in_a_target_is_refused_with_its_place() {
        let text = "[project]\nname = \"ox\"\n[targets.lab]\nkind = \"local\"\nacel = \"tcg\"\n";
        let all = parse(Path::new("oxbake.toml"), text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(d.message.contains("acel"), "{d}");
        assert_eq!(d.line, 5, "{d}");
    }

    #[test]
    fn api_timeouts_default_are_read_and_must_not_be_zero() {
        let c = parse(Path::new("oxbake.toml"), PVE).unwrap();
        let TargetSettings::Proxmox(pve) = &c.targets["pve"] else {
            panic!("not proxmox");
        };
        assert_eq!((pve.request_timeout, pve.task_timeout), (120, 600));
        let text = format!("{PVE}request_timeout = 5\ntask_timeout = 90\n");
        let c = parse(Path::new("oxbake.toml"), &text).unwrap();
        let TargetSettings::Proxmox(pve) = &c.targets["pve"] else {
            panic!("not proxmox");
        };
        assert_eq!((pve.request_timeout, pve.task_timeout), (5, 90));
        let text = format!("{PVE}request_timeout = 5\ntask_timeout = 0x0\n");
        let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(
            d.message.contains("`task_timeout` must be at least 1"),
            "{d}"
        );
        assert_eq!((d.line, d.column), (12, 16), "{d}");
        for bad in ["\"30s\"", "-5", "2.5"] {
            let text = format!("{PVE}request_timeout = {bad}\n");
            let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
            let d = all.iter().next().unwrap();
            assert_eq!(d.line, 11, "{bad}: {d}");
        }
    }

    #[test]
    fn ssh_forward_maps_vmids_to_ports_and_must_fit_the_range() {
        let text = format!("{PVE}ssh_forward = {{ host = \"192.0.2.7\", port_base = 20000 }}\n");
        let c = parse(Path::new("oxbake.toml"), &text).unwrap();
        let TargetSettings::Proxmox(pve) = &c.targets["pve"] else {
            panic!("not proxmox");
        };
        let forward = pve.ssh_forward.as_ref().unwrap();
        assert_eq!(forward.host.to_string(), "192.0.2.7");
        assert_eq!(forward.port(9000), Some(29000));
        let text = text.replace("20000", "60000");
        let all = parse(Path::new("oxbake.toml"), &text).unwrap_err();
        let d = all.iter().next().unwrap();
        assert!(d.message.contains("port_base 60000 + VMID 9999"), "{d}");
        assert_eq!(d.line, 11, "{d}");
    }
}
