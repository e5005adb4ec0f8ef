//! `oxbake init [DIR]`: a new project that bakes one role. oxbake.toml with
//! the local target, `recipes/base.toml` with steps and checks, `.oxbake/`
//! in `.gitignore`, and a README line when there is no README. It writes no
//! file over another: a folder that is a project already, or holds a file
//! init would write, is refused before anything is written.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::CONFIG_FILE;

const CONFIG: &str = include_str!("init/oxbake.toml");
const BASE: &str = include_str!("init/base.toml");
const IGNORE: &str = ".oxbake/";

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("`{}` is an oxbake project already: it holds {CONFIG_FILE}", .0.display())]
    Exists(PathBuf),
    #[error("`{}` exists: oxbake init writes no file over another", .0.display())]
    Taken(PathBuf),
    #[error("`{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What init wrote: files made, and files it added a line to.
#[derive(Debug, Default)]
pub struct Initialized {
    pub name: String,
    pub created: Vec<PathBuf>,
    pub amended: Vec<PathBuf>,
}

/// The project's name: the folder's, as a valid name (`My Images` ->
/// `my-images`), else `project`.
pub fn name_for(dir: &Path) -> String {
    let raw = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => c,
            _ => '-',
        })
        .collect();
    let name = name.trim_matches(['-', '_']).to_owned();
    if crate::config::is_valid_name(&name) {
        name
    } else {
        "project".into()
    }
}

pub fn init(dir: &Path) -> Result<Initialized, InitError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InitError::Io { path, source }
    };
    if dir.join(CONFIG_FILE).exists() {
        return Err(InitError::Exists(dir.to_path_buf()));
    }
    let base = dir.join("recipes/base.toml");
    if base.exists() {
        return Err(InitError::Taken(base));
    }
    fs::create_dir_all(dir).map_err(io(dir))?;
    let absolute = fs::canonicalize(dir).map_err(io(dir))?;
    let mut done = Initialized {
        name: name_for(&absolute),
        ..Initialized::default()
    };
    let result = write_all(dir, &mut done);
    if result.is_err() {
        for path in done.created.iter().rev() {
            let _ = fs::remove_file(path);
        }
        let _ = fs::remove_dir(dir.join("recipes"));
    }
    result.map(|()| done)
}

fn write_all(dir: &Path, done: &mut Initialized) -> Result<(), InitError> {
    let config = CONFIG.replace("{{name}}", &done.name);
    create(&dir.join(CONFIG_FILE), &config, done)?;
    let recipes = dir.join("recipes");
    fs::create_dir_all(&recipes).map_err(|source| InitError::Io {
        path: recipes.clone(),
        source,
    })?;
    create(&recipes.join("base.toml"), BASE, done)?;
    let readme = dir.join("README.md");
    if !readme.exists() {
        let text = format!(
            "# {}\n\nGolden VM images baked with oxbake: `oxbake check`, then `oxbake build base`.\n",
            done.name
        );
        create(&readme, &text, done)?;
    }
    // Last: the one change to a file that was there before.
    let ignore = dir.join(".gitignore");
    match fs::read_to_string(&ignore) {
        Ok(text)
            if text
                .lines()
                .any(|l| matches!(l.trim(), ".oxbake/" | ".oxbake")) => {}
        Ok(text) => {
            let sep = if text.is_empty() || text.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            fs::OpenOptions::new()
                .append(true)
                .open(&ignore)
                .and_then(|mut f| f.write_all(format!("{sep}{IGNORE}\n").as_bytes()))
                .map_err(|source| InitError::Io {
                    path: ignore.clone(),
                    source,
                })?;
            done.amended.push(ignore);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = format!("# oxbake's work folder: VMs, keys, caches\n{IGNORE}\n");
            create(&ignore, &text, done)?;
        }
        Err(source) => {
            return Err(InitError::Io {
                path: ignore,
                source,
            });
        }
    }
    Ok(())
}

/// Writes a new file; one that appeared meanwhile is not overwritten.
fn create(path: &Path, text: &str, done: &mut Initialized) -> Result<(), InitError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => InitError::Taken(path.to_path_buf()),
            _ => InitError::Io {
                path: path.to_path_buf(),
                source,
            },
        })?;
    done.created.push(path.to_path_buf());
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| InitError::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_folder() {
        assert_eq!(name_for(Path::new("/srv/My Images")), "my-images");
        assert_eq!(name_for(Path::new("/srv/ox_bake-2")), "ox_bake-2");
        assert_eq!(name_for(Path::new("/srv/ÄÖ")), "project");
        assert_eq!(name_for(Path::new("/")), "project");
    }
}
