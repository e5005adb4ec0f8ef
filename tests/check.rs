//! `oxbake check` on the shipped project and on broken copies of it.

use crate::support::project::TestProject;

#[test]
fn the_shipped_project_is_clean() {
    let p = TestProject::copy();
    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stdout().contains("8 recipe(s) are valid"),
        "{}",
        run.stdout()
    );
}

/// The shipped `prod` is checked too: a value its lb lacks is reported at
/// the place in oxbake.toml.
#[test]
fn the_shipped_prod_environment_is_checked() {
    let p = TestProject::copy();
    let config = p.read("oxbake.toml");
    assert!(config.contains("[environments.prod.roles.lb.values]"));
    p.write("oxbake.toml", &config.replace("vip = \"10.98.0.4\"\n", ""));
    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("oxbake.toml:"), "{}", run.stderr());
    assert!(run.stderr().contains("vip"), "{}", run.stderr());
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

/// Every way a recipe names a file (file and template sources, scripts,
/// repository keys, deploy templates), linked out of its folder to the
/// deploy keys, .git/, the vault password file, the project root or, by a
/// chain of links, outside the project: `check` refuses each at its place
/// and the inputs hash reads none of them.
#[test]
fn sources_linked_out_of_their_folder_are_refused_and_never_read() {
    use std::os::unix::fs::symlink;
    const SECRET: &str = "-----BEGIN OPENSSH PRIVATE KEY----- do-not-read";
    let uses = [
        (
            "files",
            "[[step]]\nkind = \"file\"\nsource = \"NAME\"\ndest = \"/etc/x\"\n",
        ),
        ("files", "[[step]]\nkind = \"shell\"\nscript = \"NAME\"\n"),
        (
            "templates",
            "[[step]]\nkind = \"template\"\nsource = \"NAME\"\ndest = \"/etc/x\"\n",
        ),
        (
            "files",
            "[[step]]\nkind = \"apt\"\npackages = [\"x\"]\n[[step.repository]]\nname = \"r\"\n\
             url = \"https://r.example/\"\nsuite = \"s\"\nkey = \"NAME\"\n",
        ),
        (
            "templates",
            "[[deploy.template]]\nsource = \"NAME\"\ndest = \"/etc/x\"\n",
        ),
    ];
    // (links made in the folder, relative to it; the name the recipe uses)
    let links: &[(&[(&str, &str)], &str)] = &[
        (&[("key", "../.oxbake/deploy")], "key"),
        (&[("git", "../.git/config")], "git"),
        (&[("pw", "../.vault-pass")], "pw"),
        (&[("up", "..")], "up/.oxbake/deploy"),
        (&[("a", "b"), ("b", "c"), ("c", "../.oxbake/deploy")], "a"),
        (&[("a", "b"), ("b", "/etc/hostname")], "a"),
    ];
    for (dir, step) in uses {
        for (made, name) in links {
            let p = TestProject::copy();
            for secret in [".oxbake/deploy", ".git/config", ".vault-pass"] {
                p.write(secret, SECRET);
            }
            let config = p.read("oxbake.toml").replace(
                "[targets.local]",
                "[secrets]\npassword_file = \".vault-pass\"\n\n[targets.local]",
            );
            p.write("oxbake.toml", &config);
            for (at, to) in *made {
                symlink(to, p.path(&format!("{dir}/{at}"))).unwrap();
            }
            let recipe = format!("role = \"base\"\n\n{}", step.replace("NAME", name));
            p.write("recipes/base.toml", &recipe);
            let (line, column) = {
                let at = recipe.find(&format!("\"{name}\"")).unwrap();
                let before = &recipe[..at];
                (
                    before.matches('\n').count() + 1,
                    at - before.rfind('\n').unwrap(),
                )
            };
            let case = format!("{dir}/{name} via {made:?}");
            let run = p.oxbake(&["check"]);
            assert_eq!(run.code(), 2, "{case}: {}", run.stderr());
            let place = format!(
                "recipes/base.toml:{line}:{column}: recipe `base`: `{dir}/{name}` resolves"
            );
            assert!(
                run.stderr().contains(&place),
                "{case}: want {place} in\n{}",
                run.stderr()
            );
            assert!(!run.stderr().contains("do-not-read"), "{case}");
            if dir == "files" || !step.contains("deploy") {
                inputs_refuse(&p, &case);
            }
        }
    }
}

/// The inputs hash, called on a project that skipped `check`, refuses the
/// link instead of hashing what it points at.
fn inputs_refuse(p: &TestProject, case: &str) {
    struct Base;
    impl oxbake::role::inputs::Lineage for Base {
        fn base_identity(&self, _: oxbake::suite::Suite) -> String {
            "base".to_owned()
        }
        fn built_version(&self, _: &str, _: &str) -> Option<String> {
            None
        }
    }
    let project = oxbake::project::Project::load(p.root()).expect("loads");
    let err = oxbake::role::inputs::inputs(&project, "base", &Base)
        .expect_err(case)
        .to_string();
    assert!(err.contains("resolves"), "{case}: {err}");
}

/// A Proxmox endpoint must be https:// without userinfo: refused at its
/// place by `check` and by every command that loads the project, and the
/// password in it is never shown.
#[test]
fn an_endpoint_over_http_or_with_userinfo_is_refused_without_its_password() {
    let shipped = "endpoint = \"https://pve.example.internal:8006\"";
    for (endpoint, says) in [
        (
            "http://pve.example.internal:8006",
            "`endpoint` must be `https://`",
        ),
        (
            "https://root:hunter2@pve.example.internal:8006",
            "`endpoint` holds userinfo",
        ),
        (
            "http://root:hunter2@pve.example.internal:8006",
            "`endpoint` holds userinfo",
        ),
    ] {
        let p = TestProject::copy();
        let config = p.read("oxbake.toml");
        let line = config[..config.find(shipped).unwrap()]
            .matches('\n')
            .count()
            + 1;
        p.write(
            "oxbake.toml",
            &config.replace(shipped, &format!("endpoint = \"{endpoint}\"")),
        );
        for args in [
            &["check"][..],
            &["build", "ui", "--target", "pve"],
            &["inputs", "ui"],
        ] {
            let run = p.oxbake_env(args, &[("OXBAKE_PVE_TOKEN_SECRET", "s")]);
            let err = run.stderr();
            assert_eq!(run.code(), 2, "{args:?} {endpoint}: {err}");
            let place = format!("oxbake.toml:{line}:12: {says}");
            assert!(
                err.contains(&place),
                "{args:?} {endpoint}: want {place} in\n{err}"
            );
            assert!(
                !err.contains("hunter2") && !run.stdout().contains("hunter2"),
                "{err}"
            );
        }
    }
}

/// Repository credentials over plain HTTP pass `check` only where the
/// recipe allows them, with a warning on stderr (and in the JSON report).
#[test]
fn insecure_repository_credentials_are_a_warning_only_when_allowed() {
    let p = TestProject::copy();
    let shipped = p.read("recipes/base.toml");
    let recipe = format!(
        "{shipped}\n[[step]]\nkind = \"apt\"\npackages = [\"x\"]\n\n\
        [[step.repository]]\nname = \"r\"\nurl = \"http://r.example/\"\nsuite = \"s\"\n\
        key = \"apt/20auto-upgrades\"\nusername = \"u\"\npassword_secret = \"pw\"\n"
    );
    let line = recipe[..recipe.find("\"http://r.").unwrap()]
        .matches('\n')
        .count()
        + 1;
    p.write("recipes/base.toml", &recipe);
    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let refused = format!(
        "recipes/base.toml:{line}:7: recipe `base`: repository `r`: credentials are sent only \
         over https://, and the URL has `http://`"
    );
    assert!(run.stderr().contains(&refused), "{}", run.stderr());
    p.write(
        "recipes/base.toml",
        &format!("{recipe}allow_insecure_credentials = true\n"),
    );
    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let warning = format!(
        "warning: recipes/base.toml:{line}:7: recipe `base`: repository `r`: credentials go \
         over plain http://"
    );
    assert!(run.stderr().contains(&warning), "{}", run.stderr());
    let run = p.oxbake(&["check", "--json"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).expect("one JSON document");
    let first = doc["warnings"][0].as_str().unwrap_or_default();
    assert!(first.contains("plain http://"), "{doc}");
}

/// The OX repository's release is compared with the role's only where the
/// OX steps are on: as shipped (no URL) the project is clean; with a URL on
/// bookworm it is refused at `debian`; said to be for trixie on a trixie
/// base, that rule passes.
#[test]
fn the_ox_repository_must_be_for_the_roles_release() {
    let p = TestProject::copy();
    let config = p.read("oxbake.toml");
    let url = "ox_repository_url = \"https://ox.example/DebianTrixie/\"";
    let on = config.replace("ox_repository_url = \"\"", url);
    p.write("oxbake.toml", &on);
    p.write("files/apt/open-xchange.asc", "key\n");
    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    let refused = "repository `open-xchange` is for Debian bullseye (`debian`), but this role \
                   builds on bookworm (the base of role `base`)";
    for at in ["recipes/backend.toml:111:10:", "recipes/ui.toml:34:10:"] {
        let line = run
            .stderr()
            .lines()
            .find(|l| l.starts_with(at))
            .map(str::to_owned);
        assert!(
            line.is_some_and(|l| l.contains(refused)),
            "{at}: {}",
            run.stderr()
        );
    }
    p.write(
        "oxbake.toml",
        &on.replace(
            "ox_repository_debian = \"bullseye\"",
            "ox_repository_debian = \"trixie\"",
        ),
    );
    let base = p.read("recipes/base.toml");
    let role = "role = \"base\"\n";
    p.write(
        "recipes/base.toml",
        &base.replacen(role, &format!("{role}base = \"trixie\"\n"), 1),
    );
    let run = p.oxbake(&["check"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    // The shipped proxmox target has a template for bookworm only.
    let warning = "recipe `base`: target `pve` has no base template for trixie (set its \
                   `base_templates.trixie`); building this role there fails";
    assert!(run.stderr().contains(warning), "{}", run.stderr());
}
