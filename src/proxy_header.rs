//! The PROXY protocol header (HAProxy's "PROXY protocol" specification, versions 1 and 2) that
//! an L4 load balancer puts in front of a connection's bytes to say who the client was. Bytes
//! in, a verdict out; no I/O. The receivers decide whom to believe (`trusted_proxies`) and what
//! a missing or bad header costs; this module only reads one.
//!
//! Version 1 is one text line, `PROXY TCP4|TCP6|UNKNOWN SRC DST SPORT DPORT\r\n`, at most 107
//! bytes (spec section 2.1). Version 2 is binary: a 12-byte signature, a version/command byte,
//! a family/protocol byte, a 16-bit length, then the addresses and optional TLVs (section 2.2).
//! A `LOCAL` command (v2) or `UNKNOWN` family (v1) is the balancer speaking for itself, a
//! health check: the connection's own address stands.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Version 2's signature (section 2.2).
const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// Version 1's longest line, CRLF included (section 2.1).
const V1_MAX: usize = 107;
/// The most bytes of addresses and TLVs lc reads in a version 2 header. The spec allows 65535;
/// HAProxy's TLVs (SSL details, unique IDs) stay far below this.
const V2_MAX_BODY: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The client the balancer accepted, and the address it connected to.
    Proxied {
        client: SocketAddr,
        dest: SocketAddr,
    },
    /// The balancer's own connection (v2 LOCAL, v1 UNKNOWN): keep the socket's peer.
    Local,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// A whole header: what it says and how many bytes it took.
    Done(Header, usize),
    /// Too few bytes yet to tell.
    NeedMore,
    /// Not a PROXY header, or a broken one.
    Invalid(&'static str),
}

/// A header arriving in pieces: each read's bytes go in, and once it is whole, the header and
/// the bytes that followed it in the same reads (the stream's first bytes, which belong to the
/// protocol behind it) come out. Holds at most one read beyond the longest header, since
/// `parse` decides within `V1_MAX` or `16 + V2_MAX_BODY` bytes.
#[derive(Debug, Default)]
pub struct Pending {
    buf: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    NeedMore,
    Done { header: Header, rest: Vec<u8> },
    Invalid(&'static str),
}

impl Pending {
    /// Adds the bytes of one read.
    pub fn push(&mut self, bytes: &[u8]) -> Progress {
        self.buf.extend_from_slice(bytes);
        match parse(&self.buf) {
            Parsed::NeedMore => Progress::NeedMore,
            Parsed::Invalid(why) => Progress::Invalid(why),
            Parsed::Done(header, used) => Progress::Done {
                header,
                rest: self.buf.split_off(used),
            },
        }
    }
}

/// Reads the header at the front of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    let sig = &SIGNATURE[..buf.len().min(SIGNATURE.len())];
    if buf.starts_with(sig) && !buf.is_empty() {
        if buf.len() < SIGNATURE.len() {
            // Also a prefix of "PROXY "? No: the first bytes differ ('\r' vs 'P').
            return Parsed::NeedMore;
        }
        return v2(buf);
    }
    let v1_start = &b"PROXY "[..buf.len().min(6)];
    if buf.starts_with(v1_start) {
        return v1(buf);
    }
    Parsed::Invalid("no PROXY protocol header")
}

fn v1(buf: &[u8]) -> Parsed {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Parsed::Invalid("PROXY v1 line longer than 107 bytes")
        } else {
            Parsed::NeedMore
        };
    };
    let Ok(line) = std::str::from_utf8(&buf[6..end]) else {
        return Parsed::Invalid("PROXY v1 line is not ASCII");
    };
    let used = end + 2;
    let mut words = line.split(' ');
    let family = words.next().unwrap_or("");
    if family == "UNKNOWN" {
        // Section 2.1: the rest of the line is to be ignored.
        return Parsed::Done(Header::Local, used);
    }
    let fields: Vec<&str> = words.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Parsed::Invalid("PROXY v1 line needs 4 fields after the family");
    };
    let ip = |s: &str| -> Option<IpAddr> {
        match family {
            "TCP4" => s.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
            "TCP6" => s.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            _ => None,
        }
    };
    // Ports are decimal without leading zeros (section 2.1); be lenient on zeros only.
    let port = |s: &str| -> Option<u16> {
        (!s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    if !matches!(family, "TCP4" | "TCP6") {
        return Parsed::Invalid("PROXY v1 family is not TCP4, TCP6 or UNKNOWN");
    }
    match (ip(src), ip(dst), port(sport), port(dport)) {
        (Some(s), Some(d), Some(sp), Some(dp)) => Parsed::Done(
            Header::Proxied {
                client: SocketAddr::new(s, sp),
                dest: SocketAddr::new(d, dp),
            },
            used,
        ),
        _ => Parsed::Invalid("PROXY v1 address or port does not parse"),
    }
}

fn v2(buf: &[u8]) -> Parsed {
    if buf.len() < 16 {
        return Parsed::NeedMore;
    }
    let (ver_cmd, fam) = (buf[12], buf[13]);
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 {
        return Parsed::Invalid("PROXY v2 header with another version");
    }
    if len > V2_MAX_BODY {
        return Parsed::Invalid("PROXY v2 header longer than 1024 bytes");
    }
    if buf.len() < 16 + len {
        return Parsed::NeedMore;
    }
    let used = 16 + len;
    let body = &buf[16..used];
    match ver_cmd & 0x0f {
        // LOCAL: the balancer's own connection; addresses, if any, are to be ignored.
        0 => return Parsed::Done(Header::Local, used),
        1 => {}
        _ => return Parsed::Invalid("PROXY v2 command is neither LOCAL nor PROXY"),
    }
    // The high nibble is the family, the low one the transport (1 = stream).
    match fam {
        0x11 if body.len() >= 12 => {
            let ip = |at: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[at],
                    body[at + 1],
                    body[at + 2],
                    body[at + 3],
                ))
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Parsed::Done(
                Header::Proxied {
                    client: SocketAddr::new(ip(0), port(8)),
                    dest: SocketAddr::new(ip(4), port(10)),
                },
                used,
            )
        }
        0x21 if body.len() >= 36 => {
            let ip = |at: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&body[at..at + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            };
            let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
            Parsed::Done(
                Header::Proxied {
                    client: SocketAddr::new(ip(0), port(32)),
                    dest: SocketAddr::new(ip(16), port(34)),
                },
                used,
            )
        }
        0x11 | 0x21 => Parsed::Invalid("PROXY v2 address block too short"),
        // UNSPEC (section 2.2: "the receiver ... must use the real connection endpoints").
        0x00 => Parsed::Done(Header::Local, used),
        _ => Parsed::Invalid("PROXY v2 family is not TCP over IPv4 or IPv6"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders the verdict on `input`, also fed one byte at a time, which must agree.
    #[track_caller]
    fn check(input: &[u8], expected: &str) {
        let render = |p: Parsed| match p {
            Parsed::Done(Header::Proxied { client, dest }, n) => {
                format!("{client} -> {dest} ({n})")
            }
            Parsed::Done(Header::Local, n) => format!("local ({n})"),
            Parsed::NeedMore => "more".to_string(),
            Parsed::Invalid(why) => format!("invalid: {why}"),
        };
        assert_eq!(render(parse(input)), expected);
        // Every strict prefix of a header that parses asks for more bytes.
        if let Parsed::Done(_, n) = parse(input) {
            for k in 1..n {
                assert_eq!(parse(&input[..k]), Parsed::NeedMore, "prefix of {k} bytes");
            }
        }
    }

    /// Feeds `reads` one after the other to a `Pending`: what each push answered.
    #[track_caller]
    fn check_pending(reads: &[&[u8]], expected: &str) {
        let mut p = Pending::default();
        let got: Vec<String> = reads
            .iter()
            .map(|r| match p.push(r) {
                Progress::NeedMore => "more".to_string(),
                Progress::Invalid(why) => format!("invalid: {why}"),
                Progress::Done { header, rest } => {
                    let h = match header {
                        Header::Proxied { client, .. } => client.to_string(),
                        Header::Local => "local".to_string(),
                    };
                    format!("{h} + {:?}", String::from_utf8_lossy(&rest))
                }
            })
            .collect();
        assert_eq!(got.join(" | "), expected, "reads {reads:?}");
    }

    #[test]
    fn pending_keeps_what_follows_the_header() {
        check_pending(
            &[b"PROXY TCP4 192.0.2.1 10.0.0.1 4000 21\r\nUSER a\r\n"],
            "192.0.2.1:4000 + \"USER a\\r\\n\"",
        );
        check_pending(
            &[
                b"PROXY TCP4 192.0.2.1 ",
                b"10.0.0.1 4000 21\r",
                b"\nfile bytes",
            ],
            "more | more | 192.0.2.1:4000 + \"file bytes\"",
        );
        check_pending(&[b"PROXY UNKNOWN\r\n"], "local + \"\"");
        check_pending(&[b"PRO", b"XY"], "more | more");
        check_pending(&[b"220 hello\r\n"], "invalid: no PROXY protocol header");
        let mut v2 = v2_bytes(1, 0x11, &[192, 0, 2, 7, 10, 0, 0, 1, 0x0f, 0xa0, 0, 21]);
        v2.extend_from_slice(b"STOR");
        let (a, b) = v2.split_at(10);
        check_pending(&[a, b], "more | 192.0.2.7:4000 + \"STOR\"");
    }

    fn v2_bytes(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.push(0x20 | cmd);
        v.push(fam);
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn version_1() {
        check(
            b"PROXY TCP4 192.0.2.10 198.51.100.1 51234 514\r\n<13>x",
            "192.0.2.10:51234 -> 198.51.100.1:514 (46)",
        );
        check(
            b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 6514\r\n",
            "[2001:db8::1]:4000 -> [2001:db8::2]:6514 (46)",
        );
        check(b"PROXY UNKNOWN\r\n", "local (15)");
        check(b"PROXY UNKNOWN ffff:f::1 ffff:f::2 1 2\r\n", "local (39)");
        check(b"PROXY TCP4 1.2.3.4", "more");
        check(b"PROX", "more");
        check(b"", "more");
        check(b"<13>hello\n", "invalid: no PROXY protocol header");
        check(
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            "invalid: PROXY v1 line needs 4 fields after the family",
        );
        check(
            b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 1\r\n",
            "invalid: PROXY v1 address or port does not parse",
        );
        check(
            b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
            "invalid: PROXY v1 address or port does not parse",
        );
        check(
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            "invalid: PROXY v1 family is not TCP4, TCP6 or UNKNOWN",
        );
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(120));
        check(
            long.as_bytes(),
            "invalid: PROXY v1 line longer than 107 bytes",
        );
    }

    #[test]
    fn version_2() {
        let v4 = [192, 0, 2, 10, 198, 51, 100, 1, 0xc8, 0x22, 0x02, 0x02];
        check(
            &v2_bytes(1, 0x11, &v4),
            "192.0.2.10:51234 -> 198.51.100.1:514 (28)",
        );
        // TLVs after the addresses are skipped with them.
        let mut with_tlv = v4.to_vec();
        with_tlv.extend_from_slice(&[0x04, 0x00, 0x02, 0xab, 0xcd]);
        check(
            &v2_bytes(1, 0x11, &with_tlv),
            "192.0.2.10:51234 -> 198.51.100.1:514 (33)",
        );
        let mut v6 = vec![0u8; 36];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[15] = 1;
        v6[16] = 0x20;
        v6[17] = 0x01;
        v6[31] = 2;
        v6[32..34].copy_from_slice(&4000u16.to_be_bytes());
        v6[34..36].copy_from_slice(&6514u16.to_be_bytes());
        check(
            &v2_bytes(1, 0x21, &v6),
            "[2001::1]:4000 -> [2001::2]:6514 (52)",
        );
        check(&v2_bytes(0, 0x11, &v4), "local (28)");
        check(&v2_bytes(0, 0x00, &[]), "local (16)");
        check(&v2_bytes(1, 0x00, &[]), "local (16)");
        check(
            &v2_bytes(1, 0x11, &v4[..8]),
            "invalid: PROXY v2 address block too short",
        );
        check(
            &v2_bytes(1, 0x12, &v4),
            "invalid: PROXY v2 family is not TCP over IPv4 or IPv6",
        );
        check(
            &v2_bytes(2, 0x11, &v4),
            "invalid: PROXY v2 command is neither LOCAL nor PROXY",
        );
        let mut v1_in_v2 = v2_bytes(1, 0x11, &v4);
        v1_in_v2[12] = 0x11;
        check(&v1_in_v2, "invalid: PROXY v2 header with another version");
        check(
            &v2_bytes(1, 0x11, &[0; 2000]),
            "invalid: PROXY v2 header longer than 1024 bytes",
        );
        check(&SIGNATURE[..5], "more");
    }
}
