//! Where a role's parent image comes from, for the inputs hash.

use crate::config::TargetSettings;
use crate::error::Error;
use crate::project::Project;
use crate::recipe::inputs::Lineage;

pub struct ProjectLineage {
    base: String,
}

impl ProjectLineage {
    pub fn new(project: &Project, target: Option<&str>) -> Result<Self, Error> {
        let name = target.unwrap_or(&project.config.project.default_target);
        let base = match project.config.targets.get(name) {
            Some(TargetSettings::Proxmox(p)) => {
                format!("proxmox:{}#{}", p.endpoint, p.base_template)
            }
            Some(TargetSettings::Local(_)) => "local:debian-12".to_owned(),
            None if name == "local" => "local:debian-12".to_owned(),
            None => {
                return Err(Error::Usage(format!(
                    "unknown target `{name}`; oxbake.toml defines no such target"
                )));
            }
        };
        Ok(Self { base })
    }
}

impl Lineage for ProjectLineage {
    fn base_identity(&self) -> String {
        self.base.clone()
    }

    fn built_version(&self, _role: &str, _hash: &str) -> Option<String> {
        None
    }
}
