//! Choosing the accelerator. `auto` uses KVM only once a guest has really
//! run under it: on some hosts `/dev/kvm` exists but a guest hangs right
//! after the kernel's decompressor. The first VM started under `auto` is the
//! probe; the verdict is kept for the rest of the process.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::{Instant, sleep};

use super::qemu::Accel;

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

static VERDICT: Mutex<Option<Accel>> = Mutex::new(None);

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
    match mode {
        AccelMode::Kvm => Plan::Use(Accel::Kvm),
        AccelMode::Tcg => Plan::Use(Accel::Tcg),
        AccelMode::Auto => match verdict() {
            Some(accel) => Plan::Use(accel),
            None if kvm_device_usable() => Plan::ProbeKvm,
            None => {
                record(Accel::Tcg);
                Plan::Fallback("/dev/kvm is not usable")
            }
        },
    }
}

pub fn verdict() -> Option<Accel> {
    // A poisoned lock only means another thread panicked while holding a Copy value.
    *VERDICT.lock().unwrap_or_else(|p| p.into_inner())
}

pub fn record(accel: Accel) {
    *VERDICT.lock().unwrap_or_else(|p| p.into_inner()) = Some(accel);
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
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!("auto".parse(), Ok(AccelMode::Auto));
        assert_eq!("tcg".parse(), Ok(AccelMode::Tcg));
        assert_eq!("kvm".parse(), Ok(AccelMode::Kvm));
        assert!("xen".parse::<AccelMode>().unwrap_err().contains("`xen`"));
    }

    #[test]
    fn explicit_modes_never_probe() {
        assert_eq!(plan(AccelMode::Tcg), Plan::Use(Accel::Tcg));
        assert_eq!(plan(AccelMode::Kvm), Plan::Use(Accel::Kvm));
    }

    #[tokio::test]
    async fn kernel_mark_is_found_or_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("serial.log");
        std::fs::write(&log, "Decompressing Linux... Parsing ELF... done.\n").unwrap();
        assert!(!kernel_runs(&log, Duration::from_millis(300)).await);
        std::fs::write(
            &log,
            "Booting the kernel.\n[    0.000000] Linux version 6.1.0\n",
        )
        .unwrap();
        assert!(kernel_runs(&log, Duration::from_millis(300)).await);
    }
}
