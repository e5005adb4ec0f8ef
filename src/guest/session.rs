//! [`SshGuest`]: one authenticated russh connection; every step is a
//! channel on it. A connection found dead before a step starts (sshd
//! restarted by hardening) is re-established once, transparently.

use std::net::SocketAddr;
use std::time::Duration;

use russh::client::Msg;
use russh::{Channel, Disconnect};

use super::collect::collect;
use super::command::{Command, ExecOutput, ExitStatus, kill_script};
use super::connect::{SshHandle, connect};
use super::error::GuestError;
use super::keys::HostKeyPolicy;
use super::lines::OutputSinks;
use super::redact::Redactor;
use super::target::GuestTarget;

/// How long the killer of a timed-out step may take.
const KILL_LIMIT: Duration = Duration::from_secs(30);

/// A connected guest over SSH.
pub struct SshGuest {
    pub(crate) target: GuestTarget,
    pub(crate) sinks: OutputSinks,
    handle: SshHandle,
    pub(crate) sftp: Option<russh_sftp::client::SftpSession>,
    pub(crate) staging: Option<String>,
    pub(crate) helper: Option<super::helper::Helper>,
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
            helper: None,
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
        let mut pid = None;
        let collecting = collect(&mut channel, sinks, &redactor, &mut pid, cmd.capture);
        let collected = tokio::time::timeout(cmd.timeout, collecting).await;
        let Ok(collected) = collected else {
            let _ = channel.close().await;
            if let Some(pid) = pid {
                let sudo = cmd.uses_sudo(&self.target.user);
                if let Err(e) = self.kill_step(pid, sudo).await {
                    // The timeout is what the caller must hear about.
                    self.sinks.progress.warn(e.to_string());
                }
            }
            return Err(GuestError::Timeout {
                addr: self.target.addr,
                cmd: shown,
                timeout: cmd.timeout,
            });
        };
        collected.into_output(self.target.addr, &shown)
    }

    /// Kills the session of a timed-out step over a channel of its own.
    async fn kill_step(&mut self, pid: u32, sudo: bool) -> Result<(), GuestError> {
        let line = if sudo {
            "exec sudo -n -- sh -s"
        } else {
            "exec sh -s"
        };
        let channel = self.open_channel().await?;
        let failed =
            |e: String| self.ssh_error(format!("cannot kill timed-out step (pid {pid}): {e}"));
        channel
            .exec(true, line)
            .await
            .map_err(|e| failed(e.to_string()))?;
        channel
            .data_bytes(kill_script(pid).into_bytes())
            .await
            .map_err(|e| failed(e.to_string()))?;
        channel.eof().await.map_err(|e| failed(e.to_string()))?;
        let (mut channel, quiet, none) = (channel, OutputSinks::default(), Redactor::default());
        let mut no_pid = None;
        let done = collect(&mut channel, &quiet, &none, &mut no_pid, false);
        match tokio::time::timeout(KILL_LIMIT, done).await {
            Ok(c) if c.status == Some(ExitStatus::Code(0)) => Ok(()),
            Ok(c) => Err(failed(format!(
                "killer ended with {:?}: {}",
                c.status,
                c.stderr_tail.trim()
            ))),
            Err(_) => Err(failed("the killer timed out".into())),
        }
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
        // These belonged to the old connection; the staging folder survives
        // (the helper's own went with it).
        self.sftp = None;
        self.helper = None;
        Ok(())
    }

    pub(crate) fn ssh_error(&self, message: String) -> GuestError {
        GuestError::Ssh {
            addr: self.target.addr,
            message,
        }
    }

    /// Ends the root helper, removes the staging folder and says goodbye.
    pub(crate) async fn shutdown(mut self) -> Result<(), GuestError> {
        if let Some(helper) = self.helper.take() {
            helper.stop().await;
        }
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
