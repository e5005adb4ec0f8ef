//! `oxbake build`: which roles to bake, in which order, and why.
//!
//! The roles asked for are baked, each after its ancestors. An ancestor is
//! baked only when no image was built from its current inputs (or with
//! `refresh`). With `if_changed`, a role whose current inputs already have an
//! image is skipped, and the outcome says which image that is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

mod bake;
mod cleanup;
mod image;
mod machine;
mod phase;
mod record;

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

/// Bakes `roles` (each after its out-of-date ancestors).
pub async fn build(
    ctx: &Context<'_>,
    roles: &[String],
    opts: &BuildOptions,
) -> Result<Vec<BuildOutcome>, BuildError> {
    let mut outcomes = Vec::new();
    // Each role's inputs hash, computed once: a child's parent was ordered,
    // and hashed, before it.
    let mut hashes: BTreeMap<String, Sha256> = BTreeMap::new();
    for (role, requested) in order(ctx, roles) {
        if *ctx.cancel.borrow() {
            return Err(BuildError::Interrupted);
        }
        // Held while the role is judged and baked: a second build of it
        // waits, then finds what the first one recorded.
        let _lock =
            RoleLock::acquire(&ctx.dirs().locks(), &role, &ctx.progress, &ctx.cancel).await?;
        let inputs = role_inputs(ctx, &role)?;
        let hash: Sha256 = inputs.hash.parse()?;
        hashes.insert(role.clone(), hash.clone());
        let existing = ctx.registry.find_by_inputs(&role, &hash)?;
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
            outcomes.push(BuildOutcome::UpToDate {
                role,
                version: found.version.to_string(),
                inputs: inputs.hash,
            });
            continue;
        }
        let (record, log) = build_one(ctx, &role, inputs, hash, &hashes, opts).await?;
        outcomes.push(BuildOutcome::Built {
            role,
            version: record.version.to_string(),
            inputs: record.inputs.to_string(),
            log,
        });
    }
    Ok(outcomes)
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
        base: ctx.base_identity.to_owned(),
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
    hashes: &BTreeMap<String, Sha256>,
    opts: &BuildOptions,
) -> Result<(ImageRecord, PathBuf), BuildError> {
    let resolved = Role::resolve(ctx.project, role)
        .ok_or_else(|| crate::role::inputs::InputsError::UnknownRole(role.to_owned()))?;
    let parent = match &resolved.recipe().from {
        Some(parent) => {
            let parent = parent.get_ref();
            let hash = match hashes.get(parent) {
                Some(hash) => hash.clone(),
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
