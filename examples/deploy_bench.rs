//! Wall time of a deploy of N VMs in one wave, as a ratio to N = 1.
//!
//! On the in-memory Proxmox simulator (tests/support/pve_sim) with task
//! latencies of a small cluster (linked clone 2.5 s, start 1.5 s, the
//! guest agent up ~2 s after start; config changes and seed uploads 30 ms)
//! and guests that answer SSH, cloud-init and the role's checks at once
//! (tests/support/deploy_sim.rs): N = 1, 2, 4.
//!
//!     cargo run --release --example deploy_bench
//!
//! On the local target (real QEMU guests; minutes): pass a project whose
//! environments ENV1 and ENV2 run one VM and two VMs of one role (templates
//! built, channel pointed at them). Each is deployed on an empty
//! environment, timed, and destroyed again.
//!
//!     cargo run --release --example deploy_bench -- --local PROJECT ENV1 ENV2
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use oxbake::guest::SshConnector;
use oxbake::pipeline::Context;
use oxbake::pipeline::cancel;
use oxbake::pipeline::deploy::Deployer;
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::Registry;

// The tests' simulator and deploy harness, as they are (deploy_sim reaches
// the simulator as `super::pve_sim`).
#[allow(dead_code)]
#[path = "../tests/support/deploy_sim.rs"]
mod deploy_sim;
#[allow(dead_code, unused_imports, clippy::print_stderr)]
#[path = "../tests/support/pve_sim/mod.rs"]
mod pve_sim;

use deploy_sim::Harness;
use pve_sim::PveSim;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [] => simulator().await,
        [flag, project, envs @ ..] if flag == "--local" && !envs.is_empty() => {
            local(Path::new(project), envs).await
        }
        _ => Err("usage: deploy_bench [--local PROJECT ENV1 ENV2…]".into()),
    }
}

fn realistic(sim: &PveSim) {
    sim.faults(|f| {
        f.task_times.insert("qmclone", Duration::from_millis(2500));
        f.task_times.insert("qmstart", Duration::from_millis(1500));
        f.task_times
            .insert("qmshutdown", Duration::from_millis(1000));
        f.task_times.insert("qmdestroy", Duration::from_millis(800));
        // oxbake polls the agent every 500 ms: up on the fifth poll.
        f.agent_warmup_calls = 4;
    });
}

async fn simulator() -> Result<()> {
    println!("proxmox simulator, one wave, jobs = the target's deploy_jobs (4)");
    let mut first = None;
    for n in [1, 2, 4] {
        let h = Harness::one_wave(n).await;
        realistic(&h.sim);
        let started = Instant::now();
        let done = h.deploy(None, Progress::silent(), cancel::never()).await?;
        let took = started.elapsed();
        assert_eq!(done.len(), n, "every VM made");
        report(n, took, &mut first);
    }
    Ok(())
}

async fn local(root: &Path, envs: &[String]) -> Result<()> {
    println!("local target, {}", root.display());
    let project = Project::load(root).map_err(|d| format!("{d:?}"))?;
    let registry = Registry::for_project(root);
    let mut first = None;
    for env_name in envs {
        let env = project
            .config
            .environments
            .get(env_name)
            .ok_or_else(|| format!("no environment `{env_name}`"))?;
        let target = env.target_name(&project.config.project.default_target);
        let progress = Progress::silent();
        let never = cancel::never();
        let open = oxbake::pipeline::open::open_unless_interrupted(
            &project,
            Some(target),
            &progress,
            false,
            &never,
        )
        .await?;
        let ctx = Context::new(&project, &registry, &open, &SshConnector, progress, never);
        let deployer = Deployer {
            ctx: &ctx,
            env_name,
            env,
            boot_timeout: Duration::from_secs(project.config.defaults.boot_timeout),
            jobs: None,
        };
        let started = Instant::now();
        let prepared = deployer.prepare().await?;
        let n = prepared.wanted.len();
        let outcome = deployer.apply(prepared).await;
        let took = started.elapsed();
        deployer.destroy_all(true).await?;
        outcome?;
        report(n, took, &mut first);
    }
    Ok(())
}

fn report(n: usize, took: Duration, first: &mut Option<Duration>) {
    let base = *first.get_or_insert(took);
    println!(
        "N = {n}: {:>6.2} s  ({:.2} x N = 1)",
        took.as_secs_f64(),
        took.as_secs_f64() / base.as_secs_f64()
    );
}
