//! The `lc status` table: snapshots (as `read_all` returns them) and `now` in, text out,
//! 120 columns unless `-v`. Pure.

use serde_json::{Map, Value};

use super::expiry::{expiry, Expiry};
use crate::clock;

/// How `lc status` shows the snapshots.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-v`: every counter, listeners, whole error texts.
    pub verbose: bool,
    /// What is wrong with the config file, when it does not validate (shown first).
    pub config_error: Option<String>,
}

/// The table's width without `-v`.
pub const WIDTH: usize = 120;

/// The `lc status` table: fits `WIDTH` columns unless `verbose`.
pub fn render(snapshots: &[Value], now: u64, opts: &Options) -> String {
    let mut out = String::new();
    if let Some(e) = &opts.config_error {
        let mut first = e.lines().next().unwrap_or("").to_string();
        if e.lines().count() > 1 {
            first.push_str(&format!(" (and {} more)", e.lines().count() - 1));
        }
        out.push_str(&fit(
            &format!("config has errors; shown from the snapshots (`lc config check` lists them): {first}"), opts.verbose));
        out.push('\n');
    }
    if snapshots.is_empty() {
        out.push_str("no lc instance has written a status snapshot here\n");
        return out;
    }
    for s in snapshots {
        if s["alive"].as_bool() != Some(true) {
            out.push_str(&fit(&stopped_line(s, now), opts.verbose));
            out.push('\n');
            continue;
        }
        out.push_str(&format!(
            "instance {}: running, pid {}, up since {}\n",
            str_of(&s["instance"]),
            s["pid"],
            str_of(&s["started"])
        ));
        out.push_str(&disk_line(s));
        if let Some(tls) = s["tls"].as_object() {
            out.push_str(&fit(
                &format!(
                    "  syslog-tls: {} {}; client CA {}",
                    tls.get("subject").and_then(Value::as_str).unwrap_or("?"),
                    until(&tls["not_after"], now),
                    until(&tls["client_ca_not_after"], now),
                ),
                opts.verbose,
            ));
            out.push('\n');
        }
        if let Some(ftp) = s["ftp"].as_object() {
            out.push_str(&fit(&ftp_line(ftp, now), opts.verbose));
            out.push('\n');
        }
        if let Some(e) = s["reload_error"].as_str() {
            out.push_str(&fit(&format!("  last reload refused: {e}"), opts.verbose));
            out.push('\n');
        }
        if opts.verbose {
            if let Some(line) = api_line(&s["api"]) {
                out.push_str(&line);
                out.push('\n');
            }
            if let Some(m) = s["metrics_listen"].as_object() {
                out.push_str(&format!(
                    "  metrics_listen {}: {}\n",
                    m.get("addr").and_then(Value::as_str).unwrap_or("?"),
                    if m.get("serving") == Some(&Value::Bool(true)) {
                        "served by this instance, for every instance"
                    } else {
                        "served by another instance (this one takes over when it stops)"
                    }
                ));
            }
            for l in s["listeners"].as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "  listening {} {} for {}\n",
                    str_of(&l["proto"]),
                    str_of(&l["addr"]),
                    str_of(&l["source"])
                ));
            }
        }
        out.push_str(
            format!(
                "  {:<20} {:<12} {:<9} {:>10} {:>6} {:>8} {:>5} {:<18} {}",
                "SOURCE",
                "STATE",
                "RECEIVER",
                "RECEIVED",
                "/MIN",
                "LAST RECV",
                "CONNS",
                "BACKLOG",
                "DELIVERY"
            )
            .trim_end(),
        );
        out.push('\n');
        for src in s["sources"].as_array().into_iter().flatten() {
            out.push_str(&source_lines(src, now, opts.verbose));
        }
    }
    out
}

/// A stopped instance in one line: its sources may be served by another now (a port
/// moved), and its table would list them twice. One that died (no clean stop) says so.
fn stopped_line(s: &Value, now: u64) -> String {
    let sources: Vec<String> = s["sources"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|src| str_of(&src["name"]))
        .collect();
    format!(
        "instance {}: {} (last snapshot {} ago; sources then: {})",
        str_of(&s["instance"]),
        if s["running"].as_bool() == Some(true) {
            "DIED (no clean stop; its pid file is not held)"
        } else {
            "not running"
        },
        clock::human_age(now.saturating_sub(s["updated"].as_u64().unwrap_or(0))),
        if sources.is_empty() {
            "none".to_string()
        } else {
            sources.join(", ")
        }
    )
}

/// The state directory's line: spool, free space, and whether the disk is full.
fn disk_line(s: &Value) -> String {
    let disk = &s["disk"];
    let mut line = format!(
        "  disk {}: spool {}, free {} of {}",
        str_of(&s["state_dir"]),
        bytes(disk["spool_bytes"].as_u64()),
        bytes(disk["free_bytes"].as_u64()),
        bytes(disk["total_bytes"].as_u64()),
    );
    if disk["full"].as_bool() == Some(true) {
        line.push_str(&format!(
            "\n  DISK FULL (free below min_free_bytes {}, or writes fail): stream and FTP receivers paused, UDP dropped",
            bytes(disk["min_free_bytes"].as_u64())
        ));
    }
    line.push('\n');
    line
}

/// `until 2027-01-01T00:00:00Z`, with `EXPIRED` or `expires in 5d` when it matters.
fn until(v: &Value, now: u64) -> String {
    let Some(t) = v.as_i64() else {
        return "-".into();
    };
    let at = clock::rfc3339(t.max(0) as u64);
    match expiry(t, now) {
        Expiry::Expired => format!("EXPIRED {at}"),
        Expiry::Within(days) => format!("until {at} (expires in {})", clock::human_age(days)),
        Expiry::Fine => format!("until {at}"),
    }
}

/// One source's row, and the lines under it: paused, delivery failing, an error since the
/// last delivery; with `verbose` every counter too.
fn source_lines(src: &Value, now: u64, verbose: bool) -> String {
    let ago = |t: u64| {
        if t == 0 {
            "never".to_string()
        } else {
            format!("{} ago", clock::human_age(now.saturating_sub(t)))
        }
    };
    let name = str_of(&src["name"]);
    let shown_name = if verbose || name.chars().count() <= 20 {
        name.clone()
    } else {
        format!("{}~", name.chars().take(19).collect::<String>())
    };
    let ftp = matches!(str_of(&src["receiver"]).as_str(), "ftp" | "ftps");
    let n = |k: &str| src[k].as_u64().unwrap_or(0);
    let last_delivery = n("last_delivery");
    let failing = n("failing_since");
    let delivery_state =
        src["delivery"]["state"]
            .as_str()
            .unwrap_or(if failing > 0 { "failing" } else { "ok" });
    let delivery = match delivery_state {
        "ok" if last_delivery == 0 => "none yet".to_string(),
        "ok" => format!("ok {}", ago(last_delivery)),
        state => format!("{state} {}", clock::human_age(now.saturating_sub(failing))),
    };
    let row = format!(
        "  {:<20} {:<12} {:<9} {:>10} {:>6} {:>8} {:>5} {:<18} {}",
        shown_name,
        str_of(&src["state"]),
        if ftp {
            str_of(&src["receiver"])
        } else {
            format!(
                "{}:{}",
                str_of(&src["receiver"]).trim_start_matches("syslog-"),
                src["port"]
            )
        },
        if ftp {
            format!("{}f", n("files"))
        } else {
            n("messages").to_string()
        },
        n("rate_per_min"),
        match n("last_received") {
            0 => "never".to_string(),
            t => clock::human_age(now.saturating_sub(t)),
        },
        n("connections"),
        backlog(&src["backlog"], now),
        delivery,
    );
    let mut out = fit(row.trim_end(), verbose);
    out.push('\n');
    let mut sub = |line: String| {
        out.push_str(&fit(&format!("      {line}"), verbose));
        out.push('\n');
    };
    if let Some(p) = src["paused"].as_str() {
        sub(if ftp || str_of(&src["receiver"]) != "syslog-udp" {
            format!("paused: {p} (senders wait)")
        } else {
            format!("dropping: {p} (counted as disk_full)")
        });
    }
    let error = src["last_error"]["error"].as_str();
    let error_at = src["last_error"]["at"].as_u64().unwrap_or(0);
    if let Some(e) = error {
        if failing > 0 {
            sub(format!(
                "delivery failing since {} ({}), {} files ({}) waiting: {e}",
                clock::rfc3339(failing),
                clock::human_age(now.saturating_sub(failing)),
                n_of(&src["backlog"]["files"]),
                bytes(src["backlog"]["bytes"].as_u64()),
            ));
        } else if error_at >= last_delivery {
            sub(format!("last error {}: {e}", ago(error_at)));
        } else if verbose {
            sub(format!(
                "last error {} (delivered since, {}): {e}",
                clock::rfc3339(error_at),
                ago(error_at)
            ));
        }
    }
    if let Some(line) = format_line(src, verbose) {
        sub(line.trim().to_string());
    }
    let detail = nonzero(&src["drops"]);
    if !detail.is_empty() || n("truncated") > 0 {
        sub(format!(
            "drops: {} truncated={}",
            detail.join(" "),
            n("truncated")
        ));
    }
    if verbose {
        sub(format!(
            "received {} messages, {} files, {} ({} in the last minute), last {}; connections {} (accepted {}, idle closed {})",
            n("messages"),
            n("files"),
            bytes(Some(n("bytes"))),
            n("rate_per_min"),
            match n("last_received") {
                0 => "never".to_string(),
                t => clock::rfc3339(t),
            },
            n("connections"),
            n("accepted"),
            n("idle_closed"),
        ));
        let d = &src["delivery"];
        sub(format!(
            "delivered {} files, {}; last success {}; attempts {}, failures {} transient, {} needing an operator",
            n("delivered_files"),
            bytes(Some(n("delivered_bytes"))),
            match last_delivery {
                0 => "never".to_string(),
                t => clock::rfc3339(t),
            },
            d["attempts"].as_u64().unwrap_or(0),
            d["failures"]["transient"].as_u64().unwrap_or(0),
            d["failures"]["permanent"].as_u64().unwrap_or(0),
        ));
    }
    out
}

/// `line` cut to `WIDTH` columns (with `…`) unless `verbose`.
fn fit(line: &str, verbose: bool) -> String {
    let room = WIDTH;
    if verbose || line.chars().count() <= room {
        line.to_string()
    } else {
        let mut cut: String = line.chars().take(room - 1).collect();
        cut.push('…');
        cut
    }
}

/// A source's format check, when it warns: its rate and what the lines look like instead;
/// with `verbose`, the rate of every checked source.
fn format_line(src: &Value, verbose: bool) -> Option<String> {
    let f = &src["format_check"];
    match f["state"].as_str() {
        Some("warning") => {}
        Some(state @ ("ok" | "learning")) if verbose => {
            let sampled = match f["sample_stride"].as_u64() {
                Some(n) if n > 1 => format!(" (about one line in {n} checked)"),
                _ => String::new(),
            };
            let pct = f["match_pct"]
                .as_u64()
                .map_or_else(|| "-".to_string(), |p| p.to_string());
            return Some(format!(
                "      format {state}: {pct} % of the last {} lines look like {}{sampled}\n",
                f["lines"],
                str_of(&src["format"]),
            ));
        }
        _ => return None,
    }
    let like = match (f["looks_like"].as_str(), f["looks_like_pct"].as_u64()) {
        (Some(name), Some(p)) => format!("; {p} % look like {name}"),
        (None, Some(p)) => format!("; {p} % look like no format lc knows"),
        _ => String::new(),
    };
    Some(format!(
        "      format warning: {} % of the last {} lines look like {} ({} % needed){like}\n",
        f["match_pct"],
        f["lines"],
        str_of(&src["format"]),
        f["warn_below"],
    ))
}

/// `key=n` for each non-zero counter of an object.
fn nonzero(counters: &Value) -> Vec<String> {
    counters
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// The instance's API calls (`-v`): per endpoint called, its calls, 429s and other failures;
/// the waits for the host's budget. `None` before any call.
fn api_line(api: &Value) -> Option<String> {
    let mut parts = Vec::new();
    for (call, by) in api["calls"].as_object().into_iter().flatten() {
        let n = |k: &str| by[k].as_u64().unwrap_or(0);
        let total = n("ok") + n("rate_limited") + n("failed");
        if total > 0 {
            parts.push(format!(
                "{call} {total} ({} 429, {} failed)",
                n("rate_limited"),
                n("failed")
            ));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!(
        "  api calls: {}; waited for the budget {} times ({}s)",
        parts.join(", "),
        api["budget_waits"].as_u64().unwrap_or(0),
        api["budget_wait_seconds"].as_f64().unwrap_or(0.0)
    ))
}

/// The FTP server's line: where it listens, TLS, sessions, logins and refusals.
fn ftp_line(ftp: &Map<String, Value>, now: u64) -> String {
    let listening: Vec<String> = ftp["listening"]
        .as_array()
        .into_iter()
        .flatten()
        .map(str_of)
        .collect();
    let tls = match ftp["tls"].as_object() {
        Some(t) => format!(
            "tls {} with {} {}",
            str_of(&ftp["tls_mode"]),
            t.get("subject").map(str_of).unwrap_or_default(),
            until(t.get("not_after").unwrap_or(&Value::Null), now)
        ),
        None => "no FTPS certificate".to_string(),
    };
    let refused = nonzero(&ftp["refused"]);
    format!(
        "  ftp: listening {} ({tls}); {} sessions, {} logins, {} failed, {} lockouts, {} uploads aborted{}",
        listening.join(", "),
        ftp["sessions"],
        ftp["logins"],
        ftp["failed_logins"],
        ftp["lockouts"],
        ftp["aborted"],
        if refused.is_empty() {
            String::new()
        } else {
            format!("; refused: {}", refused.join(" "))
        }
    )
}

/// `3f/1.2M/5m`: files, bytes, age of the oldest.
fn backlog(b: &Value, _now: u64) -> String {
    let files = b["files"].as_u64().unwrap_or(0);
    if files == 0 {
        return "0".into();
    }
    format!(
        "{files}f/{}/{}",
        bytes(b["bytes"].as_u64()),
        clock::human_age(b["oldest"].as_u64().unwrap_or(0))
    )
}

fn n_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

pub(super) fn str_of(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// `1.5G`, `32M`, `800K`, `12B`.
pub fn bytes(n: Option<u64>) -> String {
    let Some(n) = n else { return "?".into() };
    const UNITS: [(&str, u64); 4] = [
        ("T", 1 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ];
    for (u, size) in UNITS {
        if n >= size {
            return format!("{:.1}{u}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{instance, source, NOW};
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stopped_instance_is_one_line() {
        let snap = json!({
            "instance": "21", "alive": false, "running": false, "updated": 1000,
            "sources": [{ "name": "squid" }, { "name": "bluecoat" }],
        });
        assert_eq!(
            render(&[snap], 1000 + 300, &Options::default()),
            "instance 21: not running (last snapshot 5m0s ago; sources then: squid, bluecoat)\n"
        );
    }

    #[track_caller]
    fn check_render(snapshots: &[Value], verbose: bool, has: &[&str], lacks: &[&str]) {
        let opts = Options {
            verbose,
            config_error: None,
        };
        let out = render(snapshots, NOW, &opts);
        if !verbose {
            for l in out.lines() {
                assert!(
                    l.chars().count() <= WIDTH,
                    "wider than {WIDTH}: {l:?}\n{out}"
                );
            }
        }
        for h in has {
            assert!(out.contains(h), "{h:?} not in:\n{out}");
        }
        for l in lacks {
            assert!(!out.contains(l), "{l:?} in:\n{out}");
        }
    }

    #[test]
    fn the_table_tells_the_truth_in_120_columns() {
        let failing = source(
            "paloalto-datacenter-east-1",
            json!({
                "failing_since": NOW - 16 * 60, "last_delivery": NOW - 3600,
                "delivery": { "state": "failing" },
                "backlog": { "files": 4, "bytes": 5 << 20, "oldest": 960 },
                "last_error": { "at": NOW - 30, "error": format!("delivery: upload_url at x: 503 {}", "very long ".repeat(20)), "permanent": false },
            }),
        );
        let recovered = source(
            "asa",
            json!({ "last_error": { "at": NOW - 7200, "error": "delivery: upload_url: 503", "permanent": false } }),
        );
        let full = instance(
            "601",
            json!({ "disk": { "full": true, "free_bytes": 100, "total_bytes": 1000, "spool_bytes": 10, "min_free_bytes": 1u64 << 30 } }),
            json!([source(
                "squid",
                json!({ "paused": "disk full", "messages": 0, "rate_per_min": 0 })
            )]),
        );
        let snaps = [
            instance("514", json!({}), json!([failing, recovered])),
            full,
        ];
        check_render(
            &snaps,
            false,
            &[
                "RECEIVED   /MIN LAST RECV",
                "paloalto-datacenter~ Healthy",
                "failing 16m0s",
                "delivery failing since",
                "4 files (5.0M) waiting",
                "ok 2m0s ago",
                "DISK FULL (free below min_free_bytes 1.0G",
                "paused: disk full (senders wait)",
                "123456    600       2s",
            ],
            // A recovered error is not in the table, only under -v, with its time.
            &["upload_url: 503\n", "Connected"],
        );
        check_render(
            &snaps,
            true,
            &[
                "paloalto-datacenter-east-1 ",
                "last error 2027-01-15T06:00:00Z (delivered since, 2h0m ago): delivery: upload_url: 503",
                "attempts 10",
                "very long very long very long very long very long very long very long very long",
            ],
            &[],
        );
        let died = json!({ "instance": "21", "alive": false, "running": true, "updated": NOW - 60, "sources": [] });
        check_render(&[died], false, &["instance 21: DIED"], &[]);
    }

    #[test]
    fn a_format_warning_is_a_line_under_its_source() {
        let src = json!({
            "format": "CISCO_ASA_SYSLOG",
            "format_check": { "state": "warning", "match_pct": 3, "lines": 150, "warn_below": 90,
                              "looks_like": "FortiGate", "looks_like_pct": 97 },
        });
        assert_eq!(
            format_line(&src, false).unwrap(),
            "      format warning: 3 % of the last 150 lines look like CISCO_ASA_SYSLOG (90 % needed); 97 % look like FortiGate\n"
        );
        let ok = json!({ "format_check": { "state": "ok" } });
        assert_eq!(format_line(&ok, false), None);
        assert_eq!(format_line(&json!({}), false), None);
        let busy = json!({
            "format": "FORTIGATE_SYSLOG",
            "format_check": { "state": "ok", "match_pct": 99, "lines": 10000, "sample_stride": 40 },
        });
        assert_eq!(
            format_line(&busy, true).unwrap(),
            "      format ok: 99 % of the last 10000 lines look like FORTIGATE_SYSLOG (about one line in 40 checked)\n"
        );
        let unchecked = json!({ "format_check": { "state": "unchecked" } });
        assert_eq!(format_line(&unchecked, true), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(Some(12)), "12B");
        assert_eq!(bytes(Some(1536)), "1.5K");
        assert_eq!(bytes(Some(32 << 20)), "32.0M");
    }
}
