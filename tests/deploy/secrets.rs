//! A secret in a render error never reaches an output: every kind of error
//! a deploy template can make while a secret is in its context (a secret
//! used as an include name, a missing include, an operation or a filter
//! that quotes its operand, a syntax error in a template named by a secret)
//! fails `deploy --plan` with no trace of the secret, as written, escaped,
//! or one line of it. `check` (which a deploy runs first) refuses the
//! computed names statically; the rest fail at render, redacted (the
//! renderer's own redaction of quoted names is tested in src/render.rs).

use oxbake::registry::Artifact;

use super::channel_with_fake_images;
use crate::support::project::TestProject;

/// A key of several lines (escaped as `\n` in a quoted name).
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7Vx\"q'z\n-----END PRIVATE KEY-----\n";
const DB: &str = "db-pw-77aa-secret";
const ADMIN: &str = "admin-pw-3b9e-secret";

/// What would give a secret away in an output.
fn traces() -> Vec<String> {
    let mut all = vec![DB.to_owned(), ADMIN.to_owned(), format!("{KEY:?}")];
    all.extend(
        KEY.lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::to_owned),
    );
    all.push("MIIEvQ".to_owned());
    all
}

/// Templates of the ui (`secrets.tls_private_key`) or the backend
/// (`secrets.db_password`) that fail to render, each with its secret.
const HOSTILE: &[(&str, &str, &str)] = &[
    (
        "include-secret",
        "nginx/tls.key.j2",
        "{% include secrets.tls_private_key %}",
    ),
    (
        "import-secret",
        "nginx/tls.key.j2",
        "{% import secrets.tls_private_key as k %}",
    ),
    (
        "extends-secret",
        "nginx/tls.key.j2",
        "{% extends secrets.tls_private_key %}",
    ),
    (
        "from-secret",
        "nginx/tls.key.j2",
        "{% from secrets.tls_private_key import x %}",
    ),
    (
        "include-list",
        "nginx/tls.key.j2",
        "{% include ['nope.j2', secrets.tls_private_key] %}",
    ),
    (
        "include-concat",
        "ox/db_password.j2",
        "{% include 'x/' ~ secrets.db_password %}",
    ),
    (
        "operand",
        "ox/db_password.j2",
        "{{ secrets.db_password // 0 }}",
    ),
    (
        "operand-key",
        "nginx/tls.key.j2",
        "{{ secrets.tls_private_key - 1 }}",
    ),
    (
        "filter",
        "ox/db_password.j2",
        "{{ secrets.db_password | int(strict=true) }}",
    ),
    (
        "index",
        "ox/db_password.j2",
        "{{ {'a': 1}[secrets.db_password] }}",
    ),
    (
        "range",
        "ox/db_password.j2",
        "{{ range(secrets.db_password) }}",
    ),
    ("call", "ox/db_password.j2", "{{ secrets.db_password() }}"),
    (
        "attribute",
        "nginx/tls.key.j2",
        "{{ secrets.tls_private_key.missing }}",
    ),
    (
        "syntax-in-named",
        "ox/db_password.j2",
        "{% include secrets.db_password %}",
    ),
];

#[test]
fn no_render_error_shows_a_secret() {
    for (case, at, text) in HOSTILE {
        let project = TestProject::copy();
        channel_with_fake_images(project.root());
        project.write(&format!("templates/{at}"), &format!("{text}\n"));
        // A template whose name is the secret, with a syntax error that
        // quotes its source.
        project.write(&format!("templates/{DB}"), "{{ oops }\n");
        project.write(&format!("templates/x/{DB}"), "{% if %}\n");
        let env = [
            ("OXBAKE_SECRET_TLS_PRIVATE_KEY", KEY),
            ("OXBAKE_SECRET_DB_PASSWORD", DB),
            ("OXBAKE_SECRET_OX_ADMIN_PASSWORD", ADMIN),
        ];
        let plan = project.oxbake_env(&["deploy", "lab", "--plan"], &env);
        let json = project.oxbake_env(&["deploy", "lab", "--plan", "--json"], &env);
        let check = project.oxbake_env(&["check"], &env);
        // `check` does not render deploy templates: it refuses the
        // computed names, each at its place.
        if text.starts_with("{%") {
            assert_eq!(check.code(), 2, "{case}: {}", check.stderr());
            assert!(
                check.stderr().contains(&format!("templates/{at}:1:")),
                "{case}: {}",
                check.stderr()
            );
        }
        for (what, run) in [("plan", &plan), ("json", &json), ("check", &check)] {
            assert!(what == "check" || run.code() != 0, "{case} {what}: renders");
            for trace in traces() {
                for out in [run.stdout(), run.stderr()] {
                    assert!(!out.contains(&trace), "{case} {what}: `{trace}` in\n{out}");
                }
            }
        }
        // A deploy checks the project first: a computed name never gets to
        // render; what check cannot see fails at render, redacted.
        let why = if text.starts_with("{%") {
            "must name its template by a string literal"
        } else {
            "deploy templates of role"
        };
        assert!(plan.stderr().contains(why), "{case}: {}", plan.stderr());
    }
}

/// A db node in lab whose backups go to an S3 bucket: without the two
/// optional keys the plan is refused by the db's s3.env template, naming
/// both secrets and showing none; with them it renders. Lab without S3
/// needs neither.
#[test]
fn an_s3_repository_needs_its_two_optional_keys() {
    let project = TestProject::copy();
    let root = project.root();
    channel_with_fake_images(root);
    super::channel_of(root, &["db"], |role| Artifact::Local {
        path: format!(".oxbake/local/templates/{role}-missing.qcow2").into(),
        sha256: "b".repeat(64).parse().unwrap(),
    });
    let config = project.read("oxbake.toml");
    let lab_db = "\n[environments.lab.roles.db]\naddresses = [\"10.99.0.41\"]\n\n\
                  [environments.lab.roles.db.values]\n\
                  backup_repository = \"s3:https://s3.example.net/oxbake-lab\"\n";
    let at = config.find("\n[environments.lab.roles.ui]").unwrap();
    project.write(
        "oxbake.toml",
        &format!("{}{lab_db}{}", &config[..at], &config[at..]),
    );
    let values: toml::Table = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/role-values.toml"),
    )
    .unwrap()
    .parse()
    .unwrap();
    let key = |name: &str| values["db"]["secrets"][name].as_str().unwrap().to_owned();
    let (ssh_key, host_key) = (key("backup_ssh_key"), key("backup_host_key"));
    let mut env = vec![
        ("OXBAKE_SECRET_TLS_PRIVATE_KEY", KEY),
        ("OXBAKE_SECRET_DB_PASSWORD", DB),
        ("OXBAKE_SECRET_OX_ADMIN_PASSWORD", ADMIN),
        ("OXBAKE_SECRET_SST_PASSWORD", "sst-pw-5e1a-secret"),
        ("OXBAKE_SECRET_BACKUP_PASSWORD", "restic-pw-0c3d-secret"),
        ("OXBAKE_SECRET_BACKUP_SSH_KEY", ssh_key.as_str()),
        ("OXBAKE_SECRET_BACKUP_HOST_KEY", host_key.as_str()),
        // One of the two is not enough.
        ("OXBAKE_SECRET_BACKUP_S3_ACCESS_KEY_ID", "AKIAOXBAKELAB"),
    ];
    let refused = project.oxbake_env(&["deploy", "lab", "--plan"], &env);
    assert_eq!(refused.code(), 1, "{}", refused.stdout());
    assert!(
        refused
            .stderr()
            .contains("template `backup/s3.env.j2` line 6")
            && refused.stderr().contains(
                "set the secrets backup_s3_access_key_id and backup_s3_secret_access_key"
            ),
        "{}",
        refused.stderr()
    );
    assert!(!refused.stderr().contains("AKIAOXBAKELAB"));
    env.push((
        "OXBAKE_SECRET_BACKUP_S3_SECRET_ACCESS_KEY",
        "s3-secret-9d2b",
    ));
    let plan = project.oxbake_env(&["deploy", "lab", "--plan"], &env);
    assert_eq!(plan.code(), 0, "{}", plan.stderr());
    assert!(plan.stdout().contains("lab-db-1"), "{}", plan.stdout());
    for out in [plan.stdout(), plan.stderr()] {
        assert!(!out.contains("s3-secret-9d2b") && !out.contains("AKIAOXBAKELAB"));
    }
}
