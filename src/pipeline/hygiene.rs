//! What a builder VM gets before the steps, and the clean-up that turns it
//! into an image every clone can call its own: no machine-id, no SSH host
//! keys, no cloud-init state, no builder user or key, no credentials, no
//! caches, logs or shell history.

use std::collections::BTreeMap;

use crate::guest::quote;
use crate::recipe::clean::Operation;
pub(crate) use crate::target::cloudinit::APT_PROXY_CONF;

/// The user cloud-init creates on builder VMs, removed by the clean-up.
pub const BUILDER_USER: &str = "oxbake-build";

/// Removes files that held a secret: each is overwritten with zeros in
/// place first (ext4 rewrites the same blocks), so its bytes are not left
/// in free blocks, which a trim does not always clear (it frees whole
/// clusters of the disk file only). Arguments: the files or globs.
pub fn shred(files: &str) -> String {
    format!("for f in {files}; do [ -e \"$f\" ] && shred -n 0 -z -u -- \"$f\"; done || true\n")
}

/// Where dpkg is told not to fsync: a failed bake is thrown away anyway.
pub(crate) const UNSAFE_IO: &str = "/etc/dpkg/dpkg.cfg.d/oxbake-unsafe-io";

/// Run as root once cloud-init has finished.
pub fn prepare_script(builder: &str, ssh_group: Option<&str>) -> String {
    let mut script = format!("set -e\necho force-unsafe-io > {UNSAFE_IO}\n");
    // Debian's periodic apt runs (apt-daily, apt-daily-upgrade) must not run
    // during the build: they hold dpkg's lock against the steps, and one
    // that fires after the clean-up writes apt's lists into the template
    // (a build at 06:xx UTC caught `/var/lib/apt/lists/partial` so). Stopped
    // for this boot only: the image keeps them enabled.
    script.push_str(
        "systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service \
         apt-daily-upgrade.service 2>/dev/null || true\n",
    );
    if let Some(group) = ssh_group {
        // The hardening may allow SSH logins for one group only; the builder
        // must stay able to reconnect after sshd restarts.
        let (group, builder) = (quote(group), quote(builder));
        script.push_str(&format!(
            "groupadd -f {group}\nusermod -aG {group} {builder}\n"
        ));
    }
    script.push_str("cat /etc/machine-id\n");
    script
}

/// Lists every installed package with its version.
pub const MANIFEST: &str = "dpkg-query -W -f='${Package}\\t${Version}\\n'";

/// Prints `sha256  file` for each repository's InRelease seen by apt.
pub const REPOSITORY_DIGESTS: &str = "cd /var/lib/apt/lists && for f in *InRelease; do [ -e \"$f\" ] && sha256sum \"$f\"; done; true";

/// Which image a clean-up makes, written into its os-release.
#[derive(Debug, Clone, Copy)]
pub struct ImageId<'a> {
    pub role: &'a str,
    pub version: &'a str,
}

/// Run as root after the steps: the builder's apt credentials (zeroed
/// first), apt proxy ([`APT_PROXY_CONF`]) and dpkg setting go, os-release
/// names the image (`IMAGE_ID`, `IMAGE_VERSION`), then the selected [`OPERATIONS`](crate::recipe::clean::OPERATIONS).
/// [`finish_script`] follows.
pub fn clean_script(image: ImageId<'_>, operations: &[&Operation]) -> String {
    let (role, version) = (quote(image.role), quote(image.version));
    let credentials = shred("/etc/apt/auth.conf.d/oxbake-*");
    let mut script = format!(
        r#"set -e
rm -f {UNSAFE_IO} {APT_PROXY_CONF}
{credentials}release=/usr/lib/os-release
sed -i '/^IMAGE_ID=/d; /^IMAGE_VERSION=/d' "$release"
printf 'IMAGE_ID=%s\nIMAGE_VERSION=%s\n' {role} {version} >> "$release"
"#
    );
    for op in operations {
        script.push_str(&format!("# {}\n", op.name));
        script.push_str(op.script);
    }
    script.push_str("sync\n");
    script
}

/// The last thing the builder runs, through sudo by the builder user
/// itself (`userdel -f` removes the user even while its session is open;
/// after it, the user can run nothing more): the builder user goes with
/// the backups of passwd, shadow and group that name it, then free blocks
/// are discarded, so the template keeps only what its files hold (the disk
/// passes discards to its storage).
pub fn finish_script(builder: &str) -> String {
    let builder = quote(builder);
    format!(
        r#"set -e
rm -f /etc/sudoers.d/90-cloud-init-users
userdel -f -r {builder} 2>/dev/null || userdel -f {builder}
rm -f /etc/passwd- /etc/shadow- /etc/group- /etc/gshadow- /etc/subuid- /etc/subgid-
fstrim --all >/dev/null 2>&1 || true
sync
"#
    )
}

/// Parses [`MANIFEST`] output.
pub fn parse_manifest(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .filter(|(name, version)| !name.is_empty() && !version.is_empty())
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// Parses [`REPOSITORY_DIGESTS`] output into `list file -> sha256`.
pub fn parse_digests(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once("  "))
        .filter(|(sum, _)| sum.len() == 64)
        .map(|(sum, file)| (file.trim().to_owned(), sum.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_and_digests_parse() {
        let m = parse_manifest("nginx\t1.22.1-9\nbroken\n\tx\nzlib1g\t1:1.2.13\n");
        assert_eq!(m.len(), 2);
        assert_eq!(m["zlib1g"], "1:1.2.13");
        let sum = "a".repeat(64);
        let d = parse_digests(&format!(
            "{sum}  deb.debian.org_debian_dists_bookworm_InRelease\n"
        ));
        assert_eq!(d["deb.debian.org_debian_dists_bookworm_InRelease"], sum);
    }

    #[test]
    fn clean_up_removes_what_must_not_be_shared() {
        let all = crate::recipe::clean::select(&["defaults"]).unwrap();
        let image = ImageId {
            role: "ui",
            version: "2026.12.04.1",
        };
        let s = clean_script(image, &all) + &finish_script("oxbake-build");
        for needle in [
            "truncate -s 0 /etc/machine-id",
            "rm -f /etc/ssh/ssh_host_*",
            "cloud-init clean",
            "for f in /etc/apt/auth.conf.d/oxbake-*; do [ -e \"$f\" ] && shred -n 0 -z -u",
            "rm -f /etc/dpkg/dpkg.cfg.d/oxbake-unsafe-io /etc/apt/apt.conf.d/00oxbake-proxy",
            "userdel -f -r 'oxbake-build'",
            ".bash_history",
            "rm -f /var/lib/systemd/random-seed",
            "rm -rf /var/lib/dhcp/*",
            "rm -f /etc/hostname",
            "rm -f /etc/passwd- /etc/shadow-",
            "printf 'IMAGE_ID=%s\\nIMAGE_VERSION=%s\\n' 'ui' '2026.12.04.1'",
        ] {
            assert!(s.contains(needle), "{needle}");
        }
        assert!(!clean_script(image, &all).contains("userdel"));
        assert!(s.ends_with("fstrim --all >/dev/null 2>&1 || true\nsync\n"));
        assert!(prepare_script("b", Some("ssh-users")).contains("usermod -aG 'ssh-users' 'b'"));
        assert!(prepare_script("b", None).contains(
            "systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service \
             apt-daily-upgrade.service"
        ));
    }
}
