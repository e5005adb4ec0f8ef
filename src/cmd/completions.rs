//! `oxbake completions SHELL`, `oxbake man` and `oxbake schema recipe|config`:
//! what shells, `man` and TOML editors read, generated from the command line's
//! and the files' own definitions, so they never lag them.

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

pub fn schema(ctx: &Ctx<'_>, of: &str) -> Result<(), Error> {
    let schema = match of {
        "config" => crate::config::schema::config_schema(),
        _ => crate::recipe::schema::recipe_schema(),
    };
    let text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    ctx.out.result(&format!("{text}\n"), &schema);
    Ok(())
}
