//! Handlers outside one guest: next id, cluster resources, task status and
//! volumes (ISO uploads here, import uploads in `import_ops`).

use serde_json::{Value, json};

use super::http::{self, Reply, Req};
use super::routes::{Fail, Params, spawn_task};
use super::state::{Shared, SimTask, lock};

/// The storage that holds ISO images; others refuse `iso` content.
pub const ISO_STORAGE: &str = "local";

pub fn nextid(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let st = lock(shared);
    if let Some(id) = p.get("vmid").and_then(|v| v.parse::<u32>().ok()) {
        if st.vms.contains_key(&id) {
            let errors = [("vmid".to_string(), format!("VM {id} already exists"))].into();
            return Ok(http::param_errors(errors, st.faults.legacy_errors));
        }
        return Ok(http::ok(Value::from(id.to_string())));
    }
    let free = (100..).find(|id| !st.vms.contains_key(id)).unwrap_or(100);
    Ok(http::ok(Value::from(free.to_string())))
}

pub fn resources(shared: &Shared) -> Result<Reply, Fail> {
    let st = lock(shared);
    let list: Vec<Value> = st
        .vms
        .iter()
        .filter(|(id, _)| !st.faults.hidden_vmids.contains(id))
        .map(|(id, vm)| {
            let mut r = json!({
                "id": format!("qemu/{id}"), "vmid": id, "name": vm.name(), "node": vm.node,
                "type": "qemu", "status": if vm.running { "running" } else { "stopped" },
                "template": u8::from(vm.is_template()), "maxmem": 1_073_741_824u64,
            });
            if let Some(tags) = vm.config.get("tags") {
                r["tags"] = Value::from(tags.clone());
            }
            if let Some(l) = &vm.lock {
                r["lock"] = Value::from(l.clone());
            }
            r
        })
        .collect();
    Ok(http::ok(Value::Array(list)))
}

/// A task's status, known only to the node it runs on: elsewhere its log
/// file does not exist, and PVE answers 400 `no such task`.
pub fn task_status(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let st = lock(shared);
    let upid = &p["upid"];
    let here = |task: &&SimTask| task.node == p["node"];
    let Some(task) = st.tasks.get(upid).filter(here) else {
        let errors = [("upid".to_string(), "no such task".to_string())].into();
        return Ok(http::param_errors(errors, st.faults.legacy_errors));
    };
    let fields: Vec<&str> = upid.split(':').collect();
    let mut data = json!({
        "upid": task.upid, "node": task.node, "pid": u32::from_str_radix(fields[2], 16).unwrap_or(0),
        "pstart": u64::from_str_radix(fields[3], 16).unwrap_or(0),
        "starttime": u64::from_str_radix(fields[4], 16).unwrap_or(0),
        "type": task.kind, "id": fields[6], "user": "oxbake@pve", "tokenid": "test",
        "status": if task.exitstatus.is_some() { "stopped" } else { "running" },
    });
    if let Some(exit) = &task.exitstatus {
        data["exitstatus"] = Value::from(exit.clone());
    }
    Ok(http::ok(data))
}

pub fn upload(shared: &Shared, p: &Params, req: &Req) -> Result<Reply, Fail> {
    if p.get("content").map(String::as_str) == Some("import") {
        return super::import_ops::upload(shared, p, req);
    }
    let storage = &p["storage"];
    if storage != ISO_STORAGE {
        return Err((
            500,
            format!("storage '{storage}' does not support content type 'iso'"),
        ));
    }
    let Some((name, bytes)) = req.file.clone() else {
        return Err((400, "missing file upload".into()));
    };
    if !name.ends_with(".iso") && !name.ends_with(".img") {
        return Err((500, format!("wrong file extension for '{name}'")));
    }
    // The storage's node: the one the request names.
    let node = &p["node"];
    let mut st = lock(shared);
    let after = st.faults.task_time;
    let volid = format!("{storage}:iso/{name}");
    let upid = spawn_task(shared, &mut st, [node, "imgcopy", ""], after, move |st| {
        st.volumes.insert(volid, bytes);
        Ok(())
    });
    Ok(http::ok(Value::from(upid)))
}

pub fn content(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let st = lock(shared);
    let prefix = format!("{}:", p["storage"]);
    let list: Vec<Value> = st
        .volumes
        .iter()
        .filter(|(volid, _)| volid.starts_with(&prefix))
        .map(|(volid, bytes)| (volid, bytes, content_type(volid)))
        .filter(|(_, _, kind)| p.get("content").is_none_or(|c| c == kind.0))
        .map(|(volid, bytes, (content, format))| {
            json!({"volid": volid, "content": content, "format": format, "size": bytes.len()})
        })
        .collect();
    Ok(http::ok(Value::Array(list)))
}

/// A volume's content type and format, from its volid.
fn content_type(volid: &str) -> (&'static str, &'static str) {
    if volid.contains(":import/") {
        ("import", "qcow2")
    } else {
        ("iso", "iso")
    }
}

pub fn delete_volume(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let volume = &p["volume"];
    let volid = if volume.contains(':') {
        volume.clone()
    } else {
        format!("{}:{volume}", p["storage"])
    };
    let mut st = lock(shared);
    if !st.volumes.contains_key(&volid) {
        return Err((500, format!("volume '{volid}' does not exist")));
    }
    let (after, node) = (st.faults.task_time, &p["node"]);
    let upid = spawn_task(shared, &mut st, [node, "imgdel", ""], after, move |st| {
        st.volumes.remove(&volid);
        Ok(())
    });
    Ok(http::ok(Value::from(upid)))
}
