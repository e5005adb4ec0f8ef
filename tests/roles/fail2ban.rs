//! The Fail2Ban jail with Debian's own Fail2Ban configuration: the
//! configuration test passes, a real fail2ban-server starts the sshd jail on
//! the systemd backend (in a network namespace, where its nftables actions
//! land), and `fail2ban-client status sshd` prints what the checks expect.

use super::{ROLES, Roles, assert_check, assert_success, in_netns, run, stdout, write};

#[test]
fn the_sshd_jail_starts_on_the_journal_and_meets_the_checks() {
    let roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("fail2ban");
    let copy = run("cp", &["-a", "/etc/fail2ban", conf.to_str().unwrap()]);
    assert_success(&copy, "copy /etc/fail2ban (package fail2ban)");
    let dest = "/etc/fail2ban/jail.d/50-oxbake.local";
    let jail = roles.render_bake("base", &roles.bake_source_for("base", dest));
    write(&conf, "jail.d/50-oxbake.local", &jail);
    let d = conf.display();
    write(
        &conf,
        "fail2ban.local",
        &format!(
            "[Definition]\nlogtarget = {d}/fail2ban.log\nsocket = {d}/fail2ban.sock\n\
             pidfile = {d}/fail2ban.pid\ndbfile = :memory:\n"
        ),
    );
    let c = conf.to_str().unwrap();
    let test = run("fail2ban-client", &["-c", c, "-t"]);
    assert_success(&test, "fail2ban-client -t");
    let dump = stdout(&run("fail2ban-client", &["-c", c, "-d"]));
    assert!(
        dump.contains("['add', 'sshd', 'systemd']"),
        "sshd jail not on systemd:\n{dump}"
    );
    assert!(
        dump.contains("'nftables-multiport'"),
        "bans do not go to nftables"
    );

    let client = format!("fail2ban-client -c {c}");
    let script = format!(
        "{client} start >/dev/null && {client} status sshd; status=$?; {client} stop >/dev/null; exit $status"
    );
    let out = in_netns(&script);
    assert_success(&out, "fail2ban-server with the sshd jail");
    let status = stdout(&out);
    let mut seen = 0;
    for role in ROLES {
        for check in roles.checks(role, "fail2ban-client status sshd") {
            assert_check(role, check, &status);
            seen += 1;
        }
    }
    assert!(seen >= ROLES.len(), "every role checks Fail2Ban");
}
