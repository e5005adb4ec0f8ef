//! A bounded mutation fuzzer on stable Rust for the cargo-fuzz targets
//! (fuzz/targets.rs): byte mutations of the corpus seeds with a seeded RNG,
//! for `OXBAKE_FUZZ_SECS` seconds per target (default 2; scripts/fuzz runs
//! longer), or `OXBAKE_FUZZ_ITERS` iterations. Inputs that panic are saved
//! under target/fuzz-crashes/ and fail the test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[path = "../../fuzz/targets.rs"]
mod targets;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Tokens that matter to TOML and to the recipe and registry formats.
const TOKENS: &[&str] = &[
    "[[step]]\n",
    "[[check]]\n",
    "[deploy]\n",
    "[artifact]\n",
    "[[history]]\n",
    "[channels.dev]\n",
    "kind = \"",
    "\"",
    "'",
    "\"\"\"",
    "=",
    "\n",
    "[",
    "]",
    "{",
    "}",
    ",",
    ".",
    "\\u",
    "\\",
    "#",
    "\0",
    "\u{feff}",
    "é",
    "1979-05-27T07:32:00Z",
    "2026.01.02.1",
    "-1",
    "1e999",
    "nan",
    "0x7fffffffffffffff",
    "99999999999999999999",
    "true",
    "role",
    "version",
    "from",
    "../",
];

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>]) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        let at = rng.below(len + 1);
        match rng.below(7) {
            0 if len > 0 => input[at.min(len - 1)] ^= 1 << rng.below(8),
            1 => input.insert(at, rng.next() as u8),
            2 if len > 0 => {
                let end = (at + 1 + rng.below(16)).min(len);
                input.drain(at.min(len - 1)..end);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                input.splice(at..at, token.iter().copied());
            }
            4 => input.truncate(at),
            5 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let chunk = input[start..end].to_vec();
                input.splice(at..at, chunk);
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = (start + 1 + rng.below(256)).min(other.len());
                    input.splice(at..at, other[start..end].iter().copied());
                }
            }
        }
    }
    input.truncate(64 * 1024);
}

/// Every stored file below the given folders (of the repository).
fn seeds(folders: &[&str]) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    let mut todo: Vec<PathBuf> = folders
        .iter()
        .map(|f| Path::new(MANIFEST_DIR).join(f))
        .collect();
    while let Some(path) = todo.pop() {
        if path.is_dir() {
            todo.extend(
                std::fs::read_dir(&path)
                    .expect("list seeds")
                    .map(|e| e.expect("entry").path()),
            );
        } else if let Ok(bytes) = std::fs::read(&path) {
            all.push(bytes);
        }
    }
    assert!(!all.is_empty(), "no seeds in {folders:?}");
    all
}

fn budget() -> (Duration, u64) {
    let var = |name| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    (
        Duration::from_secs(var("OXBAKE_FUZZ_SECS").unwrap_or(2)),
        var("OXBAKE_FUZZ_ITERS").unwrap_or(u64::MAX),
    )
}

fn fuzz(name: &str, target: fn(&[u8]), seed_folders: &[&str]) {
    let seeds = seeds(seed_folders);
    let (time, iterations) = budget();
    let mut rng = Rng(0x6f78_6261_6b65 ^ name.len() as u64);
    let crash_dir = Path::new(MANIFEST_DIR).join("target/fuzz-crashes");
    let started = Instant::now();
    let mut crashes = Vec::new();
    let mut done = 0u64;
    while done < iterations && started.elapsed() < time {
        let mut input = seeds[rng.below(seeds.len())].clone();
        mutate(&mut rng, &mut input, &seeds);
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            std::fs::create_dir_all(&crash_dir).expect("crash folder");
            let path = crash_dir.join(format!("{name}-{done}.bin"));
            std::fs::write(&path, &input).expect("save crash");
            crashes.push(path);
        }
        done += 1;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {name}: {done} inputs from {} seeds in {secs:.1} s ({:.0}/s), {} crash(es)",
        seeds.len(),
        done as f64 / secs,
        crashes.len()
    );
    // Each crash's panic message is in the output above it.
    assert!(crashes.is_empty(), "{name}: inputs that panic: {crashes:?}");
}

#[test]
fn fuzz_recipe_loader() {
    fuzz(
        "recipe_loader",
        targets::recipe_loader,
        &["recipes", "tests/data/corpus/recipes"],
    );
}

#[test]
fn fuzz_registry_parser() {
    fuzz(
        "registry_parser",
        targets::registry_parser,
        &["tests/data/corpus/registry"],
    );
}
