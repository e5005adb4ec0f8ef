//! Calls on one QEMU guest: clone, config, resize, power, template, destroy.
//! Calls that start a worker return its UPID text; callers pass it to
//! [`PveClient::finish`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::form::Form;
use super::lenient;
use super::{PveClient, PveError, Upid, upid};

/// A guest on a node.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VmRef {
    pub node: String,
    pub vmid: u32,
}

impl VmRef {
    pub fn path(&self, rest: &str) -> String {
        format!("/nodes/{}/qemu/{}{rest}", self.node, self.vmid)
    }
}

/// `POST …/clone` parameters.
#[derive(Debug, Clone, Default)]
pub struct CloneRequest {
    pub newid: u32,
    pub name: Option<String>,
    /// Full copy; `false` makes a linked clone (source must be a template).
    pub full: bool,
    pub target: Option<String>,
    /// Only for full clones (Proxmox refuses it for linked ones).
    pub storage: Option<String>,
    pub pool: Option<String>,
    pub description: Option<String>,
}

/// `GET …/status/current`.
#[derive(Debug, Clone, Deserialize)]
pub struct VmStatus {
    /// `running` or `stopped`.
    pub status: String,
    #[serde(default)]
    pub qmpstatus: Option<String>,
    #[serde(default)]
    pub lock: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub template: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_int")]
    pub pid: Option<u64>,
}

impl VmStatus {
    pub fn is_running(&self) -> bool {
        self.status == "running"
    }
}

/// `GET …/config`: every option as Proxmox returns it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmConfig(pub BTreeMap<String, Value>);

impl VmConfig {
    /// An option as text (numbers printed).
    pub fn get(&self, key: &str) -> Option<String> {
        self.0.get(key).and_then(lenient::as_text)
    }

    /// The MAC address of `net0` (`virtio=BC:24:11:…,bridge=vmbr0`).
    pub fn net0_mac(&self) -> Option<String> {
        let net0 = self.get("net0")?;
        net0.split(',').find_map(|part| {
            let (k, v) = part.split_once('=')?;
            let is_model = !matches!(
                k,
                "bridge" | "firewall" | "link_down" | "mtu" | "queues" | "rate" | "tag" | "trunks"
            );
            (k == "macaddr" || is_model)
                .then(|| v.to_string())
                .filter(|v| v.split(':').count() == 6)
        })
    }

    /// The disk options (`scsi0`, `virtio0`, …) that are not CD-ROMs.
    pub fn disks(&self) -> Vec<(String, String)> {
        let buses = ["scsi", "virtio", "sata", "ide"];
        self.0
            .keys()
            .filter(|k| {
                buses.iter().any(|b| {
                    k.strip_prefix(b)
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
                })
            })
            .filter_map(|k| Some((k.clone(), self.get(k)?)))
            .filter(|(_, v)| !v.contains("media=cdrom") && !v.contains("cloudinit"))
            .collect()
    }
}

impl PveClient {
    pub async fn clone_vm(&self, src: &VmRef, req: &CloneRequest) -> Result<Upid, PveError> {
        let form = Form::new()
            .int("newid", req.newid)
            .opt_text("name", req.name.clone())
            .flag("full", req.full)
            .opt_text("target", req.target.clone())
            .opt_text("storage", req.storage.clone().filter(|_| req.full))
            .opt_text("pool", req.pool.clone())
            .opt_text("description", req.description.clone());
        self.post::<String>(&src.path("/clone"), form)
            .await?
            .parse()
    }

    /// `POST /nodes/{node}/qemu`: a new guest with the options in `form`
    /// (`vmid` included).
    pub async fn create_vm(&self, node: &str, form: Form) -> Result<Upid, PveError> {
        self.post::<String>(&format!("/nodes/{node}/qemu"), form)
            .await?
            .parse()
    }

    pub async fn vm_config(&self, vm: &VmRef) -> Result<VmConfig, PveError> {
        self.get(&vm.path("/config"), Form::new()).await
    }

    /// `POST …/config` (asynchronous; the answer is a task or null).
    pub async fn set_config(&self, vm: &VmRef, form: Form) -> Result<Option<Upid>, PveError> {
        upid::answer(self.post(&vm.path("/config"), form).await?)
    }

    /// `PUT …/resize`, e.g. `size` = `20G` (absolute) or `+2G`.
    pub async fn resize(
        &self,
        vm: &VmRef,
        disk: &str,
        size: &str,
    ) -> Result<Option<Upid>, PveError> {
        let form = Form::new().text("disk", disk).text("size", size);
        upid::answer(self.put(&vm.path("/resize"), form).await?)
    }

    pub async fn vm_status(&self, vm: &VmRef) -> Result<VmStatus, PveError> {
        self.get(&vm.path("/status/current"), Form::new()).await
    }

    pub async fn start_vm(&self, vm: &VmRef) -> Result<Upid, PveError> {
        self.post::<String>(&vm.path("/status/start"), Form::new())
            .await?
            .parse()
    }

    /// ACPI or agent shutdown; the task fails after `timeout_secs` (no
    /// forced stop: the caller decides).
    pub async fn shutdown_vm(&self, vm: &VmRef, timeout_secs: u64) -> Result<Upid, PveError> {
        let form = Form::new().int("timeout", timeout_secs);
        self.post::<String>(&vm.path("/status/shutdown"), form)
            .await?
            .parse()
    }

    /// Hard stop; `overrule` aborts a running shutdown task first.
    pub async fn stop_vm(&self, vm: &VmRef, overrule: bool) -> Result<Upid, PveError> {
        let form = if overrule {
            Form::new().flag("overrule-shutdown", true)
        } else {
            Form::new()
        };
        self.post::<String>(&vm.path("/status/stop"), form)
            .await?
            .parse()
    }

    pub async fn convert_to_template(&self, vm: &VmRef) -> Result<Option<Upid>, PveError> {
        upid::answer(self.post(&vm.path("/template"), Form::new()).await?)
    }

    /// Removes the guest, its disks (also unreferenced ones) and its entries
    /// in backup jobs, replication and HA.
    pub async fn destroy_vm(&self, vm: &VmRef) -> Result<Upid, PveError> {
        let query = Form::new()
            .flag("purge", true)
            .flag("destroy-unreferenced-disks", true);
        self.delete::<String>(&vm.path(""), query).await?.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net0_mac_and_disks_are_found() {
        let cfg: VmConfig = serde_json::from_value(serde_json::json!({
            "net0": "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1",
            "net1": "bridge=vmbr1,macaddr=BC:24:11:00:00:01,model=e1000",
            "scsi0": "local-lvm:vm-101-disk-0,size=8G",
            "ide2": "local:iso/seed.iso,media=cdrom",
            "ide0": "local-lvm:vm-101-cloudinit,media=cdrom",
            "scsihw": "virtio-scsi-pci",
            "memory": "2048", "cores": 2
        }))
        .unwrap();
        assert_eq!(cfg.net0_mac().as_deref(), Some("BC:24:11:AA:BB:CC"));
        assert_eq!(cfg.get("memory").as_deref(), Some("2048"));
        assert_eq!(cfg.get("cores").as_deref(), Some("2"));
        assert_eq!(
            cfg.disks(),
            [(
                "scsi0".to_string(),
                "local-lvm:vm-101-disk-0,size=8G".to_string()
            )]
        );
    }
}
