//! Sender allow lists: `allow = 10.1.2.3, 10.9.0.0/16, 2001:db8::/32`.
//!
//! Pure parsing and matching; the receivers in `server/` consult it per datagram and per accepted
//! connection. IPv4-mapped IPv6 peers (`::ffff:10.1.2.3`, what a dual-stack socket reports) match
//! IPv4 entries.

use std::fmt;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (addr_s, prefix_s) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_s
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_s {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?} has a prefix length outside 0..={max}")),
            },
        };
        let cidr = Cidr { addr, prefix };
        if cidr.network() != cidr.addr {
            return Err(format!(
                "{s:?} has host bits set; did you mean {}/{prefix}?",
                cidr.network()
            ));
        }
        Ok(cidr)
    }

    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4((u32::from(a) & mask32(self.prefix)).into()),
            IpAddr::V6(a) => IpAddr::V6((u128::from(a) & mask128(self.prefix)).into()),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Maps `::ffff:a.b.c.d` to `a.b.c.d` so dual-stack sockets match IPv4 rules.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix)
    }
}

/// An empty list allows everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList(pub Vec<Cidr>);

impl AllowList {
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(rule: &str, ip: &str, expected: Result<bool, &str>) {
        let got = Cidr::parse(rule).map(|c| c.contains(ip.parse().unwrap()));
        assert_eq!(got, expected.map_err(str::to_string));
    }

    #[test]
    fn table() {
        check("10.1.2.3", "10.1.2.3", Ok(true));
        check("10.1.2.3", "10.1.2.4", Ok(false));
        check("10.9.0.0/16", "10.9.255.1", Ok(true));
        check("10.9.0.0/16", "10.10.0.1", Ok(false));
        check("0.0.0.0/0", "192.0.2.1", Ok(true));
        check("10.1.2.3", "::ffff:10.1.2.3", Ok(true));
        check("2001:db8::/32", "2001:db8:1::5", Ok(true));
        check("2001:db8::/32", "2001:db9::5", Ok(false));
        check("2001:db8::/32", "10.0.0.1", Ok(false));
        check("::1", "::1", Ok(true));
        check(
            "10.9.1.0/16",
            "10.9.1.1",
            Err("\"10.9.1.0/16\" has host bits set; did you mean 10.9.0.0/16?"),
        );
        check(
            "10.0.0.0/33",
            "10.0.0.1",
            Err("\"10.0.0.0/33\" has a prefix length outside 0..=32"),
        );
        check(
            "10.0.0.0/x",
            "10.0.0.1",
            Err("\"10.0.0.0/x\" has a prefix length outside 0..=32"),
        );
        check(
            "host.example",
            "10.0.0.1",
            Err("\"host.example\" is not an IP address or CIDR block"),
        );
    }

    #[test]
    fn empty_list_allows_all() {
        assert!(AllowList::default().allows("192.0.2.1".parse().unwrap()));
    }
}
