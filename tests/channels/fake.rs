//! A target whose VMs never boot: promotion reaches its smoke test and the
//! test fails there, without a guest.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use oxbake::target::{
    CloudInit, ManagedVm, Target, TargetError, TemplateMeta, TemplatePresence, TemplateRef,
    VmHandle, VmSpec,
};

#[derive(Default)]
pub struct NoBoot {
    /// The templates smoke VMs were asked to clone.
    pub cloned: Mutex<Vec<String>>,
    /// Every `set_template_channels` call.
    pub marks: Mutex<Vec<(String, Vec<String>)>>,
}

#[async_trait]
impl Target for NoBoot {
    fn kind(&self) -> &'static str {
        "noboot"
    }

    async fn create_vm(&self, spec: &VmSpec) -> Result<VmHandle, TargetError> {
        if let oxbake::target::Source::Template(t) = &spec.source {
            self.cloned.lock().unwrap().push(t.name.clone());
        }
        Err(TargetError::Start {
            name: spec.name.clone(),
            message: "this target boots nothing".into(),
        })
    }

    async fn set_cloud_init(&self, vm: &VmHandle, _: &CloudInit) -> Result<(), TargetError> {
        Err(TargetError::VmNotFound(vm.name.clone()))
    }

    async fn start(&self, vm: &VmHandle) -> Result<(), TargetError> {
        Err(TargetError::VmNotFound(vm.name.clone()))
    }

    async fn ssh_endpoint(&self, vm: &VmHandle, _: Duration) -> Result<SocketAddr, TargetError> {
        Err(TargetError::VmNotFound(vm.name.clone()))
    }

    async fn shutdown(&self, vm: &VmHandle, _: Duration) -> Result<bool, TargetError> {
        Err(TargetError::VmNotFound(vm.name.clone()))
    }

    async fn make_template(
        &self,
        vm: &VmHandle,
        _: &str,
        _: &TemplateMeta,
    ) -> Result<TemplateRef, TargetError> {
        Err(TargetError::VmNotFound(vm.name.clone()))
    }

    async fn destroy(&self, _: &VmHandle) -> Result<(), TargetError> {
        Ok(())
    }

    async fn verify_template(
        &self,
        _: &TemplateRef,
        _: &TemplateMeta,
    ) -> Result<TemplatePresence, TargetError> {
        Ok(TemplatePresence::Ours)
    }

    async fn destroy_template(&self, _: &TemplateRef, _: &TemplateMeta) -> Result<(), TargetError> {
        Ok(())
    }

    async fn list_vms(&self) -> Result<Vec<ManagedVm>, TargetError> {
        Ok(Vec::new())
    }

    async fn list_templates(&self) -> Result<Vec<TemplateRef>, TargetError> {
        Ok(Vec::new())
    }

    async fn set_template_channels(
        &self,
        template: &TemplateRef,
        channels: &[String],
    ) -> Result<(), TargetError> {
        self.marks
            .lock()
            .unwrap()
            .push((template.name.clone(), channels.to_vec()));
        Ok(())
    }
}
