//! The summaries index: used when the records are as indexed, and made
//! again (never trusted) when it is missing, stale or corrupt.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::super::tests::image;
use super::super::{ImageSummary, Registry, RegistryError, Version};
use super::{FORMAT, Index, file};

/// A project's registry whose records are trusted as soon as they are
/// indexed (no wait for the timestamp granularity).
fn registry() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = Registry::for_project(dir.path());
    registry.index_slack = Duration::ZERO;
    (dir, registry)
}

fn index_dir(project: &Path) -> PathBuf {
    project.join(".oxbake/registry")
}

/// What the records say, read without any index.
fn truth(reg: &Registry) -> Vec<ImageSummary> {
    truth_of(reg, None)
}

fn truth_of(reg: &Registry, role: Option<&str>) -> Vec<ImageSummary> {
    reg.clone().with_index(None).summaries(role).unwrap()
}

/// Whether a listing of `role` took every summary from the index (parsed
/// no record and found the index complete).
fn served_from_index(reg: &Registry, role: &str) -> bool {
    reg.read_summaries(role).unwrap().1.is_none()
}

fn fill(reg: &Registry) -> Vec<Version> {
    let mut versions = Vec::new();
    for _ in 0..3 {
        versions.push(reg.record("ui", image(&[("nginx", true)])).unwrap().version);
    }
    reg.record("base", image(&[])).unwrap();
    versions
}

#[test]
fn the_index_is_made_then_used_and_made_again_when_missing() {
    let (dir, reg) = registry();
    fill(&reg);
    assert!(!index_dir(dir.path()).exists());
    let first = reg.summaries(None).unwrap();
    assert_eq!(first, truth(&reg));
    for role in ["ui", "base"] {
        assert!(file(&index_dir(dir.path()), role).exists(), "{role}");
        assert!(served_from_index(&reg, role), "{role}");
    }
    assert_eq!(reg.summaries(None).unwrap(), first);
    assert_eq!(reg.summaries(Some("ui")).unwrap(), first[1..]);

    fs::remove_file(file(&index_dir(dir.path()), "ui")).unwrap();
    assert!(!served_from_index(&reg, "ui"));
    assert_eq!(reg.summaries(None).unwrap(), first);
    assert!(served_from_index(&reg, "ui"));
}

#[test]
fn new_changed_and_removed_records_are_read_again() {
    let (dir, mut reg) = registry();
    // As configured: the records must have settled before they are trusted.
    reg.index_slack = super::SLACK;
    let versions = fill(&reg);
    std::thread::sleep(super::SLACK + Duration::from_millis(100));
    reg.summaries(None).unwrap();
    assert!(served_from_index(&reg, "ui"));
    // A revocation replaces the file.
    reg.revoke("ui", &versions[0], "CVE", "alice").unwrap();
    // A hand edit in place, same size, modification time put back: only
    // the change time tells.
    let path = dir.path().join(format!("images/ui/{}.toml", versions[1]));
    let text = fs::read_to_string(&path).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(
        text.replace("target = \"local\"", "target = \"pve-1\"")
            .as_bytes(),
    )
    .unwrap();
    file.set_modified(mtime).unwrap();
    drop(file);
    // A record removed, one added.
    fs::remove_file(dir.path().join(format!("images/ui/{}.toml", versions[2]))).unwrap();
    let added = reg.record("ui", image(&[])).unwrap();

    let read = reg.summaries(Some("ui")).unwrap();
    assert_eq!(read, truth_of(&reg, Some("ui")));
    let ids: Vec<String> = read.iter().map(ImageSummary::id).collect();
    assert_eq!(
        ids,
        [
            added.id(),
            format!("ui@{}", versions[1]),
            format!("ui@{}", versions[0])
        ]
    );
    assert_eq!(read[1].target, "pve-1");
    assert!(read[2].is_revoked());
}

#[test]
fn a_file_changed_just_before_the_index_was_made_is_read_again() {
    let (_dir, mut reg) = registry();
    reg.index_slack = super::SLACK;
    fill(&reg);
    reg.summaries(None).unwrap();
    // Written within the timestamp granularity of the index: a second
    // change could leave the file's identity as it is.
    assert!(!served_from_index(&reg, "ui"));
    assert_eq!(reg.summaries(None).unwrap(), truth(&reg));
}

#[test]
fn a_corrupt_index_is_ignored_and_made_again() {
    let (dir, reg) = registry();
    fill(&reg);
    let expected = reg.summaries(None).unwrap();
    let path = file(&index_dir(dir.path()), "ui");
    let good = fs::read(&path).unwrap();
    let body =
        String::from_utf8(good[good.iter().position(|b| *b == b'\n').unwrap() + 1..].to_vec())
            .unwrap();
    let digest = |text: &str| hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text));
    let edited = body.replace("\"local\"", "\"elsewhere\"");
    assert_ne!(edited, body);
    let corrupt = [
        b"garbage".to_vec(),
        good[..good.len() / 2].to_vec(),
        // Edited, the digest left as it was.
        format!("{}\n{edited}", digest(&body)).into_bytes(),
        // Another format, another role's.
        {
            let other = body.replace(&format!("\"format\":{FORMAT}"), "\"format\":99");
            format!("{}\n{other}", digest(&other)).into_bytes()
        },
        {
            let other = body.replace("\"role\":\"ui\"", "\"role\":\"base\"");
            format!("{}\n{other}", digest(&other)).into_bytes()
        },
    ];
    for bytes in corrupt {
        fs::write(&path, &bytes).unwrap();
        assert!(Index::load(&index_dir(dir.path()), "ui").is_none());
        assert_eq!(reg.summaries(None).unwrap(), expected);
        assert!(Index::load(&index_dir(dir.path()), "ui").is_some());
        assert!(served_from_index(&reg, "ui"));
    }
}

#[test]
fn a_corrupt_record_is_reported_at_its_place_and_nothing_is_written() {
    let (dir, reg) = registry();
    let versions = fill(&reg);
    reg.summaries(None).unwrap();
    let index = file(&index_dir(dir.path()), "ui");
    let before = fs::read(&index).unwrap();
    let path = dir.path().join(format!("images/ui/{}.toml", versions[1]));
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, text.replace("target = \"local\"", "target = 3")).unwrap();
    let err = reg.summaries(None).unwrap_err();
    let without = reg.clone().with_index(None).summaries(None).unwrap_err();
    assert_eq!(err.to_string(), without.to_string());
    let RegistryError::Parse { path, line, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        path,
        &PathBuf::from(format!("images/ui/{}.toml", versions[1]))
    );
    assert!(*line > 1, "{err}");
    assert!(err.to_string().contains(":"), "{err}");
    // The failed listing left the index as it was.
    assert_eq!(fs::read(&index).unwrap(), before);
    // `show` reads the record itself: the same place.
    let shown = reg.get("ui", &versions[1]).unwrap_err();
    assert_eq!(shown.to_string(), err.to_string());
}

#[test]
fn a_project_without_an_index_folder_it_can_write_still_lists() {
    let (dir, reg) = registry();
    fill(&reg);
    // A file where the index's folder would be.
    fs::create_dir_all(dir.path().join(".oxbake")).unwrap();
    fs::write(index_dir(dir.path()), "not a folder").unwrap();
    assert_eq!(reg.summaries(None).unwrap(), truth(&reg));
}

#[test]
fn concurrent_commits_and_listings_keep_the_index_true() {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 8;
    let (_dir, reg) = registry();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut listings = 0;
                    while !done.load(std::sync::atomic::Ordering::Relaxed) {
                        let listed = reg.summaries(Some("ui")).unwrap();
                        // Newest first, no version twice.
                        assert!(listed.windows(2).all(|w| w[0].version > w[1].version));
                        listings += 1;
                    }
                    listings
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let reg = &reg;
                scope.spawn(move || {
                    for i in 0..PER_WRITER {
                        let reservation = reg.reserve("ui").unwrap();
                        let record = reservation.commit(image(&[])).unwrap();
                        if (w + i) % 3 == 0 {
                            reg.revoke("ui", &record.version, "test", "t").unwrap();
                        }
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        for reader in readers {
            assert!(reader.join().unwrap() > 0);
        }
    });
    let listed = reg.summaries(Some("ui")).unwrap();
    assert_eq!(listed.len(), WRITERS * PER_WRITER);
    assert_eq!(listed, truth_of(&reg, Some("ui")));
    assert!(served_from_index(&reg, "ui"));
    assert_eq!(reg.summaries(Some("ui")).unwrap(), listed);
}

#[test]
fn a_role_without_records_keeps_no_index() {
    let (dir, reg) = registry();
    assert!(reg.summaries(Some("ui")).unwrap().is_empty());
    assert!(!index_dir(dir.path()).exists());
    let version = reg.record("ui", image(&[])).unwrap().version;
    reg.summaries(None).unwrap();
    assert!(file(&index_dir(dir.path()), "ui").exists());
    reg.remove("ui", &version).unwrap();
    assert!(reg.summaries(None).unwrap().is_empty());
    assert!(!file(&index_dir(dir.path()), "ui").exists());
    assert!(reg.summaries(Some("../ui")).is_err());
}

#[test]
fn a_symlinked_record_is_read_every_time_and_never_indexed() {
    let (dir, reg) = registry();
    let versions = fill(&reg);
    let folder = dir.path().join("images/ui");
    let real = dir.path().join("elsewhere.toml");
    let linked = folder.join(format!("{}.toml", versions[0]));
    fs::rename(&linked, &real).unwrap();
    std::os::unix::fs::symlink(&real, &linked).unwrap();
    let first = reg.summaries(None).unwrap();
    assert_eq!(first, truth(&reg));
    let index = Index::load(&index_dir(dir.path()), "ui").unwrap();
    assert_eq!(index.len(), 2, "the link is not indexed");
    // Nothing to write again: the link alone was parsed.
    assert!(served_from_index(&reg, "ui"));
    let text = fs::read_to_string(&real).unwrap();
    fs::write(
        &real,
        text.replace("target = \"local\"", "target = \"pve-9\""),
    )
    .unwrap();
    let read = reg.summaries(Some("ui")).unwrap();
    assert_eq!(read.last().unwrap().target, "pve-9");
}
