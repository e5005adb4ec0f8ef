//! Harnesses shared by the integration tests.

pub mod answering;
pub mod aptrepo;
pub mod deploy_sim;
#[cfg(feature = "e2e")]
pub mod e2e;
#[cfg(feature = "e2e")]
pub mod figures;
pub mod local_image;
pub mod output;
pub mod project;
pub mod pve_sim;
#[cfg(feature = "e2e")]
pub mod qemu;
pub mod sshd;
pub mod tools;
