//! Counters and status snapshots.
//!
//! The event loop keeps a [`Counters`] per source and, every few seconds, writes a JSON
//! snapshot of the instance to `run_dir/INSTANCE.json` (temp file + rename, so readers never see
//! half a file). `lc status` reads every snapshot in run_dir and renders them; it never talks to
//! a running instance. The JSON is the interface: `lc status --json` passes it through.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::clock;

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
}

impl Counters {
    pub fn drop(&mut self, why: Drop, n: u64) {
        self.drops[why as usize] += n;
    }

    pub fn dropped(&self, why: Drop) -> u64 {
        self.drops[why as usize]
    }

    /// Sets a kernel-maintained counter (UDP drops) to its current value.
    pub fn set_dropped(&mut self, why: Drop, n: u64) {
        self.drops[why as usize] = n;
    }
}

/// DESIGN.md's source states: Created (never received), Healthy (receiving), Connected
/// (delivered in the last 24 h), Disconnected (nothing received for 24 h).
pub fn state(last_received: u64, last_delivery: u64, now: u64) -> &'static str {
    const DAY: u64 = 86400;
    if last_received == 0 {
        "Created"
    } else if now.saturating_sub(last_received) >= DAY {
        "Disconnected"
    } else if last_delivery != 0 && now.saturating_sub(last_delivery) < DAY {
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
        "state": state(c.last_received, c.last_delivery, now),
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
    })
}

pub fn snapshot_path(run_dir: &Path, instance: &str) -> PathBuf {
    run_dir.join(format!("{instance}.json"))
}

pub fn pid_path(run_dir: &Path, instance: &str) -> PathBuf {
    run_dir.join(format!("{instance}.pid"))
}

/// Writes `value` to `path` atomically: a temp file in the same folder, then rename.
pub fn write_atomically(path: &Path, value: &Value) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::File::create(&tmp)?;
    serde_json::to_writer_pretty(&mut f, value)?;
    f.write_all(b"\n")?;
    drop(f);
    fs::rename(&tmp, path)
}

/// Every snapshot in `run_dir`, sorted by instance name, with whether its process is alive.
pub fn read_all(run_dir: &Path) -> io::Result<Vec<Value>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(run_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", run_dir.display()),
            ))
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let Ok(text) = fs::read_to_string(&p) else {
            continue;
        };
        let Ok(mut v) = serde_json::from_str::<Value>(&text) else {
            log::warn!("{}: not a status snapshot; ignored", p.display());
            continue;
        };
        let instance = v["instance"].as_str().unwrap_or("").to_string();
        // Alive = its pid file is locked. Whether that pid is really lc matters only to the
        // commands that signal it (`pidfile::signal`); /proc may not tell a non-root `lc status`.
        let claim = match crate::pidfile::claim(&pid_path(run_dir, &instance)) {
            Ok(c) => c,
            Err(e) => {
                log::warn!("{e}; instance {instance} shown as not running");
                None
            }
        };
        let alive = v["running"].as_bool() == Some(true) && claim.is_some();
        v["alive"] = json!(alive);
        out.push(v);
    }
    Ok(out)
}

/// The `lc status` table.
pub fn render(snapshots: &[Value], now: u64) -> String {
    let mut out = String::new();
    if snapshots.is_empty() {
        out.push_str("no lc instance has written a status snapshot here\n");
        return out;
    }
    for s in snapshots {
        if s["alive"].as_bool() != Some(true) {
            // A stopped instance in one line: its sources may be served by another now (a
            // port moved), and its table would list them twice.
            let sources: Vec<String> = s["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|src| str_of(&src["name"]))
                .collect();
            out.push_str(&format!(
                "instance {}: not running (last snapshot {} ago; sources then: {})\n",
                str_of(&s["instance"]),
                clock::human_age(now.saturating_sub(s["updated"].as_u64().unwrap_or(0))),
                if sources.is_empty() {
                    "none".to_string()
                } else {
                    sources.join(", ")
                }
            ));
            continue;
        }
        let running = format!("running, pid {}", s["pid"]);
        out.push_str(&format!(
            "instance {}: {running}, up since {}\n",
            str_of(&s["instance"]),
            str_of(&s["started"])
        ));
        let disk = &s["disk"];
        out.push_str(&format!(
            "  state dir {}: spool {}, free {} of {}\n",
            str_of(&s["state_dir"]),
            bytes(disk["spool_bytes"].as_u64()),
            bytes(disk["free_bytes"].as_u64()),
            bytes(disk["total_bytes"].as_u64()),
        ));
        if let Some(tls) = s["tls"].as_object() {
            let expiry = |v: &Value| {
                v.as_i64()
                    .map(|t| clock::rfc3339(t.max(0) as u64))
                    .unwrap_or_else(|| "-".into())
            };
            out.push_str(&format!(
                "  syslog-tls: {} until {}; client CA until {}\n",
                tls.get("subject").and_then(Value::as_str).unwrap_or("?"),
                expiry(&tls["not_after"]),
                expiry(&tls["client_ca_not_after"]),
            ));
        }
        if let Some(ftp) = s["ftp"].as_object() {
            out.push_str(&ftp_line(ftp));
        }
        if let Some(e) = s["reload_error"].as_str() {
            out.push_str(&format!("  last reload refused: {e}\n"));
        }
        for l in s["listeners"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  listening {} {} for {}\n",
                str_of(&l["proto"]),
                str_of(&l["addr"]),
                str_of(&l["source"])
            ));
        }
        out.push_str(&format!(
            "  {:<20} {:<13} {:<11} {:>10} {:>10} {:>6} {:>16} {:>10} {:>12}  {}\n",
            "SOURCE",
            "STATE",
            "RECEIVER",
            "MESSAGES",
            "BYTES",
            "CONNS",
            "BACKLOG",
            "DROPS",
            "LAST DELIV.",
            "LAST ERROR"
        ));
        for src in s["sources"].as_array().into_iter().flatten() {
            let drops: u64 = src["drops"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "evicted_bytes")
                        .filter_map(|(_, v)| v.as_u64())
                        .sum()
                })
                .unwrap_or(0);
            let last = src["last_delivery"].as_u64().unwrap_or(0);
            let last = if last == 0 {
                "never".to_string()
            } else {
                format!("{} ago", clock::human_age(now.saturating_sub(last)))
            };
            let failing = src["failing_since"].as_u64().unwrap_or(0);
            let err = match src["last_error"]["error"].as_str() {
                None => "-".to_string(),
                Some(e) if failing > 0 => format!(
                    "{e} (failing for {})",
                    clock::human_age(now.saturating_sub(failing))
                ),
                Some(e) => e.to_string(),
            };
            out.push_str(&format!(
                "  {:<20} {:<13} {:<11} {:>10} {:>10} {:>6} {:>16} {:>10} {:>12}  {}\n",
                str_of(&src["name"]),
                str_of(&src["state"]),
                match str_of(&src["receiver"]).as_str() {
                    r @ ("ftp" | "ftps") => r.to_string(),
                    r => format!("{}:{}", r.trim_start_matches("syslog-"), src["port"]),
                },
                match str_of(&src["receiver"]).as_str() {
                    "ftp" | "ftps" => format!("{} files", src["files"]),
                    _ => str_of(&src["messages"]),
                },
                bytes(src["bytes"].as_u64()),
                str_of(&src["connections"]),
                backlog(&src["backlog"], now),
                drops,
                last,
                err,
            ));
            if let Some(line) = format_line(src) {
                out.push_str(&line);
            }
            let detail = nonzero(&src["drops"]);
            if !detail.is_empty() || src["truncated"].as_u64().unwrap_or(0) > 0 {
                out.push_str(&format!(
                    "      drops: {} truncated={}\n",
                    detail.join(" "),
                    src["truncated"]
                ));
            }
        }
    }
    out
}

/// A source's format check, when it warns: its rate and what the lines look like instead.
fn format_line(src: &Value) -> Option<String> {
    let f = &src["format_check"];
    if f["state"].as_str() != Some("warning") {
        return None;
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

/// The FTP server's lines: where it listens, TLS, sessions, logins and refusals.
fn ftp_line(ftp: &Map<String, Value>) -> String {
    let listening: Vec<String> = ftp["listening"]
        .as_array()
        .into_iter()
        .flatten()
        .map(str_of)
        .collect();
    let tls = match ftp["tls"].as_object() {
        Some(t) => format!(
            "tls {} with {} until {}",
            str_of(&ftp["tls_mode"]),
            t.get("subject").map(str_of).unwrap_or_default(),
            t.get("not_after")
                .and_then(Value::as_i64)
                .map(|n| clock::rfc3339(n.max(0) as u64))
                .unwrap_or_default()
        ),
        None => "no FTPS certificate".to_string(),
    };
    let refused = nonzero(&ftp["refused"]);
    format!(
        "  ftp: listening {} ({tls}); {} sessions, {} logins, {} failed, {} lockouts, {} uploads aborted{}\n",
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

fn str_of(v: &Value) -> String {
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

    #[test]
    fn a_stopped_instance_is_one_line() {
        let snap = json!({
            "instance": "21", "alive": false, "updated": 1000,
            "sources": [{ "name": "squid" }, { "name": "bluecoat" }],
        });
        assert_eq!(
            render(&[snap], 1000 + 300),
            "instance 21: not running (last snapshot 5m0s ago; sources then: squid, bluecoat)\n"
        );
    }

    use super::*;

    #[track_caller]
    fn check(last_received: u64, last_delivery: u64, expected: &str) {
        assert_eq!(state(last_received, last_delivery, 100_000), expected);
    }

    #[test]
    fn states() {
        check(0, 0, "Created");
        check(99_000, 0, "Healthy");
        check(99_000, 99_500, "Connected");
        check(99_000, 10_000, "Healthy");
        check(10_000, 99_500, "Disconnected");
    }

    #[test]
    fn a_format_warning_is_a_line_under_its_source() {
        let src = json!({
            "format": "CISCO_ASA_SYSLOG",
            "format_check": { "state": "warning", "match_pct": 3, "lines": 150, "warn_below": 90,
                              "looks_like": "FortiGate", "looks_like_pct": 97 },
        });
        assert_eq!(
            format_line(&src).unwrap(),
            "      format warning: 3 % of the last 150 lines look like CISCO_ASA_SYSLOG (90 % needed); 97 % look like FortiGate\n"
        );
        let ok = json!({ "format_check": { "state": "ok" } });
        assert_eq!(format_line(&ok), None);
        assert_eq!(format_line(&json!({})), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(Some(12)), "12B");
        assert_eq!(bytes(Some(1536)), "1.5K");
        assert_eq!(bytes(Some(32 << 20)), "32.0M");
    }
}
