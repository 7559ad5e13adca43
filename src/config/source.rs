//! `[source NAME]`: one data source (its name, MDCA format, receiver and port, allow lists,
//! rendering and framing, the PROXY protocol), where it listens as far as a broken section
//! tells (`Site`: whose problem it is), and the checks across sources.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::values::{valid_name, Keys, Validator};
use super::{formats, ini, Collector, FramingMode, Ftp, Listen, Render};
use crate::allow::{canonical, AllowList};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Receiver {
    SyslogUdp,
    SyslogTcp,
    SyslogTls,
    Ftp,
    Ftps,
}

impl Receiver {
    pub fn parse(s: &str) -> Option<Receiver> {
        Some(match s {
            "syslog-udp" => Receiver::SyslogUdp,
            "syslog-tcp" => Receiver::SyslogTcp,
            "syslog-tls" => Receiver::SyslogTls,
            "ftp" => Receiver::Ftp,
            "ftps" => Receiver::Ftps,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Receiver::SyslogUdp => "syslog-udp",
            Receiver::SyslogTcp => "syslog-tcp",
            Receiver::SyslogTls => "syslog-tls",
            Receiver::Ftp => "ftp",
            Receiver::Ftps => "ftps",
        }
    }

    /// UDP or a stream transport: two sources may share a port number across these.
    pub fn is_udp(self) -> bool {
        self == Receiver::SyslogUdp
    }

    pub fn is_syslog(self) -> bool {
        matches!(
            self,
            Receiver::SyslogUdp | Receiver::SyslogTcp | Receiver::SyslogTls
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub format: String,
    pub receiver: Receiver,
    /// Syslog receivers only; 0 asks the kernel for a free port (tests).
    pub port: u16,
    pub allow: AllowList,
    pub allow_cn: Vec<String>,
    /// The source's own `listen`, or after validation the collector's.
    pub listen: Option<Listen>,
    /// How a syslog message becomes a spool line (FTP sources keep the file's own lines).
    pub render: Render,
    /// How TCP and TLS streams are cut into messages.
    pub framing: FramingMode,
    /// Percent of recent lines that must match `format` before the source warns (0-100).
    pub format_warn_below: u8,
    /// `proxy_protocol = on`: every connection must start with a PROXY protocol header and
    /// come from one of these balancers (`trusted_proxies`); `None` when off.
    pub proxy_protocol: Option<AllowList>,
    pub line: usize,
}

/// Where a source listens, as far as its (maybe broken) section says: which instance a
/// problem in it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// A syslog receiver on this port (or a section with this `port` and no known receiver).
    Port(u16),
    /// A folder of the FTP server: the instance on `[ftp] port`.
    Ftp,
    /// Neither receiver nor port could be read: no `lc run PORT` serves it, and each
    /// warns about it (`lc run` and `lc config check` without a port refuse it).
    Unknown,
}

impl Site {
    /// Whether the instance `lc run PORT` serves this source (`lc run` serves all).
    pub fn served_by(self, port: Option<u16>, ftp_port: u16) -> bool {
        match (self, port) {
            (_, None) => true,
            (Site::Unknown, Some(_)) => false,
            (Site::Port(p), Some(q)) => p == q,
            (Site::Ftp, Some(q)) => q == ftp_port,
        }
    }
}

impl Source {
    pub(super) fn read(v: &mut Validator, name: &str, s: &ini::Section) -> Option<Source> {
        let from = v.problems.len();
        let source = Source::read_keys(v, name, s);
        let site = match &source {
            Some(src) if src.receiver.is_syslog() => Site::Port(src.port),
            Some(_) => Site::Ftp,
            None => {
                // No receiver: the port says whose it is, if it is a number.
                let port = s.entries.iter().rev().find(|e| e.key == "port");
                match port.map(|e| e.value.parse::<u16>()) {
                    Some(Ok(p)) => Site::Port(p),
                    _ => Site::Unknown,
                }
            }
        };
        // A syslog source whose port is not a number is no instance's.
        let site = match (site, s.entries.iter().rev().find(|e| e.key == "port")) {
            (Site::Port(_), Some(e)) if e.value.parse::<u16>().is_err() => Site::Unknown,
            (site, _) => site,
        };
        v.blame(from, name, site);
        source
    }

    fn read_keys(v: &mut Validator, name: &str, s: &ini::Section) -> Option<Source> {
        let mut k = Keys::new(s);
        if !valid_name(name) {
            v.problem(
                s.line,
                format!("source name {name:?} must match [A-Za-z0-9_-]{{1,64}} (it is sent as inputStreamName)"),
            );
        }
        let format = match k.get("format") {
            None => {
                v.problem(s.line, format!("[source {name}] needs `format =`"));
                String::new()
            }
            Some(e) if formats::is_known(&e.value) => e.value.clone(),
            Some(e) => {
                v.problem(
                    e.line,
                    format!(
                        "unknown format {:?}; expected one of: {}",
                        e.value,
                        formats::FORMATS.join(", ")
                    ),
                );
                String::new()
            }
        };
        let receiver = match k.get("receiver") {
            None => {
                v.problem(s.line, format!("[source {name}] needs `receiver =`"));
                None
            }
            Some(e) => match Receiver::parse(&e.value) {
                Some(r) => Some(r),
                None => {
                    v.problem(
                        e.line,
                        format!(
                            "unknown receiver {:?}; expected syslog-udp, syslog-tcp, syslog-tls, ftp or ftps",
                            e.value
                        ),
                    );
                    None
                }
            },
        };
        let port_entry = k.get("port");
        let port = match (receiver, port_entry) {
            (Some(r), Some(e)) if !r.is_syslog() => {
                v.problem(
                    e.line,
                    format!(
                        "`port` is for syslog receivers; {} sources use [ftp] port",
                        r.as_str()
                    ),
                );
                0
            }
            (Some(r), None) if r.is_syslog() => {
                v.problem(
                    s.line,
                    format!("[source {name}] needs `port =` for {}", r.as_str()),
                );
                0
            }
            (_, e) => v.port(e, 0),
        };
        let allow = v.cidrs(k.get("allow"));
        let allow_cn = match k.get("allow_cn") {
            None => Vec::new(),
            Some(e) => e
                .value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        };
        let listen = v.listen(k.get("listen"));
        let render = v.syslog_choice(receiver, k.get("render"), Render::parse, Render::Vendor);
        let framing = v.syslog_choice(
            receiver,
            k.get("framing"),
            FramingMode::parse,
            FramingMode::Auto,
        );
        let format_warn_below = v.number(k.get("format_warn_below"), 90, 0, 100) as u8;
        let proxy_protocol = v.syslog_choice(
            receiver,
            k.get("proxy_protocol"),
            |v| match v {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err("off, on"),
            },
            false,
        );
        if proxy_protocol && receiver == Some(Receiver::SyslogUdp) {
            v.problem(
                s.line,
                format!("[source {name}] proxy_protocol is for syslog-tcp and syslog-tls (a balancer must not carry UDP syslog)"),
            );
        }
        let proxy_protocol = v.proxy_protocol(
            s.line,
            &format!("[source {name}]"),
            proxy_protocol,
            k.get("trusted_proxies"),
        );
        k.finish(v);
        Some(Source {
            name: name.to_string(),
            format,
            receiver: receiver?,
            port,
            allow,
            allow_cn,
            listen,
            render,
            framing,
            format_warn_below,
            proxy_protocol,
            line: s.line,
        })
    }
}

/// What no one section can tell: two sources on one port, a TCP source on the FTP port.
pub(super) fn cross_checks(v: &mut Validator, sources: &[Source], ftp_port: u16) {
    let mut ports: BTreeMap<(bool, u16), (&str, usize)> = BTreeMap::new();
    for s in sources {
        if !s.receiver.is_syslog() || s.port == 0 {
            continue;
        }
        let proto = if s.receiver.is_udp() { "UDP" } else { "TCP" };
        let from = v.problems.len();
        if let Some((other, line)) = ports.insert((s.receiver.is_udp(), s.port), (&s.name, s.line))
        {
            v.problem(
                s.line,
                format!("source {:?} claims {proto} port {} already used by source {other:?} (line {line})", s.name, s.port),
            );
        }
        if !s.receiver.is_udp()
            && s.port == ftp_port
            && sources.iter().any(|o| !o.receiver.is_syslog())
        {
            v.problem(
                s.line,
                format!(
                    "source {:?} claims TCP port {} which the FTP server uses",
                    s.name, s.port
                ),
            );
        }
        v.blame(from, &s.name, Site::Port(s.port));
    }
}

/// `metrics_listen` on a TCP port that a syslog source or the FTP server binds at an address
/// covering it: one of the two binds would fail at run time, whichever instance comes second.
/// Every instance reads the key, so it is an error for all of them.
pub(super) fn metrics_clash(v: &mut Validator, c: &Collector, ftp: &Ftp, sources: &[Source]) {
    let Some(m) = c.metrics_listen.filter(|m| m.port() != 0) else {
        return;
    };
    let mut clashes = Vec::new();
    for s in sources {
        if !s.receiver.is_syslog() || s.receiver.is_udp() || s.port != m.port() {
            continue;
        }
        if let Some(at) = s.listen.as_ref().and_then(|l| covering(l, m.ip())) {
            clashes.push(format!(
                "source {:?} ({}, line {}), which listens on TCP port {} at {at}",
                s.name,
                s.receiver.as_str(),
                s.line,
                s.port
            ));
        }
    }
    // The FTP server runs when there are FTP sources; it binds the collector's `listen`, and
    // a passive port at the address the control connection came to.
    let ftp_source = sources.iter().find(|s| !s.receiver.is_syslog());
    if let (Some(f), Some(at)) = (ftp_source, covering(&c.listen, m.ip())) {
        let server = format!("the FTP server of source {:?} (line {})", f.name, f.line);
        let (first, last) = ftp.passive_ports;
        if ftp.port == m.port() {
            clashes.push(format!(
                "{server}, which listens on TCP port {} at {at} ([ftp] port)",
                ftp.port
            ));
        } else if first != 0 && (first..=last).contains(&m.port()) {
            clashes.push(format!(
                "{server}, whose passive data ports {first}-{last} take TCP port {} at {at} ([ftp] passive_ports)",
                m.port()
            ));
        }
    }
    for clash in clashes {
        v.problem(
            v.metrics_line,
            format!("metrics_listen {m} clashes with {clash}"),
        );
    }
}

/// The address of `listen` whose socket also takes `ip`'s port, as the config writes it: `*`
/// is one dual-stack socket; an explicit `::` or `0.0.0.0` covers its own family only
/// (`server/listen.rs` binds explicit IPv6 addresses IPv6-only).
fn covering(listen: &Listen, ip: IpAddr) -> Option<String> {
    let ip = canonical(ip);
    match listen {
        Listen::Any => Some("*".to_string()),
        Listen::Addrs(addrs) => addrs
            .iter()
            .find(|a| {
                let a = canonical(**a);
                a == ip || (a.is_unspecified() && a.is_ipv4() == ip.is_ipv4())
            })
            .map(IpAddr::to_string),
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use super::super::tests::{check, ASA};
    use std::path::Path;

    /// metrics_listen on a port a TCP receiver binds at an address that covers it: one of the
    /// two binds would fail at run time (on Linux a wildcard listener and a loopback one cannot
    /// share a port), so the config is refused with the key, the source and the port.
    #[test]
    fn metrics_listen_clashing_with_a_tcp_receiver() {
        let metrics = |addr: &str| format!("[collector]\nmetrics_listen = {addr}\n");
        let tcp = |receiver: &str, port: u16, listen: &str| {
            format!("[source a]\nformat = SQUID\nreceiver = {receiver}\nport = {port}\n{listen}")
        };
        let ftp = "[source f]\nformat = SQUID\nreceiver = ftp\n";
        check(
            &(metrics("127.0.0.1:601") + &tcp("syslog-tcp", 601, "")),
            "2: metrics_listen 127.0.0.1:601 clashes with source \"a\" (syslog-tcp, line 3), which listens on TCP port 601 at *",
        );
        check(
            &(metrics("[::1]:6514") + &tcp("syslog-tls", 6514, "listen = ::1\n")),
            "2: metrics_listen [::1]:6514 clashes with source \"a\" (syslog-tls, line 3), which listens on TCP port 6514 at ::1",
        );
        check(
            &(metrics("127.0.0.1:601") + &tcp("syslog-tcp", 601, "listen = 0.0.0.0\n")),
            "2: metrics_listen 127.0.0.1:601 clashes with source \"a\" (syslog-tcp, line 3), which listens on TCP port 601 at 0.0.0.0",
        );
        // UDP, another port, or addresses that do not cover the loopback one: no clash.
        check(
            &(metrics("127.0.0.1:514") + ASA),
            "asa CISCO_ASA_SYSLOG syslog-udp 514",
        );
        check(
            &(metrics("127.0.0.1:602") + &tcp("syslog-tcp", 601, "")),
            "a SQUID syslog-tcp 601",
        );
        check(
            &(metrics("127.0.0.1:601") + &tcp("syslog-tcp", 601, "listen = 10.0.0.5, ::\n")),
            "a SQUID syslog-tcp 601",
        );
        check(
            &(metrics("[::1]:601") + &tcp("syslog-tcp", 601, "listen = 0.0.0.0\n")),
            "a SQUID syslog-tcp 601",
        );
        check(
            &(metrics("127.0.0.1:0") + &tcp("syslog-tcp", 0, "")),
            "a SQUID syslog-tcp 0",
        );
        // The FTP server's control port and passive range, when there are FTP sources.
        check(
            &(metrics("127.0.0.1:21") + ftp),
            "2: metrics_listen 127.0.0.1:21 clashes with the FTP server of source \"f\" (line 3), which listens on TCP port 21 at * ([ftp] port)",
        );
        check(
            &(metrics("127.0.0.1:20050") + ftp),
            "2: metrics_listen 127.0.0.1:20050 clashes with the FTP server of source \"f\" (line 3), whose passive data ports 20000-20099 take TCP port 20050 at * ([ftp] passive_ports)",
        );
        check(
            &(metrics("127.0.0.1:2121") + "[ftp]\nport = 2121\n" + ftp),
            "2: metrics_listen 127.0.0.1:2121 clashes with the FTP server of source \"f\" (line 5), which listens on TCP port 2121 at * ([ftp] port)",
        );
        check(&metrics("127.0.0.1:21"), "");
        check(
            &("[collector]\nlisten = 10.0.0.5\nmetrics_listen = 127.0.0.1:21\n".to_string() + ftp),
            "f SQUID ftp 0",
        );
    }

    #[test]
    fn proxy_protocol() {
        let tcp = "[source t]\nformat = SQUID\nreceiver = syslog-tcp\nport = 514\n";
        check(
            &format!("{tcp}proxy_protocol = on\ntrusted_proxies = 10.0.0.5, 10.1.0.0/16\n"),
            "t SQUID syslog-tcp 514",
        );
        check(
            &format!("{tcp}proxy_protocol = on\n"),
            "1: [source t] proxy_protocol = on needs trusted_proxies (the load balancers' addresses)",
        );
        check(
            &format!("{tcp}trusted_proxies = 10.0.0.5\n"),
            "5: trusted_proxies is used only with proxy_protocol = on",
        );
        check(
            &format!("{tcp}proxy_protocol = yes\n"),
            "5: proxy_protocol \"yes\" is not one of off, on",
        );
        check(
            &format!("{tcp}proxy_protocol = on\ntrusted_proxies = 10.0.0.0/33\n"),
            "6: trusted_proxies: \"10.0.0.0/33\" has a prefix length outside 0..=32",
        );
        check(
            &format!("{ASA}proxy_protocol = on\ntrusted_proxies = 10.0.0.5\n"),
            "1: [source asa] proxy_protocol is for syslog-tcp and syslog-tls (a balancer must not carry UDP syslog)",
        );
        // FTP sources are behind the [ftp] server's setting, not their own.
        check(
            "[source f]\nformat = SQUID\nreceiver = ftp\nproxy_protocol = on\n",
            "4: `proxy_protocol` is for syslog receivers; ftp sources deliver the uploaded file's own lines",
        );
        check(
            "[ftp]\nproxy_protocol = on\ntrusted_proxies = 10.0.0.5\n",
            "",
        );
        check(
            "[ftp]\nproxy_protocol = on\n",
            "1: [ftp] proxy_protocol = on needs trusted_proxies (the load balancers' addresses)",
        );
        check(
            "[ftp]\nproxy_protocol = off\ntrusted_proxies = 10.0.0.5\n",
            "3: trusted_proxies is used only with proxy_protocol = on",
        );
        check(
            "[ftp]\nproxy_protocol = v2\n",
            "2: proxy_protocol \"v2\" is not one of off, on",
        );
        check(
            "[ftp]\nproxy_protocol = on\ntrusted_proxies = 10.0.0.0/8, nope\n",
            "3: trusted_proxies: \"nope\" is not an IP address or CIDR block",
        );
        let c = parse_str(
            "[ftp]\nproxy_protocol = on\ntrusted_proxies = 10.0.0.5, 10.1.0.0/16\n",
            Path::new("/etc/lc/lc.ini"),
        )
        .unwrap();
        let trusted = c.ftp.proxy_protocol.expect("on");
        assert!(trusted.allows("10.1.2.3".parse().unwrap()));
        assert!(!trusted.allows("10.0.0.6".parse().unwrap()));
        let c = parse_str(
            &format!("{tcp}proxy_protocol = on\ntrusted_proxies = 10.0.0.5\n"),
            Path::new("/etc/lc/lc.ini"),
        )
        .unwrap();
        let trusted = c.sources[0].proxy_protocol.as_ref().unwrap();
        assert!(trusted.allows("10.0.0.5".parse().unwrap()));
        assert!(!trusted.allows("10.0.0.6".parse().unwrap()));
    }
}
