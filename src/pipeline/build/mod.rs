//! `oxbake build`: which roles to bake, in which order, and why.
//!
//! The roles asked for are baked, each after its ancestors. An ancestor is
//! baked only when no image was built from its current inputs (or with
//! `refresh`). With `if_changed`, a role whose current inputs already have an
//! image is skipped, and the outcome says which image that is. Roles whose
//! parent is decided are judged and baked at the same time, at most
//! [`jobs`] at once ([`dag`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::watch;

mod bake;
mod cleanup;
pub mod dag;
mod image;
mod machine;
mod phase;
mod record;

use crate::config::TargetSettings;
use crate::pipeline::cancel;
use crate::pipeline::context::Context;
use crate::pipeline::role_lock::RoleLock;
use crate::pipeline::{BuildError, RegistryLineage};
use crate::registry::{ImageRecord, Sha256};
use crate::role::Role;
use crate::role::inputs::{self, Inputs};
use bake::Builder;

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Skip a requested role whose inputs already have an image.
    pub if_changed: bool,
    /// Bake every ancestor of the requested roles again, up to date or not
    /// (to pick up package updates).
    pub refresh: bool,
    /// Leave a failed builder VM running and say how to reach it.
    pub keep_on_failure: bool,
    /// How many roles are baked at once (`None`: as many as the target
    /// allows, see [`jobs()`]).
    pub jobs: Option<u32>,
}

/// What happened to one role.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum BuildOutcome {
    Built {
        role: String,
        version: String,
        inputs: String,
        log: PathBuf,
    },
    UpToDate {
        role: String,
        version: String,
        inputs: String,
    },
}

/// Bakes `roles` (each after its out-of-date ancestors), roles whose
/// parent is decided at the same time, at most [`jobs`] at once. The first
/// failure starts no other role and stops the running ones as an interrupt
/// does (their VMs are removed); the build then ends with that failure.
/// Outcomes come ancestors first, whatever order the bakes ended in.
pub async fn build(
    ctx: &Context<'_>,
    roles: &[String],
    opts: &BuildOptions,
) -> Result<Vec<BuildOutcome>, BuildError> {
    let order = order(ctx, roles);
    let jobs = jobs(ctx, opts.jobs);
    if order.len() > 1 && jobs > 1 {
        ctx.progress.info(format!(
            "{} role(s) to consider, at most {jobs} baked at once",
            order.len()
        ));
    }
    let parents = parents(ctx, &order);
    let (stop, stopped) = watch::channel(false);
    // The bakes see an interrupt and a sibling's failure alike.
    let bakes = Context {
        progress: ctx.progress.clone(),
        cancel: stopped,
        ..*ctx
    };
    // Each role's inputs hash, computed once: a child starts after its
    // parent was decided, and hashed.
    let hashes: Mutex<BTreeMap<String, Sha256>> = Mutex::default();
    let run = dag::run(&parents, jobs, &bakes.cancel, |i| {
        let (role, requested) = &order[i];
        let (bakes, hashes, stop) = (&bakes, &hashes, &stop);
        async move {
            let result = judge_and_bake(bakes, role, *requested, hashes, opts).await;
            if result.is_err() {
                let _ = stop.send(true);
            }
            result
        }
    });
    let forward = async {
        cancel::interrupted(&ctx.cancel).await;
        let _ = stop.send(true);
        std::future::pending::<()>().await;
    };
    let results = tokio::select! {
        results = run => results,
        () = forward => unreachable!("forwarding never ends"),
    };
    let (mut outcomes, mut failures) = (Vec::new(), Vec::new());
    for result in results.into_iter().flatten() {
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => failures.push(e),
        }
    }
    if cancel::is_set(&ctx.cancel) {
        return Err(BuildError::Interrupted);
    }
    // The first real failure; the others were stopped because of it.
    let first = failures.iter().position(|e| !e.is_interrupted());
    match first.map(|i| failures.swap_remove(i)) {
        Some(e) => Err(e),
        None if !failures.is_empty() => Err(BuildError::Interrupted),
        None => Ok(outcomes),
    }
}

/// `asked` (`--jobs`), or as many roles at once as the target allows: a
/// Proxmox target's `build_jobs`; on this machine, as many builder VMs
/// (`[defaults] memory_mib`) as fit its free memory, at most one per core.
pub fn jobs(ctx: &Context<'_>, asked: Option<u32>) -> usize {
    let config = &ctx.project.config;
    let memory = u64::from(config.defaults.memory_mib);
    choose_jobs(asked, config.targets.get(ctx.target_name), || {
        crate::pipeline::jobs::local(Some(memory))
    })
}

/// [`jobs`], with what this machine allows asked of `local` only when it
/// is needed.
fn choose_jobs(
    asked: Option<u32>,
    settings: Option<&TargetSettings>,
    local: impl FnOnce() -> usize,
) -> usize {
    let n = match (asked, settings) {
        (Some(n), _) => n as usize,
        (None, Some(TargetSettings::Proxmox(p))) => p.build_jobs as usize,
        (None, _) => local(),
    };
    n.max(1)
}

/// One role: waits for its lock, decides whether it is up to date, bakes it
/// if not.
async fn judge_and_bake(
    ctx: &Context<'_>,
    role: &str,
    requested: bool,
    hashes: &Mutex<BTreeMap<String, Sha256>>,
    opts: &BuildOptions,
) -> Result<BuildOutcome, BuildError> {
    if cancel::is_set(&ctx.cancel) {
        return Err(BuildError::Interrupted);
    }
    // Held while the role is judged and baked: a second build of it
    // waits, then finds what the first one recorded.
    let _lock = RoleLock::acquire(&ctx.dirs().locks(), role, &ctx.progress, &ctx.cancel).await?;
    let inputs = role_inputs(ctx, role)?;
    let hash: Sha256 = inputs.hash.parse()?;
    lock(hashes).insert(role.to_owned(), hash.clone());
    let existing = ctx.registry.find_by_inputs(role, &hash)?;
    let skip = match (&existing, requested) {
        (Some(_), true) => opts.if_changed,
        (Some(_), false) => !opts.refresh,
        (None, _) => false,
    };
    if let (true, Some(found)) = (skip, existing) {
        ctx.progress.info(format!(
            "{role}: up to date: {role}@{} was built from inputs {}",
            found.version,
            &inputs.hash[..12]
        ));
        return Ok(BuildOutcome::UpToDate {
            role: role.to_owned(),
            version: found.version.to_string(),
            inputs: inputs.hash,
        });
    }
    let (record, log) = build_one(ctx, role, inputs, hash, hashes, opts).await?;
    Ok(BuildOutcome::Built {
        role: role.to_owned(),
        version: record.version.to_string(),
        inputs: record.inputs.to_string(),
        log,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Held only to read or insert one hash: a panic elsewhere cannot leave
    // the map half-written.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// For each role of `order`, the index of its parent there (the parent of
/// an ordered role is always ordered before it).
fn parents(ctx: &Context<'_>, order: &[(String, bool)]) -> Vec<Option<usize>> {
    order
        .iter()
        .map(|(role, _)| {
            let recipe = ctx.project.recipes.get(role)?;
            let parent = recipe.recipe.from.as_ref()?.get_ref();
            order.iter().position(|(r, _)| r == parent)
        })
        .collect()
}

/// Ancestors first, each role once; `true` marks the roles asked for.
fn order(ctx: &Context<'_>, roles: &[String]) -> Vec<(String, bool)> {
    let mut order: Vec<(String, bool)> = Vec::new();
    for role in roles {
        for file in ctx.project.lineage(role) {
            let name = file.recipe.role.get_ref().clone();
            let requested = roles.contains(&name);
            if !order.iter().any(|(r, _)| *r == name) {
                order.push((name, requested));
            }
        }
    }
    order
}

/// The inputs of `role` as this build sees them.
pub fn role_inputs(ctx: &Context<'_>, role: &str) -> Result<Inputs, BuildError> {
    let lineage = RegistryLineage {
        registry: ctx.registry,
        bases: ctx.bases.clone(),
    };
    Ok(inputs::inputs(ctx.project, role, &lineage)?)
}

/// A role resolved once for its bake: the role as the project defines it,
/// its inputs and their hash, and the image of its parent it starts from.
pub(super) struct ResolvedRole<'p> {
    pub role: Role<'p>,
    pub inputs: Inputs,
    pub hash: Sha256,
    pub parent: Option<ImageRecord>,
}

async fn build_one(
    ctx: &Context<'_>,
    role: &str,
    inputs: Inputs,
    hash: Sha256,
    hashes: &Mutex<BTreeMap<String, Sha256>>,
    opts: &BuildOptions,
) -> Result<(ImageRecord, PathBuf), BuildError> {
    let resolved = Role::resolve(ctx.project, role)
        .ok_or_else(|| crate::role::inputs::InputsError::UnknownRole(role.to_owned()))?;
    let parent = match &resolved.recipe().from {
        Some(parent) => {
            let parent = parent.get_ref();
            let known = lock(hashes).get(parent).cloned();
            let hash = match known {
                Some(hash) => hash,
                None => role_inputs(ctx, parent)?.hash.parse()?,
            };
            let record = ctx.registry.find_by_inputs(parent, &hash)?.ok_or_else(|| {
                BuildError::ParentMissing {
                    role: role.to_owned(),
                    parent: parent.to_owned(),
                }
            })?;
            Some(record)
        }
        None => None,
    };
    let resolved = ResolvedRole {
        role: resolved,
        inputs,
        hash,
        parent,
    };
    let builder = Builder::new(ctx, resolved, opts).await?;
    builder.run().await
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn jobs_are_asked_or_the_proxmox_setting_or_what_this_machine_allows() {
        let text = "[project]\nname = \"ox\"\n[targets.pve]\nkind = \"proxmox\"\n\
            endpoint = \"https://pve:8006\"\nnodes = [\"pve1\"]\nstorage = \"s\"\n\
            vmid_range = [9000, 9999]\nbase_template = 9000\ntoken_id = \"a@pve!b\"\n";
        let config = crate::config::parse(Path::new("oxbake.toml"), text).unwrap();
        let pve = config.targets.get("pve");
        let unused = || panic!("this machine is not asked");
        assert_eq!(
            choose_jobs(None, pve, unused),
            2,
            "build_jobs defaults to 2"
        );
        assert_eq!(choose_jobs(Some(5), pve, unused), 5);
        let config =
            crate::config::parse(Path::new("oxbake.toml"), &format!("{text}build_jobs = 3\n"))
                .unwrap();
        assert_eq!(choose_jobs(None, config.targets.get("pve"), unused), 3);
        assert_eq!(choose_jobs(None, None, || 4), 4, "the local target");
        assert_eq!(choose_jobs(None, None, || 0), 1);
    }
}
