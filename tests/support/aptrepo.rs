//! A small signed apt repository, built in a temporary folder and served
//! over HTTP with basic auth on 127.0.0.1, standing in for Open-Xchange's
//! repository (which cannot be reached from here).
//!
//! It holds one package the harness makes itself, `oxbake-probe`, which
//! installs /usr/share/oxbake-probe/VERSION. Release is signed (InRelease
//! and Release.gpg) with a throwaway ed25519 key made in a temporary
//! GNUPGHOME. Needs dpkg-deb, apt-ftparchive (apt-utils) and gpg.

mod apt;
mod http;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use apt::IsolatedApt;
pub use http::Logged;

pub const PACKAGE: &str = "oxbake-probe";
/// With `+` and `~`, which apt escapes in the URL it asks for (`%2b`,
/// `%7e`) while the Packages index names the file plainly.
pub const VERSION: &str = "1.0+oxbake~1";
pub const SUITE: &str = "oxbake";
pub const COMPONENT: &str = "main";
/// The host's loopback as a QEMU user-network guest sees it.
pub const QEMU_USER_NET_HOST: &str = "10.0.2.2";

/// What a guest needs to use the repository (the values for the OX
/// repository variables, the key file and the password secret).
#[derive(Debug, Clone)]
pub struct GuestRepo {
    pub url: String,
    pub suite: String,
    pub component: String,
    pub key_armored: String,
    pub username: String,
    pub password: String,
}

pub struct AptRepo {
    key: ThrowawayKey,
    dir: tempfile::TempDir,
    key_armored: String,
    username: String,
    password: String,
    server: http::Server,
}

impl AptRepo {
    /// Builds and signs the repository and serves it on 127.0.0.1 (a free
    /// port); requests need these credentials.
    pub fn start(username: &str, password: &str) -> AptRepo {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("repo");
        build_package(dir.path(), &root, VERSION);
        index(&root);
        let key = ThrowawayKey::new(&dir.path().join("gnupg"));
        sign(&key, &root.join("dists").join(SUITE));
        let key_armored = key.public();
        let server = http::Server::start(root, username, password);
        AptRepo {
            key,
            dir,
            key_armored,
            username: username.to_owned(),
            password: password.to_owned(),
            server,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `http://127.0.0.1:PORT/`, for apt on this machine.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port())
    }

    /// The armored public key that signs Release.
    pub fn key_armored(&self) -> &str {
        &self.key_armored
    }

    /// The repository as a guest on QEMU user networking reaches it
    /// (`http://10.0.2.2:PORT/`).
    pub fn for_guest(&self) -> GuestRepo {
        self.seen_from(QEMU_USER_NET_HOST)
    }

    /// The repository as seen from a guest that reaches this machine's
    /// loopback at `host` (a slirp network with `host=` set, say).
    pub fn seen_from(&self, host: &str) -> GuestRepo {
        GuestRepo {
            url: format!("http://{host}:{}/", self.port()),
            suite: SUITE.to_owned(),
            component: COMPONENT.to_owned(),
            key_armored: self.key_armored.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
        }
    }

    /// Every request so far: path, status, whether it had the right
    /// credentials.
    pub fn requests(&self) -> Vec<Logged> {
        self.server.log()
    }

    /// Builds the package again with `content` in its VERSION file, under
    /// the same name and version (so the same pool path), and indexes and
    /// signs the repository again: a repository changed under the clients.
    pub fn rebuild(&self, content: &str) {
        let root = self.dir.path().join("repo");
        let suite = root.join("dists").join(SUITE);
        for name in ["Release", "InRelease", "Release.gpg"] {
            let _ = std::fs::remove_file(suite.join(name));
        }
        build_package(self.dir.path(), &root, content);
        index(&root);
        sign(&self.key, &suite);
    }

    /// A folder next to the repository for the test's own files.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }
}

fn run(cmd: &mut Command, what: &str) -> Vec<u8> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e} (see scripts/host-deps)"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// pool/main/o/oxbake-probe/oxbake-probe_1.0_all.deb
/// `content` goes into the package's VERSION file.
fn build_package(work: &Path, root: &Path, content: &str) {
    let tree = work.join("pkg");
    let control = format!(
        "Package: {PACKAGE}\nVersion: {VERSION}\nArchitecture: all\n\
         Maintainer: oxbake tests <tests@oxbake.invalid>\nPriority: optional\n\
         Description: probe package from oxbake's test apt repository\n"
    );
    write(&tree.join("DEBIAN/control"), &control);
    write(
        &tree.join(format!("usr/share/{PACKAGE}/VERSION")),
        &format!("{content}\n"),
    );
    let pool = root.join(format!("pool/{COMPONENT}/o/{PACKAGE}"));
    std::fs::create_dir_all(&pool).expect("pool folder");
    let deb = pool.join(format!("{PACKAGE}_{VERSION}_all.deb"));
    run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zgzip", "--build"])
            .arg(&tree)
            .arg(&deb),
        "dpkg-deb --build",
    );
}

/// dists/SUITE/main/binary-amd64/Packages(.gz) and dists/SUITE/Release.
fn index(root: &Path) {
    let suite = root.join("dists").join(SUITE);
    let bin = suite.join(format!("{COMPONENT}/binary-amd64"));
    std::fs::create_dir_all(&bin).expect("dists folder");
    let packages = run(
        Command::new("apt-ftparchive")
            .args(["packages", "pool"])
            .current_dir(root),
        "apt-ftparchive packages",
    );
    std::fs::write(bin.join("Packages"), &packages).expect("write Packages");
    run(
        Command::new("gzip")
            .args(["-9knf", "Packages"])
            .current_dir(&bin),
        "gzip Packages",
    );
    let conf = |k: &str, v: &str| format!("-oAPT::FTPArchive::Release::{k}={v}");
    let release = run(
        Command::new("apt-ftparchive")
            .arg(conf("Origin", "oxbake-tests"))
            .arg(conf("Suite", SUITE))
            .arg(conf("Codename", SUITE))
            .arg(conf("Architectures", "amd64 all"))
            .arg(conf("Components", COMPONENT))
            .args(["release", "."])
            .current_dir(&suite),
        "apt-ftparchive release",
    );
    std::fs::write(suite.join("Release"), release).expect("write Release");
}

/// Signs `suite/Release` with `key` (InRelease and Release.gpg).
fn sign(key: &ThrowawayKey, suite: &Path) {
    let release = suite.join("Release");
    key.gpg(
        &["--clearsign", "-o"],
        &[&suite.join("InRelease"), &release],
    );
    key.gpg(&["-abs", "-o"], &[&suite.join("Release.gpg"), &release]);
}

/// An ed25519 signing key without passphrase in its own GNUPGHOME; its
/// gpg-agent is stopped when it is dropped.
pub struct ThrowawayKey {
    home: PathBuf,
}

impl ThrowawayKey {
    pub fn new(home: &Path) -> Self {
        std::fs::create_dir_all(home).expect("GNUPGHOME");
        run(
            Command::new("chmod").arg("0700").arg(home),
            "chmod GNUPGHOME",
        );
        let key = Self {
            home: home.to_owned(),
        };
        key.gpg(
            &[
                "--passphrase",
                "",
                "--quick-gen-key",
                "oxbake test repository <repo@oxbake.invalid>",
                "ed25519",
                "sign",
                "never",
            ],
            &[],
        );
        key
    }

    fn gpg(&self, args: &[&str], paths: &[&Path]) -> Vec<u8> {
        run(
            Command::new("gpg")
                .env("GNUPGHOME", &self.home)
                .args(["--batch", "--quiet", "--pinentry-mode", "loopback"])
                .args(args)
                .args(paths),
            "gpg",
        )
    }

    /// The public key, ASCII-armored.
    pub fn public(&self) -> String {
        String::from_utf8(self.gpg(&["--armor", "--export"], &[])).expect("armored key")
    }
}

impl Drop for ThrowawayKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", &self.home)
            .args(["--kill", "gpg-agent"])
            .status();
    }
}

fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    std::fs::write(path, text).expect("write file");
}
