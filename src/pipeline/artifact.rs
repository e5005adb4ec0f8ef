//! Between the registry's record of a template and the target's handle on
//! it. Local paths in the registry are relative to the project, so the
//! registry reads the same on every machine.

use std::path::Path;

use super::BuildError;
use crate::registry::{self, ImageHead};
use crate::target::{Artifact, TemplateRef};

/// The template of a recorded image (its record or its summary) where it
/// was built.
pub fn template_of(record: &impl ImageHead, root: &Path) -> TemplateRef {
    to_target(record, record.artifact(), root)
}

/// The template of a recorded image on the target named `target`: its
/// published copy there when it was built elsewhere and published
/// (`oxbake publish`), else where it was built (which the target then
/// refuses as another target's, naming the template).
pub fn template_on(record: &impl ImageHead, target: &str, root: &Path) -> TemplateRef {
    let artifact = record.artifact_on(target).unwrap_or(record.artifact());
    to_target(record, artifact, root)
}

fn to_target(record: &impl ImageHead, artifact: &registry::Artifact, root: &Path) -> TemplateRef {
    let name = format!("{}-{}", record.role(), record.version());
    let artifact = match artifact {
        registry::Artifact::Local { path, sha256 } => Artifact::Local {
            path: root.join(path),
            sha256: sha256.to_string(),
        },
        registry::Artifact::Proxmox {
            node,
            vmid,
            template,
        } => Artifact::Proxmox {
            node: node.clone(),
            vmid: *vmid,
            name: template.clone(),
        },
    };
    TemplateRef { name, artifact }
}

/// What the registry records of a template the target made.
pub fn to_registry(artifact: &Artifact, root: &Path) -> Result<registry::Artifact, BuildError> {
    Ok(match artifact {
        Artifact::Local { path, sha256 } => registry::Artifact::Local {
            path: path.strip_prefix(root).unwrap_or(path).to_path_buf(),
            sha256: sha256.parse()?,
        },
        Artifact::Proxmox { node, vmid, name } => registry::Artifact::Proxmox {
            node: node.clone(),
            vmid: *vmid,
            template: name.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_stored_relative_to_the_project() {
        let sha = "a".repeat(64);
        let made = Artifact::Local {
            path: "/p/.oxbake/local/templates/ui-1.qcow2".into(),
            sha256: sha.clone(),
        };
        let stored = to_registry(&made, Path::new("/p")).unwrap();
        let registry::Artifact::Local { path, .. } = &stored else {
            panic!("local")
        };
        assert_eq!(path, Path::new(".oxbake/local/templates/ui-1.qcow2"));
    }

    #[test]
    fn a_published_image_is_found_on_the_target_it_was_published_to() {
        let image = registry::NewImage {
            inputs: "a".repeat(64).parse().unwrap(),
            parent: "base-image:debian-12".parse().unwrap(),
            target: "local".into(),
            artifact: registry::Artifact::Local {
                path: ".oxbake/local/templates/ui-1.qcow2".into(),
                sha256: "b".repeat(64).parse().unwrap(),
            },
            repositories: Default::default(),
            packages: Default::default(),
            checks: Vec::new(),
            builder: None,
            size: None,
        };
        let created = "2026-12-06T10:00:00Z".parse().unwrap();
        let mut record =
            registry::ImageRecord::new("ui", "2026.12.06.1".parse().unwrap(), created, image);
        record.published.push(registry::Published {
            target: "pve".into(),
            when: created,
            sha256: "c".repeat(64).parse().unwrap(),
            artifact: registry::Artifact::Proxmox {
                node: "pve1".into(),
                vmid: 9123,
                template: "ui-2026.12.06.1".into(),
            },
        });
        let root = Path::new("/p");
        let on_pve = template_on(&record, "pve", root);
        assert_eq!(on_pve.name, "ui-2026.12.06.1");
        assert_eq!(
            on_pve.artifact,
            Artifact::Proxmox {
                node: "pve1".into(),
                vmid: 9123,
                name: "ui-2026.12.06.1".into()
            }
        );
        let local = template_on(&record, "local", root);
        assert_eq!(local, template_of(&record, root));
        assert!(matches!(local.artifact, Artifact::Local { .. }));
        // Elsewhere: where it was built (the target refuses it by name).
        assert_eq!(template_on(&record, "pve2", root), local);
    }
}
