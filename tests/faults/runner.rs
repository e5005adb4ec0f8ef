//! Runs the oxbake binary with a fault armed: when a line of its progress
//! output (stderr) contains the trigger, the action fires (a signal to
//! oxbake, a process killed, a switch flipped in a simulator).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What oxbake did.
pub struct Outcome {
    pub code: i32,
    pub stderr: String,
    /// Whether the trigger line was seen and the action fired (or there
    /// was no trigger).
    pub fired: bool,
    pub elapsed: Duration,
}

/// The fault to inject once the trigger is seen.
pub enum Action<'a> {
    /// Sends a signal (`INT`, `TERM`) to oxbake after `delay`.
    Signal(&'static str, Duration),
    /// Runs a closure (given oxbake's pid) after `delay`.
    Call(Duration, Box<dyn FnOnce(u32) + 'a>),
}

pub struct Invocation<'a> {
    pub project: &'a Path,
    pub args: &'a [&'a str],
    pub env: Vec<(String, String)>,
    /// The text of a progress line that arms the fault; `None` runs plainly.
    pub trigger: Option<&'a str>,
    /// Arms the fault this long after the start instead (for steps that
    /// print nothing, e.g. a request that never gets an answer).
    pub after: Option<Duration>,
    pub action: Option<Action<'a>>,
    /// oxbake is killed (and the row fails) past this.
    pub deadline: Duration,
}

impl<'a> Invocation<'a> {
    pub fn new(project: &'a Path, args: &'a [&'a str]) -> Self {
        Self {
            project,
            args,
            env: Vec::new(),
            trigger: None,
            after: None,
            action: None,
            deadline: Duration::from_secs(300),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn on(mut self, trigger: &'a str, action: Action<'a>) -> Self {
        self.trigger = Some(trigger);
        self.action = Some(action);
        self
    }

    /// Fires `action` `delay` after oxbake started, whatever it printed.
    pub fn after(mut self, delay: Duration, action: Action<'a>) -> Self {
        self.after = Some(delay);
        self.action = Some(action);
        self
    }

    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    pub fn run(self) -> Outcome {
        let mut child = self.spawn();
        let pid = child.id();
        let (tx, rx) = mpsc::channel::<String>();
        let stderr = child.stderr.take().expect("piped stderr");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let started = Instant::now();
        let mut text = String::new();
        let mut action = self.action;
        let mut fired = self.trigger.is_none() && self.after.is_none();
        loop {
            if self.after.is_some_and(|at| started.elapsed() >= at)
                && let Some(action) = action.take()
            {
                fire(action, pid);
                fired = true;
            }
            let left = self.deadline.saturating_sub(started.elapsed());
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    let hit = self.trigger.is_some_and(|t| line.contains(t));
                    text.push_str(&line);
                    text.push('\n');
                    if hit && let Some(action) = action.take() {
                        fire(action, pid);
                        fired = true;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) if left.is_zero() => {
                    let _ = child.kill();
                    text.push_str("\n[test: oxbake killed at the deadline]\n");
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
        let status = child.wait().expect("wait for oxbake");
        let _ = reader.join();
        Outcome {
            code: status.code().unwrap_or(-1),
            stderr: text,
            fired,
            elapsed: started.elapsed(),
        }
    }

    fn spawn(&self) -> Child {
        Command::new(env!("CARGO_BIN_EXE_oxbake"))
            .arg("-C")
            .arg(self.project)
            .args(self.args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start oxbake")
    }
}

fn fire(action: Action<'_>, pid: u32) {
    match action {
        Action::Signal(sig, delay) => {
            std::thread::sleep(delay);
            signal(pid, sig);
        }
        Action::Call(delay, f) => {
            std::thread::sleep(delay);
            f(pid);
        }
    }
}

pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid}");
}
