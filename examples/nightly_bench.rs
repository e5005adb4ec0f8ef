//! Times the nightly's no-op run and the registry's operations on a project
//! whose `images/` holds 10,000 versions (four roles, 2,500 each, records
//! with 300 packages like real ones) and a channel history of as many
//! entries. No VM, no network.
//!
//!     cargo run --release --example nightly_bench
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use oxbake::pipeline::RegistryLineage;
use oxbake::pipeline::nightly::{self, Nightly, NightlySteps, Planner, RepoFetcher, StepFailure};
use oxbake::progress::Progress;
use oxbake::project::Project;
use oxbake::registry::{
    Artifact, ChannelAction, Channels, HistoryEntry, ImageRecord, NewImage, Parent, Registry,
    Sha256, Version,
};
use oxbake::role::inputs;
use oxbake::target::BaseIdentities;

const VERSIONS: usize = 10_000;
const ROLES: [(&str, Option<&str>); 4] = [
    ("base", None),
    ("backend", Some("base")),
    ("ui", Some("base")),
    ("services", Some("base")),
];
const BASE: &str = "local:debian-12-bench";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let project = write_project(dir.path())?;
    let registry = Registry::for_project(dir.path());
    fill(&project, &registry)?;
    println!(
        "set-up: {VERSIONS} versions and {VERSIONS} history entries written in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    nightly_noop(&project, &registry).await?;
    registry_ops(&registry)?;
    Ok(())
}

fn write_project(dir: &Path) -> Result<Project> {
    let write = |rel: &str, text: &str| -> Result<()> {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        Ok(std::fs::write(path, text)?)
    };
    write("oxbake.toml", "[project]\nname = \"bench\"\n")?;
    for (role, from) in ROLES {
        let from = from.map_or(String::new(), |f| format!("from = \"{f}\"\n"));
        let recipe = format!(
            "role = \"{role}\"\n{from}\n[[step]]\nkind = \"template\"\n\
             source = \"{role}.j2\"\ndest = \"/etc/{role}\"\n"
        );
        write(&format!("recipes/{role}.toml"), &recipe)?;
        write(
            &format!("templates/{role}.j2"),
            &format!("{role} {{{{ role }}}}\n"),
        )?;
    }
    Project::load(dir).map_err(|d| format!("{} problem(s) in the bench project", d.len()).into())
}

/// 2,500 versions per role, the newest built from the current inputs, and a
/// channel history with one entry per version.
fn fill(project: &Project, registry: &Registry) -> Result<()> {
    let per_role = VERSIONS / ROLES.len();
    let mut channels = Channels::default();
    for (role, from) in ROLES {
        let mut last = None;
        for i in 0..per_role {
            let version = Version::new(
                Date::new(2020, 1, 1)?.checked_add(jiff::Span::new().days(i as i64 / 10))?,
                (i % 10 + 1) as u32,
            )?;
            let current = i + 1 == per_role;
            let inputs = if current {
                current_inputs(project, registry, role)?
            } else {
                fake_sha(i as u64 + 7)
            };
            let parent = match from {
                Some(p) => Parent::Image {
                    role: p.to_owned(),
                    version: registry.latest(p, false)?.ok_or("no parent")?.version,
                },
                None => Parent::Base(BASE.to_owned()),
            };
            let record = ImageRecord::new(role, version, Timestamp::now(), image(inputs, parent)?);
            let path = registry.dir().join(role).join(format!("{version}.toml"));
            std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
            std::fs::write(path, toml::to_string(&record)?)?;
            channels.history.push(HistoryEntry {
                when: Timestamp::now(),
                who: "bench".into(),
                action: ChannelAction::Set,
                role: role.into(),
                channel: "dev".into(),
                from: last,
                to: version,
                why: "nightly".into(),
            });
            last = Some(version);
        }
        let dev = channels.channels.entry("dev".into()).or_default();
        dev.insert(role.into(), last.ok_or("no version")?);
    }
    std::fs::write(
        registry.dir().join("channels.toml"),
        toml::to_string(&channels)?,
    )?;
    Ok(())
}

fn current_inputs(project: &Project, registry: &Registry, role: &str) -> Result<Sha256> {
    let lineage = RegistryLineage {
        registry,
        bases: BaseIdentities::from_fn(|_| BASE.into()),
    };
    Ok(inputs::inputs(project, role, &lineage)?.hash.parse()?)
}

fn fake_sha(seed: u64) -> Sha256 {
    let hex = format!("{seed:016x}").repeat(4);
    hex.parse()
        .unwrap_or_else(|_| unreachable!("64 hex digits"))
}

fn image(inputs: Sha256, parent: Parent) -> Result<NewImage> {
    let packages: BTreeMap<String, String> = (0..300)
        .map(|i| (format!("package-{i:03}"), format!("1.{i}.0-1+deb12u1")))
        .collect();
    let repositories = [
        "deb.debian.org_debian_dists_bookworm_InRelease",
        "deb.debian.org_debian_dists_bookworm-updates_InRelease",
        "deb.debian.org_debian-security_dists_bookworm-security_InRelease",
    ]
    .iter()
    .enumerate()
    .map(|(i, l)| (l.to_string(), fake_sha(i as u64)))
    .collect();
    Ok(NewImage {
        inputs,
        parent,
        target: "local".into(),
        artifact: Artifact::Local {
            path: ".oxbake/local/templates/x.qcow2".into(),
            sha256: fake_sha(1),
        },
        repositories,
        packages,
        checks: Vec::new(),
        builder: None,
        size: None,
    })
}

/// Nothing may be built or promoted: every role is current and in `dev`,
/// and no role has more versions than retention keeps (2,500).
struct NoWork<'a> {
    registry: &'a Registry,
}

#[async_trait]
impl NightlySteps for NoWork<'_> {
    async fn build(&self, role: &str) -> std::result::Result<Version, StepFailure> {
        Err(StepFailure::Failed(format!("`{role}` is up to date")))
    }
    async fn promote(
        &self,
        role: &str,
        _: &Version,
        _: &str,
    ) -> std::result::Result<(), StepFailure> {
        Err(StepFailure::Failed(format!("`{role}` is in dev already")))
    }
    async fn prune(&self) -> std::result::Result<Vec<String>, StepFailure> {
        // What `oxbake nightly` does first; only when this is true does it
        // read every record to plan the prune.
        match nightly::over_retention(self.registry, VERSIONS / ROLES.len()) {
            Ok(false) => Ok(Vec::new()),
            Ok(true) => Err(StepFailure::Failed("over retention".into())),
            Err(e) => Err(StepFailure::Failed(e.to_string())),
        }
    }
}

async fn nightly_noop(project: &Project, registry: &Registry) -> Result<()> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let nightly = Nightly {
            planner: Planner {
                project,
                registry,
                bases: BaseIdentities::from_fn(|_| BASE.into()),
                // The recorded lists (deb.debian.org's) are not this
                // mirror's, so none is fetched: no network here.
                base_mirror: "http://mirror.invalid/debian".into(),
                fetcher: RepoFetcher::new()?,
                refresh: false,
            },
            steps: Some(&NoWork { registry }),
            channel: Some("dev".into()),
            progress: Progress::silent(),
        };
        let started = Stopwatch::start();
        let report = nightly.run().await.map_err(|e| format!("{e:?}"))?;
        times.push(started.elapsed());
        if !report.ok() || !report.rebuilt().is_empty() {
            return Err(format!(
                "the no-op nightly did something:\n{}",
                oxbake::report::nightly::table(&report)
            )
            .into());
        }
    }
    line("nightly, nothing changed (4 roles)", &mut times);
    Ok(())
}

fn registry_ops(registry: &Registry) -> Result<()> {
    let absent = fake_sha(u64::MAX);
    let current = registry.latest("ui", false)?.ok_or("no ui")?.inputs;
    time("list (all 10,000 records)", || {
        registry.list(None)?;
        Ok(())
    })?;
    time("summaries (what `ls` reads, 10,000)", || {
        registry.summaries(None)?;
        Ok(())
    })?;
    time("versions (one role, 2,500)", || {
        registry.versions("ui")?;
        Ok(())
    })?;
    time("latest", || {
        registry.latest("ui", true)?;
        Ok(())
    })?;
    time("find_by_inputs, the newest matches", || {
        registry.find_by_inputs("ui", &current)?;
        Ok(())
    })?;
    time("find_by_inputs, no match (2,500 read)", || {
        registry.find_by_inputs("ui", &absent)?;
        Ok(())
    })?;
    time("channels parse (10,000 history entries)", || {
        registry.channels()?;
        Ok(())
    })?;
    let oldest = registry.versions("ui")?[0];
    time("set_channel, two changes", || {
        registry.set_channel("ui", "staging", &oldest, "bench", "bench")?;
        registry.set_channel(
            "ui",
            "staging",
            &current_version(registry)?,
            "bench",
            "bench",
        )?;
        Ok(())
    })?;
    time("record a new version", || {
        let parent = Parent::Base(BASE.into());
        registry.record("services", image(fake_sha(3), parent)?)?;
        Ok(())
    })?;
    Ok(())
}

fn current_version(registry: &Registry) -> Result<Version> {
    Ok(registry.latest("ui", false)?.ok_or("no ui")?.version)
}

/// Runs `op` five times and prints the times.
fn time(name: &str, op: impl Fn() -> Result<()>) -> Result<()> {
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Stopwatch::start();
        op()?;
        times.push(started.elapsed());
    }
    line(name, &mut times);
    Ok(())
}

/// Wall-clock and CPU time (all threads) of one run. The machine is often
/// shared, so the CPU time is the steadier figure.
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Self {
        Self {
            wall: Instant::now(),
            cpu: cpu_time(),
        }
    }

    fn elapsed(&self) -> (Duration, Duration) {
        (self.wall.elapsed(), cpu_time().saturating_sub(self.cpu))
    }
}

/// User plus system time of this process so far, from `/proc/self/stat`
/// (clock ticks of 10 ms); zero where that cannot be read.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let total = ticks(11)
        .zip(ticks(12))
        .map_or(0, |(user, system)| user + system);
    Duration::from_millis(total * 10)
}

/// Prints the median and the slowest of five runs, wall-clock, and the
/// median CPU time.
fn line(name: &str, times: &mut [(Duration, Duration)]) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut cpu: Vec<Duration> = times.iter().map(|t| t.1).collect();
    cpu.sort();
    times.sort();
    println!(
        "{name:<42} median {:>9.2} ms   max {:>9.2} ms   cpu {:>6.0} ms",
        ms(times[times.len() / 2].0),
        ms(times[times.len() - 1].0),
        ms(cpu[cpu.len() / 2]),
    );
}
