//! NoCloud documents for builder VMs and the seed ISO that carries them.
//!
//! The documents are written as JSON, which is a subset of YAML that
//! cloud-init's parser reads unchanged; this avoids hand-escaping YAML. A
//! user-data document still begins with the `#cloud-config` marker line.

use std::path::Path;

use serde_json::{Value, json};

use super::{CloudInit, TargetError};

/// What a builder VM's first boot must set up.
#[derive(Debug, Clone)]
pub struct BuilderSeed<'a> {
    /// Instance id; a new one makes cloud-init run again.
    pub instance_id: &'a str,
    pub hostname: &'a str,
    /// The user oxbake logs in as (passwordless sudo).
    pub user: &'a str,
    /// `ssh-ed25519 AAAA… comment` line of the key oxbake logs in with.
    pub authorized_key: &'a str,
    /// The guest's ed25519 host key pair, so the caller can pin it.
    pub host_key: HostKey<'a>,
    /// Match the NIC by MAC address instead of by the name `eth0`.
    pub mac: Option<&'a str>,
    /// A group the user must belong to from the first boot on (an image
    /// whose sshd lets only one group in); cloud-init creates it if needed.
    pub group: Option<&'a str>,
    /// An HTTP proxy for apt (`http://10.0.2.2:PORT/`: oxbake's package
    /// cache), written to [`APT_PROXY_CONF`] at the first boot. The
    /// clean-up removes the file again.
    pub apt_proxy: Option<&'a str>,
}

/// Where a builder's apt proxy setting lives while the builder runs.
pub const APT_PROXY_CONF: &str = "/etc/apt/apt.conf.d/00oxbake-proxy";

/// The apt settings that send a builder's `http://` downloads through
/// `proxy`; gzip indices first, which the package cache reads to learn the
/// packages' hashes (`https://` repositories go direct, uncached).
pub fn apt_proxy_conf(proxy: &str) -> String {
    format!("Acquire::http::Proxy \"{proxy}\";\nAcquire::CompressionTypes::Order {{ \"gz\"; }};\n")
}

/// An OpenSSH ed25519 host key pair (private key in OpenSSH PEM form).
#[derive(Clone)]
pub struct HostKey<'a> {
    pub private_openssh: &'a str,
    pub public_openssh: &'a str,
}

impl std::fmt::Debug for HostKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("private_openssh", &"<redacted>")
            .field("public_openssh", &self.public_openssh)
            .finish()
    }
}

/// Builds the three NoCloud documents of a builder VM.
pub fn builder_seed(seed: &BuilderSeed<'_>) -> CloudInit {
    CloudInit {
        user_data: cloud_config(&builder_user_data(seed)),
        meta_data: meta_data(seed.instance_id, seed.hostname),
        network_config: Some(dhcp_network_config(seed.mac)),
    }
}

/// Renders a `#cloud-config` document from a JSON value.
pub fn cloud_config(doc: &Value) -> String {
    // Serialising a `Value` cannot fail: every key is a string.
    let body = serde_json::to_string_pretty(doc).unwrap_or_default();
    format!("#cloud-config\n{body}\n")
}

fn builder_user_data(seed: &BuilderSeed<'_>) -> Value {
    let mut doc = json!({
        "users": [{
            "name": seed.user,
            "shell": "/bin/bash",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "lock_passwd": true,
            "ssh_authorized_keys": [seed.authorized_key.trim()],
        }],
        "disable_root": true,
        "ssh_pwauth": false,
        "ssh_deletekeys": true,
        "ssh_genkeytypes": [],
        "ssh_keys": {
            "ed25519_private": seed.host_key.private_openssh,
            "ed25519_public": seed.host_key.public_openssh.trim(),
        },
    });
    if let Some(group) = seed.group {
        doc["users"][0]["groups"] = json!(group);
    }
    if let Some(proxy) = seed.apt_proxy {
        doc["write_files"] = json!([{
            "path": APT_PROXY_CONF,
            "content": apt_proxy_conf(proxy),
            "permissions": "0644",
        }]);
    }
    doc
}

/// The meta-data document: instance id and host name.
pub fn meta_data(instance_id: &str, hostname: &str) -> String {
    let doc = json!({ "instance-id": instance_id, "local-hostname": hostname });
    format!("{}\n", doc)
}

/// A network-config (version 2) that runs DHCPv4 on the one NIC, `eth0`
/// (oxbake's base image boots with `net.ifnames=0`), or on the NIC with `mac`.
pub fn dhcp_network_config(mac: Option<&str>) -> String {
    let nic = match mac {
        Some(mac) => json!({
            "match": { "macaddress": mac.to_ascii_lowercase() },
            "set-name": "eth0",
            "dhcp4": true,
        }),
        None => json!({ "dhcp4": true }),
    };
    let doc = json!({ "version": 2, "ethernets": { "eth0": nic } });
    format!("{}\n", doc)
}

/// Writes a NoCloud seed ISO (volume label `cidata`) at `iso` with `xorriso`.
/// The documents pass through a private (0700) temporary folder.
pub async fn write_seed_iso(data: &CloudInit, iso: &Path) -> Result<(), TargetError> {
    let dir = tempfile::Builder::new()
        .prefix("oxbake-seed-")
        .tempdir()
        .map_err(|source| TargetError::io(std::env::temp_dir(), source))?;
    write_private(&dir.path().join("user-data"), &data.user_data).await?;
    write_private(&dir.path().join("meta-data"), &data.meta_data).await?;
    if let Some(net) = &data.network_config {
        write_private(&dir.path().join("network-config"), net).await?;
    }
    let mut cmd = tokio::process::Command::new("xorriso");
    cmd.args([
        "-as", "mkisofs", "-quiet", "-volid", "cidata", "-joliet", "-rock",
    ])
    .arg("-output")
    .arg(iso)
    .arg(dir.path());
    super::exec::run(&mut cmd).await?;
    set_mode(iso, 0o600).await
}

async fn write_private(path: &Path, text: &str) -> Result<(), TargetError> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .await
        .map_err(|source| TargetError::io(path, source))?;
    file.write_all(text.as_bytes())
        .await
        .map_err(|source| TargetError::io(path, source))?;
    // A tokio file finishes its last write in the background: without the
    // flush, xorriso could read the file while it still grows.
    file.flush()
        .await
        .map_err(|source| TargetError::io(path, source))
}

async fn set_mode(path: &Path, mode: u32) -> Result<(), TargetError> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|source| TargetError::io(path, source))
}

#[cfg(test)]
mod tests;
