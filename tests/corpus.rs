//! The hostile-input corpus: every case of tests/data/corpus/cases*.toml puts
//! one broken or malicious file into a fresh copy of the project, runs one
//! command and expects a clean refusal: the exit code the case names, an
//! error line that names the file, no panic, and a project left exactly as
//! it was. Every case runs; the test fails listing all that misbehaved.

mod fuzz_smoke;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::support::project::TestProject;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/corpus");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// The corpus file, relative to the corpus folder.
    file: Option<String>,
    /// Where the file goes, relative to the project.
    at: Option<String>,
    /// A huge input the runner makes instead of a stored file.
    generate: Option<String>,
    symlink: Option<Link>,
    args: Vec<String>,
    exit: i32,
    contains: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Link {
    at: String,
    to: String,
}

/// What one case did.
struct Outcome {
    name: String,
    code: i32,
    elapsed: Duration,
    problems: Vec<String>,
}

/// Every case file: `cases.toml` and `cases-*.toml` (one per area of the
/// checks, so that work on separate areas adds files instead of colliding).
fn manifest() -> Manifest {
    let mut files: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .expect("corpus folder")
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name == "cases.toml" || (name.starts_with("cases-") && name.ends_with(".toml"))
        })
        .collect();
    files.sort();
    let mut case = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("case file");
        let part: Manifest =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{} parses: {e}", file.display()));
        case.extend(part.case);
    }
    let mut names = std::collections::BTreeSet::new();
    for c in &case {
        assert!(names.insert(c.name.clone()), "case name {} twice", c.name);
    }
    Manifest { case }
}

#[test]
fn every_corpus_case_is_refused_cleanly() {
    let cases = manifest().case;
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while let Some(case) = cases.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let outcome = run_case(case);
                    outcomes.lock().expect("outcomes").push(outcome);
                }
            });
        }
    });
    let mut outcomes = outcomes.into_inner().expect("outcomes");
    outcomes.sort_by(|a, b| a.name.cmp(&b.name));
    eprintln!("{:<44} {:>4} {:>7}  ok", "case", "exit", "ms");
    for o in &outcomes {
        let ok = if o.problems.is_empty() { "ok" } else { "FAIL" };
        let ms = o.elapsed.as_millis();
        eprintln!("{:<44} {:>4} {:>7}  {ok}", o.name, o.code, ms);
    }
    eprintln!(
        "{} cases in {:.1} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    );
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.problems.is_empty())
        .map(|o| format!("{}:\n    {}", o.name, o.problems.join("\n    ")))
        .collect();
    assert!(
        failed.is_empty(),
        "{} case(s) misbehaved:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

fn run_case(case: &Case) -> Outcome {
    let project = TestProject::copy();
    let cache = tempfile::tempdir().expect("cache dir");
    set_up(case, project.root());
    let before = snapshot(project.root());
    let args: Vec<String> = case
        .args
        .iter()
        .map(|a| a.replace("{root}", &project.root().display().to_string()))
        .collect();
    let started = Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(project.root())
        .args(&args)
        .env("OXBAKE_CACHE_DIR", cache.path())
        .output()
        .expect("run oxbake");
    let elapsed = started.elapsed();
    let code = output.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems = Vec::new();
    if code != case.exit {
        problems.push(format!("exit {code}, expected {}", case.exit));
    }
    if code == 101 || stderr.contains("panicked") {
        problems.push("panicked".to_owned());
    }
    if !stderr.contains(&case.contains) {
        problems.push(format!("stderr lacks {:?}", case.contains));
    }
    if problems.is_empty() && elapsed > Duration::from_secs(10) {
        problems.push(format!("took {elapsed:?}"));
    }
    if snapshot(project.root()) != before {
        problems.push("the project tree changed".to_owned());
    }
    if !problems.is_empty() {
        let shown: String = stderr.chars().take(600).collect();
        problems.push(format!("stderr: {shown}"));
    }
    Outcome {
        name: case.name.clone(),
        code,
        elapsed,
        problems,
    }
}

/// Puts the case's file (stored or generated) and symlink into the project.
fn set_up(case: &Case, root: &Path) {
    let place = |rel: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create folder");
        path
    };
    let at = case.at.as_deref();
    if let Some(file) = &case.file {
        let bytes = std::fs::read(Path::new(CORPUS).join(file)).expect("corpus file");
        std::fs::write(place(at.expect("`at` of a file")), bytes).expect("write case");
    }
    if let Some(kind) = &case.generate {
        let bytes = generate(kind);
        std::fs::write(place(at.expect("`at` of a generated file")), bytes).expect("write case");
    }
    if let Some(link) = &case.symlink {
        std::os::unix::fs::symlink(&link.to, place(&link.at)).expect("symlink");
    }
}

/// Inputs too large to keep in the repository.
pub fn generate(kind: &str) -> Vec<u8> {
    const DEPTH: usize = 100_000;
    let head = "role = \"base\"\n";
    let text = match kind {
        "huge-string" => format!("{head}description = \"{}\"\n", "x".repeat(10 << 20)),
        "many-steps" => {
            let step = "[[step]]\nkind = \"group\"\ngroup = \"g\"\n";
            format!("{head}{}", step.repeat(100_000))
        }
        "deep-arrays" => format!(
            "{head}[vars]\nx = {}1{}\n",
            "[".repeat(DEPTH),
            "]".repeat(DEPTH)
        ),
        "deep-tables" => format!(
            "{head}[vars]\nx = {}1{}\n",
            "{ a = ".repeat(DEPTH),
            " }".repeat(DEPTH)
        ),
        other => panic!("unknown generator `{other}`"),
    };
    text.into_bytes()
}

#[derive(Debug, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

/// Every path below `root` with what it is, without following symlinks.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut all = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("list folder") {
            let path = entry.expect("entry").path();
            let rel = path.strip_prefix(root).expect("below root").to_path_buf();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let what = if meta.file_type().is_symlink() {
                Entry::Link(std::fs::read_link(&path).expect("read link"))
            } else if meta.is_dir() {
                todo.push(path.clone());
                Entry::Dir
            } else {
                Entry::File(std::fs::read(&path).expect("read file"))
            };
            all.insert(rel, what);
        }
    }
    all
}

/// The huge recipes through the library, without the size limit of the
/// command: parsing is bounded in time and depth, and never panics.
#[test]
fn huge_recipes_parse_in_bounded_time() {
    for kind in ["many-steps", "deep-arrays", "deep-tables", "huge-string"] {
        let text = String::from_utf8(generate(kind)).expect("utf-8");
        let started = Instant::now();
        let result = oxbake::recipe::load::parse(Path::new("recipes/base.toml"), &text);
        let elapsed = started.elapsed();
        eprintln!(
            "{kind}: {} bytes, {} in {elapsed:?}",
            text.len(),
            match &result {
                Ok(r) => format!("ok, {} step(s)", r.steps.len()),
                Err(d) => format!("{} problem(s)", d.len()),
            }
        );
        if kind == "many-steps" {
            assert_eq!(result.expect("100k steps parse").steps.len(), 100_000);
        }
        assert!(elapsed < Duration::from_secs(20), "{kind} took {elapsed:?}");
    }
}
