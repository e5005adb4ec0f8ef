//! After a failed bake: every VM of the run goes, or is kept and the
//! operator told how to reach it (`--keep-on-failure`).

use std::time::Duration;

use super::bake::Builder;
use crate::pipeline::BuildError;
use crate::pipeline::hygiene::BUILDER_USER;
use crate::pipeline::vm;
use crate::target::VmHandle;

/// How long the clean-up waits for the target to list the run's VMs.
const CLEANUP_LIST_TIMEOUT: Duration = Duration::from_secs(30);

impl Builder<'_, '_> {
    /// Destroys every VM of this run, or keeps it and says how to reach it.
    pub(super) async fn after_failure(&self, error: &BuildError) {
        // A target that stopped answering must not hold the operator for
        // the client's whole request timeout; `oxbake gc` finds leftovers.
        let name = format!("build-{}-{}", self.role, self.run_id);
        let listed = vm::of_run(self.p, &self.run_id, CLEANUP_LIST_TIMEOUT, &name).await;
        let ours = match listed {
            Ok(vms) => vms,
            Err(e) => {
                self.p.progress.warn(format!(
                    "{}: cannot list VMs to clean up run {}: {e}; `oxbake gc` removes \
                     what is left once the target answers",
                    self.role, self.run_id
                ));
                return;
            }
        };
        for vm in ours {
            if self.opts.keep_on_failure && !error.is_interrupted() {
                self.keep(&vm.handle);
                continue;
            }
            vm::remove(
                self.p,
                &vm.handle,
                &format!("{}: ", self.role),
                "builder VM",
            )
            .await;
        }
    }

    /// Leaves the VM running; its one-time key goes into a 0600 file
    /// beside the build logs so that the operator can log in.
    pub(super) fn keep(&self, vm: &VmHandle) {
        let endpoint = self.endpoint.lock().ok().and_then(|e| *e);
        let key_file = self
            .p
            .dirs()
            .logs()
            .join(format!("{}-{}.key", self.role, self.run_id));
        let how = match (endpoint, self.save_key(&key_file)) {
            (Some(addr), Ok(())) => format!(
                "reach it with: ssh -i {} -p {} {BUILDER_USER}@{}",
                key_file.display(),
                addr.port(),
                addr.ip()
            ),
            (Some(_), Err(e)) => format!(
                "its key could not be saved to `{}`: {e}",
                key_file.display()
            ),
            (None, _) => {
                "it never answered on SSH; see its serial console in the state folder".to_owned()
            }
        };
        self.p.progress.warn(format!(
            "{}: kept builder VM `{}` (--keep-on-failure); {how}",
            self.role, vm.name
        ));
    }

    pub(super) fn save_key(&self, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let text = self
            .client
            .private_openssh()
            .map_err(std::io::Error::other)?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(text.as_bytes())
    }
}
