//! How a received syslog message becomes a spool line, without I/O.
//!
//! `render = vendor` writes what the vendor collector's rsyslog 8.2302 writes with
//! `RSYSLOG_TraditionalFileFormat` after its RFC 5424 and RFC 3164 parsers:
//! `%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\n`, no PRI,
//! control characters escaped (`#012`), empty messages dropped. Where rsyslog fills in the
//! receive time and the sender's name, lc uses the receive time (UTC) and the sender's address
//! (no DNS): [`Origin`]. `render = raw` keeps the message as received (escaped, one line).

use std::net::IpAddr;

use super::escape::push_line;

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

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

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

/// FIXME(issue 10): rsyslog's RFC 5424 / RFC 3164 parsing and the traditional template.
fn push_vendor(out: &mut Vec<u8>, msg: &[u8], origin: &Origin) -> bool {
    if msg.is_empty() {
        return false;
    }
    out.extend_from_slice(origin.stamp());
    out.push(b' ');
    out.extend_from_slice(origin.host().as_bytes());
    out.push(b' ');
    push_line(out, msg);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps() {
        assert_eq!(&rfc3164_stamp(0), b"Jan  1 00:00:00");
        // 2026-12-02 06:09:18 UTC
        assert_eq!(&rfc3164_stamp(1_796_191_758), b"Dec  2 06:09:18");
        assert_eq!(&rfc3164_stamp(1_798_761_599), b"Dec 31 23:59:59");
    }
}
