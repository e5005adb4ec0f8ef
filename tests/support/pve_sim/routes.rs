//! Dispatch: path → schema endpoint, parameter checks, then the handler.

use std::collections::BTreeMap;
use std::time::Duration;

use super::http::{self, Reply, Req};
use super::state::{NODE, Shared, SimTask, State, lock};
use super::{import_ops, misc_ops, power_ops, schema, vm_ops};

pub type Params = BTreeMap<String, String>;

/// The task owner as Proxmox writes it into UPIDs for token requests.
pub const TASK_USER: &str = "oxbake@pve!test";

pub fn route(shared: &Shared, req: &Req) -> Reply {
    let seg: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let Some((endpoint, path_params)) = endpoint(&req.method, &seg) else {
        let msg = format!("Method '{} /{}' not implemented", req.method, seg.join("/"));
        return http::error(501, &msg, false);
    };
    let mut params = req.params.clone();
    params.extend(path_params);
    let legacy = {
        let mut st = lock(shared);
        if req.method == "GET" && st.faults.unavailable_gets > 0 {
            st.faults.unavailable_gets -= 1;
            return http::error(503, "Service Unavailable", false);
        }
        st.faults.legacy_errors
    };
    let errors = schema::check(&endpoint, &params);
    if !errors.is_empty() {
        return http::param_errors(errors, legacy);
    }
    if let Err((status, msg)) = on_its_node(shared, &endpoint, &params) {
        return http::error(status, &msg, legacy);
    }
    let result = dispatch(shared, &endpoint, &params, req);
    match result {
        Ok(reply) => reply,
        Err((status, msg)) => http::error(status, &msg, legacy),
    }
}

/// An error reply before `legacy` is applied.
pub type Fail = (u16, String);

fn endpoint(method: &str, seg: &[&str]) -> Option<(String, Vec<(String, String)>)> {
    let p = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let (path, params) = match seg {
        ["cluster", "nextid"] => ("/cluster/nextid".to_string(), vec![]),
        ["cluster", "resources"] => ("/cluster/resources".to_string(), vec![]),
        ["version"] => ("/version".to_string(), vec![]),
        ["access", "permissions"] => ("/access/permissions".to_string(), vec![]),
        ["nodes", node, "qemu"] => ("/nodes/{node}/qemu".to_string(), p(&[("node", node)])),
        ["nodes", node, "qemu", vmid] => (
            "/nodes/{node}/qemu/{vmid}".to_string(),
            p(&[("node", node), ("vmid", vmid)]),
        ),
        ["nodes", node, "qemu", vmid, rest @ ..] => (
            format!("/nodes/{{node}}/qemu/{{vmid}}/{}", rest.join("/")),
            p(&[("node", node), ("vmid", vmid)]),
        ),
        ["nodes", node, "tasks", upid, "status"] => (
            "/nodes/{node}/tasks/{upid}/status".to_string(),
            p(&[("node", node), ("upid", upid)]),
        ),
        ["nodes", node, "storage", storage, "upload"] => (
            "/nodes/{node}/storage/{storage}/upload".to_string(),
            p(&[("node", node), ("storage", storage)]),
        ),
        ["nodes", node, "storage", storage, "status"] => (
            "/nodes/{node}/storage/{storage}/status".to_string(),
            p(&[("node", node), ("storage", storage)]),
        ),
        ["nodes", node, "storage", storage, "content"] => (
            "/nodes/{node}/storage/{storage}/content".to_string(),
            p(&[("node", node), ("storage", storage)]),
        ),
        ["nodes", node, "storage", storage, "content", volume] => (
            "/nodes/{node}/storage/{storage}/content/{volume}".to_string(),
            p(&[("node", node), ("storage", storage), ("volume", volume)]),
        ),
        _ => return None,
    };
    Some((format!("{method} {path}"), params))
}

fn dispatch(shared: &Shared, endpoint: &str, p: &Params, req: &Req) -> Result<Reply, Fail> {
    let q = "/nodes/{node}/qemu/{vmid}";
    let ep = endpoint.replace(q, "Q");
    match ep.as_str() {
        "GET /cluster/nextid" => misc_ops::nextid(shared, p),
        "GET /cluster/resources" => misc_ops::resources(shared),
        "GET /version" => import_ops::version(shared),
        "GET /access/permissions" => import_ops::permissions(shared, p),
        "GET /nodes/{node}/storage/{storage}/status" => import_ops::storage_status(shared, p),
        "POST /nodes/{node}/qemu" => import_ops::create(shared, p),
        "GET /nodes/{node}/tasks/{upid}/status" => misc_ops::task_status(shared, p),
        "POST /nodes/{node}/storage/{storage}/upload" => misc_ops::upload(shared, p, req),
        "GET /nodes/{node}/storage/{storage}/content" => misc_ops::content(shared, p),
        "DELETE /nodes/{node}/storage/{storage}/content/{volume}" => {
            misc_ops::delete_volume(shared, p)
        }
        "POST Q/clone" => vm_ops::clone(shared, p),
        "GET Q/config" => vm_ops::get_config(shared, p),
        "POST Q/config" => vm_ops::set_config(shared, p),
        "PUT Q/resize" => vm_ops::resize(shared, p),
        "GET Q/status/current" => vm_ops::status(shared, p),
        "POST Q/status/start" => power_ops::start(shared, p),
        "POST Q/status/shutdown" => power_ops::shutdown(shared, p),
        "POST Q/status/stop" => power_ops::stop(shared, p),
        "POST Q/template" => power_ops::template(shared, p),
        "DELETE Q" => power_ops::destroy(shared, p),
        "POST Q/agent/ping" => power_ops::agent(shared, p, false),
        "GET Q/agent/network-get-interfaces" => power_ops::agent(shared, p, true),
        other => Err((501, format!("simulator: `{other}` not implemented"))),
    }
}

/// Starts a worker task of type `kind` for `id` on `node` (the node that
/// does the work: its UPID names it, and only it knows the task's status)
/// whose `effect` runs after `after`; the effect's error becomes the task's
/// exit status.
pub fn spawn_task<F>(
    shared: &Shared,
    st: &mut State,
    [node, kind, id]: [&str; 3],
    after: Duration,
    effect: F,
) -> String
where
    F: FnOnce(&mut State) -> Result<(), String> + Send + 'static,
{
    let (at_once, never) = (Duration::ZERO, |_: &State| true);
    spawn_task_until(
        shared,
        st,
        [node, kind, id],
        (after, at_once),
        never,
        effect,
    )
}

/// [`spawn_task`] whose effect waits, after `after`, until `done` holds
/// or `limit` more has passed (a shutdown that lasts as long as the guest
/// takes to power off).
pub fn spawn_task_until<D, F>(
    shared: &Shared,
    st: &mut State,
    [node, kind, id]: [&str; 3],
    (after, limit): (Duration, Duration),
    done: D,
    effect: F,
) -> String
where
    D: Fn(&State) -> bool + Send + 'static,
    F: FnOnce(&mut State) -> Result<(), String> + Send + 'static,
{
    st.next_pid += 1;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let upid = format!(
        "UPID:{node}:{:08X}:{:08X}:{:08X}:{kind}:{id}:{TASK_USER}:",
        st.next_pid, 0x00AB_CDEFu32, start as u32
    );
    let after = st.faults.task_times.get(kind).copied().unwrap_or(after);
    let running = st.running.entry(kind.to_string()).or_default();
    *running += 1;
    let now = *running;
    let most = st.most_running.entry(kind.to_string()).or_default();
    *most = (*most).max(now);
    let kind_key = kind.to_string();
    st.tasks.insert(
        upid.clone(),
        SimTask {
            upid: upid.clone(),
            node: node.to_string(),
            kind: kind.to_string(),
            exitstatus: None,
        },
    );
    let (shared, key) = (shared.clone(), upid.clone());
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let deadline = tokio::time::Instant::now() + limit;
        while !done(&lock(&shared)) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut st = lock(&shared);
        if let Some(running) = st.running.get_mut(&kind_key) {
            *running -= 1;
        }
        let exit = match effect(&mut st) {
            Ok(()) => "OK".to_string(),
            Err(msg) => msg,
        };
        if let Some(task) = st.tasks.get_mut(&key) {
            task.exitstatus = Some(exit);
        }
    });
    upid
}

/// A guest is reached through the node it lives on: on any other node its
/// configuration file does not exist.
fn on_its_node(shared: &Shared, endpoint: &str, p: &Params) -> Result<(), Fail> {
    if !endpoint.contains("/nodes/{node}/qemu/{vmid}") {
        return Ok(());
    }
    let (node, id) = (p.get("node").map_or("", String::as_str), vmid(p));
    match lock(shared).vms.get(&id) {
        Some(vm) if vm.node != node => Err(missing_on(node, id)),
        _ => Ok(()),
    }
}

pub fn vmid(p: &Params) -> u32 {
    p.get("vmid").and_then(|v| v.parse().ok()).unwrap_or(0)
}

pub fn missing(vmid: u32) -> Fail {
    missing_on(NODE, vmid)
}

pub fn missing_on(node: &str, vmid: u32) -> Fail {
    (
        500,
        format!("Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist"),
    )
}
