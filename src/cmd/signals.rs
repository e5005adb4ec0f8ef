//! The first Ctrl-C (or SIGTERM) asks the running work to stop and clean
//! up; the work then ends with exit code 130.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

pub async fn watch(cancel: watch::Sender<bool>) {
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return;
    };
    let Ok(mut int) = signal(SignalKind::interrupt()) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    let _ = cancel.send(true);
}
