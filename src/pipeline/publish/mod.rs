//! `oxbake publish ROLE@VERSION --target PVE`: ships an image baked on the
//! local target to a Proxmox VE cluster through its API alone, and records
//! the copy as a second place of the same version (`[[published]]` in the
//! image's record; see docs/publish.md).
//!
//! In order, each step refusing or failing before the next: the record
//! (not revoked, built on a local target, not yet published there unless
//! that copy is gone), the cluster ([`preflight`]: PVE 8.2 or later, the
//! import storage takes `import` content, the token's privileges), the
//! template file (it must still be the recorded bytes), then: flatten it
//! into one qcow2 (its backing chain read in), upload it as an `import`
//! volume with its sha256 (Proxmox verifies it), create a VM whose disk is
//! imported from it, convert the VM into the template `ROLE-VERSION`,
//! remove the volume, record. What a failed or interrupted step made is
//! removed: the volume, the VM, the template; the record is written last.

mod error;

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

pub use error::PublishError;

use super::artifact::{template_of, template_on};
use super::cancel;
use super::context::WorkDirs;
use super::ownership::identity;
use super::role_lock::RoleLock;
use super::runs::RunGuard;
use crate::config::TargetSettings;
use crate::progress::Progress;
use crate::project::Project;
use crate::registry::{self, ImageRecord, Published, Registry, Version};
use crate::target::local::{base_meta, flatten};
use crate::target::proxmox::{ImageVm, ProxmoxTarget, preflight, upload_name};
use crate::target::{
    Artifact, Labels, Target, TemplateMeta, TemplatePresence, VmHandle, VmKind, open_proxmox,
};

/// How long an interrupted publish lets a VM's creation or conversion
/// finish, so that what it made can be found and removed.
const GRACE: Duration = Duration::from_secs(30);

/// One publication.
#[derive(Debug, Clone)]
pub struct PublishRequest<'a> {
    pub role: &'a str,
    pub version: Version,
    /// The name of the proxmox target in oxbake.toml.
    pub target: &'a str,
}

/// What a publication did.
#[derive(Debug, Clone, Serialize)]
pub struct PublishOutcome {
    pub image: String,
    pub target: String,
    /// False when the image was already there (nothing was done).
    pub published: bool,
    pub node: String,
    pub vmid: u32,
    pub template: String,
    /// The sha256 of the flattened qcow2 that was shipped.
    pub sha256: String,
    /// Its size in bytes (none when nothing was shipped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// The proxmox target `req` names, opened (nothing is contacted yet).
pub fn open(
    project: &Project,
    req: &PublishRequest<'_>,
    progress: &Progress,
) -> Result<ProxmoxTarget, PublishError> {
    let (name, settings) = project.config.target(Some(req.target))?;
    let TargetSettings::Proxmox(settings) = settings else {
        return Err(PublishError::NotProxmox { target: name });
    };
    open_proxmox(&settings, &project.root, progress).map_err(|source| PublishError::Open {
        target: name,
        source: Box::new(source),
    })
}

/// The publication of `req` to `pve` (the target `req.target` names, see
/// [`open`]), refusing first what needs no cluster.
pub async fn publish(
    project: &Project,
    registry: &Registry,
    pve: &ProxmoxTarget,
    req: &PublishRequest<'_>,
    progress: &Progress,
    cancel: watch::Receiver<bool>,
) -> Result<PublishOutcome, PublishError> {
    let record = registry.get(req.role, &req.version)?;
    let image = record.id();
    let name = req.target.to_owned();
    gates(&record, &name, project)?;
    let locks = WorkDirs::of(&project.root).locks();
    let lock = RoleLock::acquire(&locks, req.role, progress, &cancel);
    let _lock = lock.await.map_err(|e| match e.is_interrupted() {
        true => PublishError::Interrupted {
            image: image.clone(),
        },
        false => PublishError::Lock {
            image: image.clone(),
            source: Box::new(e),
        },
    })?;
    // Judged again under the lock: another publish may have run meanwhile.
    let record = registry.get(req.role, &req.version)?;
    let replacing = match earlier_copy(pve, &record, &name, project).await? {
        // The command says so (`published: false`).
        Earlier::There(outcome) => return Ok(*outcome),
        Earlier::Gone(artifact) => Some(artifact),
        Earlier::None => None,
    };
    let shipping = Shipping {
        pve,
        record: &record,
        target: &name,
        progress,
        cancel: &cancel,
        dirs: WorkDirs::of(&project.root),
        size: (
            project.config.defaults.cores,
            project.config.defaults.memory_mib,
        ),
    };
    let (made, flat) = shipping.ship(project).await?;
    let copy = Published {
        target: name.clone(),
        // The registry stamps it.
        when: jiff::Timestamp::UNIX_EPOCH,
        sha256: flat.sha256.parse()?,
        artifact: recorded(&made.artifact),
    };
    let at = copy.artifact.describe();
    let meta = identity(&record);
    if cancel::is_set(&cancel) {
        shipping.drop_template(&made.template, &meta).await;
        return Err(PublishError::Interrupted { image });
    }
    if let Err(e) = registry.publish(req.role, &req.version, copy, replacing.as_ref()) {
        shipping.drop_template(&made.template, &meta).await;
        return Err(e.into());
    }
    progress.info(format!("published `{image}` to `{name}` as {at}"));
    Ok(outcome(
        &record,
        &name,
        &made.artifact,
        flat.sha256,
        Some(flat.bytes),
    ))
}

/// What the registry records of a template made on the cluster.
fn recorded(artifact: &Artifact) -> registry::Artifact {
    let Artifact::Proxmox { node, vmid, name } = artifact else {
        unreachable!("a proxmox target makes proxmox templates only")
    };
    registry::Artifact::Proxmox {
        node: node.clone(),
        vmid: *vmid,
        template: name.clone(),
    }
}

/// The refusals that need neither the cluster nor the file.
fn gates(record: &ImageRecord, target: &str, project: &Project) -> Result<(), PublishError> {
    let image = record.id();
    if let Some(revoked) = &record.revoked {
        return Err(PublishError::Revoked {
            image,
            reason: revoked.reason.clone(),
        });
    }
    if record.target == target {
        return Err(PublishError::SameTarget {
            image,
            target: target.to_owned(),
        });
    }
    let built_on_local = matches!(record.artifact, registry::Artifact::Local { .. })
        && matches!(
            project.config.target(Some(&record.target)),
            Ok((_, TargetSettings::Local(_))) | Err(_)
        );
    if !built_on_local {
        return Err(PublishError::NotLocal {
            image,
            built_on: record.target.clone(),
        });
    }
    Ok(())
}

/// What the record says of a copy on the target, checked there.
enum Earlier {
    None,
    /// There and proven the image's: nothing to do.
    There(Box<PublishOutcome>),
    /// Recorded, but gone from the cluster: publish again, replacing it.
    Gone(registry::Artifact),
}

async fn earlier_copy(
    pve: &ProxmoxTarget,
    record: &ImageRecord,
    target: &str,
    project: &Project,
) -> Result<Earlier, PublishError> {
    let Some(copy) = record.published.iter().find(|p| p.target == target) else {
        return Ok(Earlier::None);
    };
    let template = template_on(record, target, &project.root);
    let presence = pve
        .verify_template(&template, &identity(record))
        .await
        .map_err(|source| PublishError::Verify {
            image: record.id(),
            target: target.to_owned(),
            source: Box::new(source),
        })?;
    Ok(match presence {
        TemplatePresence::Ours => Earlier::There(Box::new(outcome(
            record,
            target,
            &template.artifact,
            copy.sha256.to_string(),
            None,
        ))),
        TemplatePresence::Gone => Earlier::Gone(copy.artifact.clone()),
    })
}

fn outcome(
    record: &ImageRecord,
    target: &str,
    artifact: &Artifact,
    sha256: String,
    bytes: Option<u64>,
) -> PublishOutcome {
    let (node, vmid, template) = match artifact {
        Artifact::Proxmox { node, vmid, name } => (node.clone(), *vmid, name.clone()),
        Artifact::Local { path, .. } => (String::new(), 0, path.display().to_string()),
    };
    PublishOutcome {
        image: record.id(),
        target: target.to_owned(),
        published: bytes.is_some(),
        node,
        vmid,
        template,
        sha256,
        bytes,
    }
}

/// The flattened file: its sha256 and size.
struct Flat {
    sha256: String,
    bytes: u64,
}

/// The template made on the cluster.
struct Made {
    template: crate::target::TemplateRef,
    artifact: Artifact,
}

/// The steps that make something, each removing what it made on failure.
struct Shipping<'a> {
    pve: &'a ProxmoxTarget,
    record: &'a ImageRecord,
    target: &'a str,
    progress: &'a Progress,
    cancel: &'a watch::Receiver<bool>,
    dirs: WorkDirs,
    /// The template VM's cores and memory (MiB): the project's defaults,
    /// as a builder VM gets them (clones set their own).
    size: (u32, u32),
}

impl Shipping<'_> {
    fn image(&self) -> String {
        self.record.id()
    }

    fn ship_error(&self, source: crate::target::proxmox::ShipError) -> PublishError {
        PublishError::Ship {
            image: self.image(),
            target: self.target.to_owned(),
            source: Box::new(source),
        }
    }

    fn interrupted(&self) -> PublishError {
        PublishError::Interrupted {
            image: self.image(),
        }
    }

    async fn ship(&self, project: &Project) -> Result<(Made, Flat), PublishError> {
        let checked = cancel::unless_interrupted(self.cancel, preflight(self.pve)).await;
        checked
            .ok_or_else(|| self.interrupted())?
            .map_err(|e| self.ship_error(e))?;
        let scratch = self.dirs.scratch();
        let io = |e: std::io::Error| PublishError::Flatten {
            image: self.image(),
            source: Box::new(crate::target::TargetError::io(&scratch, e)),
        };
        let work = crate::scratch::folder(&scratch, "publish-").map_err(io)?;
        let file = work.path().join("flat.qcow2");
        let flat = cancel::unless_interrupted(self.cancel, self.flatten(project, &file))
            .await
            .ok_or_else(|| self.interrupted())??;
        let made = self.upload_and_convert(&file, &flat).await?;
        Ok((made, flat))
    }

    /// Checks the template file is the recorded one, then flattens it into
    /// `into`.
    async fn flatten(&self, project: &Project, into: &Path) -> Result<Flat, PublishError> {
        let template = template_of(self.record, &project.root);
        let Artifact::Local { path, sha256 } = &template.artifact else {
            unreachable!("the gates let only local images through")
        };
        let image = self.image();
        let unreadable = |source| PublishError::LocalFile {
            image: image.clone(),
            path: path.clone(),
            source: Box::new(source),
        };
        self.progress
            .info(format!("`{image}`: checking `{}`", path.display()));
        let actual = base_meta::sha256_file(path).await.map_err(unreadable)?;
        if !actual.eq_ignore_ascii_case(sha256) {
            return Err(PublishError::NotTheRecordedFile {
                image,
                path: path.clone(),
                expected: sha256.clone(),
                actual,
            });
        }
        self.progress
            .info(format!("`{image}`: flattening its template into one qcow2"));
        let flattening = flatten::flatten(path, into).await;
        flattening.map_err(|source| PublishError::Flatten {
            image: image.clone(),
            source: Box::new(source),
        })?;
        let sha256 = base_meta::sha256_file(into).await.map_err(unreadable)?;
        let bytes = std::fs::metadata(into).map(|m| m.len()).unwrap_or(0);
        Ok(Flat { sha256, bytes })
    }

    async fn upload_and_convert(&self, file: &Path, flat: &Flat) -> Result<Made, PublishError> {
        let (role, version) = (&self.record.role, self.record.version.to_string());
        // Named after the run, marked alive: a run killed mid-way leaves a
        // volume and a VM that `oxbake gc` finds by its id.
        let run_id = super::vm::run_id();
        let _alive = RunGuard::start(&self.dirs.runs(), &run_id);
        let filename = upload_name(role, &version, &run_id);
        self.progress.info(format!(
            "`{}`: uploading {} bytes to `{}` as `{}`",
            self.image(),
            flat.bytes,
            self.target,
            self.pve.import_volid(&filename)
        ));
        // Interrupted, the upload may finish for a while: a body sent whole
        // becomes a volume when Proxmox's copy task ends, which is then
        // removed; one cut off is discarded by Proxmox.
        let upload = self.pve.upload_image(file, &flat.sha256, &filename);
        let volid = match cancel::let_finish(self.cancel, GRACE, upload).await {
            (Some(Ok(volid)), false) => volid,
            (Some(Err(e)), _) => return Err(self.ship_error(e)),
            (Some(Ok(volid)), true) => {
                self.pve.remove_partial(&volid).await;
                return Err(self.interrupted());
            }
            (None, _) => {
                let volid = self.pve.import_volid(&filename);
                self.pve.remove_partial(&volid).await;
                self.progress.warn(format!(
                    "the upload was cut off; should `{volid}` appear later, remove it by hand"
                ));
                return Err(self.interrupted());
            }
        };
        let made = self.convert(&volid, &run_id).await;
        // The volume served its purpose (or the step failed): it goes.
        if let Err(e) = self.pve.remove_image(&volid).await {
            self.progress.warn(format!(
                "`{volid}` could not be removed: {}; remove it by hand",
                e.chained()
            ));
        }
        made
    }

    /// A VM from the volume, turned into the template `ROLE-VERSION`.
    async fn convert(&self, volid: &str, run_id: &str) -> Result<Made, PublishError> {
        let (role, version) = (&self.record.role, self.record.version.to_string());
        let mut labels = Labels::new(run_id, role.clone(), VmKind::Builder);
        labels.version = Some(version.clone());
        let spec = ImageVm {
            name: format!("publish-{role}-{run_id}"),
            cores: self.size.0,
            memory_mib: self.size.1,
            labels,
        };
        let creating = self.pve.create_from_image(volid, &spec);
        let vm: VmHandle = match cancel::let_finish(self.cancel, GRACE, creating).await {
            (Some(Ok(vm)), false) => vm,
            (Some(Err(e)), _) => return Err(self.ship_error(e)),
            (Some(Ok(_)), true) | (None, _) => {
                cancel::remove_run(self.pve, run_id, self.progress).await;
                return Err(self.interrupted());
            }
        };
        let name = format!("{role}-{version}");
        let parent = match &self.record.parent {
            registry::Parent::Image { role, version } => Some(format!("{role}@{version}")),
            registry::Parent::Base(_) => None,
        };
        let meta = TemplateMeta {
            parent,
            ..identity(self.record)
        };
        let converting = self.pve.make_template(&vm, &name, &meta);
        let (done, interrupted) = cancel::let_finish(self.cancel, GRACE, converting).await;
        let template = match done {
            Some(Ok(template)) => template,
            Some(Err(source)) => {
                // By its labels: the VM may carry the template's name by now.
                cancel::remove_run(self.pve, run_id, self.progress).await;
                return Err(PublishError::Template {
                    image: self.image(),
                    target: self.target.to_owned(),
                    source: Box::new(source),
                });
            }
            None => {
                cancel::remove_run(self.pve, run_id, self.progress).await;
                return Err(self.interrupted());
            }
        };
        if interrupted {
            self.drop_template(&template, &meta).await;
            return Err(self.interrupted());
        }
        Ok(Made {
            artifact: template.artifact.clone(),
            template,
        })
    }

    /// Removes a template this run made (the record was not written).
    async fn drop_template(&self, template: &crate::target::TemplateRef, meta: &TemplateMeta) {
        if let Err(e) = self.pve.destroy_template(template, meta).await {
            self.progress.warn(format!(
                "template `{}` could not be removed: {e}; remove it by hand",
                template.name
            ));
        }
    }
}
