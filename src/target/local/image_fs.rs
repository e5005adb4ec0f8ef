//! A disk image opened offline, read-only, without booting it. qemu-img
//! converts the qcow2 file (through its backing chain) into a sparse raw
//! copy in a private temporary folder; sfdisk reads its partition table;
//! debugfs (e2fsprogs) reads the ext4 root file system at its offset. No
//! loop device, no mount, no root: nothing replays a journal or changes a
//! byte of the template, and it works as any user who can read the file.
//! The raw copy goes when the [`ImageFs`] is dropped (or, if the process
//! is killed, with `oxbake gc`: [`crate::scratch`]).

use std::io::Read;
use std::path::{Path, PathBuf};

use memchr::memmem;
use tokio::process::Command;

use crate::target::{TargetError, exec};

/// One directory entry, as debugfs lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    /// Bytes, for regular files (0 otherwise).
    pub size: u64,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }

    pub fn is_file(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }
}

/// Where a searched value was found: in a file (its path), or in blocks no
/// file owns (free space that was not trimmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    File(String),
    FreeSpace { offset: u64 },
}

/// A template's root file system, read offline.
pub struct ImageFs {
    _dir: tempfile::TempDir,
    raw: PathBuf,
    /// The root file system's byte offset in `raw`, and its length.
    offset: u64,
    length: u64,
    block_size: u64,
}

impl ImageFs {
    /// Opens `image` (qcow2) read-only; the raw copy is made in a new
    /// folder under `scratch` (best on the same disk as the templates: it
    /// takes as much space as the image's content).
    pub async fn open(image: &Path, scratch: &Path) -> Result<Self, TargetError> {
        let dir =
            crate::scratch::folder(scratch, "inspect-").map_err(|e| TargetError::io(scratch, e))?;
        let raw = dir.path().join("disk.raw");
        let mut convert = Command::new("qemu-img");
        convert
            .args(["convert", "-U", "-f", "qcow2", "-O", "raw"])
            .arg(image)
            .arg(&raw);
        exec::run(&mut convert).await?;
        let (offset, length) = root_partition(&raw).await?;
        let mut fs = ImageFs {
            _dir: dir,
            raw,
            offset,
            length,
            block_size: 0,
        };
        fs.block_size = fs.block_size().await?;
        Ok(fs)
    }

    fn device(&self) -> String {
        format!("{}?offset={}", self.raw.display(), self.offset)
    }

    /// Runs debugfs commands, one per line, and returns its stdout.
    async fn debugfs(&self, commands: &[String]) -> Result<Vec<u8>, TargetError> {
        let script = self._dir.path().join("commands");
        std::fs::write(&script, commands.join("\n") + "\n")
            .map_err(|e| TargetError::io(&script, e))?;
        let mut cmd = Command::new("debugfs");
        cmd.arg("-f").arg(&script).arg(self.device());
        Ok(exec::run(&mut cmd).await?.stdout)
    }

    async fn block_size(&self) -> Result<u64, TargetError> {
        let out = self.debugfs(&["stats".to_owned()]).await?;
        String::from_utf8_lossy(&out)
            .lines()
            .find_map(|l| l.strip_prefix("Block size:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| self.unreadable("no block size in its superblock"))
    }

    fn unreadable(&self, why: &str) -> TargetError {
        TargetError::Inspect {
            image: self.raw.display().to_string(),
            why: why.to_owned(),
        }
    }

    /// The entries of each of `dirs` (without `.` and `..`); a folder that
    /// does not exist lists as `None`.
    pub async fn list(&self, dirs: &[&str]) -> Result<Vec<Option<Vec<Entry>>>, TargetError> {
        let commands: Vec<String> = dirs.iter().map(|d| format!("ls -p {}", quote(d))).collect();
        let out = self.debugfs(&commands).await?;
        let text = String::from_utf8_lossy(&out);
        // debugfs echoes each command as `debugfs: COMMAND` before its
        // output; an error (a missing folder) goes to stderr.
        let mut answers: Vec<Option<Vec<Entry>>> = Vec::new();
        for line in text.lines() {
            if line.starts_with("debugfs: ") {
                answers.push(None);
                continue;
            }
            let Some(entry) = parse_ls(line) else {
                continue;
            };
            if let Some(last) = answers.last_mut() {
                let list = last.get_or_insert_with(Vec::new);
                if entry.name != "." && entry.name != ".." {
                    list.push(entry);
                }
            }
        }
        answers.resize(dirs.len(), None);
        Ok(answers)
    }

    /// Every entry below `dir`, with its path (folders first reached,
    /// breadth first).
    pub async fn walk(&self, dir: &str) -> Result<Vec<(String, Entry)>, TargetError> {
        let mut found = Vec::new();
        let mut level = vec![dir.trim_end_matches('/').to_owned()];
        while !level.is_empty() {
            let refs: Vec<&str> = level.iter().map(String::as_str).collect();
            let listed = self.list(&refs).await?;
            let mut next = Vec::new();
            for (parent, entries) in level.iter().zip(listed) {
                for entry in entries.unwrap_or_default() {
                    let path = format!("{parent}/{}", entry.name);
                    if entry.is_dir() {
                        next.push(path.clone());
                    }
                    found.push((path, entry));
                }
            }
            level = next;
        }
        Ok(found)
    }

    /// The content of `file`, or `None` if there is no such file.
    pub async fn read(&self, file: &str) -> Result<Option<Vec<u8>>, TargetError> {
        let parent = match file.rsplit_once('/') {
            Some(("", _)) | None => "/",
            Some((parent, _)) => parent,
        };
        let name = file.rsplit('/').next().unwrap_or(file);
        let listed = self.list(&[parent]).await?;
        let exists = listed
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.name == name && e.is_file());
        if !exists {
            return Ok(None);
        }
        let out = self.debugfs(&[format!("cat {}", quote(file))]).await?;
        // The echo of the command comes first when debugfs reads a script.
        let echo = format!("debugfs: cat {}\n", quote(file));
        Ok(Some(
            out.strip_prefix(echo.as_bytes()).unwrap_or(&out).to_vec(),
        ))
    }

    /// Where on the root file system each of `values` occurs (in a file, or
    /// in free space): a scan of every byte of the partition, so a value is
    /// found whatever file holds it.
    pub async fn find(&self, values: &[&[u8]]) -> Result<Vec<(usize, Place)>, TargetError> {
        // An empty value would be found everywhere: it is never searched.
        let searched: Vec<(usize, &[u8])> = values
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let needles: Vec<&[u8]> = searched.iter().map(|(_, v)| *v).collect();
        let hits = scan(&self.raw, self.offset, self.length, &needles)
            .map_err(|e| TargetError::io(&self.raw, e))?;
        let mut places = Vec::new();
        for (index, at) in hits {
            places.push((searched[index].0, self.owner(at).await?));
        }
        Ok(places)
    }

    /// The file that owns the byte at `at` (relative to the partition).
    async fn owner(&self, at: u64) -> Result<Place, TargetError> {
        let block = at / self.block_size;
        let out = self.debugfs(&[format!("icheck {block}")]).await?;
        let text = String::from_utf8_lossy(&out);
        let inode = text
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .get(1)
                    .map(|s| s.to_string())
            })
            .find_map(|s| s.parse::<u64>().ok());
        let Some(inode) = inode else {
            return Ok(Place::FreeSpace { offset: at });
        };
        let out = self.debugfs(&[format!("ncheck {inode}")]).await?;
        let text = String::from_utf8_lossy(&out);
        let path = text
            .lines()
            .filter(|l| !l.starts_with("debugfs:") && !l.starts_with("Inode"))
            .find_map(|l| {
                l.split_once(char::is_whitespace)
                    .map(|(_, p)| p.trim().to_owned())
            });
        Ok(Place::File(
            path.unwrap_or_else(|| format!("<inode {inode}>")),
        ))
    }
}

/// `ls -p` lines: `/INODE/MODE/UID/GID/NAME/SIZE/`.
fn parse_ls(line: &str) -> Option<Entry> {
    let rest = line.strip_prefix('/')?.strip_suffix('/')?;
    let mut parts = rest.splitn(5, '/');
    let _inode = parts.next()?;
    let mode = u32::from_str_radix(parts.next()?, 8).ok()?;
    let _uid = parts.next()?;
    let _gid = parts.next()?;
    let tail = parts.next()?;
    let (name, size) = tail.rsplit_once('/')?;
    Some(Entry {
        name: name.to_owned(),
        mode,
        size: size.parse().unwrap_or(0),
    })
}

/// debugfs reads double-quoted arguments as one.
fn quote(path: &str) -> String {
    format!("\"{}\"", path.replace('"', ""))
}

/// The byte offset and length of the first ext4 file system in `raw` that
/// holds `/etc` (a whole-disk file system counts as a partition at 0).
async fn root_partition(raw: &Path) -> Result<(u64, u64), TargetError> {
    let total = std::fs::metadata(raw)
        .map_err(|e| TargetError::io(raw, e))?
        .len();
    let mut candidates: Vec<(u64, u64)> = Vec::new();
    let mut sfdisk = Command::new("sfdisk");
    sfdisk.arg("-J").arg(raw);
    if let Ok(out) = exec::run(&mut sfdisk).await
        && let Ok(table) = serde_json::from_slice::<serde_json::Value>(&out.stdout)
    {
        let sector = table["partitiontable"]["sectorsize"]
            .as_u64()
            .unwrap_or(512);
        for p in table["partitiontable"]["partitions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let (Some(start), Some(size)) = (p["start"].as_u64(), p["size"].as_u64()) {
                candidates.push((start * sector, size * sector));
            }
        }
    }
    candidates.push((0, total));
    for (offset, length) in candidates {
        if is_ext4(raw, offset).unwrap_or(false) {
            return Ok((offset, length));
        }
    }
    Err(TargetError::Inspect {
        image: raw.display().to_string(),
        why: "no ext4 file system found on the disk".to_owned(),
    })
}

/// The ext2/3/4 superblock magic (0xEF53) at 1080 bytes into the partition.
fn is_ext4(raw: &Path, offset: u64) -> std::io::Result<bool> {
    use std::io::{Seek, SeekFrom};
    let mut file = std::fs::File::open(raw)?;
    file.seek(SeekFrom::Start(offset + 1080))?;
    let mut magic = [0u8; 2];
    file.read_exact(&mut magic)?;
    Ok(magic == [0x53, 0xEF])
}

/// Every place (value index, byte offset from `offset`) where one of
/// `values` occurs in `raw[offset..offset + length]`. No value, no read:
/// most bakes have no secret, and a template's raw copy is gigabytes of
/// mostly holes. The buffer is allocated once (zeroed by the allocator)
/// and the overlap moved with one `copy_within`: no byte-by-byte work here,
/// which a build without optimisation (the tests' binary) would pay per
/// byte of the disk.
fn scan(
    raw: &Path,
    offset: u64,
    length: u64,
    values: &[&[u8]],
) -> std::io::Result<Vec<(usize, u64)>> {
    use std::io::{Seek, SeekFrom};
    const CHUNK: usize = 8 << 20;
    let Some(longest) = values.iter().map(|v| v.len()).max() else {
        return Ok(Vec::new());
    };
    let overlap = longest.saturating_sub(1);
    let finders: Vec<memmem::Finder<'_>> = values.iter().map(memmem::Finder::new).collect();
    let mut file = std::fs::File::open(raw)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = file.take(length);
    let mut buf = vec![0u8; overlap + CHUNK];
    // `buf[..kept]` is the tail of the previous window; `base` is the
    // offset of `buf[0]`.
    let mut kept = 0;
    let mut base: u64 = 0;
    let mut hits = Vec::new();
    loop {
        let mut filled = kept;
        while filled < buf.len() {
            let n = reader.read(&mut buf[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        let eof = filled < buf.len();
        let window = &buf[..filled];
        for (index, finder) in finders.iter().enumerate() {
            for at in finder.find_iter(window) {
                // A match wholly inside the kept overlap was counted before.
                if at + values[index].len() > kept {
                    hits.push((index, base + at as u64));
                }
            }
        }
        if eof {
            break;
        }
        let keep = overlap.min(filled);
        buf.copy_within(filled - keep..filled, 0);
        base += (filled - keep) as u64;
        kept = keep;
    }
    hits.sort_by_key(|h| h.1);
    hits.dedup();
    Ok(hits)
}

#[cfg(test)]
/// A GPT disk with one ext4 partition at 1 MiB made from `root`, as
/// a qcow2 file; no root needed (mkfs.ext4 -d fills it).
pub(crate) fn fixture(dir: &Path, root: &Path) -> PathBuf {
    let raw = dir.join("disk.raw");
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::File::create(&raw)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let mut sfdisk = std::process::Command::new("sfdisk");
    sfdisk
        .arg("-q")
        .arg(&raw)
        .stdin(std::process::Stdio::piped());
    let mut child = sfdisk.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            b"label: gpt\nstart=2048, size=120000, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n",
        )
        .unwrap();
    assert!(child.wait().unwrap().success());
    run(std::process::Command::new("mkfs.ext4")
        .args(["-q", "-E", "offset=1048576", "-d"])
        .arg(root)
        .arg(&raw)
        .arg("58M"));
    let qcow2 = dir.join("template.qcow2");
    run(std::process::Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2));
    std::fs::remove_file(&raw).unwrap();
    qcow2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_lines_parse_into_entries() {
        assert_eq!(
            parse_ls("/16/100644/0/0/x y.log/4/"),
            Some(Entry {
                name: "x y.log".into(),
                mode: 0o100644,
                size: 4
            })
        );
        let dir = parse_ls("/15/040755/0/0/.//").unwrap();
        assert!(dir.is_dir() && dir.name == ".");
        assert_eq!(parse_ls("/nope: File not found by ext2_lookup "), None);
    }

    #[test]
    fn a_value_across_a_chunk_boundary_is_found_once() {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("raw");
        let mut data = vec![0u8; (8 << 20) + 64];
        let at = (8 << 20) - 3;
        data[at..at + 6].copy_from_slice(b"s3cret");
        data[10..16].copy_from_slice(b"s3cret");
        std::fs::write(&raw, &data).unwrap();
        let hits = scan(&raw, 0, data.len() as u64, &[b"s3cret"]).unwrap();
        assert_eq!(hits, [(0, 10), (0, at as u64)]);
        // Relative to the partition's offset.
        let hits = scan(&raw, 8, data.len() as u64 - 8, &[b"s3cret"]).unwrap();
        assert_eq!(hits, [(0, 2), (0, at as u64 - 8)]);
        // Two values of different lengths, one right at the end.
        let end = data.len() - 4;
        data[end..].copy_from_slice(b"tail");
        std::fs::write(&raw, &data).unwrap();
        let hits = scan(&raw, 0, data.len() as u64, &[b"s3cret", b"tail"]).unwrap();
        assert_eq!(hits, [(0, 10), (0, at as u64), (1, end as u64)]);
        // Nothing to look for: nothing read, nothing found.
        assert!(
            scan(&dir.path().join("missing"), 0, 1, &[])
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_template_is_read_offline_and_a_value_is_traced_to_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for d in ["etc", "var/lib/dhcp", "var/log/nginx", "home/ops"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("etc/hostname"), "build-ui-1\n").unwrap();
        std::fs::write(root.join("var/lib/dhcp/dhclient.eth0.leases"), "lease {}\n").unwrap();
        std::fs::write(root.join("var/log/nginx/access log"), "GET /\n").unwrap();
        std::fs::write(root.join("home/ops/notes"), "password=hunter2-XYZ\n").unwrap();
        let qcow2 = fixture(dir.path(), &root);
        let fs = ImageFs::open(&qcow2, &dir.path().join("scratch"))
            .await
            .unwrap();
        assert_eq!(
            fs.read("/etc/hostname").await.unwrap().unwrap(),
            b"build-ui-1\n"
        );
        assert_eq!(fs.read("/etc/machine-id").await.unwrap(), None);
        let listed = fs.list(&["/var/lib/dhcp", "/nope"]).await.unwrap();
        let names: Vec<&str> = listed[0]
            .iter()
            .flatten()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, ["dhclient.eth0.leases"]);
        assert_eq!(listed[1], None);
        let walked: Vec<String> = fs
            .walk("/var/log")
            .await
            .unwrap()
            .into_iter()
            .filter(|(_, e)| e.is_file())
            .map(|(p, _)| p)
            .collect();
        assert_eq!(walked, ["/var/log/nginx/access log"]);
        let found = fs
            .find(&[b"", b"hunter2-XYZ", b"absent-value"])
            .await
            .unwrap();
        assert_eq!(found, [(1, Place::File("/home/ops/notes".into()))]);
        // The raw copy goes with the value.
        drop(fs);
        let left: Vec<_> = std::fs::read_dir(dir.path().join("scratch"))
            .unwrap()
            .collect();
        assert!(left.is_empty());
    }
}
