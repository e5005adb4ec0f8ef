use super::*;

fn names(source: &str) -> Vec<(&'static str, Name)> {
    scan(source)
        .into_iter()
        .map(|r| (r.keyword, r.name))
        .collect()
}

fn lit(s: &str) -> Name {
    Name::Literal(s.to_owned())
}

fn computed(s: &str) -> Name {
    Name::Computed(s.to_owned())
}

#[test]
fn literal_names_of_every_tag_kind() {
    let found = names(
        "{% include \"a.j2\" %}{%- import 'm.j2' as m -%}\n{%+ from \"f.j2\" import x, y %}\
         {% extends 'base.j2' %}{% include 'i.j2' ignore missing with context %}\
         {%include'tight.j2'%}{%-\n  include\n 'lines.j2'\n-%}",
    );
    assert_eq!(
        found,
        [
            ("include", lit("a.j2")),
            ("import", lit("m.j2")),
            ("from", lit("f.j2")),
            ("extends", lit("base.j2")),
            ("include", lit("i.j2")),
            ("include", lit("tight.j2")),
            ("include", lit("lines.j2")),
        ]
    );
}

#[test]
fn every_computed_name_is_caught() {
    let found = names(
        "{% include secrets.tls_private_key %}{% include \"a\" ~ x %}\
         {% include [\"a.j2\", x] ignore missing %}{% import n as m %}\
         {% from d['k'] import y %}{% extends x if y else 'b.j2' %}\
         {% include 'a' 'b' %}{% include \"esc\\x2e\" %}{% include (\"p\") %}\
         {% include 'x' | lower %}",
    );
    assert_eq!(
        found,
        [
            ("include", computed("secrets.tls_private_key")),
            ("include", computed("\"a\" ~ x")),
            ("include", computed("[\"a.j2\", x]")),
            ("import", computed("n")),
            ("from", computed("d['k']")),
            ("extends", computed("x if y else 'b.j2'")),
            ("include", computed("'a' 'b'")),
            ("include", computed("\"esc\\x2e\"")),
            ("include", computed("(\"p\")")),
            ("include", computed("'x' | lower")),
        ]
    );
}

#[test]
fn comments_raw_blocks_output_and_strings_hide_nothing_and_fake_nothing() {
    let found = names(
        "{# {% include secret %} #}{{ '{% include x %}' }}{{ {'a': '}}'} }}\
         {% raw %}{% include y %}{%- endraw -%}{% set s = '%} {% include z' %}\
         {% if a %}{% include 'real.j2' %}{% endif %}{# unclosed",
    );
    assert_eq!(found, [("include", lit("real.j2"))]);
    // Text that never closes ends the scan; odd bytes do not break it.
    assert!(names("{% include").iter().all(|(_, n)| *n == computed("")));
    assert_eq!(
        names("é {{ é… }} {% include 'ü.j2' %}"),
        [("include", lit("ü.j2"))]
    );
    assert_eq!(names("{% include '\\"), [("include", computed("'\\"))]);
}

#[test]
fn offsets_point_at_the_name() {
    let source = "line\n  {% include secrets.key %}";
    let r = &scan(source)[0];
    assert_eq!(&source[r.offset..r.offset + 7], "secrets");
}

#[test]
fn problems_follow_literal_includes_and_report_each_file() {
    let root = tempfile::tempdir().unwrap();
    let t = root.path().join("templates");
    std::fs::create_dir_all(t.join("sub")).unwrap();
    std::fs::write(
        t.join("sub/helper.j2"),
        "x\n{% include n %}{% include 'gone.j2' %}{% include 'top.j2' %}",
    )
    .unwrap();
    let top = "{% include 'sub/helper.j2' %}{% include 'missing.j2' %}{% import key as k %}";
    std::fs::write(t.join("top.j2"), top).unwrap();
    let shown: Vec<String> = problems(root.path(), Path::new("templates/top.j2"), top)
        .into_iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(
        shown,
        [
            "templates/top.j2:1:66: `import` must name its template by a string literal (a path under templates/), not `key`",
            "templates/sub/helper.j2:2:12: `include` must name its template by a string literal (a path under templates/), not `n`",
            "templates/sub/helper.j2:2:27: template `gone.j2` does not exist in templates/",
        ]
    );
}
