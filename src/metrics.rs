//! Prometheus metrics: one instance's status snapshot in the text exposition format (0.0.4).
//!
//! `render` is pure: it reads the snapshot JSON the loop has just built (`server/snapshot.rs`),
//! so the metrics say exactly what `lc status` says, no counter kept twice. The loop writes the
//! text into `[collector] metrics_dir` as `lc_INSTANCE.prom` with `write_textfile` (a temp file
//! then a rename, so node_exporter's textfile collector never reads half a file) each time it
//! writes the snapshot. Names follow Prometheus's conventions: `lc_` prefix, `_total` counters, base
//! units (bytes, seconds, timestamps in unix seconds); the instance is the label `lc_instance`
//! (`instance` is the scraper's own).

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::status::Drop;

/// The file `lc run` writes in `metrics_dir` for `instance`.
pub fn textfile_path(dir: &Path, instance: &str) -> PathBuf {
    dir.join(format!("lc_{instance}.prom"))
}

/// Writes `text` as `dir/lc_INSTANCE.prom` atomically; the temp file's name does not end in
/// `.prom`, so the textfile collector skips it.
pub fn write_textfile(dir: &Path, instance: &str, text: &str) -> io::Result<()> {
    let path = textfile_path(dir, instance);
    let tmp = dir.join(format!(".lc_{instance}.prom.tmp"));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    drop(f);
    fs::rename(&tmp, &path)
}

/// One metric family: its samples are gathered first, then written under one HELP/TYPE.
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    samples: Vec<(String, f64)>,
}

/// The families of one render, in the order first used.
#[derive(Default)]
struct Families(Vec<Family>);

impl Families {
    fn add(
        &mut self,
        name: &'static str,
        kind: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let i = match self.0.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.0.push(Family {
                    name,
                    kind,
                    help,
                    samples: Vec::new(),
                });
                self.0.len() - 1
            }
        };
        let mut l = String::new();
        for (k, v) in labels {
            if !l.is_empty() {
                l.push(',');
            }
            let _ = write!(l, "{k}=\"{}\"", escape(v));
        }
        self.0[i].samples.push((l, value));
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.0 {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            for (labels, v) in &f.samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "{} {}", f.name, number(*v));
                } else {
                    let _ = writeln!(out, "{}{{{labels}}} {}", f.name, number(*v));
                }
            }
        }
        out
    }
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Integers without a fraction (counters stay exact up to 2^53).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0)
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// The metrics of one instance's snapshot (as `server/snapshot.rs` builds it).
pub fn render(s: &Value) -> String {
    let mut m = Families::default();
    instance(&mut m, s, None);
    m.text()
}

/// The metrics of every instance on the host, from the snapshots in run_dir as
/// `status::read_all` returns them (with `alive`) at `now`: what `metrics_listen` serves.
/// One family's samples of all instances stay under one HELP/TYPE, as the format requires.
pub fn render_all(snapshots: &[Value], now: u64) -> String {
    let mut m = Families::default();
    for s in snapshots {
        instance(&mut m, s, Some(now));
    }
    m.text()
}

/// One instance's families; with `now`, the snapshot was read from run_dir (its `alive` says
/// whether the instance runs, and an old one is flagged stale).
fn instance(m: &mut Families, s: &Value, now: Option<u64>) {
    let inst = s["instance"].as_str().unwrap_or("");
    let i = [("lc_instance", inst)];
    let version = s["version"].as_str().unwrap_or("");
    m.add(
        "lc_build_info",
        "gauge",
        "The lc build serving this instance (always 1).",
        &[("lc_instance", inst), ("version", version)],
        1.0,
    );
    m.add(
        "lc_up",
        "gauge",
        "Whether the instance is running (0 after a clean stop, or when it died).",
        &i,
        flag(
            s["alive"]
                .as_bool()
                .unwrap_or(s["running"].as_bool() == Some(true)),
        ),
    );
    if let Some(now) = now {
        m.add(
            "lc_snapshot_stale",
            "gauge",
            "1 when a running instance has not written its status for a while (its loop may be stuck).",
            &i,
            flag(crate::status::stale(s, now)),
        );
    }
    m.add(
        "lc_snapshot_timestamp_seconds",
        "gauge",
        "When the instance last wrote its status.",
        &i,
        num(&s["updated"]),
    );
    let disk = &s["disk"];
    for (name, help, v) in [
        (
            "lc_disk_free_bytes",
            "Free space of the state directory's file system.",
            &disk["free_bytes"],
        ),
        (
            "lc_disk_size_bytes",
            "Size of the state directory's file system.",
            &disk["total_bytes"],
        ),
        (
            "lc_spool_bytes",
            "Bytes in this instance's spools (waiting for delivery).",
            &disk["spool_bytes"],
        ),
        (
            "lc_disk_min_free_bytes",
            "min_free_bytes: below it the disk counts as full.",
            &disk["min_free_bytes"],
        ),
    ] {
        m.add(name, "gauge", help, &i, num(v));
    }
    m.add(
        "lc_disk_full",
        "gauge",
        "1 while the disk is full or not writable (stream receivers paused, UDP dropped).",
        &i,
        flag(disk["full"].as_bool() == Some(true)),
    );
    m.add(
        "lc_connections",
        "gauge",
        "Open syslog connections of the instance.",
        &i,
        num(&s["connections"]),
    );
    m.add(
        "lc_pending_bytes",
        "gauge",
        "Bytes of incomplete frames held by stream connections.",
        &i,
        num(&s["pending_bytes"]),
    );
    m.add(
        "lc_reload_timestamp_seconds",
        "gauge",
        "When the last reload was applied (0 = none).",
        &i,
        num(&s["reloaded_at"]),
    );
    m.add(
        "lc_reload_refused",
        "gauge",
        "1 if the last reload was refused (the instance runs its previous config).",
        &i,
        flag(s["reload_error"].is_string()),
    );
    let mut certs = vec![
        ("syslog-tls", &s["tls"]["not_after"]),
        ("syslog-tls-client-ca", &s["tls"]["client_ca_not_after"]),
        ("ftps", &s["ftp"]["tls"]["not_after"]),
    ];
    certs.retain(|(_, v)| v.is_number());
    for (cert, v) in certs {
        m.add(
            "lc_certificate_expiry_timestamp_seconds",
            "gauge",
            "When a certificate in use expires (notAfter).",
            &[("lc_instance", inst), ("cert", cert)],
            num(v),
        );
    }
    if let Some(ftp) = s["ftp"].as_object() {
        let f = |k: &str| num(ftp.get(k).unwrap_or(&Value::Null));
        m.add(
            "lc_ftp_sessions",
            "gauge",
            "Open FTP control sessions.",
            &i,
            f("sessions"),
        );
        for (name, help, key) in [
            ("lc_ftp_logins_total", "Successful FTP logins.", "logins"),
            (
                "lc_ftp_failed_logins_total",
                "Failed FTP logins.",
                "failed_logins",
            ),
            (
                "lc_ftp_lockouts_total",
                "FTP addresses locked out.",
                "lockouts",
            ),
            (
                "lc_ftp_uploads_aborted_total",
                "FTP uploads that did not end cleanly.",
                "aborted",
            ),
            ("lc_ftp_files_total", "FTP uploads received.", "files"),
            (
                "lc_ftp_bytes_total",
                "Bytes of FTP uploads received.",
                "bytes",
            ),
        ] {
            m.add(name, "counter", help, &i, f(key));
        }
        for (reason, v) in ftp
            .get("refused")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            m.add(
                "lc_ftp_refused_total",
                "counter",
                "FTP connections and commands refused, by reason.",
                &[("lc_instance", inst), ("reason", reason)],
                num(v),
            );
        }
    }
    if let Some(api) = s["api"].as_object() {
        api_calls(m, inst, api);
    }
    for src in s["sources"].as_array().into_iter().flatten() {
        source(m, inst, src);
    }
}

/// The Cloud Discovery API calls of the instance (`deliver::tally`).
fn api_calls(m: &mut Families, inst: &str, api: &serde_json::Map<String, Value>) {
    for (call, by) in api
        .get("calls")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for (result, n) in by.as_object().into_iter().flatten() {
            m.add(
                "lc_api_calls_total",
                "counter",
                "Cloud Discovery API calls, by endpoint and result (ok, rate_limited = 429, failed).",
                &[("lc_instance", inst), ("call", call), ("result", result)],
                num(n),
            );
        }
    }
    let i = [("lc_instance", inst)];
    let get = |k: &str| num(api.get(k).unwrap_or(&Value::Null));
    m.add(
        "lc_api_budget_waits_total",
        "counter",
        "API calls that waited for the host's api_calls_per_min budget or a 429's Retry-After.",
        &i,
        get("budget_waits"),
    );
    m.add(
        "lc_api_budget_wait_seconds_total",
        "counter",
        "Time API calls spent waiting for the host's budget.",
        &i,
        get("budget_wait_seconds"),
    );
}

fn source(m: &mut Families, inst: &str, src: &Value) {
    let name = src["name"].as_str().unwrap_or("");
    let l = [("lc_instance", inst), ("source", name)];
    let n = |k: &str| num(&src[k]);
    m.add(
        "lc_source_info",
        "gauge",
        "A source this instance serves (always 1), with its type and receiver.",
        &[
            ("lc_instance", inst),
            ("source", name),
            ("format", src["format"].as_str().unwrap_or("")),
            ("receiver", src["receiver"].as_str().unwrap_or("")),
        ],
        1.0,
    );
    for (metric, help, key) in [
        (
            "lc_source_received_messages_total",
            "Messages received and stored.",
            "messages",
        ),
        (
            "lc_source_received_files_total",
            "Files received (FTP sources).",
            "files",
        ),
        (
            "lc_source_received_bytes_total",
            "Bytes of messages received.",
            "bytes",
        ),
        (
            "lc_source_truncated_messages_total",
            "Messages cut at max_message_bytes (kept).",
            "truncated",
        ),
        (
            "lc_source_accepted_connections_total",
            "Connections accepted.",
            "accepted",
        ),
        (
            "lc_source_idle_closed_connections_total",
            "Connections closed for being idle.",
            "idle_closed",
        ),
        (
            "lc_source_delivered_files_total",
            "Files delivered.",
            "delivered_files",
        ),
        (
            "lc_source_delivered_bytes_total",
            "Bytes delivered.",
            "delivered_bytes",
        ),
    ] {
        m.add(metric, "counter", help, &l, n(key));
    }
    for d in Drop::ALL {
        m.add(
            "lc_source_dropped_total",
            "counter",
            "Messages, connections or segments dropped, by reason.",
            &[
                ("lc_instance", inst),
                ("source", name),
                ("reason", d.name()),
            ],
            num(&src["drops"][d.name()]),
        );
    }
    m.add(
        "lc_source_evicted_bytes_total",
        "counter",
        "Bytes of sealed segments evicted for max_spool_bytes or min_free_bytes.",
        &l,
        num(&src["drops"]["evicted_bytes"]),
    );
    m.add(
        "lc_source_connections",
        "gauge",
        "Open connections.",
        &l,
        n("connections"),
    );
    m.add(
        "lc_source_last_received_timestamp_seconds",
        "gauge",
        "When the source last received (0 = never).",
        &l,
        n("last_received"),
    );
    m.add(
        "lc_source_paused",
        "gauge",
        "1 while receiving is paused (stream, FTP) or dropping (UDP) for a full disk.",
        &l,
        flag(src["paused"].is_string()),
    );
    let backlog = &src["backlog"];
    m.add(
        "lc_source_backlog_files",
        "gauge",
        "Files waiting for delivery.",
        &l,
        num(&backlog["files"]),
    );
    m.add(
        "lc_source_backlog_bytes",
        "gauge",
        "Bytes waiting for delivery.",
        &l,
        num(&backlog["bytes"]),
    );
    m.add(
        "lc_source_backlog_oldest_age_seconds",
        "gauge",
        "Age of the oldest file waiting for delivery.",
        &l,
        num(&backlog["oldest"]),
    );
    let d = &src["delivery"];
    m.add(
        "lc_source_last_delivery_timestamp_seconds",
        "gauge",
        "When the source last delivered (0 = never).",
        &l,
        n("last_delivery"),
    );
    m.add(
        "lc_source_delivery_attempts_total",
        "counter",
        "Deliveries tried.",
        &l,
        num(&d["attempts"]),
    );
    for kind in ["transient", "permanent"] {
        m.add(
            "lc_source_delivery_failures_total",
            "counter",
            "Failed deliveries: transient (retried) or permanent (needs an operator).",
            &[("lc_instance", inst), ("source", name), ("kind", kind)],
            num(&d["failures"][kind]),
        );
    }
    m.add(
        "lc_source_delivery_failing_since_timestamp_seconds",
        "gauge",
        "Since when delivery fails (0 = it works).",
        &l,
        n("failing_since"),
    );
    m.add(
        "lc_source_last_error_timestamp_seconds",
        "gauge",
        "When the source's last error happened (0 = none).",
        &l,
        num(&src["last_error"]["at"]),
    );
    let f = &src["format_check"];
    if let Some(pct) = f["match_pct"].as_f64() {
        m.add(
            "lc_source_format_match_ratio",
            "gauge",
            "Share of the recent lines that look like the configured type.",
            &l,
            pct / 100.0,
        );
        m.add(
            "lc_source_format_warning",
            "gauge",
            "1 while the match ratio is below format_warn_below.",
            &l,
            flag(f["state"].as_str() == Some("warning")),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check(snapshot: Value, lines: &[&str]) {
        let text = render(&snapshot);
        for l in lines {
            assert!(text.lines().any(|x| x == *l), "{l:?} not in:\n{text}");
        }
        // Every family once, HELP then TYPE, samples right after.
        let mut seen = std::collections::HashSet::new();
        for l in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = l.split(' ').nth(2).unwrap();
            assert!(seen.insert(name.to_string()), "{name} twice:\n{text}");
        }
    }

    #[test]
    fn a_snapshot_as_metrics() {
        let snap = json!({
            "instance": "514", "version": "1.2.0", "running": true, "updated": 1_800_000_000u64,
            "disk": { "free_bytes": 100, "total_bytes": 1000, "spool_bytes": 10, "full": true, "min_free_bytes": 500 },
            "tls": { "not_after": 1_900_000_000u64, "client_ca_not_after": null },
            "api": { "calls": { "upload_url": { "ok": 4, "rate_limited": 1, "failed": 0 } },
                     "budget_waits": 2, "budget_wait_seconds": 1.25 },
            "sources": [{
                "name": "fw \"a\"", "format": "CISCO_ASA_SYSLOG", "receiver": "syslog-udp",
                "messages": 12, "bytes": 3000, "drops": { "not_allowed": 2, "evicted_bytes": 7 },
                "paused": "disk full", "backlog": { "files": 1, "bytes": 99, "oldest": 30 },
                "delivery": { "attempts": 4, "failures": { "transient": 3, "permanent": 0 } },
                "failing_since": 1_799_999_000u64,
                "format_check": { "state": "warning", "match_pct": 3 },
            }],
        });
        check(
            snap,
            &[
                "# TYPE lc_build_info gauge",
                "lc_build_info{lc_instance=\"514\",version=\"1.2.0\"} 1",
                "lc_disk_full{lc_instance=\"514\"} 1",
                "lc_certificate_expiry_timestamp_seconds{lc_instance=\"514\",cert=\"syslog-tls\"} 1900000000",
                "# TYPE lc_api_calls_total counter",
                "lc_api_calls_total{lc_instance=\"514\",call=\"upload_url\",result=\"rate_limited\"} 1",
                "lc_api_calls_total{lc_instance=\"514\",call=\"upload_url\",result=\"ok\"} 4",
                "lc_api_budget_waits_total{lc_instance=\"514\"} 2",
                "lc_api_budget_wait_seconds_total{lc_instance=\"514\"} 1.25",
                "# TYPE lc_source_received_messages_total counter",
                "lc_source_received_messages_total{lc_instance=\"514\",source=\"fw \\\"a\\\"\"} 12",
                "lc_source_dropped_total{lc_instance=\"514\",source=\"fw \\\"a\\\"\",reason=\"not_allowed\"} 2",
                "lc_source_dropped_total{lc_instance=\"514\",source=\"fw \\\"a\\\"\",reason=\"udp_kernel\"} 0",
                "lc_source_evicted_bytes_total{lc_instance=\"514\",source=\"fw \\\"a\\\"\"} 7",
                "lc_source_paused{lc_instance=\"514\",source=\"fw \\\"a\\\"\"} 1",
                "lc_source_delivery_failures_total{lc_instance=\"514\",source=\"fw \\\"a\\\"\",kind=\"transient\"} 3",
                "lc_source_delivery_failing_since_timestamp_seconds{lc_instance=\"514\",source=\"fw \\\"a\\\"\"} 1799999000",
                "lc_source_format_match_ratio{lc_instance=\"514\",source=\"fw \\\"a\\\"\"} 0.03",
            ],
        );
        // Nothing but the instance's own lines for an empty snapshot; no client CA line.
        let text = render(&json!({ "instance": "21" }));
        assert!(!text.contains("cert="), "{text}");
        assert!(text.contains("lc_up{lc_instance=\"21\"} 0"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.5), "0.5");
    }
}
