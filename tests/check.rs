//! `oxbake check` on the shipped project and on broken copies of it.

use crate::support::project::TestProject;

#[test]
fn the_shipped_project_is_clean() {
    let p = TestProject::copy();
    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stdout().contains("4 recipe(s) are valid"),
        "{}",
        run.stdout()
    );
}

#[test]
fn every_problem_is_reported_with_its_place() {
    let p = TestProject::copy();
    // A misspelled key in one recipe.
    let ui = p
        .read("recipes/ui.toml")
        .replacen("packages = [\"nginx\"", "pakages = [\"nginx\"", 1);
    p.write("recipes/ui.toml", &ui);
    // A missing template, an undefined variable and a bake template that
    // reads a secret, in another.
    let services = p
        .read("recipes/services.toml")
        .replace("postfix/main.cf.j2", "postfix/missing.cf.j2");
    p.write("recipes/services.toml", &services);
    p.write(
        "templates/sysctl/99-oxbake.conf.j2",
        "kernel.kptr_restrict = {{ kptr_level }}\n",
    );
    p.write(
        "templates/fail2ban/jail.local.j2",
        "[DEFAULT]\n# key: {{ secrets.db_password }}\n",
    );

    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let err = run.stderr();
    let line = |needle: &str| {
        err.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with `{needle}` in:\n{err}"))
            .to_owned()
    };
    let misspelled = line("pakages");
    assert!(misspelled.starts_with("recipes/ui.toml:"), "{misspelled}");
    assert!(
        misspelled.contains("unknown field `pakages`"),
        "{misspelled}"
    );
    assert!(line("missing.cf.j2").starts_with("recipes/services.toml:"));
    assert_eq!(
        line("kptr_level"),
        "templates/sysctl/99-oxbake.conf.j2:1:27: template uses undefined variable `kptr_level`"
    );
    let secret = line("secrets.db_password");
    assert!(
        secret
            .starts_with("templates/fail2ban/jail.local.j2:2:11: bake-phase template reads secret"),
        "{secret}"
    );
    for l in err.lines() {
        let mut parts = l.splitn(4, ':');
        let (_, line, col) = (parts.next(), parts.next(), parts.next());
        assert!(
            line.is_some_and(|n| n.parse::<usize>().is_ok()),
            "not path:line:column: {l}"
        );
        assert!(
            col.is_some_and(|n| n.parse::<usize>().is_ok()),
            "not path:line:column: {l}"
        );
    }
}

#[test]
fn syntax_errors_cycles_and_bad_values() {
    let p = TestProject::copy();
    p.write(
        "templates/nginx/default.conf.j2",
        "server {\n  {% if %}\n}\n",
    );
    let base = p.read("recipes/base.toml").replacen(
        "role = \"base\"",
        "role = \"base\"\nfrom = \"ui\"",
        1,
    );
    p.write("recipes/base.toml", &base);
    let backend = p
        .read("recipes/backend.toml")
        .replace("mode = \"0640\"", "mode = \"0999\"")
        .replace(
            "dest = \"/etc/oxbake/ox-config/caldav.properties\"",
            "dest = \"../etc/caldav.properties\"",
        );
    p.write("recipes/backend.toml", &backend);
    p.write("recipes/zz.toml", "role = \"services\"\n");

    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 2);
    let err = run.stderr();
    for needle in [
        "templates/nginx/default.conf.j2:2:",
        "`from` makes a cycle",
        "mode `0999`",
        "destination `../etc/caldav.properties`",
        "recipes/zz.toml:1:8: duplicate role `services`: `recipes/services.toml` defines it too",
    ] {
        assert!(err.contains(needle), "expected `{needle}` in:\n{err}");
    }
}

#[test]
fn json_report_lists_the_problems() {
    let p = TestProject::copy();
    p.write(
        "recipes/extra.toml",
        "role = \"extra\"\nfrom = \"nowhere\"\n",
    );
    let run = p.oxbake(&["check", "--json"]);
    assert_eq!(run.code(), 2);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).expect("one JSON document");
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["problems"][0]["path"], "recipes/extra.toml");
    assert_eq!(doc["problems"][0]["line"], 2);
}

#[test]
fn a_folder_without_a_project_is_invalid_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(dir.path())
        .arg("check")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("holds no `oxbake.toml`"));
}

#[test]
fn a_proxmox_target_without_its_token_secret_is_invalid_input() {
    let p = TestProject::copy();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(p.root())
        .args(["build", "ui", "--target", "pve"])
        .env_remove("OXBAKE_PVE_TOKEN_SECRET")
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(
        err.contains("`OXBAKE_PVE_TOKEN_SECRET`") && err.contains("is not set"),
        "{err}"
    );
    assert!(
        !p.root().join(".oxbake/local/vms").exists(),
        "nothing was created"
    );
}

#[test]
fn a_closed_stderr_changes_no_exit_code() {
    let p = TestProject::copy();
    p.write(
        "recipes/extra.toml",
        "role = \"extra\"\nfrom = \"nowhere\"\n",
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(p.root())
        .arg("check")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(
        child.wait().unwrap().code(),
        Some(2),
        "no panic on a closed pipe"
    );
}
