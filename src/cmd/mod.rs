//! One file per command: each turns parsed arguments into calls on the
//! core and hands the result to [`Output`].

mod backup;
mod base;
mod build;
mod channels;
mod check;
mod completions;
mod deploy;
mod deployed;
mod diff;
mod gc;
mod images;
mod init;
mod inputs;
mod inspect;
mod nightly;
mod prune;
mod publish;
mod sbom;
mod signals;
mod vault;

use tokio::sync::watch;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::guest::SshConnector;
use crate::output::Output;
use crate::pipeline::Context;
use crate::progress::{self, Progress};
use crate::project::{self, Project};
use crate::registry::Registry;
use crate::role::validate;
use crate::target::OpenTarget;

/// Runs one command line; results go to `out`.
pub fn run(cli: Cli, out: Output) -> Result<(), Error> {
    // Not the operator's input: a failure of this machine (exit 1).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Failed(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(dispatch(cli, out))
}

async fn dispatch(cli: Cli, out: Output) -> Result<(), Error> {
    let (progress, events) = Progress::channel();
    let drawing = progress::draw(events);
    let ctx = Ctx {
        cli: &cli,
        out,
        progress,
    };
    let result = match &cli.command {
        Command::Check => check::run(&ctx),
        Command::Init { dir } => init::run(&ctx, dir.as_deref()),
        Command::Inputs { role, target } => inputs::run(&ctx, role, target.as_deref()).await,
        Command::Build {
            roles,
            target,
            if_changed,
            refresh,
            keep_on_failure,
            jobs,
        } => {
            let opts = crate::pipeline::BuildOptions {
                if_changed: *if_changed,
                refresh: *refresh,
                keep_on_failure: *keep_on_failure,
                jobs: *jobs,
            };
            build::run(
                &ctx,
                build::BuildArgs {
                    roles,
                    target: target.as_deref(),
                    opts,
                },
            )
            .await
        }
        Command::Ls { role, target } => images::ls(&ctx, role.as_deref(), target.as_deref()).await,
        Command::Show { image } => images::show(&ctx, image),
        Command::Inspect { image } => inspect::run(&ctx, image).await,
        Command::Base(command) => base::run(&ctx, command).await,
        Command::Gc { target, dry_run } => gc::run(&ctx, target.as_deref(), *dry_run).await,
        Command::Vault(command) => vault::run(&ctx, command).await,
        Command::Promote {
            role,
            version,
            channel,
            force,
            reason,
            target,
        } => {
            let args = channels::PromoteArgs {
                role,
                version,
                channel,
                force: *force,
                reason: reason.as_deref(),
                target: target.as_deref(),
            };
            channels::promote(&ctx, &args).await
        }
        Command::Publish { image, target } => publish::run(&ctx, image, target).await,
        Command::Rollback {
            role,
            channel,
            reason,
            target,
        } => channels::rollback(&ctx, role, channel, reason.as_deref(), target.as_deref()).await,
        Command::Revoke {
            role,
            version,
            reason,
            target,
        } => channels::revoke(&ctx, role, version, reason, target.as_deref()).await,
        Command::Prune { dry_run, target } => prune::run(&ctx, target.as_deref(), *dry_run).await,
        Command::Diff { role, v1, v2 } => diff::run(&ctx, role, v1, v2),
        Command::Nightly {
            target,
            refresh,
            plan,
            jobs,
        } => {
            let args = nightly::NightlyArgs {
                target: target.as_deref(),
                refresh: *refresh,
                plan: *plan,
                jobs: *jobs,
            };
            nightly::run(&ctx, args).await
        }
        Command::Deploy { env, plan, jobs } => deploy::run(&ctx, env, *plan, *jobs).await,
        Command::Destroy { env, all } => deploy::destroy(&ctx, env, *all).await,
        Command::Inventory { env } => deployed::inventory(&ctx, env).await,
        Command::Status { env } => deployed::status(&ctx, env).await,
        Command::Ssh { env, vm, command } => deployed::ssh(&ctx, env, vm, command).await,
        Command::Backup { env, now } => backup::backup(&ctx, env, *now).await,
        Command::Restore {
            env,
            from,
            force: _,
            reason,
        } => backup::restore(&ctx, env, from, reason.as_deref()).await,
        Command::Sbom { image, format } => sbom::run(&ctx, image, format),
        Command::Schema { of } => completions::schema(&ctx, of),
        Command::Completions { shell } => completions::completions(&ctx, shell),
        Command::Man => completions::man(&ctx),
    };
    drop(ctx);
    let _ = drawing.await;
    result
}

/// What every command gets.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub out: Output,
    pub progress: Progress,
}

impl Ctx<'_> {
    /// The pipeline's context over an opened target, reaching guests over
    /// SSH and reporting through this command's progress.
    pub fn pipeline<'a>(
        &self,
        project: &'a Project,
        registry: &'a Registry,
        open: &'a OpenTarget,
        cancel: watch::Receiver<bool>,
    ) -> Context<'a> {
        Context::new(
            project,
            registry,
            open,
            &SshConnector,
            self.progress.clone(),
            cancel,
        )
    }

    pub fn project_root(&self) -> Result<std::path::PathBuf, Error> {
        Ok(project::find_root(self.cli.dir.as_deref())?)
    }

    /// Loads the project and refuses to go on if `oxbake check` would fail.
    pub fn checked_project(&self) -> Result<Project, Error> {
        let root = self.project_root()?;
        let project = Project::load(&root).map_err(Error::Invalid)?;
        let problems = validate::validate(&project);
        if problems.is_empty() {
            Ok(project)
        } else {
            Err(Error::Invalid(problems))
        }
    }
}
