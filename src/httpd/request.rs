//! An HTTP/1.1 request head, read from bytes, with tight bounds: pure, no I/O.
//!
//! The metrics server answers two paths to a scraper on the loopback, so it takes only what it
//! needs and refuses everything else early: the head (request line and header fields, up to the
//! empty line) must fit `MAX_REQUEST_BYTES` and hold at most `MAX_HEADERS` fields; only `GET`
//! and `HEAD` of an origin-form target, HTTP/1.0 or 1.1. A body is never read (every answer
//! closes the connection). `parse` returns `Ok(None)` while the head is incomplete.

/// The whole request head, request line included (a scraper sends about 250 bytes).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// Header fields in one request.
pub const MAX_HEADERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
}

/// A request the server answers: its method and path (the query cut off).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub path: String,
}

/// Why a request is refused: the status to answer and a few words for the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: not HTTP as RFC 9112 writes it.
    Bad(&'static str),
    /// 405: a method other than GET or HEAD.
    Method,
    /// 431: the head is over `MAX_REQUEST_BYTES` or `MAX_HEADERS`.
    TooLarge,
    /// 505: not HTTP/1.0 or 1.1.
    Version,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::Bad(_) => 400,
            Refusal::Method => 405,
            Refusal::TooLarge => 431,
            Refusal::Version => 505,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Bad(why) => why,
            Refusal::Method => "only GET and HEAD",
            Refusal::TooLarge => "request head too large",
            Refusal::Version => "HTTP/1.0 or HTTP/1.1 only",
        }
    }
}

/// Reads the request head at the start of `buf`: `Ok(None)` until the empty line that ends
/// it has arrived (and it is within bounds so far).
///
/// Lines are judged in order as each one completes, and the first fault found is the verdict,
/// so the answer does not depend on how the bytes arrived: a head read in one piece and the
/// same head in a hundred reads get the same refusal (found by the `http_request` fuzz
/// target: a flood of fields was counted before an earlier bad field name was seen).
pub fn parse(buf: &[u8]) -> Result<Option<Request>, Refusal> {
    // Only lines that end within the bound count; past it nothing can complete a head.
    let window = &buf[..buf.len().min(MAX_REQUEST_BYTES)];
    let mut lines = window
        .split_inclusive(|&b| b == b'\n')
        .filter(|l| l.ends_with(b"\n"));
    let mut line = lines.next();
    // RFC 9112 section 2.2: an empty line before the request line is ignored.
    if line.is_some_and(|l| trim(l).is_empty()) {
        line = lines.next();
    }
    let Some(first) = line else {
        return undecided(buf);
    };
    let (request, v11) = parse_request_line(text(first)?)?;
    let mut fields = 0;
    let mut host = false;
    for line in lines {
        let line = text(line)?;
        if line.is_empty() {
            // RFC 9112 section 3.2: an HTTP/1.1 request without Host is answered with 400.
            if v11 && !host {
                return Err(Refusal::Bad("no Host header"));
            }
            return Ok(Some(request));
        }
        fields += 1;
        if fields > MAX_HEADERS {
            return Err(Refusal::TooLarge);
        }
        if line.starts_with([' ', '\t']) {
            // RFC 9112 section 5.2: obsolete line folding may be refused with 400.
            return Err(Refusal::Bad("folded header line"));
        }
        let Some((name, _value)) = line.split_once(':') else {
            return Err(Refusal::Bad("header line without a colon"));
        };
        // RFC 9112 section 5.1: no whitespace between the field name and the colon.
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(Refusal::Bad("invalid header name"));
        }
        host |= name.eq_ignore_ascii_case("host");
    }
    undecided(buf)
}

/// Every complete line so far is fine: wait for more, unless the bound is reached.
fn undecided(buf: &[u8]) -> Result<Option<Request>, Refusal> {
    if buf.len() >= MAX_REQUEST_BYTES {
        Err(Refusal::TooLarge)
    } else {
        Ok(None)
    }
}

/// A line without its LF (and CR before it); a bare LF ends a line too (RFC 9112 section 2.2).
fn trim(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn text(line: &[u8]) -> Result<&str, Refusal> {
    std::str::from_utf8(trim(line)).map_err(|_| Refusal::Bad("not UTF-8"))
}

/// `METHOD SP TARGET SP HTTP/1.x`; the request and whether it is HTTP/1.1.
fn parse_request_line(line: &str) -> Result<(Request, bool), Refusal> {
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Bad("malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(Refusal::Bad("malformed request line"));
    }
    let v11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v if v.starts_with("HTTP/") => return Err(Refusal::Version),
        _ => return Err(Refusal::Bad("malformed request line")),
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => return Err(Refusal::Method),
    };
    if !target.starts_with('/') || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Refusal::Bad("the target must be a path"));
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    Ok((Request { method, path }, v11))
}

/// RFC 9110 section 5.6.2's `tchar`: what a method or a field name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` parsed, as one line: `GET /path`, `incomplete`, or `STATUS reason`.
    #[track_caller]
    fn check(input: &[u8], expected: &str) {
        let got = match parse(input) {
            Ok(Some(r)) => format!("{:?} {}", r.method, r.path).to_uppercase(),
            Ok(None) => "incomplete".to_string(),
            Err(e) => format!("{} {}", e.status(), e.reason()),
        };
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn requests() {
        check(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET /METRICS");
        check(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n", "HEAD /HEALTH");
        // What Prometheus 2 sends.
        check(
            b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9514\r\nUser-Agent: Prometheus/2.42.0\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
            "GET /METRICS",
        );
        check(
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET /METRICS",
        );
        check(b"GET / HTTP/1.0\r\n\r\n", "GET /");
        check(b"GET /health HTTP/1.1\nHost: x\n\n", "GET /HEALTH");
        // Bytes after the head (a body, a pipelined request) are not read.
        check(
            b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\n",
            "GET /HEALTH",
        );
    }

    #[test]
    fn incomplete_is_not_an_error() {
        check(b"", "incomplete");
        check(b"GET /metrics HTTP/1.1\r\n", "incomplete");
        check(b"GET /metrics HTTP/1.1\r\nHost: x\r\n", "incomplete");
        check(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r", "incomplete");
        // An empty line first is no end of a head.
        check(b"\r\n", "incomplete");
    }

    #[test]
    fn refusals() {
        check(
            b"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "405 only GET and HEAD",
        );
        check(
            b"GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n",
            "505 HTTP/1.0 or HTTP/1.1 only",
        );
        check(b"GET /metrics HTTP/1.1\r\n\r\n", "400 no Host header");
        check(
            b"GET metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "400 the target must be a path",
        );
        check(
            b"GET http://x/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "400 the target must be a path",
        );
        check(
            b"GET  /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            "400 malformed request line",
        );
        check(
            b"GET /metrics\r\nHost: x\r\n\r\n",
            "400 malformed request line",
        );
        check(
            b"\x16\x03\x01\x02\x00\x01\r\n\r\n",
            "400 malformed request line",
        );
        check(b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n", "400 not UTF-8");
        check(
            b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
            "400 invalid header name",
        );
        check(
            b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            "400 folded header line",
        );
        check(
            b"GET / HTTP/1.1\r\nHost x\r\n\r\n",
            "400 header line without a colon",
        );
    }

    #[test]
    fn bounds() {
        let mut big = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        big.resize(MAX_REQUEST_BYTES, b'a');
        check(&big, "431 request head too large");
        big.truncate(MAX_REQUEST_BYTES - 1);
        check(&big, "incomplete");
        // A complete head over the limit, arrived in one read.
        big.resize(MAX_REQUEST_BYTES + 10, b'a');
        big.extend_from_slice(b"\r\n\r\n");
        check(&big, "431 request head too large");
        let fields = |n: usize, end: &str| {
            let mut r = "GET / HTTP/1.1\r\nHost: x\r\n".to_string();
            for i in 1..n {
                r.push_str(&format!("X-{i}: y\r\n"));
            }
            r + end
        };
        check(fields(MAX_HEADERS, "\r\n").as_bytes(), "GET /");
        check(
            fields(MAX_HEADERS + 1, "\r\n").as_bytes(),
            "431 request head too large",
        );
        // Too many fields is said before the head ends.
        check(
            fields(MAX_HEADERS + 2, "").as_bytes(),
            "431 request head too large",
        );
        check(fields(MAX_HEADERS, "").as_bytes(), "incomplete");
    }

    /// The first faulty line is the verdict, however the bytes arrive: a bad field name
    /// before a flood of fields is named as such, in one read or in many.
    #[test]
    fn the_first_fault_is_the_verdict() {
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n".to_vec();
        for i in 0..MAX_HEADERS + 5 {
            head.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        for end in [&b""[..], b"\r\n"] {
            let whole = [&head[..], end].concat();
            check(&whole, "400 invalid header name");
            for cut in 1..whole.len() {
                let got = parse(&whole[..cut]);
                assert!(
                    matches!(got, Ok(None) | Err(Refusal::Bad("invalid header name"))),
                    "{cut}: {got:?}"
                );
            }
        }
    }

    #[test]
    fn an_empty_line_before_the_request_is_ignored() {
        check(b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET /");
        check(b"\r\n\r\n", "400 malformed request line");
    }
}
