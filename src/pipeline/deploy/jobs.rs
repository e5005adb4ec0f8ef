//! How many VMs a deploy makes at once when `--jobs` does not say: as many
//! as the target allows. A Proxmox cluster says so in its settings
//! (`deploy_jobs`); the local target, as many of the largest wanted VM as
//! fit this machine (see [`crate::pipeline::jobs`]).

use crate::config::TargetSettings;
use crate::pipeline::jobs;

use super::Wanted;

/// The default for `wanted` on the target `settings` describe (`None`: the
/// built-in local target).
pub fn default(settings: Option<&TargetSettings>, wanted: &[Wanted]) -> usize {
    match settings {
        Some(TargetSettings::Proxmox(p)) => p.deploy_jobs.max(1) as usize,
        _ => jobs::local(largest(wanted)),
    }
}

/// As many of the largest wanted VM as fit `free_mib`, at most `cores`,
/// at least one.
pub fn local(free_mib: Option<u64>, cores: usize, wanted: &[Wanted]) -> usize {
    jobs::fit(free_mib, cores, largest(wanted))
}

fn largest(wanted: &[Wanted]) -> Option<u64> {
    wanted.iter().map(|w| u64::from(w.memory_mib)).max()
}
