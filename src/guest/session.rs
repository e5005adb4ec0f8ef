//! [`SshGuest`]: one authenticated russh connection; every step is a
//! channel on it. A connection found dead before a step starts (sshd
//! restarted by hardening) is re-established once, transparently.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use russh::client::Msg;
use russh::{Channel, ChannelMsg, Disconnect};

use super::command::{Command, ExecOutput, ExitStatus, KILL_AFTER};
use super::connect::{SshHandle, connect};
use super::error::GuestError;
use super::keys::HostKeyPolicy;
use super::lines::{LineSplitter, OutputSinks};
use super::redact::Redactor;
use super::target::GuestTarget;
use crate::progress::Stream;

/// How long past the remote `timeout`'s KILL the client still waits.
const GRACE: Duration = Duration::from_secs(2);

/// A connected guest over SSH.
pub struct SshGuest {
    pub(crate) target: GuestTarget,
    pub(crate) sinks: OutputSinks,
    handle: SshHandle,
    pub(crate) sftp: Option<russh_sftp::client::SftpSession>,
    pub(crate) staging: Option<String>,
}

impl SshGuest {
    /// Connects and logs in, retrying until `target.timing.connect_deadline`.
    /// With trust-on-first-use the key seen now is pinned for reconnections.
    pub async fn connect(target: &GuestTarget, sinks: OutputSinks) -> Result<Self, GuestError> {
        let (handle, key) = connect(target, target.timing.connect_deadline).await?;
        let mut target = target.clone();
        target.host_key = HostKeyPolicy::Expect(key);
        Ok(Self {
            target,
            sinks,
            handle,
            sftp: None,
            staging: None,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.target.addr
    }

    pub(crate) fn login_user(&self) -> &str {
        &self.target.user
    }

    /// Runs `cmd`, streaming its lines to `sinks`.
    pub(crate) async fn run(
        &mut self,
        cmd: &Command,
        sinks: &OutputSinks,
    ) -> Result<ExecOutput, GuestError> {
        let redactor = Redactor::new(&cmd.secrets);
        let shown = cmd.describe(&redactor);
        let line = cmd.remote_line(&self.target.user)?;
        let script = cmd.stdin_script()?;
        let mut channel = self.open_channel().await?;
        let started = Instant::now();
        let lost = |_| GuestError::ConnectionLost {
            addr: self.target.addr,
            cmd: shown.clone(),
        };
        channel.exec(true, line).await.map_err(lost)?;
        channel
            .data_bytes(script.into_bytes())
            .await
            .map_err(lost)?;
        channel.eof().await.map_err(lost)?;
        let limit = cmd.timeout + KILL_AFTER + GRACE;
        let collected = tokio::time::timeout(limit, collect(&mut channel, sinks, &redactor)).await;
        let timed_out = || GuestError::Timeout {
            addr: self.target.addr,
            cmd: shown.clone(),
            timeout: cmd.timeout,
        };
        let Ok(collected) = collected else {
            // Best effort: the remote `timeout` kills the command anyway.
            let _ = channel.signal(russh::Sig::KILL).await;
            let _ = channel.close().await;
            return Err(timed_out());
        };
        let output = collected.into_output(self.target.addr, &shown)?;
        if killed_by_timeout(&output.status) && started.elapsed() >= cmd.timeout {
            return Err(timed_out());
        }
        Ok(output)
    }

    /// Opens a session channel, reconnecting once if the connection is gone.
    pub(crate) async fn open_channel(&mut self) -> Result<Channel<Msg>, GuestError> {
        if !self.handle.is_closed()
            && let Ok(channel) = self.try_open().await
        {
            return Ok(channel);
        }
        self.sinks.progress.warn(format!(
            "guest `{}`: connection lost, reconnecting",
            self.target.addr
        ));
        self.reconnect().await?;
        self.try_open().await
    }

    async fn try_open(&self) -> Result<Channel<Msg>, GuestError> {
        let open = self.handle.channel_open_session();
        match tokio::time::timeout(self.target.timing.attempt_timeout, open).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e)) => Err(self.ssh_error(format!("cannot open a channel: {e}"))),
            Err(_) => Err(self.ssh_error("no answer to a channel request".into())),
        }
    }

    async fn reconnect(&mut self) -> Result<(), GuestError> {
        let (handle, _) = connect(&self.target, self.target.timing.reconnect_deadline).await?;
        self.handle = handle;
        // Both belonged to the old connection; the staging folder survives.
        self.sftp = None;
        Ok(())
    }

    pub(crate) fn ssh_error(&self, message: String) -> GuestError {
        GuestError::Ssh {
            addr: self.target.addr,
            message,
        }
    }

    /// Removes the staging folder and says goodbye.
    pub(crate) async fn shutdown(mut self) -> Result<(), GuestError> {
        if let Some(staging) = self.staging.take() {
            let cleanup = Command::new(format!("rm -rf {}", super::command::quote(&staging)))
                .timeout(Duration::from_secs(30));
            self.run(&cleanup, &OutputSinks::default()).await?;
        }
        if let Some(sftp) = self.sftp.take() {
            let _ = sftp.close().await;
        }
        self.handle
            .disconnect(Disconnect::ByApplication, "", "en")
            .await
            .map_err(|e| self.ssh_error(format!("disconnect: {e}")))
    }
}

/// `timeout` exits 124 after TERM and 137 after KILL.
fn killed_by_timeout(status: &ExitStatus) -> bool {
    matches!(status, ExitStatus::Code(124 | 137) | ExitStatus::Signal(_))
}

struct Collected {
    status: Option<ExitStatus>,
    refused: bool,
    stdout_tail: String,
    stderr_tail: String,
}

impl Collected {
    fn into_output(self, addr: SocketAddr, shown: &str) -> Result<ExecOutput, GuestError> {
        if self.refused {
            return Err(GuestError::Ssh {
                addr,
                message: format!("the guest refused to run `{shown}`"),
            });
        }
        match self.status {
            Some(status) => Ok(ExecOutput {
                status,
                stdout_tail: self.stdout_tail,
                stderr_tail: self.stderr_tail,
            }),
            None => Err(GuestError::ConnectionLost {
                addr,
                cmd: shown.to_owned(),
            }),
        }
    }
}

async fn collect(
    channel: &mut Channel<Msg>,
    sinks: &OutputSinks,
    redactor: &Redactor,
) -> Collected {
    let mut out = LineSplitter::new(Stream::Stdout, sinks, redactor);
    let mut err = LineSplitter::new(Stream::Stderr, sinks, redactor);
    let mut status = None;
    let mut refused = false;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => out.push(&data),
            ChannelMsg::ExtendedData { data, ext: 1 } => err.push(&data),
            ChannelMsg::ExitStatus { exit_status } => status = Some(ExitStatus::Code(exit_status)),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                status = Some(ExitStatus::Signal(signal_label(&signal_name)));
            }
            ChannelMsg::Failure => refused = true,
            ChannelMsg::Close => break,
            _ => {}
        }
    }
    Collected {
        status,
        refused,
        stdout_tail: out.finish(),
        stderr_tail: err.finish(),
    }
}

fn signal_label(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}
