//! Which values a template may read: bake templates the role's variables,
//! deploy templates also the environment's declared values, the declared
//! secrets, the VM's fields and the fields of its image.

use std::collections::BTreeSet;

use super::{BUILTINS, IMAGE_FIELDS, VM_FIELDS};

/// Which values a template may read.
#[derive(Clone, Copy)]
pub(super) enum Phase<'a> {
    Bake,
    Deploy {
        values: &'a BTreeSet<String>,
        secrets: &'a BTreeSet<String>,
        /// The project's roles (`env.roles.ROLE.addresses`).
        roles: &'a BTreeSet<String>,
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
            (Phase::Bake, "env" | "vm" | "image") => Some(format!(
                "bake-phase template uses deploy-only value `{var}`; move it to a [deploy] template"
            )),
            (Phase::Deploy { secrets, .. }, "secrets") => match field_name {
                Some(f) if secrets.contains(f) => None,
                _ => Some(format!(
                    "template reads secret `{var}`, which `[deploy] secrets` does not declare"
                )),
            },
            (Phase::Deploy { roles, .. }, "env") if field_name == Some("roles") => {
                peer_problem(var, roles)
            }
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
            (Phase::Deploy { .. }, "image") => match field_name {
                Some(f) if IMAGE_FIELDS.contains(&f) => None,
                _ => Some(format!(
                    "template reads `{var}`; `image` has the fields {}",
                    IMAGE_FIELDS.join(", ")
                )),
            },
            _ => Some(format!("template uses undefined variable `{var}`")),
        }
    }
}

/// The fields of `env.roles.ROLE`: the addresses of the role's VMs in slot
/// order, the version of the image they run in this deploy, and the VMs
/// themselves (`name`, `address`, `slot`).
pub const PEER_FIELDS: &[&str] = &["addresses", "version", "vms"];

/// `env.roles`, `env.roles.ROLE` and `env.roles.ROLE.FIELD` name the
/// environment's VMs of a role of this project; anything else does not.
fn peer_problem(var: &str, roles: &BTreeSet<String>) -> Option<String> {
    let mut parts = var.split('.').skip(2);
    match (parts.next(), parts.next(), parts.next()) {
        (None, ..) => None,
        (Some(role), _, _) if !roles.contains(role) => Some(format!(
            "template reads `{var}`, but the project has no role `{role}`"
        )),
        (Some(_), None, None) => None,
        (Some(_), Some(field), None) if PEER_FIELDS.contains(&field) => None,
        _ => Some(format!(
            "template reads `{var}`; `env.roles.ROLE` has the fields {}",
            PEER_FIELDS.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_read_by_role_and_field() {
        let roles: BTreeSet<String> = ["ui".to_owned(), "db".to_owned()].into();
        for ok in ["env.roles", "env.roles.ui", "env.roles.db.addresses"] {
            assert_eq!(peer_problem(ok, &roles), None, "{ok}");
        }
        let unknown = peer_problem("env.roles.cache.addresses", &roles).unwrap();
        assert!(unknown.contains("no role `cache`"), "{unknown}");
        let field = peer_problem("env.roles.ui.names", &roles).unwrap();
        assert!(
            field.contains("has the fields addresses, version, vms"),
            "{field}"
        );
        assert_eq!(peer_problem("env.roles.ui.version", &roles), None);
        assert!(peer_problem("env.roles.ui.addresses.x", &roles).is_some());
    }

    #[test]
    fn deploy_templates_read_the_image_fields_only() {
        let none = BTreeSet::new();
        let deploy = Phase::Deploy {
            values: &none,
            secrets: &none,
            roles: &none,
        };
        for ok in ["image.version", "image.packages", "image.packages.nginx"] {
            assert_eq!(deploy.problem(ok, &none), None, "{ok}");
        }
        let field = deploy.problem("image.name", &none).unwrap();
        assert!(
            field.contains("has the fields version, packages"),
            "{field}"
        );
        let bake = Phase::Bake.problem("image.version", &none).unwrap();
        assert!(bake.contains("deploy-only"), "{bake}");
    }
}
