//! Counters and status snapshots: what an instance counts, and what `lc status` reads.
//!
//! The event loop keeps a [`Counters`] per source and, every few seconds, writes a JSON
//! snapshot of the instance to `run_dir/INSTANCE.json` (`file.rs`: temp file + rename, so
//! readers never see half a file). `lc status` reads every snapshot in run_dir and renders
//! them (`render.rs`), or judges them for monitoring (`check.rs`); certificate expiry stages
//! are `expiry.rs`'s. It never talks to a running instance. The JSON is the interface: `lc
//! status --json` passes it through, `metrics.rs` turns it into Prometheus text.
//!
//! This file is the model: drop reasons, counters and their rate, the source state rule and
//! a source's part of the snapshot. All pure but `file.rs`.

mod check;
mod expiry;
mod file;
mod render;

pub use check::{check, stale, Level, BACKLOG_WARN_SECS, FAILING_CRITICAL_SECS, STALE_SECS};
pub use expiry::{certificates, expiry, expiry_stage, expiry_warnings, Expiry, EXPIRY_WARN_DAYS};
pub use file::{
    pid_path, read_all, read_all_noting, read_snapshot, snapshot_path, write_atomically,
};
pub use render::{bytes, render, Options, WIDTH};

use serde_json::{json, Map, Value};

/// Why a message, connection or segment was dropped. Every drop is counted under one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drop {
    /// A datagram or connection from a sender outside the source's allow list.
    NotAllowed,
    /// A connection refused because the instance holds `max_connections`.
    MaxConnections,
    /// A connection refused because its IP holds `max_connections_per_ip`.
    MaxConnectionsPerIp,
    /// Messages lc could not write for want of disk: UDP datagrams read while the disk was
    /// full (stream senders are paused instead), and lines still unwritten when a stop found
    /// the disk full.
    DiskFull,
    /// Datagrams the kernel dropped because the socket buffer was full (from /proc/net/udp).
    UdpKernel,
    /// Sealed segments removed to respect `max_spool_bytes` / `min_free_bytes`.
    EvictedSegments,
    /// TLS connections whose handshake failed or timed out (no or a wrong client certificate,
    /// TLS older than 1.2, a stalled peer).
    TlsHandshake,
    /// TLS connections whose client certificate names are not in `allow_cn`.
    NotAllowedCn,
    /// Messages with nothing to store (`render = vendor` drops them, as rsyslog does).
    Empty,
    /// Sealed files found damaged before delivery (truncated or corrupt gzip, zip without its
    /// directory), moved to `spool/SOURCE/quarantine/`.
    QuarantinedSegments,
    /// `proxy_protocol = on` connections that sent no valid PROXY header (none, a broken
    /// one, or not within `handshake_timeout_secs`).
    ProxyHeader,
    /// `proxy_protocol = on` connections from outside `trusted_proxies`.
    ProxyUntrusted,
}

impl Drop {
    pub const ALL: [Drop; 12] = [
        Drop::NotAllowed,
        Drop::MaxConnections,
        Drop::MaxConnectionsPerIp,
        Drop::DiskFull,
        Drop::UdpKernel,
        Drop::EvictedSegments,
        Drop::TlsHandshake,
        Drop::NotAllowedCn,
        Drop::Empty,
        Drop::QuarantinedSegments,
        Drop::ProxyHeader,
        Drop::ProxyUntrusted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Drop::NotAllowed => "not_allowed",
            Drop::MaxConnections => "max_connections",
            Drop::MaxConnectionsPerIp => "max_connections_per_ip",
            Drop::DiskFull => "disk_full",
            Drop::UdpKernel => "udp_kernel",
            Drop::EvictedSegments => "evicted_segments",
            Drop::TlsHandshake => "tls_handshake",
            Drop::NotAllowedCn => "not_allowed_cn",
            Drop::Empty => "empty",
            Drop::QuarantinedSegments => "quarantined_segments",
            Drop::ProxyHeader => "proxy_header",
            Drop::ProxyUntrusted => "proxy_untrusted",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub messages: u64,
    /// Files received (FTP sources).
    pub files: u64,
    pub bytes: u64,
    /// Messages cut at `max_message_bytes` (kept, not dropped).
    pub truncated: u64,
    drops: [u64; Drop::ALL.len()],
    pub evicted_bytes: u64,
    pub connections: u64,
    pub accepted: u64,
    pub idle_closed: u64,
    /// Unix seconds; 0 = never.
    pub last_received: u64,
    pub last_delivery: u64,
    pub delivered_files: u64,
    pub delivered_bytes: u64,
    pub last_error: Option<(u64, String)>,
    /// The last error will not go away without an operator (token, data source name).
    pub error_permanent: bool,
    /// Unix seconds since delivery has been failing without a success; 0 = not failing.
    pub failing_since: u64,
    /// Delivery jobs sent to the delivery thread.
    pub delivery_attempts: u64,
    /// Failed deliveries: worth retrying (network, 5xx, 429) and needing an operator.
    pub delivery_failures_transient: u64,
    pub delivery_failures_permanent: u64,
    /// When the last "delivery still failing" line was logged (unix seconds).
    pub failing_said: u64,
    /// Messages and files received, sampled at each snapshot (`sample`).
    pub rate: Rate,
}

/// How often a failing delivery is said again in the log, with how long and how much waits.
pub const FAILING_REMIND_SECS: u64 = 300;

/// The window of `Rate`, and the most samples it keeps (one per snapshot, every 2 s).
const RATE_WINDOW_SECS: u64 = 60;
const RATE_SAMPLES: usize = 64;

/// What was received over the last minute: (time, total) samples spanning the window.
#[derive(Debug, Clone, Default)]
pub struct Rate {
    samples: std::collections::VecDeque<(u64, u64)>,
}

impl Rate {
    /// Takes the total received at `now`; keeps one sample at or before the window's start.
    pub fn sample(&mut self, now: u64, total: u64) {
        self.samples.push_back((now, total));
        while self.samples.len() > RATE_SAMPLES
            || (self.samples.len() > 1 && self.samples[1].0 + RATE_WINDOW_SECS <= now)
        {
            self.samples.pop_front();
        }
    }

    /// Received in the last minute (since the first sample, when that is younger).
    pub fn last_minute(&self) -> u64 {
        match (self.samples.front(), self.samples.back()) {
            (Some(first), Some(last)) => last.1.saturating_sub(first.1),
            _ => 0,
        }
    }
}

impl Counters {
    pub fn drop(&mut self, why: Drop, n: u64) {
        self.drops[why as usize] += n;
    }

    pub fn dropped(&self, why: Drop) -> u64 {
        self.drops[why as usize]
    }

    /// Samples what was received, for the rate over the last minute (once per snapshot).
    pub fn sample(&mut self, now: u64) {
        self.rate.sample(now, self.messages + self.files);
    }

    /// Delivery's state in a word: "ok" (the last attempt succeeded or nothing was due),
    /// "failing" (retrying), "needs operator" (token, data source: retried slowly).
    pub fn delivery_state(&self) -> &'static str {
        if self.failing_since == 0 {
            "ok"
        } else if self.error_permanent {
            "needs operator"
        } else {
            "failing"
        }
    }

    /// Whether a "delivery still failing" line is due at `now`; if so, it counts as said.
    pub fn failing_reminder_due(&mut self, now: u64) -> bool {
        if self.failing_since == 0 {
            return false;
        }
        let since = self.failing_said.max(self.failing_since);
        if now.saturating_sub(since) >= FAILING_REMIND_SECS {
            self.failing_said = now;
            true
        } else {
            false
        }
    }

    /// Sets a kernel-maintained counter (UDP drops) to its current value.
    pub fn set_dropped(&mut self, why: Drop, n: u64) {
        self.drops[why as usize] = n;
    }
}

/// DESIGN.md's source states: Created (never received), Healthy (receiving), Connected
/// (delivered in the last 24 h and delivery not failing now), Disconnected (nothing received
/// for 24 h). `failing_since` is when delivery started failing (0 = it is not).
pub fn state(last_received: u64, last_delivery: u64, failing_since: u64, now: u64) -> &'static str {
    const DAY: u64 = 86400;
    if last_received == 0 {
        "Created"
    } else if now.saturating_sub(last_received) >= DAY {
        "Disconnected"
    } else if failing_since == 0 && last_delivery != 0 && now.saturating_sub(last_delivery) < DAY {
        "Connected"
    } else {
        "Healthy"
    }
}

/// One source's line in the snapshot.
pub struct SourceView<'a> {
    pub name: &'a str,
    pub format: &'a str,
    pub receiver: &'a str,
    pub port: u16,
    pub counters: &'a Counters,
    pub backlog_files: usize,
    pub backlog_bytes: u64,
    pub oldest_backlog: u64,
    /// Why receiving is paused (stream and FTP sources) or dropping (UDP), if it is.
    pub paused: Option<&'a str>,
}

pub fn source_json(v: &SourceView<'_>, now: u64) -> Value {
    let c = v.counters;
    let mut drops = Map::new();
    for d in Drop::ALL {
        drops.insert(d.name().to_string(), json!(c.dropped(d)));
    }
    drops.insert("evicted_bytes".into(), json!(c.evicted_bytes));
    json!({
        "name": v.name,
        "format": v.format,
        "receiver": v.receiver,
        "port": v.port,
        "state": state(c.last_received, c.last_delivery, c.failing_since, now),
        "messages": c.messages,
        "files": c.files,
        "bytes": c.bytes,
        "truncated": c.truncated,
        "drops": drops,
        "connections": c.connections,
        "accepted": c.accepted,
        "idle_closed": c.idle_closed,
        "last_received": c.last_received,
        "last_delivery": c.last_delivery,
        "delivered_files": c.delivered_files,
        "delivered_bytes": c.delivered_bytes,
        "backlog": { "files": v.backlog_files, "bytes": v.backlog_bytes, "oldest": v.oldest_backlog },
        "last_error": c.last_error.as_ref().map(|(at, e)| json!({ "at": at, "error": crate::secret::scrub(e), "permanent": c.error_permanent })),
        "failing_since": c.failing_since,
        "rate_per_min": c.rate.last_minute(),
        "paused": v.paused,
        "delivery": {
            "state": c.delivery_state(),
            "last_success": c.last_delivery,
            "last_error_at": c.last_error.as_ref().map_or(0, |(at, _)| *at),
            "attempts": c.delivery_attempts,
            "failures": { "transient": c.delivery_failures_transient, "permanent": c.delivery_failures_permanent },
        },
    })
}

#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::{json, Value};

    /// A fixed `now` for the tests.
    pub const NOW: u64 = 1_800_000_000;

    /// A running instance with the sources given, as `read_all` returns it.
    pub fn instance(name: &str, extra: Value, sources: Value) -> Value {
        let mut s = json!({
            "instance": name, "alive": true, "running": true, "pid": 42, "updated": NOW,
            "started": "2027-01-15T08:00:00Z", "state_dir": "/var/lib/lc",
            "disk": { "free_bytes": 10u64 << 30, "total_bytes": 50u64 << 30, "spool_bytes": 1 << 20,
                      "full": false, "min_free_bytes": 1u64 << 30 },
            "sources": sources,
        });
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    }

    pub fn source(name: &str, extra: Value) -> Value {
        let mut s = json!({
            "name": name, "format": "CISCO_ASA_SYSLOG", "receiver": "syslog-tcp", "port": 601,
            "state": "Healthy", "messages": 123456, "bytes": 9_999_999, "files": 0,
            "connections": 3, "last_received": NOW - 2, "last_delivery": NOW - 120,
            "rate_per_min": 600, "backlog": { "files": 0, "bytes": 0, "oldest": 0 },
            "drops": {}, "truncated": 0, "failing_since": 0, "last_error": null,
            "delivery": { "state": "ok", "attempts": 10, "failures": { "transient": 0, "permanent": 0 } },
        });
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::NOW;
    use super::*;

    #[track_caller]
    fn check_state(last_received: u64, last_delivery: u64, failing: u64, expected: &str) {
        assert_eq!(
            state(last_received, last_delivery, failing, 100_000),
            expected
        );
    }

    #[test]
    fn states() {
        check_state(0, 0, 0, "Created");
        check_state(99_000, 0, 0, "Healthy");
        check_state(99_000, 99_500, 0, "Connected");
        check_state(99_000, 10_000, 0, "Healthy");
        check_state(10_000, 99_500, 0, "Disconnected");
        // Delivered an hour ago, failing since: not Connected.
        check_state(99_000, 96_000, 99_100, "Healthy");
        check_state(10_000, 96_000, 99_100, "Disconnected");
    }

    #[test]
    fn rate_over_the_last_minute() {
        let mut r = Rate::default();
        assert_eq!(r.last_minute(), 0);
        // (time, total, rate after)
        let steps = [
            (0, 100, 0),
            (2, 110, 10),
            (30, 400, 300),
            (60, 700, 600),
            (62, 720, 610),
            (90, 720, 320),
            (200, 720, 0),
            (202, 730, 10),
        ];
        for (t, total, rate) in steps {
            r.sample(NOW + t, total);
            assert_eq!(r.last_minute(), rate, "at {t}");
            assert!(r.samples.len() <= RATE_SAMPLES);
        }
        for t in 0..1000 {
            r.sample(NOW + 300 + t, 730 + t);
        }
        assert!(r.samples.len() <= RATE_SAMPLES);
    }

    #[test]
    fn a_failing_delivery_is_said_again_every_five_minutes() {
        let mut c = Counters::default();
        assert!(!c.failing_reminder_due(NOW));
        c.failing_since = NOW;
        // (seconds after the first failure, due)
        for (t, due) in [
            (1, false),
            (299, false),
            (300, true),
            (301, false),
            (599, false),
            (600, true),
            (1000, true),
        ] {
            assert_eq!(c.failing_reminder_due(NOW + t), due, "at {t}");
        }
    }
}
