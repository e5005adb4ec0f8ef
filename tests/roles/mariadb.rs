//! The backend's MariaDB: a real mariadbd with Debian's 50-server.cnf and
//! the deploy-time 60-oxbake.cnf, in a network namespace of its own. The
//! hardening script removes what it must, the recipe's SQL checks fail
//! before it and pass after it, and the server listens on the deploy
//! address only.

use std::path::Path;

use super::{Roles, assert_check, assert_success, in_netns, run, stdout, write};

const CNF_DEST: &str = "/etc/mysql/mariadb.conf.d/60-oxbake.cnf";

/// A data folder and option files; `bin/` holds `mariadb` and
/// `mariadb-admin` wrappers that talk to this server's socket.
fn prepare(dir: &Path, roles: &Roles) {
    let d = dir.display();
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::copy(
        "/etc/mysql/mariadb.conf.d/50-server.cnf",
        dir.join("conf.d/50-server.cnf"),
    )
    .expect("Debian's 50-server.cnf (package mariadb-server)");
    let name = CNF_DEST.rsplit('/').next().unwrap();
    let ours = roles.render_deploy("backend", &roles.deploy_source_for("backend", CNF_DEST));
    write(dir, &format!("conf.d/{name}"), &ours);
    write(
        dir,
        "conf.d/99-test.cnf",
        &format!(
            "[mariadbd]\ndatadir = {d}/data\nsocket = {d}/mysqld.sock\npid-file = {d}/mysqld.pid\n\
             log-error = {d}/error.log\nuser = root\n"
        ),
    );
    write(dir, "my.cnf", &format!("!includedir {d}/conf.d\n"));
    write(
        dir,
        "client.cnf",
        &format!("[client]\nsocket = {d}/mysqld.sock\n"),
    );
    for tool in ["mariadb", "mariadb-admin"] {
        let path = write(
            dir,
            &format!("bin/{tool}"),
            &format!("#!/bin/sh\nexec /usr/bin/{tool} --defaults-file={d}/client.cnf \"$@\"\n"),
        );
        assert_success(&run("chmod", &["0755", path.to_str().unwrap()]), "chmod");
    }
    let install = run(
        "mariadb-install-db",
        &[
            &format!("--defaults-file={d}/my.cnf"),
            "--auth-root-authentication-method=socket",
        ],
    );
    assert_success(&install, "mariadb-install-db");
}

#[test]
fn hardening_and_deploy_binding_meet_the_backend_checks() {
    let roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    prepare(dir.path(), &roles);
    let d = dir.path().display();
    let checks: Vec<_> = roles
        .recipe("backend")
        .checks
        .iter()
        .filter(|c| c.run.contains("mariadb -N"))
        .collect();
    assert!(checks.len() >= 3, "the backend checks MariaDB");
    let run_checks = |label: &str| {
        checks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("echo '== {label} {i}'; {}; ", c.run))
            .collect::<String>()
    };
    let harden = format!("{}/files/mariadb/harden.sh", env!("CARGO_MANIFEST_DIR"));
    let script = format!(
        "export PATH={d}/bin:$PATH; ip addr add 10.20.0.11/32 dev lo && \
         mariadbd --defaults-file={d}/my.cnf & \
         trap 'mariadb-admin shutdown 2>/dev/null || kill $!' EXIT; \
         for i in $(seq 300); do mariadb -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done; \
         mariadb -e \"CREATE USER IF NOT EXISTS ''@'localhost'; CREATE DATABASE IF NOT EXISTS test; GRANT ALL ON \\`test\\\\_%\\`.* TO ''@'localhost'\" || exit 1; \
         {before} sh {harden} || exit 1; {after} echo '== listening'; ss -Hltn",
        before = run_checks("before"),
        after = run_checks("after"),
    );
    let out = in_netns(&script);
    assert_success(&out, "mariadbd in a network namespace");
    let text = stdout(&out);
    let part = |name: &str| {
        text.split(&format!("== {name}\n"))
            .nth(1)
            .map(|rest| rest.split("== ").next().unwrap_or(rest).to_owned())
            .unwrap_or_else(|| panic!("no `{name}` in:\n{text}"))
    };
    let before = |i: usize| part(&format!("before {i}"));
    assert!(
        !before(0).contains("anonymous=0")
            && before(0).contains("testdb=1")
            && !before(0).contains("testgrants=0"),
        "{text}"
    );
    assert!(
        before(1).contains("+or"),
        "root had a second way in before hardening:\n{text}"
    );
    for (i, check) in checks.iter().enumerate() {
        assert_check("backend", check, &part(&format!("after {i}")));
    }
    let listening = part("listening");
    assert!(
        listening.contains("10.20.0.11:3306 "),
        "not bound to the deploy address:\n{listening}"
    );
    assert!(!listening.contains("127.0.0.1:3306 "), "{listening}");
}
