//! Choosing the accelerator. `auto` uses KVM only once a guest has really
//! run under it: on some hosts `/dev/kvm` exists but a guest hangs right
//! after the kernel's decompressor. The first VM started under `auto` is the
//! probe; the verdict is kept for the rest of the process and, in
//! `<cache>/accel.toml`, for every later process of the same host boot
//! (same boot id, QEMU version and kernel release), so that a host where
//! KVM does not work pays the probe once per boot, not once per command.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::{Instant, sleep};

use super::LocalTarget;
use super::qemu::Accel;
use crate::fsutil::Atomic;

/// What the operator asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccelMode {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl std::str::FromStr for AccelMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "kvm" => Ok(Self::Kvm),
            "tcg" => Ok(Self::Tcg),
            other => Err(format!("unknown accelerator `{other}` (auto, kvm, tcg)")),
        }
    }
}

/// How long a probing guest has to print its first kernel line.
pub const PROBE_TIME: Duration = Duration::from_secs(15);
/// The kernel's first line on the serial console (the decompressor's own
/// lines come before it and prove nothing).
const KERNEL_MARK: &str = "Linux version";
/// The verdict's file in oxbake's cache folder.
pub const CACHE_FILE: &str = "accel.toml";
const QEMU: &str = "qemu-system-x86_64";

/// The process's verdict, and where this boot's verdict is kept.
static VERDICTS: Mutex<Verdicts> = Mutex::new(Verdicts::new());
/// Set once the cache has been read (once per process).
static RECALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// How the next VM starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The mode or an earlier verdict decides.
    Use(Accel),
    /// TCG, decided just now for the given reason (worth telling).
    Fallback(&'static str),
    /// Launch under KVM and watch whether the guest's kernel runs.
    ProbeKvm,
}

pub fn plan(mode: AccelMode) -> Plan {
    verdicts().plan(mode, kvm_device_usable)
}

pub fn verdict() -> Option<Accel> {
    verdicts().accel
}

/// Keeps `accel` for the rest of the process and, once [`recall`] has
/// named this boot, in the cache file for later processes.
pub fn record(accel: Accel) {
    verdicts().record(accel);
}

fn verdicts() -> std::sync::MutexGuard<'static, Verdicts> {
    // A poisoned lock only means another thread panicked while holding plain data.
    VERDICTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Before a local VM starts: the first call of the process says which
/// accelerator is used and why when the setting or this boot's kept verdict
/// decides (a probe says so itself, in `power.rs`). Under `auto` it reads
/// the verdict from the target's cache folder. Later calls do nothing.
pub(super) async fn recall(t: &LocalTarget) {
    // Starts that come at once (parallel bakes) all wait for the one look-up.
    RECALLED
        .get_or_init(|| async {
            if let Some(line) = setting_line(t.accel) {
                t.progress.info(line);
                return;
            }
            let Some(cache) = &t.accel_cache else {
                return;
            };
            let store = HostBoot::current().await.map(|b| Store::new(cache, b));
            if let Some(recalled) = verdicts().recall(store, kvm_device_usable) {
                t.progress.info(recalled.line());
            }
        })
        .await;
}

/// The line for an accelerator the setting names (none for `auto`).
fn setting_line(mode: AccelMode) -> Option<String> {
    let name = match mode {
        AccelMode::Auto => return None,
        AccelMode::Kvm => "kvm",
        AccelMode::Tcg => "tcg",
    };
    Some(format!(
        "accelerator: {name} (the target sets accel = \"{name}\"; no probe)"
    ))
}

/// What makes a verdict hold: a new boot, QEMU or kernel may change it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostBoot {
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
    /// The first line of `qemu-system-x86_64 --version`.
    pub qemu: String,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
}

impl HostBoot {
    /// This boot, or `None` if any part cannot be read (then nothing is
    /// cached and every process probes, as before).
    pub async fn current() -> Option<Self> {
        let read = |path: &'static str| async move {
            let text = tokio::fs::read_to_string(path).await.ok()?;
            Some(text.trim().to_owned()).filter(|t| !t.is_empty())
        };
        let boot_id = read("/proc/sys/kernel/random/boot_id").await?;
        let kernel = read("/proc/sys/kernel/osrelease").await?;
        let version = tokio::process::Command::new(QEMU)
            .arg("--version")
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(10), version)
            .await
            .ok()?
            .ok()?;
        let qemu = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .to_owned();
        (out.status.success() && !qemu.is_empty()).then_some(Self {
            boot_id,
            qemu,
            kernel,
        })
    }
}

/// This boot's verdict file.
#[derive(Debug, Clone)]
struct Store {
    path: PathBuf,
    boot: HostBoot,
}

impl Store {
    fn new(cache: &Path, boot: HostBoot) -> Self {
        Self {
            path: cache.join(CACHE_FILE),
            boot,
        }
    }

    /// The verdict kept for this boot; a file that cannot be read, is not
    /// ours or is of another boot counts as none.
    fn load(&self) -> Option<Accel> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let kept: Kept = toml::from_str(&text).ok()?;
        (kept.boot() == self.boot).then_some(())?;
        match kept.accel.as_str() {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    /// Replaces the file atomically. Best effort: if it cannot be written,
    /// the next process probes again.
    fn save(&self, accel: Accel) {
        let kept = Kept {
            accel: match accel {
                Accel::Kvm => "kvm",
                Accel::Tcg => "tcg",
            }
            .to_owned(),
            boot_id: self.boot.boot_id.clone(),
            qemu: self.boot.qemu.clone(),
            kernel: self.boot.kernel.clone(),
        };
        let Ok(text) = toml::to_string(&kept) else {
            return;
        };
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = Atomic::new(".accel-", ".tmp")
            .mode(0o644)
            .write(&self.path, text.as_bytes());
    }
}

/// `accel.toml`: the verdict and the boot it holds for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kept {
    accel: String,
    boot_id: String,
    qemu: String,
    kernel: String,
}

impl Kept {
    fn boot(&self) -> HostBoot {
        HostBoot {
            boot_id: self.boot_id.clone(),
            qemu: self.qemu.clone(),
            kernel: self.kernel.clone(),
        }
    }
}

/// A verdict read from the cache file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recalled {
    pub accel: Accel,
    pub path: PathBuf,
}

impl Recalled {
    /// The progress line that says which accelerator is used and why.
    pub fn line(&self) -> String {
        let path = self.path.display();
        match self.accel {
            Accel::Kvm => format!(
                "accelerator: kvm (a guest kernel ran under KVM on this boot; cached in {path})"
            ),
            Accel::Tcg => format!(
                "accelerator: tcg (the KVM probe failed on this boot; cached in {path}, \
                 delete it to probe again)"
            ),
        }
    }
}

/// One process's verdict.
#[derive(Debug)]
struct Verdicts {
    accel: Option<Accel>,
    /// Where a new verdict is kept, once [`Verdicts::recall`] knows the boot.
    store: Option<Store>,
}

impl Verdicts {
    const fn new() -> Self {
        Self {
            accel: None,
            store: None,
        }
    }

    /// Takes this boot's kept verdict, if there is one that still holds (a
    /// kept `kvm` while `/dev/kvm` cannot be opened does not).
    fn recall(
        &mut self,
        store: Option<Store>,
        kvm_usable: impl FnOnce() -> bool,
    ) -> Option<Recalled> {
        let store = store?;
        let kept = store.load();
        let path = store.path.clone();
        self.store = Some(store);
        if self.accel.is_some() {
            return None;
        }
        let accel = kept.filter(|a| *a == Accel::Tcg || kvm_usable())?;
        self.accel = Some(accel);
        Some(Recalled { accel, path })
    }

    fn plan(&mut self, mode: AccelMode, kvm_usable: impl FnOnce() -> bool) -> Plan {
        match mode {
            AccelMode::Kvm => Plan::Use(Accel::Kvm),
            AccelMode::Tcg => Plan::Use(Accel::Tcg),
            AccelMode::Auto => match self.accel {
                Some(accel) => Plan::Use(accel),
                None if kvm_usable() => Plan::ProbeKvm,
                None => {
                    // Cheap to see again: not kept for later processes.
                    self.accel = Some(Accel::Tcg);
                    Plan::Fallback("/dev/kvm is not usable")
                }
            },
        }
    }

    fn record(&mut self, accel: Accel) {
        self.accel = Some(accel);
        if let Some(store) = &self.store {
            store.save(accel);
        }
    }
}

fn kvm_device_usable() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Whether the serial log shows a running kernel before `within` elapses.
pub async fn kernel_runs(serial_log: &Path, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(bytes) = tokio::fs::read(serial_log).await
            && String::from_utf8_lossy(&bytes).contains(KERNEL_MARK)
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
#[path = "accel_tests.rs"]
mod tests;
