//! `oxbake vault …` on a copy of the shipped project, with the vault
//! fixtures that ansible-vault wrote (tests/data/vault/README.md), and, when
//! `ansible-vault` is installed, interoperability both ways.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::project::{Run, TestProject};
use crate::support::tools::folder_with;

mod links;
mod signals;

const VAULT: &str = "group_vars/all/vault.yml";
const PASSWORD: &str = "correct horse";
/// Every value in the fixtures; none may show up in a failing run's output.
const VALUES: [&str; 2] = ["Db-p4ss", "ox admin"];

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/vault")
        .join(name)
}

/// The shipped project with a `[secrets]` table and the 1.1 fixture as its
/// vault.
fn project(secrets: &str) -> TestProject {
    let p = TestProject::copy();
    let config = p.read("oxbake.toml");
    p.write("oxbake.toml", &format!("{config}\n[secrets]\n{secrets}\n"));
    p.write(
        VAULT,
        &std::fs::read_to_string(data("ansible-1.1.yml")).unwrap(),
    );
    p
}

/// Runs oxbake with exactly the vault variables given.
fn oxbake(p: &TestProject, args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(p.root())
        .args(args)
        .env_remove("OXBAKE_VAULT_PASSWORD")
        .env_remove("EDITOR")
        .envs(env.iter().copied())
        .output()
        .expect("run oxbake");
    Run(output)
}

fn with_password() -> [(&'static str, &'static str); 1] {
    [("OXBAKE_VAULT_PASSWORD", PASSWORD)]
}

#[test]
fn view_with_the_password_from_the_environment() {
    let p = project(&format!("vault = \"{VAULT}\""));
    let run = oxbake(&p, &["vault", "view"], &with_password());
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stdout()
            .contains("vault_db_password: \"Db-p4ss: \\\"quoted\\\" é\""),
        "{}",
        run.stdout()
    );
}

#[test]
fn view_json_with_the_password_from_a_file_named_in_the_settings() {
    let p = project(&format!(
        "vault = \"{VAULT}\"\npassword_file = \"secret/pw\"\n"
    ));
    p.write("secret/pw", &format!("{PASSWORD}\n"));
    let run = oxbake(&p, &["--json", "vault", "view"], &[]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let json: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(json["vault_db_password"], "Db-p4ss: \"quoted\" é");
    assert_eq!(json["vault_ox_admin_password"], "ox admin");
}

#[test]
fn password_env_names_another_variable() {
    let p = project(&format!("vault = \"{VAULT}\"\npassword_env = \"MY_PW\""));
    let run = oxbake(&p, &["vault", "view"], &[("MY_PW", PASSWORD)]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let missing = oxbake(&p, &["vault", "view"], &with_password());
    assert_eq!(missing.code(), 2);
    assert!(
        missing.stderr().contains("export MY_PW"),
        "{}",
        missing.stderr()
    );
}

#[test]
fn encrypt_in_place_then_view() {
    let p = project(&format!("vault = \"{VAULT}\""));
    p.write("new.yml", "vault_new: \"fresh value\"\n");
    let file = p.path("new.yml");
    let file = file.to_str().unwrap();
    let run = oxbake(&p, &["vault", "encrypt", file], &with_password());
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let text = p.read("new.yml");
    assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256\n"), "{text}");
    assert!(!text.contains("fresh value"));
    let mode = std::fs::metadata(p.path("new.yml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let view = oxbake(&p, &["--json", "vault", "view", file], &with_password());
    assert_eq!(view.code(), 0, "{}", view.stderr());
    assert!(view.stdout().contains("\"vault_new\": \"fresh value\""));
    let again = oxbake(&p, &["vault", "encrypt", file], &with_password());
    assert_eq!(again.code(), 2);
    assert!(again.stderr().contains("already an encrypted vault"));
}

#[test]
fn edit_runs_the_editor_on_a_private_copy_and_reencrypts() {
    let p = project(&format!("vault = \"{VAULT}\""));
    let record = p.path("editor.log");
    let script = p.path("editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nset -e\necho \"$1\" > {log}\nstat -c %a \"$1\" \"$(dirname \"$1\")\" >> {log}\n\
             sed -i 's/ox admin/new admin/' \"$1\"\necho 'vault_added: added' >> \"$1\"\n",
            log = record.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let editor = script.to_str().unwrap();
    let env = [("OXBAKE_VAULT_PASSWORD", PASSWORD), ("EDITOR", editor)];
    let run = oxbake(&p, &["vault", "edit"], &env);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(run.stdout().contains("saved"), "{}", run.stdout());

    let log = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines[1..], ["600", "700"], "{log}");
    let temp = Path::new(lines[0]);
    assert!(!temp.exists() && !temp.parent().unwrap().exists(), "{log}");

    let view = oxbake(&p, &["--json", "vault", "view"], &with_password());
    let json: serde_json::Value = serde_json::from_str(&view.stdout()).unwrap();
    assert_eq!(json["vault_ox_admin_password"], "new admin");
    assert_eq!(json["vault_added"], "added");
    assert_eq!(json["vault_db_password"], "Db-p4ss: \"quoted\" é");
}

#[test]
fn edit_that_changes_nothing_or_fails_leaves_the_vault_as_it_was() {
    let p = project(&format!("vault = \"{VAULT}\""));
    let before = p.read(VAULT);
    for (editor, code) in [("true", 0), ("false", 1)] {
        let env = [("OXBAKE_VAULT_PASSWORD", PASSWORD), ("EDITOR", editor)];
        let run = oxbake(&p, &["vault", "edit"], &env);
        assert_eq!(run.code(), code, "{editor}: {}", run.stderr());
        assert_eq!(p.read(VAULT), before, "{editor}");
    }
}

#[test]
fn failing_runs_say_why_and_never_show_a_secret() {
    let p = project(&format!("vault = \"{VAULT}\""));
    let good = p.read(VAULT);
    let wrong = [("OXBAKE_VAULT_PASSWORD", "wrong")];
    let mut runs = vec![
        (
            oxbake(&p, &["vault", "view"], &wrong),
            "wrong password or corrupted file (HMAC mismatch)",
        ),
        (
            oxbake(&p, &["--json", "vault", "view"], &wrong),
            "HMAC mismatch",
        ),
        (
            oxbake(&p, &["vault", "view"], &[]),
            "no password: export OXBAKE_VAULT_PASSWORD",
        ),
    ];
    p.write(VAULT, &good.replacen("\n3", "\nx", 1));
    runs.push((
        oxbake(&p, &["vault", "view"], &with_password()),
        "is not valid hex",
    ));
    p.write(VAULT, &good.lines().take(2).collect::<Vec<_>>().join("\n"));
    runs.push((
        oxbake(&p, &["vault", "view"], &with_password()),
        "corrupted file",
    ));
    p.write("plain.yml", "vault_db_password:\n  nested: Db-p4ss\n");
    let plain = p.path("plain.yml");
    let args = ["vault", "encrypt", plain.to_str().unwrap()];
    runs.push((
        oxbake(&p, &args, &with_password()),
        "line 1: `vault_db_password` has no value",
    ));
    for (run, want) in runs {
        let (out, err) = (run.stdout(), run.stderr());
        assert_eq!(run.code(), 2, "{err}");
        assert_eq!(err.matches(want).count(), 1, "want `{want}` once in {err}");
        for value in VALUES.iter().chain([&PASSWORD]) {
            assert!(
                !out.contains(value) && !err.contains(value),
                "{value}:\n{out}\n{err}"
            );
        }
    }
}

/// `ansible-vault` from `$OXBAKE_ANSIBLE_VAULT` or PATH. CI installs it
/// (`pip install ansible-core`) and sets `OXBAKE_REQUIRE_ANSIBLE=1`.
fn ansible_vault() -> Option<PathBuf> {
    std::env::var_os("OXBAKE_ANSIBLE_VAULT")
        .map(PathBuf::from)
        .or_else(|| {
            let dir = folder_with(
                &["ansible-vault"],
                "OXBAKE_REQUIRE_ANSIBLE",
                "interoperability with Ansible's vault not tested",
            )?;
            Some(dir.join("ansible-vault"))
        })
}

#[test]
fn ansible_vault_and_oxbake_read_each_other() {
    let Some(ansible) = ansible_vault() else {
        return;
    };
    let p = project(&format!("vault = \"{VAULT}\"\npassword_file = \"pw\""));
    p.write("pw", PASSWORD);
    let ansible_run = |args: &[&str]| {
        let out = Command::new(&ansible)
            .args(args)
            .arg("--vault-password-file")
            .arg(p.path("pw"))
            .env("ANSIBLE_LOCAL_TEMP", p.path("ansible-tmp"))
            .env("HOME", p.root())
            .output()
            .expect("run ansible-vault");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // ansible-vault writes, oxbake reads.
    p.write("theirs.yml", "vault_theirs: \"from ansible ü\"\n");
    ansible_run(&["encrypt", p.path("theirs.yml").to_str().unwrap()]);
    let theirs = p.path("theirs.yml");
    let run = oxbake(
        &p,
        &["--json", "vault", "view", theirs.to_str().unwrap()],
        &[],
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stdout()
            .contains("\"vault_theirs\": \"from ansible ü\"")
    );
    // oxbake writes (1.1 and 1.2), ansible-vault reads.
    for (name, extra) in [("ours.yml", None), ("ours-prod.yml", Some("prod"))] {
        let text = format!("vault_ours: 'from oxbake {name}'\n");
        p.write(name, &text);
        let file = p.path(name);
        let mut args = vec!["vault", "encrypt", file.to_str().unwrap()];
        if let Some(id) = extra {
            args.extend(["--vault-id", id]);
        }
        assert_eq!(oxbake(&p, &args, &[]).code(), 0);
        assert!(p.read(name).starts_with("$ANSIBLE_VAULT;1."));
        assert_eq!(ansible_run(&["view", file.to_str().unwrap()]), text);
    }
}
