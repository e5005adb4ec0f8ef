//! What a finished command printed, and asserting that it succeeded.

use std::process::Output;

/// The command's stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts that the command exited 0, showing `what`, its exit status and
/// both of its outputs otherwise; returns its stdout.
pub fn assert_success(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout(out)
}

/// The entry for `image` (`ROLE@VERSION`) in `oxbake prune --json`'s
/// output.
pub fn prune_entry(stdout: &str, image: &str) -> serde_json::Value {
    let doc: serde_json::Value =
        serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let entries = doc["prune"]["entries"].as_array().unwrap();
    let id = |e: &serde_json::Value| {
        format!(
            "{}@{}",
            e["role"].as_str().unwrap_or_default(),
            e["version"].as_str().unwrap_or_default()
        )
    };
    entries
        .iter()
        .find(|e| id(e) == image)
        .unwrap_or_else(|| panic!("{image} not in {doc}"))
        .clone()
}
