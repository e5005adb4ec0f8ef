//! Faults while a real guest runs (feature `e2e`, one boot per row): a
//! guest command failing, the SSH connection dropped from inside the guest,
//! SIGTERM during a step, and the registry's disk full when the finished
//! template is recorded; and, on the QEMU-backed Proxmox simulator, a 500
//! on convert-to-template after a whole bake. The roles are root roles (no
//! `from`), so they start from the local base image itself and need no
//! baked parent; the project is the test's own copy.

use std::path::Path;
use std::time::Duration;

use super::leftovers::{self, RegistrySnapshot};
use super::runner::{Action, Invocation};
use super::table::{Matrix, row};
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
                "gterm: step 1/1: gterm step",
                Action::Signal("TERM", Duration::from_secs(5)),
            )
            .deadline(deadline),
    );
    let full = root.join("images/gfull");
    let _mount = super::local_disk::Tmpfs::mount(&full, "4k");
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

/// A 500 on convert-to-template, after the whole bake: the VM (whose tags
/// were already rewritten for the template) gets its labels back and is
/// removed.
#[test]
fn fault_matrix_convert_to_template_on_the_simulator() {
    let _vms = vm_lock();
    let project = project();
    let mut m = Matrix::new("oxbake build on the QEMU-backed simulator");
    convert_fails(&mut m, &project);
    m.finish();
}

/// A whole bake on the QEMU-backed simulator whose convert-to-template
/// answers 500.
fn convert_fails(m: &mut Matrix, project: &TestProject) {
    use crate::support::pve_sim::cli::SECRET_ENV;
    use crate::support::pve_sim::{PveSim, TOKEN_SECRET};
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (sim, guests) = runtime.block_on(PveSim::start_qemu_backed());
    let config = project.read("oxbake.toml");
    PveSim::add_target(project, "qsim", sim.cli_settings());
    sim.faults(|f| f.fail_convert = true);
    let root = project.root();
    let before = RegistrySnapshot::take(root);
    let out = Invocation::new(root, &["build", "gfull", "--target", "qsim"])
        .env(SECRET_ENV, TOKEN_SECRET)
        .deadline(Duration::from_secs(900))
        .run();
    project.write("oxbake.toml", &config);
    let mut left = super::sim::sim_leftovers(&sim);
    guests.sweep();
    left.extend(guests.disks().iter().map(|id| format!("disk of vm {id}")));
    left.extend(
        leftovers::qemu_pids(guests.dir())
            .iter()
            .map(|p| format!("qemu process {p}")),
    );
    leftovers::reap(guests.dir());
    m.push(row(
        "500 on convert-to-template (simulator)",
        "make the template and record it",
        1,
        &["cannot make the template", "removed builder VM"],
        &out,
        left,
        &before,
        root,
    ));
}
