//! `oxbake deploy ENV`: the environment's VMs, cloned from the templates of
//! the versions its channel points at, seeded with cloud-init. [`Deployer::prepare`]
//! resolves versions and seeds and computes the [`plan::Plan`];
//! [`Deployer::apply`] carries it out (see [`apply`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

mod apply;
pub mod backup;
pub mod deployed;
mod health;
pub mod jobs;
pub mod key;
pub mod known_hosts;
mod line;
pub mod plan;
pub mod quorum;
mod replace;
pub mod seed;
pub mod tag;

use super::context::Context;
use crate::environment::Environment;
use crate::guest::{ClientKey, GuestError, HostKeyPair};
use crate::recipe::Deploy;
use crate::registry::RegistryError;
use crate::render::{RenderError, Renderer};
use crate::role::Role;
use crate::secrets::{Secrets, SecretsError};
use crate::target::{CloudInit, TargetError, TemplateRef, VmNetwork};
pub use apply::Done;
use plan::{Desired, Existing, Plan};
use seed::{SeedMaker, VmPlace};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("environment `{0}` is not defined in oxbake.toml")]
    UnknownEnv(String),
    #[error("environment `{env}`: channel `{channel}` has no version of role `{role}`")]
    NoVersion {
        env: String,
        channel: String,
        role: String,
    },
    #[error(
        "environment `{env}`: `{role}@{version}` (channel `{channel}`) is revoked: {reason}; \
         point the channel at another version first"
    )]
    Revoked {
        env: String,
        channel: String,
        role: String,
        version: String,
        reason: String,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("deploy templates of role `{role}`")]
    Render {
        role: String,
        #[source]
        source: RenderError,
    },
    #[error("`{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("environment key")]
    Key(#[source] Box<GuestError>),
    #[error("vm `{vm}`: {what}")]
    Target {
        vm: String,
        what: &'static str,
        #[source]
        source: TargetError,
    },
    #[error("vm `{vm}`: {what}")]
    Guest {
        vm: String,
        what: &'static str,
        #[source]
        source: Box<GuestError>,
    },
    #[error("vm `{vm}`: cannot make its host key")]
    HostKey {
        vm: String,
        #[source]
        source: Box<GuestError>,
    },
    #[error(transparent)]
    KnownHosts(#[from] known_hosts::KnownHostsError),
    #[error("vm `{vm}`: check `{check}` failed: {detail}")]
    Check {
        vm: String,
        check: String,
        detail: String,
    },
    /// A replacement failed and the VM it replaces could not be started
    /// again or proven healthy: both errors are named.
    #[error(
        "vm `{vm}` is not back in service after its replacement failed ({})",
        crate::error_chain::chain(.failed.as_ref())
    )]
    NotBroughtBack {
        vm: String,
        failed: Box<DeployError>,
        #[source]
        source: Box<DeployError>,
    },
    #[error("vm `{vm}`: no host key recorded for it in the environment's known hosts")]
    NoHostKey { vm: String },
    #[error("vm `{vm}` is not running, or its SSH server does not answer")]
    NotReachable { vm: String },
    /// The operator interrupted: the VM being made was removed, VMs that
    /// were there before are untouched.
    #[error("environment `{env}`: deploy interrupted")]
    Interrupted { env: String },
    /// A backup or restore of the environment's database.
    #[error("environment `{env}`")]
    Backup {
        env: String,
        #[source]
        source: backup::BackupError,
    },
    /// The plan would take a quorum role's majority away: nothing is done.
    #[error("environment `{env}`: plan refused")]
    Quorum {
        env: String,
        #[source]
        source: quorum::QuorumError,
    },
}

impl DeployError {
    pub(crate) fn key(e: GuestError) -> Self {
        DeployError::Key(Box::new(e))
    }

    /// Problems with the operator's input (exit 2), not with the operation.
    pub fn is_invalid_input(&self) -> bool {
        match self {
            DeployError::UnknownEnv(_) | DeployError::Secrets(_) => true,
            DeployError::Backup { source, .. } => source.is_invalid_input(),
            _ => false,
        }
    }

    /// Whether the operator interrupted (exit 130).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, DeployError::Interrupted { .. })
    }
}

/// Deploys one environment on the context's target: the deploy's own
/// knobs over the command's [`Context`] (whose interrupt is handled as
/// [`apply`] says).
pub struct Deployer<'a> {
    pub ctx: &'a Context<'a>,
    pub env_name: &'a str,
    pub env: &'a Environment,
    pub boot_timeout: Duration,
    /// How many VMs are made at once; `None`: as many as the target
    /// allows (see [`jobs`]).
    pub jobs: Option<usize>,
}

/// One VM the environment wants, with everything needed to make it.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub desired: Desired,
    pub template: TemplateRef,
    pub seed: CloudInit,
    /// The seed with the role's `bootstrap_commands` (same host key), for a
    /// role that has them: taken when the plan marks the VM as the one
    /// that starts the role (see [`plan::mark_bootstrap`]).
    pub bootstrap_seed: Option<CloudInit>,
    /// The host key the seed gives the VM (pinned at login).
    pub host_key: HostKeyPair,
    pub cores: u32,
    pub memory_mib: u32,
    pub disk_gib: u32,
    pub network: VmNetwork,
}

/// One role's image in the environment's channel: what its VMs are cloned
/// from, and what their deploy templates see of it (`image.*`).
struct ChannelImage {
    version: String,
    template: TemplateRef,
    /// Installed packages (name to version), from the image's record.
    packages: BTreeMap<String, String>,
}

/// A computed plan and what applying it needs.
pub struct Prepared {
    pub plan: Plan,
    pub wanted: Vec<Wanted>,
    /// Names of every VM the target has (new names must avoid them).
    pub taken: BTreeSet<String>,
    pub key: ClientKey,
}

impl Deployer<'_> {
    /// Resolves the channel's versions, renders every seed and compares
    /// them with the environment's VMs.
    pub async fn prepare(&self) -> Result<Prepared, DeployError> {
        let templates = self.templates()?;
        let deploys: Vec<_> = (self.env.roles.keys())
            .filter_map(|r| self.ctx.project.recipes.get(r))
            .map(|f| &f.recipe.deploy)
            .collect();
        let names = |of: fn(&Deploy) -> &Vec<String>| -> BTreeSet<&str> {
            deploys
                .iter()
                .flat_map(|d| of(d))
                .map(String::as_str)
                .collect()
        };
        let (root, settings) = (&self.ctx.project.root, &self.ctx.project.config.secrets);
        let mut secrets = Secrets::load(root, settings, names(|d| &d.secrets))?;
        secrets.add_optional(root, settings, names(|d| &d.optional_secrets))?;
        let key = key::load_or_create(&self.ctx.project.root, self.env_name)?;
        let maker = SeedMaker {
            project: self.ctx.project,
            env_name: self.env_name,
            env: self.env,
            renderer: Renderer::new(&self.ctx.project.templates_dir()).redacting(secrets.values()),
            secrets: &secrets,
            key_line: key.public_line().map_err(DeployError::key)?,
            hash_key: key.private_openssh().map_err(DeployError::key)?,
            versions: templates
                .iter()
                .map(|(role, image)| (role.clone(), image.version.clone()))
                .collect(),
        };
        let listed = self.listed().await?;
        let existing = Existing::of_env(&listed, self.env_name);
        let mut wanted = self.wanted(&maker, &templates)?;
        let desired: Vec<Desired> = wanted.iter().map(|w| w.desired.clone()).collect();
        let mut plan = plan::compute_with(&desired, &existing, &self.rules());
        let keeps = self.keeps_data();
        for (vm, why) in plan::hold_data(&mut plan, &keeps) {
            self.ctx.progress.warn(format!(
                "vm `{vm}` is kept as it is ({why}): its role keeps data that exists nowhere \
                 else; replace it by hand once its data is copied off"
            ));
        }
        quorum::check(&plan, &self.quorum_rules())
            .and_then(|()| quorum::check_keeps_data(&plan, &keeps))
            .map_err(|source| DeployError::Quorum {
                env: self.env_name.to_owned(),
                source,
            })?;
        let bootstrapping: BTreeSet<String> = wanted
            .iter()
            .filter(|w| w.bootstrap_seed.is_some())
            .map(|w| w.desired.role.clone())
            .collect();
        let roles: Vec<&str> = bootstrapping.iter().map(String::as_str).collect();
        plan::mark_bootstrap(&mut plan, &existing, &roles);
        for a in &plan.actions {
            if let plan::Action::Create { want } | plan::Action::Replace { want, .. } = a
                && want.bootstrap
                && let Some(w) = wanted
                    .iter_mut()
                    .find(|w| w.desired.role == want.role && w.desired.slot == want.slot)
                && let Some(seed) = w.bootstrap_seed.take()
            {
                w.seed = seed;
                w.desired.bootstrap = true;
            }
        }
        Ok(Prepared {
            plan,
            wanted,
            taken: listed.iter().map(|vm| vm.handle.name.clone()).collect(),
            key,
        })
    }

    /// The roles of the environment whose recipe sets a `quorum`.
    fn quorum_rules(&self) -> BTreeMap<String, crate::recipe::model::Quorum> {
        self.env
            .roles
            .keys()
            .filter_map(|r| {
                let quorum = self.ctx.project.recipes.get(r)?.recipe.deploy.quorum?;
                Some((r.clone(), quorum))
            })
            .collect()
    }

    /// The project's roles whose VMs keep data (`[deploy] keeps_data`).
    pub(super) fn keeps_data(&self) -> BTreeSet<String> {
        let recipes = &self.ctx.project.recipes;
        let keeps = recipes.iter().filter(|(_, f)| f.recipe.deploy.keeps_data);
        keeps.map(|(role, _)| role.clone()).collect()
    }

    /// The environment's waves and replacement settings. `oxbake check`
    /// refuses cycles; were one left, its roles would go in a last wave.
    fn rules(&self) -> plan::Rules {
        plan::Rules {
            waves: crate::environment::order::waves(self.env).unwrap_or_default(),
            roles: self
                .env
                .roles
                .iter()
                .map(|(role, s)| {
                    let s = s.get_ref();
                    (role.clone(), (s.replace, s.max_unavailable()))
                })
                .collect(),
        }
    }

    /// The target's VMs (every environment's; callers pick theirs).
    async fn listed(&self) -> Result<Vec<crate::target::ManagedVm>, DeployError> {
        let listing = self.ctx.target.list_vms();
        crate::pipeline::cancel::unless_interrupted(&self.ctx.cancel, listing)
            .await
            .ok_or_else(|| DeployError::Interrupted {
                env: self.env_name.to_owned(),
            })?
            .map_err(|source| DeployError::Target {
                vm: format!("{}-*", self.env_name),
                what: "cannot list VMs",
                source,
            })
    }

    /// Each role's image from the environment's channel.
    fn templates(&self) -> Result<BTreeMap<String, ChannelImage>, DeployError> {
        let channel = self.env.channel.get_ref();
        let channels = self.ctx.registry.channels()?;
        let mut out = BTreeMap::new();
        for role in self.env.roles.keys() {
            let version = channels
                .get(channel, role)
                .ok_or_else(|| DeployError::NoVersion {
                    env: self.env_name.to_owned(),
                    channel: channel.clone(),
                    role: role.clone(),
                })?;
            let record = self.ctx.registry.get(role, &version)?;
            if let Some(revoked) = &record.revoked {
                return Err(DeployError::Revoked {
                    env: self.env_name.to_owned(),
                    channel: channel.clone(),
                    role: role.clone(),
                    version: version.to_string(),
                    reason: revoked.reason.clone(),
                });
            }
            let template =
                super::artifact::template_on(&record, self.ctx.target_name, &self.ctx.project.root);
            out.insert(
                role.clone(),
                ChannelImage {
                    version: version.to_string(),
                    template,
                    packages: record.packages,
                },
            );
        }
        Ok(out)
    }

    fn wanted(
        &self,
        maker: &SeedMaker<'_>,
        templates: &BTreeMap<String, ChannelImage>,
    ) -> Result<Vec<Wanted>, DeployError> {
        let defaults = &self.ctx.project.config.defaults;
        let mut out = Vec::new();
        for (role, settings) in &self.env.roles {
            let s = settings.get_ref();
            let ChannelImage {
                version,
                template,
                packages,
            } = &templates[role];
            let Some(resolved) = Role::resolve(self.ctx.project, role) else {
                continue;
            };
            let nodes: Vec<String> = s.nodes.iter().map(|n| n.get_ref().clone()).collect();
            for (i, address) in s.slot_addresses().enumerate() {
                let network = VmNetwork {
                    segment: self.env_name.to_owned(),
                    address,
                    prefix: self.env.network.prefix,
                    gateway: self.env.network.gateway,
                    ports: s.ports.clone(),
                };
                let place = VmPlace {
                    role,
                    slot: i as u32 + 1,
                    hostname: seed::vm_name(self.env_name, role, i + 1),
                    address,
                    version,
                    packages,
                    nics: self.ctx.target.nics(&network),
                };
                let host_key = HostKeyPair::generate().map_err(|e| DeployError::HostKey {
                    vm: place.hostname.clone(),
                    source: Box::new(e),
                })?;
                let (seed, hash) = maker.make(&resolved, &place, &host_key, false)?;
                let bootstrap_seed = if resolved.recipe().deploy.bootstrap_commands.is_empty() {
                    None
                } else {
                    Some(maker.make(&resolved, &place, &host_key, true)?.0)
                };
                out.push(Wanted {
                    desired: Desired {
                        role: role.clone(),
                        slot: place.slot,
                        hostname: place.hostname.clone(),
                        version: version.clone(),
                        seed: hash,
                        node: plan::node_for(&nodes, i),
                        bootstrap: false,
                    },
                    template: template.clone(),
                    seed,
                    bootstrap_seed,
                    host_key,
                    cores: s.cores.unwrap_or(defaults.cores),
                    memory_mib: s.memory_mib.unwrap_or(defaults.memory_mib),
                    disk_gib: s.disk_gib.unwrap_or(defaults.disk_gib),
                    network,
                });
            }
        }
        Ok(out)
    }
}
