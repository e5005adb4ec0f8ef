//! `oxbake base bootstrap [--suite SUITE]` and
//! `oxbake base import FILE-or-URL --sha256 HEX [--suite SUITE]`

use serde_json::json;

use super::Ctx;
use crate::cli::BaseCommand;
use crate::error::Error;
use crate::suite::{Suite, UnknownSuite};
use crate::target::local::base::{self, BootstrapOptions};
use crate::target::local::import;

pub async fn run(ctx: &Ctx<'_>, command: &BaseCommand) -> Result<(), Error> {
    let cache = base::default_cache_dir();
    let image = match command {
        BaseCommand::Bootstrap { refresh, suite } => {
            let mut opts = BootstrapOptions::new(cache, suite_of(suite)?);
            opts.refresh = *refresh;
            base::bootstrap(&opts, &ctx.progress).await?
        }
        BaseCommand::Import {
            source,
            sha256,
            max_size,
            suite,
        } => {
            import::import(
                source,
                sha256,
                suite_of(suite)?,
                &cache,
                *max_size,
                &ctx.progress,
            )
            .await?
        }
    };
    let text = format!(
        "base image: {}\nsuite: {}\nsha256: {}\n",
        image.path.display(),
        image.suite,
        image.sha256
    );
    let doc = json!({
        "path": image.path,
        "suite": image.suite,
        "sha256": image.sha256,
        "packages": image.packages,
    });
    ctx.out.result(&text, &doc);
    Ok(())
}

/// `--suite` (clap let only the names of [`Suite::ALL`] through).
fn suite_of(name: &str) -> Result<Suite, Error> {
    name.parse()
        .map_err(|e: UnknownSuite| Error::Usage(e.to_string()))
}
