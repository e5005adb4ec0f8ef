//! `oxbake base bootstrap` and `oxbake base import FILE-or-URL --sha256 HEX`

use serde_json::json;

use super::Ctx;
use crate::cli::BaseCommand;
use crate::error::Error;
use crate::target::local::base::{self, BootstrapOptions};
use crate::target::local::import;

pub async fn run(ctx: &Ctx<'_>, command: &BaseCommand) -> Result<(), Error> {
    let cache = base::default_cache_dir();
    let image = match command {
        BaseCommand::Bootstrap { refresh } => {
            let mut opts = BootstrapOptions::new(cache);
            opts.refresh = *refresh;
            base::bootstrap(&opts, &ctx.progress).await?
        }
        BaseCommand::Import {
            source,
            sha256,
            max_size,
        } => import::import(source, sha256, &cache, *max_size, &ctx.progress).await?,
    };
    let text = format!(
        "base image: {}\nsha256: {}\n",
        image.path.display(),
        image.sha256
    );
    let doc = json!({ "path": image.path, "sha256": image.sha256, "packages": image.packages });
    ctx.out.result(&text, &doc);
    Ok(())
}
