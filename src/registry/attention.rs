//! What `oxbake ls` flags under its table: channels that point at a version
//! that cannot be used, and records whose removal did not finish (their
//! template may be gone). Both are read from `images/` alone, so plain `ls`
//! shows them without asking any target.

use serde_json::{Value, json};

use super::{ChannelProblem, PendingRemoval, Registry, RegistryError};

/// The registry's open problems.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Attention {
    pub channels: Vec<ChannelProblem>,
    pub removals: Vec<PendingRemoval>,
}

impl Registry {
    /// The channel problems and unfinished removals of the registry (those
    /// of `role` only, when given).
    pub fn attention(&self, role: Option<&str>) -> Result<Attention, RegistryError> {
        let wanted = |r: &str| role.is_none_or(|role| role == r);
        let mut channels = self.channel_problems()?;
        channels.retain(|p| wanted(&p.role));
        let mut removals = self.pending_removals()?;
        removals.retain(|p| wanted(&p.role));
        Ok(Attention { channels, removals })
    }
}

impl Attention {
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.removals.is_empty()
    }

    /// The lines under the `ls` table (none when all is well).
    pub fn text(&self) -> String {
        let mut out = String::new();
        if self.is_empty() {
            return out;
        }
        out.push_str("\nneeds attention:\n");
        for p in &self.channels {
            out.push_str(&format!("  {p}\n"));
        }
        for r in &self.removals {
            out.push_str(&format!(
                "  {}@{}: a prune stopped while removing it, its template may be gone \
                 (`{}`); run `oxbake prune` to finish\n",
                r.role,
                r.version,
                r.marker.display()
            ));
        }
        out
    }

    /// The `ls --json` members `channel_problems` and `unfinished_removals`.
    pub fn json(&self) -> (Value, Value) {
        let channels: Vec<Value> = self
            .channels
            .iter()
            .map(|p| {
                json!({
                    "channel": p.channel,
                    "role": p.role,
                    "version": p.version.to_string(),
                    "problem": p.problem,
                    "at": format!("{}:{}:{}", p.path.display(), p.line, p.column),
                })
            })
            .collect();
        let removals: Vec<Value> = self
            .removals
            .iter()
            .map(|r| {
                json!({
                    "image": format!("{}@{}", r.role, r.version),
                    "marker": r.marker.display().to_string(),
                })
            })
            .collect();
        (Value::Array(channels), Value::Array(removals))
    }
}
