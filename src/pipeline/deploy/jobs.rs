//! How many VMs a deploy makes at once when `--jobs` does not say: as many
//! as the target allows. A Proxmox cluster says so in its settings
//! (`deploy_jobs`); the local target runs every VM on this machine, so as
//! many as fit its free memory, at most one per core.

use crate::config::TargetSettings;

use super::Wanted;

/// The default for `wanted` on the target `settings` describe (`None`: the
/// built-in local target).
pub fn default(settings: Option<&TargetSettings>, wanted: &[Wanted]) -> usize {
    match settings {
        Some(TargetSettings::Proxmox(p)) => p.deploy_jobs.max(1) as usize,
        _ => local(available_mib(), cores(), wanted),
    }
}

/// As many of the largest wanted VM as fit `free_mib`, at most `cores`,
/// at least one.
pub fn local(free_mib: Option<u64>, cores: usize, wanted: &[Wanted]) -> usize {
    let largest = wanted.iter().map(|w| u64::from(w.memory_mib)).max();
    let fit = match (free_mib, largest) {
        (Some(free), Some(each)) if each > 0 => usize::try_from(free / each).unwrap_or(usize::MAX),
        _ => 1,
    };
    fit.min(cores).max(1)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `MemAvailable` of /proc/meminfo, in MiB; `None` where there is none.
fn available_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
