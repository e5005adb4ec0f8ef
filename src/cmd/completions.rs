//! `oxbake completions SHELL` and `oxbake man`: what shells and `man` read,
//! generated from the command line's own definition, so they never lag it.

use clap::CommandFactory;

use super::Ctx;
use crate::cli::Cli;
use crate::error::Error;

pub fn completions(ctx: &Ctx<'_>, shell: &str) -> Result<(), Error> {
    let shell = match shell {
        "zsh" => clap_complete::Shell::Zsh,
        "fish" => clap_complete::Shell::Fish,
        _ => clap_complete::Shell::Bash,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "oxbake", &mut script);
    let text = String::from_utf8_lossy(&script).into_owned();
    ctx.out.result(
        &text,
        &serde_json::json!({ "shell": shell.to_string(), "script": text }),
    );
    Ok(())
}

pub fn man(ctx: &Ctx<'_>) -> Result<(), Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Error::Failed(format!("cannot render the manual page: {e}")))?;
    let text = String::from_utf8_lossy(&page).into_owned();
    ctx.out.result(&text, &serde_json::json!({ "man": text }));
    Ok(())
}
