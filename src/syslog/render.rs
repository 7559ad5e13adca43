//! How a received syslog message becomes a spool line, without I/O.
//!
//! `render = vendor` writes what the vendor collector's rsyslog 8.2302 writes with
//! `RSYSLOG_TraditionalFileFormat` after its RFC 5424 and RFC 3164 parsers:
//! `%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\n`, no PRI,
//! control characters escaped (`#012`), empty messages dropped. Where rsyslog fills in the
//! receive time and the sender's name, lc uses the receive time (UTC) and the sender's address
//! (no DNS): [`Origin`]. `render = raw` keeps the message as received (escaped, one line).

use std::cell::RefCell;
use std::net::IpAddr;

use super::escape::push_line;
use super::header::{Header, Tag};
use super::stamp::MONTHS;
use super::{rfc3164, rfc5424};

/// The `render =` of a syslog source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    Vendor,
    Raw,
}

impl Render {
    pub fn parse(s: &str) -> Result<Render, &'static str> {
        match s {
            "vendor" => Ok(Render::Vendor),
            "raw" => Ok(Render::Raw),
            _ => Err("vendor, raw"),
        }
    }
}

/// What rsyslog takes from the connection rather than the message: when it arrived and who
/// sent it. Both are rendered once and reused, since a connection or a read batch shares them.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The sender's address as `%HOSTNAME%` shows it (rsyslog's `fromhost` without DNS).
    host: String,
    ip: Option<IpAddr>,
    /// Receive time, Unix seconds, and `Mmm dd hh:mm:ss` of it (RFC 3164 section 4.1.2, UTC).
    secs: u64,
    stamp: [u8; 15],
}

impl Origin {
    pub fn new() -> Origin {
        let mut o = Origin {
            host: String::new(),
            ip: None,
            secs: u64::MAX,
            stamp: [b' '; 15],
        };
        o.set_time(0);
        o
    }

    /// The sender; re-rendered only when it changes (a UDP socket's senders vary).
    pub fn set_peer(&mut self, ip: IpAddr) {
        if self.ip != Some(ip) {
            self.ip = Some(ip);
            self.host = crate::allow::canonical(ip).to_string();
        }
    }

    /// The receive time in Unix seconds; re-rendered only when the second changes.
    pub fn set_time(&mut self, secs: u64) {
        if secs != self.secs {
            self.secs = secs;
            self.stamp = rfc3164_stamp(secs);
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn stamp(&self) -> &[u8; 15] {
        &self.stamp
    }
}

impl Default for Origin {
    fn default() -> Self {
        Origin::new()
    }
}

/// `Mmm dd hh:mm:ss` in UTC, the day padded with a space as rsyslog's `date-rfc3164` does.
fn rfc3164_stamp(secs: u64) -> [u8; 15] {
    let (_, month, day, h, m, s) = crate::clock::civil(secs);
    let mut out = [b' '; 15];
    out[..3].copy_from_slice(MONTHS[month as usize - 1]);
    if day >= 10 {
        out[4] = b'0' + (day / 10) as u8;
    }
    out[5] = b'0' + (day % 10) as u8;
    for (i, v) in [(7, h), (10, m), (13, s)] {
        out[i] = b'0' + (v / 10) as u8;
        out[i + 1] = b'0' + (v % 10) as u8;
    }
    out[9] = b':';
    out[12] = b':';
    out
}

/// Appends the spool line for `msg` to `out`, LF included. Returns false, and appends
/// nothing, when the message is dropped (nothing to store).
pub fn push(out: &mut Vec<u8>, render: Render, msg: &[u8], origin: &Origin) -> bool {
    match render {
        Render::Raw => {
            push_line(out, msg);
            true
        }
        Render::Vendor => push_vendor(out, msg, origin),
    }
}

/// rsyslog's `maxMessageSize` in the vendor's configuration (64k): escaping never makes a
/// message longer than this (`runtime/parser.c`, `SanitizeMsg`).
const MAX_LINE: usize = 64 * 1024;

thread_local! {
    /// The escaped copy of a message with control characters, reused so that such messages
    /// cost no allocation either.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// rsyslog 8.2302 with its default parser chain and `RSYSLOG_TraditionalFileFormat`: the
/// message is sanitized first (trailing NUL and LF dropped, control characters escaped), then
/// the PRI is read, then the RFC 5424 parser or else the RFC 3164 parser finds the header in
/// the escaped text, and the line is `TIMESTAMP SP HOSTNAME SP TAG [SP] MSG LF`.
fn push_vendor(out: &mut Vec<u8>, msg: &[u8], origin: &Origin) -> bool {
    // rsyslog discards only a message of length zero; one that sanitizing empties is written.
    if msg.is_empty() {
        return false;
    }
    let msg = msg.strip_suffix(b"\0").unwrap_or(msg);
    let msg = msg.strip_suffix(b"\n").unwrap_or(msg);
    // Branch-free scan, as in `escape.rs`: most messages need no escaping and are parsed in
    // place. DEL (0x7f) is not a control character to rsyslog.
    if !msg.iter().fold(false, |acc, &b| acc | (b < 0x20)) {
        push_parsed(out, msg, origin);
    } else {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            escape(&mut s, msg);
            push_parsed(out, &s, origin);
        });
    }
    true
}

/// `$EscapeControlCharactersOnReceive on`: bytes below 0x20, tab included, become `#` and three
/// octal digits. rsyslog stops once the escaped text reaches `MAX_LINE - 3` bytes.
fn escape(dst: &mut Vec<u8>, msg: &[u8]) {
    let max = (msg.len() * 4).min(MAX_LINE);
    dst.reserve(msg.len() + 16);
    for &b in msg {
        if dst.len() >= max - 3 {
            break;
        }
        if b < 0x20 {
            dst.extend_from_slice(&[b'#', b'0' + (b >> 6), b'0' + ((b >> 3) & 7), b'0' + (b & 7)]);
        } else {
            dst.push(b);
        }
    }
}

/// Where the text after the PRI starts, or `None` for an invalid PRI (rsyslog's facility
/// `LOG_INVLD`: the whole message is MSG). No `<` at all is the default PRI and no PRI text.
/// As rsyslog's `ParsePRI`: `<>` is PRI 0, leading zeros are fine, above 191 is invalid, and
/// a message that ends inside the PRI is invalid.
fn after_pri(m: &[u8]) -> Option<usize> {
    if m.first() != Some(&b'<') {
        return Some(0);
    }
    let (mut pri, mut pos, mut left) = (0u32, 0usize, m.len());
    loop {
        left -= 1;
        if left == 0 {
            break;
        }
        pos += 1;
        if !m[pos].is_ascii_digit() || pri > 191 {
            break;
        }
        pri = pri * 10 + u32::from(m[pos] - b'0');
    }
    (m[pos] == b'>' && pri <= 191).then_some(pos + 1)
}

/// Parses the sanitized message `m` and appends its line.
fn push_parsed(out: &mut Vec<u8>, m: &[u8], origin: &Origin) {
    let h = match after_pri(m) {
        None => Header::bare(0),
        Some(start) => rfc5424::parse(m, start).unwrap_or_else(|| rfc3164::parse(m, start)),
    };
    let body = &m[h.msg.min(m.len())..];
    out.reserve(m.len() + origin.host.len() + 24);
    match h.stamp {
        Some(s) => out.extend_from_slice(&s.render()),
        None => out.extend_from_slice(origin.stamp()),
    }
    out.push(b' ');
    match h.host {
        Some(r) => out.extend_from_slice(&m[r]),
        None => out.extend_from_slice(origin.host().as_bytes()),
    }
    out.push(b' ');
    match h.tag {
        Tag::Empty => {}
        Tag::Bytes(r) => {
            out.extend_from_slice(&m[r.start..r.end.min(m.len())]);
            if r.end > m.len() {
                out.push(0);
            }
        }
        Tag::App { app, procid } => {
            let start = out.len();
            let app = if app.is_empty() { &b"-"[..] } else { &m[app] };
            out.extend_from_slice(app);
            if &m[procid.clone()] != b"-" {
                out.push(b'[');
                out.extend_from_slice(&m[procid]);
                out.push(b']');
            }
            // rsyslog builds this tag in a 512-byte buffer; longer ones are beyond its
            // defined behaviour, cut here.
            out.truncate(start + (out.len() - start).min(TAG_5424_MAX));
        }
    }
    // The traditional file format's string generator (`tools/smtradfile.c`) puts a space
    // before MSG unless MSG starts with one; an empty MSG gets the space too.
    if body.first() != Some(&b' ') {
        out.push(b' ');
    }
    out.extend_from_slice(body);
    out.push(b'\n');
}

/// `CONF_TAG_MAXSIZE - 1`.
const TAG_5424_MAX: usize = 511;

#[cfg(test)]
mod tests {
    use super::*;

    /// One message through `render = vendor` from 127.0.0.1 at Dec  2 06:09:18 (shown as
    /// `R`); `None` = dropped. Expected lines are what rsyslog 8.2302 wrote for the same bytes.
    #[track_caller]
    fn check(input: &[u8], expected: Option<&str>) {
        let mut o = Origin::new();
        o.set_peer("127.0.0.1".parse().unwrap());
        o.set_time(1_796_191_758);
        let mut out = b"x".to_vec();
        let kept = push(&mut out, Render::Vendor, input, &o);
        let got = kept.then(|| {
            String::from_utf8_lossy(&out[1..])
                .replace("Dec  2 06:09:18 ", "R ")
                .replace('\0', "\\0")
        });
        assert_eq!(
            got.as_deref(),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(kept, out.len() > 1, "nothing appended when dropped");
    }

    #[test]
    fn vendor_table() {
        check(
            b"<13>Apr  9 16:03:37 host tag: msg",
            Some("Apr  9 16:03:37 host tag: msg\n"),
        );
        check(
            b"<13>Apr 09 16:03:37 host tag[12]: msg",
            Some("Apr  9 16:03:37 host tag[12]: msg\n"),
        );
        check(b"", None);
        // Sanitizing: one trailing NUL, then one trailing LF, dropped; a message emptied so
        // is still written. Control characters are escaped before parsing; DEL is not.
        check(b"\n", Some("R 127.0.0.1  \n"));
        check(b"\0", Some("R 127.0.0.1  \n"));
        check(b"abc\n\0", Some("R abc  \n"));
        check(b"abc\n\n", Some("R 127.0.0.1 abc#012 \n"));
        check(b"abc\x7fdef", Some("R 127.0.0.1 abc\x7fdef \n"));
        check(b"<13>host\ttab: m", Some("R 127.0.0.1 host#011tab: m\n"));
        check(
            b"<13>\t Apr  9 16:03:37 h t: m",
            Some("R 127.0.0.1 #011 Apr  9 16:03:37 h t: m\n"),
        );
        check(b"<13>x\0y", Some("R 127.0.0.1 x#000y \n"));
        // PRI.
        check(b"<13>", Some("R 127.0.0.1  \n"));
        check(b"<>hello", Some("R hello  \n"));
        check(b"<192>x y", Some("R 127.0.0.1  <192>x y\n"));
        check(b"<1911>x", Some("R 127.0.0.1  <1911>x\n"));
        check(b"<13", Some("R 127.0.0.1  <13\n"));
        check(b"<", Some("R 127.0.0.1  <\n"));
        check(b"<191>x", Some("R x  \n"));
        check(b"<00000000000000000001>x", Some("R x  \n"));
        check(
            b"<0013>Apr 9 1:2:3 h t: m",
            Some("Apr  9 01:02:03 h t: m\n"),
        );
        // Whitespace only.
        check(b"<13>   ", Some("R 127.0.0.1    \n"));
        check(b"   ", Some("R 127.0.0.1    \n"));
        // RFC 5424, with and without a PRI.
        check(
            b"<13>1 2019-01-01T10:00:00.123+02:00 h app 123 mid [a b=\"c\"] msg",
            Some("Jan  1 10:00:00 h app[123] msg\n"),
        );
        check(
            b"<13>1 2019-01-01T10:00:00Z - - - - -",
            Some("Jan  1 10:00:00 - - \n"),
        );
        check(
            b"<13>1 - - - - - - \xef\xbb\xbfbom",
            Some("R - - \u{feff}bom\n"),
        );
        check(
            b"<13>1 bad h a p m - msg",
            Some("R 127.0.0.1  bad h a p m - msg\n"),
        );
        check(
            b"1 2019-01-01T10:00:00Z cp CheckPoint 123 - [x] msg",
            Some("Jan  1 10:00:00 cp CheckPoint[123] msg\n"),
        );
        check(b"<13>1", Some("R 1  \n"));
        // RFC 3164 oddities, including the NUL rsyslog writes after a year-first date.
        check(
            b"<13>2018 Apr 09 16:03:37",
            Some("R 2018 Apr 09 16:03:37\n"),
        );
        check(
            b"<13>2018 Apr 09 16:03:37 host",
            Some("Apr  9 16:03:37 127.0.0.1 host\\0 \n"),
        );
        check(
            b"2018 Apr 09 16:03:37 fgt date=1",
            Some("Apr  9 16:03:37 fgt date=1\\0 \n"),
        );
        check(
            b"<13>Apr  9 ::  host t: m",
            Some("Apr  9 00:00:00 127.0.0.1  host t: m\n"),
        );
        check(
            b"<13>Apr 31 25:03:37 host t: m",
            Some("R Apr 31 25:03:37 host t: m\n"),
        );
        check(b"<13>{json}", Some("R 127.0.0.1  {json}\n"));
    }

    #[test]
    fn escaping_stops_below_max_line() {
        let mut out = Vec::new();
        escape(&mut out, &[1u8; 20_000]);
        assert_eq!(out.len(), MAX_LINE - 4 + 4);
        let mut out = Vec::new();
        escape(&mut out, b"a\x01");
        assert_eq!(out, b"a#001");
    }

    #[test]
    fn stamps() {
        assert_eq!(&rfc3164_stamp(0), b"Jan  1 00:00:00");
        // 2026-12-02 06:09:18 UTC
        assert_eq!(&rfc3164_stamp(1_796_191_758), b"Dec  2 06:09:18");
        assert_eq!(&rfc3164_stamp(1_798_761_599), b"Dec 31 23:59:59");
    }
}
