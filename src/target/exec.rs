//! Runs the host tools the targets rely on (qemu-img, xorriso, …) and turns
//! a failure into a [`TargetError`] that carries the command and its stderr.

use std::process::Output;

use tokio::process::Command;

use super::TargetError;

/// Runs `cmd` to completion; a non-zero exit is an error. The command runs
/// in a process group of its own; if the future is dropped (the operator
/// interrupted), the whole group is killed: tools such as mmdebstrap fork
/// workers that would otherwise outlive oxbake.
pub(crate) async fn run(cmd: &mut Command) -> Result<Output, TargetError> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let spawn_err = |source| TargetError::Spawn {
        program: program.clone(),
        source,
    };
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // Not kill_on_drop: the guard below stops the whole group, gently first.
        .process_group(0)
        .spawn()
        .map_err(spawn_err)?;
    let mut group = GroupGuard(child.id());
    let output = child.wait_with_output().await.map_err(spawn_err)?;
    group.0 = None;
    if output.status.success() {
        return Ok(output);
    }
    Err(TargetError::Command {
        command: describe(cmd),
        status: output.status.to_string(),
        stderr: tail(&String::from_utf8_lossy(&output.stderr), 20),
    })
}

/// Stops a process group unless disarmed (its leader was waited for):
/// SIGTERM first, so that a tool can undo what it set up (mmdebstrap
/// unmounts what it mounted in its chroot), SIGKILL after [`GRACE`].
struct GroupGuard(Option<u32>);

const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(pgid) = self.0 else { return };
        signal_group("-TERM", pgid);
        let started = std::time::Instant::now();
        while alive(pgid) && started.elapsed() < GRACE {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        signal_group("-KILL", pgid);
    }
}

fn signal_group(signal: &str, pgid: u32) {
    // kill(1), not kill(2): this crate forbids unsafe code.
    let _ = std::process::Command::new("kill")
        .args([signal, "--", &format!("-{pgid}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Whether `pid` runs (a zombie waiting to be reaped does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(state != 'Z' && state != 'X')
        })
        .unwrap_or(false)
}

/// The program and its arguments, for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let std = cmd.as_std();
    let mut parts = vec![std.get_program().to_string_lossy().into_owned()];
    parts.extend(std.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// The last `lines` lines of `text`, trimmed.
pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
