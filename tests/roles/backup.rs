//! The backup role's SSH server: OpenSSH accepts the rendered
//! configuration with the host key the deploy writes, and `sshd -T` for
//! the db VMs' login says what the role's check expects (SFTP only,
//! chrooted, keys only, its account only). The authorized key and the db
//! side's pinned host key are the public halves of the two secrets.

use super::{Roles, assert_check, assert_success, lookup, run, stdout, write, write_mode};

/// The public line of an OpenSSH private key, by ssh-keygen.
fn public_of(dir: &std::path::Path, name: &str, private: &str) -> String {
    let file = write_mode(dir, name, private, 0o600);
    let out = run("ssh-keygen", &["-y", "-f", file.to_str().unwrap()]);
    assert_success(&out, "ssh-keygen -y");
    stdout(&out).trim().to_owned()
}

#[test]
fn the_backup_sshd_serves_sftp_only_to_its_account() {
    let roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let host_key = roles.render_deploy("backup", "backup/host_key.j2");
    write_mode(d, "host_key", &host_key, 0o600);
    let authorized = roles.render_deploy("backup", "backup/authorized_keys.j2");
    write(d, "authorized_keys", &authorized);
    let config = roles
        .render_bake("backup", "backup/sshd_config.j2")
        .replace("/etc/ssh/oxbake-backup/", &format!("{}/", d.display()))
        .replace(
            "/run/oxbake-backup-sftp.pid",
            &format!("{}/sshd.pid", d.display()),
        );
    let config = write(d, "sshd_config", &config);
    let config = config.to_str().unwrap();
    crate::support::sshd::privilege_separation_dir();
    assert_success(&run("/usr/sbin/sshd", &["-t", "-f", config]), "sshd -t");
    let out = run(
        "/usr/sbin/sshd",
        &[
            "-T",
            "-f",
            config,
            "-C",
            "user=oxbake-backup,host=client,addr=10.20.0.41",
        ],
    );
    assert_success(&out, "sshd -T");
    let effective = stdout(&out);
    let recipe = roles.recipe("backup");
    let check = recipe
        .checks
        .iter()
        .find(|c| c.run.starts_with("sshd -T"))
        .expect("the backup role checks its sshd");
    assert_check("backup", check, &effective);
    assert!(effective.lines().any(|l| l == "port 2222"), "{effective}");

    // The two sides of each secret key.
    let db = roles.deploy_context("db");
    let ssh_public = public_of(d, "ssh_key", &lookup(&db, "secrets.backup_ssh_key"));
    let host_public = public_of(d, "host_key_copy", &lookup(&db, "secrets.backup_host_key"));
    assert_eq!(
        authorized.lines().last(),
        Some(format!("restrict {ssh_public}").as_str())
    );
    let pinned = roles.render_deploy("db", "backup/known_hosts.j2");
    assert_eq!(pinned.trim(), format!("oxbake-backup {host_public}"));
}
