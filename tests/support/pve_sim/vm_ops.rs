//! Handlers for one guest's configuration: clone, config, resize and
//! status, with Proxmox's checks and error texts. Power, template, destroy
//! and the agent are in `power_ops`.

use serde_json::{Value, json};

use super::http::{self, Reply};
use super::routes::{Fail, Params, missing, spawn_task, vmid};
use super::state::{Shared, SimVm, State, lock};

pub(super) fn fail(msg: impl Into<String>) -> Fail {
    (500, msg.into())
}

pub(super) fn existing(st: &State, id: u32) -> Result<SimVm, Fail> {
    st.vms.get(&id).cloned().ok_or_else(|| missing(id))
}

pub(super) fn upid_reply(upid: String) -> Result<Reply, Fail> {
    Ok(http::ok(Value::from(upid)))
}

pub fn clone(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let (src, newid) = (vmid(p), p["newid"].parse::<u32>().unwrap_or(0));
    let mut st = lock(shared);
    let source = existing(&st, src)?;
    // PVE::Cluster::check_node_exists.
    if let Some(target) = p.get("target")
        && !st.nodes.contains(target)
    {
        return Err(fail(format!("no such cluster node '{target}'")));
    }
    if st.vms.contains_key(&newid) {
        return Err(fail(format!(
            "unable to create VM {newid}: config file already exists"
        )));
    }
    if let Some(l) = &source.lock {
        return Err(fail(format!("VM is locked ({l})")));
    }
    let full = p.get("full").map_or(!source.is_template(), |v| v == "1");
    if !full && p.contains_key("storage") {
        return Err(fail("parameter 'storage' not allowed for linked clones"));
    }
    if !full && !source.is_template() {
        return Err(fail(
            "Linked clone feature is not supported for drive 'scsi0'",
        ));
    }
    let mut config = source.config.clone();
    config.remove("template");
    let name = p
        .get("name")
        .cloned()
        .unwrap_or(format!("Copy-of-VM-{}", source.name()));
    config.insert("name".into(), name);
    if let Some(d) = p.get("description") {
        config.insert("description".into(), d.clone());
    }
    let mac = st.new_mac();
    if let Some(net0) = config.get_mut("net0") {
        *net0 = replace_mac(net0, &mac);
    }
    let volumes = config
        .iter_mut()
        .filter(|(k, _)| !matches!(k.as_str(), "name" | "description"));
    for (_, value) in volumes {
        *value = value
            .replace(&format!("-{src}-"), &format!("-{newid}-"))
            .replace("base-", "vm-");
    }
    let vm = SimVm {
        node: p.get("target").cloned().unwrap_or(source.node.clone()),
        config,
        lock: Some("clone".into()),
        linked_from: (!full).then_some(src),
        ..Default::default()
    };
    st.vms.insert(newid, vm);
    let failure = st.faults.fail_next_clone.take();
    let after = st.faults.task_time;
    let upid = spawn_task(
        shared,
        &mut st,
        [&source.node, "qmclone", &src.to_string()],
        after,
        move |st| {
            if let Some(vm) = st.vms.get_mut(&newid) {
                vm.lock = None;
            }
            match failure {
                Some(msg) => Err(format!("clone failed: {msg}")),
                None => Ok(()),
            }
        },
    );
    upid_reply(upid)
}

/// `net0` with `mac` as its address: PVE gives a clone new addresses, and
/// a new VM one where its `MODEL[=MAC]` names none.
pub(super) fn replace_mac(net0: &str, mac: &str) -> String {
    let mut parts: Vec<String> = net0.split(',').map(str::to_string).collect();
    let model = parts[0].split('=').next().unwrap_or_default().to_owned();
    parts[0] = format!("{model}={mac}");
    parts.join(",")
}

pub fn get_config(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let st = lock(shared);
    let vm = existing(&st, vmid(p))?;
    Ok(http::ok(st.config_json(&vm)))
}

const NOT_OPTIONS: [&str; 6] = [
    "node",
    "vmid",
    "delete",
    "digest",
    "skiplock",
    "background_delay",
];

pub fn set_config(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    if std::mem::take(&mut st.faults.lock_timeout_next_config) {
        return Err(fail(format!(
            "can't lock file '/var/lock/qemu-server/lock-{id}.conf' - got timeout"
        )));
    }
    if let Some(l) = &vm.lock {
        return Err(fail(format!("VM is locked ({l})")));
    }
    let node = vm.node;
    let vm = st.vms.get_mut(&id).ok_or_else(|| missing(id))?;
    for (k, v) in p.iter().filter(|(k, _)| !NOT_OPTIONS.contains(&k.as_str())) {
        let value = if k == "tags" {
            normalise_tags(v)
        } else {
            v.clone()
        };
        vm.config.insert(k.clone(), value);
    }
    for key in p
        .get("delete")
        .map(|d| d.split([',', ';', ' ']).collect::<Vec<_>>())
        .unwrap_or_default()
    {
        vm.config.remove(key);
    }
    let after = st.faults.task_time;
    upid_reply(spawn_task(
        shared,
        &mut st,
        [&node, "qmconfig", &id.to_string()],
        after,
        |_| Ok(()),
    ))
}

/// Lower-cased, de-duplicated, sorted, `;`-joined, as Proxmox stores tags.
fn normalise_tags(text: &str) -> String {
    let mut tags: Vec<String> = text
        .split([';', ',', ' '])
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect();
    tags.sort();
    tags.dedup();
    tags.join(";")
}

pub fn resize(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    let disk = p["disk"].clone();
    let Some(current) = vm.config.get(&disk).cloned() else {
        return Err((400, format!("disk '{disk}' does not exist")));
    };
    let size = p["size"].clone();
    let after = st.faults.task_time;
    let upid = spawn_task(
        shared,
        &mut st,
        [&vm.node, "resize", &id.to_string()],
        after,
        move |st| {
            let now = gib(&current).ok_or("unable to parse size")?;
            let want = match size.strip_prefix('+') {
                Some(add) => {
                    now + add
                        .trim_end_matches('G')
                        .parse::<u64>()
                        .map_err(|e| e.to_string())?
                }
                None => size
                    .trim_end_matches('G')
                    .parse::<u64>()
                    .map_err(|e| e.to_string())?,
            };
            if want < now {
                return Err("shrinking disks is not supported".into());
            }
            let vm = st.vms.get_mut(&id).ok_or("vm vanished")?;
            let resized = current.replace(&format!("size={now}G"), &format!("size={want}G"));
            vm.config.insert(disk, resized);
            Ok(())
        },
    );
    upid_reply(upid)
}

fn gib(disk: &str) -> Option<u64> {
    disk.split(',')
        .find_map(|p| p.strip_prefix("size=")?.strip_suffix('G')?.parse().ok())
}

pub fn status(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let st = lock(shared);
    let vm = existing(&st, vmid(p))?;
    let state = if vm.running { "running" } else { "stopped" };
    let mut data = json!({
        "status": state, "qmpstatus": state, "vmid": vmid(p), "name": vm.name(),
        "agent": vm.config.get("agent").map_or(0, |a| u64::from(a.starts_with('1'))),
        "cpus": 1, "maxmem": 1_073_741_824u64, "uptime": 0,
    });
    if vm.running {
        data["pid"] = Value::from("4242");
    }
    if vm.is_template() {
        data["template"] = Value::from(1);
    }
    if let Some(l) = &vm.lock {
        data["lock"] = Value::from(l.clone());
    }
    Ok(http::ok(data))
}
