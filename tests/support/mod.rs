//! Harnesses shared by the integration tests.

#[cfg(feature = "e2e")]
pub mod e2e;
pub mod project;
#[cfg(feature = "e2e")]
pub mod qemu;
pub mod sshd;
