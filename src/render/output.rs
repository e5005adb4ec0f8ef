//! What a `{{ … }}` may write into a file. The files oxbake renders are
//! line-oriented configuration (nginx, HAProxy, MariaDB option files,
//! properties, shell-sourced settings), where a line break inside a value
//! starts a line of the value's choosing. So every value written is
//! refused when it holds a line break or another control character, unless
//! the template says that the place takes several lines (`| multiline`: a
//! PEM certificate or key, alone in its file). Values whose file format
//! gives characters such as `#` or quotes a meaning are written with that
//! format's filter (`| mycnf`).

use minijinja::{Environment, Error, ErrorKind, Output, State, Value};

/// The filters and the formatter, on `env`.
pub fn install(env: &mut Environment<'static>) {
    env.set_formatter(write_value);
    env.add_filter("multiline", multiline);
    env.add_filter("mycnf", mycnf);
    env.add_filter("ssh_public_key", ssh_public_key);
    env.add_filter("sh", sh);
}

/// A character that would end or bend a line of a configuration file.
/// Tabs are kept: they separate words, they do not start lines.
fn breaks_lines(c: char) -> bool {
    (c.is_control() && c != '\t') || matches!(c, '\u{2028}' | '\u{2029}')
}

fn write_value(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if !value.is_safe() {
        let text = value.to_string();
        if let Some(c) = text.chars().find(|c| breaks_lines(*c)) {
            // The value itself is never quoted: it may be a secret.
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "a value written here holds a line break or control character \
                     (U+{:04X}); one line of a configuration file cannot take it \
                     (a place that takes several lines says `| multiline`)",
                    u32::from(c)
                ),
            ));
        }
    }
    minijinja::escape_formatter(out, state, value)
}

/// `{{ x | multiline }}`: this place takes a value of several lines.
fn multiline(value: &Value) -> Value {
    Value::from_safe_string(value.to_string())
}

/// `{{ x | mycnf }}`: a MariaDB/MySQL option file value, double-quoted with
/// the escapes the option file parser reads back (`\\`, `\"`, `\n`, `\t`,
/// `\r`, `\b`), so that `#`, quotes, backslashes, spaces and line breaks
/// arrive as they were. NUL cannot be written.
fn mycnf(value: &Value) -> Result<Value, Error> {
    let text = value.to_string();
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            '\u{8}' => quoted.push_str("\\b"),
            '\0' => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    "an option file value cannot hold NUL",
                ));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    Ok(Value::from_safe_string(quoted))
}

/// `{{ x | sh }}`: one word of a shell-sourced file (`KEY={{ x | sh }}`),
/// single-quoted, a `'` written as `'\''`: `$`, backquotes, spaces and `;`
/// arrive as they were, never run. A line break is still refused (the
/// formatter): a sourced line stays one line.
fn sh(value: &Value) -> Value {
    let text = value.to_string();
    Value::from(format!("'{}'", text.replace('\'', "'\\''")))
}

/// `{{ secrets.k | ssh_public_key }}`: the public half (`ssh-ed25519 AAAA…`)
/// of an unencrypted OpenSSH private key, so that a secret key given once
/// serves both its holder and the side that trusts it (an authorized key, a
/// known host). The error never quotes the value: it is a secret.
fn ssh_public_key(value: &Value) -> Result<Value, Error> {
    let key = crate::guest::ClientKey::from_openssh(&value.to_string()).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "`ssh_public_key` needs an unencrypted OpenSSH private key (`ssh-keygen -N ''`); \
             this value is not one",
        )
    })?;
    let line = key
        .public_line()
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("ssh_public_key: {e}")))?;
    Ok(Value::from(line))
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::*;

    fn render(source: &str, value: &str) -> Result<String, Error> {
        let mut env = Environment::new();
        install(&mut env);
        env.render_str(source, context!(v => value))
    }

    #[test]
    fn a_value_cannot_start_a_line_of_its_own() {
        for hostile in [
            "a\nb",
            "a\r\nb",
            "a\rb",
            "a\u{0}b",
            "a\u{b}b",
            "a\u{c}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
            "a\u{1b}[2Jb",
        ] {
            let err = render("server_name {{ v }};\n", hostile).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("line break or control character"), "{text}");
            assert!(
                !text.contains("a\n") && !text.contains('\u{2028}'),
                "{text}"
            );
            // Through other filters and concatenation alike.
            assert!(render("x {{ (v ~ '!') | upper }}\n", hostile).is_err());
            assert!(render("x {{ [v] | join(',') }}\n", hostile).is_err());
        }
        // (A bare environment drops the final newline.)
        assert_eq!(render("a {{ v }}", "b\tc").unwrap(), "a b\tc");
        assert_eq!(render("{{ v }}", "plain").unwrap(), "plain");
    }

    #[test]
    fn multiline_places_take_several_lines() {
        let pem = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n";
        assert_eq!(render("{{ v | multiline }}", pem).unwrap(), pem);
    }

    #[test]
    fn mycnf_quotes_what_the_option_parser_would_read_otherwise() {
        let cases = [
            ("plain", "\"plain\""),
            ("a#b", "\"a#b\""),
            ("say \"hi\"", "\"say \\\"hi\\\"\""),
            ("it's", "\"it's\""),
            ("back\\slash", "\"back\\\\slash\""),
            (" lead and trail ", "\" lead and trail \""),
            ("two\nlines", "\"two\\nlines\""),
        ];
        for (value, quoted) in cases {
            assert_eq!(render("{{ v | mycnf }}", value).unwrap(), quoted);
            // The option file parser's reading, done again: the quotes go,
            // the escapes become their characters.
            assert_eq!(unquote(quoted), value);
        }
        assert!(render("{{ v | mycnf }}", "a\0b").is_err());
    }

    /// How MariaDB's option file reader (mysys) reads a quoted value: the
    /// surrounding quotes are dropped, `\\`, `\"`, `\'`, `\n`, `\t`, `\r`,
    /// `\b` and `\s` become one character.
    fn unquote(value: &str) -> String {
        let inner = &value[1..value.len() - 1];
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('s') => out.push(' '),
                Some(c @ ('\\' | '"' | '\'')) => out.push(c),
                Some(c) => {
                    out.push('\\');
                    out.push(c);
                }
                None => out.push('\\'),
            }
        }
        out
    }

    #[test]
    fn ssh_public_key_writes_the_public_half_and_never_the_value() {
        let pair = crate::guest::HostKeyPair::generate().unwrap();
        let private = pair.private_openssh().unwrap();
        let public = pair.public_line().unwrap();
        let written = render("restrict {{ v | ssh_public_key }}", &private).unwrap();
        assert_eq!(written, format!("restrict {public}"));
        assert!(!written.contains("PRIVATE"));
        let err = render("{{ v | ssh_public_key }}", "not-a-key-s3cr3t")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unencrypted OpenSSH private key"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn sh_quotes_one_word_that_the_shell_reads_back() {
        for hostile in [
            "plain",
            "a b",
            "$(touch /tmp/x)",
            "`id`",
            "it's",
            "a;b",
            "'",
            "\\",
        ] {
            let written = render("v={{ v | sh }}", hostile).unwrap();
            let out = std::process::Command::new("sh")
                .args(["-c", &format!("{written}; printf %s \"$v\"")])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), hostile, "{written}");
        }
        assert!(render("v={{ v | sh }}", "a\nb").is_err());
    }
}
