//! What a fault may leave behind, looked for from outside: QEMU processes,
//! VM folders (overlays), seed ISOs and templates in the local state folder,
//! and changes to images/ (every file byte for byte, and still parseable).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oxbake::registry::{Artifact, CheckResult, NewImage, Registry};

/// images/ as it was before a fault: every file and its bytes.
pub struct RegistrySnapshot {
    root: PathBuf,
    files: BTreeMap<PathBuf, Vec<u8>>,
}

impl RegistrySnapshot {
    pub fn take(project: &Path) -> Self {
        let root = project.join("images");
        let mut files = BTreeMap::new();
        collect(&root, &root, &mut files);
        Self { root, files }
    }

    /// Registry files added, removed or changed since the snapshot, and
    /// problems reading the registry back.
    pub fn changes(&self, project: &Path) -> Vec<String> {
        let now = Self::take(project);
        let mut out = Vec::new();
        for (path, bytes) in &self.files {
            match now.files.get(path) {
                None => out.push(format!("removed {}", path.display())),
                Some(b) if b != bytes => out.push(format!("changed {}", path.display())),
                Some(_) => {}
            }
        }
        for path in now.files.keys().filter(|p| !self.files.contains_key(*p)) {
            out.push(format!("added {}", path.display()));
        }
        out.extend(unreadable(project));
        debug_assert_eq!(self.root, now.root);
        out
    }
}

/// Problems reading every record and channels.toml back.
pub fn unreadable(project: &Path) -> Vec<String> {
    let registry = Registry::for_project(project);
    let mut out = Vec::new();
    if let Err(e) = registry.list(None) {
        out.push(format!("records: {e}"));
    }
    if let Err(e) = registry.channels() {
        out.push(format!("channels: {e}"));
    }
    out
}

fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<PathBuf, Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if entry.file_name() != ".lock" {
            // The lock file holds a pid while a writer works; it is not a record.
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            files.insert(rel, std::fs::read(&path).unwrap_or_default());
        }
    }
}

/// Pids of QEMU processes whose command line mentions `needle`.
pub fn qemu_pids(needle: &Path) -> Vec<u32> {
    let needle = needle.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            (cmdline.starts_with("qemu-system") && cmdline.contains(&needle)).then_some(pid)
        })
        .collect()
}

/// Kills QEMU processes of `needle` (a test's project), e.g. after a test
/// failed half-way; returns how many there were.
pub fn reap(needle: &Path) -> usize {
    let pids = qemu_pids(needle);
    for pid in &pids {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    pids.len()
}

/// Everything of the local target found under the project: QEMU processes,
/// VM folders (each with its overlay), stray seed ISOs and templates that
/// were not there before (`templates_before`).
pub fn local(project: &Path, templates_before: &[String]) -> Vec<String> {
    let mut out: Vec<String> = qemu_pids(project)
        .iter()
        .map(|p| format!("qemu process {p}"))
        .collect();
    let state = project.join(".oxbake/local");
    for name in names(&state.join("vms")) {
        out.push(format!("vm folder {name}"));
    }
    for name in names(&state.join("templates")) {
        if !templates_before.contains(&name) {
            out.push(format!("template file {name}"));
        }
    }
    find_isos(&state, &mut out);
    out
}

/// File names in `dir` (none if it does not exist).
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn find_isos(dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            find_isos(&path, out);
        } else if path.to_string_lossy().contains(".iso") {
            out.push(format!("seed {}", path.display()));
        }
    }
}

/// Gives images/ a record and a channel, so that "unchanged" means
/// something: a fault must neither touch nor break them.
pub fn seed_registry(project: &Path) {
    let registry = Registry::for_project(project);
    let artifact = Artifact::Local {
        path: "/images/earlier.qcow2".into(),
        sha256: sha256_of('b'),
    };
    let image = NewImage {
        packages: BTreeMap::from([("openssh-server".into(), "1:9.2p1-2".into())]),
        ..passed_image('a', "local", artifact)
    };
    let record = registry.record("earlier", image).expect("seed record");
    registry
        .set_channel("earlier", "dev", &record.version, "faults", "seed")
        .expect("seed channel");
}

/// An image built on `target` from inputs `cccc…` (for `inputs` = 'c'),
/// whose one check (sshd runs) passed.
pub fn passed_image(inputs: char, target: &str, artifact: Artifact) -> NewImage {
    NewImage {
        inputs: sha256_of(inputs),
        parent: "base-image:debian-12-test".parse().expect("a parent"),
        target: target.into(),
        artifact,
        repositories: BTreeMap::new(),
        packages: BTreeMap::new(),
        checks: vec![CheckResult {
            name: "sshd runs".into(),
            command: "systemctl is-active ssh".into(),
            passed: true,
            detail: String::new(),
        }],
        builder: None,
        size: None,
    }
}

fn sha256_of<T: std::str::FromStr>(c: char) -> T
where
    T::Err: std::fmt::Debug,
{
    c.to_string().repeat(64).parse().expect("a sha256")
}
