//! The status snapshot of an instance (`run_dir/INSTANCE.json`, what `lc status` reads), its
//! Prometheus copy, and the kernel's UDP drop counters that go into it.
//!
//! `Status` keeps what only the snapshot needs (when the instance started, the last reload's
//! outcome, which certificate expiry warnings were said) and writes it: the loop hands it a
//! `View` of its state, `write` builds the JSON (`json`), writes it with
//! `status::write_atomically` (a small file, the one write besides the spool's the loop does),
//! logs certificate expiry warnings and writes `metrics_dir`'s textfile. It calls nothing of
//! the loop back. `count_udp_drops` reads `/proc/self/net/udp{,6}` (parsed by the pure
//! `parse_udp_drops`) into the sources' counters.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::time::SystemTime;

use serde_json::{json, Value};

use super::listen::Socket;
use super::listeners::Listeners;
use super::source::SourceState;
use crate::clock;
use crate::config::formats::window::{Window, WINDOW};
use crate::config::Config;
use crate::logging::LimitLog;
use crate::status::{self, Drop};

/// What the snapshot shows of the loop's state.
pub struct View<'a> {
    pub instance: &'a str,
    pub config: &'a Config,
    pub running: bool,
    /// Their counters' rates are sampled at each write.
    pub sources: &'a mut [SourceState],
    pub listeners: &'a Listeners,
    pub disk_free: u64,
    pub disk_total: u64,
    pub disk_full: bool,
    pub connections: usize,
    /// Bytes of incomplete frames held by all stream connections.
    pub pending_bytes: usize,
    pub tls: Option<&'a crate::tls::SyslogTls>,
    pub ftp: Option<Value>,
    pub metrics_listen: Value,
}

/// The snapshot's own state, and its writer.
pub struct Status {
    /// When the instance started (s since the epoch).
    started: u64,
    /// When the last SIGHUP was handled (ms since the epoch) and why it was refused, if it
    /// was: `lc certs reload` waits for these in the snapshot.
    reloaded_at: u64,
    reload_error: Option<String>,
    /// Certificate expiry warnings said: (notAfter, stage) per certificate.
    cert_warned: HashMap<&'static str, (i64, u64)>,
}

impl Status {
    pub fn new() -> Status {
        Status {
            started: clock::unix_secs(SystemTime::now()),
            reloaded_at: 0,
            reload_error: None,
            cert_warned: HashMap::new(),
        }
    }

    /// A SIGHUP was handled now: applied, or refused for `error`.
    pub fn reloaded(&mut self, error: Option<String>) {
        self.reload_error = error.map(|e| e.trim().to_string());
        self.reloaded_at = clock::unix_millis();
    }

    /// Writes the snapshot of `v` (and the metrics textfile when `metrics_dir` is set); a
    /// failed write is logged through `limit_log`, once a minute at most.
    pub fn write(&mut self, v: View, limit_log: &mut LimitLog) {
        let now = clock::unix_secs(SystemTime::now());
        for src in v.sources.iter_mut() {
            src.counters.sample(now);
        }
        let value = self.json(&v, now);
        let path = status::snapshot_path(&v.config.collector.run_dir, v.instance);
        if let Err(e) = status::write_atomically(&path, &value) {
            limit_log.hit(usize::MAX, "status", || {
                format!("{}: cannot write status: {e}", path.display())
            });
        }
        for line in status::expiry_warnings(&value, &mut self.cert_warned, now) {
            log::warn!("{line}");
        }
        if let Some(dir) = &v.config.collector.metrics_dir {
            // The same small write as the snapshot's, for node_exporter's textfile collector.
            let text = crate::metrics::render(&value);
            if let Err(e) = crate::metrics::write_textfile(dir, v.instance, &text) {
                limit_log.hit(usize::MAX, "metrics", || {
                    format!("{}: cannot write metrics: {e}", dir.display())
                });
            }
        }
    }

    fn json(&self, v: &View, now: u64) -> Value {
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
            .map(|l| {
                json!({
                    "source": l.name,
                    "proto": l.proto().to_ascii_lowercase(),
                    "addr": l.addr.to_string(),
                    "port": l.addr.port(),
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
            "started": clock::rfc3339(self.started),
            "updated": now,
            "state_dir": v.config.collector.state_dir.display().to_string(),
            "disk": { "free_bytes": v.disk_free, "total_bytes": v.disk_total, "spool_bytes": spool_bytes, "full": v.disk_full, "min_free_bytes": v.config.spool.min_free_bytes, "max_spool_bytes": v.config.spool.max_spool_bytes },
            "connections": v.connections,
            "pending_bytes": v.pending_bytes,
            "critical_after_secs": v.config.delivery.critical_after.as_secs(),
            "api": crate::deliver::tally::API.json(),
            "reloaded_at": self.reloaded_at,
            "reload_error": self.reload_error,
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
            "metrics_listen": v.metrics_listen,
        })
    }
}

/// Sets each source's `udp_kernel` drops to what the kernel counted on its UDP sockets.
pub fn count_udp_drops(listeners: &Listeners, sources: &mut [SourceState]) {
    let table = udp_drops();
    let mut per_source = vec![None; sources.len()];
    for l in listeners.iter() {
        if let Socket::Udp(u) = &l.socket {
            let Ok(st) = nix::sys::stat::fstat(u.as_raw_fd()) else {
                continue;
            };
            if let Some(d) = table.get(&st.st_ino) {
                *per_source[l.source].get_or_insert(0) += d;
            }
        }
    }
    for (src, d) in sources.iter_mut().zip(per_source) {
        if let Some(d) = d {
            src.counters.set_dropped(Drop::UdpKernel, d);
        }
    }
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
fn udp_drops() -> HashMap<u64, u64> {
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
    use crate::testing::fresh_dir;
    use mio::Poll;

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

    /// The snapshot `status` writes for `listeners` under `config`, read back.
    fn written(status: &mut Status, config: &Config, listeners: &Listeners) -> Value {
        let view = View {
            instance: "514",
            config,
            running: true,
            sources: &mut [],
            listeners,
            disk_free: 7,
            disk_total: 9,
            disk_full: false,
            connections: 3,
            pending_bytes: 5,
            tls: None,
            ftp: None,
            metrics_listen: json!("off"),
        };
        status.write(view, &mut LimitLog::default());
        let path = status::snapshot_path(&config.collector.run_dir, "514");
        status::read_snapshot(&path).unwrap()
    }

    #[test]
    fn the_snapshot_says_the_last_reload_and_the_listeners() {
        let dir = fresh_dir("snapshot-status");
        std::fs::create_dir_all(dir.join("run")).unwrap();
        std::fs::create_dir_all(dir.join("metrics")).unwrap();
        let ini = format!(
            "[collector]\nstate_dir = {0}/state\nrun_dir = {0}/run\nmetrics_dir = {0}/metrics\n\
             [source a]\nformat = SQUID\nreceiver = syslog-tcp\nport = 0\nlisten = 127.0.0.1\n",
            dir.display()
        );
        let config = crate::config::parse_str(&ini, &dir.join("lc.ini")).unwrap();
        let poll = Poll::new().unwrap();
        let mut listeners = Listeners::default();
        let bound = super::super::listeners::bind(&config.sources[0], 1 << 16).unwrap();
        let addr = bound[0].addr;
        listeners.serve(poll.registry(), 0, bound).unwrap();
        let mut status = Status::new();

        let v = written(&mut status, &config, &listeners);
        assert_eq!(
            (&v["running"], &v["reloaded_at"], &v["reload_error"]),
            (&json!(true), &json!(0), &Value::Null)
        );
        assert_eq!(
            v["listeners"],
            json!([{"source": "a", "proto": "tcp", "addr": addr.to_string(), "port": addr.port()}])
        );
        assert_eq!(
            (&v["connections"], &v["pending_bytes"], &v["metrics_listen"]),
            (&json!(3), &json!(5), &json!("off"))
        );
        assert_eq!(v["disk"]["free_bytes"], 7);
        assert!(dir.join("metrics/lc_514.prom").exists());

        status.reloaded(Some("source a: cannot bind TCP\n".into()));
        let v = written(&mut status, &config, &listeners);
        assert_eq!(v["reload_error"], "source a: cannot bind TCP");
        let at = v["reloaded_at"].as_u64().unwrap();
        assert!(at > 0);

        status.reloaded(None);
        let v = written(&mut status, &config, &listeners);
        assert_eq!(v["reload_error"], Value::Null);
        assert!(v["reloaded_at"].as_u64().unwrap() >= at);
    }
}
