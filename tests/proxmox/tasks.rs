//! Tasks live on the node that does the work: its UPID names that node,
//! and only that node knows the task's status.

use oxbake::target::proxmox::{Upid, encode_component};
use serde_json::Value;

use super::*;

/// A stopped guest on `node`, copied from the base template.
fn guest_on(sim: &PveSim, node: &str) -> SimVm {
    let mut vm = sim.vm(BASE_VMID).unwrap();
    vm.node = node.into();
    vm.config.remove("template");
    vm
}

async fn status_on(client: &PveClient, node: &str, upid: &Upid) -> Result<Value, PveError> {
    let path = format!(
        "/nodes/{node}/tasks/{}/status",
        encode_component(upid.as_str())
    );
    client.get(&path, Form::new()).await
}

#[tokio::test]
async fn a_task_names_its_node_and_only_that_node_knows_its_status() {
    let sim = PveSim::start().await;
    sim.add_node("pve2");
    sim.insert_vm(250, guest_on(&sim, "pve2"));
    let client = sim.client();

    let text: String = client
        .post("/nodes/pve2/qemu/250/status/start", Form::new())
        .await
        .unwrap();
    let upid: Upid = text.parse().unwrap();
    assert_eq!(upid.node, "pve2", "{text}");
    assert_eq!(upid.kind, "qmstart", "{text}");
    client
        .wait_task(&upid, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(sim.vm(250).unwrap().running);
    let here = status_on(&client, "pve2", &upid).await.unwrap();
    assert_eq!(here["node"], "pve2", "{here}");
    assert_eq!(here["exitstatus"], "OK", "{here}");

    let err = status_on(&client, NODE, &upid).await.unwrap_err();
    assert!(err.to_string().contains("no such task"), "{err}");
    let asked = format!("/nodes/{NODE}/tasks/");
    let answer = sim
        .requests()
        .into_iter()
        .rfind(|r| r.path.contains(&asked))
        .unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");

    // A clone runs on the source's node, even when `target` is another.
    let form = Form::new().int("newid", 251u32).text("target", "pve2");
    let path = format!("/nodes/{NODE}/qemu/{BASE_VMID}/clone");
    let text: String = client.post(&path, form).await.unwrap();
    let upid: Upid = text.parse().unwrap();
    assert_eq!((upid.node.as_str(), upid.kind.as_str()), (NODE, "qmclone"));
    client
        .wait_task(&upid, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(sim.vm(251).unwrap().node, "pve2");
    assert!(status_on(&client, "pve2", &upid).await.is_err());
}
