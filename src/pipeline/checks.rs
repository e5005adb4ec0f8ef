//! Running a role's checks in a guest and judging each result against
//! what the recipe says it must be.

use std::time::Duration;

use tokio::time::Instant;

use crate::guest::{Command, ExecOutput, ExitStatus, GuestError, GuestSession};
use crate::recipe::Check;
use crate::registry::CheckResult;

/// How long one check may run.
const CHECK_TIMEOUT: Duration = Duration::from_secs(300);
/// The pause between two runs of a check that waits (`within_seconds`).
const AGAIN_AFTER: Duration = Duration::from_secs(1);

/// Runs `checks` in order and judges each (a check with `within_seconds`
/// runs again until it passes or its time is over); `seen` is told of every
/// result and returns whether to go on (`false` stops after that check). A
/// check that cannot run at all is an error.
pub async fn run_checks(
    guest: &mut dyn GuestSession,
    checks: &[&Check],
    seen: &mut (dyn FnMut(&CheckResult) -> bool + Send),
) -> Result<Vec<CheckResult>, GuestError> {
    let mut results = Vec::new();
    for check in checks {
        let cmd = Command::new(&check.run)
            .run_as(&check.user)
            .timeout(CHECK_TIMEOUT)
            .capture();
        let until = Instant::now() + Duration::from_secs(check.within_seconds.into());
        let detail = loop {
            let out = guest.exec(&cmd).await?;
            match judge(check, &out) {
                Some(_) if Instant::now() < until => tokio::time::sleep(AGAIN_AFTER).await,
                Some(why) if check.within_seconds > 0 => {
                    break Some(format!("{why} (still, after {} s)", check.within_seconds));
                }
                verdict => break verdict,
            }
        };
        let result = CheckResult {
            name: check.name.clone(),
            command: check.run.clone(),
            passed: detail.is_none(),
            detail: detail.unwrap_or_default(),
        };
        let go_on = seen(&result);
        results.push(result);
        if !go_on {
            break;
        }
    }
    Ok(results)
}

/// `None` when the check passed, else why not.
pub fn judge(check: &Check, out: &ExecOutput) -> Option<String> {
    let mut problems = Vec::new();
    let expected = ExitStatus::Code(u32::try_from(check.exit).unwrap_or(u32::MAX));
    if out.status != expected {
        let stderr = out.stderr_tail.lines().last().unwrap_or_default().trim();
        let mut p = format!("{}, expected exit status {}", out.status, check.exit);
        if !stderr.is_empty() {
            p.push_str(&format!(" (stderr: {stderr})"));
        }
        problems.push(p);
    }
    for needle in &check.stdout_contains {
        if !out.stdout.contains(needle.as_str()) {
            problems.push(format!("stdout lacks `{needle}`"));
        }
    }
    for needle in &check.stdout_lacks {
        if out.stdout.contains(needle.as_str()) {
            problems.push(format!("stdout holds `{needle}`"));
        }
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(contains: &[&str], lacks: &[&str]) -> Check {
        Check {
            name: "c".into(),
            run: "true".into(),
            user: "root".into(),
            exit: 0,
            stdout_contains: contains.iter().map(|s| s.to_string()).collect(),
            stdout_lacks: lacks.iter().map(|s| s.to_string()).collect(),
            deployed_only: false,
            within_seconds: 0,
        }
    }

    fn out(code: u32, stdout: &str) -> ExecOutput {
        ExecOutput {
            status: ExitStatus::Code(code),
            stdout: stdout.into(),
            stdout_tail: String::new(),
            stderr_tail: "boom\n".into(),
        }
    }

    /// Answers each run with the next of `outputs` (the last one again
    /// when they run out) and counts the runs.
    struct Answers {
        outputs: Vec<&'static str>,
        runs: usize,
    }

    #[async_trait::async_trait]
    impl GuestSession for Answers {
        fn addr(&self) -> std::net::SocketAddr {
            ([127, 0, 0, 1], 22).into()
        }
        async fn exec(&mut self, _: &Command) -> Result<ExecOutput, GuestError> {
            let at = self.runs.min(self.outputs.len() - 1);
            self.runs += 1;
            Ok(out(0, self.outputs[at]))
        }
        async fn upload(
            &mut self,
            _: &[u8],
            _: &crate::guest::RemoteFile,
        ) -> Result<(), GuestError> {
            Ok(())
        }
        async fn download(&mut self, _: &str) -> Result<Vec<u8>, GuestError> {
            Ok(Vec::new())
        }
        async fn close(self: Box<Self>) -> Result<(), GuestError> {
            Ok(())
        }
    }

    /// The runs a check took and its result, against `outputs`.
    async fn waiting(within: u32, outputs: Vec<&'static str>) -> (usize, CheckResult) {
        let mut c = check(&["state 4"], &[]);
        c.within_seconds = within;
        let mut guest = Answers { outputs, runs: 0 };
        let mut results = run_checks(&mut guest, &[&c], &mut |_| true).await.unwrap();
        (guest.runs, results.remove(0))
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiting_check_runs_until_it_passes_or_its_time_is_over() {
        // Once, without within_seconds: the first answer is the result.
        let (runs, r) = waiting(0, vec!["up 1 state 2", "up 1 state 4"]).await;
        assert_eq!((runs, r.passed), (1, false));
        assert_eq!(r.detail, "stdout lacks `state 4`");
        // Waits through answers that do not pass yet (a node still
        // joining: `up 1` alone is not enough), then passes.
        let (runs, r) = waiting(30, vec!["up 0", "up 1 state 2", "up 1 state 4"]).await;
        assert_eq!((runs, r.passed), (3, true));
        // Never: runs about once a second for its time, then says so.
        let (runs, r) = waiting(5, vec!["up 1 state 2"]).await;
        assert!(!r.passed && (5..=7).contains(&runs), "{runs} runs");
        assert_eq!(r.detail, "stdout lacks `state 4` (still, after 5 s)");
    }

    #[test]
    fn passes_only_when_everything_holds() {
        let c = check(&["policy drop"], &["test"]);
        assert_eq!(judge(&c, &out(0, "chain input { policy drop; }")), None);
        assert_eq!(
            judge(&c, &out(1, "policy accept test")).unwrap(),
            "exit status 1, expected exit status 0 (stderr: boom); stdout lacks `policy drop`; stdout holds `test`"
        );
    }
}
