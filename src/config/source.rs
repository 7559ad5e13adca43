//! `[source NAME]`: one data source (its name, MDCA format, receiver and port, allow lists,
//! rendering and framing, the PROXY protocol), where it listens as far as a broken section
//! tells (`Site`: whose problem it is), and the checks across sources.

use std::collections::BTreeMap;

use super::values::{valid_name, Keys, Validator};
use super::{formats, ini, FramingMode, Listen, Render};
use crate::allow::AllowList;

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

#[cfg(test)]
mod tests {
    use super::super::parse_str;
    use super::super::tests::{check, ASA};
    use std::path::Path;

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
