//! This machine's own apt in a configuration of its own (sources, lists,
//! cache, trusted key, auth.conf.d all in a temporary folder), pointed at
//! the test repository, optionally through an HTTP proxy.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{AptRepo, COMPONENT, SUITE};

/// An isolated apt: its own sources.list naming the repository with
/// `signed-by`, its own lists and cache, and its own auth.conf.d.
pub struct IsolatedApt {
    dir: tempfile::TempDir,
    proxy: Option<String>,
}

impl IsolatedApt {
    /// `proxy`: an HTTP proxy apt goes through (`http://127.0.0.1:PORT/`).
    pub fn new(
        repo: &AptRepo,
        key_armored: &str,
        login: Option<(&str, &str)>,
        proxy: Option<&str>,
    ) -> Self {
        Self::at_host(repo, "127.0.0.1", key_armored, login, proxy)
    }

    /// [`new`](Self::new), naming the repository's machine `host` (a name
    /// only a proxy resolves, say).
    pub fn at_host(
        repo: &AptRepo,
        host: &str,
        key_armored: &str,
        login: Option<(&str, &str)>,
        proxy: Option<&str>,
    ) -> Self {
        let url = repo.seen_from(host).url;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for sub in [
            "lists/partial",
            "cache/archives/partial",
            "parts",
            "auth.conf.d",
            "out",
        ] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        std::fs::write(d.join("key.asc"), key_armored).unwrap();
        let line = format!(
            "deb [signed-by={}] {} {SUITE} {COMPONENT}\n",
            d.join("key.asc").display(),
            url
        );
        std::fs::write(d.join("sources.list"), line).unwrap();
        if let Some((user, password)) = login {
            // apt uses credentials over plain HTTP only when the machine
            // line names the scheme.
            let auth = format!("machine {url} login {user} password {password}\n");
            let path = d.join("auth.conf.d/oxbake.conf");
            std::fs::write(&path, auth).unwrap();
        }
        Self {
            dir,
            proxy: proxy.map(str::to_owned),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn apt_get(&self, args: &[&str]) -> Output {
        let opt = |k: &str, v: &Path| format!("-oDir::{k}={}", v.display());
        let mut cmd = Command::new("apt-get");
        cmd.arg(opt("Etc::sourcelist", &self.path("sources.list")))
            .arg(opt("Etc::sourceparts", &self.path("parts")))
            .arg(opt("Etc::netrcparts", &self.path("auth.conf.d")))
            .arg(opt("State::Lists", &self.path("lists")))
            .arg(opt("Cache", &self.path("cache")))
            .args(["-oAPT::Sandbox::User=root", "-oDebug::NoLocking=1", "-q"])
            .arg(format!(
                "-oAcquire::http::Proxy={}",
                self.proxy.as_deref().unwrap_or("DIRECT")
            ))
            .args(args)
            .current_dir(self.path("out"));
        cmd.output().expect("apt-get (package apt) runs")
    }
}
