//! The `local` target: QEMU on this machine. Templates are read-only qcow2
//! files, VM disks are qcow2 overlays on them (so templates of roles built
//! on other roles form backing chains), cloud-init reads a NoCloud seed ISO,
//! and SSH reaches the guest through a forwarded port on 127.0.0.1.
//!
//! State lives in `<project>/.oxbake/local/` (see [`state`]); nothing else
//! records which VMs exist, so `list_vms` is also what `gc` uses. A deployed
//! VM is also on its environment's segment (see [`segment`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

pub mod accel;
pub mod base;
mod base_disk;
pub mod base_meta;
mod base_rootfs;
mod console;
mod files;
pub mod flatten;
pub mod image_fs;
pub mod import;
mod lifecycle;
mod netdev;
mod ownership;
pub mod port;
mod power;
mod process;
mod qcow2;
mod qemu;
mod qmp;
pub mod segment;
mod segment_use;
pub mod state;
mod templates;
mod verify;
pub(crate) mod work_dir;

pub use accel::AccelMode;
pub use qemu::Accel;

use crate::progress::Progress;
use crate::suite::Suite;
use crate::target::{
    CloudInit, ManagedVm, NetworkLeftover, Target, TargetError, TemplateMeta, TemplatePresence,
    TemplateRef, VmHandle, VmNetwork, VmNics, VmSpec,
};
use state::StateDir;

/// QEMU on this machine.
#[derive(Debug, Clone)]
pub struct LocalTarget {
    state: StateDir,
    /// The image behind `Source::Base(suite)`, per suite.
    base_images: BTreeMap<Suite, PathBuf>,
    accel: AccelMode,
    /// Where `auto`'s verdict is kept for later processes of this boot.
    accel_cache: Option<PathBuf>,
    progress: Progress,
}

impl LocalTarget {
    /// A target whose state lives under `project_dir/.oxbake/local`.
    /// `base_image` backs VMs created from `Source::Base(Suite::Bookworm)`
    /// (see [`base_meta::current`]); no other suite has a base.
    pub fn new(
        project_dir: &Path,
        base_image: Option<PathBuf>,
        accel: AccelMode,
        progress: Progress,
    ) -> Self {
        let images = base_image.map(|image| (Suite::Bookworm, image));
        Self::with_bases(project_dir, images.into_iter().collect(), accel, progress)
    }

    /// [`LocalTarget::new`] with the base image of each suite it has.
    pub fn with_bases(
        project_dir: &Path,
        base_images: BTreeMap<Suite, PathBuf>,
        accel: AccelMode,
        progress: Progress,
    ) -> Self {
        Self {
            state: StateDir::new(project_dir),
            base_images,
            accel,
            accel_cache: None,
            progress,
        }
    }

    /// Keeps `auto`'s accelerator verdict in `cache_dir` (oxbake's cache
    /// folder), so that later processes of this host boot do not probe.
    pub fn with_accel_cache(mut self, cache_dir: PathBuf) -> Self {
        self.accel_cache = Some(cache_dir);
        self
    }

    pub fn state_dir(&self) -> &Path {
        self.state.root()
    }

    /// The serial console capture of a VM (for failure reports).
    pub fn serial_log(&self, vm: &VmHandle) -> PathBuf {
        self.state.vm(&vm.id).serial_log()
    }
}

#[async_trait]
impl Target for LocalTarget {
    fn kind(&self) -> &'static str {
        "local"
    }

    async fn create_vm(&self, spec: &VmSpec) -> Result<VmHandle, TargetError> {
        lifecycle::create(self, spec).await
    }

    fn nics(&self, network: &VmNetwork) -> VmNics {
        netdev::nics(network)
    }

    async fn set_cloud_init(&self, vm: &VmHandle, data: &CloudInit) -> Result<(), TargetError> {
        lifecycle::set_cloud_init(self, vm, data).await
    }

    async fn start(&self, vm: &VmHandle) -> Result<(), TargetError> {
        accel::recall(self).await;
        lifecycle::start(self, vm).await
    }

    async fn ssh_endpoint(
        &self,
        vm: &VmHandle,
        timeout: Duration,
    ) -> Result<SocketAddr, TargetError> {
        lifecycle::ssh_endpoint(self, vm, timeout).await
    }

    async fn shutdown(&self, vm: &VmHandle, timeout: Duration) -> Result<bool, TargetError> {
        lifecycle::shutdown(self, vm, timeout).await
    }

    /// The local target keeps template metadata in the registry only.
    async fn make_template(
        &self,
        vm: &VmHandle,
        name: &str,
        _meta: &TemplateMeta,
    ) -> Result<TemplateRef, TargetError> {
        templates::make(self, vm, name).await
    }

    async fn template_size(&self, template: &TemplateRef) -> Result<Option<u64>, TargetError> {
        templates::size(template).await
    }

    async fn disk_size(&self, vm: &VmHandle) -> Result<Option<u64>, TargetError> {
        templates::allocated(&self.state.vm(&vm.id).disk())
            .await
            .map(Some)
    }

    async fn destroy(&self, vm: &VmHandle) -> Result<(), TargetError> {
        lifecycle::destroy(self, vm).await
    }

    async fn verify_template(
        &self,
        template: &TemplateRef,
        expected: &TemplateMeta,
    ) -> Result<TemplatePresence, TargetError> {
        ownership::verify(self, template, expected).await
    }

    async fn destroy_template(
        &self,
        template: &TemplateRef,
        expected: &TemplateMeta,
    ) -> Result<(), TargetError> {
        match ownership::verify(self, template, expected).await? {
            TemplatePresence::Gone => Ok(()),
            TemplatePresence::Ours => templates::destroy(self, template).await,
        }
    }

    async fn list_vms(&self) -> Result<Vec<ManagedVm>, TargetError> {
        lifecycle::list(self).await
    }

    async fn sweep_networks(&self, dry_run: bool) -> Result<Vec<NetworkLeftover>, TargetError> {
        segment_use::sweep(self, dry_run).await
    }

    async fn list_templates(&self) -> Result<Vec<TemplateRef>, TargetError> {
        templates::list(self).await
    }
}

#[cfg(test)]
mod tests;
