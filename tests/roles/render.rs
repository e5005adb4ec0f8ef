//! Every template of every role renders with the role's variables and the
//! example deploy values; secrets land only in files that root alone reads
//! (0600), or root and the one service group that needs them (0640
//! `root:GROUP`, as Galera's SST password for mysql).

use oxbake::recipe::Action;

use super::{ROLES, Roles, assert_success, lookup, run, stdout, write};

#[test]
fn every_bake_and_deploy_template_renders() {
    let roles = Roles::load();
    assert_eq!(
        roles.project.recipes.keys().collect::<Vec<_>>().len(),
        ROLES.len(),
        "a role without role tests"
    );
    for role in ROLES {
        for (source, dest) in roles.bake_templates(role) {
            let text = roles.render_bake(role, &source);
            assert!(!text.trim().is_empty(), "{role}: `{source}` renders empty");
            assert!(
                !text.contains("{{"),
                "{role}: `{source}` -> `{dest}`:\n{text}"
            );
            assert!(
                text.ends_with('\n'),
                "{role}: `{source}` lost its last newline"
            );
        }
        for (source, dest) in roles.deploy_templates(role) {
            let text = roles.render_deploy(role, &source);
            assert!(!text.trim().is_empty(), "{role}: `{source}` renders empty");
            assert!(
                !text.contains("{{"),
                "{role}: `{source}` -> `{dest}`:\n{text}"
            );
        }
    }
}

#[test]
fn secrets_reach_only_files_that_root_alone_reads() {
    let roles = Roles::load();
    for role in ROLES {
        let recipe = roles.recipe(role);
        let context = roles.deploy_context(role);
        let secrets: Vec<String> = recipe
            .deploy
            .secrets
            .iter()
            .map(|s| lookup(&context, &format!("secrets.{s}")))
            .collect();
        for t in &recipe.deploy.templates {
            let text = roles.render_deploy(role, t.source.get_ref());
            if secrets.iter().any(|s| text.contains(s.as_str())) {
                let (mode, owner) = (t.mode.get_ref(), t.owner.get_ref());
                let root_only = mode == "0600" && owner.starts_with("root");
                let service_group =
                    mode == "0640" && owner.starts_with("root:") && owner.as_str() != "root:root";
                assert!(
                    root_only || service_group,
                    "{role}: `{}` is {mode} {owner}",
                    t.dest.get_ref()
                );
            }
        }
        // Bake templates never see secrets; their output holds none.
        for (source, _) in roles.bake_templates(role) {
            let text = roles.render_bake(role, &source);
            assert!(
                !secrets.iter().any(|s| text.contains(s.as_str())),
                "{role}: `{source}`"
            );
        }
    }
}

#[test]
fn the_ssh_group_step_creates_the_group_sshd_allows() {
    let roles = Roles::load();
    let allowed = lookup(&roles.bake_context("base"), "ssh_allow_group");
    let groups: Vec<String> = roles
        .recipe("base")
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Group(g) => Some(g.group.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(groups, std::slice::from_ref(&allowed));
    let sshd = roles.render_bake("base", "ssh/sshd_hardening.conf.j2");
    assert!(sshd.contains(&format!("AllowGroups {allowed}\n")), "{sshd}");
}

/// Keys of options Debian 12's kernel has (CONFIG_SECURITY_YAMA,
/// CONFIG_KEXEC, CONFIG_MAGIC_SYSRQ) that a minimal test kernel may lack.
const DEBIAN_KERNEL_ONLY: &[&str] = &[
    "kernel.yama.ptrace_scope",
    "kernel.kexec_load_disabled",
    "kernel.sysrq",
];

#[test]
fn every_sysctl_key_exists_in_this_kernel() {
    let roles = Roles::load();
    let source = roles.bake_source_for("base", "/etc/sysctl.d/99-oxbake.conf");
    let text = roles.render_bake("base", &source);
    let mut keys = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (key, value) = line.split_once('=').expect("key = value");
        let path = std::path::PathBuf::from(format!("/proc/sys/{}", key.trim().replace('.', "/")));
        // Keys that depend on kernel options Debian's kernel has (Yama,
        // kexec) but a test host's kernel may lack cannot be looked up here.
        if !path.exists() && DEBIAN_KERNEL_ONLY.contains(&key.trim()) {
            continue;
        }
        assert!(path.exists(), "no `{}` for `{line}`", path.display());
        assert!(value.trim().parse::<i64>().is_ok(), "{line}");
        keys += 1;
    }
    assert!(keys > 10, "{text}");
}

/// The OX settings are merged into OX's own files: keys oxbake sets are
/// replaced in place or appended, everything else stays.
#[test]
fn ox_config_merges_into_the_shipped_property_files() {
    let roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ox-config");
    let etc = dir.path().join("etc");
    for (source, dest) in roles
        .deploy_templates("backend")
        .into_iter()
        .chain(roles.bake_templates("backend"))
        .filter(|(_, d)| d.starts_with("/etc/oxbake/ox-config/"))
    {
        let name = dest.rsplit('/').next().unwrap();
        let text = if roles
            .deploy_templates("backend")
            .iter()
            .any(|(s, _)| *s == source)
        {
            roles.render_deploy("backend", &source)
        } else {
            roles.render_bake("backend", &source)
        };
        write(&src, name, &text);
    }
    let shipped = "# OX's own comment\ncom.openexchange.connector.networkListenerHost=127.0.0.1\n\
                   com.openexchange.connector.maxRequestParameters=1000\n\
                   com.openexchange.forceHTTPS = false\n";
    let server = write(&etc, "server.properties", shipped);
    let script = format!("{}/files/ox/oxbake-ox-config", env!("CARGO_MANIFEST_DIR"));
    let out = run(
        "sh",
        &[&script, src.to_str().unwrap(), etc.to_str().unwrap()],
    );
    assert_success(&out, "oxbake-ox-config");
    assert!(stdout(&out).contains("merged"), "{}", stdout(&out));
    let merged = std::fs::read_to_string(&server).unwrap();
    let lines: Vec<&str> = merged.lines().collect();
    assert_eq!(lines[0], "# OX's own comment");
    assert_eq!(
        lines[1],
        "com.openexchange.connector.networkListenerHost=10.20.0.11"
    );
    assert_eq!(
        lines[2],
        "com.openexchange.connector.maxRequestParameters=1000"
    );
    assert_eq!(lines[3], "com.openexchange.forceHTTPS=true");
    assert!(merged.contains("com.openexchange.server.knownProxies=10.20.0.12\n"));
    assert_eq!(merged.matches("networkListenerHost").count(), 1, "{merged}");
    // Running it again changes nothing.
    assert_success(
        &run(
            "sh",
            &[&script, src.to_str().unwrap(), etc.to_str().unwrap()],
        ),
        "again",
    );
    assert_eq!(std::fs::read_to_string(&server).unwrap(), merged);
    let noreply = std::fs::read_to_string(etc.join("noreply.properties")).unwrap();
    assert!(noreply.contains("com.openexchange.noreply.address=no-reply@dev.example.org\n"));
    // Without OX installed there is nothing to merge, and that is no error.
    let none = run(
        "sh",
        &[&script, src.to_str().unwrap(), "/nonexistent/ox/etc"],
    );
    assert_success(&none, "oxbake-ox-config without OX");
}

#[test]
fn ox_setup_script_is_valid_shell_and_skips_without_ox() {
    let roles = Roles::load();
    let source = roles.bake_source_for("backend", "/usr/local/sbin/oxbake-ox-setup");
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "setup", &roles.render_bake("backend", &source));
    assert_success(&run("sh", &["-n", script.to_str().unwrap()]), "sh -n");
    let out = run("sh", &[script.to_str().unwrap()]);
    assert_success(&out, "oxbake-ox-setup without OX");
    assert!(
        stdout(&out).contains("OX is not installed"),
        "{}",
        stdout(&out)
    );
}
