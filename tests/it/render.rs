//! `render = vendor` against the real thing: a differential test with an rsyslogd 8.2302 (the
//! vendor collector's) started by the test with the vendor's settings, and the real lc. The
//! same bytes go to both over UDP (one datagram per message) and TCP (LF-framed, as the
//! vendor's own `cat sample.log | nc` test), and both files must be equal byte for byte. Inputs:
//! every line of `tests/corpus/syslog/*.log`, and a seeded random run over a grammar of syslog
//! headers and malformations (`LC_RENDER_SEED` changes the seed, `LC_RENDER_N` the count).
//!
//! The one masking allowed: a timestamp field that shows the receive time on both sides (a
//! second boundary may fall between the two receivers). The hostname needs none: rsyslog runs
//! without DNS, so its `fromhost` is 127.0.0.1, as lc's.
//!
//! Over TCP, frames end at LF only under `render = vendor`, as rsyslog 8.2302's imtcp ends
//! them: a CR before the LF and NULs are content (`#015`, `#000`), so they are sent too.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::{source, wait_for, Lc, TempDir};

/// An rsyslogd configured as the vendor collector (receivers, parser chain, output format),
/// killed on drop. Its main queue has one worker: with more, a busy machine has rsyslog write
/// batches out of order, and the comparison is line by line.
struct Rsyslog {
    child: Child,
    dir: PathBuf,
    udp: u16,
    tcp: u16,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Rsyslog {
    fn start(dir: &Path) -> Rsyslog {
        let work = dir.join("work");
        fs::create_dir_all(&work).unwrap();
        // imudp cannot report a kernel-chosen port; take a free one and hand it over.
        let udp = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let port_file = dir.join("tcp.port");
        let conf = dir.join("rsyslog.conf");
        fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}" net.enableDNS="off" maxMessageSize="64k")
$EscapeControlCharactersOnReceive on
main_queue(queue.workerThreads="1")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp}" rcvbufSize="4m" ruleset="u")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="{port_file}"
      SupportOctetCountedFraming="off" ruleset="t")
ruleset(name="u") {{ action(type="omfile" file="{d}/udp.log" template="RSYSLOG_TraditionalFileFormat") }}
ruleset(name="t") {{ action(type="omfile" file="{d}/tcp.log" template="RSYSLOG_TraditionalFileFormat") }}
"#,
                work = work.display(),
                port_file = port_file.display(),
                d = dir.display(),
            ),
        )
        .unwrap();
        let child = Command::new("rsyslogd")
            .args(["-n", "-f"])
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .env("TZ", "UTC")
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("rsyslogd.err")).unwrap())
            .spawn()
            .expect("rsyslogd (apt-get install rsyslog; scripts/deps.sh does)");
        let mut r = Rsyslog {
            child,
            dir: dir.to_path_buf(),
            udp,
            tcp: 0,
        };
        wait_for(20, "rsyslogd's TCP port file", || {
            fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map(|p| r.tcp = p)
                .is_some()
        });
        r
    }

    fn output(&self, proto: &str) -> Vec<u8> {
        fs::read(self.dir.join(format!("{proto}.log"))).unwrap_or_default()
    }
}

/// Every byte lc holds for `source`: delivered and spooled segments in order (lines may not
/// be UTF-8, so `Lc::lines` will not do).
fn lc_output(lc: &Lc, source: &str) -> Vec<u8> {
    let mut segs: Vec<(u64, PathBuf)> = Vec::new();
    let prefix = format!("{source}_it_");
    for e in fs::read_dir(lc.outbox()).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if crate::harness::is_manifest(&name) {
            continue;
        }
        if let Some(rest) = name.strip_prefix(&prefix) {
            segs.push((rest[..10].parse().unwrap(), e.path()));
        }
    }
    for e in fs::read_dir(lc.state().join("spool").join(source))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.ends_with(".log") || name.ends_with(".log.gz"))
            && !segs
                .iter()
                .any(|(s, _)| name.starts_with(&format!("{s:010}")))
        {
            segs.push((name[..10].parse().unwrap(), e.path()));
        }
    }
    segs.sort();
    let mut out = Vec::new();
    for (_, path) in segs {
        let Ok(file) = fs::File::open(&path) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "gz") {
            flate2::read::MultiGzDecoder::new(file)
                .read_to_end(&mut out)
                .unwrap();
        } else {
            std::io::BufReader::new(file).read_to_end(&mut out).unwrap();
        }
    }
    out
}

/// A message that both sides render as the known line `sentinel_line(k)`: sent after a batch,
/// it says the batch is on disk.
fn sentinel(k: usize) -> Vec<u8> {
    format!("<13>Jan  1 00:00:00 lc-test sentinel-{k}:").into_bytes()
}

fn sentinel_line(k: usize) -> Vec<u8> {
    format!("Jan  1 00:00:00 lc-test sentinel-{k}: ").into_bytes()
}

fn has_line(out: &[u8], line: &[u8]) -> bool {
    out.split(|&b| b == b'\n').any(|l| l == line)
}

/// Days since 1970-01-01 to `Mmm dd hh:mm:ss` with the day padded by a space (H. Hinnant's
/// civil-from-days), for the receive-time window.
fn stamp_of(secs: u64) -> Vec<u8> {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    const M: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        M[month as usize - 1],
        day,
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
    .into_bytes()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Shows bytes as a Rust byte string would, so control characters and NULs are visible.
fn show(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

/// Sends `msgs` to rsyslog and lc over one transport, in batches each closed by a sentinel,
/// waits until both wrote every batch, and returns every mismatch as a report line.
struct Run<'a> {
    lc: &'a Lc,
    rs: &'a Rsyslog,
    next_sentinel: usize,
    /// rsyslog's UDP file is compared from after the last copy of this line (the warm-up).
    udp_skip: Vec<u8>,
}

impl Run<'_> {
    fn rs_udp(&self) -> Vec<u8> {
        let out = self.rs.output("udp");
        let mut at = 0;
        let mut pos = 0;
        for l in out.split(|&b| b == b'\n') {
            pos += l.len() + 1;
            if l == self.udp_skip.as_slice() {
                at = pos.min(out.len());
            }
        }
        out[at..].to_vec()
    }

    fn udp(&mut self, msgs: &[Vec<u8>], what: &str) -> Vec<String> {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        let lc_addr = self.lc.addr("u", "udp");
        let rs_addr = ("127.0.0.1", self.rs.udp);
        let start = now();
        // Batches small enough for the receive buffers, so loopback drops nothing.
        for batch in msgs.chunks(200) {
            for m in batch {
                sock.send_to(m, rs_addr).unwrap();
                sock.send_to(m, lc_addr).unwrap();
            }
            let k = self.next_sentinel;
            self.next_sentinel += 1;
            sock.send_to(&sentinel(k), rs_addr).unwrap();
            sock.send_to(&sentinel(k), lc_addr).unwrap();
            wait_for(
                30,
                &format!("{what}: batch {k} on disk on both sides"),
                || {
                    has_line(&self.rs_udp(), &sentinel_line(k))
                        && has_line(&lc_output(self.lc, "u"), &sentinel_line(k))
                },
            );
        }
        compare(&self.rs_udp(), &lc_output(self.lc, "u"), msgs, start, what)
    }

    fn tcp(&mut self, msgs: &[Vec<u8>], what: &str) -> Vec<String> {
        let start = now();
        let k = self.next_sentinel;
        self.next_sentinel += 1;
        let mut stream = Vec::new();
        for m in msgs {
            assert!(!m.contains(&b'\n'), "{what}: not for TCP: {}", show(m));
            stream.extend_from_slice(m);
            stream.push(b'\n');
        }
        stream.extend_from_slice(&sentinel(k));
        stream.push(b'\n');
        for port in [self.rs.tcp, self.lc.addr("t", "tcp").port()] {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(&stream).unwrap();
        }
        wait_for(
            60,
            &format!("{what}: all of it on disk on both sides"),
            || {
                has_line(&self.rs.output("tcp"), &sentinel_line(k))
                    && has_line(&lc_output(self.lc, "t"), &sentinel_line(k))
            },
        );
        compare(
            &self.rs.output("tcp"),
            &lc_output(self.lc, "t"),
            msgs,
            start,
            what,
        )
    }
}

/// Compares the two files line by line. Lines are equal, or differ only in a timestamp that
/// is a receive time on both sides (within the run's window). Sentinels resynchronise: a
/// message both sides dropped leaves no line on either.
fn compare(rs: &[u8], lc: &[u8], msgs: &[Vec<u8>], start: u64, what: &str) -> Vec<String> {
    let end = now();
    let window: Vec<Vec<u8>> = (start.saturating_sub(2)..=end + 2).map(stamp_of).collect();
    let lines = |b: &[u8]| -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
        v.pop();
        v
    };
    let (rs, lc) = (lines(rs), lines(lc));
    let mut bad = Vec::new();
    // rsyslog writes a line for every message but an empty one, plus the sentinels.
    let expected = msgs.iter().filter(|m| !m.is_empty()).count();
    if rs.len() < expected {
        bad.push(format!(
            "{what}: rsyslog wrote {} lines for {expected} messages",
            rs.len()
        ));
    }
    if rs.len() != lc.len() {
        bad.push(format!(
            "{what}: rsyslog wrote {} lines, lc {}",
            rs.len(),
            lc.len()
        ));
    }
    for (i, (a, b)) in rs.iter().zip(&lc).enumerate() {
        let received = |l: &[u8]| l.len() >= 15 && window.iter().any(|w| l[..15] == w[..]);
        let same = a == b || (received(a) && received(b) && a[15..] == b[15..]);
        if !same {
            // Lines map to messages one to one until a dropped message; name the line.
            let input = msgs.get(i).map_or("?".to_string(), |m| show(m));
            bad.push(format!(
                "{what}: line {i} (input near {input})\n  rsyslog: {}\n  lc:      {}",
                show(a),
                show(b)
            ));
        }
    }
    bad
}

fn start_pair(tag: &str) -> (Lc, Rsyslog, TempDir) {
    let dir = TempDir::new(&format!("rsyslog-{tag}"));
    let rs = Rsyslog::start(&dir.0);
    let lc = Lc::start(
        tag,
        "",
        "udp_rcvbuf = 4194304",
        &(source("u", "syslog-udp", "render = vendor")
            + &source("t", "syslog-tcp", "render = vendor\nframing = lf")),
    );
    (lc, rs, dir)
}

/// Waits until rsyslog's UDP input is up (it may bind after writing the TCP port file).
fn udp_warm_up(run: &mut Run) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let k = run.next_sentinel;
    run.next_sentinel += 1;
    wait_for(20, "rsyslogd's UDP input", || {
        sock.send_to(&sentinel(k), ("127.0.0.1", run.rs.udp))
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        has_line(&run.rs.output("udp"), &sentinel_line(k))
    });
    run.udp_skip = sentinel_line(k);
}

fn corpus() -> Vec<(String, Vec<Vec<u8>>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/syslog");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            let mut msgs: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            if bytes.ends_with(b"\n") {
                msgs.pop();
            }
            (p.file_name().unwrap().to_string_lossy().into_owned(), msgs)
        })
        .collect()
}

#[test]
fn vendor_render_matches_rsyslog_on_the_corpus() {
    let (lc, rs, _dir) = start_pair("render-corpus");
    let mut run = Run {
        lc: &lc,
        rs: &rs,
        next_sentinel: 0,
        udp_skip: Vec::new(),
    };
    udp_warm_up(&mut run);
    let files = corpus();
    assert!(files.len() >= 16, "corpus files: {}", files.len());
    let all: Vec<Vec<u8>> = files.iter().flat_map(|(_, m)| m.clone()).collect();
    let mut bad = run.tcp(&all, "corpus over tcp");
    bad.extend(run.udp(&all, "corpus over udp"));
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
    eprintln!(
        "corpus: {} messages over tcp and udp, no mismatch",
        all.len()
    );
}

/// splitmix64: a fixed seed gives the same messages on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

const PRIS: &[&str] = &[
    "<13>", "<13>", "<13>", "<134>", "<0>", "<191>", "<192>", "<>", "<0013>", "<1911>", "<13",
    "<abc>", "<", "", "", "13>", "<-1>", "<7 >",
];
const STAMPS_3164: &[&str] = &[
    "Apr  9 16:03:37",
    "Apr 09 16:03:37",
    "Apr 9 16:03:37",
    "apr  9 16:03:37",
    "DEC 31 23:59:60",
    "Apr  9 16:03:37.123",
    "Apr  9 16:03:37:",
    "Apr  9 2019 16:03:37",
    "2019 Apr  9 16:03:37",
    "Apr 31 16:03:37",
    "Apr 32 16:03:37",
    "Apr  9 24:03:37",
    "Apr  9 16:3:7",
    "Apr  9 ::",
    "Apl  9 16:03:37",
    " Apr  9 16:03:37",
    "Apr   9 16:03:37",
    "1969 Apr  9 16:03:37",
    "2019-04-09T16:03:37Z",
    "2019-04-09T16:03:37.5+05:30",
    "2019-04-09T16:03:37",
    "Jun",
    "Jan  1 00:00:00",
    "Feb 29 12:00:00.999999999999",
];
const STAMPS_5424: &[&str] = &[
    "2019-04-09T16:03:37Z",
    "2019-04-09T16:03:37.123456+02:00",
    "2019-4-9T6:3:7-11:30",
    "-",
    "2019-04-09T16:03:37",
    "2019-04-09 16:03:37Z",
    "0-1-1T0:0:0Z",
    "2100-01-01T00:00:00Z",
    "2019-04-09T16:03:37.1234567890Z",
    "2019-04-09T16:03:37.99999999999Z",
    "2019-13-01T00:00:00Z",
    "2019-04-09T16:03:37+24:00",
    "2019-04-09T16:03:37Zx",
    "",
];
const HOSTS: &[&str] = &[
    "host",
    "fw-01.example.com",
    "10.0.0.1",
    "[10.0.0.1]",
    "host-",
    "h_1",
    "h\u{f4}te",
    "",
    "-",
    "a",
    "1",
    "2019",
    "host:",
    "FGT60E",
    "host]x",
    "x.y.",
];
const TAGS: &[&str] = &[
    "sshd",
    "sshd[123]",
    "%ASA-6-302013",
    "CheckPoint",
    "filterlog[9]",
    "tag",
    "t-a_g.x",
    "",
    "\u{e9}t\u{e9}",
    "[pid]",
    "{x}",
    "a[b",
    "date=2019-04-09",
];
const WORDS: &[&str] = &[
    "msg",
    "action=allow",
    "src=10.0.0.5",
    "[sd x=\"1\"]",
    "{\"k\":1}",
    "]",
    "\\]",
    "-",
    ":",
    "  ",
    "caf\u{e9}",
    "\u{2713}",
    "\u{feff}",
    "\t",
    "\x01",
    "\x1b[0m",
    "\x7f",
    "\r",
    "#011",
    "1",
    "2019",
    "Apr",
    "[",
    "{",
    "x\ty",
];

fn words(r: &mut Rng, out: &mut Vec<u8>) {
    for _ in 0..r.below(6) {
        if r.chance(80) {
            out.push(b' ');
        }
        out.extend_from_slice(r.pick(WORDS).as_bytes());
    }
    if r.chance(5) {
        // Bytes >= 0x80 that are not UTF-8.
        out.extend_from_slice(&[0x80, 0xff, 0xc3]);
    }
}

/// One message from a grammar of RFC 5424 and RFC 3164 headers and their malformations.
/// `udp`: may also hold LF and NUL anywhere and end in CR, LF or NUL.
fn message(r: &mut Rng, udp: bool) -> Vec<u8> {
    let mut m = r.pick(PRIS).as_bytes().to_vec();
    let sp = |r: &mut Rng, m: &mut Vec<u8>| {
        m.extend_from_slice(match r.below(20) {
            0 => b"",
            1 => b"  ",
            _ => b" ",
        })
    };
    if r.chance(35) {
        m.extend_from_slice(if r.chance(90) { b"1 " } else { b"1" });
        m.extend_from_slice(r.pick(STAMPS_5424).as_bytes());
        for field in [HOSTS, TAGS, &["123", "-", "", "p"], &["ID47", "-", ""]] {
            if r.chance(3) {
                break;
            }
            sp(r, &mut m);
            // 5424 fields are tokens: no spaces of their own.
            let f = r.pick(field);
            m.extend_from_slice(f.split(' ').next().unwrap().as_bytes());
        }
        sp(r, &mut m);
        m.extend_from_slice(
            r.pick(&[
                "-",
                "[a b=\"c\"]",
                "[a][b]",
                "[a x=\"\\]\"]",
                "[a",
                "-x",
                "",
                "[]",
            ])
            .as_bytes(),
        );
    } else {
        if r.chance(85) {
            m.extend_from_slice(r.pick(STAMPS_3164).as_bytes());
            sp(r, &mut m);
        }
        if r.chance(75) {
            m.extend_from_slice(r.pick(HOSTS).as_bytes());
            sp(r, &mut m);
        }
        if r.chance(2) {
            m.extend(std::iter::repeat_n(b't', 505 + r.below(10)));
        }
        m.extend_from_slice(r.pick(TAGS).as_bytes());
        if r.chance(70) {
            m.push(b':');
        }
    }
    words(r, &mut m);
    if r.chance(25) {
        // Cut anywhere, to hit every "message ends here" case.
        let cut = r.below(m.len() + 1);
        m.truncate(cut);
    }
    if udp {
        if r.chance(10) {
            let at = r.below(m.len() + 1);
            m.insert(at, if r.chance(50) { b'\n' } else { 0 });
        }
        if r.chance(20) {
            m.extend_from_slice(
                r.pick(&["\n", "\0", "\n\0", "\r", "\r\n", "\n\n", "\0\0"])
                    .as_bytes(),
            );
        }
    } else {
        m.retain(|&b| b != b'\n');
        if r.chance(10) {
            let at = r.below(m.len() + 1);
            m.insert(at, 0);
        }
        if r.chance(10) {
            m.extend_from_slice(r.pick(&["\r", "\0", "\r\r"]).as_bytes());
        }
    }
    m
}

#[test]
fn vendor_render_matches_rsyslog_on_random_messages() {
    let seed = std::env::var("LC_RENDER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_230_209u64);
    let n: usize = std::env::var("LC_RENDER_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let (lc, rs, _dir) = start_pair("render-random");
    let mut run = Run {
        lc: &lc,
        rs: &rs,
        next_sentinel: 0,
        udp_skip: Vec::new(),
    };
    udp_warm_up(&mut run);
    let mut r = Rng(seed);
    let tcp: Vec<Vec<u8>> = (0..n).map(|_| message(&mut r, false)).collect();
    let udp: Vec<Vec<u8>> = (0..n / 5).map(|_| message(&mut r, true)).collect();
    let mut bad = run.tcp(&tcp, &format!("random over tcp (seed {seed})"));
    bad.extend(run.udp(&udp, &format!("random over udp (seed {seed})")));
    let shown: Vec<&String> = bad.iter().take(50).collect();
    assert!(
        bad.is_empty(),
        "{} mismatches (LC_RENDER_SEED={seed}), first 50:\n{}",
        bad.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    eprintln!(
        "random: {} messages over tcp, {} over udp, seed {seed}, no mismatch",
        tcp.len(),
        udp.len()
    );
}
