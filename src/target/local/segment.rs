//! The virtual L2 segment of a local environment: one `vde_switch` (Debian's
//! vde2) per environment, and each deployed VM's segment NIC plugged into it
//! (QEMU's `-netdev vde`). The VMs hold their declared static addresses on
//! it and reach each other on every port with their real source addresses,
//! as on a Proxmox bridge.
//!
//! Why vde: it needs no root (a Linux bridge with tap devices needs
//! `CAP_NET_ADMIN`, or a network namespace oxbake would have to keep alive),
//! it is one small process per segment that oxbake can start, prove and
//! stop like a VM's QEMU, and its management socket tells which QEMU
//! processes are plugged in.
//!
//! The switch's files live in `nets/SEGMENT/` below the local state folder:
//! `sock/` (the switch's socket folder, which QEMU connects to), `mgmt`
//! (the management socket), `pid`, and `switch.toml`, which records the
//! switch's pid and start time. A switch counts as oxbake's only while the
//! process with that pid started at that time and runs `vde_switch` with
//! this pid file: a reused pid is never taken for the switch, nor killed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::process;
use super::state::{read_toml, write_toml};
use crate::target::{TargetError, exec, validate_name};

/// The program that runs a segment.
const SWITCH: &str = "vde_switch";
/// How long a freshly started switch may take to show its sockets.
const START_WAIT: Duration = Duration::from_secs(5);
/// UNIX socket paths are limited to 108 bytes, the terminating NUL included.
const MAX_SOCKET_PATH: usize = 107;
/// How the relay script of oxbake's earlier user-mode networks began.
const OLD_RELAY: &str = "#!/bin/sh\n# Written by oxbake";

/// `switch.toml`: the switch oxbake started for a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRecord {
    pub segment: String,
    pub pid: u32,
    /// The process's start time (`/proc/PID/stat`, clock ticks since boot).
    pub start_time: u64,
}

/// What runs a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// oxbake's switch runs, as `switch.toml` records it.
    Running { pid: u32 },
    /// oxbake started a switch for the segment and it is gone.
    Dead,
    /// No switch was started (or it was removed).
    Absent,
}

/// One segment's folder and switch.
#[derive(Debug, Clone)]
pub struct Segment {
    name: String,
    dir: PathBuf,
}

impl Segment {
    /// The segment `name` below the state folder `state_root`.
    pub fn new(state_root: &Path, name: &str) -> Result<Self, TargetError> {
        validate_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            dir: segment_dir(state_root, name),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The switch's socket folder as QEMU sees it from a VM folder
    /// (`vms/NAME/`, its working directory): relative, so it stays short.
    pub fn qemu_sock(&self) -> String {
        format!("../../nets/{}/sock", self.name)
    }

    /// The management socket (`port/allprint` lists the plugged-in QEMUs).
    pub fn mgmt(&self) -> PathBuf {
        self.dir.join("mgmt")
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("sock")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("pid")
    }

    fn record(&self) -> PathBuf {
        self.dir.join("switch.toml")
    }

    /// Whether oxbake made the folder: it holds a switch record, or the
    /// relay script of the user-mode networks before segments.
    pub async fn made_by_oxbake(&self) -> bool {
        if tokio::fs::try_exists(self.record()).await.unwrap_or(false) {
            return true;
        }
        tokio::fs::read_to_string(self.dir.join("relay"))
            .await
            .is_ok_and(|text| text.starts_with(OLD_RELAY))
    }

    /// The state of the segment's switch.
    pub async fn switch(&self) -> Result<Switch, TargetError> {
        let record: SwitchRecord = match read_toml(&self.record()).await {
            Ok(record) => record,
            Err(TargetError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Ok(Switch::Absent);
            }
            Err(e) => return Err(e),
        };
        Ok(if self.owns(&record).await {
            Switch::Running { pid: record.pid }
        } else {
            Switch::Dead
        })
    }

    /// Whether the process `record` names is this segment's switch: alive,
    /// started at the recorded time, `vde_switch` with this pid file.
    async fn owns(&self, record: &SwitchRecord) -> bool {
        if record.segment != self.name || !process::alive(record.pid).await {
            return false;
        }
        if start_time(record.pid).await != Some(record.start_time) {
            return false;
        }
        let Ok(cmdline) = tokio::fs::read(format!("/proc/{}/cmdline", record.pid)).await else {
            return false;
        };
        let mut args = cmdline.split(|b| *b == 0);
        let is_switch = args
            .next()
            .is_some_and(|prog| prog.ends_with(SWITCH.as_bytes()));
        let pid_file = self.pid_file();
        let wanted = pid_file.as_os_str().as_encoded_bytes();
        is_switch && args.any(|arg| arg == wanted)
    }

    /// Starts the switch (the segment must have none running): stale files
    /// of a dead one go first. Returns its pid.
    pub async fn start(&self) -> Result<u32, TargetError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| TargetError::io(&self.dir, e))?;
        let dir = tokio::fs::canonicalize(&self.dir)
            .await
            .map_err(|e| TargetError::io(&self.dir, e))?;
        self.clear_switch_files().await?;
        // vde_switch changes to `/` when it daemonizes: absolute paths.
        let (sock, mgmt, pid) = (dir.join("sock"), dir.join("mgmt"), dir.join("pid"));
        for path in [&sock.join("ctl"), &mgmt] {
            if path.as_os_str().len() > MAX_SOCKET_PATH {
                return Err(self.error(format!(
                    "the socket path `{}` is longer than {MAX_SOCKET_PATH} bytes; \
                     move the project to a shorter path",
                    path.display()
                )));
            }
        }
        let mut cmd = tokio::process::Command::new(SWITCH);
        cmd.arg("-s")
            .arg(&sock)
            .arg("-M")
            .arg(&mgmt)
            .arg("-p")
            .arg(&pid)
            .arg("-d");
        exec::run(&mut cmd).await?;
        match self.started(&pid, &mgmt).await {
            Ok(pid) => Ok(pid),
            Err(e) => {
                let _ = self.stop().await;
                Err(e)
            }
        }
    }

    /// Waits for the daemon's pid file and management socket, then records it.
    async fn started(&self, pid_file: &Path, mgmt: &Path) -> Result<u32, TargetError> {
        let deadline = Instant::now() + START_WAIT;
        loop {
            let pid = tokio::fs::read_to_string(pid_file)
                .await
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok());
            let ready = tokio::fs::try_exists(mgmt).await.unwrap_or(false);
            if let Some(pid) = pid
                && ready
                && let Some(start_time) = start_time(pid).await
            {
                let record = SwitchRecord {
                    segment: self.name.clone(),
                    pid,
                    start_time,
                };
                write_toml(&self.record(), &record).await?;
                if self.owns(&record).await {
                    return Ok(pid);
                }
                return Err(self.error(format!(
                    "{SWITCH} (pid {pid}) exited right after it started"
                )));
            }
            if Instant::now() >= deadline {
                return Err(self.error(format!(
                    "{SWITCH} did not come up within {} s",
                    START_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the switch if it is provably oxbake's, and removes its files
    /// (the folder's other files, the VMs' port files, stay).
    pub async fn stop(&self) -> Result<(), TargetError> {
        if let Switch::Running { pid } = self.switch().await?
            && !process::kill(pid).await
        {
            return Err(self.error(format!("{SWITCH} (pid {pid}) does not end")));
        }
        self.clear_switch_files().await
    }

    /// Ends the switch and removes the whole folder.
    pub async fn remove(&self) -> Result<(), TargetError> {
        self.stop().await?;
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TargetError::io(&self.dir, e)),
        }
    }

    async fn clear_switch_files(&self) -> Result<(), TargetError> {
        for file in [self.record(), self.pid_file(), self.mgmt()] {
            match tokio::fs::remove_file(&file).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(TargetError::io(&file, e)),
            }
        }
        match tokio::fs::remove_dir_all(self.sock()).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(TargetError::io(self.sock(), e)),
        }
    }

    fn error(&self, message: String) -> TargetError {
        TargetError::Segment {
            segment: self.name.clone(),
            message,
        }
    }
}

/// The segment folder `nets/SEGMENT` below the state folder.
pub fn segment_dir(state_root: &Path, segment: &str) -> PathBuf {
    state_root.join("nets").join(segment)
}

/// A process's start time (field 22 of `/proc/PID/stat`).
async fn start_time(pid: u32) -> Option<u64> {
    let stat = tokio::fs::read_to_string(format!("/proc/{pid}/stat"))
        .await
        .ok()?;
    // Fields after the parenthesised command name start with field 3.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_time_is_read_for_a_live_process_only() {
        assert!(start_time(std::process::id()).await.is_some());
        assert_eq!(start_time(u32::MAX).await, None);
    }

    #[test]
    fn qemu_reaches_the_socket_folder_from_a_vm_folder() {
        let seg = Segment::new(Path::new("/p/.oxbake/local"), "lab").unwrap();
        assert_eq!(seg.qemu_sock(), "../../nets/lab/sock");
        assert_eq!(seg.dir(), Path::new("/p/.oxbake/local/nets/lab"));
        assert!(Segment::new(Path::new("/p"), "../x").is_err());
    }
}
