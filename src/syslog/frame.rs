//! RFC 6587 framing for syslog over TCP and TLS: bytes in, messages out, no I/O.
//!
//! Both framings are detected per message, as rsyslog does, under one of three modes
//! ([`FramingMode`]). A frame that starts with a nonzero digit, then digits, then a space may be
//! octet-counted (RFC 6587 section 3.4.1, `MSG-LEN SP SYSLOG-MSG`); anything else is
//! non-transparent (section 3.4.2), ended by LF, NUL or CRLF. Devices send header-less lines
//! that start with digits (`2018 Apr 09 ...`, `1 2019-...`), and the vendor's collector turned
//! octet counting off in 2021 for that reason, so the default (`auto`) takes a count only when
//! the frame cannot be such a line: the count, one space, then a `<PRI>`.
//! Frames longer than the configured maximum are cut there: the first `max` bytes are a message
//! flagged `truncated`, the rest of that frame is discarded. The caller owns the buffer; `decode`
//! says how much of it one step consumed, and `None` means "need more bytes".

use memchr::{memchr, memchr2};

/// The most digits a length may have; 10 digits would already exceed any sane max.
const MAX_LEN_DIGITS: usize = 9;

/// How a stream is cut into messages (`framing =` of a source).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingMode {
    /// Octet counting only where unambiguous: `N SP <PRI>`; every other frame ends at LF.
    Auto,
    /// LF (or NUL, CRLF) terminated only, as the vendor's collector since 2021.
    Lf,
    /// Any `N SP` at the start of a frame is a count (senders that always count); frames that
    /// do not start with digits still end at LF.
    OctetCounted,
}

impl FramingMode {
    pub fn parse(s: &str) -> Result<FramingMode, &'static str> {
        match s {
            "auto" => Ok(FramingMode::Auto),
            "lf" => Ok(FramingMode::Lf),
            "octet-counted" => Ok(FramingMode::OctetCounted),
            _ => Err("auto, lf, octet-counted"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    /// At the start of a frame.
    #[default]
    Start,
    /// Discarding the rest of an over-long octet-counted frame: this many bytes remain.
    SkipCount(usize),
    /// Discarding the rest of an over-long non-transparent frame, up to its terminator.
    SkipToTerminator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    Message {
        msg: &'a [u8],
        truncated: bool,
    },
    /// Bytes of an over-long frame were thrown away; nothing to store.
    Discarded,
}

/// What ends a non-transparent frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ends {
    /// LF only; a CR before it and NULs are message content. rsyslog's imtcp does this, so
    /// `render = vendor` sources frame as the vendor's collector does.
    Lf,
    /// LF, NUL or CRLF (RFC 6587 section 3.4.2 names LF; NUL and CRLF are common practice).
    Any,
}

impl Ends {
    fn find(self, buf: &[u8]) -> Option<usize> {
        match self {
            Ends::Lf => memchr(b'\n', buf),
            Ends::Any => memchr2(b'\n', 0, buf),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    max: usize,
    mode: FramingMode,
    ends: Ends,
    /// Bytes at the front of the caller's buffer already searched for a terminator in vain:
    /// the next search starts there, so a long frame arriving in many reads is scanned once,
    /// not once per read.
    scanned: usize,
}

impl Decoder {
    pub fn new(max: usize, mode: FramingMode, ends: Ends) -> Decoder {
        Decoder {
            state: State::Start,
            max,
            mode,
            ends,
            scanned: 0,
        }
    }

    /// Decodes one step from the front of `buf`: `Some((what, consumed))`, or `None` when `buf`
    /// holds no complete frame yet (the caller keeps it and appends more).
    pub fn decode<'a>(&mut self, buf: &'a [u8]) -> Option<(Decoded<'a>, usize)> {
        if buf.is_empty() {
            return None;
        }
        match self.state {
            State::SkipCount(left) => {
                let n = left.min(buf.len());
                self.state = if n == left {
                    State::Start
                } else {
                    State::SkipCount(left - n)
                };
                Some((Decoded::Discarded, n))
            }
            State::SkipToTerminator => match self.ends.find(buf) {
                Some(i) => {
                    self.state = State::Start;
                    Some((Decoded::Discarded, i + 1))
                }
                None => Some((Decoded::Discarded, buf.len())),
            },
            State::Start => match octet_count(buf, self.mode) {
                Count::Length { len, header } => self.counted(buf, len, header),
                Count::NeedMore => None,
                Count::NotCounted => self.terminated(buf),
            },
        }
    }

    /// Ends the frame at the front of `buf` (the caller's whole incomplete frame, the bytes
    /// `decode` left) as if it had reached the maximum: returns its bytes so far, to be kept as
    /// a truncated message, and discards the rest of that frame as it arrives. `None` when
    /// `buf` holds no message bytes yet (only the start of a count) or a frame is already
    /// being discarded.
    pub fn cut<'a>(&mut self, buf: &'a [u8]) -> Option<&'a [u8]> {
        if self.state != State::Start || buf.is_empty() {
            return None;
        }
        match octet_count(buf, self.mode) {
            Count::Length { len, header } => {
                let body = &buf[header..];
                if body.len() >= len {
                    // A complete frame: `decode` would have taken it.
                    return None;
                }
                self.scanned = 0;
                self.state = State::SkipCount(len - body.len());
                Some(body)
            }
            Count::NeedMore => None,
            Count::NotCounted => {
                self.scanned = 0;
                self.state = State::SkipToTerminator;
                Some(buf)
            }
        }
    }

    fn counted<'a>(
        &mut self,
        buf: &'a [u8],
        len: usize,
        header: usize,
    ) -> Option<(Decoded<'a>, usize)> {
        let body = &buf[header..];
        if len <= self.max {
            if body.len() < len {
                return None;
            }
            let msg = match self.ends {
                Ends::Any => trim_trailing_newline(&body[..len]),
                // The vendor rendering drops a trailing LF itself, as rsyslog does.
                Ends::Lf => &body[..len],
            };
            return Some((
                Decoded::Message {
                    msg,
                    truncated: false,
                },
                header + len,
            ));
        }
        if body.len() < self.max {
            return None;
        }
        self.state = State::SkipCount(len - self.max);
        Some((
            Decoded::Message {
                msg: &body[..self.max],
                truncated: true,
            },
            header + self.max,
        ))
    }

    fn terminated<'a>(&mut self, buf: &'a [u8]) -> Option<(Decoded<'a>, usize)> {
        // Look one byte past the maximum for the LF and one more for a CR before it.
        let window = &buf[..buf.len().min(self.max + 2)];
        let from = self.scanned.min(window.len());
        if let Some(i) = self.ends.find(&window[from..]).map(|i| from + i) {
            self.scanned = 0;
            let msg = match self.ends {
                // CRLF framing: the CR belongs to the terminator, not to the message.
                Ends::Any => buf[..i].strip_suffix(b"\r").unwrap_or(&buf[..i]),
                Ends::Lf => &buf[..i],
            };
            if msg.len() <= self.max {
                return Some((
                    Decoded::Message {
                        msg,
                        truncated: false,
                    },
                    i + 1,
                ));
            }
        } else if buf.len() <= self.max
            || (self.ends == Ends::Any && buf.len() == self.max + 1 && buf[self.max] == b'\r')
        {
            self.scanned = window.len();
            return None;
        }
        self.scanned = 0;
        self.state = State::SkipToTerminator;
        Some((
            Decoded::Message {
                msg: &buf[..self.max],
                truncated: true,
            },
            self.max,
        ))
    }

    /// The connection ended with `rest` undecoded: what the sender sent is kept as a last
    /// message (a final line without its LF, or a frame whose octet count promised more).
    pub fn finish<'a>(&mut self, rest: &'a [u8]) -> Option<&'a [u8]> {
        let state = std::mem::take(&mut self.state);
        self.scanned = 0;
        if state != State::Start || rest.is_empty() {
            return None;
        }
        let msg = match octet_count(rest, self.mode) {
            Count::Length { header, .. } => &rest[header..],
            _ => rest,
        };
        let msg = match self.ends {
            Ends::Any => msg.strip_suffix(b"\r").unwrap_or(msg),
            Ends::Lf => msg,
        };
        (!msg.is_empty()).then_some(&msg[..msg.len().min(self.max)])
    }
}

enum Count {
    Length { len: usize, header: usize },
    NeedMore,
    NotCounted,
}

/// Reads `MSG-LEN SP` at the front of `buf` as `mode` allows. RFC 6587 says `NONZERO-DIGIT
/// *DIGIT`; under `auto` a `<PRI>` (RFC 5424 section 6.2.1: 1 to 3 digits in angle brackets)
/// must follow the space.
fn octet_count(buf: &[u8], mode: FramingMode) -> Count {
    if mode == FramingMode::Lf || !matches!(buf[0], b'1'..=b'9') {
        return Count::NotCounted;
    }
    let mut len = 0usize;
    for (i, &b) in buf.iter().enumerate().take(MAX_LEN_DIGITS + 1) {
        match b {
            b'0'..=b'9' if i < MAX_LEN_DIGITS => len = len * 10 + usize::from(b - b'0'),
            b' ' => {
                let header = i + 1;
                if mode == FramingMode::Auto {
                    match starts_with_pri(&buf[header..]) {
                        Some(true) => {}
                        Some(false) => return Count::NotCounted,
                        None => return Count::NeedMore,
                    }
                }
                return Count::Length { len, header };
            }
            _ => return Count::NotCounted,
        }
    }
    if buf.len() <= MAX_LEN_DIGITS {
        Count::NeedMore
    } else {
        Count::NotCounted
    }
}

/// Whether `buf` starts with `<` 1-3 digits `>`; `None` when it is too short to tell.
fn starts_with_pri(buf: &[u8]) -> Option<bool> {
    match buf.first() {
        None => return None,
        Some(b'<') => {}
        Some(_) => return Some(false),
    }
    for (i, &b) in buf.iter().enumerate().skip(1).take(4) {
        match b {
            b'0'..=b'9' if i <= 3 => {}
            b'>' => return Some(i > 1),
            _ => return Some(false),
        }
    }
    if buf.len() < 5 {
        None
    } else {
        Some(false)
    }
}

/// Senders such as rsyslog's omfwd may end octet-counted frames with an LF as well; it is
/// framing, not content (rsyslog drops it too: `$DropTrailingLFOnReception`).
pub fn trim_trailing_newline(msg: &[u8]) -> &[u8] {
    let msg = msg.strip_suffix(b"\n").unwrap_or(msg);
    msg.strip_suffix(b"\r").unwrap_or(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in chunks of `chunk` bytes (0 = all at once), closes the stream, and
    /// renders every step: `m"..."` a message, `t"..."` a truncated one, `d` discarded bytes,
    /// `eof"..."` what `finish` kept.
    #[track_caller]
    fn check_chunked(
        (mode, ends): (FramingMode, Ends),
        max: usize,
        input: &[u8],
        chunk: usize,
        expected: &str,
    ) {
        let mut d = Decoder::new(max, mode, ends);
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        let chunk = if chunk == 0 {
            input.len().max(1)
        } else {
            chunk
        };
        for piece in input.chunks(chunk) {
            pending.extend_from_slice(piece);
            while let Some((what, used)) = d.decode(&pending) {
                match what {
                    Decoded::Message {
                        msg,
                        truncated: false,
                    } => out.push(format!("m{:?}", String::from_utf8_lossy(msg))),
                    Decoded::Message {
                        msg,
                        truncated: true,
                    } => out.push(format!("t{:?}", String::from_utf8_lossy(msg))),
                    Decoded::Discarded => {
                        if out.last().map(String::as_str) != Some("d") {
                            out.push("d".to_string())
                        }
                    }
                }
                pending.drain(..used);
            }
        }
        if let Some(rest) = d.finish(&pending) {
            out.push(format!("eof{:?}", String::from_utf8_lossy(rest)));
        }
        assert_eq!(
            out.join(" "),
            expected,
            "{mode:?}, {ends:?}, chunk size {chunk}"
        );
    }

    /// Every case must decode the same whether it arrives at once or byte by byte.
    #[track_caller]
    fn check_mode(mode: FramingMode, max: usize, input: &[u8], expected: &str) {
        for chunk in [0, 1, 7] {
            check_chunked((mode, Ends::Any), max, input, chunk, expected);
        }
    }

    /// Cases where `auto` and `octet-counted` agree.
    #[track_caller]
    fn check(max: usize, input: &[u8], expected: &str) {
        check_mode(FramingMode::Auto, max, input, expected);
        check_mode(FramingMode::OctetCounted, max, input, expected);
    }

    /// Decodes `before`, cuts what is pending (`c"..."` the message `cut` returns, `c-` none),
    /// then decodes `after`, written as in `check_chunked`.
    #[track_caller]
    fn check_cut(mode: FramingMode, before: &[u8], after: &[u8], expected: &str) {
        fn run(d: &mut Decoder, pending: &mut Vec<u8>, input: &[u8], out: &mut Vec<String>) {
            pending.extend_from_slice(input);
            while let Some((what, used)) = d.decode(pending) {
                match what {
                    Decoded::Message { msg, truncated } => out.push(format!(
                        "{}{:?}",
                        if truncated { "t" } else { "m" },
                        String::from_utf8_lossy(msg)
                    )),
                    Decoded::Discarded => out.push("d".to_string()),
                }
                pending.drain(..used);
            }
        }
        let mut d = Decoder::new(100, mode, Ends::Any);
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        run(&mut d, &mut pending, before, &mut out);
        match d.cut(&pending) {
            Some(msg) => {
                out.push(format!("c{:?}", String::from_utf8_lossy(msg)));
                pending.clear();
            }
            None => out.push("c-".to_string()),
        }
        run(&mut d, &mut pending, after, &mut out);
        assert_eq!(out.join(" "), expected, "{mode:?}");
    }

    #[test]
    fn cut_ends_the_pending_frame() {
        use FramingMode::*;
        // A line without its LF yet: kept as it is, the rest of the line is discarded.
        check_cut(
            Auto,
            b"<13>ab",
            b"cd\n<13>next\n",
            r#"c"<13>ab" d m"<13>next""#,
        );
        check_cut(Lf, b"<13>a\n<13>b", b"c\n", r#"m"<13>a" c"<13>b" d"#);
        // An octet-counted frame: its body so far; the rest of its count is discarded, even
        // where it holds an LF.
        check_cut(
            Auto,
            b"12 <13>ab",
            b"c\nefgh<13>x\n",
            r#"c"<13>ab" d m"<13>x""#,
        );
        check_cut(OctetCounted, b"5 ab", b"cde\n", r#"c"ab" d m"""#);
        // Nothing pending, or only the start of a count: nothing to cut, decoding goes on.
        check_cut(Auto, b"<13>a\n", b"<13>b\n", r#"m"<13>a" c- m"<13>b""#);
        check_cut(Auto, b"12", b" <13>abcdefgh", r#"c- m"<13>abcdefgh""#);
        check_cut(Auto, b"abc", b"", r#"c"abc""#);
    }

    #[test]
    fn table() {
        check(100, b"<13>hello\n", r#"m"<13>hello""#);
        check(100, b"<13>a\n<13>b\n", r#"m"<13>a" m"<13>b""#);
        check(100, b"<13>crlf\r\n", r#"m"<13>crlf""#);
        check(100, b"<13>nul\0<13>x\0", r#"m"<13>nul" m"<13>x""#);
        check(100, b"9 <13>hello", r#"m"<13>hello""#);
        check(
            100,
            b"9 <13>hello10 <13>world!",
            r#"m"<13>hello" m"<13>world!""#,
        );
        check(100, b"10 <13>hello\n", r#"m"<13>hello""#);
        check(100, b"5 <13>hello\n", r#"m"<13>h" m"ello""#);
        check(100, b"10 <13>a\nb\0c\n", r#"m"<13>a\nb\0c""#);
        check(100, b"0 x\n", r#"m"0 x""#);
        check(100, b"12x\n", r#"m"12x""#);
        check(100, b"1234567890 x\n", r#"m"1234567890 x""#);
        check(100, b"\n\n", r#"m"" m"""#);
        check(5, b"abcdefgh\nok\n", r#"t"abcde" d m"ok""#);
        check(5, b"abcde\nok\n", r#"m"abcde" m"ok""#);
        check(5, b"abcde\r\nok\n", r#"m"abcde" m"ok""#);
        check(5, b"abcdef\r\nok\n", r#"t"abcde" d m"ok""#);
        check(5, b"8 <1>defghok\n", r#"t"<1>de" d m"ok""#);
        check(5, b"99999 <1>abcdef", r#"t"<1>ab" d"#);
    }

    /// Header-less device lines that start with digits stay whole under `auto` and `lf`; only
    /// `octet-counted` takes their first word as a length.
    #[test]
    fn digits_at_the_start_of_a_line() {
        use FramingMode::*;
        let forti = b"2018 Apr 09 16:03:37 date=2018-04-09 devname=FG\n";
        let expect = r#"m"2018 Apr 09 16:03:37 date=2018-04-09 devname=FG""#;
        check_mode(Auto, 100, forti, expect);
        check_mode(Lf, 100, forti, expect);
        let cp = b"1 2019-01-01T00:00:00Z fw CheckPoint 1 - - x\n";
        let expect = r#"m"1 2019-01-01T00:00:00Z fw CheckPoint 1 - - x""#;
        check_mode(Auto, 100, cp, expect);
        check_mode(Lf, 100, cp, expect);
        check_mode(
            OctetCounted,
            100,
            cp,
            r#"m"2" m"019-01-01T00:00:00Z fw CheckPoint 1 - - x""#,
        );
        // `N SP <` that is not a PRI: a line, under auto.
        check_mode(Auto, 100, b"3 <a> x\n", r#"m"3 <a> x""#);
        check_mode(Auto, 100, b"3 <1234> x\n", r#"m"3 <1234> x""#);
        check_mode(Auto, 100, b"3 <> x\n", r#"m"3 <> x""#);
        // Counted frames back to back, as rsyslog's and syslog-ng's forwarders send them.
        check_mode(
            Auto,
            100,
            b"9 <13>hello<13>lf\n7 <13>abc",
            r#"m"<13>hello" m"<13>lf" m"<13>abc""#,
        );
        check_mode(Lf, 100, b"9 <13>hello\n", r#"m"9 <13>hello""#);
        check_mode(OctetCounted, 100, b"3 abc5 <1>x\n", r#"m"abc" m"<1>x""#);
    }

    /// `render = vendor` frames as rsyslog's imtcp: LF alone ends a frame; a CR before it and
    /// NULs are content (the rendering escapes them, `#015`, `#000`).
    #[track_caller]
    fn check_lf(max: usize, input: &[u8], expected: &str) {
        for chunk in [0, 1, 7] {
            check_chunked((FramingMode::Auto, Ends::Lf), max, input, chunk, expected);
        }
    }

    #[test]
    fn lf_only_framing() {
        check_lf(100, b"<13>a\r\n<13>b\n", r#"m"<13>a\r" m"<13>b""#);
        check_lf(100, b"<13>nul\0<13>x\n", r#"m"<13>nul\0<13>x""#);
        check_lf(100, b"10 <13>hello\n", r#"m"<13>hello\n""#);
        check_lf(100, b"<13>cr at the end\r", r#"eof"<13>cr at the end\r""#);
        check_lf(5, b"abcde\r\nok\n", r#"t"abcde" d m"ok""#);
        check_lf(5, b"abc\0\0\0\nok\n", r#"t"abc\0\0" d m"ok""#);
    }

    /// A long frame read in many pieces is searched for its end once, not once per piece.
    #[test]
    fn a_long_frame_is_scanned_once() {
        let mut d = Decoder::new(1 << 20, FramingMode::Auto, Ends::Any);
        let mut pending = Vec::new();
        for _ in 0..1000 {
            pending.extend_from_slice(&[b'x'; 1000]);
            assert_eq!(d.decode(&pending), None);
            assert_eq!(d.scanned, pending.len());
        }
        pending.push(b'\n');
        let (what, used) = d.decode(&pending).unwrap();
        assert_eq!(used, 1_000_001);
        assert!(
            matches!(what, Decoded::Message { msg, truncated: false } if msg.len() == 1_000_000)
        );
        assert_eq!(d.scanned, 0);
    }

    #[test]
    fn close_mid_frame_keeps_what_the_sender_sent() {
        check(
            100,
            b"<13>a\n<13>no newline",
            r#"m"<13>a" eof"<13>no newline""#,
        );
        check(100, b"50 <13>promised more", r#"eof"<13>promised more""#);
        check_mode(FramingMode::Auto, 100, b"50 <1", r#"eof"50 <1""#);
        check(100, b"<13>a\r", r#"eof"<13>a""#);
        check(100, b"12", r#"eof"12""#);
    }
}
