//! Running a role's checks in a guest and judging each result against
//! what the recipe says it must be.

use std::time::Duration;

use crate::guest::{Command, ExecOutput, ExitStatus, GuestError, GuestSession};
use crate::recipe::Check;
use crate::registry::CheckResult;

/// How long one check may run.
const CHECK_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs `checks` in order and judges each; `seen` is told of every result
/// and returns whether to go on (`false` stops after that check). A check
/// that cannot run at all is an error.
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
        let out = guest.exec(&cmd).await?;
        let detail = judge(check, &out);
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
