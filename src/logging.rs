//! Logging setup. On a terminal: simple_logger with timestamps. Under systemd (JOURNAL_STREAM
//! set, stderr connected to the journal) each line starts with a `<N>` syslog priority and has
//! no timestamp, so journald keeps the level and adds its own time. Either way each line is
//! `secret::scrub`bed first.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use log::{Level, LevelFilter, Log, Metadata, Record};

/// A limit hit again within this interval is counted but not logged again.
const LOG_AGAIN_AFTER: Duration = Duration::from_secs(60);

/// Logs the first time a limit is hit, then at most once per `LOG_AGAIN_AFTER` with a count,
/// per (source index, what): a flood of refused peers must not flood the journal.
#[derive(Default)]
pub struct LimitLog {
    last: HashMap<(usize, &'static str), (Instant, u64)>,
}

impl LimitLog {
    pub fn hit(&mut self, source: usize, what: &'static str, message: impl FnOnce() -> String) {
        let now = Instant::now();
        let entry = self
            .last
            .entry((source, what))
            .or_insert((now - LOG_AGAIN_AFTER * 2, 0));
        entry.1 += 1;
        if now.duration_since(entry.0) >= LOG_AGAIN_AFTER {
            let n = entry.1;
            *entry = (now, 0);
            if n > 1 {
                log::warn!("{} ({n} times since last said)", message());
            } else {
                log::warn!("{}", message());
            }
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
        // One write per line so concurrent threads don't interleave.
        let line = format!("<{priority}>{}\n", record.args());
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
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

/// Installs the logger once; later calls only change the level.
pub fn init(level: LevelFilter) {
    let under_journal = std::env::var_os("JOURNAL_STREAM").is_some();
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
