//! The connection table: slots (with deferred reuse) and admission in one type, so a slot is
//! taken exactly when a ticket is, and given back exactly when the ticket is released.
//!
//! The syslog server keeps its stream connections here. What a connection is (a TCP stream,
//! a TLS session, its framing) is the caller's `C`; the table never touches it.

use std::net::IpAddr;

use mio::Token;

use super::guard::{Admission, Limits, Refusal, Ticket};
use super::slab::{Reuse, Slab};

/// Why `admit_with` stored nothing.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused<E> {
    /// A connection limit.
    Limit(Refusal),
    /// The caller's constructor failed (registering the socket, a TLS session).
    Failed(E),
}

struct Held<C> {
    conn: C,
    ticket: Ticket,
}

pub struct ConnTable<C> {
    slab: Slab<Held<C>>,
    admission: Admission,
}

impl<C> ConnTable<C> {
    /// Tokens are `base + slot`.
    pub fn new(base: usize, limits: Limits) -> ConnTable<C> {
        ConnTable {
            slab: Slab::new(base, Reuse::NextBatch),
            admission: Admission::new(limits),
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.admission.set_limits(limits);
    }

    /// Admits a connection from `ip` and stores what `make` builds for the token it will
    /// have (`make` registers the socket under it). When a limit refuses or `make` fails,
    /// nothing changes.
    pub fn admit_with<E>(
        &mut self,
        ip: IpAddr,
        make: impl FnOnce(Token) -> Result<C, E>,
    ) -> Result<Token, Refused<E>> {
        let ticket = self.admission.admit(ip).map_err(Refused::Limit)?;
        self.store(ticket, make)
    }

    /// As `admit_with`, for a connection whose client is not known yet (a trusted
    /// balancer's, before its PROXY header): it counts in the total only until `readdress`
    /// places it under the client (see `Admission::admit_unplaced`).
    pub fn admit_unplaced_with<E>(
        &mut self,
        make: impl FnOnce(Token) -> Result<C, E>,
    ) -> Result<Token, Refused<E>> {
        let ticket = self.admission.admit_unplaced().map_err(Refused::Limit)?;
        self.store(ticket, make)
    }

    fn store<E>(
        &mut self,
        ticket: Ticket,
        make: impl FnOnce(Token) -> Result<C, E>,
    ) -> Result<Token, Refused<E>> {
        let token = self.slab.next_token();
        match make(token) {
            Ok(conn) => Ok(self.slab.insert(Held { conn, ticket })),
            Err(e) => {
                self.admission.release(ticket);
                Err(Refused::Failed(e))
            }
        }
    }

    /// Takes a connection out and releases its place in the counts.
    pub fn remove(&mut self, token: Token) -> Option<C> {
        let held = self.slab.remove(token)?;
        self.admission.release(held.ticket);
        Some(held.conn)
    }

    /// Counts the connection at `token` as one from `ip` from now on (see
    /// `Admission::transfer`); on a refusal nothing changes.
    pub fn readdress(&mut self, token: Token, ip: IpAddr) -> Result<(), Refusal> {
        match self.slab.get_mut(token) {
            Some(held) => self.admission.transfer(&mut held.ticket, ip),
            None => Ok(()),
        }
    }

    /// A new event batch begins (see `Slab::next_batch`).
    pub fn next_batch(&mut self) {
        self.slab.next_batch();
    }

    pub fn get(&self, token: Token) -> Option<&C> {
        self.slab.get(token).map(|h| &h.conn)
    }

    pub fn get_mut(&mut self, token: Token) -> Option<&mut C> {
        self.slab.get_mut(token).map(|h| &mut h.conn)
    }

    /// See `Slab::wake`.
    pub fn wake(&mut self, token: Token) -> bool {
        self.slab.wake(token)
    }

    /// See `Slab::idle`.
    pub fn idle(&mut self, token: Token) {
        self.slab.idle(token);
    }

    /// Connections open.
    pub fn len(&self) -> usize {
        debug_assert_eq!(self.slab.len(), self.admission.open());
        self.slab.len()
    }

    /// Connections open from `ip`.
    #[cfg(test)]
    pub fn from(&self, ip: IpAddr) -> usize {
        self.admission.from(ip)
    }

    pub fn iter(&self) -> impl Iterator<Item = (Token, &C)> {
        self.slab.iter().map(|(t, h)| (t, &h.conn))
    }

    pub fn tokens(&self) -> Vec<Token> {
        self.slab.tokens()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` on a table with base 100 and limits (2 total, 1 per IP): `+IP` admits,
    /// `!IP` admits with a constructor that fails, `*IP` admits unplaced (a balancer's
    /// connection; the IP only names it), `~N,IP` readdresses token N, `-N` removes token N,
    /// `|` starts a batch. `+`, `!` and `*` write the token or refusal, `~` `moved` or the
    /// refusal; the end shows the open connections (an unplaced one under its name) and each
    /// address's count.
    #[track_caller]
    fn check(script: &str, expected: &str) {
        let mut t: ConnTable<String> = ConnTable::new(
            100,
            Limits {
                total: 2,
                per_ip: 1,
            },
        );
        let mut out = Vec::new();
        for step in script.split_whitespace() {
            let (op, arg) = step.split_at(1);
            match op {
                "+" | "!" | "*" => {
                    let ip: IpAddr = arg.parse().unwrap();
                    let make = |token: Token| {
                        if op == "!" {
                            Err("register failed")
                        } else {
                            Ok(format!("{arg}@{}", token.0))
                        }
                    };
                    let got = if op == "*" {
                        t.admit_unplaced_with(make)
                    } else {
                        t.admit_with(ip, make)
                    };
                    out.push(match got {
                        Ok(token) => token.0.to_string(),
                        Err(e) => format!("{e:?}"),
                    });
                }
                "-" => {
                    let got = t.remove(Token(arg.parse().unwrap()));
                    out.push(got.unwrap_or_else(|| "none".into()));
                }
                "~" => {
                    let (n, ip) = arg.split_once(',').unwrap();
                    let token = Token(n.parse().unwrap());
                    let ip: IpAddr = ip.parse().unwrap();
                    out.push(match t.readdress(token, ip) {
                        Ok(()) => {
                            if let Some(c) = t.get_mut(token) {
                                *c = format!("{ip}@{}", token.0);
                            }
                            "moved".to_string()
                        }
                        Err(r) => format!("{r:?}"),
                    });
                }
                "|" => t.next_batch(),
                _ => panic!("bad step {step}"),
            }
        }
        let mut live: Vec<String> = t.iter().map(|(_, c)| c.clone()).collect();
        live.sort();
        let mut counts: Vec<String> = t
            .iter()
            .map(|(_, c)| c.split('@').next().unwrap().parse::<IpAddr>().unwrap())
            .map(|ip| format!("{ip}:{}", t.from(ip)))
            .collect();
        counts.sort();
        counts.dedup();
        let got = format!(
            "{} / {} [{}] [{}]",
            out.join(" "),
            t.len(),
            live.join(" "),
            counts.join(" ")
        );
        assert_eq!(got, expected, "script {script:?}");
    }

    #[test]
    fn slots_follow_tickets() {
        // The constructor sees the token the connection gets.
        check(
            "+10.0.0.1 +10.0.0.2",
            "100 101 / 2 [10.0.0.1@100 10.0.0.2@101] [10.0.0.1:1 10.0.0.2:1]",
        );
        check(
            "+10.0.0.1 +10.0.0.1",
            "100 Limit(PerIp(1)) / 1 [10.0.0.1@100] [10.0.0.1:1]",
        );
        check(
            "+10.0.0.1 +10.0.0.2 +10.0.0.3",
            "100 101 Limit(Total(2)) / 2 [10.0.0.1@100 10.0.0.2@101] [10.0.0.1:1 10.0.0.2:1]",
        );
        // Removing gives the place back at once, the slot after the batch.
        check(
            "+10.0.0.1 -100 +10.0.0.1",
            "100 10.0.0.1@100 101 / 1 [10.0.0.1@101] [10.0.0.1:1]",
        );
        check(
            "+10.0.0.1 -100 | +10.0.0.1",
            "100 10.0.0.1@100 100 / 1 [10.0.0.1@100] [10.0.0.1:1]",
        );
        check("+10.0.0.1 -100 -100", "100 10.0.0.1@100 none / 0 [] []");
    }

    #[test]
    fn a_failed_constructor_changes_nothing() {
        check(
            "!10.0.0.1 +10.0.0.1",
            "Failed(\"register failed\") 100 / 1 [10.0.0.1@100] [10.0.0.1:1]",
        );
        check(
            "+10.0.0.1 !10.0.0.2 +10.0.0.3",
            "100 Failed(\"register failed\") 101 / 2 [10.0.0.1@100 10.0.0.3@101] [10.0.0.1:1 10.0.0.3:1]",
        );
        check(
            "+10.0.0.1 +10.0.0.2 !10.0.0.3",
            "100 101 Limit(Total(2)) / 2 [10.0.0.1@100 10.0.0.2@101] [10.0.0.1:1 10.0.0.2:1]",
        );
    }

    /// A balancer's connection counts in the total only until its header names the client;
    /// then the client's per-IP limit applies.
    #[test]
    fn unplaced_until_readdressed() {
        check(
            "*10.0.0.9 *10.0.0.9",
            "100 101 / 2 [10.0.0.9@100 10.0.0.9@101] [10.0.0.9:0]",
        );
        check(
            "*10.0.0.9 *10.0.0.9 *10.0.0.9",
            "100 101 Limit(Total(2)) / 2 [10.0.0.9@100 10.0.0.9@101] [10.0.0.9:0]",
        );
        check(
            "*10.0.0.9 *10.0.0.9 ~100,192.0.2.1 ~101,192.0.2.2",
            "100 101 moved moved / 2 [192.0.2.1@100 192.0.2.2@101] [192.0.2.1:1 192.0.2.2:1]",
        );
        check(
            "*10.0.0.9 *10.0.0.9 ~100,192.0.2.1 ~101,192.0.2.1",
            "100 101 moved PerIp(1) / 2 [10.0.0.9@101 192.0.2.1@100] [10.0.0.9:0 192.0.2.1:1]",
        );
        check(
            "+192.0.2.1 *10.0.0.9 ~101,192.0.2.1",
            "100 101 PerIp(1) / 2 [10.0.0.9@101 192.0.2.1@100] [10.0.0.9:0 192.0.2.1:1]",
        );
        // Removing a placed connection gives its client's place back.
        check(
            "*10.0.0.9 ~100,192.0.2.1 -100 | *10.0.0.9 ~100,192.0.2.1",
            "100 moved 192.0.2.1@100 100 moved / 1 [192.0.2.1@100] [192.0.2.1:1]",
        );
        check(
            "*10.0.0.9 !10.0.0.9 +10.0.0.1",
            "100 Failed(\"register failed\") 101 / 2 [10.0.0.1@101 10.0.0.9@100] [10.0.0.1:1 10.0.0.9:0]",
        );
    }
}
