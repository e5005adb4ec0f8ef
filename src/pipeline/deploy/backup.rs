//! An environment's database backups (the db role): the snapshots in its
//! restic repository, one taken now, and a restore of the cluster from one.
//! oxbake drives `oxbake-backup` (files/backup/) on the db VMs over SSH, as
//! the deploy user with sudo; the repository's password and keys stay on
//! those VMs, and nothing the script prints is a secret.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::deployed::DeployedVm;
use super::{DeployError, Deployer};
use crate::guest::Command;

/// The role whose data is backed up.
pub const DB_ROLE: &str = "db";

/// How long one backup, or one step of a restore, may take.
const LONG: Duration = Duration::from_secs(3 * 3600);
/// How long a question to the script may take.
const SHORT: Duration = Duration::from_secs(120);
/// How long a running VM's SSH server is waited for.
const PROBE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("it runs no db VM: backups are the db role's")]
    NoDatabase,
    #[error(
        "`{0}` is not a snapshot: give an ID that `oxbake backup ENV` lists (8 to 64 hex \
         digits), or `latest`"
    )]
    BadSnapshot(String),
    #[error("vm `{vm}`: {what} failed ({status}): {detail}")]
    Script {
        vm: String,
        what: String,
        status: String,
        detail: String,
    },
    #[error("vm `{vm}`: the repository's snapshot list is not restic's JSON: {detail}")]
    Snapshots { vm: String, detail: String },
    #[error(
        "vm `{vm}`: `oxbake-backup holds` did not say what the database holds (`{said}`): \
         nothing is restored"
    )]
    Unreadable { vm: String, said: String },
    #[error("the repository holds no snapshot of this environment yet")]
    NoSnapshot,
    #[error(
        "the repository holds no snapshot `{0}` of this environment (`oxbake backup ENV` \
         lists them)"
    )]
    UnknownSnapshot(String),
    #[error("`{0}` is the start of {1} snapshots' IDs: give more of the one to restore")]
    AmbiguousSnapshot(String, usize),
    #[error(
        "its database holds {tables} table(s) (about {rows} row(s)), which a restore \
         replaces; to overwrite a running cluster's data, give --force with --reason"
    )]
    HoldsData { tables: u64, rows: u64 },
    #[error("after the restore the cluster is not whole: {detail}")]
    NotWhole { detail: String },
    #[error("cannot record the restore in `{}`", path.display())]
    Record {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl BackupError {
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            BackupError::BadSnapshot(_)
                | BackupError::UnknownSnapshot(_)
                | BackupError::AmbiguousSnapshot(..)
        )
    }
}

/// One snapshot, as restic lists it.
#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub short_id: String,
    #[serde(deserialize_with = "rfc3339")]
    pub time: jiff::Timestamp,
    pub hostname: String,
}

/// restic's times: RFC 3339 with an offset and nanoseconds.
fn rfc3339<'de, D: serde::Deserializer<'de>>(d: D) -> Result<jiff::Timestamp, D::Error> {
    let text = String::deserialize(d)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// What a restore did.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub env: String,
    /// As the operator gave it (`latest`, an ID or the start of one).
    pub from: String,
    /// The snapshot restored: its whole ID.
    pub snapshot: String,
    pub short_id: String,
    /// The VM that restored the data and started the new cluster.
    pub first: String,
    /// Those that joined it (by SST).
    pub joined: Vec<String>,
    pub forced: bool,
}

/// `latest`, or 8 to 64 hexadecimal digits: what restic takes as a snapshot.
pub fn check_snapshot(from: &str) -> Result<(), BackupError> {
    let hex = (8..=64).contains(&from.len()) && from.bytes().all(|b| b.is_ascii_hexdigit());
    if from == "latest" || hex && from == from.to_ascii_lowercase() {
        Ok(())
    } else {
        Err(BackupError::BadSnapshot(from.to_owned()))
    }
}

/// The snapshot `from` names among `list` (this environment's): `latest`
/// the newest, else the one whose ID starts with it.
fn pick<'a>(list: &'a [Snapshot], from: &str) -> Result<&'a Snapshot, BackupError> {
    if from == "latest" {
        return list
            .iter()
            .max_by_key(|s| s.time)
            .ok_or(BackupError::NoSnapshot);
    }
    let found: Vec<&Snapshot> = list.iter().filter(|s| s.id.starts_with(from)).collect();
    match found[..] {
        [one] => Ok(one),
        [] => Err(BackupError::UnknownSnapshot(from.to_owned())),
        _ => Err(BackupError::AmbiguousSnapshot(from.to_owned(), found.len())),
    }
}

/// `tables=N rows=N`, as `oxbake-backup holds` prints it.
fn parse_holds(text: &str) -> Option<(u64, u64)> {
    let mut tables = None;
    let mut rows = None;
    for word in text.split_whitespace() {
        if let Some(v) = word.strip_prefix("tables=") {
            tables = v.parse().ok();
        } else if let Some(v) = word.strip_prefix("rows=") {
            rows = v.parse().ok();
        }
    }
    Some((tables?, rows?))
}

impl Deployer<'_> {
    fn backup_error(&self, source: BackupError) -> DeployError {
        DeployError::Backup {
            env: self.env_name.to_owned(),
            source,
        }
    }

    /// The environment's db VMs by slot, every one running and answering:
    /// the first (slot 1) takes the backups.
    async fn db_nodes(&self) -> Result<Vec<DeployedVm>, DeployError> {
        let mut nodes = self.deployed_of(PROBE, Some(DB_ROLE)).await?;
        if nodes.is_empty() {
            return Err(self.backup_error(BackupError::NoDatabase));
        }
        if let Some(down) = nodes.iter().find(|vm| vm.ssh.is_none()) {
            return Err(DeployError::NotReachable {
                vm: down.name.clone(),
            });
        }
        nodes.sort_by(|a, b| (a.slot.as_deref(), &a.name).cmp(&(b.slot.as_deref(), &b.name)));
        Ok(nodes)
    }

    /// Runs `oxbake-backup ARGS` on `vm` as root; its stdout.
    async fn script(
        &self,
        vm: &DeployedVm,
        args: &str,
        timeout: Duration,
    ) -> Result<String, DeployError> {
        let line = format!("/usr/local/sbin/oxbake-backup {args}");
        self.as_root(vm, &line, &format!("`oxbake-backup {args}`"), timeout)
            .await
    }

    /// Runs `script` on `vm` as root; its stdout, or an error that says
    /// `what` failed with the last lines it said.
    async fn as_root(
        &self,
        vm: &DeployedVm,
        script: &str,
        what: &str,
        timeout: Duration,
    ) -> Result<String, DeployError> {
        let cmd = Command::new(script)
            .run_as("root")
            .timeout(timeout)
            .capture();
        let out = self.run_on(vm, &cmd).await?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(self.backup_error(BackupError::Script {
            vm: vm.name.clone(),
            what: what.to_owned(),
            status: out.status.to_string(),
            detail: last_lines(&out.stderr_tail),
        }))
    }

    /// The snapshots of the environment's database, oldest first.
    pub async fn snapshots(&self) -> Result<Vec<Snapshot>, DeployError> {
        let nodes = self.db_nodes().await?;
        self.snapshots_on(&nodes[0]).await
    }

    async fn snapshots_on(&self, vm: &DeployedVm) -> Result<Vec<Snapshot>, DeployError> {
        let text = self.script(vm, "snapshots", SHORT).await?;
        // restic prints `null` for an empty list.
        let list: Option<Vec<Snapshot>> = serde_json::from_str(text.trim()).map_err(|e| {
            self.backup_error(BackupError::Snapshots {
                vm: vm.name.clone(),
                detail: e.to_string(),
            })
        })?;
        let mut list = list.unwrap_or_default();
        list.sort_by_key(|s| s.time);
        Ok(list)
    }

    /// Takes a backup now through the first db VM's unit (as its timer
    /// would) and waits for it; the snapshot it made.
    pub async fn backup_now(&self) -> Result<Snapshot, DeployError> {
        let nodes = self.db_nodes().await?;
        let first = &nodes[0];
        self.ctx.progress.info(format!(
            "vm `{}`: taking a backup (mariabackup, then restic), waiting for it",
            first.name
        ));
        let start = "systemctl start oxbake-backup.service || { journalctl -u \
                     oxbake-backup.service -n 15 --no-pager -o cat >&2; exit 1; }";
        self.as_root(first, start, "the backup (oxbake-backup.service)", LONG)
            .await?;
        let list = self.snapshots_on(first).await?;
        list.into_iter()
            .next_back()
            .ok_or_else(|| self.backup_error(BackupError::NoSnapshot))
    }

    /// Restores the cluster from snapshot `from`: every db VM stopped but
    /// the first, the first's data replaced (its old data kept aside on it)
    /// and a new cluster started from it, then the others joined by SST.
    /// Refused where the cluster holds tables of its own (beyond MariaDB's),
    /// unless `force` gives a reason; every restore is recorded in `.oxbake/restores/ENV.jsonl`.
    pub async fn restore(&self, from: &str, force: Option<&str>) -> Result<Restored, DeployError> {
        check_snapshot(from).map_err(|e| self.backup_error(e))?;
        let nodes = self.db_nodes().await?;
        let (first, others) = nodes.split_first().expect("db_nodes is never empty");
        let holds = self.script(first, "holds", SHORT).await?;
        // Unreadable is not empty: no answer, no restore.
        let (tables, rows) = parse_holds(&holds).ok_or_else(|| {
            self.backup_error(BackupError::Unreadable {
                vm: first.name.clone(),
                said: holds.trim().chars().take(120).collect(),
            })
        })?;
        if tables > 0 && force.is_none() {
            return Err(self.backup_error(BackupError::HoldsData { tables, rows }));
        }
        let list = self.snapshots_on(first).await?;
        let snapshot = pick(&list, from).map_err(|e| self.backup_error(e))?;
        let restored = Restored {
            env: self.env_name.to_owned(),
            from: from.to_owned(),
            snapshot: snapshot.id.clone(),
            short_id: snapshot.short_id.clone(),
            first: first.name.clone(),
            joined: others.iter().map(|vm| vm.name.clone()).collect(),
            forced: force.is_some(),
        };
        // Read and checked before anything stops: a snapshot that is not
        // there changes nothing.
        self.ctx.progress.info(format!(
            "vm `{}`: reading snapshot {} from the repository",
            first.name, restored.short_id
        ));
        self.script(first, &format!("fetch {}", restored.snapshot), LONG)
            .await?;
        self.record_restore(&restored, force, (tables, rows))?;
        for vm in others.iter().rev() {
            self.ctx
                .progress
                .info(format!("vm `{}`: stopping MariaDB", vm.name));
            self.as_root(
                vm,
                "systemctl stop mariadb",
                "`systemctl stop mariadb`",
                SHORT,
            )
            .await?;
        }
        self.ctx.progress.info(format!(
            "vm `{}`: replacing its data with the snapshot's, starting a new cluster from it",
            first.name
        ));
        self.script(first, "replace", LONG).await?;
        for vm in others {
            self.ctx
                .progress
                .info(format!("vm `{}`: joining the restored cluster", vm.name));
            self.script(vm, "rejoin", LONG).await?;
        }
        let size = self.script(first, "size", SHORT).await?;
        let want = format!("Synced {}", nodes.len());
        if size.trim() != want {
            return Err(self.backup_error(BackupError::NotWhole {
                detail: format!("`{}` says `{}`, not `{want}`", first.name, size.trim()),
            }));
        }
        Ok(restored)
    }

    /// One JSON line per restore: when, from what, whether forced and why,
    /// and what the cluster held before.
    fn record_restore(
        &self,
        restored: &Restored,
        reason: Option<&str>,
        (tables, rows): (u64, u64),
    ) -> Result<(), DeployError> {
        let dir = self.ctx.project.root.join(".oxbake/restores");
        let path = dir.join(format!("{}.jsonl", self.env_name));
        let line = serde_json::json!({
            "time": jiff::Timestamp::now().to_string(),
            "env": restored.env,
            "from": restored.from,
            "snapshot": restored.snapshot,
            "forced": restored.forced,
            "reason": reason,
            "held": { "tables": tables, "rows": rows },
        });
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            writeln!(file, "{line}")?;
            file.sync_all()
        };
        write().map_err(|source| self.backup_error(BackupError::Record { path, source }))
    }
}

/// The last lines of what a script said on stderr, on one line.
fn last_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(4);
    match lines[from..].join("; ") {
        s if s.is_empty() => "no output".into(),
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_is_latest_or_a_lowercase_hex_id() {
        for ok in ["latest", "1a2b3c4d", &"f".repeat(64)] {
            assert!(check_snapshot(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1a2b3c4",
            "1A2B3C4D",
            "1a2b3c4g",
            "latest;id",
            "-1a2b3c4d",
            &"f".repeat(65),
            "1a2b 3c4d",
        ] {
            let err = check_snapshot(bad).unwrap_err();
            assert!(err.is_invalid_input(), "{bad}");
        }
    }

    #[test]
    fn latest_is_the_newest_and_an_id_prefix_names_one_snapshot() {
        let snap = |id: &str, time: &str| Snapshot {
            id: id.repeat(64 / id.len()),
            short_id: id.repeat(8 / id.len()),
            time: time.parse().unwrap(),
            hostname: "dr-db".into(),
        };
        let list = [
            snap("ab", "2026-12-06T09:00:00Z"),
            snap("cd", "2026-12-06T11:00:00Z"),
            snap("abc0", "2026-12-06T10:00:00Z"),
        ];
        assert_eq!(pick(&list, "latest").unwrap().short_id, "cdcdcdcd");
        assert_eq!(pick(&list, "abababab").unwrap().short_id, "abababab");
        assert_eq!(pick(&list, &list[2].id).unwrap().short_id, "abc0abc0");
        for (from, want) in [
            ("ab", "2 snapshots"),
            ("ef012345", "no snapshot `ef012345`"),
        ] {
            let err = pick(&list, from).unwrap_err();
            assert!(
                err.is_invalid_input() && err.to_string().contains(want),
                "{err}"
            );
        }
        assert!(matches!(pick(&[], "latest"), Err(BackupError::NoSnapshot)));
    }

    #[test]
    fn holds_reads_the_script_and_nothing_else() {
        assert_eq!(parse_holds("tables=3 rows=120\n"), Some((3, 120)));
        assert_eq!(parse_holds("tables=0 rows=0"), Some((0, 0)));
        assert_eq!(parse_holds("tables=x rows=1"), None);
        assert_eq!(parse_holds(""), None);
    }

    #[test]
    fn restic_snapshot_json_parses() {
        let text = r#"[{"time":"2026-12-06T08:47:06.123456789+00:00","tree":"ab","paths":["/var/lib/oxbake-backup/run/data"],"hostname":"prod-db","username":"root","tags":["oxbake-db"],"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","short_id":"01234567"}]"#;
        let list: Option<Vec<Snapshot>> = serde_json::from_str(text).unwrap();
        let s = &list.unwrap()[0];
        assert_eq!(s.short_id, "01234567");
        assert_eq!(s.time.to_string(), "2026-12-06T08:47:06.123456789Z");
        let none: Option<Vec<Snapshot>> = serde_json::from_str("null").unwrap();
        assert!(none.is_none());
    }
}
