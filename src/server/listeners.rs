//! The syslog receivers' listening sockets, and the rule that a reload binds all or nothing.
//!
//! `Listeners` owns every listening socket of the instance in a `Slab` with `Reuse::Never`
//! (a listener's token names it for the life of the process), and its methods are the only
//! ways to open and close one: `serve` registers sockets bound for a source, `close_of` closes
//! a source's, and `bind_all` binds the sockets of a reload plan, all of them or none. When a
//! plan's socket cannot be bound because a moving source holds the address, the listeners the
//! plan closes anyway are closed and the binds tried once more; if that fails too, they are
//! bound again where they were, so a refused reload leaves the instance listening as before
//! (issue 12, bug 2). The loop reads from the sockets (`udp.rs`, `Conns::admit` after an
//! accept) and owns the sources; this file knows a source only by its index and name, and
//! tells the loop which tokens to look at and which sources were left without a listener.

use std::io;
use std::net::SocketAddr;

use mio::{Interest, Registry, Token};

use super::listen::{self, Listener, Socket};
use super::reload::ReloadPlan;
use crate::config::Source;
use crate::reactor::slab::{Reuse, Slab};
use crate::reactor::LISTENER_BASE;

/// Sockets bound for a reload, by source name, not yet serving: `serve` them at commit.
pub type Staged = Vec<(String, Vec<Listener>)>;

/// A reload whose sockets could not all be bound: nothing of it was kept.
#[derive(Debug)]
pub struct Refused {
    /// The bind that failed.
    pub error: String,
    /// Listeners bound again where they were: the loop looks at each once.
    pub listening: Vec<Token>,
    /// Sources (by index) whose listeners closed and could not be bound again (another process
    /// took the address in between): they have none until a reload or restart binds them.
    pub unbound: Vec<usize>,
}

/// A source's listeners as they were before they closed, to bind the same again.
#[derive(Debug)]
struct Closed {
    source: usize,
    name: String,
    udp: bool,
    addrs: Vec<(SocketAddr, bool)>,
}

pub struct Listeners {
    slab: Slab<Listener>,
}

impl Default for Listeners {
    fn default() -> Listeners {
        Listeners {
            slab: Slab::new(LISTENER_BASE, Reuse::Never),
        }
    }
}

/// Binds `s`'s sockets where its config says (none for an FTP folder: the FTP server binds
/// its own port).
pub fn bind(s: &Source, udp_rcvbuf: usize) -> Result<Vec<Listener>, String> {
    if !s.receiver.is_syslog() {
        return Ok(Vec::new());
    }
    listen::bind(
        &s.name,
        s.receiver.is_udp(),
        &listen::addresses_of(s),
        udp_rcvbuf,
    )
}

impl Listeners {
    /// An event for `token`: whether it was idle (and now goes on the work list).
    pub fn wake(&mut self, token: Token) -> bool {
        self.slab.wake(token)
    }

    /// `token` returned `WouldBlock`: it waits for its next edge.
    pub fn idle(&mut self, token: Token) {
        self.slab.idle(token);
    }

    pub fn get(&self, token: Token) -> Option<&Listener> {
        self.slab.get(token)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Listener> {
        self.slab.iter().map(|(_, l)| l)
    }

    /// Registers `bound` with the poll as source `source`'s listeners. Returns their tokens:
    /// data may be queued before the first edge, so the loop looks at each once.
    pub fn serve(
        &mut self,
        registry: &Registry,
        source: usize,
        bound: Vec<Listener>,
    ) -> io::Result<Vec<Token>> {
        bound
            .into_iter()
            .map(|l| self.register(registry, source, l))
            .collect()
    }

    fn register(
        &mut self,
        registry: &Registry,
        source: usize,
        mut l: Listener,
    ) -> io::Result<Token> {
        let token = self.slab.next_token();
        registry.register(l.event_source(), token, Interest::READABLE)?;
        log::info!("source {}: listening on {} {}", l.name, l.proto(), l.addr);
        l.source = source;
        Ok(self.slab.insert(l))
    }

    /// Closes source `source`'s listeners.
    pub fn close_of(&mut self, registry: &Registry, source: usize) {
        self.close(registry, source);
    }

    /// Closes every listener (a stop).
    pub fn close_all(&mut self, registry: &Registry) {
        for token in self.slab.tokens() {
            let mut l = self.slab.remove(token).expect("listed");
            let _ = registry.deregister(l.event_source());
            log::info!("source {}: stopped listening on {}", l.name, l.addr);
        }
    }

    fn close(&mut self, registry: &Registry, source: usize) -> Closed {
        let mut closed = Closed {
            source,
            name: String::new(),
            udp: false,
            addrs: Vec::new(),
        };
        let tokens: Vec<Token> = self
            .slab
            .iter()
            .filter(|(_, l)| l.source == source)
            .map(|(t, _)| t)
            .collect();
        for token in tokens {
            let mut l = self.slab.remove(token).expect("listed");
            let _ = registry.deregister(l.event_source());
            log::info!("source {}: stopped listening on {}", l.name, l.addr);
            closed.udp = matches!(l.socket, Socket::Udp(_));
            closed.addrs.push((l.addr, l.dual));
            closed.name = l.name;
        }
        closed
    }

    /// Binds the sockets of every source in `plan.bind`, or none. A moving source may hold
    /// the address another one (or itself) moves to: then the listeners of `plan.close`
    /// close and the binds are tried once more. If one still fails, what was bound is dropped
    /// and what was closed is bound again where it was: the instance listens as before.
    /// On success the listeners of `plan.close` may be closed already; the commit closes
    /// them (again) with `close_of`.
    pub fn bind_all(
        &mut self,
        registry: &Registry,
        plan: &ReloadPlan,
        udp_rcvbuf: usize,
    ) -> Result<Staged, Refused> {
        let try_all = || -> Result<Staged, String> {
            plan.bind
                .iter()
                .map(|s| Ok((s.name.clone(), bind(s, udp_rcvbuf)?)))
                .collect()
        };
        let error = match try_all() {
            Ok(staged) => return Ok(staged),
            Err(e) if plan.close.is_empty() => e,
            Err(_) => {
                let closed: Vec<Closed> = plan
                    .close
                    .iter()
                    .map(|&i| self.close(registry, i))
                    .collect();
                match try_all() {
                    Ok(staged) => return Ok(staged),
                    Err(error) => {
                        let (listening, unbound) = self.reopen(registry, closed, udp_rcvbuf);
                        return Err(Refused {
                            error,
                            listening,
                            unbound,
                        });
                    }
                }
            }
        };
        Err(Refused {
            error,
            listening: Vec::new(),
            unbound: Vec::new(),
        })
    }

    /// A refused reload had closed these listeners: binds them again on the same addresses.
    /// Returns the tokens listening again and the sources that could not be bound (another
    /// process took the port in between), said at error level.
    fn reopen(
        &mut self,
        registry: &Registry,
        closed: Vec<Closed>,
        udp_rcvbuf: usize,
    ) -> (Vec<Token>, Vec<usize>) {
        let (mut listening, mut unbound) = (Vec::new(), Vec::new());
        for c in closed {
            match listen::bind(&c.name, c.udp, &c.addrs, udp_rcvbuf) {
                Ok(ls) => {
                    for l in ls {
                        match self.register(registry, c.source, l) {
                            Ok(token) => listening.push(token),
                            Err(e) => log::error!("source {}: cannot listen again: {e}", c.name),
                        }
                    }
                }
                Err(e) => {
                    log::error!(
                        "{e}; the source has no listener until a reload or restart binds it"
                    );
                    unbound.push(c.source);
                }
            }
        }
        (listening, unbound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use mio::Poll;
    use std::collections::BTreeMap;
    use std::net::{TcpListener, TcpStream, UdpSocket};

    /// A config of sources `NAME RECEIVER PORT` separated by `;`, on 127.0.0.1.
    fn config(spec: &str) -> Config {
        let on_loopback: Vec<String> = spec.split(';').map(|s| format!("{s} 127.0.0.1")).collect();
        super::super::reload::tests::config(&on_loopback.join(";"))
    }

    /// A port the test holds for TCP and UDP.
    fn busy() -> (TcpListener, UdpSocket, u16) {
        loop {
            let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = tcp.local_addr().unwrap().port();
            // The same number may be taken for UDP; then take another.
            if let Ok(udp) = UdpSocket::bind(("127.0.0.1", port)) {
                return (tcp, udp, port);
            }
        }
    }

    /// Serves `old` (port 0 takes one from the kernel), then reloads to `new`, whose ports may
    /// be `@NAME` (where that source listens now) or `@busy` (a port the test holds), with
    /// what the loop does around `bind_all`: close, serve at commit, or nothing on a refusal.
    /// The outcome is `ok` or `refused`, then every listener as `NAME PROTO @PORT` with the
    /// port named the same way (`@new`: one the kernel gave at this reload); each TCP listener
    /// must accept a connection.
    #[track_caller]
    fn check(old: &str, new: &str, expected: &str) {
        let (_tcp, _udp, busy_port) = busy();
        let poll = Poll::new().unwrap();
        let registry = poll.registry();
        let old = config(old);
        let mut listeners = Listeners::default();
        let mut index: Vec<String> = Vec::new();
        for (i, s) in old.sources.iter().enumerate() {
            listeners
                .serve(registry, i, bind(s, 1 << 16).unwrap())
                .unwrap();
            index.push(s.name.clone());
        }
        let mut ports = BTreeMap::from([(busy_port, "busy".to_string())]);
        for l in listeners.iter() {
            ports.insert(l.addr.port(), l.name.clone());
        }
        let port_of = |w: &str| match w.strip_prefix('@') {
            Some(name) => ports
                .iter()
                .find(|(_, n)| *n == name)
                .unwrap()
                .0
                .to_string(),
            None => w.to_string(),
        };
        let new: Vec<String> = new
            .split(';')
            .map(|s| {
                s.split_whitespace()
                    .map(port_of)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let new = config(&new.join(";"));
        let current: Vec<_> = old
            .sources
            .iter()
            .map(|cfg| super::super::reload::Current {
                cfg,
                retired: false,
                unbound: false,
            })
            .collect();
        let plan = ReloadPlan::new(&old, &current, &new, None).unwrap();
        let outcome = match listeners.bind_all(registry, &plan, 1 << 16) {
            Ok(staged) => {
                for &i in &plan.close {
                    listeners.close_of(registry, i);
                }
                for (name, ls) in staged {
                    let i = index.iter().position(|n| *n == name).unwrap_or_else(|| {
                        index.push(name);
                        index.len() - 1
                    });
                    listeners.serve(registry, i, ls).unwrap();
                }
                "ok".to_string()
            }
            Err(r) => format!("refused unbound={:?}", r.unbound),
        };
        let mut got: Vec<String> = listeners
            .iter()
            .map(|l| {
                assert_eq!(index[l.source], l.name);
                if l.proto() == "TCP" {
                    TcpStream::connect(l.addr).expect("a listener accepts");
                }
                let port = ports.get(&l.addr.port()).map_or("new", String::as_str);
                format!("{} {} @{port}", l.name, l.proto())
            })
            .collect();
        got.sort();
        assert_eq!(format!("{outcome}: {}", got.join(", ")), expected);
    }

    #[test]
    fn a_reload_binds_all_or_nothing() {
        check("a syslog-tcp 0", "a syslog-tcp 0", "ok: a TCP @a");
        check(
            "a syslog-tcp 0",
            "a syslog-tcp 0; c syslog-udp 0",
            "ok: a TCP @a, c UDP @new",
        );
        // A source's own port, as an explicit number: it closes first, then binds again.
        check("a syslog-tcp 0", "a syslog-tcp @a", "ok: a TCP @a");
        check(
            "a syslog-tcp 0; b syslog-tcp 0",
            "a syslog-tcp @b; b syslog-tcp @a",
            "ok: a TCP @b, b TCP @a",
        );
        // A removed source's port is free for another at once.
        check(
            "a syslog-tcp 0; b syslog-udp 0",
            "b syslog-udp @a",
            "ok: b UDP @a",
        );
        check(
            "a syslog-tcp 0",
            "a syslog-tcp 0; c syslog-tcp @busy",
            "refused unbound=[]: a TCP @a",
        );
        check(
            "a syslog-tcp 0",
            "a syslog-tcp @busy",
            "refused unbound=[]: a TCP @a",
        );
        check(
            "a syslog-udp 0; b syslog-udp 0",
            "a syslog-udp @b; b syslog-udp 0",
            "refused unbound=[]: a UDP @a, b UDP @b",
        );
        // A swap that would succeed is undone with the move that cannot.
        check(
            "a syslog-tcp 0; b syslog-tcp 0; c syslog-udp 0",
            "a syslog-tcp @b; b syslog-tcp @a; c syslog-udp @busy",
            "refused unbound=[]: a TCP @a, b TCP @b, c UDP @c",
        );
    }

    /// What a refused reload closed is bound again; an address taken in between leaves its
    /// source unbound, and the others listen again.
    #[test]
    fn a_taken_address_leaves_its_source_unbound() {
        let poll = Poll::new().unwrap();
        let registry = poll.registry();
        let cfg = config("a syslog-tcp 0; b syslog-udp 0");
        let mut listeners = Listeners::default();
        for (i, s) in cfg.sources.iter().enumerate() {
            listeners
                .serve(registry, i, bind(s, 1 << 16).unwrap())
                .unwrap();
        }
        let closed = vec![listeners.close(registry, 0), listeners.close(registry, 1)];
        assert_eq!(listeners.iter().count(), 0);
        let taken = TcpListener::bind(closed[0].addrs[0].0).unwrap();
        let (listening, unbound) = listeners.reopen(registry, closed, 1 << 16);
        assert_eq!(unbound, [0]);
        assert_eq!(listening.len(), 1);
        let names: Vec<_> = listeners
            .iter()
            .map(|l| (l.name.as_str(), l.source))
            .collect();
        assert_eq!(names, [("b", 1)]);
        drop(taken);
    }
}
