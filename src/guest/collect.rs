//! Reading a step's channel to its end: lines to the sinks, the exit
//! status, and the pid line that starts stderr.

use std::net::SocketAddr;

use russh::client::Msg;
use russh::{Channel, ChannelMsg};

use super::command::{ExecOutput, ExitStatus, MAX_CAPTURE, PID_MARK};
use super::error::GuestError;
use super::lines::{LineSplitter, OutputSinks};
use super::redact::Redactor;
use crate::progress::Stream;

pub(crate) struct Collected {
    pub(crate) status: Option<ExitStatus>,
    refused: bool,
    stdout: String,
    stdout_tail: String,
    pub(crate) stderr_tail: String,
}

impl Collected {
    pub(crate) fn into_output(
        self,
        addr: SocketAddr,
        shown: &str,
    ) -> Result<ExecOutput, GuestError> {
        if self.refused {
            return Err(GuestError::Ssh {
                addr,
                message: format!("the guest refused to run `{shown}`"),
            });
        }
        match self.status {
            Some(status) => Ok(ExecOutput {
                status,
                stdout: self.stdout,
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

/// Reads a step's channel to its end. The first stderr line (the pid) is
/// stored in `pid` as soon as it arrives, so a timeout can use it.
pub(crate) async fn collect(
    channel: &mut Channel<Msg>,
    sinks: &OutputSinks,
    redactor: &Redactor,
    pid: &mut Option<u32>,
    capture: bool,
) -> Collected {
    let mut captured: Vec<u8> = Vec::new();
    let mut out = LineSplitter::new(Stream::Stdout, sinks, redactor);
    let mut err = LineSplitter::new(Stream::Stderr, sinks, redactor);
    let mut head = PidLine::default();
    let mut status = None;
    let mut refused = false;
    while let Some(msg) = channel.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                if capture && captured.len() < MAX_CAPTURE {
                    let room = MAX_CAPTURE - captured.len();
                    captured.extend_from_slice(&data[..data.len().min(room)]);
                }
                out.push(&data)
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                let rest = head.feed(&data, pid);
                err.push(rest);
            }
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
        stdout: redactor.redact(&String::from_utf8_lossy(&captured)),
        stdout_tail: out.finish(),
        stderr_tail: err.finish(),
    }
}

/// Strips the pid line from the start of stderr.
#[derive(Default)]
struct PidLine {
    buf: Vec<u8>,
    done: bool,
}

impl PidLine {
    /// Returns what of `data` is ordinary stderr.
    fn feed<'d>(&mut self, data: &'d [u8], pid: &mut Option<u32>) -> &'d [u8] {
        if self.done {
            return data;
        }
        let Some(end) = data.iter().position(|&b| b == b'\n') else {
            self.buf.extend_from_slice(data);
            return &[];
        };
        self.buf.extend_from_slice(&data[..end]);
        self.done = true;
        let line = String::from_utf8_lossy(&self.buf);
        *pid = line
            .strip_prefix(PID_MARK)
            .and_then(|p| p.trim().parse().ok());
        &data[end + 1..]
    }
}

fn signal_label(sig: &russh::Sig) -> String {
    match sig {
        russh::Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}
