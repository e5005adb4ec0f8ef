//! The faults that promote and deploy share on the in-memory simulator:
//! everything before a guest is reached (the clone task, a config lock,
//! the API's 503s, the guest agent, SSH, the operator's signals). Each
//! command names its own steps and the words its errors use.

use std::path::Path;
use std::time::Duration;

use super::leftovers::RegistrySnapshot;
use super::runner::{Action, Invocation, Outcome};
use super::table::{Row, row};

use crate::support::pve_sim::Faults;

/// One fault against a fresh simulator.
pub struct Case {
    pub fault: &'static str,
    pub step: &'static str,
    pub expected: i32,
    /// Texts the error output must hold.
    pub says: Vec<&'static str>,
    pub boot_timeout: u64,
    pub set: fn(&mut Faults),
    /// A progress line, the signal sent when it shows and the delay.
    pub on: Option<(&'static str, &'static str, u64)>,
}

/// How one command names its steps and says what it did.
pub struct Steps {
    /// The step that clones the VM, and the step that boots it.
    pub create: &'static str,
    pub boot: &'static str,
    /// The step that first lists VMs (GETs), and what its error adds.
    pub list: &'static str,
    pub list_fails: Option<&'static str>,
    /// What the error says when the clone fails.
    pub cannot_create: &'static str,
    /// What the clean-up says once it removed the VM.
    pub removed: &'static str,
    /// The progress line that shows the VM is being made.
    pub trigger: &'static str,
}

pub fn api_cases(s: &Steps) -> Vec<Case> {
    let failed = |fault, step, says: Vec<&'static str>, boot_timeout, set| Case {
        fault,
        step,
        expected: 1,
        says,
        boot_timeout,
        set,
        on: None,
    };
    let interrupted = |fault, step, set, sig, ms| Case {
        fault,
        step,
        expected: 130,
        says: vec!["interrupted", s.removed],
        boot_timeout: 60,
        set,
        on: Some((s.trigger, sig, ms)),
    };
    let slow_clone: fn(&mut Faults) = |f| f.task_time = Duration::from_secs(3);
    let agent_never: fn(&mut Faults) = |f| f.agent_never = true;
    let mut unavailable = vec!["503"];
    unavailable.extend(s.list_fails);
    vec![
        failed(
            "clone task ends in error",
            s.create,
            vec!["clone failed: storage full", s.cannot_create],
            5,
            |f| f.fail_next_clone = Some("storage full".into()),
        ),
        failed(
            "lock timeout (500) on config",
            s.create,
            vec!["got timeout"],
            5,
            |f| f.lock_timeout_next_config = true,
        ),
        failed(
            "API answers 503 to every GET",
            s.list,
            unavailable,
            5,
            |f| f.unavailable_gets = 10_000,
        ),
        failed(
            "guest agent never answers",
            s.boot,
            vec!["guest agent: no answer within 4s (boot_timeout)", s.removed],
            4,
            agent_never,
        ),
        failed(
            "no SSH behind the agent's address",
            s.boot,
            vec!["SSH never answered", s.removed],
            4,
            |_| {},
        ),
        interrupted(
            "SIGINT during a slow clone task",
            s.create,
            slow_clone,
            "INT",
            1000,
        ),
        interrupted(
            "SIGTERM while waiting for the agent",
            s.boot,
            agent_never,
            "TERM",
            1500,
        ),
        interrupted(
            "SIGINT while waiting for the agent",
            s.boot,
            agent_never,
            "INT",
            1500,
        ),
    ]
}

impl Case {
    /// Arms the case's signal, if it has one.
    pub fn arm<'a>(&self, run: Invocation<'a>) -> Invocation<'a> {
        match self.on {
            Some((trigger, sig, ms)) => {
                run.on(trigger, Action::Signal(sig, Duration::from_millis(ms)))
            }
            None => run,
        }
    }

    /// The case's row: what oxbake did and left, against what it should.
    pub fn judge(
        &self,
        out: &Outcome,
        left: Vec<String>,
        before: &RegistrySnapshot,
        root: &Path,
    ) -> Row {
        let says = &self.says;
        row(
            self.fault,
            self.step,
            self.expected,
            says,
            out,
            left,
            before,
            root,
        )
    }
}
