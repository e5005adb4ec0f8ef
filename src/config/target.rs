//! `[targets.NAME]`: where VMs live. `kind` picks the shape, so each
//! target is read on its own; a Proxmox target's settings are checked
//! for what can never work (plain HTTP, credentials in the URL, a token
//! id or fingerprint of the wrong form, no nodes, absurd timeouts).

use serde::{Deserialize, Serialize};
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::{checks, limits};
use crate::diag::Diagnostic;
use crate::suite::Suite;
use crate::tomlfile::{self, Kinded};

pub(super) fn parse_target(
    path: &Path,
    text: &str,
    raw: Spanned<DeValue<'_>>,
) -> Result<TargetSettings, Diagnostic> {
    let no_kind = "target has no `kind`; expected `local` or `proxmox`";
    let target = Kinded::split(path, text, raw, "a target must be a table", no_kind)?;
    let kind_offset = target.kind_offset();
    match target.name() {
        Some("local") => local(path, text, target.rest()).map(TargetSettings::Local),
        Some("proxmox") => proxmox(path, text, target.rest()).map(TargetSettings::Proxmox),
        _ => Err(Diagnostic::at(
            path,
            text,
            kind_offset,
            "unknown target kind; expected `local` or `proxmox`",
        )),
    }
}

/// A local target. Its state lives in the project's `.oxbake/local`,
/// always: records name templates by paths relative to the project.
fn local(path: &Path, text: &str, raw: Spanned<DeValue<'_>>) -> Result<LocalSettings, Diagnostic> {
    tomlfile::from_value(path, text, raw)
}

/// Secrets never live in oxbake.toml (it is committed): a `token_secret` is
/// refused by name, without its value. So is what can never work: a
/// reversed VMID range, an endpoint that is not `https://` or carries
/// credentials, a malformed token id or fingerprint, no nodes, a timeout
/// out of bounds.
fn proxmox(
    path: &Path,
    text: &str,
    raw: Spanned<DeValue<'_>>,
) -> Result<ProxmoxSettings, Diagnostic> {
    let table = match raw.get_ref() {
        DeValue::Table(table) => table.clone(),
        _ => DeTable::default(),
    };
    let start = raw.span().start;
    let at = |key: &str| table.get(key).map_or(start, |v| v.span().start);
    let fail = |key: &str, message: String| Err(Diagnostic::at(path, text, at(key), message));
    if let Some((key, _)) = table.get_key_value("token_secret") {
        return Err(Diagnostic::at(
            path,
            text,
            key.span().start,
            "`token_secret`: secrets never live in oxbake.toml; put the token secret in the \
             environment variable that `token_secret_env` names (default `OXBAKE_PVE_TOKEN_SECRET`)",
        ));
    }
    // serde reads the first two items of a longer array into `[u32; 2]`
    // and drops the rest without a word.
    if let Some(range) = table.get("vmid_range")
        && let DeValue::Array(items) = range.get_ref()
        && items.len() != 2
    {
        let found = items.len();
        return fail(
            "vmid_range",
            format!("`vmid_range` must be two VMIDs, [first, last]; found {found} items"),
        );
    }
    let settings: ProxmoxSettings = tomlfile::from_value(path, text, raw)?;
    if let Some(message) = checks::endpoint(&settings.endpoint) {
        return fail("endpoint", message);
    }
    if let Some(message) = checks::token_id(&settings.token_id) {
        return fail("token_id", message);
    }
    if let Some(message) = settings
        .fingerprint
        .as_deref()
        .and_then(checks::fingerprint)
    {
        return fail("fingerprint", message);
    }
    if settings.nodes.is_empty() {
        return fail(
            "nodes",
            "`nodes` is empty: name the Proxmox node(s) builder VMs may run on".to_owned(),
        );
    }
    if let Some(message) = settings
        .ca_file
        .as_deref()
        .and_then(|f| tomlfile::plain_path("ca_file", f))
    {
        return fail("ca_file", message);
    }
    for (key, value) in [
        ("request_timeout", settings.request_timeout),
        ("task_timeout", settings.task_timeout),
    ] {
        if let Some(message) = limits::TIMEOUT_SECS.problem(key, value) {
            return fail(key, message);
        }
    }
    for (key, value) in [
        ("deploy_jobs", settings.deploy_jobs),
        ("build_jobs", settings.build_jobs),
    ] {
        if let Some(message) = limits::JOBS.problem(key, u64::from(value)) {
            return fail(key, message);
        }
    }
    let [first, last] = settings.vmid_range;
    if first > last {
        return fail(
            "vmid_range",
            format!(
                "`vmid_range` [{first}, {last}] is reversed: the first VMID must not exceed the last"
            ),
        );
    }
    if let Some(message) = shared_base_template(&settings) {
        return fail("base_templates", message);
    }
    if let Some(forward) = &settings.ssh_forward
        && forward.port(last).is_none()
    {
        return fail(
            "ssh_forward",
            format!(
                "`ssh_forward`: port_base {} + VMID {last} is beyond port 65535",
                forward.port_base
            ),
        );
    }
    Ok(settings)
}

/// A template is a base of one Debian release: two suites naming the same
/// VMID would give their roles one base identity.
fn shared_base_template(settings: &ProxmoxSettings) -> Option<String> {
    let named: Vec<(Suite, u32)> = Suite::ALL
        .into_iter()
        .filter_map(|suite| Some((suite, settings.base_template_of(suite)?)))
        .collect();
    named.iter().enumerate().find_map(|(i, (first, vmid))| {
        let (second, _) = named[i + 1..].iter().find(|(_, other)| other == vmid)?;
        Some(format!(
            "`base_templates`: template {vmid} is the base of both {first} and {second}; \
             each Debian release needs its own"
        ))
    })
}

/// One target's connection settings.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
// Settings exist a few times per run; boxing would only complicate matching.
#[allow(clippy::large_enum_variant)]
pub enum TargetSettings {
    Local(LocalSettings),
    Proxmox(ProxmoxSettings),
}

/// QEMU on this machine.
#[derive(Debug, Clone, Default, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// `auto` (KVM only when a guest really runs under it), `kvm` or `tcg`.
    #[serde(default)]
    pub accel: Accel,
}

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// A Proxmox VE cluster reached through its HTTP API.
#[derive(Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
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
    /// The VMID of the bookworm template roles without a parent start from.
    pub base_template: u32,
    /// The base templates of other suites (`{ trixie = 9001 }`); a
    /// `bookworm` entry wins over `base_template`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub base_templates: std::collections::BTreeMap<Suite, u32>,
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
    /// The storage (content type `import`, a file-based one) that receives
    /// the disk images `oxbake publish` ships (default: `iso_storage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_storage: Option<String>,
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
    /// How many VMs a deploy makes at once (clones, starts, checks) when
    /// `oxbake deploy --jobs` does not say.
    #[serde(default = "default_deploy_jobs")]
    pub deploy_jobs: u32,
    /// How many roles a build (or nightly) bakes at once, each on its own
    /// builder VM, when `oxbake build --jobs` does not say.
    #[serde(default = "default_build_jobs")]
    pub build_jobs: u32,
}

impl ProxmoxSettings {
    /// The VMID of the base template of `suite`, if one is configured.
    pub fn base_template_of(&self, suite: Suite) -> Option<u32> {
        let default = (suite == Suite::Bookworm).then_some(self.base_template);
        self.base_templates.get(&suite).copied().or(default)
    }
}

/// `ssh_forward = { host = "203.0.113.5", port_base = 22000 }`: builder VMs
/// sit behind forwards (a NAT bridge on the node, a bastion), one port per
/// VMID: oxbake connects to `host`, port `port_base + VMID`, instead of the
/// guest agent's address, port 22.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
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

fn default_deploy_jobs() -> u32 {
    4
}

fn default_build_jobs() -> u32 {
    2
}

fn default_token_env() -> String {
    "OXBAKE_PVE_TOKEN_SECRET".to_owned()
}
