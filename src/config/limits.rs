//! The documented bounds of sizes and timeouts: a value outside them can
//! never work (a VM with 0 cores, a build that may take no time, a disk of
//! an exabyte), so `oxbake check` refuses it at its place.

use std::ops::RangeInclusive;

/// A bounded setting: its range and the unit it is counted in.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub range: (u64, u64),
    /// The unit of one, then of several.
    pub unit: (&'static str, &'static str),
}

/// Virtual CPUs of a VM.
pub const CORES: Limit = Limit {
    range: (1, 512),
    unit: ("core", "cores"),
};
/// Memory of a VM, in MiB: 256 MiB to 4 TiB.
pub const MEMORY_MIB: Limit = Limit {
    range: (256, 4 << 20),
    unit: ("MiB", "MiB"),
};
/// Disk of a VM, in GiB: 1 GiB to 64 TiB.
pub const DISK_GIB: Limit = Limit {
    range: (1, 64 << 10),
    unit: ("GiB", "GiB"),
};
/// VMs one deploy or build makes at once (`deploy_jobs`, `build_jobs`,
/// `--jobs`).
pub const JOBS: Limit = Limit {
    range: (1, 256),
    unit: ("VM", "VMs"),
};

/// Any timeout, in seconds: 1 s to 24 h.
pub const TIMEOUT_SECS: Limit = Limit {
    range: (1, 86_400),
    unit: ("second", "seconds"),
};

impl Limit {
    pub fn bounds(&self) -> RangeInclusive<u64> {
        self.range.0..=self.range.1
    }

    /// Why `value` of `key` is refused, if it is.
    pub fn problem(&self, key: &str, value: u64) -> Option<String> {
        let (low, high) = self.range;
        let unit = |n: u64| if n == 1 { self.unit.0 } else { self.unit.1 };
        (!self.bounds().contains(&value)).then(|| {
            format!(
                "`{key}` = {value} is out of range: it must be at least {low} {} and at most \
                 {high} {}",
                unit(low),
                unit(high)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ends_are_in_and_one_past_them_out() {
        for limit in [CORES, MEMORY_MIB, DISK_GIB, TIMEOUT_SECS] {
            let (low, high) = limit.range;
            assert!(limit.problem("x", low).is_none());
            assert!(limit.problem("x", high).is_none());
            assert!(limit.problem("x", low - 1).is_some());
            let message = limit.problem("x", high + 1).unwrap();
            assert!(message.contains(&format!("at least {low} ")), "{message}");
            assert!(message.contains(&format!("at most {high} ")), "{message}");
        }
        assert_eq!(MEMORY_MIB.range.1, 4 * 1024 * 1024);
        let message = TIMEOUT_SECS.problem("timeout", 0).unwrap();
        assert!(message.contains("at least 1 second and"), "{message}");
    }
}
