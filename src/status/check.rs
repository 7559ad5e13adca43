//! `lc status --check`: snapshots and `now` to a monitoring level (OK, WARNING, CRITICAL,
//! UNKNOWN) and one line of reasons, as Nagios-style plugins report. Pure.

use serde_json::Value;

use super::expiry::{expiry, Expiry};
use super::render::{bytes, str_of};
use crate::clock;

/// The outcome of `lc status --check`, as monitoring plugins report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }
}

/// Delivery failing this long is critical (shorter: a warning): `[delivery]
/// critical_after_secs`'s default; each snapshot says its instance's (`critical_after_secs`).
pub const FAILING_CRITICAL_SECS: u64 = 15 * 60;
/// A backlog whose oldest file waits this long is a warning (delivery falls behind).
pub const BACKLOG_WARN_SECS: u64 = 3600;

/// A running instance rewrites its snapshot every 2 s; one this much older means its loop is
/// stuck (or the disk of run_dir refuses writes).
pub const STALE_SECS: u64 = 60;

/// Whether `s` (as `read_all` returns it) is a live instance's snapshot not rewritten for
/// `STALE_SECS`.
pub fn stale(s: &Value, now: u64) -> bool {
    s["alive"].as_bool() == Some(true)
        && now.saturating_sub(s["updated"].as_u64().unwrap_or(0)) > STALE_SECS
}

/// `lc status --check`: the level and one line of reasons (the worst first), from the
/// snapshots (`read_all`, with `alive`) at `now`. Pure, table-tested.
pub fn check(snapshots: &[Value], now: u64) -> (Level, String) {
    if snapshots.is_empty() {
        return (
            Level::Unknown,
            "lc UNKNOWN: no lc instance has written a status snapshot here".into(),
        );
    }
    let mut found: Vec<(Level, String)> = Vec::new();
    let mut sources = 0;
    let mut running = 0;
    for s in snapshots {
        let instance = str_of(&s["instance"]);
        if s["alive"].as_bool() != Some(true) {
            if s["running"].as_bool() == Some(true) {
                found.push((
                    Level::Critical,
                    format!(
                        "instance {instance} died (pid file not held; last snapshot {} ago)",
                        clock::human_age(now.saturating_sub(s["updated"].as_u64().unwrap_or(0)))
                    ),
                ));
            }
            continue;
        }
        running += 1;
        let critical_after = s["critical_after_secs"]
            .as_u64()
            .unwrap_or(FAILING_CRITICAL_SECS);
        if stale(s, now) {
            found.push((
                Level::Critical,
                format!(
                    "instance {instance}: status not updated for {} (the instance may be stuck)",
                    clock::human_age(now.saturating_sub(s["updated"].as_u64().unwrap_or(0)))
                ),
            ));
        }
        if s["disk"]["full"].as_bool() == Some(true) {
            found.push((
                Level::Critical,
                format!(
                    "instance {instance}: disk {} full (free {})",
                    str_of(&s["state_dir"]),
                    bytes(s["disk"]["free_bytes"].as_u64())
                ),
            ));
        }
        let mut certs = vec![
            ("syslog-tls certificate", &s["tls"]["not_after"]),
            ("syslog-tls client CA", &s["tls"]["client_ca_not_after"]),
        ];
        if let Some(t) = s["ftp"]["tls"].as_object() {
            certs.push((
                "FTPS certificate",
                t.get("not_after").unwrap_or(&Value::Null),
            ));
        }
        for (what, at) in certs {
            let Some(at) = at.as_i64() else { continue };
            match expiry(at, now) {
                Expiry::Expired => found.push((
                    Level::Critical,
                    format!(
                        "instance {instance}: {what} expired {}",
                        clock::rfc3339(at.max(0) as u64)
                    ),
                )),
                Expiry::Within(left) => found.push((
                    Level::Warning,
                    format!(
                        "instance {instance}: {what} expires in {}",
                        clock::human_age(left)
                    ),
                )),
                Expiry::Fine => {}
            }
        }
        for src in s["sources"].as_array().into_iter().flatten() {
            sources += 1;
            let name = str_of(&src["name"]);
            let failing = src["failing_since"].as_u64().unwrap_or(0);
            let waiting = src["backlog"]["files"].as_u64().unwrap_or(0);
            let permanent = src["last_error"]["permanent"].as_bool() == Some(true);
            if failing > 0 {
                let long = now.saturating_sub(failing);
                let level = if permanent || long >= critical_after {
                    Level::Critical
                } else {
                    Level::Warning
                };
                found.push((
                    level,
                    format!(
                        "source {name}: delivery {} for {}, {waiting} files waiting",
                        if permanent {
                            "needs an operator"
                        } else {
                            "failing"
                        },
                        clock::human_age(long)
                    ),
                ));
            } else if src["backlog"]["oldest"].as_u64().unwrap_or(0) >= BACKLOG_WARN_SECS {
                found.push((
                    Level::Warning,
                    format!(
                        "source {name}: backlog growing, oldest file waiting {}",
                        clock::human_age(src["backlog"]["oldest"].as_u64().unwrap_or(0))
                    ),
                ));
            }
            let f = &src["format_check"];
            if f["state"].as_str() == Some("warning") {
                found.push((
                    Level::Warning,
                    format!(
                        "source {name}: {} % of the last {} lines look like {}{}",
                        f["match_pct"],
                        f["lines"],
                        str_of(&src["format"]),
                        f["looks_like"]
                            .as_str()
                            .map(|t| format!(" (they look like {t})"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let level = found.first().map_or(Level::Ok, |f| f.0);
    let text = if found.is_empty() {
        format!("{running} instances running, {sources} sources, delivery ok")
    } else {
        found
            .into_iter()
            .map(|(_, r)| r)
            .collect::<Vec<_>>()
            .join("; ")
    };
    (level, format!("lc {}: {text}", level.name()))
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{instance, source, NOW};
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn check_check(snapshots: &[Value], level: Level, line: &str) {
        let (got, text) = super::check(snapshots, NOW);
        assert_eq!((got, text.as_str()), (level, line));
    }

    #[test]
    fn monitoring_levels() {
        use Level::*;
        let ok = || source("asa", json!({}));
        check_check(
            &[],
            Unknown,
            "lc UNKNOWN: no lc instance has written a status snapshot here",
        );
        check_check(
            &[instance("514", json!({}), json!([ok()]))],
            Ok,
            "lc OK: 1 instances running, 1 sources, delivery ok",
        );
        // A clean stop is no alarm; a death is.
        let stopped =
            json!({ "instance": "21", "alive": false, "running": false, "updated": NOW - 60 });
        let died =
            json!({ "instance": "21", "alive": false, "running": true, "updated": NOW - 60 });
        check_check(
            &[stopped],
            Ok,
            "lc OK: 0 instances running, 0 sources, delivery ok",
        );
        check_check(
            &[died, instance("514", json!({}), json!([ok()]))],
            Critical,
            "lc CRITICAL: instance 21 died (pid file not held; last snapshot 1m0s ago)",
        );
        let failing = |mins: u64, permanent: bool| {
            source(
                "pa",
                json!({
                    "failing_since": NOW - mins * 60,
                    "backlog": { "files": 3, "bytes": 1, "oldest": 100 },
                    "last_error": { "at": NOW, "error": "x", "permanent": permanent },
                }),
            )
        };
        check_check(
            &[instance("514", json!({}), json!([ok(), failing(5, false)]))],
            Warning,
            "lc WARNING: source pa: delivery failing for 5m0s, 3 files waiting",
        );
        check_check(
            &[instance("514", json!({}), json!([failing(15, false)]))],
            Critical,
            "lc CRITICAL: source pa: delivery failing for 15m0s, 3 files waiting",
        );
        // An instance's own critical_after_secs.
        check_check(
            &[instance(
                "514",
                json!({ "critical_after_secs": 0 }),
                json!([failing(0, false)]),
            )],
            Critical,
            "lc CRITICAL: source pa: delivery failing for 0s, 3 files waiting",
        );
        check_check(
            &[instance(
                "514",
                json!({ "critical_after_secs": 301 }),
                json!([failing(5, false)]),
            )],
            Warning,
            "lc WARNING: source pa: delivery failing for 5m0s, 3 files waiting",
        );
        check_check(
            &[instance("514", json!({}), json!([failing(1, true)]))],
            Critical,
            "lc CRITICAL: source pa: delivery needs an operator for 1m0s, 3 files waiting",
        );
        let slow = source(
            "sq",
            json!({ "backlog": { "files": 9, "bytes": 1, "oldest": 4000 } }),
        );
        check_check(
            &[instance("514", json!({}), json!([slow]))],
            Warning,
            "lc WARNING: source sq: backlog growing, oldest file waiting 1h6m",
        );
        let full = json!({ "disk": { "full": true, "free_bytes": 0 } });
        let tls =
            json!({ "tls": { "not_after": NOW + 86400 * 10, "client_ca_not_after": NOW - 1 } });
        check_check(
            &[instance("514", full, json!([ok()])), instance("6514", tls, json!([]))],
            Critical,
            "lc CRITICAL: instance 514: disk /var/lib/lc full (free 0B); instance 6514: syslog-tls client CA expired 2027-01-15T07:59:59Z; instance 6514: syslog-tls certificate expires in 10d0h",
        );
        let ftps = json!({ "ftp": { "tls": { "not_after": NOW + 86400 * 20 } } });
        let mismatch = source(
            "fw",
            json!({ "format_check": { "state": "warning", "match_pct": 3, "lines": 150, "looks_like": "FortiGate" } }),
        );
        check_check(
            &[instance("21", ftps, json!([mismatch]))],
            Warning,
            "lc WARNING: instance 21: FTPS certificate expires in 20d0h; source fw: 3 % of the last 150 lines look like CISCO_ASA_SYSLOG (they look like FortiGate)",
        );
        // A live instance whose snapshot stopped changing: its loop is stuck.
        let stuck = json!({ "updated": NOW - STALE_SECS - 1 });
        check_check(
            &[instance("514", stuck, json!([ok()]))],
            Critical,
            "lc CRITICAL: instance 514: status not updated for 1m1s (the instance may be stuck)",
        );
        let recent = json!({ "updated": NOW - STALE_SECS });
        check_check(
            &[instance("514", recent, json!([ok()]))],
            Ok,
            "lc OK: 1 instances running, 1 sources, delivery ok",
        );
    }
}
