//! The test apt repository (tests/support/aptrepo.rs) with this machine's
//! own apt, in an apt configuration of its own (sources, lists, cache,
//! trusted key, auth.conf.d all in a temporary folder): with the right
//! credentials and key apt updates and downloads the probe package; with
//! wrong credentials it gets 401; with the wrong key it refuses the
//! repository.

use std::process::{Command, Output};

use crate::support::aptrepo::{
    AptRepo, COMPONENT, IsolatedApt, PACKAGE, SUITE, ThrowawayKey, VERSION,
};

const USER: &str = "ox-customer";
const PASSWORD: &str = "s3cret-for-tests";

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn right_credentials_and_key_update_and_download() {
    let repo = AptRepo::start(USER, PASSWORD);
    let apt = IsolatedApt::new(&repo, repo.key_armored(), Some((USER, PASSWORD)), None);
    let update = apt.apt_get(&["update"]);
    let log = text(&update);
    assert!(update.status.success(), "apt-get update failed:\n{log}");
    assert!(!log.contains("W:") && !log.contains("E:"), "{log}");
    // The signed InRelease was checked and kept: apt keeps only verified
    // indexes.
    let lists: Vec<String> = std::fs::read_dir(apt.path("lists"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(lists.iter().any(|n| n.ends_with("_InRelease")), "{lists:?}");
    assert!(lists.iter().any(|n| n.contains("_Packages")), "{lists:?}");

    let download = apt.apt_get(&["download", PACKAGE]);
    assert!(
        download.status.success(),
        "apt-get download:\n{}",
        text(&download)
    );
    let deb = apt.path(&format!("out/{PACKAGE}_{VERSION}_all.deb"));
    let content = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(content.status.success(), "{}", text(&content));
    let tar = apt.path("out/probe.tar");
    std::fs::write(&tar, &content.stdout).unwrap();
    let version = Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .arg(format!("./usr/share/{PACKAGE}/VERSION"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("{VERSION}\n")
    );

    let requests = repo.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with("/InRelease") && r.status == 200 && r.authorized),
        "{requests:?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.path.ends_with(".deb") && r.status == 200),
        "{requests:?}"
    );
}

#[test]
fn wrong_or_missing_credentials_get_401() {
    let repo = AptRepo::start(USER, PASSWORD);
    for login in [Some((USER, "wrong-password")), None] {
        let apt = IsolatedApt::new(&repo, repo.key_armored(), login, None);
        let update = apt.apt_get(&["update"]);
        let log = text(&update);
        assert!(
            !update.status.success(),
            "update succeeded with {login:?}:\n{log}"
        );
        assert!(log.contains("401"), "{log}");
        assert!(!log.contains(PASSWORD), "apt printed the password:\n{log}");
    }
    let requests = repo.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| r.status == 401 && !r.authorized),
        "{requests:?}"
    );
}

#[test]
fn a_key_that_did_not_sign_the_repository_is_refused() {
    let repo = AptRepo::start(USER, PASSWORD);
    let other = ThrowawayKey::new(&repo.scratch().join("other-gnupg"));
    let apt = IsolatedApt::new(&repo, &other.public(), Some((USER, PASSWORD)), None);
    let update = apt.apt_get(&["update"]);
    let log = text(&update);
    assert!(
        !update.status.success(),
        "update succeeded with the wrong key:\n{log}"
    );
    assert!(
        log.contains("NO_PUBKEY") || log.contains("couldn't be verified"),
        "{log}"
    );
    // The credentials were right: the server answered, apt refused.
    assert!(
        repo.requests()
            .iter()
            .any(|r| r.path.ends_with("/InRelease") && r.status == 200)
    );
    let download = apt.apt_get(&["download", PACKAGE]);
    assert!(!download.status.success(), "{}", text(&download));
}

#[test]
fn guests_get_the_host_loopback_address_and_everything_apt_needs() {
    let repo = AptRepo::start(USER, PASSWORD);
    let guest = repo.for_guest();
    assert_eq!(guest.url, format!("http://10.0.2.2:{}/", repo.port()));
    assert_eq!(
        (guest.suite.as_str(), guest.component.as_str()),
        (SUITE, COMPONENT)
    );
    assert!(
        guest
            .key_armored
            .starts_with("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    );
    assert_eq!(
        (guest.username.as_str(), guest.password.as_str()),
        (USER, PASSWORD)
    );
    let custom = repo.seen_from("10.99.0.1");
    assert_eq!(custom.url, format!("http://10.99.0.1:{}/", repo.port()));
}
