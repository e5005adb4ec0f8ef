//! Filters that read `env.roles` (each role's `addresses` and `vms` in this
//! environment). Templates name roles through variables (`monitoring_role`,
//! `backup_client_roles`), and a project may have no recipe of that name:
//! `env.roles | addresses_of(names)` gives the addresses of every named role
//! the project has, in the order named, and nothing for the others, so no
//! template walks the map by hand to find them.

use minijinja::value::ValueKind;
use minijinja::{Environment, Error, ErrorKind, Value};

pub fn install(env: &mut Environment<'static>) {
    env.add_filter("addresses_of", addresses_of);
}

/// `roles | addresses_of(name or [names])`.
fn addresses_of(roles: &Value, names: &Value) -> Result<Value, Error> {
    let names: Vec<Value> = match names.kind() {
        ValueKind::String => vec![names.clone()],
        ValueKind::Seq => names.try_iter()?.collect(),
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "addresses_of takes a role's name or a list of names",
            ));
        }
    };
    let mut out = Vec::new();
    for name in names {
        let role = roles.get_item(&name)?;
        if role.is_undefined() {
            continue;
        }
        let addresses = role.get_attr("addresses")?;
        if !addresses.is_undefined() {
            out.extend(addresses.try_iter()?);
        }
    }
    Ok(Value::from(out))
}

#[cfg(test)]
mod tests {
    use minijinja::{UndefinedBehavior, context};

    use super::*;

    fn render(source: &str, names: Value) -> Result<String, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        install(&mut env);
        let roles = context!(
            db => context!(addresses => vec!["10.0.0.2", "10.0.0.3"]),
            ui => context!(addresses => vec!["10.0.0.4"]),
            monitoring => context!(addresses => Vec::<String>::new()),
        );
        env.render_str(source, context!(roles => roles, names => names))
    }

    #[test]
    fn addresses_of_named_roles_in_order_and_nothing_for_unknown_ones() {
        let list = "{{ roles | addresses_of(names) | join(',') }}";
        let names = |n: &[&str]| Value::from(n.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            render(list, names(&["ui", "db"])).unwrap(),
            "10.0.0.4,10.0.0.2,10.0.0.3"
        );
        assert_eq!(
            render(list, Value::from("db")).unwrap(),
            "10.0.0.2,10.0.0.3"
        );
        assert_eq!(render(list, names(&["backup", "monitoring"])).unwrap(), "");
        assert_eq!(render(list, names(&[])).unwrap(), "");
        let err = render(list, Value::from(3)).unwrap_err();
        assert!(err.to_string().contains("role's name or a list"), "{err}");
    }
}
