//! `vault encrypt` and `vault edit` through a symlink act on the file it
//! points to (as ansible-vault does): the link stays, the target gets the
//! ciphertext, and no plaintext is left in either folder. `--vault-id`
//! labels are checked before anything is written.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::{PASSWORD, VAULT, oxbake, project, with_password};

/// The names in `dir`, and whether any file there holds `plain`.
fn listing(dir: &Path, plain: &str) -> (Vec<String>, bool) {
    let mut names = Vec::new();
    let mut leaked = false;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        names.push(entry.file_name().to_string_lossy().into_owned());
        let text = std::fs::read(entry.path()).unwrap_or_default();
        leaked |= String::from_utf8_lossy(&text).contains(plain);
    }
    names.sort();
    (names, leaked)
}

#[test]
fn encrypt_through_a_symlink_encrypts_its_target_and_keeps_the_link() {
    let p = project(&format!("vault = \"{VAULT}\""));
    p.write("real/secrets.yml", "vault_new: \"fresh value\"\n");
    std::fs::create_dir_all(p.path("links")).unwrap();
    symlink("../real/secrets.yml", p.path("links/secrets.yml")).unwrap();
    let link = p.path("links/secrets.yml");
    let run = oxbake(
        &p,
        &["vault", "encrypt", link.to_str().unwrap()],
        &with_password(),
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert!(
        p.read("real/secrets.yml")
            .starts_with("$ANSIBLE_VAULT;1.1;AES256\n")
    );
    for (dir, want) in [("real", "secrets.yml"), ("links", "secrets.yml")] {
        let (names, leaked) = listing(&p.path(dir), "fresh value");
        assert_eq!(names, [want], "{dir}");
        assert!(!leaked, "{dir}: plaintext left");
    }
    let view = oxbake(
        &p,
        &["--json", "vault", "view", link.to_str().unwrap()],
        &with_password(),
    );
    assert!(view.stdout().contains("fresh value"), "{}", view.stderr());
}

#[test]
fn edit_through_a_symlink_reencrypts_its_target_and_keeps_the_link() {
    let p = project("vault = \"links/vault.yml\"");
    std::fs::create_dir_all(p.path("links")).unwrap();
    let real = p.read(VAULT);
    p.write("real/vault.yml", &real);
    symlink("../real/vault.yml", p.path("links/vault.yml")).unwrap();
    let script = p.path("editor.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'vault_added: added value' >> \"$1\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = [
        ("OXBAKE_VAULT_PASSWORD", PASSWORD),
        ("EDITOR", script.to_str().unwrap()),
    ];
    let run = oxbake(&p, &["vault", "edit"], &env);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        std::fs::symlink_metadata(p.path("links/vault.yml"))
            .unwrap()
            .is_symlink()
    );
    let target = p.read("real/vault.yml");
    assert!(target.starts_with("$ANSIBLE_VAULT;") && target != real);
    for dir in ["real", "links"] {
        let (names, leaked) = listing(&p.path(dir), "added value");
        assert_eq!(names, ["vault.yml"], "{dir}");
        assert!(!leaked, "{dir}: plaintext left");
    }
    let view = oxbake(&p, &["--json", "vault", "view"], &with_password());
    let json: serde_json::Value = serde_json::from_str(&view.stdout()).unwrap();
    assert_eq!(json["vault_added"], "added value");
}

#[test]
fn encrypt_refuses_a_file_with_other_hard_links() {
    let p = project(&format!("vault = \"{VAULT}\""));
    p.write("plain.yml", "vault_new: \"fresh value\"\n");
    std::fs::hard_link(p.path("plain.yml"), p.path("other.yml")).unwrap();
    let file = p.path("plain.yml");
    let run = oxbake(
        &p,
        &["vault", "encrypt", file.to_str().unwrap()],
        &with_password(),
    );
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("has 2 hard links"),
        "{}",
        run.stderr()
    );
    assert_eq!(p.read("plain.yml"), "vault_new: \"fresh value\"\n");
}

#[test]
fn vault_id_labels_are_checked_before_anything_is_written() {
    let p = project(&format!("vault = \"{VAULT}\""));
    let plain = "vault_new: \"fresh value\"\n";
    p.write("plain/new.yml", plain);
    let file = p.path("plain/new.yml");
    let file = file.to_str().unwrap();
    for (label, why) in [
        ("", "is empty"),
        ("prod;x", "must not hold `;`"),
        ("prod\nx", "newline"),
        ("prod\tx", "control character"),
        ("prod\u{7f}", "control character"),
        ("prød", "must be ASCII"),
        (" prod", "white space"),
        ("prod ", "white space"),
    ] {
        let run = oxbake(
            &p,
            &["vault", "encrypt", file, "--vault-id", label],
            &with_password(),
        );
        assert_eq!(run.code(), 2, "{label:?}: {}", run.stderr());
        assert!(
            run.stderr().contains("vault id label"),
            "{label:?}: {}",
            run.stderr()
        );
        assert!(run.stderr().contains(why), "{label:?}: {}", run.stderr());
        assert_eq!(p.read("plain/new.yml"), plain, "{label:?}");
        assert_eq!(listing(&p.path("plain"), "").0, ["new.yml"], "{label:?}");
    }
    let run = oxbake(
        &p,
        &["vault", "encrypt", file, "--vault-id", "prod-1"],
        &with_password(),
    );
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        p.read("plain/new.yml")
            .starts_with("$ANSIBLE_VAULT;1.2;AES256;prod-1\n")
    );
}
