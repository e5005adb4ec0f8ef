//! Times guest steps over one SSH connection to a real sshd on loopback:
//! 1,000 small commands and 100 uploads. Needs root (it creates the test
//! user, like the integration tests).
//!
//!     cargo run --release --example guest_bench

#[path = "../tests/support/sshd.rs"]
mod sshd;

use std::time::{Duration, Instant};

use oxbake::guest::{
    ClientKey, Command, GuestError, GuestSession, GuestTarget, HostKeyPolicy, OutputSinks,
    RemoteFile, SshGuest,
};

const COMMANDS: u32 = 1000;
const UPLOADS: u32 = 100;
const UPLOAD_SIZE: usize = 64 * 1024;

#[tokio::main]
async fn main() -> Result<(), GuestError> {
    let key = ClientKey::generate()?;
    let server = sshd::Sshd::start(&[key.public_line()?]);
    let policy = HostKeyPolicy::Expect(server.host_key());
    let target = GuestTarget::new(server.addr(), sshd::TEST_USER, key, policy);
    let mut guest = SshGuest::connect(&target, OutputSinks::default()).await?;

    let started = Instant::now();
    for i in 0..COMMANDS {
        guest
            .exec_checked(&Command::new(format!("echo {i}")))
            .await?;
    }
    report("command", started.elapsed(), COMMANDS);

    let data = vec![0x5a_u8; UPLOAD_SIZE];
    let started = Instant::now();
    for i in 0..UPLOADS {
        let to = RemoteFile::new(format!("/tmp/oxbake-bench/file-{i}"), 0o644);
        guest.upload(&data, &to).await?;
    }
    report(
        "upload (64 KiB, via sudo install)",
        started.elapsed(),
        UPLOADS,
    );

    guest
        .exec_checked(&Command::new("rm -rf /tmp/oxbake-bench").run_as("root"))
        .await?;
    Box::new(guest).close().await
}

#[allow(clippy::print_stdout)]
fn report(what: &str, total: Duration, count: u32) {
    let each = total.as_secs_f64() * 1000.0 / f64::from(count);
    println!(
        "{count} x {what}: {:.2} s total, {each:.2} ms each",
        total.as_secs_f64()
    );
}
