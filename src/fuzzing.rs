//! Fuzz targets: one function per target, bytes in, a panic for every broken invariant.
//!
//! The harnesses in `fuzz/` (cargo fuzz, libFuzzer) call these, and the unit tests below feed
//! them every file of the seed corpus (`fuzz/corpus/TARGET/`), so `cargo test` compiles and
//! exercises the same code that `scripts/fuzz.sh` runs for hours. A target does no I/O of its
//! own except `status`, which writes the input where `lc status` reads snapshots from.
//! The first bytes of an input choose settings (framing mode, maximum, chunking, ...); the
//! rest is the data, so a seed is a settings prefix followed by a real message or file.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use crate::config::TlsMode;
use crate::ftp::command::{self, LineReader};
use crate::ftp::session::{Action, Reply, Session, Settings};
use crate::syslog::frame::{Decoded, Decoder, Ends, FramingMode};
use crate::syslog::render::{self, Origin, Render};

/// A target: bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// The targets, by the names of their corpus folders and of `fuzz/fuzz_targets/*.rs`.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("render", render),
    ("ftp_command", ftp_command),
    ("ftp_session", ftp_session),
    ("config", config),
    ("passwd", passwd),
    ("status", status),
    ("api", api),
    ("segment_name", segment_name),
    ("proxy_header", proxy_header),
    ("http_request", http_request),
];

/// Settings bytes taken from the front of an input; missing bytes read as 0.
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |n, _| (n << 8) | u64::from(self.byte()))
    }
}

/// xorshift64: chunk sizes from a seed byte, so that a crash replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What a decoder made of a stream: messages (with their truncation flag) and the final
/// message `finish` kept. Discarded steps are left out: how many there are depends on how the
/// bytes arrived, what they discard does not.
#[derive(Debug, PartialEq, Eq)]
struct Decoding {
    messages: Vec<(Vec<u8>, bool)>,
    last: Option<Vec<u8>>,
}

/// Feeds `stream` to a new decoder in chunks of `sizes()` bytes, as a connection's reads
/// would arrive, checking every step's invariants.
fn decode_chunked(
    max: usize,
    mode: FramingMode,
    ends: Ends,
    stream: &[u8],
    mut sizes: impl FnMut() -> usize,
) -> Decoding {
    let mut d = Decoder::new(max, mode, ends);
    let mut pending = Vec::new();
    let mut out = Decoding {
        messages: Vec::new(),
        last: None,
    };
    let mut rest = stream;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(sizes().clamp(1, rest.len()));
        rest = tail;
        pending.extend_from_slice(piece);
        while let Some((what, used)) = d.decode(&pending) {
            assert!(used > 0, "a step that consumes nothing loops forever");
            assert!(
                used <= pending.len(),
                "consumed {used} of {}",
                pending.len()
            );
            if let Decoded::Message { msg, truncated } = what {
                assert!(msg.len() <= max, "message of {} > max {max}", msg.len());
                assert!(!truncated || msg.len() == max, "truncated below max");
                out.messages.push((msg.to_vec(), truncated));
            }
            pending.drain(..used);
        }
    }
    out.last = d.finish(&pending).map(|m| {
        assert!(
            !m.is_empty() && m.len() <= max,
            "finish kept {} bytes",
            m.len()
        );
        m.to_vec()
    });
    out
}

/// `syslog::frame::Decoder` in every mode with both `Ends`: never panics, consumes at most its
/// input and always something, messages never exceed the maximum, and the messages do not
/// depend on how the stream was cut into reads.
pub fn frame(data: &[u8]) {
    let mut input = Input { data };
    let b = input.byte();
    let mode = [
        FramingMode::Auto,
        FramingMode::Lf,
        FramingMode::OctetCounted,
    ][usize::from(b % 3)];
    let ends = if b & 0x80 == 0 { Ends::Any } else { Ends::Lf };
    let m = input.byte();
    // Small maxima reach truncation often; the high bit scales up to about 8 KiB.
    let max = if m & 0x80 == 0 {
        usize::from(m) + 1
    } else {
        usize::from(m & 0x7f) * 64 + 1
    };
    let seed = input.byte();
    let stream = input.data;
    let whole = decode_chunked(max, mode, ends, stream, || stream.len());
    let bytewise = decode_chunked(max, mode, ends, stream, || 1);
    assert_eq!(whole, bytewise, "byte by byte differs from all at once");
    let mut rng = Rng(u64::from(seed) | 0x100);
    let spread = usize::from(seed % 32) + 2;
    let random = decode_chunked(max, mode, ends, stream, || {
        (rng.next() % spread as u64) as usize + 1
    });
    assert_eq!(whole, random, "random chunks differ from all at once");
}

/// `syslog::render::push`, vendor and raw: never panics, and a stored message is exactly one
/// line: it ends with LF, and holds no other LF nor any byte below 0x20 (but rsyslog's NUL).
pub fn render(data: &[u8]) {
    let mut input = Input { data };
    let b = input.byte();
    let how = if b & 1 == 0 {
        Render::Vendor
    } else {
        Render::Raw
    };
    let mut origin = Origin::new();
    let ip = if b & 2 == 0 {
        IpAddr::V4(Ipv4Addr::from(input.u64() as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(
            (u128::from(input.u64()) << 64) | u128::from(input.u64()),
        ))
    };
    origin.set_peer(ip);
    // Receive times up to the year 10000 or so: the wall clock, not an attacker, sets them.
    origin.set_time(input.u64() % 253_402_300_800);
    let msg = input.data;
    let mut out = b"previous line\n".to_vec();
    let before = out.len();
    let stored = render::push(&mut out, how, msg, &origin);
    let line = &out[before..];
    if !stored {
        assert!(line.is_empty(), "a dropped message appended {line:?}");
        return;
    }
    let Some((&last, body)) = line.split_last() else {
        panic!("a stored message appended nothing");
    };
    assert_eq!(last, b'\n', "line does not end with LF: {line:?}");
    // One exception, on purpose: rsyslog 8.2302 writes a NUL after the tag of a year-first
    // RFC 3164 date (`rfc3164.rs`), and the vendor rendering matches it byte for byte.
    if let Some(c) = body.iter().find(|&&c| c < 0x20 && c != 0) {
        panic!(
            "control byte {c:#04x} in the line {:?}",
            String::from_utf8_lossy(line)
        );
    }
}

/// The FTP control stream: `LineReader` over random reads, `command::parse` of every line.
pub fn ftp_command(data: &[u8]) {
    let mut input = Input { data };
    let mut rng = Rng(u64::from(input.byte()) | 0x100);
    let mut reader = LineReader::default();
    let mut rest = input.data;
    while !rest.is_empty() {
        let n = (rng.next() % 700) as usize + 1;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        reader.push(piece);
        loop {
            match reader.next_line() {
                Ok(Some(line)) => {
                    assert!(
                        line.len() + 2 <= command::MAX_LINE,
                        "line of {}",
                        line.len()
                    );
                    assert!(!line.contains(&b'\n'));
                    let _ = command::parse(&line);
                }
                Ok(None) => break,
                Err(refusal) => assert_eq!(refusal.code, 500),
            }
        }
    }
    let _ = reader.take_rest();
}

/// A reply as sent must be one reply: LF only at the ends of its lines, so a name a client
/// sent cannot start a second reply. (A bare CR that the client sent inside an argument is
/// echoed back as it came, `504 TYPE I\rX ...`: only to that client, so not checked here.)
fn check_reply(r: &Reply) {
    let text = r.render();
    assert!((100..600).contains(&r.code), "reply code {}", r.code);
    let body = text.strip_suffix("\r\n").expect("a reply ends with CRLF");
    for line in body.split("\r\n") {
        assert!(!line.contains('\n'), "an LF inside the reply {text:?}");
    }
}

/// One FTP control session: random command sequences, with the server's outcomes mixed in
/// (`!ok`/`!bad` login results, `!pasv`/`!epsv` passive listeners, `!done` transfers,
/// `!rnfail` refused renames). Never panics; every reply is well-formed.
pub fn ftp_session(data: &[u8]) {
    let mut input = Input { data };
    let b = input.byte();
    let settings = Settings {
        tls: [TlsMode::Off, TlsMode::Optional, TlsMode::Required][usize::from(b % 3)],
        tls_ready: b & 4 != 0,
        active_mode: b & 8 != 0,
        folders: vec!["asa".into(), crate::ftp::path::SSL_UPDATE.into()],
    };
    let peer = if b & 16 == 0 {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))
    };
    let passive = SocketAddr::new(peer, 20001);
    let mut s = Session::new(settings, peer);
    check_reply(&s.greeting());
    for line in input.data.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let actions = match line {
            b"!ok" => vec![Action::Reply(s.login_result(true))],
            b"!bad" => vec![Action::Reply(s.login_result(false))],
            b"!pasv" => vec![Action::Reply(s.passive_ready(passive, false))],
            b"!epsv" => vec![Action::Reply(s.passive_ready(passive, true))],
            b"!done" => {
                s.transfer_finished();
                continue;
            }
            b"!rnfail" => {
                s.rename_refused();
                continue;
            }
            _ if line.len() + 2 > command::MAX_LINE => continue,
            _ => match command::parse(line) {
                Ok(c) => s.on_command(c),
                Err(r) => vec![Action::Reply(Reply::new(r.code, r.text))],
            },
        };
        for a in &actions {
            if let Action::Reply(r) | Action::StartTls(r) | Action::Close(r) = a {
                check_reply(r);
            }
        }
        let _ = (s.user(), s.prot_private(), s.data_peer(), s.active_target());
        let _ = s.pending_user();
    }
}

/// `config::parse_str`: INI tokenizing and validation never panic, and every problem renders.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/etc/lc/lc.ini");
    match crate::config::parse_str(&text, path) {
        Ok(c) => {
            let _ = format!("{c:?}");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = crate::config::cut_values(&text, path);
}

/// The FTP passwd file: parsing never panics, and a parsed file renders to text that parses
/// to the same users.
pub fn passwd(data: &[u8]) {
    use crate::ftp::passwd::Passwd;
    let text = String::from_utf8_lossy(data);
    let path = Path::new("/etc/lc/ftp.passwd");
    match Passwd::parse_str(&text, path) {
        Ok(p) => {
            let again = Passwd::parse_str(&p.render(), path)
                .unwrap_or_else(|e| panic!("rendered file does not parse: {e}"));
            assert_eq!(p.users(), again.users());
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// Where `status` writes its inputs: a folder of this process's own, made once.
fn status_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("lc-fuzz-status-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temp folder");
        dir
    })
}

/// What `lc status` does with a snapshot in run_dir: `status::read_all`, then the table of
/// `status::render` (and `-v`), and `--check`. Never panics, whatever JSON (or not JSON) the file holds.
pub fn status(data: &[u8]) {
    let dir = status_dir();
    std::fs::write(dir.join("fuzz.json"), data).expect("write the snapshot");
    let snapshots = crate::status::read_all(dir).expect("read run_dir");
    for verbose in [false, true] {
        let opts = crate::status::Options {
            verbose,
            config_error: None,
        };
        let _ = crate::status::render(&snapshots, 1_790_000_000, &opts);
    }
    let _ = crate::status::check(&snapshots, 1_790_000_000);
}

/// The delivery API's answers: upload_url and streams bodies, and error statuses with their
/// Retry-After and body. Never panics.
pub fn api(data: &[u8]) {
    use crate::deliver::api;
    let mut input = Input { data };
    let status = u16::from_be_bytes([input.byte(), input.byte()]);
    let what = ["upload_url", "PUT", "done_upload", "streams"][usize::from(input.byte() % 4)];
    let text = String::from_utf8_lossy(input.data);
    if let Ok(t) = api::parse_upload_target(&text) {
        assert!(t.url.starts_with("https://") || t.url.starts_with("http://"));
    }
    let _ = api::parse_streams(&text);
    // The body's first line as the Retry-After header, the rest as the error body.
    let (retry_after, body) = text.split_once('\n').unwrap_or((&text, ""));
    if let Some(after) = api::parse_retry_after(retry_after) {
        assert!(after.as_secs() <= 3600);
    }
    let failure = api::classify_status(what, status, Some(retry_after), body);
    // The body is cut at 200 characters (not bytes) in a reason.
    let chars = failure.reason().chars().count();
    assert!(chars < 300, "reason of {chars} characters");
}

/// Spool segment names (`SEQ-STAMP[-pN].log[.gz]` and kin): `segment::Name::parse`, the one
/// parser, and the path helpers over it. Any name: no panic, and what parses prints as a name
/// that parses the same. Names the spool makes (`raw_name`, `part_path`, `sidecar_path`)
/// parse back to what made them.
pub fn segment_name(data: &[u8]) {
    use crate::segment::{self, Kind, Name};
    let mut input = Input { data };
    let seq = input.u64();
    let part = u32::from_be_bytes([input.byte(), input.byte(), input.byte(), input.byte()]);
    let kind =
        [Kind::Raw, Kind::Gz, Kind::Zip, Kind::Tmp, Kind::Sidecar][usize::from(input.byte() % 5)];
    let text = String::from_utf8_lossy(input.data);
    if let Some(n) = Name::parse(&text) {
        assert!(!n.stamp.is_empty() && !n.stamp.contains('/'), "{n:?}");
        let printed = n.file_name();
        assert_eq!(
            Name::parse(&printed).as_ref(),
            Some(&n),
            "{text:?} printed {printed:?}"
        );
        assert_eq!(segment::parse_seq(&text), Some(n.seq));
        assert_eq!(segment::parse_part(&text), n.part);
    }
    let path = Path::new(&*text);
    let _ = (
        segment::part_path(path, part),
        segment::gz_path(path),
        segment::tmp_path(path),
        segment::sidecar_path(path),
    );
    // Stamps come from the clock (`20261126T234500Z`): letters and digits.
    let stamp: String = text
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(20)
        .collect();
    let stamp = if stamp.is_empty() {
        "20261126T234500Z".to_string()
    } else {
        stamp
    };
    let raw = Path::new("/s").join(segment::raw_name(seq, &stamp));
    let name = |p: &Path| Name::parse(&p.file_name().unwrap().to_string_lossy());
    let made = Name {
        seq,
        stamp: stamp.clone(),
        part: 0,
        kind: Kind::Raw,
    };
    assert_eq!(name(&raw).as_ref(), Some(&made), "{raw:?}");
    let sealed = segment::part_path(&raw, part);
    assert_eq!(name(&sealed), Some(made.with(Kind::Gz, part)), "{sealed:?}");
    assert_eq!(
        segment::sidecar_path(&sealed),
        segment::sidecar_path(&raw),
        "{sealed:?}"
    );
    let other = made.with(
        kind,
        if matches!(kind, Kind::Gz | Kind::Tmp) {
            part
        } else {
            0
        },
    );
    assert_eq!(
        Name::parse(&other.file_name()),
        Some(other.clone()),
        "{other:?}"
    );
}

/// `proxy_header::Pending` fed the input in random reads (seed: the first byte), against
/// `proxy_header::parse` of the whole input: the verdict does not depend on how the bytes
/// arrived, a header takes at most the longest one allowed, and the bytes after it are
/// handed back, never dropped.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy_header::{parse, Header, Parsed, Pending, Progress};
    let mut input = Input { data };
    let mut rng = Rng(u64::from(input.byte()) | 1 << 32);
    let data = input.data;
    let whole = parse(data);
    let mut pending = Pending::default();
    let mut fed = 0;
    let progress = loop {
        let n = ((rng.next() % 40) as usize + 1).min(data.len() - fed);
        let p = pending.push(&data[fed..fed + n]);
        fed += n;
        if p != Progress::NeedMore || fed == data.len() {
            break p;
        }
    };
    match (whole, progress) {
        (Parsed::Done(header, used), Progress::Done { header: h, rest }) => {
            assert_eq!(header, h);
            assert!(used <= 16 + 1024, "{used}");
            assert_eq!(&data[used..fed], &rest[..], "the bytes after the header");
            if let Header::Proxied { client, dest } = header {
                assert_eq!(client.is_ipv4(), dest.is_ipv4(), "{header:?}");
                if data.starts_with(b"PROXY ") {
                    // A v1 line prints back to a line that reads the same.
                    let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
                    let line = format!(
                        "PROXY {family} {} {} {} {}\r\n",
                        client.ip(),
                        dest.ip(),
                        client.port(),
                        dest.port()
                    );
                    assert!(line.len() <= 107, "{line:?}");
                    assert_eq!(
                        parse(line.as_bytes()),
                        Parsed::Done(header, line.len()),
                        "{line:?}"
                    );
                }
            }
        }
        (Parsed::Invalid(_), Progress::Invalid(_)) => {}
        (Parsed::NeedMore, Progress::NeedMore) => {
            assert!(
                data.len() < 16 + 1024,
                "undecided after {} bytes",
                data.len()
            );
        }
        (w, p) => panic!("whole input: {w:?}, in reads: {p:?}"),
    }
}

/// `httpd::request::parse` on every prefix the input's random reads would show the server:
/// undecided only within the size bound, and once decided, the verdict stands however many
/// more bytes come; an accepted path is a path, and the answer's head is well formed.
pub fn http_request(data: &[u8]) {
    use crate::httpd::answer::{self, Answer, Page};
    use crate::httpd::request::{parse, Method, MAX_REQUEST_BYTES};
    let mut input = Input { data };
    let mut rng = Rng(u64::from(input.byte()) | 1 << 40);
    let data = input.data;
    let mut fed = 0;
    let mut verdict = None;
    while fed < data.len() {
        fed += ((rng.next() % 300) as usize + 1).min(data.len() - fed);
        match parse(&data[..fed]) {
            Ok(None) => {
                assert!(verdict.is_none(), "undecided again after {verdict:?}");
                assert!(fed < MAX_REQUEST_BYTES, "undecided after {fed} bytes");
            }
            decided => match &verdict {
                None => verdict = Some(decided),
                Some(first) => assert_eq!(first, &decided, "at {fed} bytes"),
            },
        }
    }
    let Some(verdict) = verdict else { return };
    let method = match &verdict {
        Ok(Some(r)) => {
            assert!(r.path.starts_with('/'), "{r:?}");
            assert!(!r.path.contains(['?', '#']), "{r:?}");
            assert!(!r.path.bytes().any(|b| b <= b' ' || b == 0x7f), "{r:?}");
            r.method
        }
        _ => Method::Get,
    };
    let req = verdict.map(|r| r.expect("decided"));
    let answer = answer::without_snapshots(&req).unwrap_or_else(|| {
        let page = Page::of(&req.as_ref().expect("a page").path);
        Answer::page(page, Ok(&[]), 0)
    });
    let bytes = answer.bytes(method);
    let head_len = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head that ends")
        + 4;
    let head = std::str::from_utf8(&bytes[..head_len]).expect("an ASCII head");
    assert!(head.starts_with("HTTP/1.1 "), "{head:?}");
    for line in head[..head_len - 4].split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "{head:?}");
    }
    let body = bytes.len() - head_len;
    if method == Method::Get {
        assert!(
            head.contains(&format!("Content-Length: {body}\r\n")),
            "{head:?}"
        );
    } else {
        assert_eq!(body, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of every target, as `scripts/fuzz.sh` starts from; a panic names the file.
    #[test]
    fn every_seed_runs_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (name, target) in TARGETS {
            let dir = root.join(name);
            let mut seeds: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            seeds.sort();
            assert!(!seeds.is_empty(), "{}: no seeds", dir.display());
            for seed in seeds {
                let data = std::fs::read(&seed).unwrap();
                if let Err(e) = std::panic::catch_unwind(|| target(&data)) {
                    panic!("{}: {e:?}", seed.display());
                }
            }
        }
        // The `status` target's folder; a fuzzer process leaves its own for inspection.
        std::fs::remove_dir_all(status_dir()).unwrap();
    }

    /// The syslog corpus of the differential tests through both syslog targets, under a few
    /// settings prefixes: every framing mode, small and large maxima.
    #[test]
    fn the_syslog_corpus_runs_clean() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/syslog");
        for e in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read(e.unwrap().path()).unwrap();
            for prefix in [[0u8, 0xff, 7], [1, 40, 3], [0x82, 0x90, 200]] {
                frame(&[&prefix[..], &text].concat());
            }
            for line in text.split(|&c| c == b'\n') {
                render(&[&[0u8; 17][..], line].concat());
            }
        }
    }
}
