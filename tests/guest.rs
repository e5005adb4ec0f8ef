//! The guest module against a real OpenSSH sshd on loopback.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxbake::guest::{
    ClientKey, Command, ExitStatus, GuestError, GuestSession, GuestTarget, HostKeyPair,
    HostKeyPolicy, OutputSinks, RemoteFile, SshGuest, Timing, fingerprint,
};
use oxbake::progress::{Event, Progress, Stream};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::support::sshd::{OTHER_USER, Sshd, TEST_USER};

fn timing() -> Timing {
    Timing {
        connect_deadline: Duration::from_secs(10),
        reconnect_deadline: Duration::from_secs(10),
        retry_interval: Duration::from_millis(100),
        attempt_timeout: Duration::from_secs(5),
        keepalive_interval: Duration::from_secs(1),
        keepalive_max: 2,
    }
}

struct Fixture {
    sshd: Sshd,
    key: ClientKey,
    events: UnboundedReceiver<Event>,
    log: Arc<Mutex<Vec<u8>>>,
    sinks: OutputSinks,
}

impl Fixture {
    fn new() -> Fixture {
        let key = ClientKey::generate().unwrap();
        let sshd = Sshd::start(&[key.public_line().unwrap()]);
        let (progress, events) = Progress::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sinks = OutputSinks::new(progress, Some(log.clone()));
        Fixture {
            sshd,
            key,
            events,
            log,
            sinks,
        }
    }

    fn target(&self) -> GuestTarget {
        let policy = HostKeyPolicy::Expect(self.sshd.host_key());
        GuestTarget::new(self.sshd.addr(), TEST_USER, self.key.clone(), policy)
            .with_timing(timing())
    }

    async fn connect(&self) -> SshGuest {
        SshGuest::connect(&self.target(), self.sinks.clone())
            .await
            .unwrap()
    }

    fn lines(&mut self, stream: Stream) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let Event::GuestLine {
                stream: s, line, ..
            } = event
                && s == stream
            {
                lines.push(line);
            }
        }
        lines
    }

    fn log_text(&self) -> String {
        String::from_utf8(self.log.lock().unwrap().clone()).unwrap()
    }
}

#[tokio::test]
async fn output_and_exit_codes() {
    let mut fx = Fixture::new();
    let mut guest = fx.connect().await;
    let cmd = Command::new("echo hello; echo \"$GREETING\"; echo oops >&2; exit 3")
        .env("GREETING", "it's me");
    let out = guest.exec(&cmd).await.unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout_tail, "hello\nit's me\n");
    assert_eq!(out.stderr_tail, "oops\n");
    let ok = guest.exec(&Command::new("cat; echo done")).await.unwrap();
    assert_eq!(
        (ok.status, ok.stdout_tail.as_str()),
        (ExitStatus::Code(0), "done\n")
    );
    assert_eq!(fx.lines(Stream::Stdout), ["hello", "it's me", "done"]);
    assert!(fx.log_text().contains("out| hello\n") && fx.log_text().contains("err| oops\n"));

    let err = guest
        .exec_checked(&Command::new("echo bad input >&2; exit 4"))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GuestError::CommandFailed { .. }), "{text}");
    assert!(
        text.contains("exit status 4") && text.contains("bad input"),
        "{text}"
    );
    Box::new(guest).close().await.unwrap();
}

#[tokio::test]
async fn ten_megabytes_of_output() {
    let mut fx = Fixture::new();
    let mut guest = fx.connect().await;
    let line = "0123456789".repeat(10)[..99].to_owned();
    let cmd = Command::new(format!("yes {line} | head -n 104858"));
    let out = guest.exec(&cmd).await.unwrap();
    assert!(out.status.success());
    let lines = fx.lines(Stream::Stdout);
    assert_eq!(lines.len(), 104_858);
    assert!(lines.iter().all(|l| *l == line));
    assert!(lines.iter().map(|l| l.len() + 1).sum::<usize>() >= 10 * 1024 * 1024);
}

#[tokio::test]
async fn binary_uploads_are_checked_and_atomic() {
    let fx = Fixture::new();
    let mut guest = fx.connect().await;
    let dir = format!("/tmp/oxbake-upload-{}", fx.sshd.addr().port());
    let path = format!("{dir}/blob.bin");
    let data: Vec<u8> = (0..3 * 1024 * 1024).map(|_| rand::random::<u8>()).collect();
    let file = RemoteFile::new(&path, 0o640).owner(OTHER_USER);
    guest.upload(&data, &file).await.unwrap();

    let check = Command::new(format!(
        "sha256sum {path}; stat -c '%a %U' {path}; ls -A {dir}"
    ))
    .run_as("root");
    let out = guest.exec_checked(&check).await.unwrap();
    let want = format!(
        "{}  {path}\n640 {OTHER_USER}\nblob.bin\n",
        hex::encode(Sha256::digest(&data))
    );
    assert_eq!(out.stdout_tail, want);
    assert_eq!(guest.download(&path).await.unwrap(), data);

    guest
        .upload(b"small\0bytes", &RemoteFile::new(&path, 0o600))
        .await
        .unwrap();
    assert_eq!(guest.download(&path).await.unwrap(), b"small\0bytes");
    let out = guest.exec_checked(&check).await.unwrap();
    assert!(
        out.stdout_tail.contains("600 root\nblob.bin\n"),
        "{}",
        out.stdout_tail
    );

    let missing = guest.download(&format!("{dir}/missing")).await.unwrap_err();
    assert!(matches!(missing, GuestError::Transfer { .. }), "{missing}");
    guest
        .exec_checked(&Command::new(format!("rm -rf {dir}")).run_as("root"))
        .await
        .unwrap();
}

#[tokio::test]
async fn wrong_host_key_is_refused() {
    let fx = Fixture::new();
    let other = HostKeyPair::generate().unwrap();
    let mut target = fx.target();
    target.host_key = HostKeyPolicy::Expect(other.public_key().clone());
    let started = Instant::now();
    let err = SshGuest::connect(&target, fx.sinks.clone())
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(matches!(err, GuestError::HostKeyMismatch { .. }), "{text}");
    assert!(text.contains(&fingerprint(other.public_key())), "{text}");
    assert!(text.contains(&fingerprint(&fx.sshd.host_key())), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a mismatch must not be retried"
    );

    target.host_key = HostKeyPolicy::TrustOnFirstUse;
    SshGuest::connect(&target, fx.sinks.clone()).await.unwrap();
}

#[tokio::test]
async fn failing_login_is_reported() {
    let fx = Fixture::new();
    let mut target = fx.target();
    target.key = ClientKey::generate().unwrap();
    let err = SshGuest::connect(&target, fx.sinks.clone())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, GuestError::AuthFailed { .. }), "{err}");
    assert!(err.to_string().contains(&format!("`{TEST_USER}`")), "{err}");
}

#[tokio::test]
async fn connect_waits_for_a_booting_guest_then_gives_up_clearly() {
    let mut fx = Fixture::new();
    fx.sshd.kill();
    let mut target = fx.target();
    target.timing.connect_deadline = Duration::from_secs(1);
    let err = SshGuest::connect(&target, fx.sinks.clone())
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(
        matches!(err, GuestError::Connect { attempts: 3.., .. }),
        "{text}"
    );
    assert!(
        text.contains(&fx.sshd.addr().to_string()) && text.contains("refused"),
        "{text}"
    );

    let Fixture {
        mut sshd, sinks, ..
    } = fx;
    let booting = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        sshd.restart();
        sshd
    });
    target.timing.connect_deadline = Duration::from_secs(10);
    let mut guest = SshGuest::connect(&target, sinks).await.unwrap();
    assert!(
        guest
            .exec(&Command::new("true"))
            .await
            .unwrap()
            .status
            .success()
    );
    drop(booting.join().unwrap());
}

#[tokio::test]
async fn sshd_killed_mid_command_fails_within_the_timeout() {
    let fx = Fixture::new();
    let mut guest = fx.connect().await;
    let Fixture { mut sshd, .. } = fx;
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(1));
        sshd.kill();
        sshd
    });
    let started = Instant::now();
    let cmd = Command::new("echo started; sleep 30").timeout(Duration::from_secs(20));
    let err = guest.exec(&cmd).await.unwrap_err();
    assert!(matches!(err, GuestError::ConnectionLost { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    drop(killer.join().unwrap());
}

#[tokio::test]
async fn frozen_guest_is_detected_by_keepalive() {
    let fx = Fixture::new();
    let mut guest = fx.connect().await;
    let Fixture { sshd, .. } = fx;
    let freezer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        sshd.freeze();
        sshd
    });
    let started = Instant::now();
    let err = guest
        .exec(&Command::new("sleep 30").timeout(Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(err.is_connection_lost(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    drop(freezer.join().unwrap());
}

#[tokio::test]
async fn sshd_restarted_between_steps_next_step_still_runs() {
    let mut fx = Fixture::new();
    let mut guest = fx.connect().await;
    assert!(
        guest
            .exec(&Command::new("echo one"))
            .await
            .unwrap()
            .status
            .success()
    );
    fx.sshd.restart();
    let out = guest.exec_checked(&Command::new("echo two")).await.unwrap();
    assert_eq!(out.stdout_tail, "two\n");
    let warned = std::iter::from_fn(|| fx.events.try_recv().ok())
        .any(|e| matches!(e, Event::Warn(w) if w.contains("reconnecting")));
    assert!(warned);
    guest
        .upload(
            b"after restart",
            &RemoteFile::new("/tmp/oxbake-after-restart", 0o644),
        )
        .await
        .unwrap();
    fx.sshd.restart();
    assert_eq!(
        guest.download("/tmp/oxbake-after-restart").await.unwrap(),
        b"after restart"
    );
    // The root helper started by this upload dies with the connection; the
    // next upload starts another on a new connection.
    let file = RemoteFile::new("/tmp/oxbake-after-restart", 0o644);
    guest.upload(b"helper one", &file).await.unwrap();
    fx.sshd.restart();
    guest.upload(b"helper two", &file).await.unwrap();
    assert_eq!(
        guest.download("/tmp/oxbake-after-restart").await.unwrap(),
        b"helper two"
    );
}

#[tokio::test]
async fn run_as_another_user_through_sudo() {
    let fx = Fixture::new();
    let mut guest = fx.connect().await;
    for (user, want) in [
        (None, TEST_USER),
        (Some("root"), "root"),
        (Some(OTHER_USER), OTHER_USER),
    ] {
        let mut cmd = Command::new("id -un");
        cmd.run_as = user.map(str::to_owned);
        let out = guest.exec_checked(&cmd).await.unwrap();
        assert_eq!(out.stdout_tail, format!("{want}\n"));
    }
}

#[tokio::test]
async fn a_command_exceeding_its_timeout_is_killed() {
    let fx = Fixture::new();
    let mut guest = fx.connect().await;
    let cases = [
        (Command::new("sleep 61.25"), "61.25"),
        (Command::new("trap '' HUP INT TERM; sleep 61.5"), "61.5"),
        (
            Command::new("trap '' HUP; sleep 61.75").run_as("root"),
            "61.75",
        ),
    ];
    for (cmd, marker) in cases {
        let started = Instant::now();
        let err = guest
            .exec(&cmd.timeout(Duration::from_secs(1)))
            .await
            .unwrap_err();
        assert!(matches!(err, GuestError::Timeout { .. }), "{err}");
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "took {:?}",
            started.elapsed()
        );
        let left = guest
            .exec(&Command::new(format!("pgrep -f 'sleep {marker}'")))
            .await
            .unwrap();
        assert_eq!(
            left.status,
            ExitStatus::Code(1),
            "still running: {}",
            left.stdout_tail
        );
    }
}

#[tokio::test]
async fn secrets_are_redacted_in_lines_and_errors() {
    let mut fx = Fixture::new();
    let mut guest = fx.connect().await;
    let secret = "hunter2-s3cr3t";
    let cmd = Command::new(format!("echo \"pw=$PASSWORD\"; echo {secret} >&2; exit 2"))
        .env("PASSWORD", secret)
        .secret(secret);
    let err = guest.exec_checked(&cmd).await.unwrap_err();
    let text = err.to_string();
    assert!(
        !text.contains(secret) && text.contains("[redacted]"),
        "{text}"
    );
    assert!(!format!("{err:?}").contains(secret));
    let lines = fx.lines(Stream::Stdout);
    assert_eq!(lines, ["pw=[redacted]"]);
    assert!(!fx.log_text().contains(secret) && fx.log_text().contains("err| [redacted]"));
}

#[tokio::test]
async fn a_failed_upload_says_why_and_leaves_nothing() {
    let fx = Fixture::new();
    let mut guest = fx.connect().await;
    let dir = format!("/tmp/oxbake-failed-{}", fx.sshd.addr().port());
    let path = format!("{dir}/sub/conf");
    let file = RemoteFile::new(&path, 0o640).owner(OTHER_USER).group("adm");
    guest.upload(b"first", &file).await.unwrap();

    let err = guest
        .upload(
            b"second",
            &RemoteFile::new(&path, 0o644).owner("no-such-user"),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, GuestError::Transfer { .. }), "{text}");
    assert!(
        text.contains(&path) && text.contains("no-such-user"),
        "{text}"
    );
    let check = Command::new(format!(
        "cat {path}; echo; stat -c '%a %U %G' {path} {dir}/sub; ls -A {dir}/sub"
    ))
    .run_as("root");
    let out = guest.exec_checked(&check).await.unwrap();
    assert_eq!(
        out.stdout_tail,
        format!("first\n640 {OTHER_USER} adm\n755 root root\nconf\n")
    );

    let invalid = guest
        .upload(b"x", &RemoteFile::new(&path, 0o644).group("a;b"))
        .await
        .unwrap_err();
    assert!(matches!(invalid, GuestError::Invalid { .. }), "{invalid}");
    guest.upload(b"third", &file).await.unwrap();
    assert_eq!(guest.download(&path).await.unwrap(), b"third");
    guest
        .exec_checked(&Command::new(format!("rm -rf {dir}")).run_as("root"))
        .await
        .unwrap();
    Box::new(guest).close().await.unwrap();
}

/// sshd runs here, so this process sees the guest's processes: while a
/// secret file is uploaded, no command line holds its content.
#[tokio::test]
async fn upload_content_never_reaches_a_command_line() {
    let fx = Fixture::new();
    let mut guest = fx.connect().await;
    let dir = format!("/tmp/oxbake-secret-{}", fx.sshd.addr().port());
    let secret = format!("s3cr3t-upload-{}", rand::random::<u64>());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (stop, secret) = (stop.clone(), secret.clone());
        std::thread::spawn(move || {
            let (mut leaked, mut saw_helper) = (false, false);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                    let Ok(line) = std::fs::read(entry.path().join("cmdline")) else {
                        continue;
                    };
                    let line = String::from_utf8_lossy(&line);
                    leaked |= line.contains(&secret);
                    saw_helper |= line.contains("oxbake-root.");
                }
            }
            (leaked, saw_helper)
        })
    };
    for i in 0..30 {
        let file = RemoteFile::new(format!("{dir}/secret-{i}"), 0o600);
        guest.upload(secret.as_bytes(), &file).await.unwrap();
    }
    let err = guest
        .upload(
            secret.as_bytes(),
            &RemoteFile::new(format!("{dir}/x"), 0o600).owner("no-such-user"),
        )
        .await
        .unwrap_err();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (leaked, saw_helper) = watcher.join().unwrap();
    assert!(saw_helper, "the watcher must see the guest's processes");
    assert!(!leaked, "a command line held the uploaded content");
    assert!(!format!("{err} {err:?}").contains(&secret), "{err}");
    assert!(!fx.log_text().contains(&secret));
    assert!(!fx.sshd.log().contains(&secret));
    guest
        .exec_checked(&Command::new(format!("rm -rf {dir}")).run_as("root"))
        .await
        .unwrap();
    Box::new(guest).close().await.unwrap();
}
