//! One deadline for a whole wait (`boot_timeout`, `task_timeout`): every
//! request and pause inside the wait gets at most what is left of it, and
//! the wait ends at the deadline with an [`Expired`] that names what was
//! awaited, the limit and what was seen last. A hanging API or guest can
//! never stretch a wait beyond its limit.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// When a wait must end, and what it waits for (for the message).
#[derive(Debug, Clone)]
pub struct Deadline {
    at: Instant,
    what: String,
    limit: Duration,
    setting: Option<&'static str>,
}

impl Deadline {
    /// A deadline `limit` from now for `what` (`an address from the guest
    /// agent`, ``proxmox task `UPID:…` ``).
    pub fn new(what: impl Into<String>, limit: Duration) -> Self {
        Self {
            at: Instant::now() + limit,
            what: what.into(),
            limit,
            setting: None,
        }
    }

    /// Names the setting that gave the limit (`boot_timeout`), for the
    /// message.
    pub fn setting(mut self, name: &'static str) -> Self {
        self.setting = Some(name);
        self
    }

    /// The instant the wait ends.
    pub fn at(&self) -> Instant {
        self.at
    }

    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// What is left (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// `d`, but no more than what is left.
    pub fn cap(&self, d: Duration) -> Duration {
        d.min(self.remaining())
    }

    /// Sleeps `d`, or until the deadline if that comes first.
    pub async fn sleep(&self, d: Duration) {
        tokio::time::sleep(self.cap(d)).await;
    }

    /// Runs `work` until it ends or the deadline passes (`None`).
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        tokio::time::timeout_at(self.at, work).await.ok()
    }

    /// The wait ended without an answer; `seen` is what it saw last.
    pub fn expired(&self, seen: Option<String>) -> Box<Expired> {
        self.ended("no answer", seen)
    }

    /// The wait ended with answers that never met the condition
    /// (`verdict`: `no usable address`, `not ended`).
    pub fn ended(&self, verdict: &'static str, seen: Option<String>) -> Box<Expired> {
        Box::new(Expired {
            what: self.what.clone(),
            verdict,
            limit: self.limit,
            setting: self.setting,
            seen,
        })
    }
}

/// A wait that reached its deadline:
/// ``ssh on `10.0.0.5:22`: no answer within 20s (boot_timeout); last seen: …``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what}: {verdict} within {}{}{}",
    span(*limit),
    setting.map(|s| format!(" ({s})")).unwrap_or_default(),
    seen.as_ref().map(|s| format!("; last seen: {s}")).unwrap_or_default()
)]
pub struct Expired {
    pub what: String,
    pub verdict: &'static str,
    pub limit: Duration,
    pub setting: Option<&'static str>,
    pub seen: Option<String>,
}

/// `5s`, or `500ms` below a whole second.
pub fn span(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_and_pauses_end_at_the_deadline() {
        let start = Instant::now();
        let d =
            Deadline::new("ssh on `10.0.0.5:22`", Duration::from_secs(3)).setting("boot_timeout");
        assert_eq!(d.run(std::future::pending::<()>()).await, None);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        d.sleep(Duration::from_secs(60)).await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert!(d.passed());
        assert_eq!(d.cap(Duration::from_secs(120)), Duration::ZERO);
        assert_eq!(
            d.expired(Some("the port accepts, no SSH banner".into()))
                .to_string(),
            "ssh on `10.0.0.5:22`: no answer within 3s (boot_timeout); \
             last seen: the port accepts, no SSH banner"
        );
        let d = Deadline::new("proxmox task `UPID:x`", Duration::from_millis(1500));
        assert_eq!(
            d.ended("not ended", None).to_string(),
            "proxmox task `UPID:x`: not ended within 1500ms"
        );
    }
}
