//! The command line (clap). No logic here: `cmd/` does the work.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "oxbake",
    version,
    about = "Bake versioned Proxmox VE templates per role, then clone them"
)]
pub struct Cli {
    /// The project folder (default: the nearest folder upwards with oxbake.toml).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print one JSON document on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate oxbake.toml, every recipe and every template; contacts nothing.
    Check,
    /// Print a role's inputs hash and the inputs it covers.
    Inputs {
        role: String,
        /// The target whose base image roles without a parent start from.
        #[arg(long)]
        target: Option<String>,
    },
}
