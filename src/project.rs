//! A project on disk: `oxbake.toml`, `recipes/`, `templates/`, `files/` and
//! the registry in `images/`.

pub mod init;
mod sources;

pub use sources::SourceError;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{self, Config};
use crate::diag::{Diagnostic, Diagnostics};
use crate::recipe::{Recipe, load};

pub const CONFIG_FILE: &str = "oxbake.toml";
/// The largest oxbake.toml or recipe read (real ones are a few KiB).
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// A recipe with where it came from.
#[derive(Debug, Clone)]
pub struct RecipeFile {
    /// Relative to the project root, as shown in messages.
    pub path: PathBuf,
    pub text: String,
    pub recipe: Recipe,
}

/// Everything read from a project folder.
#[derive(Debug, Clone)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    pub recipes: BTreeMap<String, RecipeFile>,
    /// File stems of recipes that could not be read; their problems are
    /// reported already, and other checks do not pile up on top of them.
    pub broken: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("no `{CONFIG_FILE}` in `{0}` or any folder above it (use -C DIR to name the project)")]
    NotFound(PathBuf),
    #[error("`{0}` holds no `{CONFIG_FILE}`")]
    NoConfig(PathBuf),
}

/// The project folder: `dir` itself when given (it must hold oxbake.toml),
/// else the nearest folder upwards from the current one that does.
pub fn find_root(dir: Option<&Path>) -> Result<PathBuf, ProjectError> {
    if let Some(dir) = dir {
        return if dir.join(CONFIG_FILE).is_file() {
            Ok(dir.to_path_buf())
        } else {
            Err(ProjectError::NoConfig(dir.to_path_buf()))
        };
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    cwd.ancestors()
        .find(|d| d.join(CONFIG_FILE).is_file())
        .map(Path::to_path_buf)
        .ok_or(ProjectError::NotFound(cwd))
}

impl Project {
    /// Reads oxbake.toml and every recipe. Problems in any file are all
    /// reported together; nothing is half-loaded.
    pub fn load(root: &Path) -> Result<Project, Diagnostics> {
        match Self::load_partial(root) {
            (Some(project), problems) if problems.is_empty() => Ok(project),
            (_, problems) => Err(problems),
        }
    }

    /// Reads what can be read: the project (when oxbake.toml parses) with
    /// every recipe that parses, and the problems of the rest.
    pub fn load_partial(root: &Path) -> (Option<Project>, Diagnostics) {
        let mut problems = Diagnostics::default();
        let mut broken = Vec::new();
        let config = read(root, Path::new(CONFIG_FILE), &mut problems)
            .and_then(|text| collect(config::parse(Path::new(CONFIG_FILE), &text), &mut problems));
        let mut recipes = BTreeMap::new();
        for path in recipe_paths(root, &mut problems) {
            let Some(text) = read(root, &path, &mut problems) else {
                continue;
            };
            let Some(recipe) = collect(load::parse(&path, &text), &mut problems) else {
                let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
                broken.extend(stem);
                continue;
            };
            let role = recipe.role.get_ref().clone();
            if let Some(first) = recipes.get(&role) {
                let first: &RecipeFile = first;
                problems.push(Diagnostic::at(
                    &path,
                    &text,
                    recipe.role.span().start,
                    format!(
                        "duplicate role `{role}`: `{}` defines it too",
                        first.path.display()
                    ),
                ));
                continue;
            }
            recipes.insert(role, RecipeFile { path, text, recipe });
        }
        let project = config.map(|config| Project {
            root: root.to_path_buf(),
            config,
            recipes,
            broken,
        });
        (project, problems)
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.root.join("templates")
    }

    pub fn files_dir(&self) -> PathBuf {
        self.root.join("files")
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// The role named `role`, or a message listing the known ones.
    pub fn recipe(&self, role: &str) -> Result<&RecipeFile, String> {
        self.recipes.get(role).ok_or_else(|| {
            let known: Vec<_> = self.recipes.keys().map(|r| format!("`{r}`")).collect();
            format!("unknown role `{role}`; known roles: {}", known.join(", "))
        })
    }

    /// `role` and its ancestors, the root first. Assumes `from` has been
    /// validated (no cycles, no unknown roles); stops at the first gap.
    pub fn lineage(&self, role: &str) -> Vec<&RecipeFile> {
        let mut chain = Vec::new();
        let mut next = Some(role.to_owned());
        while let Some(name) = next {
            let Some(file) = self.recipes.get(&name) else {
                break;
            };
            if chain
                .iter()
                .any(|f: &&RecipeFile| f.recipe.role.get_ref() == &name)
            {
                break;
            }
            next = file.recipe.from.as_ref().map(|f| f.get_ref().clone());
            chain.push(file);
        }
        chain.reverse();
        chain
    }
}

fn read(root: &Path, rel: &Path, problems: &mut Diagnostics) -> Option<String> {
    read_input(&root.join(rel), rel)
        .map_err(|d| problems.push(d))
        .ok()
}

/// Reads an input file (`path`, shown as `rel`) as text: a regular file of at
/// most [`MAX_INPUT_BYTES`] (a FIFO would block `oxbake check` forever, a
/// huge file would fill the memory), in UTF-8 (the first bad byte is shown
/// at its place).
pub fn read_input(path: &Path, rel: &Path) -> Result<String, Diagnostic> {
    let cannot = |e: std::io::Error| Diagnostic::file(rel, format!("cannot read: {e}"));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(Diagnostic::file(rel, "not a regular file"));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(Diagnostic::file(
            rel,
            format!(
                "the file is {} bytes, larger than the limit of {MAX_INPUT_BYTES} bytes for input files",
                meta.len()
            ),
        ));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    crate::diag::utf8(bytes).map_err(|(line, column)| Diagnostic {
        line,
        column,
        ..Diagnostic::file(rel, "invalid UTF-8: input files must be UTF-8 text")
    })
}

fn collect<T>(result: Result<T, Diagnostics>, problems: &mut Diagnostics) -> Option<T> {
    result.map_err(|d| problems.extend(d)).ok()
}

fn recipe_paths(root: &Path, problems: &mut Diagnostics) -> Vec<PathBuf> {
    let dir = root.join("recipes");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(Diagnostic::file(
                Path::new("recipes"),
                format!("cannot list recipes: {e}"),
            ));
            return Vec::new();
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| p.file_name().map(|n| Path::new("recipes").join(n)))
        .collect();
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_files_must_be_small_regular_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let rel = Path::new("recipes/x.toml");
        let path = dir.path().join("x.toml");
        std::fs::write(&path, b"role = \"x\"\ndescription = \"caf\xe9\"\n").unwrap();
        let d = read_input(&path, rel).unwrap_err();
        assert_eq!((d.line, d.column), (2, 19), "{d}");
        assert!(d.message.contains("UTF-8"), "{d}");

        let big = vec![b'#'; MAX_INPUT_BYTES as usize + 1];
        std::fs::write(&path, big).unwrap();
        let d = read_input(&path, rel).unwrap_err();
        assert!(d.message.contains("larger than the limit"), "{d}");

        let fifo = dir.path().join("fifo.toml");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let d = read_input(&fifo, rel).unwrap_err();
        assert!(d.message.contains("not a regular file"), "{d}");

        std::fs::write(&path, "role = \"x\"\n").unwrap();
        assert_eq!(read_input(&path, rel).unwrap(), "role = \"x\"\n");
    }
}
