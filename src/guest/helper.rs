//! The privileged helper: one root shell per connection that installs the
//! files of every upload, started with the first upload and ended with the
//! session. It reads framed requests on its stdin and answers each with one
//! line on stdout, so an upload costs one round trip and a few small
//! programs in the guest, not a channel, sudo and a shell each time.
//!
//! A request is a header line `put LEN SHA256 MODE OWNER GROUP` (`-` for
//! no owner or group), a line with the absolute path, then exactly LEN
//! bytes of content. The helper copies them (`head -c`) into its own
//! staging folder in memory (0700, root's, in `/dev/shm`; `/tmp` only where
//! there is none), checks their SHA-256 there, so corrupted bytes never
//! reach the guest's disk, installs them with mode and owner under a
//! temporary name next to the target and renames that into place. The
//! answer is `ok`, `mismatch SHA256` or `failed MESSAGE`; after a failure
//! nothing is left but what was there before. The script is a constant on
//! the command line; content, hashes and paths only ever travel on stdin.

use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use super::command::quote;

/// The helper, for `sh -c`. `set -f` (no globbing) and `IFS` keep the
/// header's fields as they came; umask 022 as under sudo, for the folders
/// `mkdir -p` makes (the staging folder is 0700 whatever the umask); the
/// staged copy is emptied by a shell redirection (no extra program) once it
/// has been installed.
const SCRIPT: &str = r#"set -f; umask 022
s=$(mktemp -d /dev/shm/oxbake-root.XXXXXXXX 2>/dev/null || mktemp -d /tmp/oxbake-root.XXXXXXXX) || exit 70
trap 'rm -rf "$s"' EXIT; trap 'exit 71' HUP INT TERM PIPE
while IFS=' ' read -r op len sha mode owner group; do
IFS= read -r path || exit 72
[ "$op" = put ] || exit 73
head -c "$len" > "$s/data" || exit 74
got=$(sha256sum < "$s/data"); got=${got%% *}
if [ "$got" != "$sha" ]; then : > "$s/data"; echo "mismatch $got"; continue; fi
dir=${path%/*}; tmp="$dir/.${path##*/}.oxbake-new"; dir=${dir:-/}
set -- -m "$mode"; [ "$owner" = - ] || set -- "$@" -o "$owner"; [ "$group" = - ] || set -- "$@" -g "$group"
if { [ -d "$dir" ] || mkdir -p -- "$dir"; } 2>"$s/err" && install "$@" -T -- "$s/data" "$tmp" 2>"$s/err" && mv -f -T -- "$tmp" "$path" 2>"$s/err"; then echo ok
else rm -f -- "$tmp"; IFS= read -r e < "$s/err"; echo "failed ${e:-install failed}"; fi
: > "$s/data"
done"#;

/// How long one file may take from its first byte to the helper's answer.
const PUT_LIMIT: Duration = Duration::from_secs(600);

/// One request: where the bytes go, and how they are installed.
pub(crate) struct Put<'a> {
    pub(crate) path: &'a str,
    pub(crate) data: &'a [u8],
    pub(crate) sha256: &'a str,
    pub(crate) mode: u32,
    pub(crate) owner: Option<&'a str>,
    pub(crate) group: Option<&'a str>,
}

impl Put<'_> {
    /// Header, path and content as the helper reads them.
    fn frame(&self) -> Vec<u8> {
        let header = format!(
            "put {} {} {:04o} {} {}\n{}\n",
            self.data.len(),
            self.sha256,
            self.mode & 0o7777,
            self.owner.unwrap_or("-"),
            self.group.unwrap_or("-"),
            self.path,
        );
        let mut frame = Vec::with_capacity(header.len() + self.data.len());
        frame.extend_from_slice(header.as_bytes());
        frame.extend_from_slice(self.data);
        frame
    }
}

/// What the helper said about one file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    Done,
    Mismatch(String),
    Failed(String),
}

/// Why no answer came.
pub(crate) enum Gone {
    /// The channel ended (the helper exited, or the connection died); the
    /// text is what the helper printed on stderr, if anything.
    Ended(String),
    TimedOut,
}

/// A running helper: its channel and what it printed on stderr.
pub(crate) struct Helper {
    channel: Channel<Msg>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Helper {
    /// The exec line: the constant script under sudo (unless the login
    /// user is root).
    pub(crate) fn remote_line(login_user: &str) -> String {
        let sudo = if login_user == "root" {
            ""
        } else {
            "sudo -n -- "
        };
        format!("exec {sudo}sh -c {}", quote(SCRIPT))
    }

    /// Starts the helper on a fresh session channel. No round trip: a
    /// helper that cannot start shows it in the first answer.
    pub(crate) async fn start(channel: Channel<Msg>, login_user: &str) -> Result<Self, String> {
        channel
            .exec(true, Self::remote_line(login_user))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            channel,
            stdout: Vec::new(),
            stderr: Vec::new(),
        })
    }

    /// Sends one file and waits for its answer.
    pub(crate) async fn put(&mut self, put: &Put<'_>) -> Result<Answer, Gone> {
        if let Err(e) = self.channel.data_bytes(put.frame()).await {
            return Err(Gone::Ended(e.to_string()));
        }
        match tokio::time::timeout(PUT_LIMIT, self.answer()).await {
            Ok(answer) => answer,
            Err(_) => Err(Gone::TimedOut),
        }
    }

    async fn answer(&mut self) -> Result<Answer, Gone> {
        loop {
            if let Some(end) = self.stdout.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.stdout.drain(..=end).collect();
                return Ok(parse_answer(String::from_utf8_lossy(&line).trim_end()));
            }
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => self.stdout.extend_from_slice(&data),
                Some(ChannelMsg::ExtendedData { data, .. }) => {
                    self.stderr.extend_from_slice(&data);
                    let keep = self.stderr.len().saturating_sub(4096);
                    self.stderr.drain(..keep);
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => {
                    let said = String::from_utf8_lossy(&self.stderr).trim().to_owned();
                    return Err(Gone::Ended(format!(
                        "the root helper ended with exit status {exit_status}: {said}"
                    )));
                }
                Some(ChannelMsg::Failure) => {
                    return Err(Gone::Ended(
                        "the guest refused to start the root helper".into(),
                    ));
                }
                None | Some(ChannelMsg::Close | ChannelMsg::Eof) => {
                    let said = String::from_utf8_lossy(&self.stderr).trim().to_owned();
                    return Err(Gone::Ended(format!(
                        "the root helper's channel closed: {said}"
                    )));
                }
                Some(_) => {}
            }
        }
    }

    /// Closes the channel of a helper that gave no answer: sshd ends the
    /// session, and with its stdin gone the helper exits and removes its
    /// staging folder.
    pub(crate) async fn abandon(self) {
        let _ = self.channel.close().await;
    }

    /// Ends the helper (it removes its staging folder on the way out).
    pub(crate) async fn stop(mut self) {
        if self.channel.eof().await.is_err() {
            return;
        }
        let waiting = async { while self.channel.wait().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_secs(10), waiting).await;
    }
}

fn parse_answer(line: &str) -> Answer {
    if line == "ok" {
        Answer::Done
    } else if let Some(got) = line.strip_prefix("mismatch ") {
        Answer::Mismatch(got.to_owned())
    } else {
        let message = line.strip_prefix("failed ").unwrap_or(line);
        Answer::Failed(message.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::process::{Command, Stdio};

    use sha2::{Digest, Sha256};

    use super::*;

    fn put<'a>(path: &'a str, data: &'a [u8], sha256: &'a str, mode: u32) -> Put<'a> {
        Put {
            path,
            data,
            sha256,
            mode,
            owner: None,
            group: None,
        }
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn staging_folders() -> Vec<String> {
        ["/dev/shm", "/tmp"]
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("oxbake-root."))
            .collect()
    }

    /// The helper script itself, run here by `sh` as the current user, fed
    /// the frames of `puts`; its answers, one per line.
    fn run_script(puts: &[Put<'_>]) -> Vec<String> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(SCRIPT)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for put in puts {
            stdin.write_all(&put.frame()).unwrap();
        }
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{:?}", out.status);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_script_checks_installs_and_leaves_nothing_behind() {
        let before = staging_folders();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        std::fs::write(dir.path().join("plain"), "a file, not a folder").unwrap();
        let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let (nested, corrupt, after, blocked) = (
            format!("{d}/new/sub/f"),
            format!("{d}/corrupt"),
            format!("{d}/after"),
            format!("{d}/plain/x"),
        );
        let (binary_sha, new_sha) = (sha(&binary), sha(b"new\n"));
        let answers = run_script(&[
            put(&nested, &binary, &binary_sha, 0o640),
            put(&corrupt, b"tampered", &binary_sha, 0o644),
            put(&after, b"", &sha(b""), 0o600),
            put(&blocked, b"x", &sha(b"x"), 0o644),
            put(&nested, b"new\n", &new_sha, 0o600),
        ]);
        assert_eq!(answers.len(), 5, "{answers:?}");
        assert_eq!(answers[0], "ok");
        assert_eq!(answers[1], format!("mismatch {}", sha(b"tampered")));
        assert_eq!(
            answers[2], "ok",
            "the stream stays in step after a mismatch"
        );
        assert!(answers[3].starts_with("failed "), "{}", answers[3]);
        assert_eq!(answers[4], "ok");

        assert_eq!(std::fs::read(&nested).unwrap(), b"new\n");
        assert_eq!(mode(Path::new(&nested)), 0o600);
        assert_eq!(mode(&dir.path().join("new")), 0o755);
        assert_eq!(names(&dir.path().join("new/sub")), ["f"]);
        assert_eq!(mode(Path::new(&after)), 0o600);
        assert_eq!(names(dir.path()), ["after", "new", "plain"]);
        assert_eq!(staging_folders(), before, "the staging folder is removed");
    }

    #[test]
    fn frames_header_path_then_bytes() {
        let put = Put {
            path: "/etc/a b",
            data: b"x\0y",
            sha256: "abc",
            mode: 0o100640,
            owner: Some("www-data"),
            group: None,
        };
        assert_eq!(
            &put.frame()[..],
            b"put 3 abc 0640 www-data -\n/etc/a b\nx\0y"
        );
    }

    #[test]
    fn the_command_line_is_constant() {
        let line = Helper::remote_line("bob");
        assert!(line.starts_with("exec sudo -n -- sh -c 'set -f;"), "{line}");
        assert!(!line.contains('\n') || line.matches('\'').count() > 2);
        assert_eq!(line, Helper::remote_line("bob"));
        assert!(Helper::remote_line("root").starts_with("exec sh -c "));
    }

    #[test]
    fn parses_answers() {
        assert_eq!(parse_answer("ok"), Answer::Done);
        assert_eq!(parse_answer("mismatch ff"), Answer::Mismatch("ff".into()));
        assert_eq!(
            parse_answer("failed install: x"),
            Answer::Failed("install: x".into())
        );
    }
}
