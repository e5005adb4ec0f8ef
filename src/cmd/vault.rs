//! `oxbake vault view | encrypt FILE | edit`

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tokio::signal::unix::{SignalKind, signal};

use super::Ctx;
use crate::cli::VaultCommand;
use crate::config::{self, SecretsSettings};
use crate::error::Error;
use crate::project::{CONFIG_FILE, ProjectError};
use crate::vault::{self, Edited, Header, Password, VaultError, VaultFile};

pub async fn run(ctx: &Ctx<'_>, command: &VaultCommand) -> Result<(), Error> {
    match command {
        VaultCommand::View { file } => view(ctx, file.as_deref()),
        VaultCommand::Encrypt { file, vault_id } => encrypt(ctx, file, vault_id.clone()),
        VaultCommand::Edit { file } => edit(ctx, file.as_deref()).await,
    }
}

/// The project folder and its `[secrets]` settings. Outside a project (no
/// `-C`, no oxbake.toml upwards) a vault named on the command line still
/// works, with the password from the environment.
fn settings(ctx: &Ctx<'_>, file_given: bool) -> Result<(PathBuf, SecretsSettings), Error> {
    let root = match ctx.project_root() {
        Ok(root) => root,
        Err(Error::Project(ProjectError::NotFound(cwd))) if file_given => {
            return Ok((cwd, SecretsSettings::default()));
        }
        Err(e) => return Err(e),
    };
    let path = root.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Usage(format!("`{}`: cannot read it: {e}", path.display())))?;
    let config = config::parse(Path::new(CONFIG_FILE), &text).map_err(Error::Invalid)?;
    Ok((root, config.secrets))
}

/// The vault named on the command line (relative to the current folder),
/// else the configured one (relative to the project).
fn vault_file(
    root: &Path,
    settings: &SecretsSettings,
    file: Option<&Path>,
) -> Result<VaultFile, Error> {
    match (file, &settings.vault) {
        (Some(file), _) => Ok(VaultFile {
            path: file.to_path_buf(),
            shown: file.display().to_string(),
        }),
        (None, Some(rel)) => Ok(VaultFile::new(root, rel)),
        (None, None) => Err(VaultError::NotConfigured.into()),
    }
}

fn view(ctx: &Ctx<'_>, file: Option<&Path>) -> Result<(), Error> {
    let (root, settings) = settings(ctx, file.is_some())?;
    let vault = vault_file(&root, &settings, file)?;
    let password = Password::resolve(&root, &settings, &vault.shown)?;
    let opened = vault.open(&password)?;
    let json = if ctx.out.json {
        serde_json::to_value(vault.parse(&opened.plaintext)?).unwrap_or_default()
    } else {
        serde_json::Value::Null
    };
    let mut text = opened.plaintext;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    ctx.out.result(&text, &json);
    Ok(())
}

fn encrypt(ctx: &Ctx<'_>, file: &Path, vault_id: Option<String>) -> Result<(), Error> {
    if let Some(label) = &vault_id {
        vault::check_label(label)?;
    }
    let (root, settings) = settings(ctx, true)?;
    let vault = vault_file(&root, &settings, Some(file))?;
    let text = std::fs::read_to_string(file).map_err(|source| VaultError::Read {
        path: vault.shown.clone(),
        source,
    })?;
    if vault::looks_encrypted(&text) {
        return Err(VaultError::AlreadyEncrypted { path: vault.shown }.into());
    }
    // The file is replaced under its name (a link's under its target's):
    // another hard link would keep the plaintext.
    let links = std::fs::metadata(file).map_or(1, |m| m.nlink());
    if links > 1 {
        return Err(VaultError::HardLinks {
            path: vault.shown,
            links,
        }
        .into());
    }
    let names = vault.parse(&text)?.len();
    let password = Password::resolve(&root, &settings, &vault.shown)?;
    vault.seal(&Header { vault_id }, &text, &password)?;
    ctx.out.result(
        &format!("encrypted `{}` ({names} secret(s))\n", vault.shown),
        &serde_json::json!({ "vault": vault.shown, "secrets": names }),
    );
    Ok(())
}

async fn edit(ctx: &Ctx<'_>, file: Option<&Path>) -> Result<(), Error> {
    let (root, settings) = settings(ctx, file.is_some())?;
    let vault = vault_file(&root, &settings, file)?;
    let password = Password::resolve(&root, &settings, &vault.shown)?;
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_owned());
    // From here on SIGINT, SIGTERM and SIGHUP (a dropped SSH session) no
    // longer end oxbake at once: they end the edit, which removes its
    // plaintext copy, and oxbake exits 130.
    let interrupted = interrupted().map_err(|e| VaultError::TempDir {
        path: vault.shown.clone(),
        source: e,
    })?;
    let edited = match vault::edit(&vault, &password, &editor, interrupted).await {
        Err(e @ VaultError::Interrupted { .. }) => {
            ctx.progress.warn(e.to_string());
            return Err(Error::Interrupted);
        }
        other => other?,
    };
    let changed = match edited {
        Edited::Unchanged => false,
        Edited::Saved { problem } => {
            if let Some(problem) = problem {
                ctx.out.problem(&format!("warning: saved, but {problem}"));
            }
            true
        }
    };
    let what = if changed { "saved" } else { "unchanged" };
    ctx.out.result(
        &format!("vault `{}`: {what}\n", vault.shown),
        &serde_json::json!({ "vault": vault.shown, "changed": changed }),
    );
    Ok(())
}

/// A future that resolves at the first SIGINT, SIGTERM or SIGHUP; the three
/// are caught from this call on.
fn interrupted() -> std::io::Result<impl Future<Output = ()>> {
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
    })
}
