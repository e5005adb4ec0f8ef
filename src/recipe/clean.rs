//! The clean-up as a named list of operations, after virt-sysprep's model:
//! `defaults` selects every operation marked default, `-NAME` drops one,
//! `NAME` adds one that is not a default. Operations that must always run
//! (the builder's credentials and user) are not in the list: nobody can
//! drop them. Each operation is a shell fragment run as root, in the order
//! of [`OPERATIONS`], which is also the order that keeps anything from
//! being written after it was cleaned (a service that writes when it stops
//! is stopped before its files go).

use std::fmt;

/// One clean-up operation.
#[derive(Debug)]
pub struct Operation {
    pub name: &'static str,
    /// One line for `docs/recipes.md` and error messages.
    pub about: &'static str,
    pub default: bool,
    /// Shell run as root; `set -e` is on, so a fragment that may find
    /// nothing to do says `|| true` itself.
    pub script: &'static str,
    /// What the finished image then holds, checked on the template file
    /// offline (`oxbake inspect`, and by every local build).
    pub proves: &'static [Proof],
}

/// One fact about a finished image's file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// No such file or folder.
    Absent(&'static str),
    /// The file exists and is empty.
    EmptyFile(&'static str),
    /// The folder has no entries (or does not exist).
    EmptyDir(&'static str),
    /// No entry of the folder starts with the prefix.
    NoEntryStarting(&'static str, &'static str),
    /// Below the folder, every regular file is empty.
    EmptyFilesUnder(&'static str),
    /// Below the folder, no entry has this name.
    NoneNamed(&'static str, &'static str),
}

/// Every operation, in the order they run.
pub const OPERATIONS: &[Operation] = &[
    Operation {
        name: "package-manager-cache",
        about: "apt's caches and lists, dpkg's `available` (Debian's cloud images empty both)",
        default: true,
        script: "apt-get clean\nrm -rf /var/lib/apt/lists/*\n: > /var/lib/dpkg/available\n",
        proves: &[
            Proof::EmptyDir("/var/lib/apt/lists"),
            Proof::EmptyDir("/var/cache/apt/archives/partial"),
        ],
    },
    Operation {
        name: "cloud-init",
        about: "cloud-init's state, logs and seed, and the network and sshd files it generated for the builder; runs /etc/cloud/clean.d/ hooks first",
        default: true,
        script: "for hook in /etc/cloud/clean.d/*; do [ -x \"$hook\" ] && \"$hook\"; done; true\n\
cloud-init clean --logs --seed\n\
rm -rf /var/lib/cloud/instances /var/lib/cloud/instance /var/lib/cloud/data\n\
rm -f /etc/network/interfaces.d/50-cloud-init /etc/netplan/50-cloud-init.yaml /etc/ssh/sshd_config.d/50-cloud-init.conf\n",
        proves: &[
            Proof::Absent("/var/lib/cloud/instances"),
            Proof::Absent("/var/lib/cloud/instance"),
            Proof::Absent("/etc/network/interfaces.d/50-cloud-init"),
            Proof::Absent("/etc/ssh/sshd_config.d/50-cloud-init.conf"),
            Proof::Absent("/var/log/cloud-init.log"),
        ],
    },
    Operation {
        name: "dhcp-client-state",
        about: "the builder's DHCP leases and DUID",
        default: true,
        script: "rm -rf /var/lib/dhcp/* /var/lib/dhclient/* /var/lib/NetworkManager/*.lease 2>/dev/null || true\n",
        proves: &[Proof::EmptyDir("/var/lib/dhcp")],
    },
    Operation {
        name: "machine-id",
        about: "the machine-id, emptied (systemd makes a new one at first boot)",
        default: true,
        script: "truncate -s 0 /etc/machine-id\nrm -f /var/lib/dbus/machine-id\n",
        proves: &[
            Proof::EmptyFile("/etc/machine-id"),
            Proof::Absent("/var/lib/dbus/machine-id"),
        ],
    },
    Operation {
        name: "random-seed",
        about: "systemd's random seed and credential secret (stopped first: it writes the seed when it stops)",
        default: true,
        script: "systemctl stop systemd-random-seed.service 2>/dev/null || true\n\
rm -f /var/lib/systemd/random-seed /var/lib/systemd/credential.secret\n",
        proves: &[
            Proof::Absent("/var/lib/systemd/random-seed"),
            Proof::Absent("/var/lib/systemd/credential.secret"),
        ],
    },
    Operation {
        name: "hostname",
        about: "/etc/hostname and /etc/machine-info (cloud-init names each clone)",
        default: true,
        script: "rm -f /etc/hostname /etc/machine-info\n",
        proves: &[
            Proof::Absent("/etc/hostname"),
            Proof::Absent("/etc/machine-info"),
        ],
    },
    Operation {
        name: "ssh-hostkeys",
        about: "the SSH host keys (each clone gets its own)",
        default: true,
        script: "rm -f /etc/ssh/ssh_host_*\n",
        proves: &[Proof::NoEntryStarting("/etc/ssh", "ssh_host_")],
    },
    Operation {
        name: "udev-persistent-net",
        about: "udev's persistent network names rule",
        default: true,
        script: "rm -f /etc/udev/rules.d/70-persistent-net.rules\n",
        proves: &[Proof::Absent("/etc/udev/rules.d/70-persistent-net.rules")],
    },
    Operation {
        name: "crash-data",
        about: "crash dumps and core files",
        default: true,
        script: "rm -rf /var/crash/* /var/lib/systemd/coredump/* 2>/dev/null || true\n",
        proves: &[
            Proof::EmptyDir("/var/crash"),
            Proof::EmptyDir("/var/lib/systemd/coredump"),
        ],
    },
    Operation {
        name: "mail-spool",
        about: "local mail and postfix's queue",
        default: true,
        script: "rm -rf /var/mail/* /var/spool/mail/* 2>/dev/null || true\n\
for q in active bounce corrupt defer deferred flush hold incoming maildrop; do rm -rf /var/spool/postfix/$q/*; done 2>/dev/null || true\n\
rm -f /etc/mailname\n",
        proves: &[Proof::EmptyDir("/var/mail"), Proof::Absent("/etc/mailname")],
    },
    Operation {
        name: "cron-spool",
        about: "users' crontabs and at jobs (roles schedule work with systemd timers or /etc/cron.d)",
        default: true,
        script: "rm -rf /var/spool/cron/crontabs/* /var/spool/cron/atjobs/* 2>/dev/null || true\n",
        proves: &[Proof::EmptyDir("/var/spool/cron/crontabs")],
    },
    Operation {
        name: "bash-history",
        about: "shell and editor histories of root and every user",
        default: true,
        script: "rm -f /root/.bash_history /root/.lesshst /root/.viminfo /root/.mysql_history /root/.python_history\n\
rm -f /home/*/.bash_history /home/*/.lesshst /home/*/.viminfo /home/*/.mysql_history 2>/dev/null || true\n",
        proves: &[
            Proof::Absent("/root/.bash_history"),
            Proof::NoneNamed("/home", ".bash_history"),
            Proof::NoneNamed("/root", ".mysql_history"),
        ],
    },
    Operation {
        name: "tmp-files",
        about: "/tmp and /var/tmp",
        default: true,
        script: "rm -rf /tmp/* /tmp/.[!.]* /var/tmp/* /var/tmp/.[!.]* 2>/dev/null || true\n",
        proves: &[Proof::EmptyDir("/tmp"), Proof::EmptyDir("/var/tmp")],
    },
    Operation {
        name: "logfiles",
        about: "every log: the journal (made volatile first, so the shutdown writes none), rotated logs, app logs, wtmp/btmp/lastlog removed (writers append to them only if they exist, so the shutdown cannot; systemd-tmpfiles makes them again at boot)",
        default: true,
        script: "mkdir -p /run/systemd/journald.conf.d\n\
printf '[Journal]\\nStorage=volatile\\n' > /run/systemd/journald.conf.d/oxbake-clean.conf\n\
systemctl restart systemd-journald.service\n\
systemctl mask --runtime systemd-update-utmp.service systemd-update-utmp-runlevel.service >/dev/null 2>&1 || true\n\
for unit in fail2ban rsyslog unattended-upgrades systemd-update-utmp; do systemctl stop $unit.service 2>/dev/null || true; done\n\
rm -rf /var/log/journal/*\n\
find /var/log -type f \\( -name '*.gz' -o -name '*.[0-9]' -o -name '*.old' \\) -delete\n\
find /var/log -type f -exec truncate -s 0 {} +\n\
rm -f /var/log/wtmp /var/log/btmp /var/log/lastlog\n",
        proves: &[
            Proof::EmptyDir("/var/log/journal"),
            Proof::EmptyFilesUnder("/var/log"),
        ],
    },
];

/// A clean-up selection that names no operation oxbake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOperation(pub String);

impl fmt::Display for UnknownOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let known: Vec<&str> = OPERATIONS.iter().map(|o| o.name).collect();
        write!(
            f,
            "unknown clean-up operation `{}`; known: defaults, {}",
            self.0,
            known.join(", ")
        )
    }
}

/// The operations `spec` selects, in run order: `defaults`, `NAME` and
/// `-NAME`, applied left to right.
pub fn select(spec: &[&str]) -> Result<Vec<&'static Operation>, UnknownOperation> {
    let mut on = vec![false; OPERATIONS.len()];
    for item in spec {
        let (name, wanted) = match item.strip_prefix('-') {
            Some(name) => (name, false),
            None => (*item, true),
        };
        if name == "defaults" {
            for (i, op) in OPERATIONS.iter().enumerate() {
                if op.default {
                    on[i] = wanted;
                }
            }
            continue;
        }
        let i = OPERATIONS
            .iter()
            .position(|o| o.name == name)
            .ok_or_else(|| UnknownOperation((*item).to_owned()))?;
        on[i] = wanted;
    }
    Ok(OPERATIONS
        .iter()
        .zip(on)
        .filter_map(|(op, on)| on.then_some(op))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ops: &[&Operation]) -> Vec<&'static str> {
        ops.iter().map(|o| o.name).collect()
    }

    #[test]
    fn defaults_then_drops_then_adds_in_run_order() {
        let all = names(&select(&["defaults"]).unwrap());
        assert_eq!(all.len(), OPERATIONS.iter().filter(|o| o.default).count());
        let without = names(&select(&["defaults", "-logfiles", "-cron-spool"]).unwrap());
        assert!(!without.contains(&"logfiles") && !without.contains(&"cron-spool"));
        assert_eq!(without.len(), all.len() - 2);
        // Order is the run order, not the order named.
        let two = names(&select(&["tmp-files", "machine-id"]).unwrap());
        assert_eq!(two, ["machine-id", "tmp-files"]);
        assert!(select(&[]).unwrap().is_empty());
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        let e = select(&["defaults", "-logfile"]).unwrap_err();
        assert_eq!(e.0, "-logfile");
        let text = e.to_string();
        assert!(
            text.contains("`-logfile`") && text.contains("logfiles"),
            "{text}"
        );
    }

    #[test]
    fn every_operation_has_a_unique_name_and_says_what_it_does() {
        let mut seen = std::collections::BTreeSet::new();
        for op in OPERATIONS {
            assert!(seen.insert(op.name), "{} twice", op.name);
            assert!(
                !op.about.is_empty() && op.script.ends_with('\n'),
                "{}",
                op.name
            );
            assert_ne!(op.name, "defaults");
        }
    }
}
