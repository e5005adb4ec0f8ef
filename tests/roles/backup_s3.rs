//! The db side of an S3-compatible backup repository, against a real S3
//! server (moto's, from PyPI; CI installs it and sets `OXBAKE_REQUIRE_S3=1`)
//! and Debian's restic: with `backup_repository = "s3:…"` the rendered
//! backup.env and s3.env lead `oxbake-backup snapshots` to the bucket,
//! with the keys of the two optional secrets in restic's environment; a
//! bucket that no backup made yet holds no snapshot; an S3 repository
//! without its keys is refused when the template renders, and a backup VM's
//! repository writes no key at all.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Roles, assert_success, command, stdout, write, write_mode};
use crate::support::tools::folder_with;

const KEY_ID: &str = "AKIAOXBAKES3TEST";
const SECRET_KEY: &str = "s3-secret-test-7f2e";

/// moto's S3 server on a free loopback port, stopped when dropped.
struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    fn start(bin: &Path) -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin.join("moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = S3Server { child, port };
        let until = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "moto_server did not listen");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `oxbake-backup ARGS` with the configuration in `conf`, restic through
/// the shim in `shim`.
fn script(conf: &Path, shim: &Path, args: &[&str]) -> std::process::Output {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("files/backup/oxbake-backup");
    let path = format!("{}:{}", shim.display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new("bash");
    cmd.arg(file).args(args);
    cmd.env("OXBAKE_BACKUP_CONF", conf).env("PATH", path);
    command(&mut cmd, "oxbake-backup")
}

#[test]
fn the_db_side_reaches_an_s3_repository_with_the_keys_of_its_secrets() {
    let Some(moto) = folder_with(
        &["moto_server"],
        "OXBAKE_REQUIRE_S3",
        "S3 repositories not tested",
    ) else {
        return;
    };
    let Some(restic) = folder_with(
        &["restic"],
        "OXBAKE_REQUIRE_S3",
        "S3 repositories not tested",
    ) else {
        return;
    };
    let server = S3Server::start(&moto);
    let repository = format!("s3:http://127.0.0.1:{}/oxbake-s3-test", server.port);
    let mut roles = Roles::load();
    roles.set("db", "env", "backup_repository", repository.as_str());

    // Without its keys an S3 repository is refused, naming what is missing.
    let refused = roles
        .try_render_deploy("db", "backup/s3.env.j2")
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("set the secrets backup_s3_access_key_id and backup_s3_secret_access_key"),
        "{refused}"
    );
    roles.set("db", "secrets", "backup_s3_access_key_id", KEY_ID);
    roles.set("db", "secrets", "backup_s3_secret_access_key", SECRET_KEY);

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    let env = roles.render_deploy("db", "backup/backup.env.j2");
    assert!(env.contains(&format!("repository='{repository}'")), "{env}");
    write(&conf, "backup.env", &env);
    let s3 = roles.render_deploy("db", "backup/s3.env.j2");
    write_mode(&conf, "s3.env", &s3, 0o600);
    let password = roles.render_deploy("db", "backup/password.j2");
    write_mode(&conf, "password", &password, 0o600);
    // restic, as the script runs it, says whether the keys reached it.
    let shim = dir.path().join("shim");
    let seen = dir.path().join("seen");
    write_mode(
        &shim,
        "restic",
        &format!(
            "#!/bin/sh\nif [ \"$AWS_ACCESS_KEY_ID\" = {KEY_ID} ] && [ \"$AWS_SECRET_ACCESS_KEY\" = {SECRET_KEY} ]; then echo keys; else echo none; fi >> {seen}\nexec {real} \"$@\"\n",
            seen = seen.display(),
            real = restic.join("restic").display(),
        ),
        0o755,
    );

    // A bucket that no backup made yet: no snapshot, not an error.
    let none = script(&conf, &shim, &["snapshots"]);
    assert_success(&none, "oxbake-backup snapshots (no repository yet)");
    assert_eq!(stdout(&none).trim(), "[]");

    // One backup into it (restic with the same files), then listed.
    let data = write(dir.path(), "data/rows", "drill-row-1\n");
    let backup = Command::new("bash")
        .args([
            "-c",
            "set -a; . \"$1/backup.env\"; . \"$1/s3.env\"; set +a; \
             export RESTIC_PASSWORD_FILE=\"$1/password\" RESTIC_REPOSITORY=\"$repository\"; \
             restic init -q && restic backup -q --host \"$series\" --tag oxbake-db \"$2\"",
            "backup",
        ])
        .arg(&conf)
        .arg(&data)
        .output()
        .unwrap();
    assert_success(&backup, "restic init and backup into the bucket");
    let listed = script(&conf, &shim, &["snapshots"]);
    assert_success(&listed, "oxbake-backup snapshots");
    let list: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(env.contains(&format!(
        "series='{}'",
        list[0]["hostname"].as_str().unwrap()
    )));
    let seen = std::fs::read_to_string(&seen).unwrap();
    assert_eq!(
        seen, "keys\nkeys\n",
        "restic ran without the repository's keys"
    );
    for out in [&none, &listed] {
        let said = format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr));
        assert!(!said.contains(SECRET_KEY), "a key in the script's output");
    }

    // The backup VM's repository: no key is written.
    roles.set("db", "env", "backup_repository", "");
    let sftp = roles.render_deploy("db", "backup/s3.env.j2");
    assert!(!sftp.contains("AWS_"), "{sftp}");
    drop(server);
}
