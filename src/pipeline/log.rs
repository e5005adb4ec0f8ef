//! The build log: every line a guest command printed (already redacted),
//! and a header for each step, in `.oxbake/logs/ROLE-RUN.log`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::guest::LogSink;

pub struct BuildLog {
    pub path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl BuildLog {
    pub fn create(dir: &Path, role: &str, run_id: &str) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{role}-{run_id}.log"));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)?;
        Ok(Self {
            path,
            file: Arc::new(Mutex::new(file)),
        })
    }

    pub fn sink(&self) -> LogSink {
        self.file.clone()
    }

    pub fn section(&self, title: &str) {
        if let Ok(mut f) = self.file.lock() {
            let _ = writeln!(f, "==> {title}");
        }
    }
}
