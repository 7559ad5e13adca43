//! Logging setup. On a terminal: simple_logger with timestamps. Under systemd (JOURNAL_STREAM
//! names stderr: it is connected to the journal) each line starts with a `<N>` syslog priority
//! and has no timestamp, so journald keeps the level and adds its own time; a message of
//! several lines gets the prefix on every line, since journald reads each line as its own
//! entry. Either way each line is `secret::scrub`bed first. `report` writes a command's
//! errors and warnings (`lc config check` under ExecStartPre) the same way.

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
