//! What `oxbake publish` makes sure of before it uploads a byte: the
//! cluster runs PVE 8.2 or later, the import storage takes `import`
//! content, and the token holds every privilege the upload, the template
//! VM and its disk need.

use std::collections::BTreeMap;

use super::super::ProxmoxTarget;
use super::super::access::{Need, PveRelease, missing};
use super::ShipError;

/// The oldest release that takes `content=import` uploads and
/// `import-from` (pve-storage 8.1.1 brought the content type, 8.2 the
/// import on directory storages).
pub const OLDEST: PveRelease = PveRelease { major: 8, minor: 2 };
/// The first release whose storage takes uploads of guest disk images
/// (qcow2) as `import` content from the start (pve-storage 8.3.6, shipped
/// with PVE 8.4; an up-to-date 8.3 has it too).
const QCOW2_UPLOADS: PveRelease = PveRelease { major: 8, minor: 4 };

/// Refuses, changing nothing, what the cluster cannot take.
pub async fn preflight(t: &ProxmoxTarget) -> Result<(), ShipError> {
    let release = t
        .client
        .release()
        .await
        .map_err(ShipError::step("reading the PVE version (GET /version)"))?;
    if release < OLDEST {
        return Err(ShipError::TooOld {
            endpoint: t.client.endpoint().to_owned(),
            found: release,
            needed: OLDEST,
        });
    }
    if release < QCOW2_UPLOADS {
        t.progress.warn(format!(
            "proxmox `{}` runs PVE {release}: uploading a qcow2 as `import` content needs \
             pve-storage 8.3.6 or later (PVE 8.4, or 8.3 fully updated); an older one refuses \
             the upload",
            t.client.endpoint()
        ));
    }
    let (node, storage) = (t.node(), t.import_storage());
    let status = t
        .client
        .storage_status(node, storage)
        .await
        .map_err(ShipError::step(format!(
            "reading storage `{storage}` on node `{node}`"
        )))?;
    if !status.takes("import") {
        return Err(ShipError::NoImportContent {
            storage: storage.to_owned(),
            node: node.to_owned(),
            content: status.content,
        });
    }
    let needs = needs(t);
    let mut held = BTreeMap::new();
    for need in &needs {
        if held.contains_key(&need.path) {
            continue;
        }
        let privs = t
            .client
            .privileges(&need.path)
            .await
            .map_err(ShipError::step(format!(
                "reading the token's privileges on `{}`",
                need.path
            )))?;
        held.insert(need.path.clone(), privs);
    }
    let gaps = missing(&needs, &held);
    if gaps.is_empty() {
        return Ok(());
    }
    let each: Vec<String> = gaps
        .iter()
        .map(|n| format!("{} on {} ({})", n.privilege, n.path, n.for_what))
        .collect();
    Err(ShipError::MissingPrivileges {
        token: t.client.token_id().to_owned(),
        missing: each.join(", "),
    })
}

/// The privileges shipping needs, where: the upload on the import storage,
/// the VM (in the pool when one is set) and its disk on `storage`.
fn needs(t: &ProxmoxTarget) -> Vec<Need> {
    let vms = match &t.settings.pool {
        Some(pool) => format!("/pool/{pool}"),
        None => "/vms".to_owned(),
    };
    let import = format!("/storage/{}", t.import_storage());
    vec![
        Need {
            path: import.clone(),
            privilege: "Datastore.AllocateTemplate",
            for_what: "the upload",
        },
        Need {
            path: import.clone(),
            privilege: "Datastore.Audit",
            for_what: "listing import volumes",
        },
        Need {
            path: import,
            privilege: "Datastore.Allocate",
            for_what: "removing the import volume",
        },
        Need {
            path: vms.clone(),
            privilege: "VM.Allocate",
            for_what: "the template VM",
        },
        Need {
            path: vms,
            privilege: "VM.Config.Options",
            for_what: "naming and tagging the template",
        },
        Need {
            path: format!("/storage/{}", t.settings.storage),
            privilege: "Datastore.AllocateSpace",
            for_what: "the template's disk",
        },
    ]
}
