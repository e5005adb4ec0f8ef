//! Handlers that change a guest's state: start, shutdown, stop, template,
//! destroy, and the guest agent.

use std::time::Duration;

use serde_json::json;

use super::http::{self, Reply};
use super::routes::{Fail, Params, missing, spawn_task, spawn_task_until, vmid};
use super::state::{Shared, lock};
use super::vm_ops::{existing, fail, upid_reply};

pub fn start(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    let after = st.faults.task_time;
    let upid = spawn_task(
        shared,
        &mut st,
        [&vm.node, "qmstart", &id.to_string()],
        after,
        move |st| {
            let vm = st.vms.get(&id).cloned().ok_or("vm vanished")?;
            if vm.is_template() {
                return Err("you can't start a vm if it's a template".into());
            }
            if let Some(l) = &vm.lock {
                return Err(format!("VM is locked ({l})"));
            }
            if vm.running {
                return Err(format!("VM {id} already running"));
            }
            st.guests.clone().start(id, &vm)?;
            let vm = st.vms.get_mut(&id).ok_or("vm vanished")?;
            vm.running = true;
            vm.agent_calls = 0;
            st.record_power(id, true);
            Ok(())
        },
    );
    upid_reply(upid)
}

pub fn shutdown(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    let timeout = p.get("timeout").and_then(|t| t.parse().ok()).unwrap_or(60);
    let obeys = vm.running && st.guests.powers_off(id, &st.faults);
    let after = if obeys || !vm.running {
        st.faults.task_time
    } else {
        Duration::from_secs(timeout)
    };
    // An obeying guest's task ends when it is off, at most `timeout` later.
    let limit = Duration::from_secs(if obeys { timeout } else { 0 });
    let upid = spawn_task_until(
        shared,
        &mut st,
        [&vm.node, "qmshutdown", &id.to_string()],
        (after, limit),
        move |st| st.guests.powered_off(id),
        move |st| {
            let off = st.guests.powered_off(id);
            let vm = st.vms.get_mut(&id).ok_or("vm vanished")?;
            if !vm.running {
                return Err(format!("VM {id} not running"));
            }
            if !obeys || !off {
                return Err("VM quit/powerdown failed - got timeout".into());
            }
            vm.running = false;
            st.guests.stop(id);
            st.record_power(id, false);
            Ok(())
        },
    );
    upid_reply(upid)
}

pub fn stop(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    let after = st.faults.task_time;
    let upid = spawn_task(
        shared,
        &mut st,
        [&vm.node, "qmstop", &id.to_string()],
        after,
        move |st| {
            let vm = st.vms.get_mut(&id).ok_or("vm vanished")?;
            let was = std::mem::replace(&mut vm.running, false);
            st.guests.stop(id);
            if was {
                st.record_power(id, false);
            }
            Ok(())
        },
    );
    upid_reply(upid)
}

pub fn template(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    if let Some(l) = &vm.lock {
        return Err(fail(format!("VM is locked ({l})")));
    }
    if vm.is_template() {
        return Err(fail("you can't convert a template to a template"));
    }
    if vm.running {
        return Err(fail("you can't convert a VM to template if VM is running"));
    }
    if st.faults.fail_convert {
        return Err(fail(format!(
            "rename volume 'vm-{id}-disk-0' failed - storage error (simulated)"
        )));
    }
    let after = st.faults.task_time;
    let upid = spawn_task(
        shared,
        &mut st,
        [&vm.node, "qmtemplate", &id.to_string()],
        after,
        move |st| {
            let vm = st.vms.get_mut(&id).ok_or("vm vanished")?;
            vm.config.insert("template".into(), "1".into());
            for (k, v) in vm.config.iter_mut() {
                if k.starts_with("scsi") && !v.contains("media=cdrom") {
                    *v = v.replace(&format!("vm-{id}-disk"), &format!("base-{id}-disk"));
                }
            }
            Ok(())
        },
    );
    upid_reply(upid)
}

pub fn destroy(shared: &Shared, p: &Params) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    if vm.running {
        return Err(fail(format!("VM {id} is running - destroy failed")));
    }
    let after = st.faults.task_time;
    let upid = spawn_task(
        shared,
        &mut st,
        [&vm.node, "qmdestroy", &id.to_string()],
        after,
        move |st| {
            let vm = st.vms.get(&id).ok_or("vm vanished")?;
            if let Some(l) = &vm.lock {
                return Err(format!("VM is locked ({l})"));
            }
            if st.vms.values().any(|v| v.linked_from == Some(id)) {
                return Err(format!(
                    "base volume 'local-lvm:base-{id}-disk-0' is still in use by linked cloned"
                ));
            }
            st.vms.remove(&id);
            Ok(())
        },
    );
    upid_reply(upid)
}

pub fn agent(shared: &Shared, p: &Params, interfaces: bool) -> Result<Reply, Fail> {
    let id = vmid(p);
    let mut st = lock(shared);
    let vm = existing(&st, id)?;
    if !vm
        .config
        .get("agent")
        .is_some_and(|a| a.starts_with('1') || a.contains("enabled=1"))
    {
        return Err(fail("No QEMU guest agent configured"));
    }
    if !vm.running {
        return Err(fail(format!("VM {id} is not running")));
    }
    let vm = st.vms.get_mut(&id).ok_or_else(|| missing(id))?;
    vm.agent_calls += 1;
    let vm = vm.clone();
    let answer = st.guests.interfaces(id, &vm, &st.faults).map_err(fail)?;
    Ok(http::ok(
        json!({ "result": if interfaces { answer } else { json!({}) } }),
    ))
}
