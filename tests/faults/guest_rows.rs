//! `oxbake promote` and `oxbake deploy` on the local target with faults
//! while their guest boots and runs (feature `e2e`): signals while the
//! clone boots (cheap: no full boot) and while it is checked, a check that
//! fails and one that drops its own SSH connection. The image is the
//! shared fixture's `base` (see `guest_fork`). The deploy is a stop-first
//! replacement of an earlier VM that must be running again afterwards (it
//! has no recorded host key, so the error also says it could not be proven
//! healthy). The other faults of both commands are on the in-memory
//! simulator (`promote`, `deploy`).

use std::time::Duration;

use oxbake::registry::Registry;

use super::guest_fork::{Earlier, Fork};
use super::leftovers::{self, RegistrySnapshot};
use super::runner::{Action, Invocation};
use super::table::{Matrix, row};
use crate::support::e2e::{baked, vm_lock};

/// One row: what to inject and what must be said.
struct Fault<'a> {
    fault: &'a str,
    step: &'a str,
    expected: i32,
    says: &'a [&'a str],
    /// The check `base` gets for this row.
    check: (&'a str, &'a str),
    on: Option<(&'a str, &'static str, u64)>,
}

fn inject(m: &mut Matrix, fork: &Fork, args: &[&str], f: &Fault<'_>, earlier: Option<&Earlier>) {
    fork.check(f.check.0, f.check.1);
    let templates = leftovers::names(&fork.root().join(".oxbake/local/templates"));
    let before = RegistrySnapshot::take(fork.root());
    let mut run = Invocation::new(fork.root(), args).deadline(Duration::from_secs(900));
    if let Some((trigger, sig, secs)) = f.on {
        run = run.on(trigger, Action::Signal(sig, Duration::from_secs(secs)));
    }
    let out = run.run();
    let left = fork.leftovers(&templates, earlier);
    let says = f.says;
    m.push(row(
        f.fault,
        f.step,
        f.expected,
        says,
        &out,
        left,
        &before,
        fork.root(),
    ));
}

const PASSES: (&str, &str) = ("sshd runs", "systemctl is-active ssh");
const BOOTING: &str = "booting a fresh clone";
const CHECKING: &str = "running the checks";

fn promote_rows(m: &mut Matrix, fork: &Fork) {
    let version = fork.version.to_string();
    let args = ["promote", "base", &version, "--to", "dev"];
    let rows = [
        Fault {
            fault: "SIGINT while the smoke VM boots",
            step: "smoke: boot",
            expected: 130,
            says: &["interrupted", "removed VM"],
            check: PASSES,
            on: Some((BOOTING, "INT", 5)),
        },
        Fault {
            fault: "SIGTERM while the smoke VM is checked",
            step: "smoke: checks",
            expected: 130,
            says: &["interrupted", "removed VM"],
            check: ("a slow check", "sleep 600"),
            on: Some((CHECKING, "TERM", 3)),
        },
        Fault {
            fault: "guest check fails (smoke test)",
            step: "smoke: checks",
            expected: 1,
            says: &[
                "the smoke test failed",
                "`a check made to fail`",
                "removed VM",
            ],
            check: ("a check made to fail", "test -e /etc/oxbake-never-there"),
            on: None,
        },
    ];
    for f in &rows {
        inject(m, fork, &args, f, None);
    }
}

fn deploy_rows(m: &mut Matrix, fork: &Fork, earlier: &Earlier) {
    let args = ["deploy", "fx"];
    let rows = [
        Fault {
            fault: "SIGTERM while the new VM boots",
            step: "boot the new VM",
            expected: 130,
            says: &["interrupted", "removed vm"],
            check: PASSES,
            on: Some(("creating vm `fx-base-1-", "TERM", 5)),
        },
        Fault {
            fault: "SSH connection dropped by a health check",
            step: "health checks",
            expected: 1,
            says: &["a check could not run", "removed vm"],
            // Kills the SSH session it runs in, from inside the guest.
            check: ("drops SSH", "pkill -KILL -f 'sshd: ops'; sleep 30"),
            on: None,
        },
    ];
    for f in &rows {
        inject(m, fork, &args, f, Some(earlier));
    }
}

#[test]
fn fault_matrix_of_promote_and_deploy_with_a_guest() {
    let baked = baked();
    let _vms = vm_lock();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fork = Fork::new(baked);
    let mut m = Matrix::new("oxbake promote and deploy on the local target, with a guest");
    promote_rows(&mut m, &fork);
    Registry::for_project(fork.root())
        .set_channel("base", "dev", &fork.version, "faults", "deploy rows")
        .unwrap();
    let earlier = Earlier::start(&fork, &runtime);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        deploy_rows(&mut m, &fork, &earlier);
    }));
    earlier.destroy(&fork, &runtime);
    leftovers::reap(fork.root());
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    let _ = std::fs::remove_dir_all(fork.root().join(".oxbake"));
    m.finish();
}
