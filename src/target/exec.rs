//! Runs the host tools the targets rely on (qemu-img, xorriso, …) and turns
//! a failure into a [`TargetError`] that carries the command and its stderr.

use std::process::Output;

use tokio::process::Command;

use super::TargetError;

/// Runs `cmd` to completion; a non-zero exit is an error.
pub(crate) async fn run(cmd: &mut Command) -> Result<Output, TargetError> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let output = cmd
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| TargetError::Spawn {
            program: program.clone(),
            source,
        })?;
    if output.status.success() {
        return Ok(output);
    }
    Err(TargetError::Command {
        command: describe(cmd),
        status: output.status.to_string(),
        stderr: tail(&String::from_utf8_lossy(&output.stderr), 20),
    })
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
