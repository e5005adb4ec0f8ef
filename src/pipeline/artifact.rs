//! Between the registry's record of a template and the target's handle on
//! it. Local paths in the registry are relative to the project, so the
//! registry reads the same on every machine.

use std::path::Path;

use super::BuildError;
use crate::registry::{self, ImageHead};
use crate::target::{Artifact, TemplateRef};

/// The template of a recorded image (its record or its summary).
pub fn template_of(record: &impl ImageHead, root: &Path) -> TemplateRef {
    let name = format!("{}-{}", record.role(), record.version());
    let artifact = match record.artifact() {
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
}
