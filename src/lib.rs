//! oxbake: bake versioned, immutable Proxmox VE templates per role and deploy
//! VMs from them. The binary is a thin shell over [`main_entry`].

pub mod cli;
pub mod cmd;
pub mod config;
pub mod diag;
pub mod environment;
pub mod error;
pub mod guest;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod project;
pub mod recipe;
pub mod registry;
pub mod render;
pub mod secrets;
pub mod target;
pub mod tomlfile;
pub mod vault;

use clap::Parser;

/// Runs the command line and returns the process exit code.
pub fn main_entry() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let out = output::Output { json: cli.json };
    match cmd::run(cli) {
        Ok(()) => error::exit::OK,
        Err(e) => {
            for line in e.lines() {
                out.problem(&line);
            }
            e.exit_code()
        }
    }
}
