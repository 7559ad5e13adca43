//! `[ftp]`: the built-in FTP server's port, users file, passive ports, advertised address,
//! TLS, active mode and its limits (connections, idle time, failed logins).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ini;
use super::values::{Keys, Validator};
use crate::allow::AllowList;

/// `[ftp] tls`: whether FTPS (AUTH TLS) is offered, and whether it is a must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ftp {
    pub port: u16,
    /// FTP users, `user:PHC` lines (`ftp/passwd.rs`); `lc passwd` writes it.
    pub passwd_file: PathBuf,
    /// Passive data ports, inclusive; `(0, 0)` lets the kernel choose (tests).
    pub passive_ports: (u16, u16),
    /// Advertised in PASV replies; `None` = the control connection's local address.
    pub public_address: Option<IpAddr>,
    pub tls: TlsMode,
    /// PORT/EPRT (only ever back to the control peer).
    pub active: bool,
    /// The largest file one STOR may write (the API takes files under 5 GB).
    pub max_file_bytes: u64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// A control connection with no command for this long is closed.
    pub idle_timeout: Duration,
    /// Failed logins from one address before it is locked out for `lockout`.
    pub max_login_failures: u32,
    pub lockout: Duration,
    /// `proxy_protocol = on`: every control and passive data connection starts with a PROXY
    /// protocol header, from these balancers only.
    pub proxy_protocol: Option<AllowList>,
}

impl Ftp {
    pub(super) fn read(v: &mut Validator, s: &ini::Section) -> Ftp {
        let mut k = Keys::new(s);
        let port = v.port(k.get("port"), 21);
        let passwd_file = v.path(k.get("passwd_file"), "/etc/lc/ftp.passwd");
        let passive_ports = match k.get("passive_ports") {
            None => (20000, 20099),
            Some(e) => match parse_port_range(&e.value) {
                Some(r) => r,
                None => {
                    v.problem(
                        e.line,
                        format!(
                            "passive_ports {:?} must be FIRST-LAST (e.g. 20000-20099) with FIRST <= LAST, or 0 for any",
                            e.value
                        ),
                    );
                    (20000, 20099)
                }
            },
        };
        let public_address = match k.get("public_address") {
            Some(e) if !e.value.is_empty() => match e.value.parse::<IpAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    v.problem(
                        e.line,
                        format!("public_address {:?} is not an IP address", e.value),
                    );
                    None
                }
            },
            _ => None,
        };
        let tls = match k.get("tls") {
            None => TlsMode::Optional,
            Some(e) => match e.value.as_str() {
                "off" => TlsMode::Off,
                "optional" => TlsMode::Optional,
                "required" => TlsMode::Required,
                word => {
                    v.problem(
                        e.line,
                        format!("tls {word:?} must be off, optional or required"),
                    );
                    TlsMode::Optional
                }
            },
        };
        let active = match k.get("active") {
            None => true,
            Some(e) => match e.value.as_str() {
                "on" | "yes" | "true" => true,
                "off" | "no" | "false" => false,
                word => {
                    v.problem(e.line, format!("active {word:?} must be on or off"));
                    true
                }
            },
        };
        let max_file_bytes = v.size(k.get("max_file_bytes"), 5_000_000_000, 1, 5_000_000_000);
        let max_connections = v.number(k.get("max_connections"), 100, 1, 100_000) as usize;
        let max_connections_per_ip =
            v.number(k.get("max_connections_per_ip"), 10, 1, 100_000) as usize;
        let idle_timeout = v.secs(k.get("idle_timeout_secs"), Duration::from_secs(900), 1);
        let max_login_failures = v.number(k.get("max_login_failures"), 5, 1, 1000) as u32;
        let lockout = v.secs(k.get("lockout_secs"), Duration::from_secs(300), 1);
        let proxy_on = match k.get("proxy_protocol") {
            None => false,
            Some(e) => match e.value.as_str() {
                "on" => true,
                "off" => false,
                word => {
                    v.problem(
                        e.line,
                        format!("proxy_protocol {word:?} is not one of off, on"),
                    );
                    false
                }
            },
        };
        let proxy_protocol = v.proxy_protocol(s.line, "[ftp]", proxy_on, k.get("trusted_proxies"));
        k.finish(v);
        Ftp {
            port,
            passwd_file,
            passive_ports,
            public_address,
            tls,
            active,
            max_file_bytes,
            max_connections,
            max_connections_per_ip,
            idle_timeout,
            max_login_failures,
            lockout,
            proxy_protocol,
        }
    }
}

/// `FIRST-LAST` inclusive, or `0` for a port the kernel chooses.
fn parse_port_range(v: &str) -> Option<(u16, u16)> {
    if v == "0" {
        return Some((0, 0));
    }
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
    (a > 0 && a <= b).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use super::*;
    use std::path::Path;

    #[test]
    fn ftp_defaults() {
        let c = parse_str("", Path::new("/opt/lc/lc.ini")).unwrap();
        let passwd_file = PathBuf::from("/etc/lc/ftp.passwd");
        assert_eq!(
            c.ftp,
            Ftp {
                port: 21,
                passwd_file,
                passive_ports: (20000, 20099),
                public_address: None,
                tls: TlsMode::Optional,
                active: true,
                max_file_bytes: 5_000_000_000,
                max_connections: 100,
                max_connections_per_ip: 10,
                idle_timeout: Duration::from_secs(900),
                max_login_failures: 5,
                lockout: Duration::from_secs(300),
                proxy_protocol: None,
            }
        );
    }
}
