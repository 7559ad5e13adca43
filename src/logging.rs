//! Logging setup. On a terminal: simple_logger with timestamps. Under systemd (JOURNAL_STREAM
//! names stderr: it is connected to the journal) each line starts with a `<N>` syslog priority
//! and has no timestamp, so journald keeps the level and adds its own time; a message of
//! several lines gets the prefix on every line, since journald reads each line as its own
//! entry. Either way each line is `secret::scrub`bed first. `report` writes a command's
//! errors and warnings (`lc config check` under ExecStartPre) the same way.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// A limit hit again within this interval is counted but not logged again.
const LOG_AGAIN_AFTER: Duration = Duration::from_secs(60);

/// How many (source, what, peer, reason) keys `LimitLog` keeps apart. Past it, hits of new
/// keys share one key per (source, what), said once a minute like the others: a scan from
/// thousands of addresses costs this many entries, not one per address.
pub const LIMIT_LOG_KEYS: usize = 512;

/// What a limit hit is about: the source (`usize::MAX` for the instance), the limit, and
/// optionally the peer and the reason (a TLS handshake's error): each distinct key is logged
/// at least once, so a second firewall with another TLS problem is named within the minute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LimitKey {
    pub source: usize,
    pub what: &'static str,
    pub peer: Option<IpAddr>,
    pub reason: String,
}

impl LimitKey {
    pub fn new(source: usize, what: &'static str) -> LimitKey {
        LimitKey {
            source,
            what,
            peer: None,
            reason: String::new(),
        }
    }

    /// The same limit, for `peer` and `reason`.
    pub fn with(mut self, peer: IpAddr, reason: impl Into<String>) -> LimitKey {
        self.peer = Some(peer);
        self.reason = reason.into();
        self
    }
}

/// What `LimitLog::decide` says about a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// Not now: counted for the next line of its key.
    Quiet,
    /// Log it, with how many hits of its key this line stands for (1 = only this one).
    Log(u64),
    /// Log it as the shared line of keys beyond `LIMIT_LOG_KEYS`, for this many hits.
    Overflow(u64),
}

/// Logs the first time a limit is hit, then at most once per `LOG_AGAIN_AFTER` with a count,
/// per `LimitKey`: a flood of refused peers must not flood the journal, and a new peer or a new
/// reason is always said. The table is bounded (`LIMIT_LOG_KEYS`).
#[derive(Default)]
pub struct LimitLog {
    /// Key -> (when last said, hits since).
    last: HashMap<LimitKey, (Option<Instant>, u64)>,
}

impl LimitLog {
    /// A hit keyed by source and limit only.
    pub fn hit(&mut self, source: usize, what: &'static str, message: impl FnOnce() -> String) {
        self.hit_key(LimitKey::new(source, what), message)
    }

    /// A hit of `key`; `message` is built only when it is logged.
    pub fn hit_key(&mut self, key: LimitKey, message: impl FnOnce() -> String) {
        match self.decide(key, Instant::now()) {
            Say::Quiet => {}
            Say::Log(1) => log::warn!("{}", message()),
            Say::Log(n) => log::warn!("{} ({n} times since last said)", message()),
            Say::Overflow(n) => log::warn!(
                "{} ({n} times since last said, from peers and reasons beyond the {LIMIT_LOG_KEYS} lc tells apart)",
                message()
            ),
        }
    }

    /// Counts a hit of `key` at `now` and says whether to log it. A new key when the table is
    /// full first makes room by forgetting keys not hit for `LOG_AGAIN_AFTER` (their next hit
    /// is logged anyway); if none is, it is counted under its (source, what) key.
    pub fn decide(&mut self, key: LimitKey, now: Instant) -> Say {
        let mut overflow = false;
        let key = if self.last.contains_key(&key) || self.last.len() < LIMIT_LOG_KEYS {
            key
        } else {
            self.last.retain(|_, (said, _)| {
                said.is_some_and(|t| now.duration_since(t) < LOG_AGAIN_AFTER)
            });
            if self.last.len() < LIMIT_LOG_KEYS {
                key
            } else {
                overflow = true;
                LimitKey::new(key.source, key.what)
            }
        };
        if overflow && !self.last.contains_key(&key) {
            // The shared key needs a place of its own: take the oldest.
            if let Some(oldest) = self
                .last
                .iter()
                .min_by_key(|(_, (said, _))| *said)
                .map(|(k, _)| k.clone())
            {
                self.last.remove(&oldest);
            }
        }
        let entry = self.last.entry(key).or_insert((None, 0));
        entry.1 += 1;
        if entry
            .0
            .is_none_or(|said| now.duration_since(said) >= LOG_AGAIN_AFTER)
        {
            let n = entry.1;
            *entry = (Some(now), 0);
            if overflow {
                Say::Overflow(n)
            } else {
                Say::Log(n)
            }
        } else {
            Say::Quiet
        }
    }
}

/// rustls logs what peers do wrong (an IP address as SNI, an alert) as warnings without
/// saying which peer; lc logs the outcome of each handshake itself, with the peer, so only
/// rustls' errors get through.
const RUSTLS: &str = "rustls";

struct JournalLogger {
    level: LevelFilter,
}

impl Log for JournalLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.level
            && (metadata.level() <= Level::Error || !metadata.target().starts_with(RUSTLS))
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let priority = match record.level() {
            Level::Error => 3,
            Level::Warn => 4,
            Level::Info => 6,
            Level::Debug | Level::Trace => 7,
        };
        // One write per message so concurrent threads don't interleave.
        let text = prefixed(priority, &record.args().to_string());
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }

    fn flush(&self) {}
}

/// Every log line passes `secret::scrub` before it is written, whoever logs it: ureq logs a
/// request's path and query at trace level, where a SAS signature would otherwise go.
struct Scrubbed<L>(L);

impl<L: Log> Log for Scrubbed<L> {
    fn enabled(&self, metadata: &Metadata) -> bool {
        self.0.enabled(metadata)
    }

    fn log(&self, record: &Record) {
        if !self.0.enabled(record.metadata()) {
            return;
        }
        let text = record.args().to_string();
        let clean = crate::secret::scrub(&text);
        self.0.log(
            &Record::builder()
                .args(format_args!("{clean}"))
                .metadata(record.metadata().clone())
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.0.flush()
    }
}

/// `<N>` before every line of `text`, each line ending in a newline: journald takes each line
/// of a stream as one entry and reads the priority of each from its own prefix.
fn prefixed(priority: u8, text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.lines() {
        out.push_str(&format!("<{priority}>{line}\n"));
    }
    if text.is_empty() {
        out.push_str(&format!("<{priority}>\n"));
    }
    out
}

/// Whether stderr is the journal: systemd sets `JOURNAL_STREAM` when it connects stdout or
/// stderr to the journal (systemd.exec(5)). Its DEVICE:INODE value is not compared with
/// stderr's: the tests stand in for the journal with a file and a made-up value.
pub fn stderr_is_journal() -> bool {
    std::env::var_os("JOURNAL_STREAM").is_some()
}

/// How bad a line of a command's report is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// Writes a command's error or warning (one or more lines) to stderr: as it is on a terminal,
/// with `<3>`/`<4>` before each line when stderr is the journal, so `lc config check` under
/// ExecStartPre or ExecReload logs its problems at error and warning priority.
pub fn report(severity: Severity, text: &str) {
    let text = crate::secret::scrub(text);
    let out = if stderr_is_journal() {
        prefixed(
            match severity {
                Severity::Error => 3,
                Severity::Warning => 4,
            },
            &text,
        )
    } else {
        format!("{text}\n")
    };
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// Installs the logger once; later calls only change the level.
pub fn init(level: LevelFilter) {
    let under_journal = stderr_is_journal();
    // A second call finds the logger installed and only changes the level below.
    let _ = if under_journal {
        log::set_boxed_logger(Box::new(Scrubbed(JournalLogger {
            level: LevelFilter::Trace,
        })))
    } else {
        log::set_boxed_logger(Box::new(Scrubbed(
            simple_logger::SimpleLogger::new()
                .with_level(LevelFilter::Trace)
                .with_module_level(RUSTLS, LevelFilter::Error)
                .with_utc_timestamps(),
        )))
    };
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hits as (seconds since start, source, what, peer's last octet or 0 for none, reason),
    /// each with what the limiter says.
    #[track_caller]
    fn check_limits(hits: &[(u64, usize, &'static str, u8, &str, Say)]) {
        let start = Instant::now();
        let mut l = LimitLog::default();
        for (i, &(at, source, what, peer, reason, say)) in hits.iter().enumerate() {
            let mut key = LimitKey::new(source, what);
            if peer != 0 {
                key = key.with(IpAddr::from([10, 0, 0, peer]), reason);
            }
            let got = l.decide(key, start + Duration::from_secs(at));
            assert_eq!(got, say, "hit {i}: {:?}", hits[i]);
        }
    }

    #[test]
    fn limits_are_said_once_a_minute_per_peer_and_reason() {
        use Say::*;
        check_limits(&[
            (0, 0, "tls", 1, "x509 v1", Log(1)),
            (1, 0, "tls", 1, "x509 v1", Quiet),
            // Another reason from the same peer, and the same reason from another peer, are
            // said at once (the first firewall's hit must not hide the second's).
            (2, 0, "tls", 1, "unknown CA", Log(1)),
            (3, 0, "tls", 2, "x509 v1", Log(1)),
            (4, 1, "tls", 1, "x509 v1", Log(1)),
            (5, 0, "allow_cn", 1, "x509 v1", Log(1)),
            (30, 0, "tls", 1, "x509 v1", Quiet),
            // A minute after it was said, with the hits since.
            (60, 0, "tls", 1, "x509 v1", Log(3)),
            (61, 0, "tls", 1, "x509 v1", Quiet),
            (121, 0, "tls", 1, "x509 v1", Log(2)),
            // Keys without a peer work as before.
            (0, 5, "accept", 0, "", Log(1)),
            (200, 5, "accept", 0, "", Log(1)),
        ]);
    }

    #[test]
    fn the_limit_table_is_bounded() {
        let start = Instant::now();
        let mut l = LimitLog::default();
        let key =
            |n: usize| LimitKey::new(0, "tls").with(IpAddr::from((n as u32).to_be_bytes()), "bad");
        for n in 0..LIMIT_LOG_KEYS {
            assert_eq!(l.decide(key(n), start), Say::Log(1));
        }
        // Full, none old enough to forget: new peers share one line a minute.
        let t = start + Duration::from_secs(1);
        assert_eq!(l.decide(key(100_000), t), Say::Overflow(1));
        assert_eq!(l.decide(key(100_001), t), Say::Quiet);
        assert!(l.last.len() <= LIMIT_LOG_KEYS);
        // A known key is still itself.
        assert_eq!(l.decide(key(5), t + Duration::from_secs(60)), Say::Log(1));
        // A minute on, the old keys make room and a new peer is named again.
        let later = start + Duration::from_secs(120);
        assert_eq!(l.decide(key(200_000), later), Say::Log(1));
        assert!(l.last.len() <= LIMIT_LOG_KEYS);
    }

    #[track_caller]
    fn check(priority: u8, text: &str, expected: &str) {
        assert_eq!(prefixed(priority, text), expected);
    }

    #[test]
    fn every_line_has_its_priority() {
        check(3, "one", "<3>one\n");
        check(
            3,
            "/etc/lc/lc.ini:4: unknown format\n/etc/lc/lc.ini:9: bad port",
            "<3>/etc/lc/lc.ini:4: unknown format\n<3>/etc/lc/lc.ini:9: bad port\n",
        );
        check(
            4,
            "reload refused:\nx.ini:2: y\n",
            "<4>reload refused:\n<4>x.ini:2: y\n",
        );
        check(6, "", "<6>\n");
    }
}
