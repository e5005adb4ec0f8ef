//! `[environments.NAME]` in oxbake.toml: their shape is read as part of
//! [`crate::config::Config`]; [`validate`] is what `oxbake check` adds on top
//! of it, against the project's recipes, channels and targets.

mod addresses;
pub mod order;

use toml::Spanned;

pub use crate::config::{Environment, Network, Replace, RoleSettings};
use crate::config::{TargetSettings, limits};
use crate::diag::Diagnostics;
use crate::project::Project;

/// Checks every environment against the project's recipes, channels and
/// targets. Problems point into oxbake.toml.
pub fn validate(project: &Project) -> Diagnostics {
    let mut problems = Diagnostics::default();
    let source = &project.config.source;
    for (name, env) in &project.config.environments {
        let mut at = |offset: usize, message: String| problems.push(source.at(offset, message));
        let span = |keys: &[&str]| {
            let mut all = vec!["environments", name.as_str()];
            all.extend(keys);
            source.value_start(&all)
        };
        check_env(project, name, env, &span, &mut at);
    }
    problems
}

fn check_env(
    project: &Project,
    name: &str,
    env: &Environment,
    span: &dyn Fn(&[&str]) -> Option<usize>,
    at: &mut impl FnMut(usize, String),
) {
    let header = span(&[]).unwrap_or(0);
    if !crate::config::is_valid_name(name) {
        at(
            header,
            format!("environment name `{name}` must be lowercase letters, digits and `-`"),
        );
    }
    if !project
        .config
        .project
        .channels
        .contains(env.channel.get_ref())
    {
        let message = format!(
            "environment `{name}`: channel `{}` is not in [project] channels",
            env.channel.get_ref()
        );
        at(env.channel.span().start, message);
    }
    let target = env.target_name(&project.config.project.default_target);
    if target != "local" && !project.config.targets.contains_key(target) {
        at(
            header,
            format!("environment `{name}`: target `{target}` is not defined in [targets]"),
        );
    }
    for (role, settings) in &env.roles {
        check_role(project, name, role, settings, at);
        check_nodes(project, name, target, role, settings.get_ref(), at);
        check_sizes(name, role, settings, span, at);
        check_max_unavailable(name, role, settings.get_ref(), at);
    }
    for (offset, message) in order::after_problems(name, env) {
        at(offset, message);
    }
    if let Some(message) = addresses::prefix_problem(name, env.network.prefix) {
        at(span(&["network", "prefix"]).unwrap_or(header), message);
        return;
    }
    for (offset, message) in addresses::address_problems(name, env) {
        at(offset, message);
    }
}

/// A role's cores, memory and disk, when given, are within the bounds
/// every VM must keep.
fn check_sizes(
    env: &str,
    role: &str,
    settings: &Spanned<RoleSettings>,
    span: &dyn Fn(&[&str]) -> Option<usize>,
    at: &mut impl FnMut(usize, String),
) {
    let s = settings.get_ref();
    let sizes = [
        ("cores", s.cores, limits::CORES),
        ("memory_mib", s.memory_mib, limits::MEMORY_MIB),
        ("disk_gib", s.disk_gib, limits::DISK_GIB),
    ];
    for (key, value, limit) in sizes {
        if let Some(message) = value.and_then(|v| limit.problem(key, u64::from(v))) {
            let offset = span(&["roles", role, key]).unwrap_or(settings.span().start);
            at(
                offset,
                format!("environment `{env}`, role `{role}`: {message}"),
            );
        }
    }
}

/// `max_unavailable`, when given, lets at least one VM be replaced.
fn check_max_unavailable(
    env: &str,
    role: &str,
    s: &RoleSettings,
    at: &mut impl FnMut(usize, String),
) {
    if let Some(m) = &s.max_unavailable
        && *m.get_ref() == 0
    {
        let message = format!(
            "environment `{env}`, role `{role}`: `max_unavailable` = 0 would never replace a VM: \
             it must be at least 1"
        );
        at(m.span().start, message);
    }
}

/// A role's `nodes` must be nodes of its (proxmox) target.
fn check_nodes(
    project: &Project,
    env: &str,
    target: &str,
    role: &str,
    s: &RoleSettings,
    at: &mut impl FnMut(usize, String),
) {
    let known = match project.config.targets.get(target) {
        Some(TargetSettings::Proxmox(p)) => &p.nodes,
        None if target != "local" => return,
        _ => {
            if let Some(first) = s.nodes.first() {
                let message = format!(
                    "environment `{env}`, role `{role}`: `nodes` needs a proxmox target; \
                     target `{target}` runs every VM on this machine: remove `nodes`"
                );
                at(first.span().start, message);
            }
            return;
        }
    };
    for node in &s.nodes {
        if !known.is_empty() && !known.contains(node.get_ref()) {
            let message = format!(
                "environment `{env}`, role `{role}`: node `{}` is not one of target `{target}`'s \
                 nodes ({})",
                node.get_ref(),
                known.join(", ")
            );
            at(node.span().start, message);
        }
    }
}

fn check_role(
    project: &Project,
    env: &str,
    role: &str,
    settings: &Spanned<RoleSettings>,
    at: &mut impl FnMut(usize, String),
) {
    let start = settings.span().start;
    let Some(file) = project.recipes.get(role) else {
        at(start, format!("environment `{env}`: unknown role `{role}`"));
        return;
    };
    let s = settings.get_ref();
    if s.addresses.len() != s.count as usize {
        let message = format!(
            "environment `{env}`, role `{role}`: {} address(es) for {} VM(s); give one static address per VM",
            s.addresses.len(),
            s.count
        );
        at(start, message);
    }
    let values_at = if s.values.span().end > 0 {
        s.values.span().start
    } else {
        start
    };
    for wanted in &file.recipe.deploy.values {
        if !s.values.get_ref().contains_key(wanted) {
            let message = format!(
                "environment `{env}`, role `{role}`: missing value `{wanted}` (the recipe's [deploy] values need it)"
            );
            at(values_at, message);
        }
    }
    for given in s.values.get_ref().keys() {
        if !file.recipe.deploy.values.contains(given) {
            let message = format!(
                "environment `{env}`, role `{role}`: value `{given}` is not in the recipe's [deploy] values"
            );
            at(values_at, message);
        }
    }
}
