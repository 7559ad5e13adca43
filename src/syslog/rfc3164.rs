//! rsyslog 8.2302's RFC 3164 parser (`tools/pmrfc3164.c`), the last of its default chain, so
//! it takes every message the RFC 5424 parser did not: `[TIMESTAMP SP][HOSTNAME SP]TAG MSG`
//! (RFC 3164 section 4.1), each part optional and guessed with rsyslog's heuristics. Returns
//! where each part is; `render.rs` writes them. No I/O.

use super::cursor::Cursor;
use super::header::{Header, Tag};
use super::stamp;

/// rsyslog's `CONF_HOSTNAME_MAXSIZE - 1`: the longest HOSTNAME it takes.
const HOSTNAME_MAX: usize = 511;
/// rsyslog's `CONF_TAG_MAXSIZE - 2`: the most TAG bytes before the colon; the rest is MSG.
const TAG_MAX: usize = 510;

/// Parses `msg[start..]` (after the PRI).
pub fn parse(msg: &[u8], start: usize) -> Header {
    let mut c = Cursor::new(msg, start);
    // Spaces then `{` or `[`: a header-less JSON or bracketed message, kept whole.
    let first = msg[start..]
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .map(|i| msg[start + i]);
    if matches!(first, Some(b'{' | b'[')) {
        return Header::bare(start);
    }
    let stamp = stamp::rfc3339(&mut c)
        .or_else(|| stamp::rfc3164(&mut c))
        .or_else(|| {
            // HP ProCurve: one space before the date.
            if c.at(0) != b' ' || c.left <= 1 {
                return None;
            }
            let mut t = c;
            t.bump(1);
            let s = stamp::rfc3164(&mut t)?;
            c = t;
            Some(s)
        });
    let host = if c.left > 0 { hostname(&mut c) } else { None };
    // TAG runs to a colon (kept) or a space (left for MSG), at most TAG_MAX bytes; rsyslog
    // does not hold to RFC 3164's 32 alphanumerics. After a year-first date `left` counts one
    // byte past the end, so a tag that runs to the end takes the NUL terminator too.
    let tag_start = c.pos;
    let mut n = 0;
    while c.left > 0 && c.at(0) != b':' && c.at(0) != b' ' && n < TAG_MAX {
        c.bump(1);
        n += 1;
    }
    if c.left > 0 && c.at(0) == b':' {
        c.bump(1);
    }
    let tag = if c.pos == tag_start {
        Tag::Empty
    } else {
        Tag::Bytes(tag_start..c.pos)
    };
    Header {
        stamp,
        host,
        tag,
        msg: c.pos,
    }
}

/// A HOSTNAME is letters, digits, `.`, `_` and `-` (C locale, so no bytes >= 0x80), ending in a
/// letter or digit and followed by a space, which is eaten; or such a run to the very end of the
/// message. Anything else is no hostname (then it is likely the TAG: rsyslog's guess for
/// messages that omit it, as BSD syslog does).
fn hostname(c: &mut Cursor) -> Option<std::ops::Range<usize>> {
    let start = c.pos;
    let mut i = 0usize;
    while (i as isize) < c.left
        && (c.at(i).is_ascii_alphanumeric() || matches!(c.at(i), b'.' | b'_' | b'-'))
        && i < HOSTNAME_MAX
    {
        i += 1;
    }
    if i as isize == c.left {
        c.bump(i);
        return Some(start..start + i);
    }
    if i > 0 && c.at(i - 1).is_ascii_alphanumeric() && c.at(i) == b' ' {
        c.bump(i + 1);
        return Some(start..start + i);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: `stamp|host|tag|msg` (`rcv` for the receive time, `from` for the sender,
    /// `\0` where rsyslog copies its NUL terminator).
    #[track_caller]
    fn check(input: &str, expected: &str) {
        let b = input.as_bytes();
        let s = |r: std::ops::Range<usize>| {
            let nul = if r.end > b.len() { "\\0" } else { "" };
            format!(
                "{}{nul}",
                String::from_utf8_lossy(&b[r.start..r.end.min(b.len())])
            )
        };
        let h = parse(b, 0);
        let stamp: String = h.stamp.map_or("rcv".into(), |t| {
            String::from_utf8_lossy(&t.render()).into()
        });
        let host = h.host.map_or("from".into(), s);
        let tag = match h.tag {
            Tag::Empty => String::new(),
            Tag::Bytes(r) => s(r),
            Tag::App { .. } => unreachable!(),
        };
        let got = format!("{stamp}|{host}|{tag}|{}", s(h.msg.min(b.len())..b.len()));
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn table() {
        check(
            "Apr  9 16:03:37 host tag: msg",
            "Apr  9 16:03:37|host|tag:| msg",
        );
        check(
            "Apr 09 16:03:37 host tag[12]: msg",
            "Apr  9 16:03:37|host|tag[12]:| msg",
        );
        check(
            "Apr  9 16:03:37 host tag[1] m",
            "Apr  9 16:03:37|host|tag[1]| m",
        );
        check("Apr  9 16:03:37 host t:m", "Apr  9 16:03:37|host|t:|m");
        check("Apr  9 16:03:37 host", "Apr  9 16:03:37|host||");
        check("Apr  9 16:03:37 host ", "Apr  9 16:03:37|host||");
        check("Apr  9 16:03:37", "Apr  9 16:03:37|from||");
        check("Apr  9 16:03:37  ", "Apr  9 16:03:37|from|| ");
        check("Apr  9 16:03:37 h_1.x t", "Apr  9 16:03:37|h_1.x|t|");
        check(" Apr  9 16:03:37 host t: m", "Apr  9 16:03:37|host|t:| m");
        check(
            "2019-01-01T10:00:00Z host tag: msg",
            "Jan  1 10:00:00|host|tag:| msg",
        );
        check("Apr  9 ::  host t: m", "Apr  9 00:00:00|from|| host t: m");
        // Not a hostname: ends in `-`, brackets, a colon, bytes >= 0x80, escapes.
        check(
            "Apr  9 16:03:37 host- t: m",
            "Apr  9 16:03:37|from|host-| t: m",
        );
        check(
            "Apr  9 16:03:37 [1.2.3.4] t: m",
            "Apr  9 16:03:37|from|[1.2.3.4]| t: m",
        );
        check("Apr  9 16:03:37 host:t m", "Apr  9 16:03:37|from|host:|t m");
        check("h\u{e9} t: m", "rcv|from|h\u{e9}| t: m");
        check("host#011tab: m", "rcv|from|host#011tab:| m");
        // No timestamp: the first word is a hostname if it looks like one.
        check("abc", "rcv|abc||");
        check("1", "rcv|1||");
        check("hello world", "rcv|hello|world|");
        check("<192>x y", "rcv|from|<192>x| y");
        check("   ", "rcv|from||   ");
        check("", "rcv|from||");
        // Header-less JSON and brackets.
        check("{json}", "rcv|from||{json}");
        check("  [x] y", "rcv|from||  [x] y");
        check("Apr  9 16:03:37 {a} x", "Apr  9 16:03:37|from|{a}| x");
        // Year first: `left` one too many, so a tag at the end takes the NUL.
        check(
            "2018 Apr 09 16:03:37 fgt date=1",
            "Apr  9 16:03:37|fgt|date=1\\0|",
        );
        check("2018 Apr 09 16:03:37 host", "Apr  9 16:03:37|from|host\\0|");
        check(
            "2018 Apr 09 16:03:37 host tag: m",
            "Apr  9 16:03:37|host|tag:| m",
        );
        check("2019 Apr 09 16:03:37 ", "Apr  9 16:03:37|from|\\0|");
        check(
            "2019 Apr 09 16:03:37  h t: x",
            "Apr  9 16:03:37|from|| h t: x",
        );
        check("2018 Apr 09 16:03:37", "rcv|2018|Apr| 09 16:03:37");
        // Length limits.
        let t600 = "t".repeat(600);
        check(
            &format!("{t600}: m"),
            &format!("rcv|from|{}|{}: m", &t600[..510], &t600[..90]),
        );
        let h515 = "h".repeat(515);
        check(
            &format!("Apr  9 16:03:37 {h515} t: m"),
            &format!("Apr  9 16:03:37|from|{}|hhhhh t: m", &h515[..510]),
        );
        let h511 = "h".repeat(511);
        check(
            &format!("Apr  9 16:03:37 {h511} t: m"),
            &format!("Apr  9 16:03:37|{h511}|t:| m"),
        );
    }
}
