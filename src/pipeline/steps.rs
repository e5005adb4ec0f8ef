//! How each kind of recipe step reaches the builder VM.

use std::path::PathBuf;
use std::time::Duration;

use minijinja::Value;

use crate::guest::{Command, GuestError, GuestSession, RemoteFile, quote};
use crate::pipeline::hygiene;
use crate::project::Project;
use crate::recipe::model::{Action, Apt, AptRepository, Group, ServiceAction, User};
use crate::render::{RenderError, Renderer};
use crate::secrets::Secrets;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Guest(#[from] GuestError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` resolves outside the project; refusing to read it", .0.display())]
    Outside(PathBuf),
    #[error("secret `{0}` was not loaded")]
    Secret(String),
}

/// What every step needs besides the session.
pub struct StepContext<'a> {
    pub project: &'a Project,
    pub renderer: &'a Renderer,
    /// The role's variables and `role`.
    pub vars: Value,
    pub secrets: &'a Secrets,
    pub timeout: Duration,
}

impl StepContext<'_> {
    /// A command run as `user`, with every secret redacted from its output.
    pub fn command(&self, script: impl Into<String>, user: &str) -> Command {
        self.secrets.values().fold(
            Command::new(script).run_as(user).timeout(self.timeout),
            |c, s| c.secret(s),
        )
    }

    /// Reads `dir/rel` of the project; `oxbake check` has vetted the name,
    /// but a symlink may have been swapped in since, so where it resolves is
    /// checked again right before reading.
    fn read(&self, dir: &str, rel: &str) -> Result<Vec<u8>, StepError> {
        read_inside(&self.project.root, dir, rel)
    }
}

/// `root/dir/rel`, if it resolves inside `root`.
fn read_inside(root: &std::path::Path, dir: &str, rel: &str) -> Result<Vec<u8>, StepError> {
    let shown = PathBuf::from(dir).join(rel);
    let path = crate::render::safe_join(&root.join(dir), rel)
        .ok_or_else(|| StepError::Outside(shown.clone()))?;
    if crate::render::escapes(root, &path) {
        return Err(StepError::Outside(shown));
    }
    std::fs::read(&path).map_err(|source| StepError::Read { path, source })
}

/// Runs one step.
pub async fn apply(
    action: &Action,
    ctx: &StepContext<'_>,
    guest: &mut dyn GuestSession,
) -> Result<(), StepError> {
    match action {
        Action::Apt(apt) => self::apt(apt, ctx, guest).await,
        Action::File(f) => {
            let bytes = ctx.read("files", f.source.get_ref())?;
            guest
                .upload(
                    &bytes,
                    &remote(f.dest.get_ref(), f.mode.get_ref(), f.owner.get_ref()),
                )
                .await?;
            Ok(())
        }
        Action::Template(t) => {
            let text = ctx.renderer.render(t.source.get_ref(), &ctx.vars)?;
            guest
                .upload(
                    text.as_bytes(),
                    &remote(t.dest.get_ref(), t.mode.get_ref(), t.owner.get_ref()),
                )
                .await?;
            Ok(())
        }
        Action::Shell(sh) => {
            let script = match (&sh.run, &sh.script) {
                (Some(run), _) => run.clone(),
                (None, Some(file)) => {
                    String::from_utf8_lossy(&ctx.read("files", file.get_ref())?).into_owned()
                }
                (None, None) => String::new(),
            };
            let mut cmd = ctx.command(script, &sh.user);
            if let Some(secs) = sh.timeout {
                cmd = cmd.timeout(Duration::from_secs(secs));
            }
            guest.exec_checked(&cmd).await?;
            Ok(())
        }
        Action::Service(s) => {
            let verb = match s.action {
                ServiceAction::Enable => "enable",
                ServiceAction::Disable => "disable",
                ServiceAction::Mask => "mask",
            };
            let units: Vec<String> = s.units.iter().map(|u| quote(u)).collect();
            run(ctx, guest, format!("systemctl {verb} {}", units.join(" "))).await
        }
        Action::User(u) => run(ctx, guest, user_script(u)).await,
        Action::Group(g) => run(ctx, guest, group_script(g)).await,
    }
}

async fn run(
    ctx: &StepContext<'_>,
    guest: &mut dyn GuestSession,
    script: String,
) -> Result<(), StepError> {
    guest.exec_checked(&ctx.command(script, "root")).await?;
    Ok(())
}

async fn apt(
    apt: &Apt,
    ctx: &StepContext<'_>,
    guest: &mut dyn GuestSession,
) -> Result<(), StepError> {
    for repo in &apt.repositories {
        add_repository(repo, ctx, guest).await?;
    }
    let result = install(apt, ctx, guest).await;
    // The credentials go as soon as the step is done, whatever its outcome:
    // the checks that follow prove the image holds none.
    let credentials: Vec<String> = apt
        .repositories
        .iter()
        .filter(|r| r.username.is_some())
        .map(|r| quote(&auth_file(r.name.get_ref())))
        .collect();
    if !credentials.is_empty() {
        run(ctx, guest, hygiene::shred(&credentials.join(" "))).await?;
    }
    result
}

async fn install(
    apt: &Apt,
    ctx: &StepContext<'_>,
    guest: &mut dyn GuestSession,
) -> Result<(), StepError> {
    // Lists are fetched for every apt step: cheap next to the install, and
    // a repository added by a shell step is seen too.
    run(ctx, guest, "apt-get update -q".to_owned()).await?;
    if apt.packages.is_empty() {
        return Ok(());
    }
    let packages: Vec<String> = apt.packages.iter().map(|p| quote(p)).collect();
    let script = format!(
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
         -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {}",
        packages.join(" ")
    );
    run(ctx, guest, script).await
}

fn auth_file(repository: &str) -> String {
    format!("/etc/apt/auth.conf.d/oxbake-{repository}.conf")
}

/// Key, source list and (where the repository needs them) credentials. The
/// credentials file is removed again by the clean-up before the template is
/// made; the password travels only inside the uploaded file.
async fn add_repository(
    repo: &AptRepository,
    ctx: &StepContext<'_>,
    guest: &mut dyn GuestSession,
) -> Result<(), StepError> {
    let name = repo.name.get_ref();
    let key = ctx.read("files", repo.key.get_ref())?;
    let armored = key.starts_with(b"-----BEGIN PGP");
    let key_path = format!(
        "/etc/apt/keyrings/oxbake-{name}.{}",
        if armored { "asc" } else { "gpg" }
    );
    guest
        .upload(&key, &RemoteFile::new(&key_path, 0o644))
        .await?;
    let url = ctx
        .renderer
        .render_str("repository url", &repo.url, &ctx.vars)?;
    let suite = ctx
        .renderer
        .render_str("repository suite", &repo.suite, &ctx.vars)?;
    let line = format!(
        "deb [signed-by={key_path}] {url} {suite} {}\n",
        repo.components.join(" ")
    );
    let list = RemoteFile::new(format!("/etc/apt/sources.list.d/oxbake-{name}.list"), 0o644);
    guest.upload(line.as_bytes(), &list).await?;
    let Some(user) = &repo.username else {
        return Ok(());
    };
    let user = ctx
        .renderer
        .render_str("repository username", user, &ctx.vars)?;
    let secret = repo
        .password_secret
        .as_ref()
        .map(|s| s.get_ref().as_str())
        .unwrap_or_default();
    let password = ctx
        .secrets
        .get(secret)
        .ok_or_else(|| StepError::Secret(secret.to_owned()))?;
    // With its scheme: apt sends credentials over plain HTTP only to a
    // machine entry that names `http://` explicitly.
    let auth = format!("machine {url} login {user} password {password}\n");
    guest
        .upload(auth.as_bytes(), &RemoteFile::new(auth_file(name), 0o600))
        .await?;
    Ok(())
}

fn user_script(u: &User) -> String {
    let mut args = vec!["-s".to_owned(), quote(&u.shell)];
    if u.system {
        args.push("--system".to_owned());
    }
    match &u.home {
        Some(home) => args.extend(["-m".to_owned(), "-d".to_owned(), quote(home)]),
        None if !u.system => args.push("-m".to_owned()),
        None => {}
    }
    if !u.groups.is_empty() {
        args.extend(["-G".to_owned(), quote(&u.groups.join(","))]);
    }
    let name = quote(&u.user);
    format!(
        "id -u {name} >/dev/null 2>&1 || useradd {} {name}",
        args.join(" ")
    )
}

fn group_script(g: &Group) -> String {
    let name = quote(&g.group);
    let system = if g.system { " --system" } else { "" };
    format!("getent group {name} >/dev/null || groupadd{system} {name}")
}

/// Where a file lands: `owner` is `user` or `user:group`.
fn remote(dest: &str, mode: &str, owner: &str) -> RemoteFile {
    let mode = u32::from_str_radix(mode, 8).unwrap_or(0o644);
    let (user, group) = owner
        .split_once(':')
        .map_or((owner, None), |(u, g)| (u, Some(g)));
    let file = RemoteFile::new(dest, mode).owner(user);
    match group {
        Some(g) => file.group(g),
        None => file,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_groups_are_created_once() {
        let u = User {
            user: "ox".into(),
            system: true,
            groups: vec!["ssh-users".into(), "adm".into()],
            home: None,
            shell: "/usr/sbin/nologin".into(),
        };
        assert_eq!(
            user_script(&u),
            "id -u 'ox' >/dev/null 2>&1 || useradd -s '/usr/sbin/nologin' --system -G 'ssh-users,adm' 'ox'"
        );
        let g = Group {
            group: "ssh-users".into(),
            system: false,
        };
        assert_eq!(
            group_script(&g),
            "getent group 'ssh-users' >/dev/null || groupadd 'ssh-users'"
        );
    }

    #[test]
    fn sources_that_resolve_outside_the_project_are_not_read() {
        let project = tempfile::tempdir().unwrap();
        let files = project.path().join("files");
        std::fs::create_dir(&files).unwrap();
        std::fs::write(files.join("ok"), "fine").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("shadow"), "root:x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("shadow"), files.join("evil")).unwrap();
        assert_eq!(read_inside(project.path(), "files", "ok").unwrap(), b"fine");
        for rel in ["evil", "../files/ok", "/etc/passwd"] {
            let err = read_inside(project.path(), "files", rel).unwrap_err();
            assert!(matches!(err, StepError::Outside(_)), "{rel}: {err}");
            assert!(err.to_string().contains("resolves outside"), "{err}");
        }
    }

    #[test]
    fn owner_and_mode_are_parsed() {
        let f = remote("/etc/x", "0640", "root:adm");
        assert_eq!(
            (f.mode, f.owner.as_deref(), f.group.as_deref()),
            (0o640, Some("root"), Some("adm"))
        );
        let f = remote("/etc/x", "755", "www-data");
        assert_eq!((f.mode, f.group), (0o755, None));
    }
}
