//! The end-to-end fixture: one copy of the project in which `base` and `ui`
//! are baked once per test run, shared by every end-to-end test. Tests that
//! boot VMs take [`vm_lock`] so that only one set of guests runs at a time
//! on the two cores, and leftovers of one test are not blamed on another.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use oxbake::registry::{NewImage, Registry};

use super::figures::figure;
use super::output::assert_success;
use super::project::{Run, TestProject};

pub struct Baked {
    pub project: TestProject,
    /// What `oxbake build ui` printed.
    pub build: Run,
}

/// Test roles: one with a step long enough to interrupt, one whose check
/// fails. Both start from base, so they bake in a minute or two.
const PROBE: &str = r#"role = "probe"
description = "test role: a long step to interrupt"
from = "base"

[[step]]
name = "wait"
kind = "shell"
run = "echo probe-started; sleep 600"
"#;

const FAILING: &str = r#"role = "failing"
description = "test role: a check made to fail"
from = "base"

[[step]]
name = "write a marker"
kind = "shell"
run = "echo present > /etc/oxbake-marker"

[[check]]
name = "a check made to fail"
run = "cat /etc/oxbake-marker"
stdout_contains = ["absent"]
"#;

fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A test's turn with the guests; when it ends, how long it took is a
/// figure (named after the test's thread, which is the test's name).
pub struct VmTurn {
    _lock: MutexGuard<'static, ()>,
    since: Instant,
}

impl Drop for VmTurn {
    fn drop(&mut self) {
        let thread = std::thread::current();
        figure(format!(
            "{}: {:.0} s with the guests",
            thread.name().unwrap_or("a test"),
            self.since.elapsed().as_secs_f64()
        ));
    }
}

/// Serialises the tests that boot guests.
pub fn vm_lock() -> VmTurn {
    VmTurn {
        _lock: lock(),
        since: Instant::now(),
    }
}

/// The project with base and ui baked (built on first use).
pub fn baked() -> &'static Baked {
    static BAKED: OnceLock<Baked> = OnceLock::new();
    BAKED.get_or_init(|| {
        let _vms = lock();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-project");
        let project = TestProject::copy_to(&dir);
        // The KVM probe costs 15 s per process and always fails here.
        let config = project
            .read("oxbake.toml")
            .replace("accel = \"auto\"", "accel = \"tcg\"");
        project.write("oxbake.toml", &config);
        project.write("recipes/probe.toml", PROBE);
        project.write("recipes/failing.toml", FAILING);
        let started = Instant::now();
        let build = project.oxbake(&["build", "ui", "--json"]);
        figure(format!(
            "e2e fixture: `oxbake build ui` (base, ui) took {:.0} s",
            started.elapsed().as_secs_f64()
        ));
        eprintln!("{}", build.stderr());
        assert_eq!(
            build.code(),
            0,
            "oxbake build ui failed:\n{}",
            build.stderr()
        );
        Baked { project, build }
    })
}

/// Runs oxbake in the background, for tests that interrupt it.
pub fn spawn_oxbake(project: &TestProject, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_oxbake"))
        .arg("-C")
        .arg(project.root())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start oxbake")
}

/// A self-signed P-256 certificate for `cn`, valid two days, written as
/// `.oxbake/test-tls/NAME-cert.pem` and `NAME-key.pem` under `root`; returns
/// the certificate's text (the key is read with [`tls_key`]).
pub fn self_signed(root: &Path, name: &str, cn: &str) -> String {
    let dir = root.join(".oxbake/test-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .arg("-subj")
        .arg(format!("/CN={cn}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{cn}"))
        .arg("-keyout")
        .arg(dir.join(format!("{name}-key.pem")))
        .arg("-out")
        .arg(dir.join(format!("{name}-cert.pem")))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(dir.join(format!("{name}-cert.pem"))).unwrap()
}

/// The private key [`self_signed`] wrote for `name`.
pub fn tls_key(root: &Path, name: &str) -> String {
    std::fs::read_to_string(root.join(format!(".oxbake/test-tls/{name}-key.pem"))).unwrap()
}

/// A fresh unencrypted ed25519 key in OpenSSH format (no file left), for
/// the secrets that are keys (the db role's `backup_ssh_key`,
/// `backup_host_key`).
pub fn ssh_private_key(root: &Path, name: &str) -> String {
    let dir = tempfile::tempdir_in(root).unwrap();
    let path = dir.path().join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert_success(&out, "ssh-keygen");
    std::fs::read_to_string(&path).unwrap()
}

/// OpenSSH as `ops` to local VM `vm` of environment `env` through its
/// forwarded port, with the environment's key and strict checking against
/// the host keys oxbake pinned in `.oxbake/known_hosts/ENV` (`alias`: the
/// VM's static address, when the port's own line may be stale).
pub fn env_ssh(
    root: &Path,
    env: &str,
    vm: &str,
    alias: Option<&str>,
    script: &str,
) -> std::process::Output {
    env_ssh_command(root, env, vm, alias, &[])
        .arg(script)
        .output()
        .unwrap()
}

/// [`env_ssh`]'s command up to the destination, with `extra` arguments
/// before it (`-o ControlPath=…`, say); the caller adds the script.
pub fn env_ssh_command(
    root: &Path,
    env: &str,
    vm: &str,
    alias: Option<&str>,
    extra: &[&str],
) -> Command {
    let port =
        std::fs::read_to_string(root.join(format!(".oxbake/local/vms/{vm}/ssh_port"))).unwrap();
    let mut ssh = Command::new("ssh");
    ssh.args(["-o", "StrictHostKeyChecking=yes", "-o"])
        .arg(format!(
            "UserKnownHostsFile={}",
            root.join(format!(".oxbake/known_hosts/{env}")).display()
        ));
    if let Some(alias) = alias {
        ssh.arg("-o").arg(format!("HostKeyAlias={alias}"));
    }
    ssh.args(["-o", "BatchMode=yes", "-i"])
        .arg(root.join(format!(".oxbake/deploy/{env}.key")))
        .args(extra)
        .args(["-p", port.trim(), "ops@127.0.0.1"]);
    ssh
}

/// A newer version of `role`: its latest template recorded again, and
/// `channel` pointed at it, so the next deploy replaces every VM of the
/// role (and nothing else) without a bake.
pub fn record_again(project: &TestProject, role: &str, channel: &str, why: &str) {
    let registry = Registry::for_project(project.root());
    let latest = registry.latest(role, true).unwrap().expect("baked");
    let newer = registry
        .record(
            role,
            NewImage {
                inputs: latest.inputs.clone(),
                parent: latest.parent.clone(),
                target: latest.target.clone(),
                artifact: latest.artifact.clone(),
                repositories: latest.repositories.clone(),
                packages: latest.packages.clone(),
                checks: latest.checks.clone(),
                builder: latest.builder.clone(),
                size: latest.size,
            },
        )
        .unwrap();
    registry
        .set_channel(role, channel, &newer.version, "test", why)
        .unwrap();
}

/// The local target's VM folders.
pub fn vm_names(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join(".oxbake/local/vms"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The VM that holds `slot` now (`seg-base-1`, or its replacement
/// `seg-base-1-…`), when exactly one does (not in the middle of a
/// replacement).
pub fn holder(root: &Path, slot: &str) -> Option<String> {
    let names = vm_names(root);
    let mut held = names
        .into_iter()
        .filter(|n| n == slot || n.starts_with(&format!("{slot}-")));
    match (held.next(), held.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// [`holder`], which must be there.
pub fn current(root: &Path, slot: &str) -> String {
    holder(root, slot).unwrap_or_else(|| panic!("{slot}: {:?}", vm_names(root)))
}
