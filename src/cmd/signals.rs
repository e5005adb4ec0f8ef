//! The first Ctrl-C (or SIGTERM) asks the running work to stop and clean
//! up; the work then ends with exit code 130. Later signals do not cut the
//! clean-up short (it removes VMs that would otherwise be left running);
//! they are answered with a line saying so. Only SIGKILL ends oxbake at
//! once, leaving what the clean-up had not removed yet to `oxbake gc`.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::progress::Progress;

/// Runs `work` with a receiver that turns `true` at the first SIGINT or
/// SIGTERM; the signals are watched until `work` ends.
pub async fn watching<T, F>(progress: &Progress, work: impl FnOnce(watch::Receiver<bool>) -> F) -> T
where
    F: Future<Output = T>,
{
    let (cancel_tx, cancel) = watch::channel(false);
    let signals = tokio::spawn(watch(cancel_tx, progress.clone()));
    let out = work(cancel).await;
    signals.abort();
    out
}

async fn watch(cancel: watch::Sender<bool>, progress: Progress) {
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    let Ok(mut int) = signal(SignalKind::interrupt()) else {
        return;
    };
    let mut first = true;
    loop {
        let got = tokio::select! {
            got = int.recv() => got,
            got = term.recv() => got,
        };
        if got.is_none() {
            return;
        }
        if first {
            first = false;
            let _ = cancel.send(true);
        } else {
            progress.warn(
                "interrupted again: the clean-up goes on until it is done \
                 (SIGKILL would leave what it has not removed yet to `oxbake gc`)",
            );
        }
    }
}
