//! Waiting for Proxmox worker tasks: poll `GET /nodes/{node}/tasks/{upid}/status`
//! with a growing pause until the task stops or the deadline passes.
//!
//! A task succeeded when its `exitstatus` is `OK` or `WARNINGS: N`
//! (Proxmox's `status_is_error`); anything else is the error text. Dropping
//! the wait only stops polling: the task keeps running on the server.

use std::future::Future;
use std::time::Duration;

use super::form::{Form, encode_component};
use super::{PveClient, PveError, Upid, error};
use crate::target::deadline::Deadline;
use serde::Deserialize;

/// First pause between polls; it doubles up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(2);

/// What `tasks/{upid}/status` reports.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct TaskStatus {
    /// `running` or `stopped`.
    pub status: String,
    #[serde(default)]
    pub exitstatus: Option<String>,
}

impl PveClient {
    pub async fn task_status(&self, upid: &Upid) -> Result<TaskStatus, PveError> {
        let path = format!(
            "/nodes/{}/tasks/{}/status",
            upid.node,
            encode_component(upid.as_str())
        );
        self.get(&path, Form::new()).await
    }

    /// Waits until the task stops; an error exit becomes
    /// [`PveError::TaskFailed`] (or [`PveError::Locked`] for lock errors).
    /// `within` bounds the whole wait, status requests included.
    pub async fn wait_task(&self, upid: &Upid, within: Duration) -> Result<(), PveError> {
        let deadline = task_deadline(upid, within);
        let client = self.until(deadline.at());
        wait_with(|| client.task_status(upid), upid, &deadline).await
    }

    /// Waits for a worker endpoint's task. A `null` answer (the work was
    /// done synchronously) returns at once.
    pub async fn finish(&self, answer: Option<Upid>, within: Duration) -> Result<(), PveError> {
        match answer {
            Some(upid) => self.wait_task(&upid, within).await,
            None => Ok(()),
        }
    }
}

/// The deadline of a wait for `upid`.
pub fn task_deadline(upid: &Upid, within: Duration) -> Deadline {
    Deadline::new(format!("proxmox task `{upid}`"), within).setting("task_timeout")
}

/// The polling loop, over any source of task states (tests drive it with
/// paused time). Each poll is cut off at the deadline: a status request
/// that hangs ends the wait there, as a task that keeps running does.
pub async fn wait_with<F, Fut>(
    mut poll: F,
    upid: &Upid,
    deadline: &Deadline,
) -> Result<(), PveError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<TaskStatus, PveError>>,
{
    let mut pause = FIRST_POLL;
    let mut seen: Option<String> = None;
    loop {
        let state = match deadline.run(poll()).await {
            Some(Ok(state)) => state,
            Some(Err(e)) if !(e.went_unanswered() && deadline.passed()) => return Err(e),
            // No status before the deadline (the request was cut off).
            Some(Err(_)) | None => return Err(timed_out(upid, deadline, seen)),
        };
        if state.status == "stopped" {
            return outcome(upid, state.exitstatus);
        }
        seen = Some(format!("status `{}`", state.status));
        if deadline.passed() {
            return Err(timed_out(upid, deadline, seen));
        }
        deadline.sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// The task's wait ended: "no answer" when no status ever came, "not
/// ended" with the last status otherwise.
fn timed_out(upid: &Upid, deadline: &Deadline, seen: Option<String>) -> PveError {
    let expired = match seen {
        Some(seen) => deadline.ended("not ended", Some(seen)),
        None => deadline.expired(None),
    };
    PveError::TaskTimeout {
        upid: upid.to_string(),
        expired,
    }
}

fn outcome(upid: &Upid, exitstatus: Option<String>) -> Result<(), PveError> {
    let status = exitstatus.unwrap_or_else(|| "unexpected status".to_string());
    if status == "OK" || status.starts_with("WARNINGS: ") {
        return Ok(());
    }
    Err(error::task_failed(upid.as_str(), status.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use tokio::time::Instant;

    use super::*;

    fn upid() -> Upid {
        "UPID:pve1:00001234:00ABCDEF:6650A1B2:qmclone:9000:oxbake@pve!ci:"
            .parse()
            .unwrap()
    }

    fn state(status: &str, exit: Option<&str>) -> TaskStatus {
        TaskStatus {
            status: status.into(),
            exitstatus: exit.map(str::to_string),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_task_times_out_at_the_deadline() {
        let polls = Cell::new(0u32);
        let start = Instant::now();
        let err = wait_with(
            || {
                polls.set(polls.get() + 1);
                async { Ok(state("running", None)) }
            },
            &upid(),
            &task_deadline(&upid(), Duration::from_secs(30)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, PveError::TaskTimeout { .. }), "{err}");
        assert!(
            err.to_string().ends_with(
                "qmclone:9000:oxbake@pve!ci:`: not ended within 30s (task_timeout); \
                 last seen: status `running`"
            ),
            "{err}"
        );
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        // 50+100+…+1600 ms, then 2 s steps: far fewer polls than one per 50 ms.
        assert!(polls.get() < 25, "{}", polls.get());
    }

    #[tokio::test(start_paused = true)]
    async fn a_status_request_that_hangs_ends_at_the_deadline() {
        let start = Instant::now();
        let err = wait_with(
            std::future::pending::<Result<TaskStatus, PveError>>,
            &upid(),
            &task_deadline(&upid(), Duration::from_secs(7)),
        )
        .await
        .unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(7));
        assert!(
            err.to_string()
                .ends_with("`: no answer within 7s (task_timeout)"),
            "{err}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ok_warnings_and_errors() {
        let cases = [
            (Some("OK"), None),
            (Some("WARNINGS: 2"), None),
            (
                Some("clone failed: no space"),
                Some("clone failed: no space"),
            ),
            (None, Some("unexpected status")),
        ];
        for (exit, want_err) in cases {
            let n = Cell::new(0);
            let res = wait_with(
                || {
                    n.set(n.get() + 1);
                    let s = if n.get() < 3 {
                        state("running", None)
                    } else {
                        state("stopped", exit)
                    };
                    async move { Ok(s) }
                },
                &upid(),
                &task_deadline(&upid(), Duration::from_secs(60)),
            )
            .await;
            match (res, want_err) {
                (Ok(()), None) => {}
                (Err(PveError::TaskFailed { message, .. }), Some(want)) => {
                    assert_eq!(message, want)
                }
                (other, want) => panic!("{exit:?}: got {other:?}, want {want:?}"),
            }
            assert_eq!(n.get(), 3);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lock_error_in_a_task_is_a_lock() {
        let err = wait_with(
            || async { Ok(state("stopped", Some("VM is locked (clone)"))) },
            &upid(),
            &task_deadline(&upid(), Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
        assert!(err.is_locked(), "{err}");
    }
}
