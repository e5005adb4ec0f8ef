//! oxbake's own key for an environment: `.oxbake/deploy/ENV.key`, made on
//! first use, 0600 in a 0700 folder. It is added to the deploy user so that
//! oxbake can wait for cloud-init and run the role's checks over SSH.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::DeployError;
use crate::guest::ClientKey;

/// Where environment `env`'s key lives.
pub fn path(root: &Path, env: &str) -> PathBuf {
    crate::pipeline::context::WorkDirs::of(root)
        .deploy_keys()
        .join(format!("{env}.key"))
}

/// The key, if it was made.
pub fn load(root: &Path, env: &str) -> Result<Option<ClientKey>, DeployError> {
    let file = path(root, env);
    match std::fs::read_to_string(&file) {
        Ok(text) => ClientKey::from_openssh(&text)
            .map(Some)
            .map_err(DeployError::key),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(DeployError::Io { path: file, source }),
    }
}

/// Loads the key, making it first if there is none.
pub fn load_or_create(root: &Path, env: &str) -> Result<ClientKey, DeployError> {
    if let Some(key) = load(root, env)? {
        return Ok(key);
    }
    let file = path(root, env);
    let io = |e: std::io::Error| DeployError::Io {
        path: file.clone(),
        source: e,
    };
    let key = ClientKey::generate().map_err(DeployError::key)?;
    let text = key.private_openssh().map_err(DeployError::key)?;
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
    }
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file)
        .map_err(io)?;
    out.write_all(text.as_bytes()).map_err(io)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path(), "lab").unwrap();
        let again = load_or_create(dir.path(), "lab").unwrap();
        assert_eq!(first.public_line().unwrap(), again.public_line().unwrap());
        let mode = std::fs::metadata(path(dir.path(), "lab"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
