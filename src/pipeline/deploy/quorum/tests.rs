use super::*;
use crate::pipeline::deploy::plan::{Desired, Existing, Rules, compute_with};
use crate::pipeline::deploy::tag::DeployTag;
use crate::target::VmHandle;

fn want(slot: u32, version: &str) -> Desired {
    Desired {
        role: "db".into(),
        slot,
        hostname: format!("g-db-{slot}"),
        version: version.into(),
        seed: "aa".into(),
        node: None,
        bootstrap: false,
    }
}

fn vm(slot: u32, running: bool) -> Existing {
    let name = format!("g-db-{slot}");
    Existing {
        name: name.clone(),
        handle: VmHandle {
            name: name.clone(),
            id: name,
        },
        role: "db".into(),
        version: Some("1".into()),
        tag: DeployTag::parse(&format!("0a0b0c0d.{slot}.aa")),
        node: None,
        running,
        created: None,
    }
}

fn majority() -> BTreeMap<String, Quorum> {
    [("db".to_string(), Quorum::Majority)].into()
}

fn plan(count: u32, version: &str, existing: &[Existing], max: u32) -> Plan {
    let desired: Vec<Desired> = (1..=count).map(|s| want(s, version)).collect();
    let rules = Rules {
        waves: Vec::new(),
        roles: [("db".to_string(), (crate::config::Replace::StopFirst, max))].into(),
    };
    compute_with(&desired, existing, &rules)
}

#[test]
fn lowering_three_to_one_is_refused_and_three_to_two_is_not() {
    let three = [vm(1, true), vm(2, true), vm(3, true)];
    let err = check(&plan(1, "1", &three, 1), &majority()).unwrap_err();
    assert_eq!(
        err,
        QuorumError::Destroys {
            role: "db".into(),
            running: 3,
            destroyed: 2,
            left: 1
        }
    );
    let text = err.to_string();
    assert!(text.contains("`db`") && text.contains("2 of 3") && text.contains("majority"));
    assert_eq!(check(&plan(2, "1", &three, 1), &majority()), Ok(()));
    // Without the rule the same plan is fine.
    assert_eq!(check(&plan(1, "1", &three, 1), &BTreeMap::new()), Ok(()));
}

#[test]
fn stopped_vms_do_not_count_and_a_first_deploy_has_nothing_to_keep() {
    let mostly_stopped = [vm(1, true), vm(2, false), vm(3, false)];
    assert_eq!(
        check(&plan(1, "1", &mostly_stopped, 1), &majority()),
        Ok(())
    );
    assert_eq!(check(&plan(3, "1", &[], 3), &majority()), Ok(()));
}

#[test]
fn replacing_a_majority_at_once_is_refused() {
    let three = [vm(1, true), vm(2, true), vm(3, true)];
    assert_eq!(check(&plan(3, "2", &three, 1), &majority()), Ok(()));
    let err = check(&plan(3, "2", &three, 2), &majority()).unwrap_err();
    assert_eq!(
        err,
        QuorumError::Replaces {
            role: "db".into(),
            serving: 3,
            stopped: 2,
            max: 2
        }
    );
    // max_unavailable 2 with one VM to replace stops one only.
    let one_old = [
        Existing {
            version: Some("2".into()),
            ..vm(1, true)
        },
        Existing {
            version: Some("2".into()),
            ..vm(2, true)
        },
        vm(3, true),
    ];
    assert_eq!(check(&plan(3, "2", &one_old, 2), &majority()), Ok(()));
}

/// A role that keeps data: a new version keeps its VMs as they are (a
/// stopped one is started), a lower count is refused; other roles' plans
/// pass untouched.
#[test]
fn a_role_that_keeps_data_is_never_replaced_or_destroyed() {
    let keeps: BTreeSet<String> = ["db".to_string()].into();
    let two = [vm(1, true), vm(2, false)];
    let mut p = plan(2, "2", &two, 1);
    let held = crate::pipeline::deploy::plan::hold_data(&mut p, &keeps);
    assert_eq!(
        held.iter().map(|(vm, _)| vm.as_str()).collect::<Vec<_>>(),
        ["g-db-1", "g-db-2"]
    );
    assert!(
        matches!(p.actions[0], Action::Keep { .. }),
        "{:?}",
        p.actions
    );
    assert!(
        matches!(p.actions[1], Action::Start { .. }),
        "{:?}",
        p.actions
    );
    assert_eq!(check_keeps_data(&p, &keeps), Ok(()));

    let fewer = plan(1, "1", &[vm(1, true), vm(2, true)], 1);
    assert_eq!(
        check_keeps_data(&fewer, &keeps),
        Err(QuorumError::KeepsData {
            role: "db".into(),
            vm: "g-db-2".into()
        })
    );
    assert_eq!(check_keeps_data(&fewer, &BTreeSet::new()), Ok(()));
    let mut other = plan(2, "2", &two, 1);
    assert!(crate::pipeline::deploy::plan::hold_data(&mut other, &BTreeSet::new()).is_empty());
}
