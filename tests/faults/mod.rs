//! The fault-injection matrix (issue #8): `oxbake build`, `oxbake promote`
//! and `oxbake deploy` are run with a real fault injected at each step
//! (signals, a dropped SSH connection, a failing guest command, API errors
//! and a dead API, a failed task, a full state disk); after each, the exit code must be the contract's, nothing of the
//! run may be left (VMs, overlays, seed ISOs, QEMU processes) and images/
//! must be unchanged and readable. Each matrix prints its table.

mod deploy;
mod earlier;
#[cfg(feature = "e2e")]
mod guest;
#[cfg(feature = "e2e")]
mod guest_fork;
#[cfg(feature = "e2e")]
mod guest_rows;
pub mod leftovers;
mod local;
mod local_disk;
mod promote;
mod publish;
pub mod runner;
pub mod sim;
mod sim_cases;
pub mod sim_project;
mod sim_timeouts;
mod table;
