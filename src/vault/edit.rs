//! `oxbake vault edit`: the plaintext goes to a 0600 file in a 0700
//! temporary folder, the editor runs on it, and a changed text is encrypted
//! back over the vault (atomically, same header). The folder is removed
//! whatever happens, its file emptied first: on success, on an error, and
//! when `interrupted` resolves (the command line resolves it at SIGINT,
//! SIGTERM and SIGHUP): then the editor is stopped first (see
//! [`super::editor`]), so it cannot write the plaintext back, and the vault
//! is left as it was.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::editor::run_editor;
use super::{Password, VaultError, VaultFile};

/// What an edit did.
#[derive(Debug)]
pub enum Edited {
    Unchanged,
    /// Saved; `problem` says why oxbake cannot read the new mapping (the
    /// text is saved anyway, so no edit is lost).
    Saved {
        problem: Option<VaultError>,
    },
}

/// Runs `editor` (a shell word list, like `$EDITOR`) on the decrypted vault.
pub async fn edit(
    vault: &VaultFile,
    password: &Password,
    editor: &str,
    interrupted: impl Future<Output = ()>,
) -> Result<Edited, VaultError> {
    let opened = vault.open(password)?;
    let temp_err = |source| VaultError::TempDir {
        path: vault.shown.clone(),
        source,
    };
    let dir = tempfile::Builder::new()
        .prefix("oxbake-vault-")
        .permissions(Permissions::from_mode(0o700))
        .tempdir()
        .map_err(temp_err)?;
    let name = vault.path.file_name().unwrap_or("vault.yml".as_ref());
    let file = dir.path().join(name);
    let result = match write_private(&file, opened.plaintext.as_bytes()) {
        Ok(()) => run_editor(editor, &file, &vault.shown, interrupted).await,
        Err(e) => Err(temp_err(e)),
    }
    .and_then(|()| fs::read(&file).map_err(temp_err));
    // Best effort: the data blocks are freed empty; the folder goes on drop.
    let _ = fs::write(&file, b"");
    drop(dir);
    let new = String::from_utf8(result?).map_err(|_| VaultError::NotUtf8 {
        path: vault.shown.clone(),
    })?;
    if new == opened.plaintext {
        return Ok(Edited::Unchanged);
    }
    vault.seal(&opened.header, &new, password)?;
    Ok(Edited::Saved {
        problem: vault.parse(&new).err(),
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
