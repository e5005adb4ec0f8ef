//! `oxbake publish ROLE@VERSION --target sim` against the in-memory
//! simulator, with a fault at each step after the image leaves this
//! machine: the upload cut off half-way, the operator's signals while
//! Proxmox stores the upload and while it imports it, the conversion
//! refused, the API unavailable, and oxbake killed outright (whose
//! leftovers `oxbake gc` must then remove). After each, the cluster holds
//! no VM and no volume of the run, `.oxbake/scratch/` no flattened copy,
//! and the image's record is byte for byte what it was.

use std::path::Path;
use std::time::Duration;

use super::leftovers::RegistrySnapshot;
use super::runner::{Action, Invocation, Outcome};
use super::sim::sim_leftovers;
use super::table::{Matrix, Row, row};
use crate::support::local_image::project_with_image;
use crate::support::pve_sim::cli::SECRET_ENV;
use crate::support::pve_sim::state::SignalOn;
use crate::support::pve_sim::{Faults, PveSim, TOKEN_SECRET};

/// One fault against a fresh simulator and project.
struct Case {
    fault: &'static str,
    step: &'static str,
    expected: i32,
    says: &'static [&'static str],
    set: fn(&mut Faults),
    /// A signal sent when a request (method, path suffix) arrives.
    signal_on: Option<(&'static str, &'static str, &'static str)>,
}

const UPLOAD: &str = "upload the image";
const IMPORT: &str = "import it into a VM";

fn cases() -> Vec<Case> {
    let slow_copy: fn(&mut Faults) = |f| {
        f.task_times.insert("imgcopy", Duration::from_secs(2));
    };
    let slow_create: fn(&mut Faults) = |f| {
        f.task_times.insert("qmcreate", Duration::from_secs(2));
    };
    vec![
        Case {
            fault: "upload cut off half-way",
            step: UPLOAD,
            expected: 1,
            says: &["uploading"],
            set: |f| f.cut_upload_at = Some(64 * 1024),
            signal_on: None,
        },
        Case {
            fault: "SIGTERM while Proxmox stores the upload",
            step: UPLOAD,
            expected: 130,
            says: &["interrupted"],
            set: slow_copy,
            signal_on: Some(("POST", "/upload", "TERM")),
        },
        Case {
            fault: "SIGINT while Proxmox imports the disk",
            step: IMPORT,
            expected: 130,
            says: &["interrupted"],
            set: slow_create,
            signal_on: Some(("POST", "/nodes/pve1/qemu", "INT")),
        },
        Case {
            fault: "conversion into a template answers 500",
            step: IMPORT,
            expected: 1,
            says: &["making the template failed"],
            set: |f| f.fail_convert = true,
            signal_on: None,
        },
        Case {
            fault: "API answers 503 to every GET",
            step: "preflight",
            expected: 1,
            says: &["503"],
            set: |f| f.unavailable_gets = 10_000,
            signal_on: None,
        },
    ]
}

fn oxbake<'a>(root: &'a Path, args: &'a [&'a str]) -> Invocation<'a> {
    Invocation::new(root, args)
        .env(SECRET_ENV, TOKEN_SECRET)
        .deadline(Duration::from_secs(120))
}

/// Arms `sim` to send `signal` to oxbake when the request arrives.
fn arm_signal<'a>(
    sim: &'a PveSim,
    (method, suffix, signal): (&'static str, &'static str, &'static str),
) -> Action<'a> {
    Action::Call(
        Duration::ZERO,
        Box::new(move |pid| {
            sim.faults(|f| {
                f.signal_on = Some(SignalOn {
                    method,
                    suffix,
                    pid,
                    signal,
                    hold: Duration::ZERO,
                })
            })
        }),
    )
}

fn run_case(runtime: &tokio::runtime::Runtime, case: &Case) -> Row {
    let sim = runtime.block_on(PveSim::start());
    let (project, record) = project_with_image(&sim);
    let image = record.id();
    sim.faults(case.set);
    let before = RegistrySnapshot::take(project.root());
    let args = ["publish", image.as_str(), "--target", "sim"];
    let mut run = oxbake(project.root(), &args);
    if let Some(on) = case.signal_on {
        run = run.after(Duration::ZERO, arm_signal(&sim, on));
    }
    let out = run.run();
    let r = row(
        case.fault,
        case.step,
        case.expected,
        case.says,
        &out,
        leftovers(&sim, project.root()),
        &before,
        project.root(),
    );
    also(r, signal_unsent(&sim))
}

/// oxbake is killed (SIGKILL) as its upload arrives: it can remove
/// nothing, so the volume Proxmox then stores and the flattened copy stay
/// until `oxbake gc --target sim`, which must remove both.
fn killed_then_gc(runtime: &tokio::runtime::Runtime) -> Row {
    let sim = runtime.block_on(PveSim::start());
    let (project, record) = project_with_image(&sim);
    let image = record.id();
    let before = RegistrySnapshot::take(project.root());
    let args = ["publish", image.as_str(), "--target", "sim"];
    let killed = oxbake(project.root(), &args)
        .after(
            Duration::ZERO,
            arm_signal(&sim, ("POST", "/upload", "KILL")),
        )
        .run();
    let mut problems = signal_unsent(&sim);
    // The stored volume appears once its copy task ends.
    std::thread::sleep(Duration::from_millis(500));
    let left = leftovers(&sim, project.root());
    let volume = left.iter().any(|l| l.starts_with("volume "));
    let folder = left.iter().any(|l| l.starts_with("scratch "));
    if !(volume && folder) {
        problems.push(format!(
            "the kill left no upload volume and flattened copy for gc: {left:?}"
        ));
    }
    let gc = oxbake(project.root(), &["gc", "--target", "sim"]).run();
    if gc.code != 0 {
        problems.push(format!("gc failed ({}):\n{}", gc.code, gc.stderr));
    }
    for said in ["gc: removed upload", "gc: removed scratch `publish-"] {
        if !gc.stderr.contains(said) {
            problems.push(format!("gc's stderr lacks `{said}`:\n{}", gc.stderr));
        }
    }
    let out = Outcome {
        stderr: format!("{}{}", killed.stderr, gc.stderr),
        elapsed: killed.elapsed + gc.elapsed,
        ..killed
    };
    let r = row(
        "SIGKILL as the upload arrives, then gc",
        UPLOAD,
        -1,
        &[],
        &out,
        leftovers(&sim, project.root()),
        &before,
        project.root(),
    );
    also(r, problems)
}

/// The run's VMs and volumes on the simulator, and the project's scratch
/// folders.
fn leftovers(sim: &PveSim, root: &Path) -> Vec<String> {
    let mut left = sim_leftovers(sim);
    if let Ok(entries) = std::fs::read_dir(root.join(".oxbake/scratch")) {
        left.extend(
            entries
                .flatten()
                .map(|e| format!("scratch {}", e.file_name().to_string_lossy())),
        );
    }
    left
}

/// An armed signal that was never sent: the fault was not injected.
fn signal_unsent(sim: &PveSim) -> Vec<String> {
    let mut armed = false;
    sim.faults(|f| armed = f.signal_on.is_some());
    if armed {
        vec!["the request that sends the signal never came".to_owned()]
    } else {
        Vec::new()
    }
}

fn also(mut r: Row, problems: Vec<String>) -> Row {
    r.unclear.extend(problems);
    r
}

#[test]
fn fault_matrix_of_publish_on_the_simulator() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut m = Matrix::new("oxbake publish to the Proxmox simulator");
    for case in cases() {
        m.push(run_case(&runtime, &case));
    }
    m.push(killed_then_gc(&runtime));
    m.finish();
}
