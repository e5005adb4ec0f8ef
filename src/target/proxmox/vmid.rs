//! VMID allocation inside the configured range. Proxmox cannot reserve an
//! id, so the lowest id that the cluster does not use and that no other
//! `create_vm` of this process holds is reserved here until the clone
//! exists; a clone answered with "already exists" (another client won the
//! race) is retried with the next id by the caller.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use super::PveError;

/// An id held for one `create_vm`; released when dropped.
#[derive(Debug)]
pub struct Reservation {
    pub vmid: u32,
    held: Arc<Mutex<BTreeSet<u32>>>,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            held.remove(&self.vmid);
        }
    }
}

/// Reserves the lowest id in `range` not in `used` and not held.
pub fn reserve(
    held: &Arc<Mutex<BTreeSet<u32>>>,
    used: &BTreeSet<u32>,
    range: [u32; 2],
) -> Result<Reservation, PveError> {
    let [lo, hi] = range;
    // A poisoned lock only means another create_vm panicked; the set is
    // still a valid set of ids.
    let mut set = held.lock().unwrap_or_else(|p| p.into_inner());
    let vmid = (lo.max(100)..=hi)
        .find(|id| !used.contains(id) && !set.contains(id))
        .ok_or(PveError::NoFreeVmid { lo, hi })?;
    set.insert(vmid);
    Ok(Reservation {
        vmid,
        held: held.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_while_held_and_reused_after() {
        let held = Arc::default();
        let used = BTreeSet::from([200, 202]);
        let a = reserve(&held, &used, [200, 204]).unwrap();
        let b = reserve(&held, &used, [200, 204]).unwrap();
        assert_eq!((a.vmid, b.vmid), (201, 203));
        let c = reserve(&held, &used, [200, 204]).unwrap();
        assert_eq!(c.vmid, 204);
        let err = reserve(&held, &used, [200, 204]).unwrap_err();
        assert_eq!(err.to_string(), "no free vmid in 200..=204");
        drop(b);
        assert_eq!(reserve(&held, &used, [200, 204]).unwrap().vmid, 203);
    }
}
