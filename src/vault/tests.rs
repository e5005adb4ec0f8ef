use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/vault");

fn fixture(name: &str) -> VaultFile {
    VaultFile::new(Path::new(FIXTURES), name)
}

#[test]
fn decrypts_the_vector_ansible_vault_wrote() {
    // Written by ansible-vault 2.19 (see tests/data/vault/README.md).
    let secrets = fixture("ansible-1.1.yml")
        .secrets(&Password::new("correct horse"))
        .unwrap();
    assert_eq!(secrets["vault_db_password"], "Db-p4ss: \"quoted\" é");
    assert_eq!(secrets["vault_ox_admin_password"], "ox admin");
}

#[test]
fn reads_a_1_2_file_with_its_label_and_keeps_it_on_rewrite() {
    let vault = fixture("ansible-1.2-prod.yml");
    let opened = vault.open(&Password::new("correct horse")).unwrap();
    assert_eq!(opened.header.vault_id.as_deref(), Some("prod"));
    let text = encrypt(
        opened.plaintext.as_bytes(),
        &Password::new("pw"),
        &opened.header,
    );
    assert!(
        text.starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"),
        "{text}"
    );
}

#[test]
fn encrypt_then_decrypt_round_trips_with_fresh_salts() {
    let pw = Password::new("pw");
    let a = encrypt(b"k: v\n", &pw, &Header::default());
    let b = encrypt(b"k: v\n", &pw, &Header::default());
    assert_ne!(a, b, "each encryption draws a new salt");
    let (header, plain) = decrypt(&a, &pw).unwrap();
    assert_eq!(
        (header, plain.as_slice()),
        (Header::default(), &b"k: v\n"[..])
    );
}

#[test]
fn wrong_password_says_so_and_shows_nothing_secret() {
    let err = fixture("ansible-1.1.yml")
        .secrets(&Password::new("wrong"))
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        "vault `ansible-1.1.yml`: wrong password or corrupted file (HMAC mismatch)"
    );
    assert!(err.is_invalid_input());
}

#[test]
fn corrupted_files_give_clean_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string(fixture("ansible-1.1.yml").path).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    let cases = [
        (
            "bad-hex",
            good.replacen("\n3", "\ng", 1),
            "is not valid hex",
        ),
        ("no-header", lines[1..].join("\n"), "not an Ansible vault"),
        ("short", lines[..3].join("\n"), "corrupted file"),
        ("flipped", good.replacen("\n3", "\n4", 1), "HMAC mismatch"),
        ("empty", String::new(), "not an Ansible vault"),
    ];
    for (name, text, want) in cases {
        std::fs::write(dir.path().join(name), text).unwrap();
        let err = VaultFile::new(dir.path(), name)
            .secrets(&Password::new("correct horse"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(&format!("vault `{name}`: ")), "{err}");
        assert!(err.contains(want), "{name}: {err}");
    }
}

#[test]
fn a_decrypted_non_mapping_is_reported_by_line_without_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let vault = VaultFile::new(dir.path(), "v.yml");
    let pw = Password::new("pw");
    vault
        .seal(&Header::default(), "a: ok\nb:\n  - hunter2\n", &pw)
        .unwrap();
    let err = vault.secrets(&pw).unwrap_err().to_string();
    assert!(err.starts_with("vault `v.yml`: line 2: "), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
