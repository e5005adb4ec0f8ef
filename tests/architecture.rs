//! The layering of src/ (docs/architecture.md), checked from the files
//! themselves with std only; and the docs: a README under 8 KB that links
//! every docs/ page, and relative links (and their anchors) that resolve.
//!
//! Imports are read from every `crate::…` path (in `use` lines, groups
//! included, and in code) and every `super::…` path, resolved against the
//! module it is written in (inline `mod x { … }` blocks included). Comments
//! and string literals are not code and are skipped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Which modules a rule covers, by their top-level name (`lib` is
/// src/lib.rs; src/main.rs is the binary and is not read).
enum Scope {
    In(&'static [&'static str]),
    AllBut(&'static [&'static str]),
}

/// What the modules in scope may import (by top-level module name).
enum Imports {
    Only(&'static [&'static str]),
    Never(&'static [&'static str]),
}

struct Rule {
    scope: Scope,
    imports: Imports,
    why: &'static str,
}

/// The layering. Add a row for each new rule (e.g. "config imports no
/// project/environment" once config is a leaf).
const RULES: &[Rule] = &[
    Rule {
        scope: Scope::AllBut(&["cmd", "cli", "lib"]),
        imports: Imports::Never(&["cmd", "cli"]),
        why: "core never imports the command layer: cli -> cmd -> core",
    },
    Rule {
        scope: Scope::In(&["target"]),
        imports: Imports::Only(&[
            "target", "config", "progress", "diag", "fsutil", "suite", "scratch",
        ]),
        why: "a target knows its settings and reports progress, nothing of the pipeline",
    },
    Rule {
        scope: Scope::In(&["guest"]),
        imports: Imports::Only(&["guest", "config", "progress", "diag", "fsutil"]),
        why: "the guest connection knows its settings and reports progress, nothing more",
    },
    Rule {
        scope: Scope::In(&["aptcache"]),
        imports: Imports::Only(&["aptcache"]),
        why: "the package cache is a proxy and its store: it knows no build, target or registry",
    },
    Rule {
        scope: Scope::In(&["registry"]),
        imports: Imports::Never(&["target", "pipeline", "cmd", "report"]),
        why: "the registry is storage only: it compares nothing with live targets, renders nothing",
    },
    Rule {
        scope: Scope::In(&["config"]),
        imports: Imports::Only(&["config", "diag", "tomlfile", "suite"]),
        why: "oxbake.toml's schema is a leaf: what validates it against the project sits above it",
    },
    Rule {
        scope: Scope::In(&["suite"]),
        imports: Imports::Only(&["suite"]),
        why: "the Debian releases are a leaf: recipes, targets and the pipeline name them",
    },
    // No import cycle among config, environment, project, recipe, render and
    // role: each of these rows keeps one direction.
    Rule {
        scope: Scope::In(&["recipe"]),
        imports: Imports::Only(&["recipe", "diag", "tomlfile"]),
        why: "the recipe format is a leaf: what a role's recipe means in its project is role/",
    },
    Rule {
        scope: Scope::In(&["render"]),
        imports: Imports::Only(&["render", "diag", "guest"]),
        why: "rendering takes its variables as values; it does not look roles up",
    },
    Rule {
        scope: Scope::In(&["project"]),
        imports: Imports::Never(&["role", "environment", "render", "pipeline"]),
        why: "the project on disk sits below what is resolved from it",
    },
    Rule {
        scope: Scope::In(&["environment"]),
        imports: Imports::Never(&["role", "recipe", "render", "pipeline"]),
        why: "environments are validated against the project, not against roles",
    },
    Rule {
        scope: Scope::In(&["report"]),
        imports: Imports::Never(&["cmd", "cli"]),
        why: "reports are values turned into text; the command prints them",
    },
];

/// Imports that break a rule today and are on their way out: (file, the
/// module it imports). A row that no longer matches anything fails the test,
/// so that it is removed once the code has moved.
const KNOWN: &[(&str, &str)] = &[];

#[test]
fn the_layering_holds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|path| {
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read_to_string(path).unwrap())
        })
        .filter(|(rel, _)| rel != "src/main.rs")
        .collect();
    assert!(sources.len() > 50, "src/ was not read: {}", sources.len());
    let found = violations(&sources);
    let (known, new): (Vec<_>, Vec<_>) = found
        .iter()
        .partition(|v| KNOWN.contains(&(v.file.as_str(), v.import.as_str())));
    assert!(
        new.is_empty(),
        "imports that break the layering (docs/architecture.md):\n{}",
        lines(&new)
    );
    for (file, import) in KNOWN {
        assert!(
            known.iter().any(|v| v.file == *file && v.import == *import),
            "{file} no longer imports {import}: remove its row from KNOWN"
        );
    }
}

#[test]
fn a_violation_fails_the_check() {
    let fake = |file: &str, text: &str| vec![(file.to_owned(), text.to_owned())];
    let cases = [
        // A plain `use` of the command layer from core.
        (
            fake("src/pipeline/promote.rs", "use crate::cmd::targets;\n"),
            "cmd",
        ),
        // Inside a group.
        (
            fake(
                "src/pipeline/x.rs",
                "use crate::{progress::Progress, cli::{Cli, Command}};\n",
            ),
            "cli",
        ),
        // A path in code, not in a `use`.
        (
            fake("src/recipe/mod.rs", "fn f() { crate::cmd::run(); }\n"),
            "cmd",
        ),
        // `super` climbing out of the module to the crate root.
        (
            fake(
                "src/pipeline/deploy/mod.rs",
                "use super::super::cmd::signals;\n",
            ),
            "cmd",
        ),
        (
            fake(
                "src/pipeline/deploy/apply.rs",
                "use super::super::super::cli;\n",
            ),
            "cli",
        ),
        // A target reaching into the pipeline or the registry.
        (
            fake("src/target/local/mod.rs", "use crate::pipeline::Cancel;\n"),
            "pipeline",
        ),
        (
            fake("src/guest/session.rs", "use crate::registry::Registry;\n"),
            "registry",
        ),
        (
            fake(
                "src/registry/store.rs",
                "pub(crate) use crate::target::TemplateRef;\n",
            ),
            "target",
        ),
    ];
    for (sources, import) in cases {
        let found = violations(&sources);
        assert!(
            found.iter().any(|v| v.import == import),
            "not caught: {:?} -> {found:?}",
            sources[0]
        );
    }
}

#[test]
fn what_is_not_an_import_is_not_a_violation() {
    let sources = vec![
        (
            "src/config.rs".to_owned(),
            // Inline test modules: `super` is the file's module, not its parent.
            "//! See [`crate::cmd::run`].\n\
             use crate::diag::Problem;\n\
             const HELP: &str = \"run crate::cmd::x { or }\";\n\
             const RAW: &str = r#\"crate::cli \"{\"#;\n\
             fn f<'a>(x: &'a str) -> char { '{' }\n\
             #[cfg(test)]\n\
             mod tests {\n    use super::*; // crate::cli\n    mod deeper { use super::super::HELP; }\n}\n"
                .to_owned(),
        ),
        (
            "src/target/local/mod.rs".to_owned(),
            "use super::{types::Vm, error::TargetError};\nuse crate::{config, progress::Progress};\nuse std::io;\n"
                .to_owned(),
        ),
        (
            "src/cmd/build.rs".to_owned(),
            "use crate::cli::Command;\nuse crate::pipeline;\n".to_owned(),
        ),
    ];
    let found = violations(&sources);
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(
        imports_of("src/target/local/mod.rs", &sources[1].1),
        BTreeSet::from([
            "config".to_owned(),
            "progress".to_owned(),
            "target".to_owned()
        ])
    );
}

#[derive(Debug)]
struct Violation {
    file: String,
    import: String,
    why: &'static str,
}

fn lines(found: &[&Violation]) -> String {
    found
        .iter()
        .map(|v| format!("  {} imports crate::{}: {}\n", v.file, v.import, v.why))
        .collect()
}

fn violations(sources: &[(String, String)]) -> Vec<Violation> {
    let mut found = Vec::new();
    for (file, text) in sources {
        let module = module_path(file);
        let top = module.first().map_or("lib", String::as_str);
        let imports = imports_of(file, text);
        for rule in RULES {
            let covered = match rule.scope {
                Scope::In(names) => names.contains(&top),
                Scope::AllBut(names) => !names.contains(&top),
            };
            if !covered {
                continue;
            }
            for import in &imports {
                let broken = match rule.imports {
                    Imports::Only(names) => !names.contains(&import.as_str()),
                    Imports::Never(names) => names.contains(&import.as_str()),
                };
                if broken {
                    found.push(Violation {
                        file: file.clone(),
                        import: import.clone(),
                        why: rule.why,
                    });
                }
            }
        }
    }
    found
}

/// The top-level modules a file's code names, its own included.
fn imports_of(file: &str, text: &str) -> BTreeSet<String> {
    let code = code_only(text);
    let file_module = module_path(file);
    let mut tops = BTreeSet::new();
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    // Inline modules: (name, the depth inside their braces).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut pending_mod: Option<String> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'{' {
            depth += 1;
            if let Some(name) = pending_mod.take() {
                inline.push((name, depth));
            }
            i += 1;
            continue;
        }
        if c == b'}' {
            if inline.last().is_some_and(|(_, d)| *d == depth) {
                inline.pop();
            }
            depth = depth.saturating_sub(1);
            i += 1;
            continue;
        }
        if c == b';' {
            pending_mod = None;
        }
        let boundary = i == 0 || !is_ident(bytes[i - 1]) && bytes[i - 1] != b':';
        if !boundary || !is_ident(c) {
            i += 1;
            continue;
        }
        let word_end = (i..bytes.len())
            .find(|&j| !is_ident(bytes[j]))
            .unwrap_or(bytes.len());
        let word = &code[i..word_end];
        if word == "mod" {
            let rest = code[word_end..].trim_start();
            let name: String = rest
                .bytes()
                .take_while(|b| is_ident(*b))
                .map(char::from)
                .collect();
            pending_mod = Some(name);
        } else if (word == "crate" || word == "super") && code[word_end..].starts_with("::") {
            let mut here = file_module.clone();
            here.extend(inline.iter().map(|(name, _)| name.clone()));
            let (paths, end) = parse_paths(&code, i);
            for path in paths {
                if let Some(top) = resolve(&here, &path) {
                    tops.insert(top);
                }
            }
            i = end;
            continue;
        }
        i = word_end;
    }
    tops
}

/// The top-level module a path names, seen from module `here`.
fn resolve(here: &[String], path: &[String]) -> Option<String> {
    let mut at: Vec<String> = here.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            at.clear();
            rest = &rest[1..];
        }
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                at.pop()?;
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    at.extend(rest.iter().cloned());
    at.into_iter()
        .next()
        .filter(|top| top != "*" && top != "self")
}

/// Parses `a::b::{c, d::{e as f}, *}` at `start`: the leaf paths and where
/// the path ends.
fn parse_paths(code: &str, start: usize) -> (Vec<Vec<String>>, usize) {
    let bytes = code.as_bytes();
    let mut prefix = Vec::new();
    let mut i = start;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i < bytes.len() && bytes[i] == b'{' {
            let mut paths = Vec::new();
            i += 1;
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'}' {
                    return (paths, i + 1);
                }
                let (inner, end) = parse_paths(code, i);
                for path in inner {
                    let mut full = prefix.clone();
                    full.extend(path);
                    paths.push(full);
                }
                // Skip an `as alias`.
                i = end;
                while i < bytes.len() && !matches!(bytes[i], b',' | b'}') {
                    i += 1;
                }
            }
        }
        let seg_end = (i..bytes.len())
            .find(|&j| !(is_ident(bytes[j]) || bytes[j] == b'*'))
            .unwrap_or(bytes.len());
        if seg_end == i {
            return (vec![prefix], i);
        }
        prefix.push(code[i..seg_end].to_owned());
        i = seg_end;
        if code[i..].starts_with("::") {
            i += 2;
        } else {
            return (vec![prefix], i);
        }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The text with comments removed and string and char literals blanked
/// (line breaks kept).
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut nesting = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    nesting += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    nesting -= 1;
                    i += 2;
                    if nesting == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && raw_string_starts(&chars, i) {
            // A raw string: r"…", r#"…"#, …
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            i += 2 + hashes;
            let close: Vec<char> = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while i < chars.len() && !chars[i..].starts_with(&close) {
                if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                } else if chars[i] == '\n' {
                    out.push('\n');
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{…}'); otherwise a lifetime.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push_str("' '");
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push_str("' '");
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether the `r` at `i` begins a raw string (`r"`, `r#"`, `br"`).
fn raw_string_starts(chars: &[char], i: usize) -> bool {
    let word_char = |at: usize| chars[at].is_alphanumeric() || chars[at] == '_';
    let starts_word = match i {
        0 => true,
        _ if chars[i - 1] == 'b' => i == 1 || !word_char(i - 2),
        _ => !word_char(i - 1),
    };
    let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
    starts_word && chars.get(i + 1 + hashes) == Some(&'"')
}

/// `src/a/b/mod.rs` and `src/a/b.rs` are `a::b`; `src/lib.rs` is the root.
fn module_path(file: &str) -> Vec<String> {
    let rel = file.strip_prefix("src/").unwrap_or(file);
    let rel = rel.strip_suffix(".rs").unwrap_or(rel);
    let mut parts: Vec<String> = rel.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

// The docs: a README that is a front door, and links that lead somewhere.

const README_LIMIT: u64 = 8 * 1024;

#[test]
fn the_readme_is_a_front_door_under_8_kb() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let size = std::fs::metadata(root.join("README.md")).unwrap().len();
    assert!(
        size < README_LIMIT,
        "README.md is {size} bytes; move reference text to docs/"
    );
}

#[test]
fn every_docs_page_is_linked_from_the_readme() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let targets: BTreeSet<String> = links(&readme)
        .into_iter()
        .map(|l| l.split('#').next().unwrap().to_owned())
        .collect();
    let pages = docs_pages(root);
    assert!(!pages.is_empty(), "docs/ has no pages");
    for page in pages {
        let rel = format!("docs/{}", page.file_name().unwrap().to_string_lossy());
        assert!(targets.contains(&rel), "README.md does not link {rel}");
    }
}

#[test]
fn every_relative_link_in_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    files.extend(docs_pages(root));
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            let name = file.strip_prefix(root).unwrap().display();
            if !target.exists() {
                broken.push(format!("{name}: {link}: no such file"));
                continue;
            }
            let is_md = target.extension().is_some_and(|e| e == "md");
            if !anchor.is_empty() && is_md {
                let text = std::fs::read_to_string(&target).unwrap();
                if !anchors(&text).contains(anchor) {
                    broken.push(format!("{name}: {link}: no such heading"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn links_and_anchors_are_read_as_markdown_does() {
    let text = "# The `oxbake.toml` file\nSee [a](docs/a.md#x-y), [b](b.md) and `[c](not/a/link)`.\n\
                ```sh\n[d](in/code)\n```\n## Failures, interrupts\n";
    assert_eq!(links(text), ["docs/a.md#x-y", "b.md"]);
    assert_eq!(
        anchors(text),
        BTreeSet::from([
            "the-oxbaketoml-file".to_owned(),
            "failures-interrupts".to_owned()
        ])
    );
}

fn docs_pages(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root.join("docs")) else {
        return Vec::new();
    };
    let mut pages: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// Markdown text outside code blocks and code spans.
fn prose(text: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of `[text](target)` links.
fn links(text: &str) -> Vec<String> {
    let prose = prose(text);
    let mut found = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            found.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
    }
    found
}

/// GitHub's anchors of a page's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut found = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        found.insert(slug);
    }
    found
}

#[test]
fn every_command_is_in_the_readme_table_and_documented_in_docs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cli = std::fs::read_to_string(root.join("src/cli.rs")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let docs: String = docs_pages(root)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let commands = commands(&cli);
    assert!(
        commands.len() >= 15,
        "src/cli.rs was not read: {commands:?}"
    );
    for command in commands {
        let word = command.rsplit(' ').next().unwrap();
        let in_table = readme
            .lines()
            .filter(|l| l.starts_with("| `"))
            .any(|l| l.split('|').nth(1).unwrap().contains(word));
        assert!(
            in_table,
            "`oxbake {command}` is not in README.md's command table"
        );
        assert!(
            docs.contains(&format!("oxbake {command}")),
            "`oxbake {command}` is documented in no docs/ page"
        );
    }
}

/// The commands of src/cli.rs: `build`, …, `base bootstrap`, `vault edit`.
fn commands(cli: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut group: Option<&str> = None;
    for line in cli.lines() {
        if let Some(rest) = line.strip_prefix("pub enum ") {
            group = match rest.trim_end_matches(" {") {
                "Command" => Some(""),
                "BaseCommand" => Some("base "),
                "VaultCommand" => Some("vault "),
                _ => None,
            };
            continue;
        }
        let Some(prefix) = group else { continue };
        if line == "}" {
            group = None;
            continue;
        }
        let Some(variant) = line.strip_prefix("    ") else {
            continue;
        };
        let name: String = variant
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        let subcommand = variant.starts_with(char::is_uppercase)
            && variant[name.len()..].starts_with([' ', ',', '('])
            && !(prefix.is_empty() && matches!(name.as_str(), "Base" | "Vault"));
        if subcommand {
            found.push(format!("{prefix}{}", name.to_lowercase()));
        }
    }
    found
}
