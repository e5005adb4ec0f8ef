//! The operator's interrupt (Ctrl-C, SIGTERM; see `cmd/signals.rs`) as seen
//! by work that owns VMs: a watch that becomes `true`. Work that is cut off
//! must still remove what it made, so two shapes are offered: work that is
//! dropped at once ([`unless_interrupted`]) and work that is allowed to
//! finish for a while so that what it makes can be found and removed
//! ([`let_finish`]).

use std::time::Duration;

use tokio::sync::watch;

use crate::progress::Progress;
use crate::target::Target;

/// How long a clean-up waits for the target to list its VMs.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// A receiver that is never interrupted (tests, library callers).
pub fn never() -> watch::Receiver<bool> {
    // With its sender gone the value stays `false`; [`interrupted`] then
    // waits forever.
    watch::channel(false).1
}

/// Whether the operator has interrupted.
pub fn is_set(cancel: &watch::Receiver<bool>) -> bool {
    *cancel.borrow()
}

/// Resolves when the operator interrupts; never if no one can (the sender
/// is gone without having sent `true`).
pub async fn interrupted(cancel: &watch::Receiver<bool>) {
    let mut cancel = cancel.clone();
    // The guard `wait_for` returns is dropped here, not held across awaits.
    let seen = cancel.wait_for(|c| *c).await.is_ok();
    if !seen {
        std::future::pending::<()>().await;
    }
}

/// Runs `work`; `None` if the operator interrupts first (`work` is dropped).
pub async fn unless_interrupted<T>(
    cancel: &watch::Receiver<bool>,
    work: impl Future<Output = T>,
) -> Option<T> {
    if is_set(cancel) {
        return None;
    }
    tokio::select! {
        out = work => Some(out),
        () = interrupted(cancel) => None,
    }
}

/// Runs `work` to its end even if the operator interrupts, but then for at
/// most `grace`; returns its output (if it finished) and whether the
/// operator interrupted.
pub async fn let_finish<T>(
    cancel: &watch::Receiver<bool>,
    grace: Duration,
    work: impl Future<Output = T>,
) -> (Option<T>, bool) {
    tokio::pin!(work);
    tokio::select! {
        out = &mut work => (Some(out), is_set(cancel)),
        () = interrupted(cancel) => {
            (tokio::time::timeout(grace, work).await.ok(), true)
        }
    }
}

/// Removes every VM labelled with `run_id` (a creation that was cut off
/// may have made one), saying what it removed; a target that does not
/// answer is left to `oxbake gc`.
pub async fn remove_run(target: &dyn Target, run_id: &str, progress: &Progress) {
    let listed = match tokio::time::timeout(LIST_TIMEOUT, target.list_vms()).await {
        Ok(Ok(vms)) => vms,
        Ok(Err(e)) => return cannot_list(progress, run_id, &e.to_string()),
        Err(_) => return cannot_list(progress, run_id, "no answer"),
    };
    let ours = listed
        .into_iter()
        .filter(|vm| vm.labels.get().is_some_and(|l| l.run_id == run_id));
    for vm in ours {
        match target.destroy(&vm.handle).await {
            Ok(()) => progress.info(format!("removed VM `{}`", vm.handle.name)),
            Err(e) => progress.warn(format!("could not remove VM `{}`: {e}", vm.handle.name)),
        }
    }
}

fn cannot_list(progress: &Progress, run_id: &str, why: &str) {
    progress.warn(format!(
        "cannot list VMs to clean up run {run_id}: {why}; `oxbake gc` removes what is left \
         once the target answers"
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_unless_interrupted() {
        let rx = never();
        assert_eq!(unless_interrupted(&rx, async { 7 }).await, Some(7));
        let (tx, rx) = watch::channel(false);
        let slow = tokio::time::sleep(Duration::from_secs(60));
        let waiting = unless_interrupted(&rx, slow);
        let send = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.send(true).unwrap();
        };
        let (out, ()) = tokio::join!(waiting, send);
        assert_eq!(out, None);
        assert_eq!(unless_interrupted(&rx, async { 1 }).await, None);
    }

    #[tokio::test]
    async fn interrupted_work_gets_its_grace_then_is_dropped() {
        let (tx, rx) = watch::channel(false);
        tx.send(true).unwrap();
        let quick = async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            "made"
        };
        assert_eq!(
            let_finish(&rx, Duration::from_secs(5), quick).await,
            (Some("made"), true)
        );
        let stuck = std::future::pending::<()>();
        assert_eq!(
            let_finish(&rx, Duration::from_millis(30), stuck).await,
            (None, true)
        );
        let rx = never();
        assert_eq!(
            let_finish(&rx, Duration::ZERO, async { 3 }).await,
            (Some(3), false)
        );
    }

    #[tokio::test]
    async fn a_dropped_sender_never_interrupts() {
        let (tx, rx) = watch::channel(false);
        drop(tx);
        let out = unless_interrupted(&rx, async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            5
        })
        .await;
        assert_eq!(out, Some(5));
    }
}
