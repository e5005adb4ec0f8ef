//! The sshd drop-in under Debian 12's own sshd_config: OpenSSH accepts it,
//! it wins over what cloud-init writes, and `sshd -T` prints what the
//! roles' checks expect.

use super::{ROLES, Roles, assert_check, assert_success, run, stdout, write};

/// What oxbake's SSH client (russh 0.65) speaks; sshd must offer one of
/// each.
const RUSSH_KEX: &[&str] = &["curve25519-sha256", "curve25519-sha256@libssh.org"];
const RUSSH_CIPHERS: &[&str] = &["chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com"];
const RUSSH_MACS: &[&str] = &[
    "hmac-sha2-256-etm@openssh.com",
    "hmac-sha2-512-etm@openssh.com",
];

/// `sshd -T` of Debian's stock configuration with the base role's drop-in
/// and a cloud-init drop-in that tries to turn passwords back on.
fn effective_config(dir: &std::path::Path) -> String {
    let roles = Roles::load();
    let dest = "/etc/ssh/sshd_config.d/10-oxbake.conf";
    let source = roles.bake_source_for("base", dest);
    let drop_ins = dir.join("sshd_config.d");
    write(
        &drop_ins,
        "10-oxbake.conf",
        &roles.render_bake("base", &source),
    );
    write(
        &drop_ins,
        "50-cloud-init.conf",
        "PasswordAuthentication yes\n",
    );
    let key = dir.join("host_ed25519");
    let keygen = run(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-f", key.to_str().unwrap()],
    );
    assert_success(&keygen, "ssh-keygen");
    // Debian ships its pristine sshd_config here; /etc/ssh may be edited.
    let stock = std::fs::read_to_string("/usr/share/openssh/sshd_config")
        .expect("openssh-server's /usr/share/openssh/sshd_config");
    let include = "Include /etc/ssh/sshd_config.d/*.conf";
    assert!(
        stock.contains(include),
        "Debian's sshd_config includes its drop-ins"
    );
    let main = format!(
        "HostKey {}\n{}",
        key.display(),
        stock.replace(include, &format!("Include {}/*.conf", drop_ins.display()))
    );
    let config = write(dir, "sshd_config", &main);
    let config = config.to_str().unwrap();
    crate::support::sshd::privilege_separation_dir();
    assert_success(&run("/usr/sbin/sshd", &["-t", "-f", config]), "sshd -t");
    let out = run("/usr/sbin/sshd", &["-T", "-f", config]);
    assert_success(&out, "sshd -T");
    stdout(&out)
}

#[test]
fn sshd_accepts_the_drop_in_and_every_role_check_holds() {
    let dir = tempfile::tempdir().unwrap();
    let effective = effective_config(dir.path());
    assert!(
        effective.contains("passwordauthentication no\n"),
        "cloud-init won:\n{effective}"
    );
    let roles = Roles::load();
    let mut seen = 0;
    for role in ROLES {
        for check in roles.checks(role, "sshd -T") {
            assert_check(role, check, &effective);
            seen += 1;
        }
    }
    assert!(seen >= ROLES.len(), "every role checks sshd");
}

#[test]
fn oxbake_client_shares_an_algorithm_with_sshd() {
    let dir = tempfile::tempdir().unwrap();
    let effective = effective_config(dir.path());
    let list = |keyword: &str| -> Vec<String> {
        effective
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{keyword} ")))
            .unwrap_or_else(|| panic!("no `{keyword}` in sshd -T"))
            .split(',')
            .map(str::to_owned)
            .collect()
    };
    for (keyword, ours) in [
        ("kexalgorithms", RUSSH_KEX),
        ("ciphers", RUSSH_CIPHERS),
        ("macs", RUSSH_MACS),
    ] {
        let offered = list(keyword);
        assert!(
            ours.iter().any(|a| offered.iter().any(|o| o == a)),
            "sshd offers {offered:?} for {keyword}; russh speaks {ours:?}"
        );
    }
    assert!(list("hostkeyalgorithms").iter().any(|a| a == "ssh-ed25519"));
}
