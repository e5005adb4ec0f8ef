//! What `oxbake publish` talks to: `GET /version`, `GET /access/permissions`,
//! a storage's status, uploads with `content=import` (the checksum checked
//! in the task, as pve-storage does) and `POST /nodes/{node}/qemu` with a
//! disk imported from such a volume.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::http::{Reply, Req};
use super::misc_ops::ISO_STORAGE;
use super::routes::{Fail, Params, spawn_task, vmid};
use super::state::{Shared, SimVm, lock};
use super::vm_ops::{fail, upid_reply};

/// The storage VM disks go to (the settings' `storage`).
pub const DISK_STORAGE: &str = "local-lvm";

/// Every privilege the simulator knows; the token holds all of them
/// everywhere unless a test denies some (`Faults::denied`).
const PRIVILEGES: &[&str] = &[
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "SDN.Use",
    "Sys.Audit",
    "VM.Allocate",
    "VM.Audit",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Monitor",
    "VM.PowerMgmt",
];

pub fn version(shared: &Shared) -> Result<Reply, Fail> {
    let version = lock(shared).faults.pve_version.clone();
    let release: Vec<&str> = version.split('.').take(2).collect();
    Ok(super::http::ok(json!({
        "version": version,
        "release": release.join("."),
        "repoid": "0123abcd",
    })))
}

/// The token's effective privileges on `path` (or on `/`).
pub fn permissions(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let st = lock(shared);
    let path = p.get("path").cloned().unwrap_or_else(|| "/".into());
    let held: Map<String, Value> = PRIVILEGES
        .iter()
        .filter(|privilege| {
            !st.faults
                .denied
                .iter()
                .any(|(on, denied)| *on == path && denied == *privilege)
        })
        .map(|privilege| (privilege.to_string(), Value::from(1)))
        .collect();
    Ok(super::http::ok(json!({ path: held })))
}

/// The content types of the simulator's two storages.
pub fn content_of(st: &super::state::State, storage: &str) -> Option<&'static str> {
    match storage {
        ISO_STORAGE if st.faults.no_import_content => Some("backup,iso,vztmpl"),
        ISO_STORAGE => Some("backup,import,iso,vztmpl"),
        DISK_STORAGE => Some("images,rootdir"),
        _ => None,
    }
}

pub fn storage_status(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let st = lock(shared);
    let storage = &p["storage"];
    let Some(content) = content_of(&st, storage) else {
        return Err(fail(format!("storage '{storage}' does not exist")));
    };
    let kind = if storage == DISK_STORAGE {
        "lvmthin"
    } else {
        "dir"
    };
    Ok(super::http::ok(json!({
        "content": content, "type": kind, "active": 1, "enabled": 1, "shared": 0,
        "total": 100u64 << 30, "used": 10u64 << 30, "avail": 90u64 << 30,
    })))
}

/// `content=import`: a disk image, stored by an `imgcopy` task that checks
/// the checksum first.
pub fn upload(shared: &Shared, p: &Params, req: &Req) -> Result<Reply, Fail> {
    let storage = &p["storage"];
    let mut st = lock(shared);
    if !content_of(&st, storage).is_some_and(|c| c.split(',').any(|c| c == "import")) {
        return Err(fail(format!(
            "storage '{storage}' does not support content type 'import'"
        )));
    }
    let Some((name, bytes)) = req.file.clone() else {
        return Err((400, "missing file upload".into()));
    };
    let ext_ok = [".qcow2", ".raw", ".vmdk", ".ova"]
        .iter()
        .any(|e| name.ends_with(e));
    if !ext_ok {
        return Err(fail(format!("wrong file extension for '{name}'")));
    }
    let expected = match (p.get("checksum"), p.get("checksum-algorithm")) {
        (Some(sum), Some(algo)) if algo == "sha256" => Some(sum.to_lowercase()),
        (Some(_), Some(algo)) => return Err(fail(format!("simulator: no {algo} checksums"))),
        (None, None) => None,
        _ => {
            let errors = [(
                "checksum".to_string(),
                "'checksum' and 'checksum-algorithm' go together".to_string(),
            )];
            return Ok(super::http::param_errors(errors.into(), false));
        }
    };
    let volid = format!("{storage}:import/{name}");
    if st.volumes.contains_key(&volid) {
        return Err(fail(format!("refusing to override existing file '{name}'")));
    }
    let (after, node) = (st.faults.task_time, p["node"].clone());
    let upid = spawn_task(shared, &mut st, [&node, "imgcopy", ""], after, move |st| {
        let got = hex::encode(Sha256::digest(&bytes));
        if let Some(want) = expected
            && want != got
        {
            return Err(format!("checksum mismatch: got '{got}' != expect '{want}'"));
        }
        st.volumes.insert(volid, bytes);
        Ok(())
    });
    upid_reply(upid)
}

/// `POST /nodes/{node}/qemu`: a new guest; `scsiN=STORE:0,import-from=VOLID`
/// imports an `import` volume as its disk.
pub fn create(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    if st.vms.contains_key(&id) {
        return Err(fail(format!(
            "unable to create VM {id}: VM {id} already exists"
        )));
    }
    let mut config: std::collections::BTreeMap<String, String> = p
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "vmid" | "node" | "pool" | "start"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let disks: Vec<String> = config
        .keys()
        .filter(|k| {
            ["scsi", "virtio", "sata", "ide"]
                .iter()
                .any(|b| k.starts_with(b))
        })
        .cloned()
        .collect();
    if let Some(net0) = config
        .get("net0")
        .filter(|n| !n.split(',').next().unwrap_or_default().contains('='))
    {
        let with_mac = super::vm_ops::replace_mac(net0, &st.new_mac());
        config.insert("net0".into(), with_mac);
    }
    let mut imports = Vec::new();
    for key in disks {
        let value = config[&key].clone();
        let Some((disk, source)) = imported(&st, &key, &value, id)? else {
            continue;
        };
        config.insert(key, disk);
        imports.push(source);
    }
    st.vms.insert(
        id,
        SimVm {
            node: p["node"].clone(),
            config,
            lock: Some("create".into()),
            ..Default::default()
        },
    );
    let (after, node) = (st.faults.task_time, p["node"].clone());
    let upid = spawn_task(
        shared,
        &mut st,
        [&node, "qmcreate", &id.to_string()],
        after,
        move |st| {
            if let Some(gone) = imports.iter().find(|v| !st.volumes.contains_key(*v)) {
                st.vms.remove(&id);
                return Err(format!("volume '{gone}' does not exist"));
            }
            for volid in &imports {
                let image = &st.volumes[volid];
                if let Err(e) = st.guests.imported(id, image) {
                    st.vms.remove(&id);
                    return Err(format!("import of '{volid}' failed: {e}"));
                }
            }
            let vm = st.vms.get_mut(&id).ok_or("vm vanished")?;
            vm.lock = None;
            Ok(())
        },
    );
    upid_reply(upid)
}

/// A disk option with `import-from`: the disk it becomes (its size read
/// from the image's qcow2 header) and the source volume.
fn imported(
    st: &super::state::State,
    key: &str,
    value: &str,
    id: u32,
) -> Result<Option<(String, String)>, Fail> {
    let mut parts = value.split(',');
    let target = parts.next().unwrap_or_default();
    let options: Vec<&str> = parts.collect();
    let Some(source) = options.iter().find_map(|o| o.strip_prefix("import-from=")) else {
        return Ok(None);
    };
    let Some((store, "0")) = target.split_once(':') else {
        return Err(fail(format!(
            "{key}: import-from needs the syntax STORAGE:0, got '{target}'"
        )));
    };
    let Some(bytes) = st.volumes.get(source) else {
        return Err(fail(format!("volume '{source}' does not exist")));
    };
    if !source.contains(":import/") && !source.contains(":vm-") {
        return Err(fail(format!(
            "{key}: '{source}' has wrong type 'iso' - needs to be 'images' or 'import'"
        )));
    }
    let gib = qcow2_size(bytes).div_ceil(1 << 30).max(1);
    let kept: Vec<&str> = options
        .iter()
        .filter(|o| !o.starts_with("import-from="))
        .copied()
        .collect();
    let mut disk = format!("{store}:vm-{id}-disk-0");
    for option in kept {
        disk.push(',');
        disk.push_str(option);
    }
    disk.push_str(&format!(",size={gib}G"));
    Ok(Some((disk, source.to_string())))
}

/// The virtual size in a qcow2 header (bytes 24..32), else the file's size.
fn qcow2_size(bytes: &[u8]) -> u64 {
    match bytes.get(24..32) {
        Some(size) if bytes.starts_with(b"QFI\xfb") => {
            u64::from_be_bytes(size.try_into().unwrap_or_default())
        }
        _ => bytes.len() as u64,
    }
}
