//! What the repository's signed metadata says each file must be: a
//! Release/InRelease names every index file below its `dists/SUITE/` with
//! its SHA256 (and its `by-hash` twin), a Packages index names every
//! package file below the archive root with its SHA256. The proxy learns
//! these as apt fetches them, and serves a cached file only under the
//! SHA256 the latest index names for its URL.

use std::collections::HashMap;
use std::io::Read;

/// What an index says a file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Lowercase hex SHA256.
    pub sha256: String,
    pub size: u64,
    /// The path the Release names it by (`main/binary-amd64/Packages.gz`),
    /// or the package's `Filename`.
    pub name: String,
}

impl Expected {
    /// A Packages index (any compression) whose entries name packages.
    pub fn is_packages_index(&self) -> bool {
        let file = self.name.rsplit('/').next().unwrap_or_default();
        file == "Packages" || file.starts_with("Packages.")
    }

    /// A package file (as opposed to an index).
    pub fn is_package(&self) -> bool {
        self.name.ends_with(".deb") || self.name.ends_with(".udeb")
    }
}

/// URL (no credentials, no query) → what it must be.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<String, Expected>,
}

impl Index {
    pub fn get(&self, url: &str) -> Option<&Expected> {
        self.entries.get(url)
    }

    /// Learns the files a Release or InRelease names; `url` is the one it
    /// was fetched from (`…/dists/SUITE/InRelease`).
    pub fn learn_release(&mut self, url: &str, text: &str) {
        let Some(base) = url.rfind('/').map(|i| &url[..=i]) else {
            return;
        };
        for (sha256, size, name) in release_sha256(text) {
            let dir = name.rfind('/').map(|i| &name[..=i]).unwrap_or_default();
            let expected = Expected {
                sha256: sha256.clone(),
                size,
                name: name.clone(),
            };
            let by_hash = format!("{base}{dir}by-hash/SHA256/{sha256}");
            self.entries.insert(by_hash, expected.clone());
            self.entries.insert(format!("{base}{name}"), expected);
        }
    }

    /// Learns the packages a Packages index names; `url` is the one it was
    /// fetched from (below `…/dists/`), `raw` its bytes as fetched.
    pub fn learn_packages(&mut self, url: &str, name: &str, raw: &[u8]) {
        let Some(root) = url.find("/dists/").map(|i| &url[..=i]) else {
            return;
        };
        let Some(text) = decompress(name, raw) else {
            return;
        };
        for (filename, sha256, size) in packages_entries(&text) {
            self.entries.insert(
                format!("{root}{filename}"),
                Expected {
                    sha256,
                    size,
                    name: filename,
                },
            );
        }
    }
}

/// `(sha256, size, path)` of the SHA256 section of a Release file (signed
/// or not: the clearsign armour lines are not indented and end the section).
fn release_sha256(text: &str) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if !line.starts_with(' ') {
            inside = line.trim_end() == "SHA256:";
            continue;
        }
        if !inside {
            continue;
        }
        let mut parts = line.split_whitespace();
        if let (Some(sum), Some(size), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
            && is_sha256(sum)
            && let Ok(size) = size.parse()
            && !path.contains("..")
        {
            out.push((sum.to_ascii_lowercase(), size, path.to_owned()));
        }
    }
    out
}

/// `(Filename, SHA256, Size)` of each stanza of a Packages index.
fn packages_entries(text: &str) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let (mut file, mut sum, mut size) = (None, None, None);
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Filename:") {
                file = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("SHA256:") {
                sum = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Size:") {
                size = v.trim().parse().ok();
            }
        }
        if let (Some(file), Some(sum), Some(size)) = (file, sum, size)
            && is_sha256(sum)
            && !file.contains("..")
        {
            out.push((file.to_owned(), sum.to_ascii_lowercase(), size));
        }
    }
    out
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The text of an index fetched as `name` (plain, `.gz` or `.xz`); `None`
/// for other compressions (their packages then pass through uncached).
fn decompress(name: &str, raw: &[u8]) -> Option<String> {
    let bytes = if name.ends_with(".gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .ok()?;
        out
    } else if name.ends_with(".xz") {
        unxz(raw)?
    } else if name.rsplit('/').next() == Some("Packages") {
        raw.to_vec()
    } else {
        return None;
    };
    String::from_utf8(bytes).ok()
}

/// Decompresses with the host's `xz` (xz-utils), if there is one.
fn unxz(raw: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("xz")
        .args(["-dc"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdin = child.stdin.take()?;
    let input = raw.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().ok()?;
    let _ = writer.join();
    out.status.success().then_some(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUM_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SUM_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn release_names_index_files_and_their_by_hash_twins() {
        let release = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: x\nMD5Sum:\n \
             {} 10 main/binary-amd64/Packages\nSHA256:\n {SUM_A} 10 main/binary-amd64/Packages\n \
             {SUM_B} 7 main/binary-amd64/Packages.gz\n-----BEGIN PGP SIGNATURE-----\n\n \
             {SUM_A} 1 fake\n",
            &SUM_B[..32]
        );
        let mut index = Index::default();
        index.learn_release("http://h/debian/dists/s/InRelease", &release);
        let plain = index
            .get("http://h/debian/dists/s/main/binary-amd64/Packages")
            .unwrap();
        assert_eq!(plain.sha256, SUM_A);
        assert!(plain.is_packages_index() && !plain.is_package());
        let twin = format!("http://h/debian/dists/s/main/binary-amd64/by-hash/SHA256/{SUM_B}");
        assert_eq!(
            index.get(&twin).unwrap().name,
            "main/binary-amd64/Packages.gz"
        );
        assert!(index.get("http://h/debian/dists/s/fake").is_none());
    }

    #[test]
    fn packages_name_package_files_below_the_archive_root() {
        let text = format!(
            "Package: a\nFilename: pool/main/a/a_1_all.deb\nSize: 5\nSHA256: {SUM_A}\n\n\
             Package: broken\nFilename: pool/x.deb\n\n"
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        let mut index = Index::default();
        let url = "http://h/debian/dists/s/main/binary-amd64/by-hash/SHA256/x";
        index.learn_packages(url, "main/binary-amd64/Packages.gz", &gz);
        let deb = index
            .get("http://h/debian/pool/main/a/a_1_all.deb")
            .unwrap();
        assert_eq!((deb.sha256.as_str(), deb.size), (SUM_A, 5));
        assert!(deb.is_package());
        assert!(index.get("http://h/debian/pool/x.deb").is_none());
    }
}
