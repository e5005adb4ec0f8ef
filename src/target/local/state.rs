//! The local target's state folder, `<project>/.oxbake/local/`:
//! `vms/<name>/` (one folder per VM) and `templates/<name>.qcow2` (read-only
//! template disks, each with a `<name>.toml` beside it).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::files;
use crate::fsutil::Atomic;
use crate::target::{Labels, TargetError};

/// The paths of the state folder.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(project_dir: &Path) -> Self {
        Self {
            root: project_dir.join(".oxbake").join("local"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn vms(&self) -> PathBuf {
        self.root.join("vms")
    }

    pub fn vm(&self, name: &str) -> VmFiles {
        VmFiles {
            dir: self.vms().join(name),
        }
    }

    pub fn templates(&self) -> PathBuf {
        self.root.join("templates")
    }

    pub fn template_disk(&self, name: &str) -> PathBuf {
        self.templates().join(format!("{name}.qcow2"))
    }

    pub fn template_meta(&self, name: &str) -> PathBuf {
        self.templates().join(format!("{name}.toml"))
    }
}

/// The files of one VM.
#[derive(Debug, Clone)]
pub struct VmFiles {
    pub dir: PathBuf,
}

impl VmFiles {
    pub fn disk(&self) -> PathBuf {
        self.dir.join(DISK)
    }
    pub fn seed(&self) -> PathBuf {
        self.dir.join(SEED)
    }
    pub fn serial_log(&self) -> PathBuf {
        self.dir.join("serial.log")
    }
    pub fn pid(&self) -> PathBuf {
        self.dir.join("pid")
    }
    pub fn ssh_port(&self) -> PathBuf {
        self.dir.join("ssh_port")
    }
    pub fn record(&self) -> PathBuf {
        self.dir.join("vm.toml")
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join(QMP_SOCK)
    }
}

/// File names QEMU sees relative to the VM folder (its working directory
/// when it starts), which keeps socket paths short.
pub const DISK: &str = "disk.qcow2";
pub const SEED: &str = "seed.iso";
pub const QMP_SOCK: &str = "qmp.sock";
pub const QGA_SOCK: &str = "qga.sock";

/// `vm.toml`: what oxbake knows about a VM beyond its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmRecord {
    pub name: String,
    pub labels: Labels,
    pub cores: u32,
    pub memory_mib: u32,
    pub mac: String,
    /// The resolved backing file of `disk.qcow2`.
    pub backing: PathBuf,
    pub created: String,
    /// A deployed VM's static network (see [`super::netdev`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::target::VmNetwork>,
}

/// `templates/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub name: String,
    pub sha256: String,
    pub backing: PathBuf,
    pub labels: Labels,
    pub created: String,
}

pub async fn write_toml<T: Serialize>(path: &Path, value: &T) -> Result<(), TargetError> {
    let text = toml::to_string(value).map_err(|e| TargetError::State {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    STATE_FILE
        .write_async(path.to_path_buf(), text.into_bytes())
        .await
        .map_err(|e| TargetError::io(path, e.source))
}

/// How the target's state files are written: atomically, readable as any
/// file the operator makes (0666 narrowed by the umask); the temporary
/// files are hidden, so [`names_in`] passes over them.
pub const STATE_FILE: Atomic = Atomic::new(".oxbake-", ".tmp").mode(0o666);

pub async fn read_toml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, TargetError> {
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| TargetError::io(path, e))?;
    toml::from_str(&text).map_err(|e| TargetError::State {
        path: path.to_path_buf(),
        message: e.message().to_string(),
    })
}

/// Names of the sub-folders (or, with `ext`, the files ending in `.ext`,
/// without it) of `dir`; a missing `dir` has none.
pub async fn names_in(dir: &Path, ext: Option<&str>) -> Result<Vec<String>, TargetError> {
    let suffix = ext.map(|ext| format!(".{ext}"));
    let mut out: Vec<String> = files::entries(dir)
        .await?
        .into_iter()
        .filter_map(|entry| match &suffix {
            Some(suffix) => entry.name.strip_suffix(suffix.as_str()).map(str::to_string),
            None => entry.is_dir.then_some(entry.name),
        })
        .filter(|name| !name.starts_with('.'))
        .collect();
    out.sort();
    Ok(out)
}

/// Removes a folder and everything in it when dropped, unless disarmed.
/// Keeps error paths from leaving half-made VMs behind.
#[derive(Debug)]
pub struct DirGuard {
    path: Option<PathBuf>,
}

impl DirGuard {
    pub fn new(path: PathBuf) -> Self {
        Self { path: Some(path) }
    }

    pub fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for DirGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            // Best effort: the operation that failed reports its own error.
            let _ = std::fs::remove_dir_all(path);
        }
    }
}
