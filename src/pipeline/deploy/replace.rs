//! Stop-first replacement: the new VM takes the old one's static address,
//! so the two never run at once. The old VM is stopped (kept, with its
//! disks), the new one is made and proven healthy, then the old one is
//! destroyed. If the new one fails (or the deploy is stopped meanwhile),
//! the new one is removed and the old one started again and proven
//! healthy: a failed replacement costs one boot and loses nothing.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use super::line::VmLine;
use super::plan::Existing;
use super::{DeployError, Deployer, Wanted};
use crate::guest::ClientKey;
use crate::target::VmHandle;

/// How long the old VM gets to power off before it is forced off.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(120);

impl Deployer<'_> {
    /// Replaces `old` by a new VM for `w`; see the module.
    pub(super) async fn replace(
        &self,
        w: &Wanted,
        old: &Existing,
        (deploy_id, taken, key): (&str, &Mutex<BTreeSet<String>>, &ClientKey),
        line: &VmLine,
    ) -> Result<VmHandle, DeployError> {
        line.step(&format!("stop {}", old.name));
        self.ctx.progress.info(format!(
            "vm `{}`: stopping it (stop-first: its replacement takes address {})",
            old.name, w.network.address
        ));
        self.ctx
            .target
            .shutdown(&old.handle, STOP_TIMEOUT)
            .await
            .map_err(|source| DeployError::Target {
                vm: old.name.clone(),
                what: "cannot stop",
                source,
            })?;
        match self.launch(w, deploy_id, taken, key, line).await {
            Ok(vm) => {
                line.step(&format!("destroy {}", old.name));
                self.remove(&old.handle).await?;
                Ok(vm)
            }
            Err(failed) => {
                line.end_step(false);
                self.recover(old, key, line, failed).await
            }
        }
    }

    /// After the new VM failed: the old one started again, and the deploy
    /// ends with the new VM's error (or both, if the old one cannot run).
    async fn recover(
        &self,
        old: &Existing,
        key: &ClientKey,
        line: &VmLine,
        failed: DeployError,
    ) -> Result<VmHandle, DeployError> {
        match self.bring_back(&old.handle, &old.role, key, line).await {
            Ok(()) => Err(failed),
            Err(source) => Err(DeployError::NotBroughtBack {
                vm: old.name.clone(),
                failed: Box::new(failed),
                source: Box::new(source),
            }),
        }
    }
}
