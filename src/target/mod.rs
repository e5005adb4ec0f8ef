//! Targets: where VMs live. Build, promote and deploy are written once
//! against [`Target`]; `local` runs QEMU on this machine, `proxmox` talks to
//! a Proxmox VE cluster.
//!
//! The trait is deliberately narrow: each method maps onto one or two
//! Proxmox API calls (clone, config, start, shutdown/stop, agent
//! network-get-interfaces, template, destroy, list by tags) and onto a few
//! files and one QEMU process locally.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;

mod bases;
pub mod cloudinit;
pub mod deadline;
mod error;
pub(crate) mod exec;
pub mod local;
mod open;
pub mod proxmox;
pub(crate) mod ssh_probe;
mod types;

pub use bases::BaseIdentities;
pub use deadline::{Deadline, Expired};
pub use error::TargetError;
pub use open::{OpenTarget, open, open_proxmox};
pub use types::{
    Artifact, CloudInit, Labels, ManagedVm, NetworkLeftover, Source, TemplateMeta,
    TemplatePresence, TemplateRef, UploadLeftover, VmHandle, VmKind, VmLabels, VmNetwork, VmNics,
    VmSpec, VmState,
};

/// A place where oxbake creates, runs and templates VMs.
#[async_trait]
pub trait Target: Send + Sync {
    /// Short name for messages (`local`, `proxmox`).
    fn kind(&self) -> &'static str;

    /// Creates a stopped VM from the base image or a template. The VM carries
    /// the spec's labels, so [`Target::list_vms`] can find leftovers.
    async fn create_vm(&self, spec: &VmSpec) -> Result<VmHandle, TargetError>;

    /// The NICs a deployed VM on `network` gets; its seed's network-config
    /// describes them (matched by MAC where there are several).
    fn nics(&self, network: &VmNetwork) -> VmNics {
        let _ = network;
        VmNics::Bridged
    }

    /// Sets the NoCloud data the VM reads at its next boot (VM stopped).
    async fn set_cloud_init(&self, vm: &VmHandle, data: &CloudInit) -> Result<(), TargetError>;

    async fn start(&self, vm: &VmHandle) -> Result<(), TargetError>;

    /// Waits until the guest's SSH server answers and returns its address
    /// (local: `127.0.0.1:forwarded-port`; proxmox: the address the guest
    /// agent reports).
    async fn ssh_endpoint(
        &self,
        vm: &VmHandle,
        timeout: Duration,
    ) -> Result<SocketAddr, TargetError>;

    /// Asks the guest to power off (ACPI or guest agent); forces it off when
    /// it is still running after `timeout`. Returns `true` if it had to force.
    async fn shutdown(&self, vm: &VmHandle, timeout: Duration) -> Result<bool, TargetError>;

    /// Turns a stopped VM into the template `name` (`ROLE-VERSION`). The VM
    /// is consumed: afterwards only the template exists. `meta` is recorded
    /// where the target keeps template metadata (proxmox: tags and the
    /// description's JSON block); targets that keep it elsewhere ignore it.
    async fn make_template(
        &self,
        vm: &VmHandle,
        name: &str,
        meta: &TemplateMeta,
    ) -> Result<TemplateRef, TargetError>;

    /// The bytes `template` takes on its storage, if the target can tell
    /// (recorded with the image and shown by `oxbake show`).
    async fn template_size(&self, _template: &TemplateRef) -> Result<Option<u64>, TargetError> {
        Ok(None)
    }

    /// The bytes the VM's own disk takes on its storage now, if the target
    /// can tell (a build shows what trimming its free space saved).
    async fn disk_size(&self, _vm: &VmHandle) -> Result<Option<u64>, TargetError> {
        Ok(None)
    }

    /// Stops the VM if needed and removes everything that belongs to it.
    /// Destroying a VM that no longer exists is not an error.
    async fn destroy(&self, vm: &VmHandle) -> Result<(), TargetError>;

    /// Proves, changing nothing, that `template` is the image `expected`
    /// describes (the record's role, version and inputs hash): the template
    /// where the record says it is must carry the name `ROLE-VERSION` and
    /// its own metadata must name the same image (proxmox: the description's
    /// JSON block; local: the template's metadata file and checksum). A
    /// template that is there but does not prove it is
    /// [`TargetError::NotTheRecordedTemplate`], naming what did not match.
    async fn verify_template(
        &self,
        template: &TemplateRef,
        expected: &TemplateMeta,
    ) -> Result<TemplatePresence, TargetError>;

    /// Removes a template (retention) after proving it is `expected`, as
    /// [`Target::verify_template`] does; a template that is gone is not an
    /// error, one that does not prove it is stays. Templates that others
    /// build on must be kept by the caller; whether another record claims
    /// the same template is the registry's to know, so the caller checks it
    /// (see `pipeline::ownership`).
    async fn destroy_template(
        &self,
        template: &TemplateRef,
        expected: &TemplateMeta,
    ) -> Result<(), TargetError>;

    /// The VMs this target manages, with their labels and state.
    async fn list_vms(&self) -> Result<Vec<ManagedVm>, TargetError>;

    /// Networks the target made for environments (local: a segment's
    /// switch) that no VM uses any more; unless `dry_run`, removes those it
    /// proves its own. Targets whose networks are the operator's (proxmox:
    /// the bridge) have none.
    async fn sweep_networks(&self, dry_run: bool) -> Result<Vec<NetworkLeftover>, TargetError> {
        let _ = dry_run;
        Ok(Vec::new())
    }

    /// Disk images runs uploaded (proxmox: the `import` volumes `oxbake
    /// publish` names after its run) whose run has ended, as `ended` says
    /// of a run id; unless `dry_run`, removed. Targets nothing is uploaded
    /// to have none.
    async fn sweep_uploads(
        &self,
        ended: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
        dry_run: bool,
    ) -> Result<Vec<UploadLeftover>, TargetError> {
        let _ = (ended, dry_run);
        Ok(Vec::new())
    }

    /// The templates this target manages.
    async fn list_templates(&self) -> Result<Vec<TemplateRef>, TargetError>;

    /// Marks `template` as what `channels` run (proxmox: one `ch-CHANNEL` tag
    /// each, replacing the template's earlier `ch-` tags, read back to
    /// verify). Targets that keep no metadata on templates do nothing: the
    /// registry is the record.
    async fn set_template_channels(
        &self,
        template: &TemplateRef,
        channels: &[String],
    ) -> Result<(), TargetError> {
        let _ = (template, channels);
        Ok(())
    }

    /// Takes away a running VM's NoCloud seed once it has been read (proxmox:
    /// ejects and deletes the uploaded ISO, which may hold secrets). Targets
    /// that keep the seed private to the VM (local: a 0600 file in the VM's
    /// 0700 folder) do nothing.
    async fn remove_cloud_init(&self, vm: &VmHandle) -> Result<(), TargetError> {
        let _ = vm;
        Ok(())
    }
}

/// Names of VMs and templates: they become folder and file names locally and
/// VM names on Proxmox, so only a portable character set is allowed.
pub fn validate_name(name: &str) -> Result<(), TargetError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let ok = !name.is_empty()
        && name.len() <= 63
        && !name.starts_with(['.', '-'])
        && name.chars().all(ok_char);
    if ok {
        Ok(())
    } else {
        Err(TargetError::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_portable() {
        for good in ["web-1.2.0", "base-20260101.1", "run_7-builder"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "-x", "a/b", "a b", "ä", &"x".repeat(64)] {
            let err = validate_name(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid name `{bad}`: use letters, digits, `.`, `_` and `-`")
            );
        }
    }
}
