//! File transfers. Uploads go to the root helper ([`super::helper`]): one
//! `sudo` shell per connection, fed framed requests on its stdin, which
//! stages each file in memory, checks its SHA-256, installs it with mode
//! and owner under a temporary name next to the target and renames it into
//! place, so a reader never sees half a file.
//!
//! Why a helper session and not batching consecutive file steps into one
//! tar stream: it makes every upload fast (one round trip and four small
//! programs instead of a channel, sudo, a shell and five programs), for
//! every caller, without the pipeline having to group steps or the guest
//! a tar; each step still fails or succeeds on its own, with its own
//! message, as before.
//!
//! Downloads are rare: bytes are installed as root into a private staging
//! folder in memory (`mktemp -d` in `/dev/shm`, 0700, owned by the login
//! user), hashed there, and read over SFTP.

use russh_sftp::client::SftpSession;
use sha2::{Digest, Sha256};

use super::command::{Command, ExecOutput, check_name, quote};
use super::error::GuestError;
use super::helper::{Answer, Gone, Helper, Put};
use super::lines::OutputSinks;
use super::session::SshGuest;

/// Makes the staging folder in memory (`/dev/shm`, a tmpfs), so the
/// uploaded bytes (a credentials file, a template rendered with a secret)
/// never reach the guest's disk on their way: a staged copy removed from
/// an ext4 disk leaves its bytes in free blocks, and so in the template.
/// `/tmp` only where the guest has no `/dev/shm`.
const STAGING: &str =
    "mktemp -d /dev/shm/oxbake-stage.XXXXXXXX 2>/dev/null || mktemp -d /tmp/oxbake-stage.XXXXXXXX";

/// Where an uploaded file lands, and with which mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub path: String,
    pub mode: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
}

impl RemoteFile {
    /// `path` owned by root, with `mode` (e.g. `0o644`).
    pub fn new(path: impl Into<String>, mode: u32) -> Self {
        Self {
            path: path.into(),
            mode,
            owner: None,
            group: None,
        }
    }

    pub fn owner(mut self, user: impl Into<String>) -> Self {
        self.owner = Some(user.into());
        self
    }

    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Owner and group are names, nothing a shell would read.
    fn check_names(&self) -> Result<(), GuestError> {
        if let Some(owner) = &self.owner {
            check_name("owner", owner)?;
        }
        if let Some(group) = &self.group {
            check_name("group", group)?;
        }
        Ok(())
    }
}

impl SshGuest {
    /// Uploads through the root helper (see [`super::helper`]). A helper
    /// found gone before it answered (the connection was re-established
    /// since it started) is started again once: an upload is idempotent.
    pub(crate) async fn put(&mut self, data: &[u8], to: &RemoteFile) -> Result<(), GuestError> {
        split_path(&to.path)?;
        to.check_names()?;
        let expected = hex::encode(Sha256::digest(data));
        let put = Put {
            path: &to.path,
            data,
            sha256: &expected,
            mode: to.mode,
            owner: to.owner.as_deref(),
            group: to.group.as_deref(),
        };
        let fresh = self.helper.is_none();
        let answer = match self.helper_put(&put).await {
            Err(Gone::Ended(_)) if !fresh => self.helper_put(&put).await,
            other => other,
        };
        match answer {
            Ok(Answer::Done) => Ok(()),
            Ok(Answer::Mismatch(got)) => Err(GuestError::Integrity {
                addr: self.addr(),
                path: to.path.clone(),
                expected,
                got,
            }),
            Ok(Answer::Failed(message)) => Err(GuestError::Transfer {
                addr: self.addr(),
                path: to.path.clone(),
                message,
            }),
            Err(gone) => Err(GuestError::Transfer {
                addr: self.addr(),
                path: to.path.clone(),
                message: match gone {
                    Gone::Ended(message) => message,
                    Gone::TimedOut => "the root helper did not answer in time".to_owned(),
                },
            }),
        }
    }

    /// One request to the helper, started first if there is none; a helper
    /// that gave no answer is closed and forgotten.
    async fn helper_put(&mut self, put: &Put<'_>) -> Result<Answer, Gone> {
        if self.helper.is_none() {
            let channel = self
                .open_channel()
                .await
                .map_err(|e| Gone::Ended(e.to_string()))?;
            let helper = Helper::start(channel, self.login_user()).await;
            self.helper = Some(helper.map_err(Gone::Ended)?);
        }
        let helper = self.helper.as_mut().expect("started above");
        let answer = helper.put(put).await;
        if answer.is_err()
            && let Some(helper) = self.helper.take()
        {
            helper.abandon().await;
        }
        answer
    }

    pub(crate) async fn get(&mut self, path: &str) -> Result<Vec<u8>, GuestError> {
        let (_, name) = split_path(path)?;
        let stage = self.stage_path(name).await?;
        let script = format!(
            "set -e\ninstall -m 0600 -o {} -T {} {stage}\nsha256sum < {stage}",
            self.login_user(),
            quote(path),
            stage = quote(&stage),
        );
        let out = self.run_quiet(Command::new(script).run_as("root")).await?;
        if !out.status.success() {
            return Err(self.transfer_error(path, &out));
        }
        let expected = out
            .stdout_tail
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_owned();
        let data = self.sftp_read(&stage).await?;
        let got = hex::encode(Sha256::digest(&data));
        if got != expected {
            return Err(GuestError::Integrity {
                addr: self.addr(),
                path: path.to_owned(),
                expected,
                got,
            });
        }
        Ok(data)
    }

    async fn run_quiet(&mut self, cmd: Command) -> Result<ExecOutput, GuestError> {
        self.run(&cmd, &OutputSinks::default()).await
    }

    /// A fresh path in the staging folder, made on first use.
    async fn stage_path(&mut self, name: &str) -> Result<String, GuestError> {
        if self.staging.is_none() {
            let out = self.run_quiet(Command::new(STAGING)).await?;
            if !out.status.success() {
                return Err(self.transfer_error("/dev/shm or /tmp", &out));
            }
            self.staging = Some(out.stdout_tail.trim().to_owned());
        }
        let staging = self.staging.as_deref().unwrap_or("/tmp");
        let unique = hex::encode(rand::random::<[u8; 6]>());
        Ok(format!("{staging}/{unique}-{name}"))
    }

    async fn sftp(&mut self) -> Result<&SftpSession, GuestError> {
        if self.sftp.is_none() {
            let channel = self.open_channel().await?;
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(|e| self.ssh_error(format!("sftp subsystem: {e}")))?;
            let session = SftpSession::new(channel.into_stream())
                .await
                .map_err(|e| self.ssh_error(format!("sftp start: {e}")))?;
            self.sftp = Some(session);
        }
        let sftp = self.sftp.as_ref();
        sftp.ok_or_else(|| self.ssh_error("sftp session vanished".into()))
    }

    async fn sftp_read(&mut self, path: &str) -> Result<Vec<u8>, GuestError> {
        let addr = self.addr();
        let sftp = self.sftp().await?;
        let data = sftp.read(path).await;
        let _ = sftp.remove_file(path).await;
        data.map_err(|e| GuestError::Sftp {
            addr,
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    fn transfer_error(&self, path: &str, out: &ExecOutput) -> GuestError {
        let tail = out.stderr_tail.trim();
        GuestError::Transfer {
            addr: self.addr(),
            path: path.to_owned(),
            message: format!("{}: {tail}", out.status),
        }
    }
}

/// Splits an absolute path into its folder and file name.
fn split_path(path: &str) -> Result<(&str, &str), GuestError> {
    let invalid = |reason| GuestError::Invalid {
        what: "remote path",
        value: path.to_owned(),
        reason,
    };
    if !path.starts_with('/') || path.contains(['\n', '\0']) {
        return Err(invalid("must be absolute and on one line"));
    }
    match path.rsplit_once('/') {
        Some((_, "" | "." | "..")) | None => Err(invalid("must name a file")),
        Some(("", name)) => Ok(("/", name)),
        Some((dir, name)) => Ok((dir, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_paths() {
        assert_eq!(
            split_path("/etc/nginx/nginx.conf").unwrap(),
            ("/etc/nginx", "nginx.conf")
        );
        assert_eq!(split_path("/x").unwrap(), ("/", "x"));
        assert!(split_path("etc/x").is_err());
        assert!(split_path("/etc/").is_err());
    }

    #[test]
    fn owner_and_group_must_be_names() {
        let file = RemoteFile::new("/x", 0o640).owner("www-data").group("adm");
        assert!(file.check_names().is_ok());
        assert!(
            RemoteFile::new("/x", 0o600)
                .owner("a b")
                .check_names()
                .is_err()
        );
        assert!(
            RemoteFile::new("/x", 0o600)
                .group("-g")
                .check_names()
                .is_err()
        );
    }
}
