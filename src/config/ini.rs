//! INI tokenizer: text in, sections of `key = value` entries out, each with its line number.
//!
//! It knows nothing of lc's keys; `config/mod.rs` validates what this returns. Comments start with
//! `;` or `#` at the start of a line or after whitespace in a value (so `a#b` stays a value).
//! Values are trimmed. A value in double quotes is taken as written, ` ;` and ` #` included
//! (`\"` and `\\` inside stand for `"` and `\`), so a password can hold them; an unquoted
//! value whose comment starts right after its `;`/`#` (`pa ;ss`) is marked `cut`, for
//! `config check` to ask whether it was meant. There are no continuation lines.

/// One `[section]` with its entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
    /// Unquoted, and followed by a comment that does not look like one (` ;x`, no space).
    pub cut: bool,
}

/// A line that is not a section header, an entry, a comment or blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub message: String,
}

/// The UTF-8 byte order mark Windows editors (Notepad) put at the start of a file.
const BOM: char = '\u{feff}';

/// Splits `text` into sections. Entries before the first section header are errors. Every bad
/// line is reported, not just the first. A byte order mark at the start is skipped.
pub fn parse(text: &str) -> (Vec<Section>, Vec<SyntaxError>) {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut sections: Vec<Section> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let code = strip_comment(raw);
        let trimmed = code.trim();
        if trimmed.is_empty() {
            continue;
        }
        if let Some(rest) = trimmed.strip_prefix('[') {
            match rest.strip_suffix(']') {
                Some(name) => sections.push(Section {
                    name: name.split_whitespace().collect::<Vec<_>>().join(" "),
                    line,
                    entries: Vec::new(),
                }),
                None => errors.push(SyntaxError {
                    line,
                    message: format!("section header {trimmed:?} lacks a closing ']'"),
                }),
            }
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            errors.push(SyntaxError {
                line,
                message: format!("expected `key = value`, found {trimmed:?}"),
            });
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            errors.push(SyntaxError {
                line,
                message: "entry has no key before '='".to_string(),
            });
            continue;
        }
        let value = value.trim();
        let (value, cut) = match unquote(value) {
            Some(Ok(v)) => (v, false),
            Some(Err(())) => {
                errors.push(SyntaxError {
                    line,
                    message: format!("the value of {key:?} opens a double quote it does not close"),
                });
                continue;
            }
            None => {
                let comment = &raw.as_bytes()[code.len()..];
                let cut = comment.len() > 1 && !comment[1].is_ascii_whitespace();
                (value.to_string(), cut)
            }
        };
        match sections.last_mut() {
            Some(section) => section.entries.push(Entry {
                key: key.to_string(),
                value,
                line,
                cut,
            }),
            None => errors.push(SyntaxError {
                line,
                message: format!("key {key:?} appears before any [section]"),
            }),
        }
    }
    (sections, errors)
}

/// Returns `text` with `key = value` set in `[section]`: the existing entry's line replaced,
/// else a new line after the section's last entry, else a new section at the end. Comments,
/// order and everything else are kept, so `lc connect` can edit an operator's file.
pub fn set_key(text: &str, section: &str, key: &str, value: &str) -> String {
    // A byte order mark stays where it was, out of the way of the first line's parsing.
    if let Some(rest) = text.strip_prefix(BOM) {
        return format!("{BOM}{}", set_key(rest, section, key, value));
    }
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut in_section = false;
    let mut insert_at = None;
    for i in 0..lines.len() {
        let t = strip_comment(&lines[i]).trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            in_section = name.split_whitespace().collect::<Vec<_>>().join(" ") == section;
            if in_section {
                insert_at = Some(i + 1);
            }
            continue;
        }
        if !in_section || t.is_empty() {
            continue;
        }
        if let Some((k, _)) = t.split_once('=') {
            if k.trim() == key {
                // The line's comment stays, at its column if the new value leaves room.
                let code_len = strip_comment(&lines[i]).len();
                let comment = lines[i][code_len..].to_string();
                let mut line = format!("{key} = {value}");
                if !comment.is_empty() {
                    let width = code_len.max(line.len() + 1);
                    line = format!("{line:<width$}{comment}");
                }
                lines[i] = line;
                return join(lines);
            }
            insert_at = Some(i + 1);
        }
    }
    match insert_at {
        Some(at) => lines.insert(at, format!("{key} = {value}")),
        None => {
            if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                lines.push(String::new());
            }
            lines.push(format!("[{section}]"));
            lines.push(format!("{key} = {value}"));
        }
    }
    join(lines)
}

fn join(lines: Vec<String>) -> String {
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Cuts a comment: a line starting with `;`/`#`, or ` ;`/` #` (whitespace first) later on,
/// but not inside a value in double quotes.
fn strip_comment(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with(';') || t.starts_with('#') {
        return "";
    }
    let bytes = line.as_bytes();
    // A quoted value: comments start only after its closing quote.
    let mut from = 1;
    if let Some(eq) = line.find('=') {
        let value_start = eq + 1 + (line[eq + 1..].len() - line[eq + 1..].trim_start().len());
        if bytes.get(value_start) == Some(&b'"') {
            match closing_quote(&line[value_start..]) {
                Some(end) => from = value_start + end + 1,
                None => return line,
            }
        }
    }
    for i in from.max(1)..bytes.len() {
        if (bytes[i] == b';' || bytes[i] == b'#') && bytes[i - 1].is_ascii_whitespace() {
            return &line[..i];
        }
    }
    line
}

/// The index of the quote closing the one `s` starts with, skipping `\"` and `\\`.
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// `None`: not quoted. `Some(Ok(v))`: the value inside the quotes, unescaped. `Some(Err)`: a
/// quote that is not closed, or text after the closing one.
fn unquote(value: &str) -> Option<Result<String, ()>> {
    if !value.starts_with('"') {
        return None;
    }
    let Some(end) = closing_quote(value) else {
        return Some(Err(()));
    };
    if end + 1 != value.len() {
        return Some(Err(()));
    }
    let mut out = String::new();
    let mut chars = value[1..end].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Some(Ok(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(input: &str, expected: &str) {
        let (sections, errors) = parse(input);
        let mut got = String::new();
        for s in &sections {
            got.push_str(&format!("[{}]@{}", s.name, s.line));
            for e in &s.entries {
                got.push_str(&format!(" {}={}@{}", e.key, e.value, e.line));
            }
            got.push(';');
        }
        for e in &errors {
            got.push_str(&format!(" !{}:{}", e.line, e.message));
        }
        assert_eq!(got.trim(), expected);
    }

    #[track_caller]
    fn check_set(input: &str, section: &str, key: &str, value: &str, expected: &str) {
        assert_eq!(set_key(input, section, key, value), expected);
    }

    #[test]
    fn set_key_keeps_a_byte_order_mark() {
        check_set(
            "\u{feff}[delivery]\nurl = x\n",
            "delivery",
            "url",
            "u",
            "\u{feff}[delivery]\nurl = u\n",
        );
    }

    #[test]
    fn set_keys() {
        check_set(
            "[delivery]\nurl = dir:/x ; old\n",
            "delivery",
            "url",
            "https://t",
            "[delivery]\nurl = https://t ; old\n",
        );
        check_set(
            "[collector]\nname = LogCollector1     ; the name in the portal\n",
            "collector",
            "name",
            "HQ",
            "[collector]\nname = HQ                ; the name in the portal\n",
        );
        check_set(
            "[delivery]\n; comment\ntoken_file = /t\n\n[spool]\n",
            "delivery",
            "url",
            "https://t",
            "[delivery]\n; comment\ntoken_file = /t\nurl = https://t\n\n[spool]\n",
        );
        check_set(
            "[collector]\nname = a\n",
            "delivery",
            "url",
            "https://t",
            "[collector]\nname = a\n\n[delivery]\nurl = https://t\n",
        );
        check_set("", "delivery", "url", "u", "[delivery]\nurl = u\n");
        check_set(
            "[delivery]\n",
            "delivery",
            "url",
            "u",
            "[delivery]\nurl = u\n",
        );
        check_set(
            "[source url]\nurl = x\n[delivery]\n",
            "delivery",
            "url",
            "u",
            "[source url]\nurl = x\n[delivery]\nurl = u\n",
        );
    }

    #[test]
    fn table() {
        check("", "");
        check("[a]\nk = v\n", "[a]@1 k=v@2;");
        check("; c\n# c\n[a]\n", "[a]@3;");
        check("[source  x]\n", "[source x]@1;");
        check("[a]\nk = v ; comment\n", "[a]@1 k=v@2;");
        check("[a]\nk = v#notcomment\n", "[a]@1 k=v#notcomment@2;");
        check("[a]\nk =\n", "[a]@1 k=@2;");
        check("[a]\nurl = dir:/x=y\n", "[a]@1 url=dir:/x=y@2;");
        check("k = v\n", "!1:key \"k\" appears before any [section]");
        check("[a\n", "!1:section header \"[a\" lacks a closing ']'");
        check(
            "[a]\njunk\n",
            "[a]@1; !2:expected `key = value`, found \"junk\"",
        );
        check("[a]\n = v\n", "[a]@1; !2:entry has no key before '='");
        // Quoted values keep ` ;` and ` #`; the comment after the quote goes.
        check("[a]\nk = \"pa ;ss #x\" ; c\n", "[a]@1 k=pa ;ss #x@2;");
        check("[a]\nk = \"a\\\"b\\\\\"\n", "[a]@1 k=a\"b\\@2;");
        check("[a]\nk = \"\"\n", "[a]@1 k=@2;");
        check(
            "[a]\nk = \"open ; x\n",
            "[a]@1; !2:the value of \"k\" opens a double quote it does not close",
        );
        check("[a]\nk = v\"x\"\n", "[a]@1 k=v\"x\"@2;");
        // Notepad's UTF-8 byte order mark before the first section (or a comment).
        check("\u{feff}[a]\nk = v\n", "[a]@1 k=v@2;");
        check("\u{feff}; c\n[a]\n", "[a]@2;");
        check("[a]\n\u{feff}k = v\n", "[a]@1 \u{feff}k=v@2;");
    }

    #[test]
    fn cut_values_are_marked() {
        let cut = |text: &str| {
            let (s, _) = parse(text);
            s[0].entries[0].cut
        };
        assert!(cut("[a]\nproxy = http://u:pa ;ss@h:1\n"));
        assert!(cut("[a]\nk = x #y\n"));
        assert!(!cut("[a]\nk = x ; a comment\n"));
        assert!(!cut("[a]\nk = x\n"));
        assert!(!cut("[a]\nk = \"x ;y\"\n"));
    }
}
