//! The editor of `vault edit` as a child process that an interruption
//! stops: the editor and every process it started (the shell that runs
//! `$EDITOR` forks it) get SIGTERM, and SIGKILL after [`GRACE`]; oxbake goes
//! on only once its child is reaped. An editor that hands the file to a
//! process it did not start (a running IDE) is out of reach.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::VaultError;

/// How long the editor has to end after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long an editor that died of a signal waits for oxbake's own (a
/// Ctrl-C or a hang-up reaches the whole process group at once).
const SAME_SIGNAL: Duration = Duration::from_millis(300);

/// Runs `editor` on `file` until it ends or `interrupted` resolves.
pub async fn run_editor(
    editor: &str,
    file: &Path,
    vault: &str,
    interrupted: impl Future<Output = ()>,
) -> Result<(), VaultError> {
    let fail = |what: String| VaultError::Editor {
        editor: editor.to_owned(),
        what,
    };
    let stopped = || VaultError::Interrupted {
        path: vault.to_owned(),
    };
    // Through the shell, as git does, so `EDITOR="code -w"` works; the file
    // is a separate argument, never part of the command text. The editor
    // stays in oxbake's process group, the terminal's: it can read the
    // keyboard, and a Ctrl-C or a hang-up reaches it as it reaches oxbake.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("oxbake-vault-edit")
        .arg(file)
        .spawn()
        .map_err(|e| fail(format!("cannot start it: {e}")))?;
    tokio::pin!(interrupted);
    let status = tokio::select! {
        biased;
        () = &mut interrupted => {
            stop(&mut child).await;
            return Err(stopped());
        }
        status = child.wait() => status,
    };
    match status {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => {
            if status.signal().is_some()
                && tokio::time::timeout(SAME_SIGNAL, &mut interrupted)
                    .await
                    .is_ok()
            {
                stop(&mut child).await;
                return Err(stopped());
            }
            Err(fail(format!("exited with {status}")))
        }
        Err(e) => Err(fail(format!("cannot wait for it: {e}"))),
    }
}

/// Stops `child` and its descendants; returns once `child` is reaped.
async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let mut tree = descendants(pid);
        tree.push(pid);
        signal("-TERM", &tree).await;
        if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
            let _ = child.start_kill();
        }
        // Descendants still there (the editor the shell forked) go too.
        tree.retain(|p| *p != pid && alive(*p));
        if !tree.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            tree.retain(|p| alive(*p));
            signal("-KILL", &tree).await;
            for _ in 0..40 {
                tree.retain(|p| alive(*p));
                if tree.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let _ = child.wait().await;
}

/// kill(1), not kill(2): this crate forbids unsafe code.
async fn signal(signal: &str, pids: &[u32]) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("kill")
        .arg(signal)
        .arg("--")
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await;
}

/// Every process below `pid`, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(parent) = stat(p).map(|(_, ppid)| ppid) {
            children.entry(parent).or_default().push(p);
        }
    }
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(p) = next.pop() {
        for &c in children.get(&p).into_iter().flatten() {
            if !found.contains(&c) {
                found.push(c);
                next.push(c);
            }
        }
    }
    found
}

/// The state letter and the parent of `pid`.
fn stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut rest = stat.rsplit_once(") ")?.1.split(' ');
    let state = rest.next()?.chars().next()?;
    Some((state, rest.next()?.parse().ok()?))
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _)| state != 'Z' && state != 'X')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_interrupted_editor_and_what_it_started_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // The shell forks the script, the script forks a sleep that ignores
        // SIGTERM: each must be gone when run_editor returns.
        let script = format!(
            "sh -c 'trap \"\" TERM; sleep 30 & echo $! > {p}.tmp; mv {p}.tmp {p}; wait'",
            p = pids.display()
        );
        let watched = pids.clone();
        let ready = async move {
            while !watched.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let err = run_editor(&format!("{script}; :"), dir.path(), "v.yml", ready)
            .await
            .unwrap_err();
        assert!(matches!(err, VaultError::Interrupted { .. }), "{err}");
        let sleep: u32 = std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(!alive(sleep), "the editor's child outlived the edit");
    }

    #[test]
    fn the_process_tree_is_read_from_proc() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30; :"])
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while descendants(child.id()).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let below = descendants(child.id());
        assert_eq!(below.len(), 1, "{below:?}");
        assert!(descendants(std::process::id()).contains(&child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(child.id()));
    }
}
