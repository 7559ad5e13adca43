//! Connection admission: `max_connections` for the instance and `max_connections_per_ip`.
//!
//! [`Admission::admit`] hands out a [`Ticket`] and [`Admission::release`] takes it back; they
//! are the only ways to change the counts, and a ticket cannot be copied, so the counts always
//! equal the tickets alive. A ticket lives beside its connection (in the connection table)
//! and is released when the connection is removed. Addresses are counted canonical (an
//! IPv4-mapped IPv6 peer counts as its IPv4 address), as the allow lists match them.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::allow::canonical;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once.
    pub total: usize,
    /// Connections open at once from one address.
    pub per_ip: usize,
}

/// Why a connection was not admitted, with the limit it hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Total(usize),
    PerIp(usize),
}

/// One admitted connection's place in the counts; give it back with `release`.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a ticket not released keeps its place in the counts"]
pub struct Ticket {
    /// `None` until a PROXY header names the client (`admit_unplaced`).
    ip: Option<IpAddr>,
}

#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    open: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl Admission {
    pub fn new(limits: Limits) -> Admission {
        Admission {
            limits,
            open: 0,
            per_ip: HashMap::new(),
        }
    }

    /// New limits (a reload). Connections over them stay; new ones wait for room.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Admits a connection from `ip`, or says which limit it hit (the total first).
    pub fn admit(&mut self, ip: IpAddr) -> Result<Ticket, Refusal> {
        let ip = canonical(ip);
        if self.open >= self.limits.total {
            return Err(Refusal::Total(self.limits.total));
        }
        let n = self.per_ip.entry(ip).or_insert(0);
        if *n >= self.limits.per_ip {
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
            return Err(Refusal::PerIp(self.limits.per_ip));
        }
        *n += 1;
        self.open += 1;
        Ok(Ticket { ip: Some(ip) })
    }

    /// Admits a connection whose client is not known yet (a balancer's, before its PROXY
    /// header): it counts in the total only, and `transfer` gives it its address. So the
    /// balancer's own address never meets a per-IP limit meant for one client.
    pub fn admit_unplaced(&mut self) -> Result<Ticket, Refusal> {
        if self.open >= self.limits.total {
            return Err(Refusal::Total(self.limits.total));
        }
        self.open += 1;
        Ok(Ticket { ip: None })
    }

    /// A connection closed.
    pub fn release(&mut self, ticket: Ticket) {
        self.open -= 1;
        if let Some(ip) = ticket.ip {
            self.uncount(ip);
        }
    }

    fn uncount(&mut self, ip: IpAddr) {
        let n = self.per_ip.get_mut(&ip).expect("a live ticket has a count");
        *n -= 1;
        if *n == 0 {
            self.per_ip.remove(&ip);
        }
    }

    /// Moves a connection's place to `ip` (a PROXY protocol header named the real client):
    /// the total stays, the per-IP counts move. Refused by `ip`'s limit, nothing changes.
    pub fn transfer(&mut self, ticket: &mut Ticket, ip: IpAddr) -> Result<(), Refusal> {
        let ip = canonical(ip);
        if ticket.ip == Some(ip) {
            return Ok(());
        }
        let n = self.per_ip.entry(ip).or_insert(0);
        if *n >= self.limits.per_ip {
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
            return Err(Refusal::PerIp(self.limits.per_ip));
        }
        *n += 1;
        if let Some(old) = ticket.ip.replace(ip) {
            self.uncount(old);
        }
        Ok(())
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open
    }

    /// Connections open now from `ip`.
    #[cfg(test)]
    pub fn from(&self, ip: IpAddr) -> usize {
        self.per_ip.get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// Addresses with a connection open (the table holds no zero counts).
    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.per_ip.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` under limits (total, per IP): `+IP` admits, `*` admits unplaced, `-N`
    /// releases the ticket of step N (0-based), `~N,IP` transfers it, `=T,P` sets new limits. Each `+` writes `ok` or the refusal; the end
    /// shows open connections and the per-IP table.
    #[track_caller]
    fn check(limits: (usize, usize), script: &str, expected: &str) {
        let mut a = Admission::new(Limits {
            total: limits.0,
            per_ip: limits.1,
        });
        let mut tickets: Vec<Option<Ticket>> = Vec::new();
        let mut out = Vec::new();
        for step in script.split_whitespace() {
            let (op, arg) = step.split_at(1);
            match op {
                "*" | "+" => {
                    let got = if op == "*" {
                        a.admit_unplaced()
                    } else {
                        a.admit(arg.parse().unwrap())
                    };
                    match got {
                        Ok(t) => {
                            tickets.push(Some(t));
                            out.push("ok".to_string());
                        }
                        Err(r) => {
                            tickets.push(None);
                            out.push(format!("{r:?}"));
                        }
                    }
                }
                "-" => {
                    let t = tickets[arg.parse::<usize>().unwrap()].take().unwrap();
                    a.release(t);
                    tickets.push(None);
                }
                "~" => {
                    let (n, ip) = arg.split_once(',').unwrap();
                    let t = tickets[n.parse::<usize>().unwrap()].as_mut().unwrap();
                    out.push(match a.transfer(t, ip.parse().unwrap()) {
                        Ok(()) => "moved".to_string(),
                        Err(r) => format!("{r:?}"),
                    });
                    tickets.push(None);
                }
                "=" => {
                    let (t, p) = arg.split_once(',').unwrap();
                    a.set_limits(Limits {
                        total: t.parse().unwrap(),
                        per_ip: p.parse().unwrap(),
                    });
                    tickets.push(None);
                }
                _ => panic!("bad step {step}"),
            }
        }
        let mut table: Vec<String> = a.per_ip.iter().map(|(ip, n)| format!("{ip}:{n}")).collect();
        table.sort();
        let got = format!(
            "{} / open {} [{}]",
            out.join(" "),
            a.open(),
            table.join(" ")
        );
        assert_eq!(got, expected, "script {script:?}");
        assert_eq!(a.open(), tickets.iter().flatten().count());
        assert_eq!(a.addresses(), a.per_ip.values().filter(|&&n| n > 0).count());
    }

    #[test]
    fn per_ip_and_total() {
        check((3, 2), "+10.0.0.1 +10.0.0.1", "ok ok / open 2 [10.0.0.1:2]");
        check(
            (3, 2),
            "+10.0.0.1 +10.0.0.1 +10.0.0.1",
            "ok ok PerIp(2) / open 2 [10.0.0.1:2]",
        );
        check(
            (3, 2),
            "+10.0.0.1 +10.0.0.2 +10.0.0.3 +10.0.0.4",
            "ok ok ok Total(3) / open 3 [10.0.0.1:1 10.0.0.2:1 10.0.0.3:1]",
        );
        // The total is checked first: a full instance says so, whatever the address.
        check(
            (1, 1),
            "+10.0.0.1 +10.0.0.1",
            "ok Total(1) / open 1 [10.0.0.1:1]",
        );
        // A refused address that holds nothing leaves no entry behind.
        check(
            (5, 0),
            "+10.0.0.1 +10.0.0.2",
            "PerIp(0) PerIp(0) / open 0 []",
        );
    }

    #[test]
    fn release_makes_room() {
        check(
            (3, 1),
            "+10.0.0.1 -0 +10.0.0.1",
            "ok ok / open 1 [10.0.0.1:1]",
        );
        check((1, 1), "+10.0.0.1 -0", "ok / open 0 []");
        check(
            (2, 2),
            "+10.0.0.1 +10.0.0.2 -0 -1 +10.0.0.3",
            "ok ok ok / open 1 [10.0.0.3:1]",
        );
    }

    /// A PROXY protocol header moves a connection from the balancer's address to the
    /// client's: the total stays, the client's limit applies.
    #[test]
    fn transfer_to_the_real_client() {
        check(
            (3, 2),
            "+10.0.0.9 ~0,192.0.2.1",
            "ok moved / open 1 [192.0.2.1:1]",
        );
        check(
            (3, 2),
            "+10.0.0.9 +10.0.0.9 ~0,192.0.2.1 ~1,192.0.2.1",
            "ok ok moved moved / open 2 [192.0.2.1:2]",
        );
        check(
            (5, 1),
            "+10.0.0.9 +10.0.0.8 ~0,192.0.2.1 ~1,192.0.2.1",
            "ok ok moved PerIp(1) / open 2 [10.0.0.8:1 192.0.2.1:1]",
        );
        check(
            (5, 2),
            "+10.0.0.9 +10.0.0.8 +10.0.0.7 ~0,192.0.2.1 ~1,192.0.2.1 ~2,192.0.2.1",
            "ok ok ok moved moved PerIp(2) / open 3 [10.0.0.7:1 192.0.2.1:2]",
        );
        check(
            (5, 1),
            "+10.0.0.9 ~0,10.0.0.9",
            "ok moved / open 1 [10.0.0.9:1]",
        );
        check(
            (5, 0),
            "=5,1 +10.0.0.9 =5,0 ~1,192.0.2.1",
            "ok PerIp(0) / open 1 [10.0.0.9:1]",
        );
    }

    /// A balancer's connection before its header counts in the total only; the header places
    /// it under the client, whose limit applies then.
    #[test]
    fn unplaced_until_the_header() {
        check((3, 1), "* * *", "ok ok ok / open 3 []");
        check((2, 1), "* * *", "ok ok Total(2) / open 2 []");
        check(
            (3, 1),
            "* ~0,192.0.2.1 * ~2,192.0.2.1",
            "ok moved ok PerIp(1) / open 2 [192.0.2.1:1]",
        );
        check(
            (3, 1),
            "* ~0,192.0.2.1 -0 * ~3,192.0.2.1",
            "ok moved ok moved / open 1 [192.0.2.1:1]",
        );
        check((3, 1), "* -0 +10.0.0.1", "ok ok / open 1 [10.0.0.1:1]");
    }

    #[test]
    fn mapped_addresses_count_as_ipv4() {
        check(
            (5, 1),
            "+::ffff:10.0.0.1 +10.0.0.1",
            "ok PerIp(1) / open 1 [10.0.0.1:1]",
        );
        check(
            (5, 2),
            "+::ffff:10.0.0.1 +10.0.0.1 -0 -1",
            "ok ok / open 0 []",
        );
        check(
            (5, 1),
            "+2001:db8::1 +2001:db8::2",
            "ok ok / open 2 [2001:db8::1:1 2001:db8::2:1]",
        );
    }

    #[test]
    fn lower_limits_keep_open_connections() {
        check(
            (3, 3),
            "+10.0.0.1 +10.0.0.1 =1,1 +10.0.0.2",
            "ok ok Total(1) / open 2 [10.0.0.1:2]",
        );
        check(
            (3, 3),
            "+10.0.0.1 +10.0.0.1 =1,1 -0 -1 +10.0.0.2",
            "ok ok ok / open 1 [10.0.0.2:1]",
        );
    }
}
