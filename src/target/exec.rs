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
/// unmounts what it mounted in its chroot), SIGKILL to what is left of the
/// group after [`GRACE`]. It waits for every member, not only the leader: a
/// worker may still be undoing its mounts when the leader has gone.
struct GroupGuard(Option<u32>);

const GRACE: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        let Some(pgid) = self.0 else { return };
        signal_group("-TERM", pgid);
        let started = std::time::Instant::now();
        while group_alive(pgid) && started.elapsed() < GRACE {
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

/// Whether a process of group `pgid` runs (a zombie waiting to be reaped
/// does not).
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            return false;
        };
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| running_in(&stat, pgid))
            .unwrap_or(false)
    })
}

/// From one `/proc/PID/stat` line: whether it is a live member of `pgid`.
/// The fields after the command's closing parenthesis are state, parent
/// and process group.
fn running_in(stat: &str, pgid: u32) -> Option<bool> {
    let mut rest = stat.rsplit_once(") ")?.1.split(' ');
    let state = rest.next()?.chars().next()?;
    let group: u32 = rest.nth(1)?.parse().ok()?;
    Some(group == pgid && state != 'Z' && state != 'X')
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_says_its_group_and_whether_it_runs() {
        let line = "4242 (perl (mmdebstrap)) S 4200 4200 4200 0 -1 4194560";
        assert_eq!(running_in(line, 4200), Some(true));
        assert_eq!(running_in(line, 4242), Some(false));
        let zombie = "4243 (apt) Z 4242 4200 4200 0 -1";
        assert_eq!(running_in(zombie, 4200), Some(false));
        assert_eq!(running_in("garbage", 4200), None);
    }

    #[tokio::test]
    async fn a_dropped_run_stops_the_workers_its_leader_left() {
        // The leader starts a worker in its group and waits for it; the
        // run is dropped (an interrupt): neither may outlive it.
        let marker = format!("oxbake-exec-test-{}", std::process::id());
        let mut cmd = Command::new("sh");
        let worker = format!("sleep 300; : {marker}");
        cmd.args(["-c", &format!("sh -c '{worker}' & sh -c '{worker}'; :")]);
        let run = run(&mut cmd);
        let _ = tokio::time::timeout(std::time::Duration::from_millis(300), run).await;
        let left = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .filter(|c| String::from_utf8_lossy(c).contains(&marker))
            .count();
        assert_eq!(left, 0);
    }
}
