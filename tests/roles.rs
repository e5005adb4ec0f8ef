//! The shipped roles against the real programs: every template renders with
//! example values (tests/data/role-values.toml), the rendered configurations
//! are accepted by sshd, nginx, MariaDB, nft, Fail2Ban, Postfix, HAProxy and
//! keepalived, and the
//! recipes' checks expect what those programs really print.
//!
//! The programs must be installed (CI installs them): a missing one fails
//! the test, it is not skipped. Tests that load a firewall or start a
//! daemon do it in a network namespace of their own (`unshare -n`), so the
//! host's network is never touched.

mod backup;
mod backup_s3;
mod fail2ban;
mod fail2ban_probes;
mod firewall;
mod galera;
mod lb;
mod mariadb;
mod monitoring;
mod nginx;
mod postfix;
mod render;
mod sshd;

use std::path::Path;
use std::process::{Command, Output};

use minijinja::Value;
use minijinja::value::Serde;
use oxbake::project::Project;
use oxbake::recipe::{Action, Check, Recipe};
use oxbake::render::Renderer;
use oxbake::role::role_vars;

pub use crate::support::output::{assert_success, stdout};

pub const ROLES: &[&str] = &[
    "base",
    "backend",
    "ui",
    "services",
    "db",
    "lb",
    "monitoring",
    "backup",
];

/// The repository's project with the example deploy values.
pub struct Roles {
    pub project: Project,
    values: toml::Table,
    renderer: Renderer,
}

impl Roles {
    pub fn load() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let project = Project::load(root).expect("the shipped project loads");
        let text = std::fs::read_to_string(root.join("tests/data/role-values.toml"))
            .expect("read tests/data/role-values.toml");
        let values: toml::Table = toml::from_str(&text).expect("role-values.toml parses");
        let renderer = Renderer::new(&project.templates_dir());
        Self {
            project,
            values,
            renderer,
        }
    }

    pub fn recipe(&self, role: &str) -> &Recipe {
        &self.project.recipe(role).expect("known role").recipe
    }

    /// Replaces one example value (`section` is `env`, `secrets`, `vm` or
    /// `image`).
    pub fn set(&mut self, role: &str, section: &str, key: &str, value: impl Into<toml::Value>) {
        let role_table = self
            .values
            .entry(role)
            .or_insert_with(|| toml::Table::new().into());
        let table = role_table
            .as_table_mut()
            .expect("role table")
            .entry(section)
            .or_insert_with(|| toml::Table::new().into());
        table
            .as_table_mut()
            .expect("section table")
            .insert(key.to_owned(), value.into());
    }

    /// Gives `role`'s deploy templates the `env.roles` of the shipped
    /// project's environment `env` (every role's addresses and VMs there,
    /// as deploy gives them; every version 2026.11.25.1).
    pub fn use_environment_roles(&mut self, role: &str, env: &str) {
        let environment = &self.project.config.environments[env];
        let names: std::collections::BTreeSet<&String> = self
            .project
            .recipes
            .keys()
            .chain(environment.roles.keys())
            .collect();
        let roles: toml::Table = names
            .into_iter()
            .map(|name| {
                let addresses: Vec<toml::Value> = environment
                    .roles
                    .get(name)
                    .map(|r| {
                        let r = r.get_ref();
                        r.slot_addresses().map(|a| a.to_string().into()).collect()
                    })
                    .unwrap_or_default();
                let vms: Vec<toml::Value> = addresses
                    .iter()
                    .enumerate()
                    .map(|(i, address)| {
                        let mut vm = toml::Table::new();
                        vm.insert("name".into(), format!("{env}-{name}-{}", i + 1).into());
                        vm.insert("address".into(), address.clone());
                        vm.insert("slot".into(), (i as i64 + 1).into());
                        vm.into()
                    })
                    .collect();
                let mut entry = toml::Table::new();
                entry.insert("addresses".to_owned(), addresses.into());
                entry.insert("version".to_owned(), "2026.11.25.1".into());
                entry.insert("vms".to_owned(), vms.into());
                (name.clone(), entry.into())
            })
            .collect();
        self.set(role, "env", "roles", roles);
    }

    fn section(&self, role: &str, section: &str) -> toml::Table {
        self.values
            .get(role)
            .and_then(|r| r.get(section))
            .and_then(|s| s.as_table())
            .cloned()
            .unwrap_or_default()
    }

    fn vars(&self, role: &str) -> toml::Table {
        let mut vars: toml::Table = role_vars(&self.project, role).into_iter().collect();
        vars.insert("role".to_owned(), role.into());
        vars
    }

    /// What a bake template sees: the role's variables and `role`.
    pub fn bake_context(&self, role: &str) -> Value {
        Value::from(Serde(self.vars(role)))
    }

    /// What a deploy template sees: the bake context plus `env`, `secrets`,
    /// `vm` and `image`. Without example `env.roles`, every role of the
    /// project runs nowhere.
    pub fn deploy_context(&self, role: &str) -> Value {
        let mut all = self.vars(role);
        for section in ["env", "secrets", "vm", "image"] {
            all.insert(section.to_owned(), self.section(role, section).into());
        }
        if let Some(toml::Value::Table(env)) = all.get_mut("env") {
            env.entry("roles").or_insert_with(|| {
                let mut none = toml::Table::new();
                none.insert("addresses".into(), toml::Value::Array(vec![]));
                none.insert("vms".into(), toml::Value::Array(vec![]));
                let roles: toml::Table = self
                    .project
                    .recipes
                    .keys()
                    .map(|name| (name.clone(), none.clone().into()))
                    .collect();
                roles.into()
            });
        }
        Value::from(Serde(all))
    }

    pub fn render_bake(&self, role: &str, source: &str) -> String {
        self.renderer
            .render(source, &self.bake_context(role))
            .unwrap_or_else(|e| panic!("role `{role}`: {e}"))
    }

    pub fn render_deploy(&self, role: &str, source: &str) -> String {
        self.try_render_deploy(role, source)
            .unwrap_or_else(|e| panic!("role `{role}`: {e}"))
    }

    pub fn try_render_deploy(
        &self,
        role: &str,
        source: &str,
    ) -> Result<String, oxbake::render::RenderError> {
        self.renderer.render(source, &self.deploy_context(role))
    }

    /// (source, dest) of the role's bake template steps.
    pub fn bake_templates(&self, role: &str) -> Vec<(String, String)> {
        self.recipe(role)
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::Template(t) => Some((t.source.get_ref().clone(), t.dest.get_ref().clone())),
                _ => None,
            })
            .collect()
    }

    /// (source, dest) of the role's deploy templates.
    pub fn deploy_templates(&self, role: &str) -> Vec<(String, String)> {
        self.recipe(role)
            .deploy
            .templates
            .iter()
            .map(|t| (t.source.get_ref().clone(), t.dest.get_ref().clone()))
            .collect()
    }

    /// The bake template that becomes `dest` in the role's image.
    pub fn bake_source_for(&self, role: &str, dest: &str) -> String {
        self.bake_templates(role)
            .into_iter()
            .find(|(_, d)| d == dest)
            .unwrap_or_else(|| panic!("role `{role}` writes no `{dest}`"))
            .0
    }

    /// The deploy template that becomes `dest` on a deployed VM.
    pub fn deploy_source_for(&self, role: &str, dest: &str) -> String {
        self.deploy_templates(role)
            .into_iter()
            .find(|(_, d)| d == dest)
            .unwrap_or_else(|| panic!("role `{role}` deploys no `{dest}`"))
            .0
    }

    /// The role's checks whose command is exactly `run`.
    /// The role's checks that run `run`, alone or as the last command
    /// (after a wait loop, say).
    pub fn checks(&self, role: &str, run: &str) -> Vec<&Check> {
        let last = format!("; {run}");
        self.recipe(role)
            .checks
            .iter()
            .filter(|c| c.run == run || c.run.ends_with(&last))
            .collect()
    }
}

/// `a.b.c` in a template context, as text.
pub fn lookup(context: &Value, path: &str) -> String {
    path.split('.')
        .try_fold(context.clone(), |v, key| v.get_attr(key))
        .ok()
        .filter(|v| !v.is_undefined())
        .unwrap_or_else(|| panic!("no `{path}` in the context"))
        .to_string()
}

/// Runs a program; a program that is not installed fails the test.
pub fn run(program: &str, args: &[&str]) -> Output {
    command(Command::new(program).args(args), program)
}

/// Runs a prepared command, naming `program` when it cannot start.
pub fn command(cmd: &mut Command, program: &str) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("`{program}` is not installed; see scripts/host-deps (the role tests need it)")
        }
        Err(e) => panic!("cannot run `{program}`: {e}"),
    }
}

/// Runs `sh -c SCRIPT` in a new network namespace with loopback up.
pub fn in_netns(script: &str) -> Output {
    let full = format!("PATH=/usr/sbin:/usr/bin:/sbin:/bin; ip link set lo up && {script}");
    run("unshare", &["-n", "sh", "-c", &full])
}

/// Asserts that `output` meets `check`'s expectations, as the pipeline
/// would judge the check's stdout.
pub fn assert_check(role: &str, check: &Check, output: &str) {
    for want in &check.stdout_contains {
        assert!(
            output.contains(want.as_str()),
            "role `{role}`, check `{}`: `{want}` is not in:\n{output}",
            check.name
        );
    }
    for unwanted in &check.stdout_lacks {
        assert!(
            !output.contains(unwanted.as_str()),
            "role `{role}`, check `{}`: `{unwanted}` is in:\n{output}",
            check.name
        );
    }
}

/// A throwaway self-signed TLS pair for `mail.dev.example.org`, made by
/// openssl in `dir`: (certificate, key), PEM without the last newline.
pub fn made_tls_pair(dir: &Path) -> (String, String) {
    let (cert, key) = (dir.join("made.crt"), dir.join("made.key"));
    let openssl = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=mail.dev.example.org",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ],
    );
    assert_success(&openssl, "openssl req");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap().trim_end().to_owned();
    (read(&cert), read(&key))
}

/// Writes `text` to `dir/rel`, making folders as needed.
pub fn write(dir: &Path, rel: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create folder");
    }
    std::fs::write(&path, text).expect("write file");
    path
}

/// [`write`], then `mode` (a key that OpenSSH reads, a script to run).
pub fn write_mode(dir: &Path, rel: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let path = write(dir, rel, text);
    let perms = std::os::unix::fs::PermissionsExt::from_mode(mode);
    std::fs::set_permissions(&path, perms).expect("set mode");
    path
}
