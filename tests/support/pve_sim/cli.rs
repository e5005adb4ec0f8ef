//! The simulator as a target of the `oxbake` binary: a `[targets.NAME]`
//! section for a test project's oxbake.toml, and the token secret in the
//! environment variable that section names.

use oxbake::config::ProxmoxSettings;

use super::{PveSim, TOKEN_SECRET};
use crate::support::project::{Run, TestProject};

/// The variable the CLI settings name for the token secret.
pub const SECRET_ENV: &str = "OXBAKE_SIM_TOKEN_SECRET";

impl PveSim {
    /// Settings for the CLI: [`PveSim::settings`] with the secret in
    /// [`SECRET_ENV`].
    pub fn cli_settings(&self) -> ProxmoxSettings {
        ProxmoxSettings {
            token_secret_env: SECRET_ENV.into(),
            ..self.settings()
        }
    }

    /// Appends `[targets.NAME]` for `settings` to the project's oxbake.toml.
    pub fn add_target(project: &TestProject, name: &str, settings: ProxmoxSettings) {
        let mut text = project.read("oxbake.toml");
        text.push_str(&Self::target_toml(name, settings));
        project.write("oxbake.toml", &text);
    }

    /// Adds this simulator to the project as target `name`.
    pub fn add_to(&self, project: &TestProject, name: &str) {
        Self::add_target(project, name, self.cli_settings());
    }

    /// Runs `oxbake ARGS…` on `project` with the token secret set.
    pub fn oxbake(project: &TestProject, args: &[&str]) -> Run {
        project.oxbake_env(args, &[(SECRET_ENV, TOKEN_SECRET)])
    }
}
