//! Wall time and peak memory of `oxbake prune --dry-run`, `oxbake show
//! ROLE@VERSION` and `oxbake ls` on a project whose `images/` holds 10,000
//! records: four roles (base, and backend, ui, services built from it) of
//! 2,500 versions each, as a few roles baked nightly for years make. Each
//! record lists a few hundred packages like a real one (base 300, the others
//! 450) and its own local template; `channels.toml` holds a history of
//! realistic length: every version promoted to dev, every 7th to staging,
//! every 30th to prod (about 11,800 entries). No VM, no network: the local
//! target has no templates, so the dry run's proofs find them gone.
//!
//!     cargo run --release --example registry_bench [-- RUNS]
//!
//! Every figure is one run of the real command line (`oxbake::main_entry`)
//! in a child process (this program started again): wall time as the parent
//! sees it, peak memory as the child's own `VmHWM` (peak resident set, from
//! /proc/self/status) just before it exits. The first run of each command is
//! the first one on this registry (no index yet in .oxbake/registry/), the
//! others are the runs after it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use jiff::Timestamp;
use jiff::civil::Date;
use oxbake::registry::{
    Artifact, ChannelAction, Channels, CheckResult, HistoryEntry, ImageRecord, NewImage, Parent,
    Sha256, Version,
};

const PER_ROLE: usize = 2_500;
const ROLES: [(&str, Option<&str>, usize); 4] = [
    ("base", None, 300),
    ("backend", Some("base"), 450),
    ("ui", Some("base"), 450),
    ("services", Some("base"), 450),
];
/// Marks the child's line on stderr.
const CHILD: &str = "REGISTRY_BENCH_CHILD";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    if std::env::var_os(CHILD).is_some() {
        let code = oxbake::main_entry();
        eprintln!("{CHILD} code={code} vmhwm_kib={}", vm_hwm_kib());
        std::process::exit(code);
    }
    let runs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 3,
    };
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let (show_old, show_new) = write_project(dir.path())?;
    println!(
        "set-up: {} records ({} roles x {PER_ROLE}), {} history entries, in {:.1} s",
        PER_ROLE * ROLES.len(),
        ROLES.len(),
        history_len(),
        started.elapsed().as_secs_f64()
    );
    let cache = tempfile::tempdir()?;
    let commands: [(&str, Vec<String>); 4] = [
        ("prune --dry-run", vec!["prune".into(), "--dry-run".into()]),
        (
            "show ROLE@VERSION (oldest base)",
            vec!["show".into(), show_old],
        ),
        (
            "show ROLE@VERSION (newest ui)",
            vec!["show".into(), show_new],
        ),
        ("ls", vec!["ls".into()]),
    ];
    for (name, args) in &commands {
        for run in 1..=runs {
            let (secs, kib) = child(dir.path(), cache.path(), args)?;
            let when = if run == 1 { "first" } else { "again" };
            println!(
                "{name:<34} run {run} ({when}): {secs:>7.3} s   peak {:>7.1} MiB",
                kib as f64 / 1024.0
            );
        }
    }
    Ok(())
}

/// Runs `oxbake -C project ARGS` as a child; its wall time and peak memory.
fn child(project: &Path, cache: &Path, args: &[String]) -> Result<(f64, u64)> {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe()?)
        .arg("-C")
        .arg(project)
        .args(args)
        .env(CHILD, "1")
        .env("OXBAKE_CACHE_DIR", cache)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with(CHILD))
        .ok_or_else(|| format!("`oxbake {}` said:\n{stderr}", args.join(" ")))?;
    let field = |key: &str| -> Option<&str> {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(key)?.strip_prefix('='))
    };
    if field("code") != Some("0") {
        return Err(format!("`oxbake {}` failed:\n{stderr}", args.join(" ")).into());
    }
    let kib = field("vmhwm_kib").and_then(|k| k.parse().ok()).unwrap_or(0);
    Ok((secs, kib))
}

/// This process's peak resident set (`VmHWM`) in KiB; 0 where unknown.
fn vm_hwm_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The project, its records and its channels; the ids of the oldest base
/// and the newest ui version.
fn write_project(dir: &Path) -> Result<(String, String)> {
    let write = |rel: &str, text: &str| -> Result<()> {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
        Ok(std::fs::write(path, text)?)
    };
    write(
        "oxbake.toml",
        "[project]\nname = \"bench\"\ndefault_target = \"local\"\n\
         channels = [\"dev\", \"staging\", \"prod\"]\n\n[retention]\nkeep = 5\n\n\
         [targets.local]\nkind = \"local\"\naccel = \"tcg\"\n",
    )?;
    for (role, from, _) in ROLES {
        let from = from.map_or(String::new(), |f| format!("from = \"{f}\"\n"));
        let recipe = format!(
            "role = \"{role}\"\n{from}\n[[step]]\nkind = \"template\"\n\
             source = \"{role}.j2\"\ndest = \"/etc/{role}\"\n"
        );
        write(&format!("recipes/{role}.toml"), &recipe)?;
        write(&format!("templates/{role}.j2"), &format!("{role}\n"))?;
    }
    let images = dir.join("images");
    let mut channels = Channels::default();
    let mut base_versions = Vec::new();
    let mut ids = Vec::new();
    for (role, from, packages) in ROLES {
        let mut last = None;
        for i in 0..PER_ROLE {
            let version = version_of(i)?;
            let parent = match from {
                // Built from the base of the same night.
                Some(p) => Parent::Image {
                    role: p.to_owned(),
                    version: *base_versions.get(i).ok_or("no base")?,
                },
                None => Parent::Base("local:debian-12-0123456789abcdef".into()),
            };
            let created = Timestamp::from_second(1_577_872_800 + i as i64 * 86_400 / 10)?;
            let record = ImageRecord::new(
                role,
                version,
                created,
                image(role, &version, i, packages, parent),
            );
            let path = images.join(role).join(format!("{version}.toml"));
            std::fs::create_dir_all(path.parent().ok_or("no parent")?)?;
            std::fs::write(path, toml::to_string(&record)?)?;
            promote(&mut channels, role, "dev", version, created);
            if i % 7 == 0 {
                promote(&mut channels, role, "staging", version, created);
            }
            if i % 30 == 0 {
                promote(&mut channels, role, "prod", version, created);
            }
            if from.is_none() {
                base_versions.push(version);
            }
            last = Some(version);
        }
        ids.push(format!("{role}@{}", last.ok_or("no version")?));
    }
    std::fs::write(images.join("channels.toml"), toml::to_string(&channels)?)?;
    let oldest = format!("base@{}", version_of(0)?);
    let newest_ui = ids.get(2).cloned().ok_or("no ui")?;
    Ok((oldest, newest_ui))
}

fn history_len() -> usize {
    (PER_ROLE + PER_ROLE.div_ceil(7) + PER_ROLE.div_ceil(30)) * ROLES.len()
}

/// Ten versions a day from 2020-01-01.
fn version_of(i: usize) -> Result<Version> {
    let day = Date::new(2020, 1, 1)?.checked_add(jiff::Span::new().days(i as i64 / 10))?;
    Ok(Version::new(day, (i % 10 + 1) as u32)?)
}

fn promote(channels: &mut Channels, role: &str, channel: &str, to: Version, when: Timestamp) {
    let from = channels.get(channel, role);
    channels.history.push(HistoryEntry {
        when,
        who: "nightly".into(),
        action: ChannelAction::Set,
        role: role.into(),
        channel: channel.into(),
        from,
        to,
        why: "nightly promotion".into(),
    });
    channels
        .channels
        .entry(channel.into())
        .or_default()
        .insert(role.into(), to);
}

fn fake_sha(seed: u64) -> Sha256 {
    let hex = format!("{seed:016x}").repeat(4);
    hex.parse()
        .unwrap_or_else(|_| unreachable!("64 hex digits"))
}

fn image(role: &str, version: &Version, i: usize, count: usize, parent: Parent) -> NewImage {
    // Names and versions shaped like Debian's; a few change every night.
    let packages: BTreeMap<String, String> = (0..count)
        .map(|p| {
            let name = format!("lib{role}-component{p:03}");
            let rev = if p % 50 == 0 { i / 10 } else { p % 7 };
            (
                name,
                format!("{}.{}.{rev}-{}+deb12u{}", p % 9, p % 13, p % 4 + 1, p % 5),
            )
        })
        .collect();
    let repositories = [
        "http://deb.debian.org/debian bookworm",
        "http://deb.debian.org/debian bookworm-updates",
        "http://security.debian.org/debian-security bookworm-security",
    ]
    .iter()
    .enumerate()
    .map(|(n, source)| (source.to_string(), fake_sha((i * 3 + n) as u64)))
    .collect();
    NewImage {
        inputs: fake_sha(i as u64 + 7),
        parent,
        target: "local".into(),
        artifact: Artifact::Local {
            path: format!(".oxbake/local/templates/{role}-{version}.qcow2").into(),
            sha256: fake_sha(i as u64 + 11),
        },
        repositories,
        packages,
        checks: ["sshd", "unattended-upgrades", &format!("{role} service")]
            .iter()
            .map(|name| CheckResult {
                name: name.to_string(),
                command: format!("systemctl is-active {name}"),
                passed: true,
                detail: String::new(),
            })
            .collect(),
        builder: None,
        size: Some(1_320_702_443),
    }
}
