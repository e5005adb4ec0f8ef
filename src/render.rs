//! minijinja templates from `templates/`. Undefined variables are errors, not
//! empty strings, and a template can only reach files below `templates/`.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior, Value};

use crate::guest::Redactor;

/// How much work one render may do before it is stopped (a template loop
/// that never ends is an error, not a hang).
const FUEL: u64 = 5_000_000;

mod output;
pub mod refs;
mod roles;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template `{name}` line {line}: {message}")]
    Template {
        name: String,
        line: usize,
        message: String,
    },
}

impl RenderError {
    /// Every error leaves here: its text goes through `redactor`, since
    /// minijinja quotes values (a computed include name, an operand) and a
    /// value may be a secret.
    fn from_minijinja(name: &str, e: &minijinja::Error, redactor: &Redactor) -> Self {
        let message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        RenderError::Template {
            name: redactor.redact(e.name().unwrap_or(name)),
            line: e.line().unwrap_or(1),
            message: redactor.redact(&message),
        }
    }
}

/// The project's template environment.
pub struct Renderer {
    env: Environment<'static>,
    /// The secrets the contexts may hold, hidden in every error.
    redactor: Redactor,
}

impl Renderer {
    pub fn new(templates_dir: &Path) -> Self {
        let mut env = environment();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        let dir = templates_dir.to_path_buf();
        // Templates may be symlinks, but never to anything outside the
        // project (the folder that holds `templates/`).
        let bound = templates_dir
            .parent()
            .unwrap_or(templates_dir)
            .to_path_buf();
        env.set_loader(move |name| load(&dir, &bound, name));
        Self {
            env,
            redactor: Redactor::default(),
        }
    }

    /// The same environment, with `secrets` (every value its contexts may
    /// hold) hidden in its errors, also as minijinja quotes them.
    pub fn redacting<'a>(mut self, secrets: impl IntoIterator<Item = &'a str>) -> Self {
        let mut forms = Vec::new();
        for secret in secrets {
            let repr = format!("{:?}", Value::from(secret));
            forms.push(repr[1..repr.len() - 1].to_owned());
            forms.push(secret.to_owned());
        }
        self.redactor = Redactor::new(&forms);
        self
    }

    /// Renders template `name` (a path below `templates/`) with `context`.
    pub fn render(&self, name: &str, context: &Value) -> Result<String, RenderError> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| RenderError::from_minijinja(name, &e, &self.redactor))?;
        template
            .render(context)
            .map_err(|e| RenderError::from_minijinja(name, &e, &self.redactor))
    }

    /// Renders an inline template string (a recipe value such as a
    /// repository URL that names variables).
    pub fn render_str(
        &self,
        what: &str,
        source: &str,
        context: &Value,
    ) -> Result<String, RenderError> {
        self.env
            .render_str(source, context)
            .map_err(|e| RenderError::from_minijinja(what, &e, &self.redactor))
    }
}

/// Configuration files keep their final newline, and block tags do not
/// leave blank lines behind.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let syntax = SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build();
    if let Ok(syntax) = syntax {
        env.set_syntax(syntax);
    }
    output::install(&mut env);
    roles::install(&mut env);
    env.add_function("fail", fail);
    env
}

/// `{{ fail("why") }}`: a template refuses a combination of values it cannot
/// write (an S3 repository without its keys); the render fails with `why`,
/// before any VM is touched.
fn fail(why: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        minijinja::ErrorKind::InvalidOperation,
        why,
    ))
}

/// Compiles `source` on its own and reports its syntax error, if any, with
/// the byte range it covers.
pub fn syntax_error(name: &str, source: &str) -> Option<(Option<std::ops::Range<usize>>, String)> {
    let env = environment();
    let err = env.template_from_named_str(name, source).err()?;
    let message = err.detail().map_or_else(
        || err.kind().to_string(),
        |d| format!("{}: {d}", err.kind()),
    );
    let range = err.range().or_else(|| {
        err.line()
            .map(|l| line_offset(source, l)..line_offset(source, l))
    });
    Some((range, message))
}

/// The variables a template reads that it does not define itself, with
/// attribute paths (`secrets.db_password`).
/// minijinja's own functions (`range`, `dict`, `namespace`, …) are not
/// variables: a template may always call them.
pub fn undeclared(name: &str, source: &str) -> BTreeSet<String> {
    let env = environment();
    let global = |var: &String| {
        let head = var.split('.').next().unwrap_or(var);
        env.globals().any(|(g, _)| g == head)
    };
    env.template_from_named_str(name, source)
        .map(|t| {
            let vars = t.undeclared_variables(true);
            vars.into_iter().filter(|v| !global(v)).collect()
        })
        .unwrap_or_default()
}

/// Other templates this one includes, imports or extends, by the literal
/// names it gives them (computed names are found by [`refs::scan`]).
pub fn references(source: &str) -> BTreeSet<String> {
    refs::scan(source)
        .into_iter()
        .filter_map(|r| match r.name {
            refs::Name::Literal(name) => Some(name),
            refs::Name::Computed(_) => None,
        })
        .collect()
}

/// Where in `source` the first use of a variable is, for error positions.
pub fn first_use(source: &str, var: &str) -> usize {
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(i) = source[from..].find(var) {
        let start = from + i;
        let end = start + var.len();
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let before_ok = start == 0 || !ident(bytes[start - 1]) && bytes[start - 1] != b'.';
        let after_ok = end >= bytes.len() || !ident(bytes[end]);
        if before_ok && after_ok {
            return start;
        }
        from = end;
    }
    0
}

fn line_offset(source: &str, line: usize) -> usize {
    source
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum()
}

fn load(dir: &Path, bound: &Path, name: &str) -> Result<Option<String>, minijinja::Error> {
    let Some(path) = safe_join(dir, name) else {
        return Ok(None);
    };
    if escapes(bound, &path) {
        return Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("template `{name}` resolves outside the project"),
        ));
    }
    // Only regular files: reading a FIFO would block the render for ever.
    if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
        return Ok(None);
    }
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("cannot read template `{name}`: {e}"),
        )),
    }
}

/// `dir/name` when `name` is a plain relative path that stays inside `dir`.
pub fn safe_join(dir: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    let plain = rel.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && !name.is_empty()).then(|| dir.join(rel))
}

/// Whether `path`, with every symlink resolved, lies outside `root`. A path
/// that does not resolve (missing, a dangling link) does not escape: reading
/// it fails on its own.
pub fn escapes(root: &Path, path: &Path) -> bool {
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(real)) => !real.starts_with(root),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::*;

    #[test]
    fn fail_refuses_the_render_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let r = Renderer::new(dir.path());
        let source = "{% if not key %}{{ fail('an S3 repository needs its keys') }}{% endif %}ok";
        let err = r
            .render_str("s3.env.j2", source, &minijinja::context!(key => ""))
            .unwrap_err();
        assert!(
            err.to_string().contains("an S3 repository needs its keys"),
            "{err}"
        );
        let ok = r.render_str("s3.env.j2", source, &minijinja::context!(key => "k"));
        assert_eq!(ok.unwrap(), "ok");
    }

    #[test]
    fn undefined_variables_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.j2"), "port {{ port }}\n").unwrap();
        let r = Renderer::new(dir.path());
        assert_eq!(
            r.render("a.j2", &context!(port => 443)).unwrap(),
            "port 443\n"
        );
        let err = r.render("a.j2", &context!()).unwrap_err().to_string();
        assert!(err.contains("undefined"), "{err}");
    }

    #[test]
    fn templates_cannot_leave_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.j2"), "{% include '../secret' %}").unwrap();
        let r = Renderer::new(dir.path());
        assert!(r.render("a.j2", &context!()).is_err());
        assert!(safe_join(dir.path(), "/etc/passwd").is_none());
        assert!(safe_join(dir.path(), "x/../../y").is_none());
    }

    #[test]
    fn symlinks_out_of_the_project_are_refused() {
        let project = tempfile::tempdir().unwrap();
        let templates = project.path().join("templates");
        std::fs::create_dir(&templates).unwrap();
        std::fs::write(project.path().join("inside.txt"), "in\n").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s3cret\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), templates.join("out.j2"))
            .unwrap();
        std::os::unix::fs::symlink("../inside.txt", templates.join("in.j2")).unwrap();
        let r = Renderer::new(&templates);
        assert_eq!(r.render("in.j2", &context!()).unwrap(), "in\n");
        let err = r.render("out.j2", &context!()).unwrap_err().to_string();
        assert!(err.contains("resolves outside the project"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
        assert!(escapes(project.path(), &templates.join("out.j2")));
        let fifo = templates.join("fifo.j2");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        std::fs::write(templates.join("inc.j2"), "{% include n %}").unwrap();
        let err = r.render("inc.j2", &context!(n => "fifo.j2")).unwrap_err();
        assert!(err.to_string().contains("not found"), "{err}");
        assert!(!escapes(project.path(), &templates.join("missing.j2")));
    }

    #[test]
    fn errors_hide_the_secrets_they_quote_in_every_form() {
        let dir = tempfile::tempdir().unwrap();
        let key = "-----BEGIN-----\nline-one-secret\nline-two-'\"secret\n";
        let cases = [
            "{% include secrets.key %}",
            "{% include ['x', secrets.key] %}",
            "{% extends secrets.key %}",
            "{% include secrets.short %}",
            "{% import secrets.short as m %}",
            "{% include '../' ~ secrets.short %}",
        ];
        for (i, text) in cases.iter().enumerate() {
            std::fs::write(dir.path().join(format!("{i}.j2")), text).unwrap();
        }
        std::fs::write(dir.path().join("pw-123456"), "{{ broken }").unwrap();
        let ctx = context!(secrets => context!(key => key, short => "pw-123456"));
        let plain = Renderer::new(dir.path());
        let redacting = Renderer::new(dir.path()).redacting([key, "pw-123456"]);
        for i in 0..cases.len() {
            let name = format!("{i}.j2");
            // Each case does quote a secret...
            let leaked = plain.render(&name, &ctx).unwrap_err().to_string();
            assert!(
                leaked.contains("line-one") || leaked.contains("pw-123456"),
                "{name}: {leaked}"
            );
            // ... which the redacting renderer hides.
            let err = redacting.render(&name, &ctx).unwrap_err().to_string();
            for trace in ["line-one", "line-two", "pw-123456"] {
                assert!(!err.contains(trace), "{name}: {err}");
            }
            assert!(err.contains(crate::guest::REDACTED), "{name}: {err}");
        }
    }

    #[test]
    fn endless_loops_run_out_of_fuel() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.j2"),
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
        )
        .unwrap();
        let err = Renderer::new(dir.path())
            .render("a.j2", &context!())
            .unwrap_err();
        assert!(err.to_string().contains("fuel"), "{err}");
    }

    #[test]
    fn undeclared_variables_keep_attribute_paths() {
        let vars = undeclared(
            "t",
            "{{ secrets.db }} {{ env.host }} {% set x = 1 %}{{ x }}{{ role }}",
        );
        assert_eq!(
            vars.into_iter().collect::<Vec<_>>(),
            ["env.host", "role", "secrets.db"]
        );
        let vars = undeclared(
            "t",
            "{% for i in range(3) %}{{ dict(a=i) }}{{ n }}{% endfor %}",
        );
        assert_eq!(vars.into_iter().collect::<Vec<_>>(), ["n"]);
    }

    #[test]
    fn references_and_positions() {
        let refs = references("{% include \"a.j2\" %}{%- import 'm.j2' as m -%}");
        assert_eq!(refs.into_iter().collect::<Vec<_>>(), ["a.j2", "m.j2"]);
        assert_eq!(first_use("{{ xport }} {{ port }}", "port"), 15);
    }

    #[test]
    fn syntax_errors_have_a_range() {
        let (range, msg) = syntax_error("t", "line\n{{ oops }\n").unwrap();
        assert!(range.is_some(), "{msg}");
        assert!(syntax_error("t", "{{ fine }}").is_none());
    }
}
