use super::*;
use crate::guest::HostKeyPair;

fn key() -> String {
    HostKeyPair::generate().unwrap().public_line().unwrap()
}

fn blob(line: &str) -> &str {
    line.split_whitespace().nth(1).unwrap()
}

#[test]
fn records_replaces_by_address_and_forgets_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "lab");
    let (ui, backend, ui_new) = (key(), key(), key());
    record(&file, "lab-ui-1", &["10.0.0.5".into()], &ui).unwrap();
    record(&file, "lab-backend-1", &["10.0.0.6".into()], &backend).unwrap();
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains(&format!("10.0.0.5 ssh-ed25519 {} lab-ui-1\n", blob(&ui))));

    // A rolling replacement: the new VM takes the address over.
    record(&file, "lab-ui-1-a1b2c3", &["10.0.0.5".into()], &ui_new).unwrap();
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(!text.contains(blob(&ui)), "{text}");
    assert!(text.contains(blob(&ui_new)) && text.contains(blob(&backend)));

    // The old VM's destroy must not take the new VM's line away.
    assert!(!forget(&file, "lab-ui-1").unwrap());
    assert!(forget(&file, "lab-backend-1").unwrap());
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(
        text,
        format!("10.0.0.5 ssh-ed25519 {} lab-ui-1-a1b2c3\n", blob(&ui_new))
    );
    let names: Vec<_> = fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["lab"], "no temporary file is left");
}

#[test]
fn keeps_foreign_lines_and_refuses_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "lab");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let foreign = "# jump host\nbastion.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFoo\n";
    fs::write(&file, foreign).unwrap();
    let k = key();
    record(
        &file,
        "lab-ui-1",
        &["10.0.0.5".into(), "[127.0.0.1]:2201".into()],
        &k,
    )
    .unwrap();
    forget(&file, "bastion.example").unwrap();
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.starts_with(foreign), "{text}");
    let bad = record(&file, "lab-ui-2", &["10.0.0.7".into()], "garbage").unwrap_err();
    assert_eq!(
        bad.to_string(),
        "known hosts of vm `lab-ui-2`: `garbage` is not an OpenSSH public key line"
    );
}

/// OpenSSH itself finds the key under both of the VM's addresses.
#[test]
fn ssh_keygen_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = path(dir.path(), "lab");
    let k = key();
    let hosts = ["10.0.0.5".to_string(), "[127.0.0.1]:2201".to_string()];
    record(&file, "lab-ui-1", &hosts, &k).unwrap();
    for host in ["10.0.0.5", "[127.0.0.1]:2201"] {
        let out = std::process::Command::new("ssh-keygen")
            .arg("-F")
            .arg(host)
            .arg("-f")
            .arg(&file)
            .output()
            .unwrap();
        assert!(out.status.success(), "{host}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains(blob(&k)));
    }
}
