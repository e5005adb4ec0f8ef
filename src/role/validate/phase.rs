//! Which values a template may read: bake templates the role's variables,
//! deploy templates also the environment's declared values, the declared
//! secrets and the VM's fields.

use std::collections::BTreeSet;

use super::{BUILTINS, VM_FIELDS};

/// Which values a template may read.
#[derive(Clone, Copy)]
pub(super) enum Phase<'a> {
    Bake,
    Deploy {
        values: &'a BTreeSet<String>,
        secrets: &'a BTreeSet<String>,
    },
}

impl Phase<'_> {
    pub(super) fn problem(&self, var: &str, vars: &BTreeSet<String>) -> Option<String> {
        let (head, field) = var
            .split_once('.')
            .map_or((var, None), |(h, f)| (h, Some(f)));
        let field_name = field.map(|f| f.split('.').next().unwrap_or(f));
        match (self, head) {
            (_, h) if vars.contains(h) || BUILTINS.contains(&h) => None,
            (Phase::Bake, "secrets") => Some(format!(
                "bake-phase template reads secret `{var}`; secrets may only reach deploy templates"
            )),
            (Phase::Bake, "env" | "vm") => Some(format!(
                "bake-phase template uses deploy-only value `{var}`; move it to a [deploy] template"
            )),
            (Phase::Deploy { secrets, .. }, "secrets") => match field_name {
                Some(f) if secrets.contains(f) => None,
                _ => Some(format!(
                    "template reads secret `{var}`, which `[deploy] secrets` does not declare"
                )),
            },
            (Phase::Deploy { values, .. }, "env") => match field_name {
                Some(f) if values.contains(f) => None,
                _ => Some(format!(
                    "template reads `{var}`, which `[deploy] values` does not declare"
                )),
            },
            (Phase::Deploy { .. }, "vm") => match field_name {
                Some(f) if VM_FIELDS.contains(&f) => None,
                _ => Some(format!(
                    "template reads `{var}`; `vm` has the fields {}",
                    VM_FIELDS.join(", ")
                )),
            },
            _ => Some(format!("template uses undefined variable `{var}`")),
        }
    }
}
