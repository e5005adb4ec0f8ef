//! The deploy rows' environment `fx` already runs one VM before each
//! deploy: `fx-base-1`, an older version of `base`, made and started
//! through oxbake's own target code, so a deploy is a rolling replacement
//! and the rows can check that the earlier VM was left alone.

use oxbake::pipeline::deploy::tag::DeployTag;
use oxbake::target::{Labels, Source, Target, VmHandle, VmKind, VmSpec};

/// Creates and starts `fx-base-1` from `source` on `target`.
pub fn start(runtime: &tokio::runtime::Runtime, target: &dyn Target, source: Source) -> VmHandle {
    let tag = DeployTag {
        deploy_id: "0a0b0c0d".into(),
        slot: 1,
        seed: "ea71e4".into(),
    };
    let spec = VmSpec {
        name: "fx-base-1".into(),
        source,
        cores: 1,
        memory_mib: 512,
        disk_gib: None,
        labels: Labels {
            env: Some("fx".into()),
            version: Some("2026.01.01.1".into()),
            ..Labels::new(tag.to_string(), "base", VmKind::Deployed)
        },
        network: None,
        node: None,
    };
    runtime.block_on(async {
        let vm = target.create_vm(&spec).await.expect("earlier VM");
        target.start(&vm).await.expect("start the earlier VM");
        vm
    })
}
