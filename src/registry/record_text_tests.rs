use super::*;
use crate::registry::Revocation;

const LABEL: &str = "images/ui/2026.11.25.1.toml";

fn record() -> ImageRecord {
    let mut image = crate::registry::tests::image(&[("nginx", true)]);
    image.packages.extend([
        ("bsdutils".into(), "1:2.38.1-5+deb12u3".into()),
        ("ca-certificates".into(), "20250419~deb12u2".into()),
    ]);
    // Text that looks like the table inside a string after it.
    image.checks[0].command = "systemctl is-active nginx\n[packages]\nx = \"1\"".into();
    let mut record = ImageRecord::new(
        "ui",
        "2026.11.25.1".parse().unwrap(),
        "2026-11-25T10:03:12Z".parse().unwrap(),
        image,
    );
    record.revoked = Some(Revocation {
        reason: "CVE".into(),
        when: "2026-11-26T08:00:00Z".parse().unwrap(),
        who: "ops".into(),
    });
    record.published = vec![crate::registry::Published {
        target: "pve".into(),
        when: "2026-11-26T09:00:00Z".parse().unwrap(),
        sha256: "d".repeat(64).parse().unwrap(),
        artifact: crate::registry::Artifact::Proxmox {
            node: "pve1".into(),
            vmid: 9101,
            template: "ui-2026.11.25.1".into(),
        },
    }];
    record
}

fn full(text: &str) -> Result<ImageRecord, RegistryError> {
    toml_file::parse(Path::new(LABEL), text)
}

#[test]
fn a_written_record_is_read_the_quick_way_and_means_the_same() {
    let expected = record();
    let text = toml::to_string(&expected).unwrap();
    assert!(text.contains("\"libstdc++6\" = \"12.2.0-14\"\n"), "{text}");
    assert_eq!(quick(&text, Packages::Read), Some(expected.clone()));
    assert_eq!(full(&text).unwrap(), expected);
    let with_header = format!("# oxbake image record\n{text}");
    assert_eq!(quick(&with_header, Packages::Read), Some(expected));
}

#[test]
fn packages_at_the_end_or_hand_spaced_are_read_the_quick_way() {
    let mut expected = record();
    expected.checks.clear();
    expected.revoked = None;
    let text = toml::to_string(&expected).unwrap();
    let spaced = text
        .replace("nginx = ", "  nginx\t=   ")
        .replace("[packages]\n", "[packages]\n\n");
    assert!(spaced.trim_end().ends_with('"'), "{spaced}");
    assert_eq!(quick(&spaced, Packages::Read), Some(expected));
}

/// Each of these texts must be parsed whole: the quick way could differ.
#[test]
fn anything_unusual_is_parsed_whole_with_the_same_result() {
    let text = toml::to_string(&record()).unwrap();
    let cases = [
        // An escape in a name or version.
        text.replace("nginx = \"1.22.1-9\"", "\"ngin\\u0078\" = \"1.22.1-9\""),
        // A comment or a trailing comment.
        text.replace("[packages]\n", "[packages]\n# pinned\n"),
        text.replace("\"1.22.1-9\"", "\"1.22.1-9\" # pinned"),
        // A literal string.
        text.replace("\"1.22.1-9\"", "'1.22.1-9'"),
        // The header inside a multi-line string before the table.
        text.replace(
            "target = \"local\"",
            "target = \"\"\"local\n[packages]\nx = \"1\"\n\"\"\"",
        ),
        // Another definition of `packages`.
        format!("{text}\n[packages.extra]\nx = \"1\"\n"),
        // A name given twice.
        text.replace("nginx = \"1.22.1-9\"", "nginx = \"1\"\nnginx = \"2\""),
    ];
    for case in cases {
        assert_eq!(quick(&case, Packages::Read), None, "{case}");
        let label = Path::new(LABEL);
        match (parse(label, &case), full(&case)) {
            (Ok(a), Ok(b)) => assert_eq!(a, b),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("quick {a:?} but whole {b:?} for\n{case}"),
        }
    }
}

#[test]
fn an_error_in_the_packages_table_points_at_its_line_and_column() {
    let text = toml::to_string(&record()).unwrap();
    let line = text.lines().position(|l| l.starts_with("nginx")).unwrap() + 1;
    let broken = text.replace("nginx = \"1.22.1-9\"", "nginx = 1.22");
    let err = parse(Path::new(LABEL), &broken).unwrap_err();
    assert!(err.is_invalid_input());
    let shown = err.to_string();
    assert!(shown.starts_with(&format!("{LABEL}:{line}:9: ")), "{shown}");

    let twice = text.replace("nginx = \"1.22.1-9\"", "nginx = \"1\"\nnginx = \"2\"");
    let err = parse(Path::new(LABEL), &twice).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{LABEL}:{}:", line + 1)), "{err}");
}

#[test]
fn without_packages_everything_else_is_read_and_errors_still_count() {
    let mut expected = record();
    let text = toml::to_string(&expected).unwrap();
    expected.packages.clear();
    let label = Path::new(LABEL);
    assert_eq!(parse_without_packages(label, &text).unwrap(), expected);
    let quoted = text.replace("nginx = ", "\"nginx\" = ");
    assert_eq!(parse_without_packages(label, &quoted).unwrap(), expected);
    let broken = text.replace("nginx = \"1.22.1-9\"", "nginx = 1.22");
    let skipped = parse_without_packages(label, &broken).unwrap_err();
    assert_eq!(
        skipped.to_string(),
        parse(label, &broken).unwrap_err().to_string()
    );
}
