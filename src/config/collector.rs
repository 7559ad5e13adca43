//! `[collector]`: the collector's name, its folders, log level, where receivers bind, and
//! the receive limits (DESIGN.md "Limits on everything").

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::ini;
use super::values::{valid_name, Keys, Validator};

/// Defaults for the receive limits (DESIGN.md "Limits on everything").
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Incomplete frames of all connections together: 1,024 connections each holding a whole
/// maximal message, where `max_connections` x `max_message_bytes` would be 256 MiB.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1024;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// What lc asks the kernel for on UDP sockets; capped by net.core.rmem_max unless lc may force it.
pub const DEFAULT_UDP_RCVBUF: usize = 32 * 1024 * 1024;

/// Addresses to bind: `*` is every IPv4 and IPv6 address (one dual-stack socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Any,
    Addrs(Vec<IpAddr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collector {
    pub name: String,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub certs_dir: PathBuf,
    pub metrics_dir: Option<PathBuf>,
    /// A loopback address serving `/metrics` and `/health` (`httpd`); `None` = off.
    pub metrics_listen: Option<SocketAddr>,
    pub log_level: log::LevelFilter,
    pub listen: Listen,
    pub max_message_bytes: usize,
    /// Bytes of incomplete frames all stream connections of an instance may hold at once.
    pub max_pending_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub idle_timeout: Duration,
    /// A TLS client must finish its handshake within this.
    pub handshake_timeout: Duration,
    pub udp_rcvbuf: usize,
}

impl Collector {
    pub(super) fn read(v: &mut Validator, s: &ini::Section) -> Collector {
        let mut k = Keys::new(s);
        let name = match k.get("name") {
            Some(e) if valid_name(&e.value) => e.value.clone(),
            Some(e) => {
                v.problem(
                    e.line,
                    format!(
                        "collector name {:?} must match [A-Za-z0-9_-]{{1,64}}",
                        e.value
                    ),
                );
                String::new()
            }
            None => "LogCollector1".to_string(),
        };
        let state_dir = v.path(k.get("state_dir"), "/var/lib/lc");
        let run_dir = v.path(k.get("run_dir"), "/run/lc");
        let certs_dir = v.path(k.get("certs_dir"), "/etc/lc/certs");
        let metrics_dir = match k.get("metrics_dir") {
            Some(e) if !e.value.is_empty() => Some(v.base.join(&e.value)),
            _ => None,
        };
        let metrics_listen = v.metrics_listen(k.get("metrics_listen"));
        let log_level = match k.get("log_level") {
            None => log::LevelFilter::Info,
            Some(e) => match e.value.parse::<log::LevelFilter>() {
                Ok(l) => l,
                Err(_) => {
                    v.problem(
                        e.line,
                        format!(
                            "log_level {:?} is not one of off, error, warn, info, debug, trace",
                            e.value
                        ),
                    );
                    log::LevelFilter::Info
                }
            },
        };
        let listen = v.listen(k.get("listen")).unwrap_or(Listen::Any);
        let max_message_bytes = v.size(
            k.get("max_message_bytes"),
            DEFAULT_MAX_MESSAGE_BYTES as u64,
            64,
            16 << 20,
        ) as usize;
        let max_pending_bytes = v.size(
            k.get("max_pending_bytes"),
            DEFAULT_MAX_PENDING_BYTES as u64,
            64 << 10,
            1 << 40,
        ) as usize;
        let max_connections = v.number(
            k.get("max_connections"),
            DEFAULT_MAX_CONNECTIONS as u64,
            1,
            1_000_000,
        ) as usize;
        let max_connections_per_ip = v.number(
            k.get("max_connections_per_ip"),
            DEFAULT_MAX_CONNECTIONS_PER_IP as u64,
            1,
            1_000_000,
        ) as usize;
        let idle_timeout = v.secs(k.get("idle_timeout_secs"), DEFAULT_IDLE_TIMEOUT, 1);
        let handshake_timeout = v.secs(k.get("handshake_timeout_secs"), Duration::from_secs(10), 1);
        let udp_rcvbuf = v.size(
            k.get("udp_rcvbuf"),
            DEFAULT_UDP_RCVBUF as u64,
            4096,
            1 << 30,
        ) as usize;
        k.finish(v);
        Collector {
            name,
            state_dir,
            run_dir,
            certs_dir,
            metrics_dir,
            metrics_listen,
            log_level,
            listen,
            max_message_bytes,
            max_pending_bytes,
            max_connections,
            max_connections_per_ip,
            idle_timeout,
            handshake_timeout,
            udp_rcvbuf,
        }
    }
}
