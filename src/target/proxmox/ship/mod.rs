//! Shipping a disk image to Proxmox through the API alone (`oxbake
//! publish`): upload it as an `import` volume (Proxmox verifies its
//! sha256), create a VM whose disk is imported from it
//! (`scsi0=STORAGE:0,import-from=VOLID`), then the caller converts the VM
//! ([`crate::target::Target::make_template`]) and removes the volume.
//!
//! Each step removes what it made when it fails: a failed or cut-off
//! upload leaves no volume (Proxmox discards a partial upload; one that
//! went unanswered is looked for and removed), a failed create no VM. The
//! VM carries the run's labels from the start, so one whose create went
//! unanswered, or whose run was interrupted, is found by them (see
//! `Target::list_vms`) and removed by the caller's clean-up or `oxbake gc`;
//! the volume is named after the run ([`upload_name`]), so `oxbake gc`
//! removes one a killed run left ([`sweep`]).

mod checks;
mod error;
mod sweep;

use std::collections::BTreeSet;
use std::path::Path;

pub use checks::{OLDEST, preflight};
pub use error::ShipError;
pub(super) use sweep::sweep;
pub use sweep::upload_name;

use super::destroy::cleanup;
use super::form::Form;
use super::labels;
use super::vm::VmRef;
use super::{ProxmoxTarget, PveError, handle, vmid};
use crate::target::{Labels, VmHandle, validate_name};

/// How often a create is retried with a new id after "already exists".
const ID_ATTEMPTS: usize = 8;

/// The VM to make from an uploaded image.
#[derive(Debug, Clone)]
pub struct ImageVm {
    /// The VM's name until it becomes a template.
    pub name: String,
    pub cores: u32,
    pub memory_mib: u32,
    pub labels: Labels,
}

impl ProxmoxTarget {
    /// The storage that receives `import` volumes: `import_storage`, else
    /// `iso_storage`.
    pub fn import_storage(&self) -> &str {
        self.settings
            .import_storage
            .as_deref()
            .unwrap_or(&self.settings.iso_storage)
    }

    /// The volume id an upload named `filename` becomes.
    pub fn import_volid(&self, filename: &str) -> String {
        format!("{}:import/{filename}", self.import_storage())
    }

    /// Uploads `file` (a qcow2 whose sha256 is `sha256`) as the import
    /// volume `filename` (see [`upload_name`]) and waits until Proxmox has
    /// stored and verified it; returns the volume id. On failure nothing of
    /// the upload is left.
    pub async fn upload_image(
        &self,
        file: &Path,
        sha256: &str,
        filename: &str,
    ) -> Result<String, ShipError> {
        let ok_name = filename.ends_with(".qcow2")
            && !filename.starts_with('.')
            && filename
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok_name {
            return Err(ShipError::InvalidName(filename.to_owned()));
        }
        let (node, storage) = (self.node(), self.import_storage());
        let volid = self.import_volid(filename);
        let uploaded = async {
            let answer = self
                .client
                .upload_import(node, storage, filename, file, sha256)
                .await?;
            self.client.finish(answer, self.task_timeout).await
        };
        if let Err(e) = uploaded.await {
            self.remove_partial(&volid).await;
            return Err(ShipError::Step {
                what: format!("uploading `{}` as `{volid}`", file.display()),
                source: e,
            });
        }
        Ok(volid)
    }

    /// Whether the import volume `volid` is on the import storage.
    async fn has_volume(&self, volid: &str) -> Result<bool, ShipError> {
        let (node, storage) = (self.node(), self.import_storage());
        let volumes = self
            .client
            .list_volumes(node, storage, "import")
            .await
            .map_err(ShipError::step(format!(
                "listing the import volumes of `{storage}`"
            )))?;
        Ok(volumes.iter().any(|v| v == volid))
    }

    /// Removes the import volume `volid`; one that is not there is fine.
    pub async fn remove_image(&self, volid: &str) -> Result<(), ShipError> {
        let (node, storage) = (self.node(), self.import_storage());
        let what = || format!("removing `{volid}`");
        let answer = match self.client.delete_volume(node, storage, volid).await {
            Ok(answer) => answer,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(ShipError::step(what())(e)),
        };
        self.client
            .finish(answer, self.task_timeout)
            .await
            .map_err(ShipError::step(what()))
    }

    /// After a failed upload: removes the volume if Proxmox made it
    /// anyway (an upload whose answer was lost); never fails.
    pub async fn remove_partial(&self, volid: &str) {
        let removed = match self.has_volume(volid).await {
            Ok(false) => Ok(()),
            Ok(true) => self.remove_image(volid).await,
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            self.progress.warn(format!(
                "`{volid}` may be left on the storage: {}; remove it by hand",
                e.chained()
            ));
        }
    }

    /// Creates a stopped VM whose first disk is imported from `volid` onto
    /// `storage`, with a fresh VMID from `vmid_range`. On failure the VM
    /// is removed (when it proves to be the one this call made).
    pub async fn create_from_image(
        &self,
        volid: &str,
        spec: &ImageVm,
    ) -> Result<VmHandle, ShipError> {
        validate_name(&spec.name).map_err(|_| ShipError::InvalidName(spec.name.clone()))?;
        let node = self.node().to_owned();
        let what = format!("creating vm `{}` from `{volid}`", spec.name);
        let mut taken = BTreeSet::new();
        for _ in 0..ID_ATTEMPTS {
            let mut used: BTreeSet<u32> = self
                .client
                .vm_resources()
                .await
                .map_err(ShipError::step(what.clone()))?
                .iter()
                .filter_map(|r| u32::try_from(r.vmid).ok())
                .collect();
            used.extend(&taken);
            let held = vmid::reserve(&self.reserved, &used, self.settings.vmid_range)
                .map_err(ShipError::step(what.clone()))?;
            let vm = VmRef {
                node: node.clone(),
                vmid: held.vmid,
            };
            let form = self.create_form(held.vmid, volid, spec);
            let made = match self.client.create_vm(&node, form).await {
                Ok(upid) => self.client.finish(Some(upid), self.task_timeout).await,
                Err(e) if e.message().contains("already exists") => {
                    taken.insert(held.vmid);
                    self.progress.info(format!(
                        "vmid {} was taken meanwhile; trying the next",
                        held.vmid
                    ));
                    continue;
                }
                Err(e) => Err(e),
            };
            return match made {
                Ok(()) => Ok(handle(&spec.name, &vm)),
                Err(e) => {
                    self.remove_if_named(&vm, &spec.name).await;
                    Err(ShipError::Step { what, source: e })
                }
            };
        }
        let [lo, hi] = self.settings.vmid_range;
        Err(ShipError::step(what)(PveError::NoFreeVmid { lo, hi }))
    }

    /// `POST /nodes/{node}/qemu`: a VM like a builder's, its disk imported.
    fn create_form(&self, vmid: u32, volid: &str, spec: &ImageVm) -> Form {
        let s = &self.settings;
        Form::new()
            .int("vmid", vmid)
            .text("name", spec.name.clone())
            .text("ostype", "l26")
            .text("scsihw", "virtio-scsi-pci")
            .text("scsi0", format!("{}:0,import-from={volid}", s.storage))
            .text("boot", "order=scsi0")
            .int("cores", spec.cores)
            .int("memory", spec.memory_mib)
            .text("net0", format!("virtio,bridge={}", s.bridge))
            .text("serial0", "socket")
            .flag("agent", true)
            .text("tags", labels::vm_tags(&spec.labels).join(";"))
            .text("description", labels::vm_description(&spec.labels))
            .opt_text("pool", s.pool.clone())
    }

    /// Removes the VM at `vm` if it is there and named `name` (a create
    /// that failed may have left it; an id another client took is left
    /// alone). Never fails: the caller reports its own error.
    async fn remove_if_named(&self, vm: &VmRef, name: &str) {
        match self.client.vm_config(vm).await {
            Ok(config) if config.get("name").as_deref() == Some(name) => cleanup(self, vm).await,
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => self.progress.warn(format!(
                "vm {} on `{}` may be left over ({e}); `oxbake gc` removes it by its labels",
                vm.vmid, vm.node
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_form_imports_the_disk() {
        let settings = crate::config::ProxmoxSettings {
            endpoint: "https://pve:8006".into(),
            nodes: vec!["pve1".into()],
            storage: "local-lvm".into(),
            bridge: "vmbr0".into(),
            pool: Some("oxbake".into()),
            vmid_range: [200, 299],
            base_template: 9000,
            base_templates: Default::default(),
            token_id: "a@pve!t".into(),
            token_secret_env: "X".into(),
            ca_file: None,
            fingerprint: None,
            iso_storage: "local".into(),
            import_storage: None,
            full_clone: false,
            ssh_forward: None,
            request_timeout: 120,
            task_timeout: 600,
            deploy_jobs: 4,
            build_jobs: 2,
        };
        let token = super::super::ApiToken::new("a@pve!t", "s".into()).unwrap();
        let client = super::super::PveClient::new(
            "https://pve:8006",
            &token,
            &super::super::TlsTrust::SystemRoots,
        )
        .unwrap();
        let t = ProxmoxTarget::new(client, settings, crate::progress::Progress::silent());
        assert_eq!(t.import_storage(), "local");
        let volid = t.import_volid("oxbake-web-2026.12.06.1.qcow2");
        assert_eq!(volid, "local:import/oxbake-web-2026.12.06.1.qcow2");
        let spec = ImageVm {
            name: "publish-web-r1".into(),
            cores: 2,
            memory_mib: 2048,
            labels: Labels::new("r1", "web", crate::target::VmKind::Builder),
        };
        let form = t.create_form(201, &volid, &spec);
        let get = |k: &str| {
            form.pairs()
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("scsi0").as_deref(),
            Some("local-lvm:0,import-from=local:import/oxbake-web-2026.12.06.1.qcow2")
        );
        assert_eq!(get("vmid").as_deref(), Some("201"));
        assert_eq!(get("pool").as_deref(), Some("oxbake"));
        assert_eq!(get("template"), None, "never created as a template");
        assert!(get("tags").unwrap().contains("kind-builder"));
    }
}
