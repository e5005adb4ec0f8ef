//! One file per command: each turns parsed arguments into calls on the
//! core and hands the result to [`Output`].

mod check;
mod inputs;
mod lineage;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::output::Output;
use crate::project::{self, Project};
use crate::recipe::validate;

/// Runs one command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    let out = Output { json: cli.json };
    let ctx = Ctx { cli: &cli, out };
    match &cli.command {
        Command::Check => check::run(&ctx),
        Command::Inputs { role, target } => inputs::run(&ctx, role, target.as_deref()),
    }
}

/// What every command gets.
pub struct Ctx<'a> {
    pub cli: &'a Cli,
    pub out: Output,
}

impl Ctx<'_> {
    /// Loads the project and refuses to go on if `oxbake check` would fail.
    pub fn checked_project(&self) -> Result<Project, Error> {
        let root = project::find_root(self.cli.dir.as_deref())?;
        let project = Project::load(&root).map_err(Error::Invalid)?;
        let problems = validate::validate(&project);
        if problems.is_empty() {
            Ok(project)
        } else {
            Err(Error::Invalid(problems))
        }
    }
}
