//! rsyslog 8.2302's RFC 5424 parser (`tools/pmrfc5424.c`), first in its default chain: a
//! message whose text after the PRI starts with `1 ` is taken as `VERSION SP TIMESTAMP SP
//! HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA SP MSG` (RFC 5424 section 6),
//! without validating the fields. Returns where each field is; `render.rs` writes them. No I/O.

use super::cursor::Cursor;
use super::header::{Header, Tag};
use super::stamp;

/// Parses `msg[start..]` (after the PRI), or `None` when this is not an RFC 5424 message (then
/// rsyslog hands it to the RFC 3164 parser).
pub fn parse(msg: &[u8], start: usize) -> Option<Header> {
    let mut c = Cursor::new(msg, start);
    if c.left < 2 || c.at(0) != b'1' || c.at(1) != b' ' {
        return None;
    }
    c.bump(2);
    // RFC 5424 section 6.2.3: `-` is "no timestamp" (rsyslog uses the receive time). A
    // timestamp that does not parse ends the parse: MSG is the rest, with no HOSTNAME or tag.
    let stamp = if c.left >= 2 && c.at(0) == b'-' && c.at(1) == b' ' {
        c.bump(2);
        None
    } else {
        match stamp::rfc3339(&mut c) {
            Some(s) => Some(s),
            None => return Some(Header::bare(c.pos)),
        }
    };
    // Each field runs to the next space, which must be there but is not required: a
    // message that ends early leaves the remaining fields empty.
    let host = field(&mut c);
    let app = field(&mut c);
    let procid = field(&mut c);
    field(&mut c); // MSGID, not rendered
    structured_data(&mut c);
    Some(Header {
        stamp,
        host: Some(host),
        tag: Tag::App { app, procid },
        msg: c.pos,
    })
}

fn field(c: &mut Cursor) -> std::ops::Range<usize> {
    let start = c.pos;
    while c.left > 0 && c.at(0) != b' ' {
        c.bump(1);
    }
    let end = c.pos;
    if c.left > 0 {
        c.bump(1);
    }
    start..end
}

/// Skips STRUCTURED-DATA (RFC 5424 section 6.3) as rsyslog does: `-`, or from `[` to the first
/// `]` followed by a space (`\]` does not end it, `][` neither), then that space. Anything else
/// is left for MSG. A message that ends inside the brackets keeps its last byte as MSG unless
/// that byte is `]` or a space (rsyslog stops one byte early).
fn structured_data(c: &mut Cursor) {
    if c.left == 0 || (c.at(0) != b'[' && c.at(0) != b'-') {
        return;
    }
    if c.at(0) == b'-' {
        c.bump(1);
    } else {
        loop {
            if c.left < 2 {
                if c.left > 0 && c.at(0) == b']' {
                    c.bump(1);
                }
                break;
            } else if c.at(0) == b'\\' && c.at(1) == b']' {
                c.bump(2);
            } else if c.at(0) == b']' && c.at(1) == b' ' {
                c.bump(1);
                break;
            } else {
                c.bump(1);
            }
        }
    }
    if c.left > 0 && c.at(0) == b' ' {
        c.bump(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: `stamp|host|tag|msg` (`rcv` for the receive time, `from` for the sender,
    /// tag as rendered), or "-" for "not RFC 5424".
    #[track_caller]
    fn check(input: &str, expected: &str) {
        let b = input.as_bytes();
        let s = |r: std::ops::Range<usize>| String::from_utf8_lossy(&b[r]).into_owned();
        let got = match parse(b, 0) {
            None => "-".to_string(),
            Some(h) => {
                let stamp: String = h.stamp.map_or("rcv".into(), |t| {
                    String::from_utf8_lossy(&t.render()).into()
                });
                let host = h.host.map_or("from".into(), s);
                let tag = match h.tag {
                    Tag::Empty => String::new(),
                    Tag::Bytes(r) => s(r),
                    Tag::App { app, procid } => {
                        let app = if app.is_empty() { "-".into() } else { s(app) };
                        match s(procid) {
                            p if p == "-" => app,
                            p => format!("{app}[{p}]"),
                        }
                    }
                };
                format!("{stamp}|{host}|{tag}|{}", s(h.msg.min(b.len())..b.len()))
            }
        };
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn table() {
        check(
            "1 2019-01-01T10:00:00.123+02:00 h app 123 mid [a b=\"c\"] msg",
            "Jan  1 10:00:00|h|app[123]|msg",
        );
        check(
            "1 2019-01-01T10:00:00Z h app - mid - msg",
            "Jan  1 10:00:00|h|app|msg",
        );
        check("1 - - - - - - msg", "rcv|-|-|msg");
        check("1 - - - - - -", "rcv|-|-|");
        check("1 - h a p m - \u{feff}bom", "rcv|h|a[p]|\u{feff}bom");
        // Empty fields: HOSTNAME stays empty, APP-NAME reads as "-", PROCID "" is not "-".
        check(
            "1 2019-01-01T10:00:00Z  app - - - msg",
            "Jan  1 10:00:00||app|msg",
        );
        check(
            "1 2019-01-01T10:00:00Z h app  - - msg",
            "Jan  1 10:00:00|h|app[]|msg",
        );
        check("1 2019-01-01T10:00:00Z h app", "Jan  1 10:00:00|h|app[]|");
        check("1 2019-01-01T10:00:00Z h", "Jan  1 10:00:00|h|-[]|");
        check("1 2019-01-01T10:00:00Z", "Jan  1 10:00:00||-[]|");
        // Structured data.
        check("1 - h a p m [x][y] msg", "rcv|h|a[p]|msg");
        check("1 - h a p m [x\\] y] msg", "rcv|h|a[p]|msg");
        check("1 - h a p m [x]", "rcv|h|a[p]|");
        check("1 - h a p m [x] ", "rcv|h|a[p]|");
        check("1 - h a p m [abc def", "rcv|h|a[p]|f");
        check("1 - h a p m [abc ", "rcv|h|a[p]|");
        check("1 - h a p m -msg", "rcv|h|a[p]|msg");
        check("1 - h a p m x y", "rcv|h|a[p]|x y");
        check("1 - h a p m  x", "rcv|h|a[p]| x");
        // A timestamp that is not one: MSG is everything after the version.
        check("1 bad h a p m - msg", "rcv|from||bad h a p m - msg");
        check(
            "1 2019-01-01T10:00:00 h a",
            "rcv|from||2019-01-01T10:00:00 h a",
        );
        check("1 -x", "rcv|from||-x");
        check("1 ", "rcv|from||");
        // Not RFC 5424.
        check("1", "-");
        check("2 - h a p m - x", "-");
        check("1x", "-");
        check("", "-");
    }
}
