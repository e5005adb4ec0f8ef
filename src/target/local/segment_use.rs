//! Which VMs use a segment, and the rules that follow from it: a VM starts
//! on a segment only when no other running VM of it holds its address and
//! the segment's switch runs (started on the first VM, restarted after it
//! died only when no VM is plugged into it: QEMU does not reconnect, so a
//! VM of a dead switch stays cut off until it starts again, and a new switch
//! would hide that); the switch goes with the last VM; `gc` removes a
//! switch no VM uses.
//!
//! These checks and the start they guard run under one lock of the target
//! (on the state folder), so two starts never both see a free address.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;

use super::LocalTarget;
use super::process;
use super::segment::{Segment, Switch};
use super::state::{StateDir, VmRecord, names_in, read_toml};
use crate::target::{NetworkLeftover, TargetError, VmNetwork};

/// A VM whose record places it on a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub address: Ipv4Addr,
    pub running: bool,
}

/// The VMs of the state folder by segment, and the VM folders whose record
/// cannot be read (their segment is unknown).
#[derive(Debug, Default)]
pub struct Census {
    pub members: Vec<(String, Member)>,
    pub unreadable: Vec<String>,
}

impl Census {
    pub async fn take(state: &StateDir) -> Result<Self, TargetError> {
        let mut out = Census::default();
        for name in names_in(&state.vms(), None).await? {
            let files = state.vm(&name);
            let record: VmRecord = match read_toml(&files.record()).await {
                Ok(record) => record,
                Err(_) => {
                    out.unreadable.push(name);
                    continue;
                }
            };
            if let Some(net) = record.network {
                let running = process::running_pid(&files.pid()).await.is_some();
                out.members.push((
                    net.segment,
                    Member {
                        name,
                        address: net.address,
                        running,
                    },
                ));
            }
        }
        Ok(out)
    }

    pub fn of<'a>(&'a self, segment: &'a str) -> impl Iterator<Item = &'a Member> + 'a {
        self.members
            .iter()
            .filter(move |(s, _)| s == segment)
            .map(|(_, m)| m)
    }

    fn running(&self, segment: &str) -> Vec<String> {
        self.of(segment)
            .filter(|m| m.running)
            .map(|m| format!("`{}`", m.name))
            .collect()
    }
}

/// The target's segment lock (an advisory lock on the state folder itself,
/// so it leaves no file behind); released when dropped.
#[derive(Debug)]
pub struct SegmentLock {
    _dir: std::fs::File,
}

pub async fn lock(state_root: &Path) -> Result<SegmentLock, TargetError> {
    let root = state_root.to_path_buf();
    let dir = tokio::task::spawn_blocking(move || {
        let dir = std::fs::File::open(&root).map_err(|e| TargetError::io(&root, e))?;
        dir.lock().map_err(|e| TargetError::io(&root, e))?;
        Ok::<_, TargetError>(dir)
    })
    .await
    .map_err(|e| TargetError::io(state_root, std::io::Error::other(e)))??;
    Ok(SegmentLock { _dir: dir })
}

/// Readies `network`'s segment for the VM `name` to start on: refuses an
/// address another running VM of the segment holds, and a switch that died
/// under running VMs; starts the switch if it does not run. The caller
/// starts QEMU before it drops the returned lock.
pub async fn admit(
    t: &LocalTarget,
    name: &str,
    network: &VmNetwork,
) -> Result<(SegmentLock, Segment), TargetError> {
    let segment = Segment::new(t.state.root(), &network.segment)?;
    let held = lock(t.state.root()).await?;
    let census = Census::take(&t.state).await?;
    if let Some(holder) = census
        .of(&network.segment)
        .find(|m| m.running && m.name != name && m.address == network.address)
    {
        return Err(TargetError::AddressInUse {
            address: network.address,
            segment: network.segment.clone(),
            holder: holder.name.clone(),
        });
    }
    match segment.switch().await? {
        Switch::Running { .. } => {}
        Switch::Absent => {
            segment.start().await?;
        }
        Switch::Dead => {
            let running = census.running(&network.segment);
            if !running.is_empty() {
                return Err(TargetError::SegmentDown {
                    segment: network.segment.clone(),
                    vms: running.join(", "),
                });
            }
            t.progress.warn(format!(
                "segment `{}`: its switch had died with no vm running; starting a new one",
                network.segment
            ));
            segment.start().await?;
        }
    }
    Ok((held, segment))
}

/// Removes `segment` (its switch and folder) when no VM is on it any more.
pub async fn release_if_unused(t: &LocalTarget, segment: &str) -> Result<(), TargetError> {
    let seg = Segment::new(t.state.root(), segment)?;
    let _held = lock(t.state.root()).await?;
    let census = Census::take(&t.state).await?;
    if census.of(segment).next().is_none() && census.unreadable.is_empty() {
        seg.remove().await?;
    }
    Ok(())
}

/// Warns about each segment whose switch died under running VMs.
pub async fn warn_dead(t: &LocalTarget) -> Result<(), TargetError> {
    let census = Census::take(&t.state).await?;
    let segments: BTreeSet<&str> = census
        .members
        .iter()
        .filter(|(_, m)| m.running)
        .map(|(s, _)| s.as_str())
        .collect();
    for name in segments {
        let segment = Segment::new(t.state.root(), name)?;
        if segment.switch().await? != Switch::Dead {
            continue;
        }
        t.progress.warn(
            TargetError::SegmentDown {
                segment: name.to_owned(),
                vms: census.running(name).join(", "),
            }
            .to_string(),
        );
    }
    Ok(())
}

/// The segment folders no VM uses; unless `dry_run`, the provably oxbake's
/// go. A folder without oxbake's switch record is left alone, as is every
/// segment while a VM's record cannot be read (it may be on any of them).
pub async fn sweep(t: &LocalTarget, dry_run: bool) -> Result<Vec<NetworkLeftover>, TargetError> {
    let nets = t.state.root().join("nets");
    if !tokio::fs::try_exists(&nets)
        .await
        .map_err(|e| TargetError::io(&nets, e))?
    {
        return Ok(Vec::new());
    }
    let _held = lock(t.state.root()).await?;
    let census = Census::take(&t.state).await?;
    let mut out = Vec::new();
    for name in names_in(&t.state.root().join("nets"), None).await? {
        if census.of(&name).next().is_some() {
            continue;
        }
        let mut entry = NetworkLeftover {
            name: name.clone(),
            removed: false,
            error: None,
            unknown: None,
        };
        let segment = match Segment::new(t.state.root(), &name) {
            Ok(segment) => segment,
            Err(e) => {
                entry.unknown = Some(e.to_string());
                out.push(entry);
                continue;
            }
        };
        if !segment.made_by_oxbake().await {
            entry.unknown = Some(format!(
                "`{}` holds no switch record of oxbake",
                segment.dir().display()
            ));
        } else if !census.unreadable.is_empty() {
            entry.error = Some(format!(
                "kept: the records of vm(s) {} cannot be read, they may be on it",
                census.unreadable.join(", ")
            ));
        } else if !dry_run {
            match segment.remove().await {
                Ok(()) => entry.removed = true,
                Err(e) => entry.error = Some(e.to_string()),
            }
        }
        out.push(entry);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
