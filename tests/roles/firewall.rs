//! Each role's nftables ruleset: nft accepts it, it loads (twice, as a
//! reload does) into a network namespace of its own, leaves Fail2Ban's
//! table alone, and the loaded ruleset is what the role's checks expect.

use super::{ROLES, Roles, assert_check, assert_success, in_netns, run, stdout, write};

const CHECK: &str = "nft list table inet oxbake";

#[test]
fn every_role_ruleset_loads_and_meets_its_checks() {
    let roles = Roles::load();
    let dir = tempfile::tempdir().unwrap();
    for role in ROLES {
        let source = roles.bake_source_for(role, "/etc/nftables.conf");
        let file = write(
            dir.path(),
            &format!("{role}.nft"),
            &roles.render_bake(role, &source),
        );
        let file = file.to_str().unwrap();
        assert_success(
            &run("/usr/sbin/nft", &["-c", "-f", file]),
            &format!("{role}: nft -c"),
        );
        // A table that is not oxbake's (Fail2Ban's) survives a reload.
        let script = format!(
            "nft add table inet f2b-table && nft -f {file} && nft -f {file} && \
             nft list table inet f2b-table >/dev/null && {CHECK}"
        );
        let out = in_netns(&script);
        assert_success(&out, &format!("{role}: load the ruleset"));
        let listed = stdout(&out);
        let checks = roles.checks(role, CHECK);
        assert!(
            !checks.is_empty(),
            "role `{role}` does not check its loaded ruleset"
        );
        for check in checks {
            assert_check(role, check, &listed);
        }
    }
}

#[test]
fn a_role_opens_its_own_ports_and_no_others() {
    let roles = Roles::load();
    let ui = roles.render_bake("ui", &roles.bake_source_for("ui", "/etc/nftables.conf"));
    assert!(ui.contains("tcp dport { 22, 80, 443 } accept"), "{ui}");
    let backend = roles.render_bake(
        "backend",
        &roles.bake_source_for("backend", "/etc/nftables.conf"),
    );
    assert!(
        backend.contains("tcp dport { 22, 8009 } accept"),
        "{backend}"
    );
    assert!(
        !backend.contains("3306"),
        "MariaDB stays closed:\n{backend}"
    );
}
