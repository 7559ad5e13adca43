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

/// A snapshot is a few KiB per source; anything this big is not one.
const MAX_SNAPSHOT_BYTES: u64 = 16 << 20;

/// Reads one status snapshot. run_dir is the service's folder and `lc status`, `lc certs
/// reload` run as root, so the file is opened with `careful` (no link, FIFO, hard link, file
/// of a stranger, or huge file); it must be a JSON object.
pub fn read_snapshot(path: &Path) -> io::Result<Value> {
    let bytes = crate::careful::read_in_folder(path, MAX_SNAPSHOT_BYTES)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a status snapshot (a JSON object)", path.display()),
        )),
    }
}

/// Every snapshot in `run_dir`, sorted by instance name, with whether its process is alive.
/// A file that is refused or is not a snapshot is skipped with a warning naming it.
pub fn read_all(run_dir: &Path) -> io::Result<Vec<Value>> {
    read_all_noting(run_dir, &mut |warning| {
        crate::logging::report(crate::logging::Severity::Warning, &format!("lc: {warning}"))
    })
}

/// `read_all`, with each warning (a file skipped, an instance shown as not running) handed to
/// `note` (the metrics server logs them once, not at every scrape).
pub fn read_all_noting(run_dir: &Path, note: &mut dyn FnMut(String)) -> io::Result<Vec<Value>> {
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
        let mut v = match read_snapshot(&p) {
            Ok(v) => v,
            // Removed between the listing and the read: the instance is gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                note(format!("{e}; skipped"));
                continue;
            }
        };
        let instance = v["instance"].as_str().unwrap_or("").to_string();
        // Alive = its pid file is locked. Whether that pid is really lc matters only to the
        // commands that signal it (`pidfile::signal`); /proc may not tell a non-root `lc status`.
        let claim = match crate::pidfile::claim(&pid_path(run_dir, &instance)) {
            Ok(c) => c,
            Err(e) => {
                note(format!("{e}; instance {instance} shown as not running"));
                None
            }
        };
        let alive = v["running"].as_bool() == Some(true) && claim.is_some();
        v["alive"] = json!(alive);
        out.push(v);
    }
    Ok(out)
}

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

/// Certificates are warned about this long before they expire (status, log, `--check`).
pub const EXPIRY_WARN_DAYS: [u64; 3] = [30, 7, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Expired,
    /// Within `EXPIRY_WARN_DAYS[0]` days: the seconds left.
    Within(u64),
    Fine,
}

/// Whether a certificate valid until `not_after` (unix seconds) expires soon.
pub fn expiry(not_after: i64, now: u64) -> Expiry {
    let now = now as i64;
    if not_after <= now {
        Expiry::Expired
    } else if (not_after - now) as u64 <= EXPIRY_WARN_DAYS[0] * 86400 {
        Expiry::Within((not_after - now) as u64)
    } else {
        Expiry::Fine
    }
}

/// The smallest of `EXPIRY_WARN_DAYS` that `not_after` is within (0 = expired), for the log's
/// warnings at 30, 7 and 1 days.
pub fn expiry_stage(not_after: i64, now: u64) -> Option<u64> {
    let left = not_after - now as i64;
    if left <= 0 {
        return Some(0);
    }
    EXPIRY_WARN_DAYS
        .iter()
        .rev()
        .find(|d| left as u64 <= *d * 86400)
        .copied()
}

/// The certificates an instance's snapshot names: (what, notAfter).
pub fn certificates(s: &Value) -> Vec<(&'static str, i64)> {
    [
        ("syslog-tls certificate", &s["tls"]["not_after"]),
        ("syslog-tls client CA", &s["tls"]["client_ca_not_after"]),
        ("FTPS certificate", &s["ftp"]["tls"]["not_after"]),
    ]
    .into_iter()
    .filter_map(|(what, v)| Some((what, v.as_i64()?)))
    .collect()
}

/// The log lines due for certificates expiring at 30, 7 and 1 days (and expired): each stage
/// of each certificate once; `said` remembers (notAfter, stage) per certificate, so a new
/// certificate (another notAfter) starts over.
pub fn expiry_warnings(
    snapshot: &Value,
    said: &mut std::collections::HashMap<&'static str, (i64, u64)>,
    now: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    for (what, not_after) in certificates(snapshot) {
        let Some(stage) = expiry_stage(not_after, now) else {
            said.remove(what);
            continue;
        };
        if said.get(what) == Some(&(not_after, stage)) {
            continue;
        }
        said.insert(what, (not_after, stage));
        let at = clock::rfc3339(not_after.max(0) as u64);
        out.push(if stage == 0 {
            format!("{what}: expired {at}; replace it (lc certs reload)")
        } else {
            format!(
                "{what}: expires {at}, in {}; replace it (lc certs reload)",
                clock::human_age((not_after - now as i64).max(0) as u64)
            )
        });
    }
    out
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
    use super::*;

    const NOW: u64 = 1_800_000_000;

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

    #[test]
    fn certificates_expire_in_stages() {
        let day = 86400;
        // (seconds left, stage, expiry)
        let cases: [(i64, Option<u64>, Expiry); 7] = [
            (-5, Some(0), Expiry::Expired),
            (0, Some(0), Expiry::Expired),
            (3600, Some(1), Expiry::Within(3600)),
            (2 * day, Some(7), Expiry::Within(2 * day as u64)),
            (7 * day, Some(7), Expiry::Within(7 * day as u64)),
            (29 * day, Some(30), Expiry::Within(29 * day as u64)),
            (31 * day, None, Expiry::Fine),
        ];
        for (left, stage, exp) in cases {
            let at = NOW as i64 + left;
            assert_eq!(expiry_stage(at, NOW), stage, "{left}");
            assert_eq!(expiry(at, NOW), exp, "{left}");
        }
    }

    /// A running instance with the sources given, as `read_all` returns it.
    fn instance(name: &str, extra: Value, sources: Value) -> Value {
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

    fn source(name: &str, extra: Value) -> Value {
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

    /// Regression (issue 12, bug 10): a snapshot that was JSON but not an object panicked
    /// `lc status` (exit 134).
    #[test]
    fn a_snapshot_that_is_not_an_object_is_skipped() {
        let dir = crate::testing::fresh_dir("status-junk");
        for (name, text) in [
            ("a", "[1, 2]"),
            ("b", "\"text\""),
            ("c", "42"),
            ("d", "null"),
            ("e", "{not json"),
            ("f", r#"{"instance": "f", "running": false}"#),
        ] {
            fs::write(dir.join(format!("{name}.json")), text).unwrap();
        }
        let got = read_all(&dir).unwrap();
        let names: Vec<&str> = got
            .iter()
            .map(|v| v["instance"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["f"]);
        fs::remove_dir_all(&dir).unwrap();
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
    fn certificate_expiry_is_said_at_30_7_and_1_days() {
        let day = 86400;
        let mut said = std::collections::HashMap::new();
        let snap = |not_after: u64| json!({ "tls": { "not_after": not_after } });
        let na = NOW + 40 * day;
        // (days before notAfter, lines said)
        for (before, n) in [
            (40, 0),
            (30, 1),
            (29, 0),
            (8, 0),
            (7, 1),
            (6, 0),
            (1, 1),
            (0, 1),
            (0, 0),
        ] {
            let lines = expiry_warnings(&snap(na), &mut said, na - before * day);
            assert_eq!(lines.len(), n, "{before} days before: {lines:?}");
        }
        // A new certificate starts over.
        let lines = expiry_warnings(&snap(NOW + 20 * day), &mut said, NOW);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("syslog-tls certificate: expires "),
            "{lines:?}"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(bytes(Some(12)), "12B");
        assert_eq!(bytes(Some(1536)), "1.5K");
        assert_eq!(bytes(Some(32 << 20)), "32.0M");
    }
}
