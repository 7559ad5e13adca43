//! What the FTP server counts and how it shows in the status snapshot: the session and
//! refusal counters, why a control connection is refused (counted, with its log line and
//! the text of its 421), and the `ftp` object of the snapshot built from a plain [`View`] of
//! the server's parts (`pipeline::Counts`, `gate::Counts`). No I/O.

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::gate;
use super::pipeline;
use crate::config::TlsMode;
use crate::reactor::guard::Refusal;
use crate::tls::CertInfo;

/// Sessions and refusals (uploads and logins count in their own types).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub sessions: u64,
    pub refused_max_connections: u64,
    pub refused_max_per_ip: u64,
    pub refused_locked_out: u64,
    pub refused_not_allowed: u64,
    pub port_stealing: u64,
    pub tls_failures: u64,
    /// Times a control connection stopped being read: its client did not read its replies.
    pub reply_backlog: u64,
    /// Connections through a balancer without a valid PROXY header in time.
    pub proxy_header: u64,
    /// Connections from outside `trusted_proxies` while `proxy_protocol = on`.
    pub proxy_untrusted: u64,
}

/// Why a control connection gets no session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    NotAllowed,
    LockedOut,
    Limit(Refusal),
}

/// How a refusal is told: its key for the rate-limited log, the log line's reason, and the
/// text of the client's 421.
#[derive(Debug, PartialEq, Eq)]
pub struct Told {
    pub what: &'static str,
    pub line: String,
    pub text: &'static str,
}

impl Counters {
    /// Counts a refused session; how to tell it.
    pub fn refused(&mut self, why: Refused) -> Told {
        let (what, line, text) = match why {
            Refused::NotAllowed => {
                self.refused_not_allowed += 1;
                (
                    "not_allowed",
                    "not in any FTP source's allow list".to_string(),
                    "not allowed from your address",
                )
            }
            Refused::LockedOut => {
                self.refused_locked_out += 1;
                (
                    "locked_out",
                    "locked out after failed logins".to_string(),
                    "too many failed logins from your address; try again later",
                )
            }
            Refused::Limit(Refusal::Total(n)) => {
                self.refused_max_connections += 1;
                (
                    "max_connections",
                    format!("max_connections ({n}) reached"),
                    "too many connections; try again later",
                )
            }
            Refused::Limit(Refusal::PerIp(n)) => {
                self.refused_max_per_ip += 1;
                (
                    "max_connections_per_ip",
                    format!("max_connections_per_ip ({n}) reached"),
                    "too many connections from your address",
                )
            }
        };
        Told { what, line, text }
    }
}

/// The server's state for its part of the snapshot.
pub struct View<'a> {
    pub port: u16,
    pub listening: Vec<SocketAddr>,
    /// Control connections open.
    pub sessions: usize,
    pub tls: Option<&'a CertInfo>,
    pub tls_mode: TlsMode,
    pub counters: &'a Counters,
    pub uploads: &'a pipeline::Counts,
    pub logins: &'a gate::Counts,
    pub locked_out_now: usize,
    pub lockout_tracked: usize,
}

impl View<'_> {
    /// The snapshot's `ftp` object.
    pub fn json(&self) -> Value {
        let (c, u, g) = (self.counters, self.uploads, self.logins);
        json!({
            "port": self.port,
            "listening": self.listening.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "sessions": self.sessions,
            "tls": self.tls.map(|t| json!({
                "subject": t.subject,
                "serial": t.serial,
                "not_after": t.not_after,
            })),
            "tls_mode": match self.tls_mode {
                TlsMode::Off => "off",
                TlsMode::Optional => "optional",
                TlsMode::Required => "required",
            },
            "logins": g.logins,
            "failed_logins": g.failed_logins,
            "lockouts": g.lockouts,
            "locked_out_now": self.locked_out_now,
            "lockout_tracked": self.lockout_tracked,
            "lockout_evicted": g.lockout_evicted,
            "refused": {
                "max_connections": c.refused_max_connections,
                "max_connections_per_ip": c.refused_max_per_ip,
                "locked_out": c.refused_locked_out,
                "not_allowed": c.refused_not_allowed,
                "port_stealing": c.port_stealing,
                "tls_handshake": c.tls_failures,
                "login_queue": g.refused_login_queue,
                "proxy_header": c.proxy_header,
                "proxy_untrusted": c.proxy_untrusted,
            },
            "files": u.files,
            "bytes": u.bytes,
            "aborted": u.aborted,
            "no_close_notify": u.no_close_notify,
            "refused_too_large": u.refused_too_large,
            "reply_backlog": c.reply_backlog,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(why: Refused, expected: &str, counted: fn(&Counters) -> u64) {
        let mut c = Counters::default();
        let told = c.refused(why);
        assert_eq!(
            format!("{}: {}; 421 {}", told.what, told.line, told.text),
            expected
        );
        assert_eq!(counted(&c), 1, "{why:?}");
        let total = c.refused_not_allowed
            + c.refused_locked_out
            + c.refused_max_connections
            + c.refused_max_per_ip;
        assert_eq!(total, 1, "{why:?} counted once");
    }

    #[test]
    fn each_refusal_is_counted_and_told() {
        check(
            Refused::NotAllowed,
            "not_allowed: not in any FTP source's allow list; 421 not allowed from your address",
            |c| c.refused_not_allowed,
        );
        check(
            Refused::LockedOut,
            "locked_out: locked out after failed logins; 421 too many failed logins from your address; try again later",
            |c| c.refused_locked_out,
        );
        check(
            Refused::Limit(Refusal::Total(5)),
            "max_connections: max_connections (5) reached; 421 too many connections; try again later",
            |c| c.refused_max_connections,
        );
        check(
            Refused::Limit(Refusal::PerIp(2)),
            "max_connections_per_ip: max_connections_per_ip (2) reached; 421 too many connections from your address",
            |c| c.refused_max_per_ip,
        );
    }

    /// The snapshot's field names are what `lc status` and the metrics read: each counter
    /// shows under its own name.
    #[test]
    fn the_snapshot_names_every_counter() {
        let counters = Counters {
            sessions: 1,
            refused_max_connections: 2,
            refused_max_per_ip: 3,
            refused_locked_out: 4,
            refused_not_allowed: 5,
            port_stealing: 6,
            tls_failures: 7,
            reply_backlog: 8,
            proxy_header: 9,
            proxy_untrusted: 10,
        };
        let uploads = pipeline::Counts {
            files: 11,
            bytes: 12,
            aborted: 13,
            no_close_notify: 14,
            refused_too_large: 15,
        };
        let logins = gate::Counts {
            logins: 16,
            failed_logins: 17,
            lockouts: 18,
            lockout_evicted: 19,
            refused_login_queue: 20,
        };
        let view = View {
            port: 21,
            listening: vec!["127.0.0.1:21".parse().unwrap()],
            sessions: 22,
            tls: None,
            tls_mode: TlsMode::Optional,
            counters: &counters,
            uploads: &uploads,
            logins: &logins,
            locked_out_now: 23,
            lockout_tracked: 24,
        };
        let expected = json!({
            "port": 21, "listening": ["127.0.0.1:21"], "sessions": 22, "tls": null,
            "tls_mode": "optional", "logins": 16, "failed_logins": 17, "lockouts": 18,
            "locked_out_now": 23, "lockout_tracked": 24, "lockout_evicted": 19,
            "refused": {
                "max_connections": 2, "max_connections_per_ip": 3, "locked_out": 4,
                "not_allowed": 5, "port_stealing": 6, "tls_handshake": 7, "login_queue": 20,
                "proxy_header": 9, "proxy_untrusted": 10,
            },
            "files": 11, "bytes": 12, "aborted": 13, "no_close_notify": 14,
            "refused_too_large": 15, "reply_backlog": 8,
        });
        assert_eq!(view.json(), expected);
    }
}
