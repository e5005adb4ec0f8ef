//! Faults while a real guest runs (feature `e2e`, one boot per row): a
//! guest command failing, the SSH connection dropped from inside the guest,
//! SIGTERM during a step, and the registry's disk full when the finished
//! template is recorded. The roles are root roles (no `from`), so they
//! start from the local base image itself and need no baked parent; the
//! project is the test's own copy.

use std::path::Path;
use std::time::Duration;

use super::leftovers::{self, RegistrySnapshot};
use super::runner::{Action, Invocation};
use super::sim::row;
use super::table::Matrix;
use crate::support::e2e::vm_lock;
use crate::support::project::TestProject;

fn role(name: &str, step: &str) -> String {
    format!(
        "role = \"{name}\"\ndescription = \"fault matrix: {name}\"\n\n[[step]]\n\
         name = \"{name} step\"\nkind = \"shell\"\nrun = '''{step}'''\n"
    )
}

const ROLES: [(&str, &str); 4] = [
    ("gfail", "echo about to fail >&2; exit 3"),
    // The step kills the SSH session it runs in, from inside the guest.
    ("gdrop", "pkill -KILL -f 'sshd: oxbake-build' ; sleep 30"),
    ("gterm", "echo step-started; sleep 600"),
    ("gfull", "true"),
];

fn project() -> TestProject {
    let project =
        TestProject::copy_to(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-guest-project"));
    let config = project
        .read("oxbake.toml")
        .replace("accel = \"auto\"", "accel = \"tcg\"");
    project.write("oxbake.toml", &config);
    for (name, step) in ROLES {
        project.write(&format!("recipes/{name}.toml"), &role(name, step));
    }
    leftovers::seed_registry(project.root());
    project
}

/// Runs one build and adds its row.
fn inject(
    m: &mut Matrix,
    project: &TestProject,
    (fault, step, expected, says): (&str, &str, i32, &[&str]),
    run: Invocation<'_>,
) {
    let root = project.root();
    let templates = leftovers::names(&root.join(".oxbake/local/templates"));
    let before = RegistrySnapshot::take(root);
    let out = run.run();
    let left = leftovers::local(root, &templates);
    leftovers::reap(root);
    m.push(row(fault, step, expected, says, &out, left, &before, root));
}

#[test]
fn fault_matrix_with_a_running_guest() {
    let _vms = vm_lock();
    let project = project();
    let root = project.root();
    let mut m = Matrix::new("oxbake build on the local target, faults inside a running guest");
    let deadline = Duration::from_secs(900);
    inject(
        &mut m,
        &project,
        (
            "guest command fails (exit 3)",
            "step 1/1",
            1,
            &["step 1/1 `gfail step` failed", "exit", "removed builder VM"],
        ),
        Invocation::new(root, &["build", "gfail"]).deadline(deadline),
    );
    inject(
        &mut m,
        &project,
        (
            "SSH connection dropped by the guest",
            "step 1/1",
            1,
            &["step 1/1 `gdrop step` failed", "removed builder VM"],
        ),
        Invocation::new(root, &["build", "gdrop"]).deadline(deadline),
    );
    inject(
        &mut m,
        &project,
        (
            "SIGTERM during a step",
            "step 1/1",
            130,
            &["interrupted", "removed builder VM"],
        ),
        Invocation::new(root, &["build", "gterm"])
            .on(
                "step-started",
                Action::Signal("TERM", Duration::from_secs(2)),
            )
            .deadline(deadline),
    );
    let full = root.join("images/gfull");
    let _mount = super::local::Tmpfs::mount(&full, "4k");
    inject(
        &mut m,
        &project,
        (
            "registry disk full when recording",
            "make the template and record it",
            1,
            &["No space left", "make the template and record it"],
        ),
        Invocation::new(root, &["build", "gfull"]).deadline(deadline),
    );
    m.finish();
}
