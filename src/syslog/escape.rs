//! How a message becomes one spool line: control characters are escaped as rsyslog does with
//! `$EscapeControlCharactersOnReceive` (`#` and three octal digits: LF is `#012`), so a line-
//! oriented parser downstream sees exactly one line per message. Bytes >= 0x80 (UTF-8) pass as
//! they are.

/// Appends `msg`, escaped, and a terminating LF to `out`.
pub fn push_line(out: &mut Vec<u8>, msg: &[u8]) {
    // Branch-free scan first: the common message has no control characters, and this loop
    // vectorises where an early-exit search would not.
    let has_control = msg.iter().fold(false, |acc, &b| acc | is_control(b));
    if !has_control {
        out.reserve(msg.len() + 1);
        out.extend_from_slice(msg);
    } else {
        out.reserve(msg.len() + 16);
        for &b in msg {
            if is_control(b) {
                out.extend_from_slice(&[
                    b'#',
                    b'0' + (b >> 6),
                    b'0' + ((b >> 3) & 7),
                    b'0' + (b & 7),
                ]);
            } else {
                out.push(b);
            }
        }
    }
    out.push(b'\n');
}

#[inline]
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

#[cfg(test)]
mod tests {
    #[track_caller]
    fn check(input: &[u8], expected: &str) {
        let mut out = Vec::new();
        super::push_line(&mut out, input);
        assert_eq!(String::from_utf8_lossy(&out), expected);
    }

    #[test]
    fn table() {
        check(b"<13>plain", "<13>plain\n");
        check(b"", "\n");
        check(b"a\nb", "a#012b\n");
        check(b"a\r\nb", "a#015#012b\n");
        check(b"tab\there", "tab#011here\n");
        check(b"nul\0", "nul#000\n");
        check(b"del\x7f", "del#177\n");
        check(b"esc\x1b[0m", "esc#033[0m\n");
        check("caf\u{e9} \u{2713}".as_bytes(), "caf\u{e9} \u{2713}\n");
        check(b"#012 stays", "#012 stays\n");
    }
}
