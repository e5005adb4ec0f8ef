//! oxbake: bake versioned, immutable Proxmox VE templates per role and deploy
//! VMs from them. The binary is a thin shell over [`main_entry`].

pub mod aptcache;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod diag;
pub mod environment;
pub mod error;
pub mod error_chain;
pub mod fsutil;
pub mod guest;
pub mod liveness;
pub mod output;
pub mod pipeline;
pub mod progress;
pub mod project;
pub mod recipe;
pub mod registry;
pub mod render;
pub mod report;
pub mod role;
pub mod scratch;
pub mod secrets;
pub mod suite;
pub mod target;
pub mod tomlfile;
pub mod vault;

use clap::Parser;

/// Runs the command line and returns the process exit code.
pub fn main_entry() -> i32 {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    let out = output::Output::new(cli.json);
    let (code, error) = match cmd::run(cli, out.clone()) {
        Ok(()) => (error::exit::OK, None),
        Err(e) => {
            for line in e.lines() {
                out.problem(&line);
            }
            (e.exit_code(), Some(e.document()))
        }
    };
    out.finish(error, code)
}

/// A command line clap refused (or `--help`, `--version`): its text on
/// stderr (stdout for help), and with `--json` the error document on stdout.
fn usage_error(e: &clap::Error) -> i32 {
    let _ = e.print();
    let code = e.exit_code();
    // Parsing failed, so `--json` is looked for by hand (before a `--`).
    let json = std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json");
    if code == error::exit::OK || !json {
        return code;
    }
    let text = e.render().to_string();
    let first = text.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first).trim();
    let doc = serde_json::json!({ "message": message, "exit": code, "problems": [] });
    output::Output::new(true).finish(Some(doc), code)
}
