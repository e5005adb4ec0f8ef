//! The order of an environment's roles: `after = ["db"]` makes a graph, and
//! a deploy goes through it in waves (every role of a wave needs only
//! roles of earlier waves). Unknown roles and cycles are refused.

use std::collections::{BTreeMap, BTreeSet};

use super::Environment;

/// The roles in waves, each wave sorted by name; `Err` names the roles
/// that are in (or wait on) a cycle.
pub fn waves(env: &Environment) -> Result<Vec<Vec<String>>, Vec<String>> {
    let needs = needs(env);
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    while placed.len() < needs.len() {
        let wave: Vec<&str> = needs
            .iter()
            .filter(|(role, after)| {
                !placed.contains(*role) && after.iter().all(|a| placed.contains(a))
            })
            .map(|(role, _)| *role)
            .collect();
        if wave.is_empty() {
            let stuck = needs.keys().filter(|r| !placed.contains(*r));
            return Err(stuck.map(|r| (*r).to_owned()).collect());
        }
        placed.extend(&wave);
        out.push(wave.into_iter().map(str::to_owned).collect());
    }
    Ok(out)
}

/// Each role's `after`, keeping only roles of the environment (the others
/// are [`after_problems`]).
fn needs(env: &Environment) -> BTreeMap<&str, BTreeSet<&str>> {
    env.roles
        .iter()
        .map(|(role, s)| {
            let after = s.get_ref().after.iter().map(|a| a.get_ref().as_str());
            let known = after.filter(|a| env.roles.contains_key(*a));
            (role.as_str(), known.collect())
        })
        .collect()
}

/// Every `after` entry that cannot work, with where it is (the span start
/// of the entry) and why: a role the environment does not run, or one
/// that closes a cycle (each cycle is named once).
pub fn after_problems(name: &str, env: &Environment) -> Vec<(usize, String)> {
    let mut problems = Vec::new();
    for (role, s) in &env.roles {
        for a in &s.get_ref().after {
            if !env.roles.contains_key(a.get_ref()) {
                let message = format!(
                    "environment `{name}`, role `{role}`: `after` names role `{}`, which the \
                     environment does not run",
                    a.get_ref()
                );
                problems.push((a.span().start, message));
            }
        }
    }
    let Err(stuck) = waves(env) else {
        return problems;
    };
    let needs = needs(env);
    let mut named: BTreeSet<String> = BTreeSet::new();
    for start in &stuck {
        if named.contains(start) {
            continue;
        }
        // Walk the edges inside the stuck set until a role repeats: the
        // walk from there is a cycle.
        let mut path: Vec<&str> = vec![start];
        let cycle = loop {
            let last = path[path.len() - 1];
            let Some(next) = needs[last].iter().find(|n| stuck.iter().any(|s| s == *n)) else {
                break None;
            };
            if let Some(at) = path.iter().position(|p| p == next) {
                break Some(path[at..].to_vec());
            }
            path.push(next);
        };
        let Some(cycle) = cycle else { continue };
        if cycle.iter().any(|r| named.contains(*r)) {
            continue;
        }
        named.extend(cycle.iter().map(|r| (*r).to_owned()));
        let (first, second) = (cycle[0], cycle.get(1).copied().unwrap_or(cycle[0]));
        let entry = env.roles[first]
            .get_ref()
            .after
            .iter()
            .find(|a| a.get_ref() == second);
        let mut shown: Vec<&str> = cycle.clone();
        shown.push(first);
        let message = format!(
            "environment `{name}`, role `{first}`: `after` makes a cycle ({})",
            shown.join(" after ")
        );
        let at = entry.map_or(env.roles[first].span().start, |a| a.span().start);
        problems.push((at, message));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(roles: &str) -> Environment {
        let text = format!(
            "channel = \"dev\"\nuser = \"ops\"\n[network]\nprefix = 24\ngateway = \"10.0.0.1\"\n{roles}"
        );
        toml::from_str(&text).expect("environment")
    }

    #[test]
    fn roles_go_in_waves_after_what_they_need() {
        let e = env(concat!(
            "[roles.ui]\nafter = [\"backend\", \"cache\"]\n",
            "[roles.backend]\nafter = [\"db\"]\n",
            "[roles.db]\n[roles.cache]\n",
        ));
        assert_eq!(
            waves(&e).unwrap(),
            [vec!["cache", "db"], vec!["backend"], vec!["ui"]]
        );
        assert!(after_problems("lab", &e).is_empty());
    }

    #[test]
    fn a_cycle_is_named_once_and_an_unknown_role_at_its_entry() {
        let e = env(concat!(
            "[roles.a]\nafter = [\"b\"]\n",
            "[roles.b]\nafter = [\"a\", \"nope\"]\n",
            "[roles.c]\nafter = [\"a\"]\n",
        ));
        assert_eq!(waves(&e).unwrap_err(), ["a", "b", "c"]);
        let problems: Vec<String> = after_problems("lab", &e)
            .into_iter()
            .map(|(_, m)| m)
            .collect();
        assert_eq!(
            problems,
            [
                "environment `lab`, role `b`: `after` names role `nope`, which the environment \
                 does not run",
                "environment `lab`, role `a`: `after` makes a cycle (a after b after a)",
            ]
        );
    }
}
