//! A copy of this repository's project (oxbake.toml, recipes/, templates/,
//! files/) in a temporary folder, and a way to run the oxbake binary on it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct TestProject {
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl TestProject {
    /// A fresh copy of the project shipped with the repository, in a
    /// temporary folder removed on drop.
    pub fn copy() -> Self {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut project = Self::copy_to(temp.path());
        project._temp = Some(temp);
        project
    }

    /// A fresh copy in `dir` (emptied first), kept after the test.
    pub fn copy_to(dir: &Path) -> Self {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("create project folder");
        let src = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(src.join("oxbake.toml"), dir.join("oxbake.toml")).expect("copy oxbake.toml");
        for sub in ["recipes", "templates", "files"] {
            copy_tree(&src.join(sub), &dir.join(sub));
        }
        Self {
            root: dir.to_path_buf(),
            _temp: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).expect("read project file")
    }

    /// Keeps only the `base` recipe and drops every environment (they name
    /// the other roles), whatever roles the repository ships.
    pub fn keep_only_base(&self) {
        for entry in std::fs::read_dir(self.path("recipes")).expect("read recipes") {
            let path = entry.expect("read recipes").path();
            if path.file_name().is_some_and(|n| n != "base.toml") {
                std::fs::remove_file(path).expect("remove a recipe");
            }
        }
        let text = self.read("oxbake.toml");
        let mut in_env = false;
        let config: Vec<&str> = text
            .lines()
            .filter(|l| {
                if l.starts_with('[') {
                    in_env = l.starts_with("[environments.");
                }
                !in_env
            })
            .collect();
        self.write("oxbake.toml", &config.join("\n"));
    }

    pub fn write(&self, rel: &str, text: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folder");
        }
        std::fs::write(path, text).expect("write project file");
    }

    /// Runs `oxbake -C ROOT ARGS…`.
    pub fn oxbake(&self, args: &[&str]) -> Run {
        self.oxbake_env(args, &[])
    }

    /// Runs `oxbake -C ROOT ARGS…` with extra environment variables.
    pub fn oxbake_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_oxbake"))
            .arg("-C")
            .arg(self.root())
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("run oxbake");
        Run(output)
    }
}

/// The outcome of one oxbake run.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("list folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}
