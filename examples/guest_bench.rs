//! Times guest steps over one SSH connection to a real sshd on loopback,
//! against OpenSSH in the same run: per command, oxbake's `exec` of `true`
//! vs `ssh … bash -c true` through a multiplexed master (ControlMaster), and
//! per upload (4 KiB and 64 KiB), oxbake's upload (verified, owner root,
//! through sudo) vs `scp` of the same file through the same master. scp
//! cannot use sudo, so it writes into a folder of the login user: the
//! comparison favours scp. The login user's shell is bash, as on a builder.
//! Needs root (it creates the test user, like the integration tests) and
//! the ssh and scp clients.
//!
//!     cargo run --example guest_bench
//!
//! (Dependencies are built optimised in the dev profile, so a debug build
//! times the same SSH and crypto code as a release build.)

#[path = "../tests/support/sshd.rs"]
mod sshd;

use std::path::Path;
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use oxbake::guest::{
    ClientKey, Command, GuestError, GuestSession, GuestTarget, HostKeyPolicy, OutputSinks,
    RemoteFile, SshGuest,
};

const COMMANDS: u32 = 300;
const UPLOADS: u32 = 100;
const SIZES: [usize; 2] = [4 * 1024, 64 * 1024];
const REMOTE_DIR: &str = "/tmp/oxbake-bench";

#[tokio::main]
async fn main() -> Result<(), GuestError> {
    let key = ClientKey::generate()?;
    let server = sshd::Sshd::start(&[key.public_line()?]);
    let policy = HostKeyPolicy::Expect(server.host_key());
    let target = GuestTarget::new(server.addr(), sshd::TEST_USER, key.clone(), policy);
    let mut guest = SshGuest::connect(&target, OutputSinks::default()).await?;
    let openssh = OpenSsh::new(&server, &key);
    let scp_dir = format!("/home/{}/oxbake-bench", sshd::TEST_USER);
    openssh.ssh(&format!("mkdir -p {scp_dir}"));
    let mut rows = Vec::new();

    guest.exec_checked(&Command::new("true")).await?;
    let started = Instant::now();
    for _ in 0..COMMANDS {
        guest.exec_checked(&Command::new("true")).await?;
    }
    let ours = per(started.elapsed(), COMMANDS);
    let started = Instant::now();
    for _ in 0..COMMANDS {
        openssh.ssh("bash -c true");
    }
    let theirs = per(started.elapsed(), COMMANDS);
    rows.push((
        "command: exec `true` | ssh bash -c true".to_owned(),
        ours,
        theirs,
    ));

    for size in SIZES {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let local = openssh.dir.path().join(format!("file-{size}"));
        std::fs::write(&local, &data).unwrap();
        guest
            .upload(&data, &RemoteFile::new(format!("{REMOTE_DIR}/warm"), 0o644))
            .await?;
        let started = Instant::now();
        for i in 0..UPLOADS {
            let to = RemoteFile::new(format!("{REMOTE_DIR}/{size}-{i}"), 0o644);
            guest.upload(&data, &to).await?;
        }
        let ours = per(started.elapsed(), UPLOADS);
        let started = Instant::now();
        for i in 0..UPLOADS {
            openssh.scp(&local, &format!("{scp_dir}/{size}-{i}"));
        }
        let theirs = per(started.elapsed(), UPLOADS);
        let what = format!("upload {} KiB: root via sudo | scp to ~", size / 1024);
        rows.push((what, ours, theirs));
    }

    print_table(&rows);
    guest
        .exec_checked(&Command::new(format!("rm -rf {REMOTE_DIR} {scp_dir}")).run_as("root"))
        .await?;
    openssh.stop();
    Box::new(guest).close().await
}

/// The `ssh` and `scp` clients with one multiplexed master connection.
struct OpenSsh {
    dir: tempfile::TempDir,
    options: Vec<String>,
    port: u16,
}

impl OpenSsh {
    fn new(server: &sshd::Sshd, key: &ClientKey) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join("id");
        std::fs::write(&key_path, key.private_openssh().unwrap()).unwrap();
        set_mode(&key_path, 0o600);
        let known = dir.path().join("known_hosts");
        let host = server.host_key().to_openssh().unwrap();
        std::fs::write(
            &known,
            format!("[127.0.0.1]:{} {host}\n", server.addr().port()),
        )
        .unwrap();
        let options = [
            format!("IdentityFile={}", key_path.display()),
            format!("UserKnownHostsFile={}", known.display()),
            "StrictHostKeyChecking=yes".to_owned(),
            "BatchMode=yes".to_owned(),
            "IdentitiesOnly=yes".to_owned(),
            "ControlMaster=auto".to_owned(),
            format!("ControlPath={}/master", dir.path().display()),
            "ControlPersist=120".to_owned(),
            format!("User={}", sshd::TEST_USER),
        ];
        let options = options.iter().flat_map(|o| ["-o".to_owned(), o.clone()]);
        let openssh = Self {
            options: options.collect(),
            port: server.addr().port(),
            dir,
        };
        // The first call starts the master; the timed ones reuse it.
        openssh.ssh("true");
        openssh
    }

    fn ssh(&self, remote: &str) {
        let status = Process::new("ssh")
            .args(&self.options)
            .args(["-p", &self.port.to_string(), "127.0.0.1", remote])
            .stdin(Stdio::null())
            .status()
            .expect("run ssh");
        assert!(status.success(), "ssh {remote}: {status}");
    }

    fn scp(&self, local: &Path, remote: &str) {
        let status = Process::new("scp")
            .arg("-q")
            .args(&self.options)
            .args(["-P", &self.port.to_string()])
            .arg(local)
            .arg(format!("127.0.0.1:{remote}"))
            .stdin(Stdio::null())
            .status()
            .expect("run scp");
        assert!(status.success(), "scp {remote}: {status}");
    }

    fn stop(&self) {
        let _ = Process::new("ssh")
            .args(&self.options)
            .args(["-p", &self.port.to_string(), "-O", "exit", "127.0.0.1"])
            .stderr(Stdio::null())
            .status();
    }
}

fn per(total: Duration, count: u32) -> f64 {
    total.as_secs_f64() * 1000.0 / f64::from(count)
}

#[allow(clippy::print_stdout)]
fn print_table(rows: &[(String, f64, f64)]) {
    println!(
        "{:<44} {:>10} {:>10} {:>8}",
        "per step (oxbake | OpenSSH)", "oxbake ms", "OpenSSH ms", "ratio"
    );
    for (what, ours, theirs) in rows {
        println!(
            "{what:<44} {ours:>10.2} {theirs:>10.2} {:>7.2}x",
            ours / theirs
        );
    }
    println!(
        "({COMMANDS} commands, {UPLOADS} uploads of each size; goal: command ratio <= 1.5, \
         upload ratio <= 1.0)"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
