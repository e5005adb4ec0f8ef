//! One value of the flat mapping: inline (plain, single or double quoted)
//! or a literal block.

use super::{YamlError, fail};

/// The value written on the key's own line.
pub fn inline(number: usize, key: &str, rest: &str) -> Result<String, YamlError> {
    let rest = match rest.strip_prefix("!unsafe") {
        Some(after) if after.is_empty() || after.starts_with([' ', '\t']) => after.trim_start(),
        _ => rest,
    };
    let (value, after) = match rest.chars().next() {
        None | Some('#') => {
            return fail(
                number,
                format!("`{key}` has no value (nested mappings and lists are not supported)"),
            );
        }
        Some('"') => double_quoted(number, &rest[1..])?,
        Some('\'') => single_quoted(number, &rest[1..])?,
        Some('[' | '{' | '&' | '*' | '!' | '>' | '%' | '@' | '`') => {
            return fail(
                number,
                format!("`{key}`: only plain, quoted and `|` block strings are supported"),
            );
        }
        Some('-') if rest.len() == 1 || rest[1..].starts_with([' ', '\t']) => {
            return fail(number, format!("`{key}`: lists are not supported"));
        }
        Some(_) => return Ok(plain(rest)),
    };
    let after = after.trim_start();
    if !(after.is_empty() || after.starts_with('#')) {
        return fail(
            number,
            format!("`{key}`: unexpected text after the closing quote"),
        );
    }
    Ok(value)
}

/// A plain scalar: up to a comment (` #`), trimmed.
fn plain(rest: &str) -> String {
    let end = rest
        .char_indices()
        .find(|&(at, c)| c == '#' && rest[..at].ends_with([' ', '\t']))
        .map_or(rest.len(), |(at, _)| at);
    rest[..end].trim_end().to_owned()
}

/// `'…'` with `''` for a quote. Returns the value and what follows.
fn single_quoted(number: usize, body: &str) -> Result<(String, &str), YamlError> {
    let mut value = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        if c != '\'' {
            value.push(c);
        } else if chars.peek().is_some_and(|&(_, n)| n == '\'') {
            value.push('\'');
            chars.next();
        } else {
            return Ok((value, &body[at + 1..]));
        }
    }
    fail(
        number,
        "unterminated single-quoted string (quoted strings must end on their line)",
    )
}

/// `"…"` with YAML's escapes. Returns the value and what follows.
fn double_quoted(number: usize, body: &str) -> Result<(String, &str), YamlError> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[at + 1..])),
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                let simple = match e {
                    '0' => Some('\0'),
                    'a' => Some('\x07'),
                    'b' => Some('\x08'),
                    't' | '\t' => Some('\t'),
                    'n' => Some('\n'),
                    'v' => Some('\x0b'),
                    'f' => Some('\x0c'),
                    'r' => Some('\r'),
                    'e' => Some('\x1b'),
                    ' ' | '"' | '/' | '\\' => Some(e),
                    'N' => Some('\u{85}'),
                    '_' => Some('\u{a0}'),
                    'L' => Some('\u{2028}'),
                    'P' => Some('\u{2029}'),
                    _ => None,
                };
                let decoded = match (simple, e) {
                    (Some(s), _) => Some(s),
                    (None, 'x') => hex_char(&mut chars, 2),
                    (None, 'u') => hex_char(&mut chars, 4),
                    (None, 'U') => hex_char(&mut chars, 8),
                    _ => None,
                };
                match decoded {
                    Some(d) => value.push(d),
                    None => return fail(number, "invalid escape in a double-quoted string"),
                }
            }
            _ => value.push(c),
        }
    }
    fail(
        number,
        "unterminated double-quoted string (quoted strings must end on their line)",
    )
}

fn hex_char(chars: &mut std::str::CharIndices<'_>, digits: usize) -> Option<char> {
    let mut code = 0u32;
    for _ in 0..digits {
        code = code * 16 + chars.next()?.1.to_digit(16)?;
    }
    char::from_u32(code)
}

/// A `|` block: the header's rest is `rest`, the block's lines follow in
/// `lines`. Returns the value and how many lines it used.
pub fn literal_block(
    number: usize,
    rest: &str,
    lines: &[&str],
) -> Result<(String, usize), YamlError> {
    let header = rest[1..].split('#').next().unwrap_or_default().trim_end();
    let (chomp, explicit) = block_header(number, header)?;
    let used = lines
        .iter()
        .position(|l| !l.trim().is_empty() && !l.starts_with([' ', '\t']))
        .unwrap_or(lines.len());
    let block = &lines[..used];
    let indent = explicit.unwrap_or_else(|| {
        block
            .iter()
            .find(|l| !l.trim().is_empty())
            .map_or(0, |l| l.len() - l.trim_start_matches(' ').len())
    });
    let mut value = String::new();
    for (k, line) in block.iter().enumerate() {
        if line.trim().is_empty() {
            value.push('\n');
        } else if line.len() >= indent && line[..indent].bytes().all(|b| b == b' ') && indent > 0 {
            value.push_str(&line[indent..]);
            value.push('\n');
        } else {
            return fail(number + 1 + k, "block line is less indented than the block");
        }
    }
    let body_len = value.trim_end_matches('\n').len();
    match chomp {
        '-' => value.truncate(body_len),
        '+' => {}
        _ if body_len == 0 => value.clear(),
        _ => value.truncate(body_len + 1),
    }
    Ok((value, used))
}

/// `|`, `|-`, `|+`, `|2`, `|-2`, `|2-` → (chomping, explicit indent).
fn block_header(number: usize, header: &str) -> Result<(char, Option<usize>), YamlError> {
    let mut chomp = ' ';
    let mut indent = None;
    for c in header.chars() {
        match c {
            '-' | '+' if chomp == ' ' => chomp = c,
            '1'..='9' if indent.is_none() => indent = c.to_digit(10).map(|d| d as usize),
            _ => return fail(number, "invalid `|` block header"),
        }
    }
    Ok((chomp, indent))
}
