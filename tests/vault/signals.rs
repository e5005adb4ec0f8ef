//! `vault edit` killed mid-edit, by each signal that ends an edit in
//! practice: SIGTERM (`kill`), SIGINT (Ctrl-C), SIGHUP (a dropped SSH
//! session). Sent to oxbake alone (the editor stays up: oxbake must stop
//! it) and to its whole process group (as a terminal does: the editor dies
//! at once too). Each time oxbake exits 130, the plaintext copy and its
//! folder are gone, the editor is gone, and the vault is unchanged.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{PASSWORD, VALUES, VAULT, project};

/// Whether `pid` runs (a zombie does not).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ")?.1.chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}

fn wait_for(path: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while !path.exists() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// An editor that says where the plaintext is and its pid, then waits.
fn editor(dir: &Path) -> (PathBuf, PathBuf) {
    let ready = dir.join("editor.ready");
    let script = dir.join("editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$1\" > {r}.tmp\necho $$ >> {r}.tmp\nmv {r}.tmp {r}\nexec sleep 60\n",
            r = ready.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, ready)
}

#[test]
fn edit_killed_by_term_int_or_hup_leaves_no_plaintext_and_the_vault_as_it_was() {
    for signal in ["TERM", "INT", "HUP"] {
        for group in [false, true] {
            let case = format!(
                "SIG{signal} to {}",
                if group { "the group" } else { "oxbake" }
            );
            let p = project(&format!("vault = \"{VAULT}\""));
            let before = p.read(VAULT);
            let (script, ready) = editor(p.root());
            let mut child = Command::new(env!("CARGO_BIN_EXE_oxbake"))
                .arg("-C")
                .arg(p.root())
                .args(["vault", "edit"])
                .env("OXBAKE_VAULT_PASSWORD", PASSWORD)
                .env("EDITOR", &script)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .process_group(0)
                .spawn()
                .unwrap();
            assert!(
                wait_for(&ready, Duration::from_secs(20)),
                "{case}: no editor"
            );
            let told = std::fs::read_to_string(&ready).unwrap();
            let (temp, editor_pid) = told.trim().split_once('\n').unwrap();
            let temp = PathBuf::from(temp);
            let plain = std::fs::read_to_string(&temp).unwrap();
            assert!(plain.contains("Db-p4ss"), "{case}: {plain}");

            let pid = child.id().to_string();
            let whom = if group { format!("-{pid}") } else { pid };
            let sent = Command::new("kill")
                .args([&format!("-{signal}"), "--", &whom])
                .status()
                .unwrap();
            assert!(sent.success(), "{case}");
            let start = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if start.elapsed() > Duration::from_secs(20) {
                    let _ = child.kill();
                    panic!("{case}: oxbake did not end");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let out = child.wait_with_output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert_eq!(out.status.code(), Some(130), "{case}: {stderr}");
            assert!(stderr.contains("edit interrupted"), "{case}: {stderr}");
            assert!(!temp.exists(), "{case}: {} is left", temp.display());
            assert!(
                !temp.parent().unwrap().exists(),
                "{case}: its folder is left"
            );
            assert!(!alive(editor_pid), "{case}: the editor outlived oxbake");
            assert_eq!(p.read(VAULT), before, "{case}");
            for value in VALUES {
                assert!(!stdout.contains(value) && !stderr.contains(value), "{case}");
            }
        }
    }
}
