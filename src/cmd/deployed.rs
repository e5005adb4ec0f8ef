//! `oxbake inventory ENV`, `oxbake status ENV` and `oxbake ssh ENV VM`: what
//! reads a deployed environment (see [`crate::pipeline::deploy::deployed`]).

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use super::Ctx;
use super::deploy::with_deployer;
use crate::error::Error;
use crate::registry::Registry;
use crate::report::age::{age, age_seconds};
use crate::report::{inventory, table};

/// How long a running VM's SSH server is waited for.
const PROBE: Duration = Duration::from_secs(15);

pub async fn inventory(ctx: &Ctx<'_>, env: &str) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    with_deployer(ctx, &project, &registry, (env, None), async |d| {
        let vms = d.deployed(PROBE).await?;
        for vm in vms.iter().filter(|vm| vm.ssh.is_none()) {
            ctx.progress.warn(format!(
                "vm `{}` is not running or does not answer: left out of the inventory",
                vm.name
            ));
        }
        let access = d.access();
        ctx.out.result(
            &inventory::yaml(env, &vms, &access),
            &inventory::json(env, &vms, &access),
        );
        Ok(())
    })
    .await
}

pub async fn status(ctx: &Ctx<'_>, env: &str) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let unhealthy = with_deployer(ctx, &project, &registry, (env, None), async |d| {
        let vms = d.deployed(PROBE).await?;
        let mut unhealthy = Vec::new();
        let mut rows = Vec::new();
        let mut docs = Vec::new();
        let now = jiff::Timestamp::now();
        for vm in &vms {
            let health = if !vm.running {
                "stopped".to_owned()
            } else {
                match d.prove_deployed(vm).await {
                    Ok(()) => "healthy".to_owned(),
                    Err(e) => format!("failing: {}", crate::error_chain::chain(&e)),
                }
            };
            if health != "healthy" {
                unhealthy.push(vm.name.clone());
            }
            let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
            rows.push(vec![
                vm.name.clone(),
                vm.role.clone(),
                or_dash(vm.version.clone()),
                or_dash(vm.address.map(|a| a.to_string())),
                or_dash(vm.node.clone()),
                or_dash(vm.created.map(|c| age(c, now))),
                if vm.running { "running" } else { "stopped" }.into(),
                health.clone(),
            ]);
            let mut doc = serde_json::to_value(vm).unwrap_or_default();
            doc["health"] = json!(health);
            if let Some(created) = vm.created {
                doc["created"] = json!(created.to_string());
                doc["age_seconds"] = json!(age_seconds(created, now));
            }
            docs.push(doc);
        }
        let text = if vms.is_empty() {
            format!("environment `{env}` has no VMs (deploy it with `oxbake deploy {env}`)\n")
        } else {
            let headers = [
                "vm", "role", "version", "address", "node", "age", "state", "health",
            ];
            table::table(&headers, &rows)
        };
        ctx.out.result(&text, &json!({ "env": env, "vms": docs }));
        Ok(unhealthy)
    })
    .await?;
    match unhealthy.len() {
        0 => Ok(()),
        n => Err(Error::Failed(format!(
            "environment `{env}`: {n} VM(s) not healthy: {}",
            unhealthy.join(", ")
        ))),
    }
}

pub async fn ssh(ctx: &Ctx<'_>, env: &str, name: &str, command: &[String]) -> Result<(), Error> {
    let project = ctx.checked_project()?;
    let registry = Registry::for_project(&project.root);
    let found = with_deployer(ctx, &project, &registry, (env, None), async |d| {
        let vms = d.deployed(PROBE).await?;
        Ok(vms
            .into_iter()
            .find(|vm| vm.name == name || vm.slot.as_deref() == Some(name))
            .map(|vm| (vm, d.access())))
    })
    .await?;
    let Some((vm, access)) = found else {
        return Err(Error::Usage(format!(
            "environment `{env}` has no vm or slot `{name}` (`oxbake status {env}` lists them)"
        )));
    };
    let Some(args) = vm.ssh_args(&access) else {
        return Err(Error::Failed(format!(
            "vm `{}` is not running, or its SSH server does not answer",
            vm.name
        )));
    };
    let mut ssh = Command::new("ssh");
    ssh.args(&args);
    // Everything after the destination is the remote command.
    ssh.args(command);
    if !ctx.out.json {
        // The terminal is handed to OpenSSH; its exit code becomes oxbake's.
        let e = ssh.exec();
        return Err(Error::Failed(format!("cannot run ssh: {e}")));
    }
    if command.is_empty() {
        return Err(Error::Usage(
            "--json runs a command and reports its output: give one after `--`".into(),
        ));
    }
    let out = ssh
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Failed(format!("cannot run ssh: {e}")))?;
    let code = out.status.code();
    let doc = json!({
        "env": env,
        "vm": vm.name,
        "exit": code,
        "stdout": String::from_utf8_lossy(&out.stdout),
        "stderr": String::from_utf8_lossy(&out.stderr),
    });
    ctx.out.result("", &doc);
    match code {
        Some(0) => Ok(()),
        _ => Err(Error::Failed(format!(
            "vm `{}`: the command exited with {}",
            vm.name,
            code.map_or("a signal".into(), |c| c.to_string())
        ))),
    }
}
