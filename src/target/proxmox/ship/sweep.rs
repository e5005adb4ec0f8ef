//! Import volumes of runs that ended (a publish killed mid-way, an upload
//! whose copy task ended after the run gave up on it): `oxbake gc` finds
//! them by their names, which carry the run id.

use super::super::ProxmoxTarget;
use crate::target::{TargetError, UploadLeftover};

const PREFIX: &str = "oxbake-";
const SUFFIX: &str = ".qcow2";

/// The name of the import volume run `run_id` uploads for `role@version`:
/// `oxbake-ROLE-VERSION-RUN.qcow2`.
pub fn upload_name(role: &str, version: &str, run_id: &str) -> String {
    format!("{PREFIX}{role}-{version}-{run_id}{SUFFIX}")
}

/// The run id in an upload's file name, if it is one oxbake made.
fn run_of(filename: &str) -> Option<&str> {
    let stem = filename.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (_, run) = stem.rsplit_once('-')?;
    let hex = run.len() == 8 && run.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then_some(run)
}

/// The import volumes (on the import storage of the first node) whose run
/// has ended; unless `dry_run`, each is removed.
pub(in super::super) async fn sweep(
    t: &ProxmoxTarget,
    ended: &(dyn for<'s> Fn(&'s str) -> bool + Sync),
    dry_run: bool,
) -> Result<Vec<UploadLeftover>, TargetError> {
    let (node, storage) = (t.node(), t.import_storage());
    let volumes = match t.client.list_volumes(node, storage, "import").await {
        Ok(volumes) => volumes,
        // A storage without import content holds no uploads.
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut found = Vec::new();
    for volid in volumes {
        let filename = volid.rsplit('/').next().unwrap_or_default();
        let Some(run) = run_of(filename).filter(|run| ended(run)) else {
            continue;
        };
        let mut entry = UploadLeftover {
            run_id: run.to_owned(),
            name: volid.clone(),
            removed: false,
            error: None,
        };
        if !dry_run {
            match t.remove_image(&volid).await {
                Ok(()) => entry.removed = true,
                Err(e) => entry.error = Some(e.chained()),
            }
        }
        found.push(entry);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_is_read_back_from_the_name() {
        let name = upload_name("web-front", "2026.12.06.1", "0a1b2c3d");
        assert_eq!(name, "oxbake-web-front-2026.12.06.1-0a1b2c3d.qcow2");
        assert_eq!(run_of(&name), Some("0a1b2c3d"));
        for other in [
            "oxbake-web-2026.12.06.1.qcow2",
            "someone-else-0a1b2c3d.qcow2",
            "oxbake-web-2026.12.06.1-0a1b2c3d.raw",
            "oxbake-web-xyz-nothex!.qcow2",
        ] {
            assert_eq!(run_of(other), None, "{other}");
        }
    }
}
