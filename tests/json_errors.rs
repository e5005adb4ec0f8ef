//! The command-line contract on failure: with `--json`, every command that
//! fails still prints exactly one JSON document on stdout, whose
//! `error.exit` is the process's exit code (stderr keeps the human lines);
//! a result that cannot be written exits 1.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::project::{Run, TestProject};

/// The one JSON document on stdout (the whole of stdout must be it).
fn document(args: &[&str], run: &Run) -> Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document ({e}):\n{}\nstderr:\n{}",
            run.stdout(),
            run.stderr()
        )
    })
}

/// Runs `oxbake --json ARGS…`, expects a failure, and checks its document.
fn fails(project: &TestProject, args: &[&str], env: &[(&str, &str)]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = project.oxbake_env(&all, env);
    let code = run.code();
    assert_ne!(code, 0, "{args:?} should fail: {}", run.stdout());
    let doc = document(args, &run);
    let error = &doc["error"];
    assert_eq!(error["exit"], code, "{args:?}: {doc}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "{args:?}: {doc}");
    assert!(error["problems"].is_array(), "{args:?}: {doc}");
    assert!(!run.stderr().trim().is_empty(), "{args:?}: no human line");
    (code, doc)
}

#[test]
fn every_command_that_fails_prints_one_error_document() {
    let project = TestProject::copy();
    let cache = tempfile::tempdir().unwrap();
    // A cache "folder" that is a file: bootstrap fails before any work.
    let not_a_dir = cache.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    let no_cache = [("OXBAKE_CACHE_DIR", not_a_dir.to_str().unwrap())];
    let fifo = cache.path().join("image.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let sha = "a".repeat(64);
    let v = "2026.01.01.1";
    let cases: Vec<Vec<&str>> = vec![
        vec!["inputs", "nosuch"],
        vec!["base", "bootstrap"],
        vec!["base", "import", fifo.to_str().unwrap(), "--sha256", &sha],
        vec!["build", "nosuch"],
        vec!["ls", "--target", "nosuch"],
        vec!["show", "nosuch"],
        vec!["nightly", "--target", "nosuch"],
        vec!["gc", "--target", "nosuch"],
        vec!["vault", "view", "missing.yml"],
        vec!["vault", "encrypt", "missing.yml"],
        vec!["vault", "edit", "missing.yml"],
        vec!["promote", "base", v, "--to", "dev"],
        vec!["rollback", "base", "--channel", "nosuch"],
        vec!["publish", "base@2026.01.01.1", "--target", "pve"],
        vec!["publish", "base", "--target", "nosuch"],
        vec!["revoke", "base", v, "--reason", "test"],
        vec!["prune", "--target", "nosuch"],
        vec!["diff", "base", v, "2026.01.01.2"],
        vec!["deploy", "nosuch"],
        vec!["deploy", "nosuch", "--plan"],
        vec!["destroy", "nosuch"],
        // Command lines clap refuses.
        vec!["nosuch"],
        vec!["promote", "base"],
        vec!["publish", "base@2026.01.01.1"],
        vec!["revoke", "base", v, "--reason", " "],
        vec!["base", "import", "x", "--sha256", &sha, "--max-size", "0"],
    ];
    for args in &cases {
        fails(&project, args, &no_cache);
    }
    let (code, doc) = fails(
        &project,
        &["base", "import", fifo.to_str().unwrap(), "--sha256", &sha],
        &[],
    );
    assert_eq!(code, 2, "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("`{}` is a FIFO", fifo.display())),
        "{message}"
    );
}

#[test]
fn invalid_input_lists_each_problem_at_its_place() {
    let project = TestProject::copy();
    project.write("recipes/bad.toml", "role = \"bad\"\ncores = \"x\"\n");
    let (code, doc) = fails(&project, &["check"], &[]);
    assert_eq!(code, 2);
    let problems = doc["error"]["problems"].as_array().unwrap();
    assert!(!problems.is_empty(), "{doc}");
    for p in problems {
        assert!(p["path"].as_str().is_some_and(|s| !s.is_empty()), "{p}");
        assert!(p["line"].as_u64().is_some_and(|n| n > 0), "{p}");
        assert!(p["column"].as_u64().is_some_and(|n| n > 0), "{p}");
        assert!(p["message"].as_str().is_some(), "{p}");
    }
    // check's own report is the document, with the error added.
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["problems"], doc["error"]["problems"]);
}

#[test]
fn a_result_that_cannot_be_written_exits_1() {
    let project = TestProject::copy();
    for json in [false, true] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oxbake"));
        cmd.arg("-C").arg(project.root()).arg("ls");
        if json {
            cmd.arg("--json");
        }
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = cmd
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "--json {json}: {stderr}");
        assert!(
            stderr.contains("error: cannot write the result to stdout"),
            "{stderr}"
        );
    }
    // The same command with a writable stdout succeeds.
    let run = project.oxbake(&["--json", "ls"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc = document(&["ls"], &run);
    assert!(doc.get("error").is_none(), "{doc}");
}
