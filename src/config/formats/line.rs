//! One line as the recognizers see it: where the message may start behind whatever syslog
//! header is in front, and the CEF or LEEF envelope if there is one. Computed once per line,
//! without allocation, and shared by every recognizer (`recognize.rs`), so that asking all of
//! them about a line costs one header skip plus a few prefix and token tests each.
//!
//! A line comes in three shapes: a bare log line (an uploaded file), a raw syslog message
//! (`<PRI>` then an RFC 3164 or RFC 5424 header, or no header at all) and the line lc stores
//! with `render = vendor` (`Mmm dd hh:mm:ss HOST TAG MSG`, `syslog/render.rs`). Where the
//! message starts cannot always be known (rsyslog itself reads `date=...` or `%ASA-6-302013:`
//! as a tag), so the view keeps the few token boundaries where it may start and lets each
//! recognizer try them.

use memchr::memmem;

/// Token searches look at the first this many bytes: every recognized format puts its marks
/// near the start, and a 64 KiB line must not cost 64 KiB per recognizer.
pub const WINDOW: usize = 1024;

/// How many token boundaries after the header are message start candidates: host, tag and
/// two more (RFC 5424's PROCID and MSGID, or a second timestamp inside the message).
const STARTS: usize = 5;

/// A CEF or LEEF header's device vendor and product (ArcSight CEF rev. 25 section "Header";
/// IBM LEEF 1.0/2.0 "LEEF header").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope<'a> {
    None,
    Cef { vendor: &'a [u8], product: &'a [u8] },
    Leef { vendor: &'a [u8], product: &'a [u8] },
}

#[derive(Debug, Clone)]
pub struct Line<'a> {
    /// The line, cut to [`WINDOW`].
    pub text: &'a [u8],
    /// Where the message may start, most likely first; `starts[..n]` are valid.
    starts: [&'a [u8]; STARTS],
    n: usize,
    pub envelope: Envelope<'a>,
}

impl<'a> Line<'a> {
    pub fn new(line: &'a [u8]) -> Line<'a> {
        let text = &line[..line.len().min(WINDOW)];
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let mut l = Line {
            text,
            starts: [&[]; STARTS],
            n: 0,
            envelope: Envelope::None,
        };
        let rest = skip_pri(text);
        let head = skip_timestamp(rest);
        if head.len() != rest.len() || rest.len() != text.len() {
            // A header: the message may start right after it (header-less payloads such as
            // ASA's `%ASA-...` or a FortiGate's `date=...` after rsyslog's host) or after the
            // host, the tag, ... Each boundary is one more candidate.
            l.push(head);
            let mut t = head;
            for _ in 0..2 * STARTS {
                if l.n == STARTS {
                    break;
                }
                match next_token(t) {
                    Some(next) => {
                        // RFC 5424's NILVALUE fields (`- - -`) are never where a message starts.
                        if !(next.starts_with(b"- ") || next == b"-") {
                            l.push(next);
                        }
                        t = next;
                    }
                    None => break,
                }
            }
        } else {
            l.push(text);
        }
        l.envelope = l.find_envelope();
        l
    }

    fn push(&mut self, s: &'a [u8]) {
        if self.n < STARTS {
            self.starts[self.n] = s;
            self.n += 1;
        }
    }

    /// Where the message may start, most likely first.
    pub fn starts(&self) -> &[&'a [u8]] {
        &self.starts[..self.n]
    }

    /// Whether any candidate start satisfies `f`.
    pub fn any_start(&self, f: impl Fn(&'a [u8]) -> bool) -> bool {
        self.starts().iter().any(|s| f(s))
    }

    pub fn contains(&self, needle: &[u8]) -> bool {
        memmem::find(self.text, needle).is_some()
    }

    /// The text after the first `needle`, if any.
    pub fn after(&self, needle: &[u8]) -> Option<&'a [u8]> {
        memmem::find(self.text, needle).map(|i| &self.text[i + needle.len()..])
    }

    fn find_envelope(&self) -> Envelope<'a> {
        // rsyslog reads `CEF:` as a tag and writes `CEF: 0|...`, so a space may follow the colon.
        for s in self.starts() {
            if let Some(rest) = s.strip_prefix(b"CEF:") {
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                if let Some((vendor, product)) = vendor_product(rest) {
                    return Envelope::Cef { vendor, product };
                }
            }
            if let Some(rest) = s.strip_prefix(b"LEEF:") {
                let rest = rest.strip_prefix(b" ").unwrap_or(rest);
                if let Some((vendor, product)) = vendor_product(rest) {
                    return Envelope::Leef { vendor, product };
                }
            }
        }
        Envelope::None
    }

    pub fn is_enveloped(&self) -> bool {
        self.envelope != Envelope::None
    }
}

/// `VERSION|VENDOR|PRODUCT|`: the version is digits and dots (CEF `0`, `1`; LEEF `1.0`, `2.0`).
fn vendor_product(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut it = s.splitn(4, |&b| b == b'|');
    let version = it.next()?;
    let vendor = it.next()?;
    let product = it.next()?;
    it.next()?;
    let ok = !version.is_empty()
        && version.len() <= 4
        && version.iter().all(|b| b.is_ascii_digit() || *b == b'.');
    ok.then_some((vendor, product))
}

/// `<PRI>` (1 to 3 digits).
fn skip_pri(s: &[u8]) -> &[u8] {
    if s.first() != Some(&b'<') {
        return s;
    }
    let digits = s[1..]
        .iter()
        .take(4)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if (1..=3).contains(&digits) && s.get(1 + digits) == Some(&b'>') {
        &s[2 + digits..]
    } else {
        s
    }
}

/// The timestamps a syslog line starts with: RFC 5424's `1 2019-04-09T16:03:37Z`, RFC 3164's
/// `Apr  9 16:03:37`, Cisco's `Apr 09 2019 16:03:37` (both with optional `.mmm`, ` UTC` and
/// `:`), ISO `2019-04-09T16:03:37+02:00`. Anything else is returned as it is.
fn skip_timestamp(s: &[u8]) -> &[u8] {
    let s = s.strip_prefix(b" ").unwrap_or(s);
    // RFC 5424 section 6: VERSION SP TIMESTAMP, where the timestamp may be NILVALUE.
    if let Some(rest) = s.strip_prefix(b"1 ") {
        if rest.starts_with(b"- ") {
            return &rest[2..];
        }
        if is_iso_date(rest) {
            return skip_token(rest);
        }
    }
    if is_iso_date(s) && s.get(10) == Some(&b'T') {
        return skip_colon(skip_token(s));
    }
    let s2 = s.strip_prefix(b":").unwrap_or(s);
    if s2.len() >= 15 && is_month(&s2[..3]) && s2[3] == b' ' {
        // `Mmm dd ` or `Mmm  d `
        let day = &s2[4..6];
        if !(day[1].is_ascii_digit() && (day[0].is_ascii_digit() || day[0] == b' ')) {
            return s;
        }
        let mut t = &s2[7..];
        if t.len() > 5 && t[..4].iter().all(u8::is_ascii_digit) && t[4] == b' ' {
            t = &t[5..]; // Cisco's year
        }
        if !is_clock(t) {
            return s;
        }
        t = &t[8..];
        if t.first() == Some(&b'.') {
            let n = t[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            t = &t[1 + n..];
        }
        for zone in [&b" UTC"[..], b" GMT"] {
            if let Some(r) = t.strip_prefix(zone) {
                t = r;
            }
        }
        return skip_colon(t.strip_prefix(b" ").unwrap_or(t));
    }
    s
}

fn skip_colon(s: &[u8]) -> &[u8] {
    let s = s.strip_prefix(b":").unwrap_or(s);
    s.strip_prefix(b" ").unwrap_or(s)
}

/// The rest after the first token and the spaces behind it; `None` at the end.
fn next_token(s: &[u8]) -> Option<&[u8]> {
    let i = memchr::memchr(b' ', s)?;
    let rest = &s[i..];
    let n = rest.iter().take_while(|&&b| b == b' ').count();
    let rest = &rest[n..];
    (!rest.is_empty()).then_some(rest)
}

fn skip_token(s: &[u8]) -> &[u8] {
    next_token(s).unwrap_or(&[])
}

pub fn is_month(m: &[u8]) -> bool {
    const MONTHS: [&[u8]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    MONTHS.contains(&m)
}

/// `YYYY-MM-DD`
pub fn is_iso_date(s: &[u8]) -> bool {
    s.len() >= 10
        && digits(&s[..4])
        && s[4] == b'-'
        && digits(&s[5..7])
        && s[7] == b'-'
        && digits(&s[8..10])
}

/// `hh:mm:ss`
pub fn is_clock(s: &[u8]) -> bool {
    s.len() >= 8
        && digits(&s[..2])
        && s[2] == b':'
        && digits(&s[3..5])
        && s[5] == b':'
        && digits(&s[6..8])
}

pub fn digits(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(u8::is_ascii_digit)
}

/// The number of leading ASCII digits.
pub fn count_digits(s: &[u8]) -> usize {
    s.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// The first space-separated token and the rest after its spaces.
pub fn token(s: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b' ', s) {
        Some(i) => {
            let rest = &s[i..];
            let n = rest.iter().take_while(|&&b| b == b' ').count();
            (&s[..i], &rest[n..])
        }
        None => (s, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, starts: &[&str], envelope: &str) {
        let l = Line::new(line.as_bytes());
        let got: Vec<String> = l
            .starts()
            .iter()
            .map(|s| String::from_utf8_lossy(s).chars().take(12).collect())
            .collect();
        assert_eq!(got, starts, "{line}");
        let env = match l.envelope {
            Envelope::None => String::new(),
            Envelope::Cef { vendor, product } | Envelope::Leef { vendor, product } => format!(
                "{}/{}",
                String::from_utf8_lossy(vendor),
                String::from_utf8_lossy(product)
            ),
        };
        assert_eq!(env, envelope, "{line}");
    }

    #[test]
    fn starts_and_envelopes() {
        check("date=2019 time=1", &["date=2019 ti"], "");
        check("<189>date=2019 time=1", &["date=2019 ti", "time=1"], "");
        check(
            "Dec  2 06:30:14 10.1.2.3 %ASA-6-302013: Built a b c",
            &[
                "10.1.2.3 %AS",
                "%ASA-6-30201",
                "Built a b c",
                "a b c",
                "b c",
            ],
            "",
        );
        check(
            "<166>Apr 09 2019 16:03:37: %ASA-6-302013: Built",
            &["%ASA-6-30201", "Built"],
            "",
        );
        check(
            "<14>1 2019-04-09T16:03:37.123+00:00 PA - - - - 1,2019/04/09",
            &["PA - - - - 1", "1,2019/04/09"],
            "",
        );
        check(
            "<13>Apr  9 16:03:37 host CEF: 0|Trend Micro|Deep|10.0|1|x|6|a=b",
            &[
                "host CEF: 0|",
                "CEF: 0|Trend",
                "0|Trend Micr",
                "Micro|Deep|1",
            ],
            "Trend Micro/Deep",
        );
        check(
            "LEEF:1.0|IBM|QRadar|7.3|Accept|src=1",
            &["LEEF:1.0|IBM"],
            "IBM/QRadar",
        );
        check("CEF:x|a|b|c", &["CEF:x|a|b|c"], "");
        check("<1000>x", &["<1000>x"], "");
        check("", &[""], "");
    }
}
