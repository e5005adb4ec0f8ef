//! Proving that a local template is the image a registry record names
//! before it is destroyed: the record's file must be the template
//! `ROLE-VERSION` of the record, and the template's own metadata
//! (`templates/ROLE-VERSION.toml`, written by `make_template`) must carry
//! that name, the record's role and the record's sha256.

use std::path::{Path, PathBuf};

use super::LocalTarget;
use super::state::{TemplateRecord, read_toml};
use crate::target::{
    Artifact, TargetError, TemplateMeta, TemplatePresence, TemplateRef, validate_name,
};

pub(super) async fn verify(
    t: &LocalTarget,
    tpl: &TemplateRef,
    expected: &TemplateMeta,
) -> Result<TemplatePresence, TargetError> {
    let Artifact::Local { path, sha256 } = &tpl.artifact else {
        return Err(TargetError::ForeignArtifact {
            name: tpl.name.clone(),
        });
    };
    let want = format!("{}-{}", expected.role, expected.version);
    validate_name(&want)?;
    let disk = t.state.template_disk(&want);
    let meta = t.state.template_meta(&want);
    if !exists(&disk).await? && !exists(&meta).await? {
        return Ok(TemplatePresence::Gone);
    }
    let mut why = Vec::new();
    if tpl.name != want {
        why.push(format!("it is named `{}`, expected `{want}`", tpl.name));
    }
    if canonical(path).await != canonical(&disk).await {
        why.push(format!(
            "the record's file `{}` is not the template `{}`",
            path.display(),
            disk.display()
        ));
    }
    match read_toml::<TemplateRecord>(&meta).await {
        Ok(found) => {
            if found.name != want {
                why.push(format!("its metadata names `{}`", found.name));
            }
            if found.labels.role != expected.role {
                why.push(format!(
                    "its metadata's role is `{}`, expected `{}`",
                    found.labels.role, expected.role
                ));
            }
            if !found.sha256.eq_ignore_ascii_case(sha256) {
                why.push(format!(
                    "its metadata's sha256 is `{}`, the record's `{sha256}`",
                    found.sha256
                ));
            }
        }
        Err(e) => why.push(format!("its metadata cannot be read ({e})")),
    }
    if why.is_empty() {
        return Ok(TemplatePresence::Ours);
    }
    Err(TargetError::NotTheRecordedTemplate {
        template: format!("`{}`", disk.display()),
        why: why.join("; "),
    })
}

async fn exists(path: &Path) -> Result<bool, TargetError> {
    tokio::fs::try_exists(path)
        .await
        .map_err(|e| TargetError::io(path, e))
}

/// The path with every link resolved, or as given when it does not exist.
async fn canonical(path: &Path) -> PathBuf {
    tokio::fs::canonicalize(path)
        .await
        .unwrap_or_else(|_| path.to_path_buf())
}
