//! The registry as the source of parents' versions for the inputs hash.

use crate::registry::{Registry, Sha256};
use crate::role::inputs::Lineage;
use crate::suite::Suite;
use crate::target::BaseIdentities;

pub struct RegistryLineage<'a> {
    pub registry: &'a Registry,
    /// The target's base images.
    pub bases: BaseIdentities,
}

impl Lineage for RegistryLineage<'_> {
    fn base_identity(&self, suite: Suite) -> String {
        self.bases.of(suite).to_owned()
    }

    fn built_version(&self, role: &str, hash: &str) -> Option<String> {
        let hash: Sha256 = hash.parse().ok()?;
        let record = self.registry.find_by_inputs(role, &hash).ok()??;
        Some(record.version.to_string())
    }
}
