//! oxbake: bake versioned, immutable Proxmox VE templates per role and deploy
//! VMs from them. The binary is a thin shell over [`run`].

pub mod guest;
pub mod progress;

/// Runs the command line and returns the process exit code.
pub fn main_entry() -> i32 {
    0
}
