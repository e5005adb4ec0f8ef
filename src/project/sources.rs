//! Where a recipe's `source`, `script` or `key` is: a file inside the
//! project's files/ or templates/ (the one its kind reads), after every
//! symlink is followed, the intermediate folders' too. A link from files/ to
//! the deploy keys in .oxbake/, to .git/, to the vault password file or to
//! anywhere outside the folder would put that file into an image or a
//! deployed VM; it is refused, and nothing reads through it.

use std::path::{Path, PathBuf};

use super::Project;

/// Why a named source cannot be used. Messages name it as `dir/name`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("`{name}` must be a relative path inside {dir}/ (no `..`, not absolute)")]
    NotRelative { dir: String, name: String },
    #[error(
        "`{dir}/{name}` resolves outside the project (a symlink); sources must stay inside {dir}/"
    )]
    OutsideProject { dir: String, name: String },
    #[error(
        "`{dir}/{name}` resolves to `{to}`, outside {dir}/ (a symlink); sources must stay \
         inside {dir}/"
    )]
    OutsideFolder {
        dir: String,
        name: String,
        to: String,
    },
    #[error("`{dir}/{name}` does not exist")]
    Missing { dir: String, name: String },
}

impl Project {
    /// The real path of the file `name` names inside the folder `dir`
    /// (`files` or `templates`) of the project, every symlink resolved;
    /// refused unless it is a file inside that folder (the folder itself
    /// not a link).
    pub fn source_path(&self, dir: &str, name: &str) -> Result<PathBuf, SourceError> {
        let names = || (dir.to_owned(), name.to_owned());
        let plain = Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !plain || name.is_empty() {
            let (dir, name) = names();
            return Err(SourceError::NotRelative { dir, name });
        }
        let missing = || {
            let (dir, name) = names();
            SourceError::Missing { dir, name }
        };
        let root = self.root.canonicalize().map_err(|_| missing())?;
        let real = self
            .root
            .join(dir)
            .join(name)
            .canonicalize()
            .map_err(|_| missing())?;
        if !real.starts_with(root.join(dir)) {
            let (dir, name) = names();
            return Err(match real.strip_prefix(&root) {
                Ok(inside) => SourceError::OutsideFolder {
                    dir,
                    name,
                    to: inside.display().to_string(),
                },
                Err(_) => SourceError::OutsideProject { dir, name },
            });
        }
        if !real.is_file() {
            return Err(missing());
        }
        Ok(real)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;
    use crate::config::Config;

    fn project(root: &Path) -> Project {
        let config: Config = toml::from_str("[project]\nname = \"p\"\n").unwrap();
        Project {
            root: root.to_path_buf(),
            config,
            recipes: Default::default(),
            broken: Vec::new(),
        }
    }

    #[test]
    fn every_link_is_followed_and_must_end_inside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for d in ["files/sub", "templates", ".oxbake", ".git"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for f in [
            "files/sub/a",
            "templates/t.j2",
            ".oxbake/deploy",
            ".git/config",
            "vault-pass",
            "oxbake.toml",
        ] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        symlink("sub/a", root.join("files/inner")).unwrap();
        symlink("../.oxbake/deploy", root.join("files/key")).unwrap();
        symlink("../.git/config", root.join("files/git")).unwrap();
        symlink("../vault-pass", root.join("files/pw")).unwrap();
        symlink("..", root.join("files/up")).unwrap();
        symlink("../templates/t.j2", root.join("files/tmpl")).unwrap();
        symlink("step2", root.join("files/step1")).unwrap();
        symlink("/etc/hostname", root.join("files/step2")).unwrap();
        symlink("nowhere", root.join("files/dangling")).unwrap();
        let p = project(root);
        assert!(p.source_path("files", "sub/a").is_ok());
        assert!(p.source_path("files", "inner").is_ok());
        assert!(p.source_path("templates", "t.j2").is_ok());
        let to = |name: &str| match p.source_path("files", name) {
            Err(SourceError::OutsideFolder { to, .. }) => to,
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(to("key"), ".oxbake/deploy");
        assert_eq!(to("git"), ".git/config");
        assert_eq!(to("pw"), "vault-pass");
        assert_eq!(to("up/.oxbake/deploy"), ".oxbake/deploy");
        assert_eq!(to("up/oxbake.toml"), "oxbake.toml");
        assert_eq!(to("tmpl"), "templates/t.j2");
        assert!(matches!(
            p.source_path("files", "step1"),
            Err(SourceError::OutsideProject { .. })
        ));
        for missing in ["dangling", "sub", "none"] {
            assert!(
                matches!(
                    p.source_path("files", missing),
                    Err(SourceError::Missing { .. })
                ),
                "{missing}"
            );
        }
        for bad in ["../oxbake.toml", "/etc/passwd", "", "sub/../a"] {
            assert!(
                matches!(
                    p.source_path("files", bad),
                    Err(SourceError::NotRelative { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_linked_folder_is_not_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("elsewhere")).unwrap();
        std::fs::write(root.join("elsewhere/a"), "x").unwrap();
        symlink("elsewhere", root.join("files")).unwrap();
        let p = project(root);
        assert!(matches!(
            p.source_path("files", "a"),
            Err(SourceError::OutsideFolder { .. })
        ));
    }
}
