//! How many VMs a command makes at once on this machine when `--jobs` does
//! not say: the local target runs every VM here, so as many of the largest
//! VM as fit the free memory, at most one per core, at least one. Deploys
//! (their VMs) and builds (their builder VMs) both ask this; a Proxmox
//! target says its own bound in its settings instead.

/// As many VMs of `largest_mib` as fit this machine's free memory, at most
/// one per core, at least one.
pub fn local(largest_mib: Option<u64>) -> usize {
    fit(available_mib(), cores(), largest_mib)
}

/// As many VMs of `largest_mib` as fit `free_mib`, at most `cores`, at
/// least one (also when either is unknown).
pub fn fit(free_mib: Option<u64>, cores: usize, largest_mib: Option<u64>) -> usize {
    let fit = match (free_mib, largest_mib) {
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

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn as_many_as_fit_memory_at_most_one_per_core_at_least_one() {
        assert_eq!(fit(Some(8192), 8, Some(2048)), 4);
        assert_eq!(fit(Some(8192), 2, Some(2048)), 2);
        assert_eq!(fit(Some(1024), 8, Some(2048)), 1);
        assert_eq!(fit(None, 8, Some(2048)), 1);
        assert_eq!(fit(Some(8192), 8, None), 1);
        assert_eq!(fit(Some(8192), 8, Some(0)), 1);
    }
}
