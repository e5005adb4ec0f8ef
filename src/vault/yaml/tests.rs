use super::*;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn reads_an_ansible_style_vault_file() {
    let text = "---\n# secrets\nvault_db_password: \"s3cr:et \\\"x\\\" \\u00e9\"\n\
                vault_plain: plain value # a comment\n\
                vault_single: 'it''s #1'\n\
                vault_unsafe: !unsafe '{{ not a template }}'\n\
                vault_port: 5432\n\
                url: http://h:1/#frag\n\
                \n...\nignored: after the end\n";
    assert_eq!(
        parse(text).unwrap(),
        map(&[
            ("vault_db_password", "s3cr:et \"x\" é"),
            ("vault_plain", "plain value"),
            ("vault_single", "it's #1"),
            ("vault_unsafe", "{{ not a template }}"),
            ("vault_port", "5432"),
            ("url", "http://h:1/#frag"),
        ])
    );
}

#[test]
fn literal_blocks_keep_lines_and_chomp() {
    let text = "key: |\n  -----BEGIN-----\n  abc\n\n    def\n  -----END-----\n\n\
                strip: |-\n  one\n  two\n\nkeep: |+\n  x\n\nlast: y\n";
    let got = parse(text).unwrap();
    assert_eq!(got["key"], "-----BEGIN-----\nabc\n\n  def\n-----END-----\n");
    assert_eq!(got["strip"], "one\ntwo");
    assert_eq!(got["keep"], "x\n\n");
    assert_eq!(got["last"], "y");
}

#[test]
fn refuses_what_it_does_not_read_with_the_line_and_no_value() {
    let cases = [
        ("a: 1\nnested:\n  b: hunter2\n", 2),
        ("a: [hunter2]\n", 1),
        ("- hunter2\n", 1),
        ("a: \"hunter2\n", 1),
        ("a: 'hunter2\n", 1),
        ("a: \"hunter2\\q\"\n", 1),
        ("a: \"hunter2\" trailing\n", 1),
        ("a: >\n  hunter2\n", 1),
        ("a: &anchor hunter2\n", 1),
        ("a: x\na: hunter2\n", 2),
        ("just hunter2\n", 1),
        ("a: |\n    hunter2\n  less\n", 3),
    ];
    for (text, line) in cases {
        let err = parse(text).unwrap_err();
        assert_eq!(err.line, line, "{text:?}: {err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}

#[test]
fn empty_text_is_an_empty_mapping() {
    assert!(parse("").unwrap().is_empty());
    assert!(parse("---\n# nothing\n").unwrap().is_empty());
}
