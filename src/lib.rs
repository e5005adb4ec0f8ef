//! oxbake: bake versioned, immutable Proxmox VE templates per role and deploy
//! VMs from them. The binary is a thin shell over [`main_entry`].

pub mod config;
pub mod diag;
pub mod progress;
pub mod recipe;
pub mod render;
pub mod tomlfile;

/// Runs the command line and returns the process exit code.
pub fn main_entry() -> i32 {
    0
}
