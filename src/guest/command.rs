//! A command for the guest and what it produced.
//!
//! The script travels on the channel's stdin (`sh -s`), never on a command
//! line: environment values and secrets stay out of `ps` and out of sudo's
//! log. The script runs inside `{ …; } </dev/null`, so a command that reads
//! its stdin cannot swallow the rest of the script.
//!
//! Timeouts are enforced by the client: the script's first stderr line is
//! its shell's pid (stripped before anyone sees it); when the step's time is
//! up, a second channel kills the whole session sshd started for the step
//! (TERM, then KILL). No wrapper process sits on the fast path, which keeps
//! a small step at about one fork and one exec. A step whose connection
//! dies keeps running until it ends on its own; the build fails anyway.

use std::fmt;
use std::time::Duration;

use super::error::GuestError;
use super::redact::Redactor;

/// How long a step may run when the caller does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// After a timed-out step got TERM, how long before it gets KILL.
pub const KILL_AFTER: Duration = Duration::from_secs(2);

/// The prefix of the first stderr line, which carries the step's pid.
pub(crate) const PID_MARK: &str = "oxbake-pid ";

#[derive(Debug, Clone)]
pub struct Command {
    pub script: String,
    pub run_as: Option<String>,
    pub timeout: Duration,
    pub env: Vec<(String, String)>,
    pub secrets: Vec<String>,
    /// Keep the whole stdout (redacted, up to [`MAX_CAPTURE`] bytes) in
    /// [`ExecOutput::stdout`], for output that is parsed or checked.
    pub capture: bool,
}

/// The most stdout a captured command keeps.
pub const MAX_CAPTURE: usize = 16 * 1024 * 1024;

impl Command {
    pub fn new(script: impl Into<String>) -> Self {
        Self {
            script: script.into(),
            run_as: None,
            timeout: DEFAULT_TIMEOUT,
            env: Vec::new(),
            secrets: Vec::new(),
            capture: false,
        }
    }

    /// Keeps the whole stdout in the output.
    pub fn capture(mut self) -> Self {
        self.capture = true;
        self
    }

    pub fn run_as(mut self, user: impl Into<String>) -> Self {
        self.run_as = Some(user.into());
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// A value to hide from every line, tail and error of this command.
    pub fn secret(mut self, value: impl Into<String>) -> Self {
        self.secrets.push(value.into());
        self
    }

    /// The first line of the script, redacted, then shortened, for
    /// messages.
    pub(crate) fn describe(&self, redactor: &Redactor) -> String {
        let mut lines = self.script.lines().map(str::trim).filter(|l| !l.is_empty());
        let first = redactor.redact(lines.next().unwrap_or(""));
        let mut shown: String = first.chars().take(80).collect();
        if shown.len() < first.len() || lines.next().is_some() {
            shown.push_str(" …");
        }
        shown
    }

    /// The exec request's command line (no secret can be in it).
    pub(crate) fn remote_line(&self, login_user: &str) -> Result<String, GuestError> {
        Ok(match self.sudo_prefix(login_user)? {
            Some(prefix) => format!("exec {prefix} sh -s"),
            None => "exec sh -s".to_owned(),
        })
    }

    /// Whether the step runs through sudo (then so must its killer).
    pub(crate) fn uses_sudo(&self, login_user: &str) -> bool {
        self.run_as
            .as_deref()
            .is_some_and(|user| user != login_user)
    }

    fn sudo_prefix(&self, login_user: &str) -> Result<Option<String>, GuestError> {
        match &self.run_as {
            Some(user) if user != login_user => {
                check_name("user", user)?;
                Ok(Some(if user == "root" {
                    "sudo -n --".to_owned()
                } else {
                    format!("sudo -n -u {user} --")
                }))
            }
            _ => Ok(None),
        }
    }

    /// What `sh -s` reads on stdin.
    pub(crate) fn stdin_script(&self) -> Result<String, GuestError> {
        let mut out = format!("printf '{PID_MARK}%s\\n' \"$$\" >&2\n");
        for (name, value) in &self.env {
            check_env_name(name)?;
            out.push_str(&format!("export {name}={}\n", quote(value)));
        }
        out.push_str("{\n");
        out.push_str(&self.script);
        out.push_str("\n} </dev/null\n");
        Ok(out)
    }
}

/// Kills every process of the session sshd made for the step whose shell
/// has `pid` (sudo and what runs under it included): TERM, then KILL.
pub(crate) fn kill_script(pid: u32) -> String {
    format!(
        "read -r stat < /proc/{pid}/stat || exit 0\nset -- ${{stat##*) }}\nsid=$4\n\
         [ \"$sid\" -gt 1 ] || exit 0\n\
         members() {{ for f in /proc/[0-9]*/stat; do read -r s < \"$f\" 2>/dev/null || continue; \
         set -- ${{s##*) }}; [ \"$4\" = \"$sid\" ] && {{ p=${{f#/proc/}}; echo \"${{p%/stat}}\"; }}; done; }}\n\
         kill -TERM $(members) 2>/dev/null\nsleep {}\nkill -KILL $(members) 2>/dev/null\nexit 0\n",
        KILL_AFTER.as_secs()
    )
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExitStatus {
    Code(u32),
    Signal(String),
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        *self == Self::Code(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code(code) => write!(f, "exit status {code}"),
            Self::Signal(name) => write!(f, "signal {name}"),
        }
    }
}

/// What a finished command left behind (already redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: ExitStatus,
    /// The whole stdout when the command asked for [`Command::capture`],
    /// else empty.
    pub stdout: String,
    pub stdout_tail: String,
    pub stderr_tail: String,
}

/// Single-quotes `value` for a POSIX shell.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// User and group names: what useradd accepts, nothing a shell would read.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), GuestError> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(GuestError::Invalid {
            what,
            value: name.to_owned(),
            reason: "only letters, digits, `_`, `-` and `.` are allowed",
        })
    }
}

fn check_env_name(name: &str) -> Result<(), GuestError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(GuestError::Invalid {
            what: "environment variable name",
            value: name.to_owned(),
            reason: "must match [A-Za-z_][A-Za-z0-9_]*",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_redacts_before_shortening() {
        let secret = "s".repeat(100);
        let cmd = Command::new(format!("echo {secret}\nmore")).secret(&secret);
        assert_eq!(
            cmd.describe(&Redactor::new(&cmd.secrets)),
            "echo [redacted] …"
        );
    }

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn sudo_only_for_another_user() {
        let cmd = Command::new("id").timeout(Duration::from_secs(2));
        assert_eq!(cmd.remote_line("bob").unwrap(), "exec sh -s");
        let line = cmd.clone().run_as("root").remote_line("bob").unwrap();
        assert_eq!(line, "exec sudo -n -- sh -s");
        let line = cmd.clone().run_as("www-data").remote_line("root").unwrap();
        assert!(line.starts_with("exec sudo -n -u www-data -- "));
        assert!(
            cmd.run_as("bob")
                .remote_line("bob")
                .unwrap()
                .starts_with("exec sh")
        );
    }

    #[test]
    fn rejects_shell_in_names() {
        let cmd = Command::new("id").run_as("x;reboot");
        assert!(cmd.remote_line("bob").is_err());
        assert!(Command::new("x").env("A B", "1").stdin_script().is_err());
    }

    #[test]
    fn env_values_are_quoted_in_the_script() {
        let script = Command::new("echo $A")
            .env("A", "x'y")
            .stdin_script()
            .unwrap();
        assert_eq!(
            script,
            "printf 'oxbake-pid %s\\n' \"$$\" >&2\nexport A='x'\\''y'\n{\necho $A\n} </dev/null\n"
        );
    }
}
