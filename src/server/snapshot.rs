//! The status snapshot of an instance (`run_dir/INSTANCE.json`, what `lc status` reads) and
//! the kernel's UDP drop counters that go into it.
//!
//! `json` builds the snapshot from a borrowed view of the instance; the loop writes it with
//! `status::write_atomically` (a small file, the one write besides the spool's the loop
//! does). `udp_drops` reads `/proc/self/net/udp{,6}`, parsed by the pure `parse_udp_drops`.

use std::collections::HashMap;
use std::net::SocketAddr;

use serde_json::{json, Value};

use super::source::SourceState;
use crate::clock;
use crate::config::formats::window::{Window, WINDOW};
use crate::config::Config;
use crate::status;

/// What the snapshot shows of an instance.
pub struct View<'a> {
    pub instance: &'a str,
    pub config: &'a Config,
    pub running: bool,
    pub started: u64,
    pub now: u64,
    pub sources: &'a [SourceState],
    /// (source name, protocol, address) of each listener.
    pub listeners: Vec<(&'a str, &'static str, SocketAddr)>,
    pub disk_free: u64,
    pub disk_total: u64,
    pub disk_full: bool,
    pub connections: usize,
    /// Bytes of incomplete frames held by all stream connections.
    pub pending_bytes: usize,
    pub reloaded_at: u64,
    pub reload_error: Option<&'a str>,
    pub tls: Option<&'a crate::tls::SyslogTls>,
    pub ftp: Option<Value>,
}

pub fn json(v: &View) -> Value {
    let now = v.now;
    let sources: Vec<_> = v
        .sources
        .iter()
        .filter(|s| !s.retired)
        .map(|s| {
            let oldest = s
                .spool
                .inv
                .oldest_sealed_at()
                .map_or(0, |at| now.saturating_sub(at));
            let mut json = status::source_json(
                &status::SourceView {
                    name: &s.cfg.name,
                    format: &s.cfg.format,
                    receiver: s.cfg.receiver.as_str(),
                    port: s.cfg.port,
                    counters: &s.counters,
                    backlog_files: s.spool.inv.files() + usize::from(s.spool.open.is_some()),
                    backlog_bytes: s.spool.backlog_bytes(),
                    oldest_backlog: oldest,
                    paused: v.disk_full.then_some("disk full"),
                },
                now,
            );
            json["format_check"] = format_json(&s.format, s.cfg.format_warn_below);
            json
        })
        .collect();
    let listeners: Vec<_> = v
        .listeners
        .iter()
        .map(|(source, proto, addr)| {
            json!({
                "source": source,
                "proto": proto.to_ascii_lowercase(),
                "addr": addr.to_string(),
                "port": addr.port(),
            })
        })
        .collect();
    let spool_bytes: u64 = v.sources.iter().map(|s| s.spool.backlog_bytes()).sum();
    json!({
        "instance": v.instance,
        "pid": std::process::id(),
        "version": crate::VERSION,
        "config": v.config.path.display().to_string(),
        "running": v.running,
        "started": clock::rfc3339(v.started),
        "updated": now,
        "state_dir": v.config.collector.state_dir.display().to_string(),
        "disk": { "free_bytes": v.disk_free, "total_bytes": v.disk_total, "spool_bytes": spool_bytes, "full": v.disk_full, "min_free_bytes": v.config.spool.min_free_bytes, "max_spool_bytes": v.config.spool.max_spool_bytes },
        "connections": v.connections,
        "pending_bytes": v.pending_bytes,
        "critical_after_secs": v.config.delivery.critical_after.as_secs(),
        "api": crate::deliver::tally::API.json(),
        "reloaded_at": v.reloaded_at,
        "reload_error": v.reload_error,
        "tls": v.tls.map(|t| json!({
            "subject": t.server.subject,
            "serial": t.server.serial,
            "not_after": t.server.not_after,
            "client_ca": t.client_ca.iter().map(|c| c.subject.clone()).collect::<Vec<_>>(),
            "client_ca_not_after": t.client_ca.iter().map(|c| c.not_after).min(),
        })),
        "listeners": listeners,
        "ftp": v.ftp,
        "sources": sources,
    })
}

/// A source's live format check: `state` (unchecked, learning, ok, warning), `match_pct` of
/// the last `lines` lines checked (at most `window`; one in about `sample_stride` lines is
/// checked when the source is busy), `warn_below`, and what most lines that do not
/// match look like (`looks_like`: a format's name, or null for no format lc knows, with
/// `looks_like_types` and `looks_like_pct`), `unknown_pct` of lines like no known format.
pub fn format_json(w: &Window, warn_below: u8) -> Value {
    let like = w.looks_like();
    json!({
        "state": w.state().name(),
        "expected": w.expected().map(|f| f.name()),
        "match_pct": w.match_pct(),
        "lines": w.lines(),
        "window": WINDOW,
        "sample_stride": w.stride(),
        "warn_below": warn_below,
        "looks_like": like.and_then(|(f, _)| f).map(|f| f.name()),
        "looks_like_types": like.and_then(|(f, _)| f).map(|f| f.kind().types),
        "looks_like_pct": like.map(|(_, p)| p),
        "unknown_pct": w.unknown_pct(),
    })
}

/// Socket inode -> drops, from the kernel's UDP tables.
pub fn udp_drops() -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    // /proc/self/net: the same tables (this process's network namespace), and still there
    // when the unit mounts /proc with ProcSubset=pid.
    for file in ["/proc/self/net/udp", "/proc/self/net/udp6"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            parse_udp_drops(&text, &mut out);
        }
    }
    out
}

/// Adds (inode, drops) of each socket line of a `/proc/net/udp` table (the inode is the
/// tenth column, drops the last) to `out`.
pub fn parse_udp_drops(text: &str, out: &mut HashMap<u64, u64>) {
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 13 {
            continue;
        }
        if let (Ok(inode), Ok(drops)) =
            (cols[9].parse::<u64>(), cols[cols.len() - 1].parse::<u64>())
        {
            out.insert(inode, drops);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops";

    #[track_caller]
    fn check(lines: &[&str], expected: &[(u64, u64)]) {
        let text = std::iter::once(HEADER)
            .chain(lines.iter().copied())
            .collect::<Vec<_>>()
            .join("\n");
        let mut out = HashMap::new();
        parse_udp_drops(&text, &mut out);
        let mut got: Vec<_> = out.into_iter().collect();
        got.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn udp_tables() {
        check(&[], &[]);
        check(
            &["  712: 00000000:0202 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 41234 2 0000000000000000 17"],
            &[(41234, 17)],
        );
        check(
            &[
                "  1: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 100 2 ffff 0",
                "  2: 00000000:0202 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 200 2 ffff 5",
            ],
            &[(100, 0), (200, 5)],
        );
        // Short or garbled lines are skipped.
        check(
            &["  3: 00000000:0202", "  4: a b c d e f g h i x 2 ffff 5"],
            &[],
        );
    }
}
