//! Reading many records at once: every record of a role, and the lists
//! `oxbake ls` and `oxbake prune` work from. Parsing is the cost, so the
//! versions are read on every core, results kept in version order.

use super::{ImageRecord, ImageSummary, Registry, RegistryError, Version, record_text};

impl Registry {
    /// Every record of `role`, oldest first.
    pub fn records(&self, role: &str) -> Result<Vec<ImageRecord>, RegistryError> {
        self.each_version(role, |v| self.get(role, v))
    }

    /// The records of every role (or just `role`) in name order, each one's
    /// versions newest first.
    pub fn list(&self, role: Option<&str>) -> Result<Vec<ImageRecord>, RegistryError> {
        self.newest_first(role, |role| self.records(role))
    }

    /// What `oxbake ls [ROLE]` shows, in the order of [`Registry::list`]:
    /// records without their package lists, which are not built (each file
    /// is still read whole and checked, so a broken one is an error).
    pub fn summaries(&self, role: Option<&str>) -> Result<Vec<ImageSummary>, RegistryError> {
        self.newest_first(role, |role| self.role_summaries(role))
    }

    /// The summaries of every version of `role`, oldest first.
    pub(crate) fn role_summaries(&self, role: &str) -> Result<Vec<ImageSummary>, RegistryError> {
        self.each_version(role, |v| {
            let record = self.read_record(role, v, record_text::parse_without_packages)?;
            Ok(ImageSummary::from(record))
        })
    }

    fn newest_first<T>(
        &self,
        role: Option<&str>,
        read: impl Fn(&str) -> Result<Vec<T>, RegistryError>,
    ) -> Result<Vec<T>, RegistryError> {
        let roles = match role {
            Some(role) => vec![role.to_string()],
            None => self.roles()?,
        };
        let mut all = Vec::new();
        for role in &roles {
            all.extend(read(role)?.into_iter().rev());
        }
        Ok(all)
    }

    /// `read` of each version of `role`, oldest first: one chunk of versions
    /// per core.
    fn each_version<T: Send>(
        &self,
        role: &str,
        read: impl Fn(&Version) -> Result<T, RegistryError> + Sync,
    ) -> Result<Vec<T>, RegistryError> {
        let versions = self.versions(role)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = versions.len().div_ceil(cores).max(64);
        let read = &read;
        let parsed: Vec<Result<Vec<T>, RegistryError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = versions
                .chunks(chunk)
                .map(|part| scope.spawn(move || part.iter().map(read).collect()))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut all = Vec::with_capacity(versions.len());
        for part in parsed {
            all.extend(part?);
        }
        Ok(all)
    }
}
