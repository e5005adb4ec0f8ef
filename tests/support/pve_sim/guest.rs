//! What runs "inside" the simulated VMs. The API layer calls a
//! [`GuestBackend`] on start, stop, shutdown and guest-agent requests, so
//! the in-memory default can be swapped for one that boots real guests
//! (the local target's QEMU VMs: see `qemu_guests`).

use serde_json::{Value, json};

use super::state::{Faults, SimVm};

/// The guest side of a simulated VM. Methods run under the simulator's
/// lock, so they must be quick.
pub trait GuestBackend: Send + Sync {
    /// The VM starts; an error fails the start task.
    fn start(&self, vmid: u32, vm: &SimVm) -> Result<(), String>;
    /// The VM stops (hard or after a shutdown).
    fn stop(&self, vmid: u32);
    /// Whether the guest powers off when asked (ACPI or agent).
    fn powers_off(&self, vmid: u32, faults: &Faults) -> bool;
    /// Whether a guest asked to power off has done so (a shutdown task
    /// ends then); data-only guests are off at once.
    fn powered_off(&self, _vmid: u32) -> bool {
        true
    }
    /// The new VM `vmid`'s disk was imported from `image` (an `import`
    /// volume's bytes); a backend with real disks keeps a copy.
    fn imported(&self, _vmid: u32, _image: &[u8]) -> Result<(), String> {
        Ok(())
    }
    /// `network-get-interfaces`' result, or the error while the agent is
    /// not up (`QEMU guest agent is not running`).
    fn interfaces(&self, vmid: u32, vm: &SimVm, faults: &Faults) -> Result<Value, String>;
}

/// Guests that only exist as data: the agent comes up after
/// `agent_warmup_calls` requests and reports `lo`, a `docker0` bridge and
/// `eth0` (net0's MAC) with link-local, ULA and `10.77.X.Y` addresses.
pub struct InMemoryGuests;

/// The IPv4 address the in-memory agent reports for a VM.
pub fn guest_ipv4(vmid: u32) -> String {
    format!("10.77.{}.{}", vmid / 256, vmid % 256)
}

impl GuestBackend for InMemoryGuests {
    fn start(&self, _vmid: u32, _vm: &SimVm) -> Result<(), String> {
        Ok(())
    }

    fn stop(&self, _vmid: u32) {}

    fn powers_off(&self, _vmid: u32, faults: &Faults) -> bool {
        !faults.ignore_shutdown
    }

    fn interfaces(&self, vmid: u32, vm: &SimVm, faults: &Faults) -> Result<Value, String> {
        if faults.agent_never || vm.agent_calls <= faults.agent_warmup_calls {
            return Err("QEMU guest agent is not running".into());
        }
        if let Some(reports) = &faults.agent_reports {
            return Ok(reports.clone());
        }
        let mac = vm.net0_mac().unwrap_or_default().to_lowercase();
        Ok(json!([
            {"name": "lo", "hardware-address": "00:00:00:00:00:00", "ip-addresses": [
                {"ip-address": "127.0.0.1", "ip-address-type": "ipv4", "prefix": 8},
                {"ip-address": "::1", "ip-address-type": "ipv6", "prefix": 128}]},
            {"name": "docker0", "hardware-address": "02:42:ac:11:00:01", "ip-addresses": [
                {"ip-address": "172.17.0.1", "ip-address-type": "ipv4", "prefix": 16}]},
            {"name": "eth0", "hardware-address": mac, "ip-addresses": [
                {"ip-address": "fe80::be24:11ff:fe00:1", "ip-address-type": "ipv6", "prefix": 64},
                {"ip-address": "169.254.10.10", "ip-address-type": "ipv4", "prefix": 16},
                {"ip-address": guest_ipv4(vmid), "ip-address-type": "ipv4", "prefix": 24}],
             "statistics": {"rx-bytes": 1, "rx-packets": 1, "rx-errs": 0, "rx-dropped": 0,
                            "tx-bytes": 1, "tx-packets": 1, "tx-errs": 0, "tx-dropped": 0}}
        ]))
    }
}
