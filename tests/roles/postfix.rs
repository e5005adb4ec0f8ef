//! The services role's Postfix: main.cf has no parameter Postfix does not
//! know, the deploy command applies the relay settings, `postfix check`
//! passes, and the checks expect what postconf prints.

use std::process::Command;

use super::{Roles, assert_check, assert_success, command, run, stdout, write};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn postfix_accepts_the_relay_configuration_and_the_deploy_command() {
    let roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path();
    let c = conf.to_str().unwrap();
    let main = roles.render_bake(
        "services",
        &roles.bake_source_for("services", "/etc/postfix/main.cf"),
    );
    write(conf, "main.cf", &main);
    std::fs::copy("/etc/postfix/master.cf", conf.join("master.cf")).expect("postfix's master.cf");
    let names = run("/usr/sbin/postconf", &["-c", c, "-n"]);
    assert_success(&names, "postconf -n");
    assert_eq!(
        stderr(&names),
        "",
        "main.cf has parameters Postfix does not know"
    );
    let local = stdout(&run(
        "/usr/sbin/postconf",
        &["-c", c, "-h", "mydestination", "local_transport"],
    ));
    for check in roles.checks("services", "postconf -h mydestination local_transport") {
        assert_check("services", check, &local);
    }

    // The deploy: the rendered relay settings, applied by the recipe's own
    // command, pointed at this folder instead of /etc/postfix.
    let dest = "/etc/postfix/oxbake-relay.cf";
    let relay = write(
        conf,
        "oxbake-relay.cf",
        &roles.render_deploy("services", &roles.deploy_source_for("services", dest)),
    );
    let apply = roles
        .recipe("services")
        .deploy
        .commands
        .iter()
        .find(|c| c.contains(dest))
        .expect("a deploy command applies the relay settings")
        .replace(dest, relay.to_str().unwrap())
        .replace("postconf -e", &format!("/usr/sbin/postconf -c {c} -e"));
    assert_success(
        &command(Command::new("sh").args(["-c", &apply]), "sh"),
        "apply relay settings",
    );
    let check = run("/usr/sbin/postfix", &["-c", c, "check"]);
    assert_success(&check, "postfix check");
    assert_eq!(stderr(&check), "", "postfix check warns");
    let relayed = stdout(&run(
        "/usr/sbin/postconf",
        &["-c", c, "-h", "mynetworks", "relayhost"],
    ));
    assert_eq!(
        relayed,
        "127.0.0.0/8 10.20.0.0/24\n[smtp.example.org]:587\n"
    );
    for check in roles.checks("services", "postconf -h mynetworks relayhost") {
        assert_check("services", check, &relayed);
    }
    let host = stdout(&run(
        "/usr/sbin/postconf",
        &["-c", c, "-h", "myhostname", "myorigin"],
    ));
    assert_eq!(host, "services-1.dev.example.org\ndev.example.org\n");
}
