//! What the base role's sshd jail counts, checked with fail2ban-regex and
//! Debian's own sshd filter in the mode the jail names: clients that offer
//! no usable key and scanners with old algorithms are failures; a client
//! that reads the banner and leaves (oxbake's wait for sshd, monitoring,
//! health checks) is not, so the builder's host is never banned mid-bake.

use super::{Roles, assert_success, run, stdout, write};

/// sshd's journal lines (Debian 12, OpenSSH 9.2) for two banner probes
/// from 10.0.2.2, a client with no usable key from 10.0.2.3 and a scanner
/// with old algorithms from 10.0.2.4.
const LOG: &str = "\
Nov 25 20:31:17 vm sshd[401]: error: kex_exchange_identification: read: Connection reset by peer
Nov 25 20:31:17 vm sshd[401]: Connection reset by 10.0.2.2 port 41524
Nov 25 20:31:18 vm sshd[403]: error: kex_exchange_identification: Connection closed by remote host
Nov 25 20:31:18 vm sshd[403]: Connection closed by 10.0.2.2 port 55714
Nov 25 20:31:19 vm sshd[404]: Received disconnect from 10.0.2.3 port 5000:14: No supported authentication methods available [preauth]
Nov 25 20:31:19 vm sshd[404]: Disconnected from authenticating user root 10.0.2.3 port 5000 [preauth]
Nov 25 20:31:20 vm sshd[405]: Unable to negotiate with 10.0.2.4 port 5001: no matching key exchange method found. Their offer: diffie-hellman-group1-sha1 [preauth]
";

/// The `mode` of the rendered jail's `[sshd]` section.
fn sshd_mode(jail: &str) -> String {
    let section = jail.split("[sshd]").nth(1).expect("an [sshd] section");
    let line = section
        .lines()
        .take_while(|l| !l.starts_with('['))
        .find_map(|l| l.trim().strip_prefix("mode")?.trim().strip_prefix('='))
        .expect("the sshd jail names its mode");
    line.trim().to_string()
}

#[test]
fn the_sshd_jail_counts_keyless_clients_but_not_banner_probes() {
    let roles = Roles::load();
    let dest = "/etc/fail2ban/jail.d/50-oxbake.local";
    let jail = roles.render_bake("base", &roles.bake_source_for("base", dest));
    let mode = sshd_mode(&jail);
    let dir = tempfile::tempdir().unwrap();
    let log = write(dir.path(), "sshd.log", LOG);
    let filter = format!("/etc/fail2ban/filter.d/sshd.conf[mode={mode}]");
    let out = run(
        "fail2ban-regex",
        &["-o", "ip", log.to_str().unwrap(), &filter],
    );
    assert_success(&out, "fail2ban-regex (package fail2ban)");
    let failures = stdout(&out);
    let count = |ip: &str| failures.lines().filter(|l| l.trim() == ip).count();
    assert_eq!(
        count("10.0.2.2"),
        0,
        "mode {mode} bans banner probes:\n{failures}"
    );
    assert!(
        count("10.0.2.3") >= 1,
        "mode {mode} lets keyless clients try:\n{failures}"
    );
    assert_eq!(
        count("10.0.2.4"),
        1,
        "mode {mode} ignores old-algorithm scanners:\n{failures}"
    );
}
