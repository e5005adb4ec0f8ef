//! The image registry: the `images/` folder of a project, plain TOML that is
//! reviewed and committed like a lock file.
//!
//! - `images/ROLE/VERSION.toml`: one [`ImageRecord`] per successful build,
//!   written once and afterwards only ever marked revoked or given a
//!   published copy on another target.
//! - `images/channels.toml`: [`Channels`], channel -> role -> version, with an
//!   append-only history.
//! - `images/.lock`: the advisory lock every change holds (keep it out of git).
//! - `.oxbake/registry/ROLE.json` (outside `images/`, machine-local): the
//!   summaries index `ls` and `prune` read instead of every record, checked
//!   against the record files on every read (see `index.rs`).
//!
//! Versions are `YYYY.MM.DD.N` ([`Version`]), allocated under the lock. Every
//! file is replaced atomically. Storage only: `oxbake ls` and `oxbake show`
//! render in [`crate::report`], the comparison with a live target is
//! [`crate::pipeline::drift`].

mod atomic;
mod attention;
mod channel_check;
mod channels;
mod channels_text;
mod diff;
mod error;
mod fields;
mod index;
mod listing;
mod lock;
mod names;
mod record;
mod record_text;
mod remove;
mod store;
mod summary;
mod sweep;
mod toml_file;
mod version;
mod writes;

pub use attention::Attention;
pub use channel_check::ChannelProblem;
pub use channels::{ChannelAction, ChannelChange, Channels, HistoryEntry};
pub use diff::{PackageChange, PackageDiff};
pub use error::RegistryError;
pub use fields::{Parent, Sha256};
pub use lock::{LockMode, RegistryLock};
pub(crate) use lock::{holder_pid, write_pid};
pub use names::{ImageRef, is_valid_name};
pub use record::{
    Artifact, BuilderIdentity, CheckResult, ImageRecord, NewImage, PhaseTiming, Published,
    Revocation,
};
pub use remove::{PendingRemoval, Removal};
pub use store::{DEFAULT_LOCK_TIMEOUT, Registry};
pub use summary::{ImageHead, ImageSummary};
pub use version::Version;
pub use writes::Reservation;

#[cfg(test)]
mod tests;
