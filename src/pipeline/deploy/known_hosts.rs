//! `.oxbake/known_hosts/ENV`: the pinned host keys of an environment's
//! deployed VMs in OpenSSH's known_hosts format, so operators log in with
//! `ssh -o UserKnownHostsFile=.oxbake/known_hosts/ENV …` and never trust a
//! key on first use. One line per VM: its addresses, its public key and,
//! as the comment, the VM's name. A new VM on an address replaces the
//! line of that address; a destroyed VM's line goes. Lines oxbake did not
//! write (comments, other hosts) are kept. Every change replaces the file
//! atomically (temporary file, fsync, rename).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil::Atomic;

#[derive(Debug, thiserror::Error)]
pub enum KnownHostsError {
    #[error("known hosts `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("known hosts of vm `{vm}`: `{key}` is not an OpenSSH public key line")]
    BadKey { vm: String, key: String },
}

/// Where environment `env`'s known hosts live.
pub fn path(root: &Path, env: &str) -> PathBuf {
    crate::pipeline::context::WorkDirs::of(root)
        .known_hosts()
        .join(env)
}

/// Records that VM `vm`, reached at `hosts` (known_hosts host patterns:
/// `10.0.0.5`, `[127.0.0.1]:2222`), has host key `public_line`
/// (`ssh-ed25519 AAAA… comment`). Lines naming any of `hosts` or `vm` are
/// replaced.
pub fn record(
    file: &Path,
    vm: &str,
    hosts: &[String],
    public_line: &str,
) -> Result<(), KnownHostsError> {
    let mut fields = public_line.split_whitespace();
    let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
        return Err(KnownHostsError::BadKey {
            vm: vm.to_owned(),
            key: public_line.to_owned(),
        });
    };
    let text = read(file)?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !(names_vm(l, vm) || names_any(l, hosts)))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{} {kind} {blob} {vm}", hosts.join(",")));
    write(file, &lines)
}

/// Removes the line of VM `vm`; whether there was one.
pub fn forget(file: &Path, vm: &str) -> Result<bool, KnownHostsError> {
    let text = read(file)?;
    let kept: Vec<String> = text
        .lines()
        .filter(|l| !names_vm(l, vm))
        .map(str::to_owned)
        .collect();
    if kept.len() == text.lines().count() {
        return Ok(false);
    }
    write(file, &kept)?;
    Ok(true)
}

/// The host key recorded for VM `vm` (`ssh-ed25519 AAAA…`), if any.
pub fn key_of(file: &Path, vm: &str) -> Result<Option<String>, KnownHostsError> {
    let text = read(file)?;
    Ok(text.lines().find(|l| names_vm(l, vm)).map(|l| {
        let fields: Vec<&str> = l.split_whitespace().collect();
        format!("{} {}", fields[1], fields[2])
    }))
}

/// An entry oxbake wrote has four fields, the last the VM's name.
fn names_vm(line: &str, vm: &str) -> bool {
    let fields: Vec<&str> = line.split_whitespace().collect();
    !line.trim_start().starts_with('#') && fields.len() == 4 && fields[3] == vm
}

fn names_any(line: &str, hosts: &[String]) -> bool {
    let Some(patterns) = line.split_whitespace().next() else {
        return false;
    };
    !line.trim_start().starts_with('#') && patterns.split(',').any(|p| hosts.iter().any(|h| h == p))
}

fn read(file: &Path) -> Result<String, KnownHostsError> {
    match fs::read_to_string(file) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(source) => Err(io_err(file, source)),
    }
}

fn write(file: &Path, lines: &[String]) -> Result<(), KnownHostsError> {
    let dir = file.parent().unwrap_or(Path::new("."));
    let err = |e| io_err(file, e);
    fs::create_dir_all(dir).map_err(err)?;
    let mut text = lines.join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    let how = Atomic::new(".known-hosts-", "").mode(0o644);
    how.write(file, text.as_bytes()).map_err(|e| err(e.source))
}

fn io_err(file: &Path, source: io::Error) -> KnownHostsError {
    KnownHostsError::Io {
        path: file.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests;
