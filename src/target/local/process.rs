//! The QEMU process of a VM, found through its pid file and `/proc`.

use std::path::Path;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// The pid of the QEMU process that runs the VM whose pid file is
/// `pid_file`, if that process is alive. A stale pid file (process gone, or
/// the pid reused by another program) yields `None`.
pub async fn running_pid(pid_file: &Path) -> Option<u32> {
    let text = tokio::fs::read_to_string(pid_file).await.ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    (alive(pid).await && owns(pid, pid_file).await).then_some(pid)
}

/// Alive and not a zombie.
pub async fn alive(pid: u32) -> bool {
    let Ok(stat) = tokio::fs::read_to_string(format!("/proc/{pid}/stat")).await else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X'))
}

/// Whether `pid` is QEMU started with this exact pid file.
async fn owns(pid: u32, pid_file: &Path) -> bool {
    let Ok(cmdline) = tokio::fs::read(format!("/proc/{pid}/cmdline")).await else {
        return false;
    };
    let wanted = pid_file.as_os_str().as_encoded_bytes();
    let mut args = cmdline.split(|b| *b == 0);
    let is_qemu = args
        .next()
        .is_some_and(|prog| prog.windows(11).any(|w| w == b"qemu-system"));
    is_qemu && cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
}

/// Waits until `pid` has exited; `false` if it still runs at `deadline`.
pub async fn wait_exit(pid: u32, deadline: Instant) -> bool {
    loop {
        if !alive(pid).await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(100)).await;
    }
}

/// Sends SIGKILL (through kill(1): this crate forbids unsafe code) and waits
/// up to five seconds for the process to go.
pub async fn kill(pid: u32) -> bool {
    let _ = tokio::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    wait_exit(pid, Instant::now() + Duration::from_secs(5)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn own_process_is_alive_but_not_qemu() {
        let me = std::process::id();
        assert!(alive(me).await);
        assert!(!owns(me, Path::new("/nonexistent/pid")).await);
    }

    #[tokio::test]
    async fn stale_pid_file_means_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        std::fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(running_pid(&pid_file).await, None);
        assert_eq!(running_pid(&dir.path().join("missing")).await, None);
    }

    #[tokio::test]
    async fn kill_ends_a_process() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let reaper = tokio::spawn(async move { child.wait().await });
        assert!(kill(pid).await);
        assert!(!reaper.await.unwrap().unwrap().success());
    }
}
