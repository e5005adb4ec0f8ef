//! `oxbake publish ROLE@VERSION --target PVE` (see `pipeline/publish`).

use serde_json::json;

use super::Ctx;
use crate::error::Error;
use crate::pipeline::publish::{self, PublishRequest};
use crate::registry::{ImageRef, Registry};

pub async fn run(ctx: &Ctx<'_>, image: &str, target: &str) -> Result<(), Error> {
    // Watched from the start: an interrupt at any step ends with what the
    // step made removed, the record unchanged and exit 130.
    super::signals::watching(&ctx.progress, |cancel| async move {
        let project = ctx.checked_project()?;
        let registry = Registry::for_project(&project.root);
        let reference: ImageRef = image.parse()?;
        let record = registry.resolve(&reference)?;
        let req = PublishRequest {
            role: &record.role,
            version: record.version,
            target,
        };
        let pve = publish::open(&project, &req, &ctx.progress)?;
        let outcome =
            publish::publish(&project, &registry, &pve, &req, &ctx.progress, cancel).await?;
        let text = match outcome.published {
            true => format!(
                "published `{}` to `{}`: template `{}` ({}/{}), sha256 {}\n",
                outcome.image,
                outcome.target,
                outcome.template,
                outcome.node,
                outcome.vmid,
                outcome.sha256
            ),
            false => format!(
                "`{}` is already published to `{}`: template `{}` ({}/{}); nothing was done\n",
                outcome.image, outcome.target, outcome.template, outcome.node, outcome.vmid
            ),
        };
        ctx.out.result(&text, &json!({ "publish": outcome }));
        Ok::<(), Error>(())
    })
    .await
}
