//! A real OpenSSH sshd on a free loopback port, with a temporary config and
//! host key, for the plain user `oxbake-test` (login shell bash, as on a
//! builder, passwordless sudo). Needs root (tests run as root here and in
//! CI) and the openssh-server and sudo packages. Shared with
//! examples/guest_bench.rs through `#[path]`, so not every item is used by
//! every includer.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use oxbake::guest::{HostKeyPair, PublicKey};

/// The user tests log in as.
pub const TEST_USER: &str = "oxbake-test";
/// A second plain user, for `run_as` and file owners.
pub const OTHER_USER: &str = "oxbake-other";

pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    host_key: HostKeyPair,
    child: Option<Child>,
}

impl Sshd {
    /// Starts sshd accepting the given authorized_keys lines.
    pub fn start(authorized_keys: &[String]) -> Sshd {
        ensure_users();
        let dir = tempfile::Builder::new()
            .prefix("oxbake-sshd")
            .tempdir()
            .unwrap();
        let host_key = HostKeyPair::generate().unwrap();
        let port = free_port();
        write(
            dir.path(),
            "host_ed25519",
            &host_key.private_openssh().unwrap(),
            0o600,
        );
        write(
            dir.path(),
            "authorized_keys",
            &(authorized_keys.join("\n") + "\n"),
            0o644,
        );
        write(dir.path(), "sshd_config", &config(dir.path(), port), 0o644);
        chmod(dir.path(), 0o755);
        let mut sshd = Sshd {
            dir,
            port,
            host_key,
            child: None,
        };
        sshd.spawn();
        sshd
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn host_key(&self) -> PublicKey {
        self.host_key.public_key().clone()
    }

    /// Kills sshd and every session it forked, as a crashing VM would.
    pub fn kill(&mut self) {
        self.signal_tree("KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Kills everything, then starts sshd again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Stops sshd and its sessions without closing any socket: the peer
    /// sees a silent, dead connection.
    pub fn freeze(&self) {
        self.signal_tree("STOP");
    }

    pub fn thaw(&self) {
        self.signal_tree("CONT");
    }

    /// What sshd wrote on stderr, for failing tests.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    fn spawn(&mut self) {
        privilege_separation_dir();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("sshd.log"))
            .unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(self.dir.path().join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start /usr/sbin/sshd (openssh-server installed?)");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while TcpStream::connect(self.addr()).is_err() {
            let exited = self.child.as_mut().and_then(|c| c.try_wait().unwrap());
            assert!(exited.is_none(), "sshd exited: {exited:?}\n{}", self.log());
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "sshd not ready\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal_tree(&self, signal: &str) {
        let Some(child) = &self.child else { return };
        let pids: Vec<String> = descendants(child.id()).iter().map(u32::to_string).collect();
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .args(&pids)
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
    }
}

/// `root` and all processes below it, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Field 4 (ppid) comes after the command name, which ends with ") ".
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    tree
}

fn config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_ed25519\nPidFile none\n\
         AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
         PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin no\n\
         AllowUsers {TEST_USER}\nSubsystem sftp internal-sftp\nUseDNS no\nPrintMotd no\n\
         PrintLastLog no\nMaxSessions 64\nMaxStartups 100\nLogLevel VERBOSE\n"
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) {
    std::fs::write(dir.join(name), text).unwrap();
    chmod(&dir.join(name), mode);
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Creates the test users once per process: login shell bash, as Debian's
/// cloud images give their users (sshd runs every command through it, with
/// its start-up files, so the figures of examples/guest_bench.rs include
/// that cost), an unlocked password field (sshd without PAM refuses locked
/// accounts) and passwordless sudo for the login user.
fn ensure_users() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        for user in [TEST_USER, OTHER_USER] {
            let exists = Command::new("id")
                .arg("-u")
                .arg(user)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if !exists.unwrap().success() {
                run("useradd", &["-m", "-s", "/bin/bash", user]);
            }
            run("usermod", &["-s", "/bin/bash", "-p", "*", user]);
        }
        let sudoers = format!("{TEST_USER} ALL=(ALL:ALL) NOPASSWD: ALL\n");
        write(Path::new("/etc/sudoers.d"), TEST_USER, &sudoers, 0o440);
    });
}

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().unwrap();
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

/// The folder Debian's sshd wants before it runs or checks a configuration
/// (made by the openssh-server service, which a fresh machine may not have
/// started).
pub fn privilege_separation_dir() {
    std::fs::create_dir_all("/run/sshd").unwrap();
}
