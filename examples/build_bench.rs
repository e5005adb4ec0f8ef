//! Wall time of baking three roles from one parent, as a ratio to baking
//! one of them (goal: at most 1.3×).
//!
//! On the in-memory Proxmox simulator (tests/support/pve_sim) with task
//! latencies of a small cluster (linked clone 2.5 s, start 1.5 s, the guest
//! agent up ~2 s after start, shutdown 1 s, conversion to a template 1 s,
//! destroy 0.8 s; config changes and seed uploads 30 ms) and a guest that
//! answers every command at once (tests/support/answering.rs): so the
//! figures are the target's share of a bake, which is what parallel bakes
//! overlap; a real guest's steps overlap the same way on a cluster with
//! room for them.
//!
//! The parent is baked first and not timed ("parent already baked"); then
//! one child alone (`--jobs 3`), the three other children at once
//! (`--jobs 3`), and the same three one after another (`--jobs 1`) for
//! comparison. The whole bake runs on the simulator: builder VMs are cloned
//! from the base template or the parent's template, seeded, started, found
//! through the guest agent, shut down and turned into templates.
//!
//!     cargo run --release --example build_bench
#![allow(clippy::print_stdout)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxbake::pipeline::{BuildOptions, BuildOutcome, Context, build};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::Registry;
use oxbake::target::{BaseIdentities, VmHandle};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

// The tests' simulator and answering guest, as they are.
#[allow(dead_code)]
#[path = "../tests/support/answering.rs"]
mod answering;
#[allow(dead_code, unused_imports, clippy::print_stderr)]
#[path = "../tests/support/pve_sim/mod.rs"]
mod pve_sim;

use answering::AnsweringGuest;
use pve_sim::PveSim;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const PARENT: &str = "trunk";
const ALONE: &str = "leafone";
const THREE: [&str; 3] = ["leafa", "leafb", "leafc"];

#[tokio::main]
async fn main() -> Result<()> {
    let sim = PveSim::start().await;
    sim.faults(|f| {
        f.task_times.insert("qmclone", Duration::from_millis(2500));
        f.task_times.insert("qmstart", Duration::from_millis(1500));
        f.task_times
            .insert("qmshutdown", Duration::from_millis(1000));
        f.task_times
            .insert("qmtemplate", Duration::from_millis(1000));
        f.task_times.insert("qmdestroy", Duration::from_millis(800));
        // oxbake polls the agent every 500 ms: up on the fifth poll.
        f.agent_warmup_calls = 4;
    });
    let dir = tempfile::tempdir()?;
    write_project(dir.path())?;
    let bench = Bench {
        sim: &sim,
        root: dir.path(),
        banner: banner().await?,
    };
    println!("proxmox simulator, three roles from one parent (parent already baked)");
    let parent = bench.bake(&[PARENT], 1).await?;
    println!(
        "parent {PARENT} alone:          {:>6.2} s",
        parent.as_secs_f64()
    );
    let one = bench.bake(&[ALONE], 3).await?;
    println!("one child, --jobs 3:          {:>6.2} s", one.as_secs_f64());
    let three = bench.bake(&THREE, 3).await?;
    let ratio = three.as_secs_f64() / one.as_secs_f64();
    println!(
        "three children, --jobs 3:     {:>6.2} s  ({ratio:.2} x one child; goal <= 1.30)",
        three.as_secs_f64()
    );
    let serial = bench.bake(&THREE, 1).await?;
    println!(
        "three children, --jobs 1:     {:>6.2} s  ({:.2} x one child)",
        serial.as_secs_f64(),
        serial.as_secs_f64() / one.as_secs_f64()
    );
    Ok(())
}

struct Bench<'a> {
    sim: &'a PveSim,
    root: &'a Path,
    /// The port every builder's SSH banner answers on.
    banner: u16,
}

impl Bench<'_> {
    /// Bakes `roles` (requested, so baked even when up to date; their
    /// parent only if it is not) with `--jobs jobs`; the wall time.
    async fn bake(&self, roles: &[&str], jobs: u32) -> Result<Duration> {
        let project = Project::load(self.root).map_err(|d| format!("{d:?}"))?;
        let registry = Registry::for_project(self.root);
        let port = self.banner;
        let target =
            self.sim
                .target(Progress::silent())
                .with_ssh_route(Arc::new(move |h: &VmHandle, _| {
                    let vmid: u32 = h.id.rsplit('/').next().unwrap().parse().unwrap();
                    let ip = Ipv4Addr::new(127, 0, (vmid / 256) as u8, (vmid % 256) as u8);
                    SocketAddr::new(IpAddr::V4(ip), port)
                }));
        // A live sender: a gone one reads as an interrupt.
        let (_operator, cancel) = tokio::sync::watch::channel(false);
        let ctx = Context {
            project: &project,
            registry: &registry,
            target: &target,
            target_name: "sim",
            bases: &BaseIdentities::from_fn(|_| "base-image:debian-12-test".into()),
            connector: &AnsweringGuest,
            progress: Progress::silent(),
            cancel,
        };
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let opts = BuildOptions {
            jobs: Some(jobs),
            ..BuildOptions::default()
        };
        let started = Instant::now();
        let outcomes = build(&ctx, &roles, &opts).await?;
        let took = started.elapsed();
        for role in &roles {
            let built = outcomes
                .iter()
                .any(|o| matches!(o, BuildOutcome::Built { role: r, .. } if r == role));
            if !built {
                return Err(format!("{role} was not baked: {outcomes:?}").into());
            }
        }
        Ok(took)
    }
}

/// A project of `trunk` and four children, each one shell step and one
/// check.
fn write_project(root: &Path) -> Result<()> {
    let write = |rel: &str, text: &str| -> std::io::Result<()> {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap_or(root))?;
        std::fs::write(path, text)
    };
    write("oxbake.toml", "[project]\nname = \"bench\"\n")?;
    write("templates/.keep", "")?;
    let recipe = |role: &str, from: Option<&str>| {
        let from = from.map_or(String::new(), |f| format!("from = \"{f}\"\n"));
        format!(
            "role = \"{role}\"\ndescription = \"a benchmarked role\"\n{from}\n\
             [[step]]\nname = \"one\"\nkind = \"shell\"\nrun = \"true\"\n\n\
             [[check]]\nname = \"ok\"\nrun = \"true\"\n"
        )
    };
    write(&format!("recipes/{PARENT}.toml"), &recipe(PARENT, None))?;
    for child in THREE.iter().chain([&ALONE]) {
        write(
            &format!("recipes/{child}.toml"),
            &recipe(child, Some(PARENT)),
        )?;
    }
    Ok(())
}

/// A listener that greets every connection as an SSH server would (the
/// target waits for a banner before handing out a builder's address).
async fn banner() -> Result<u16> {
    let listener = TcpListener::bind("0.0.0.0:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"SSH-2.0-fake\r\n").await;
        }
    });
    Ok(port)
}
