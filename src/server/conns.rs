//! The syslog stream connections (TCP and TLS) of an instance: admission (allow list,
//! trusted balancers, `max_connections` and per IP through `reactor::table::ConnTable`),
//! reading within a budget into the sources, the PROXY header that names the client behind a
//! balancer, closing (a partial frame is kept), idle and stalled-handshake closing, and the
//! budget for partial frames of all connections together (`max_pending_bytes`).
//!
//! A type the loop calls and that calls nothing back: each call borrows what it needs of the
//! instance (`Ctx`: the registry, the sources it stores into, the limit log) and returns
//! what the loop must know (a token to read, whether there is more). The per-connection I/O
//! is `stream.rs`'s; which connections to close or cut is decided by `housekeeping.rs`'s pure
//! functions.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use super::housekeeping::{self, Activity, Stale};
use super::source::SourceState;
use super::stream::{
    self, read_plain, read_tls, Conn, Framing, ProxyRead, ProxyWait, ReadOutcome, TlsState,
};
use crate::allow::canonical;
use crate::clock;
use crate::config::Receiver as Kind;
use crate::logging::{LimitKey, LimitLog};
use crate::proxy_header::Header;
use crate::reactor::guard::{Limits, Refusal};
use crate::reactor::table::{ConnTable, Refused};
use crate::reactor::CONN_BASE;
use crate::status::Drop;

/// What a call needs of the instance, borrowed for that call.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    pub sources: &'a mut [SourceState],
    pub limit_log: &'a mut LimitLog,
    /// The shared read buffer.
    pub scratch: &'a mut [u8],
}

/// The open stream connections and the bytes of their incomplete frames.
pub struct Conns {
    table: ConnTable<Conn>,
    /// Bytes of incomplete frames held by all connections.
    pending: usize,
}

impl Conns {
    pub fn new(limits: Limits) -> Conns {
        Conns {
            table: ConnTable::new(CONN_BASE, limits),
            pending: 0,
        }
    }

    pub fn set_limits(&mut self, limits: Limits) {
        self.table.set_limits(limits);
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Bytes of incomplete frames held by all connections.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Every connection's token.
    pub fn tokens(&self) -> Vec<Token> {
        self.table.tokens()
    }

    /// The source connection `token` belongs to.
    pub fn source_of(&self, token: Token) -> Option<usize> {
        self.table.get(token).map(|c| c.source)
    }

    /// A new poll's events begin: slots freed in the last batch may be reused.
    pub fn next_batch(&mut self) {
        self.table.next_batch();
    }

    /// An event for `token`: whether it is to be put on the work list.
    pub fn wake(&mut self, token: Token) -> bool {
        self.table.wake(token)
    }

    /// Applies the allow list and connection limits to a new connection, then registers it.
    /// Returns its token, to be read at once (data may already be there). A trusted
    /// balancer's connection counts in the total only until its PROXY header names the
    /// client (`read_proxy_header`): a burst of clients reconnecting through one balancer
    /// never meets the per-IP limit meant for one client.
    pub fn admit(
        &mut self,
        cx: &mut Ctx,
        mut stream: TcpStream,
        peer: SocketAddr,
        source: usize,
        tls: Option<Arc<rustls::ServerConfig>>,
        max: usize,
    ) -> Option<Token> {
        let ip = canonical(peer.ip());
        let limit_log = &mut *cx.limit_log;
        let src = &mut cx.sources[source];
        let name = &src.cfg.name;
        let proxied = src.cfg.proxy_protocol.is_some();
        if let Some(trusted) = &src.cfg.proxy_protocol {
            // The allow list applies to the client the header will name, not the balancer.
            if !trusted.allows(ip) {
                src.counters.drop(Drop::ProxyUntrusted, 1);
                let key = LimitKey::new(source, Drop::ProxyUntrusted.name()).with(ip, "");
                limit_log.hit_key(key, || {
                    format!("source {name}: {peer}: not in trusted_proxies, so no PROXY header is taken from it; connection closed")
                });
                return None;
            }
        } else if !src.cfg.allow.allows(ip) {
            src.counters.drop(Drop::NotAllowed, 1);
            let key = LimitKey::new(source, Drop::NotAllowed.name()).with(ip, "");
            limit_log.hit_key(key, || {
                format!("source {name}: {peer}: sender not in the allow list; connection closed")
            });
            return None;
        }
        let registry = cx.registry;
        let make = |token| {
            let tls = if src.cfg.receiver == Kind::SyslogTls {
                let Some(config) = tls else {
                    return Err("no TLS configuration loaded".to_string());
                };
                let session =
                    rustls::ServerConnection::new(config).map_err(|e| format!("TLS: {e}"))?;
                Some(Box::new(TlsState {
                    session,
                    handshake_since: Some(Instant::now()),
                    spoke: false,
                }))
            } else {
                None
            };
            // TLS writes handshake records, so it needs to hear when the socket takes more.
            let interest = if tls.is_some() {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry
                .register(&mut stream, token, interest)
                .map_err(|e| format!("cannot register connection: {e}"))?;
            Ok(Conn {
                stream,
                peer,
                source,
                framing: Framing::new(max, &src.cfg, peer.ip()),
                last_active: Instant::now(),
                tls,
                proxy: proxied.then(ProxyWait::new),
                early: Vec::new(),
                balancer_check: false,
            })
        };
        let admitted = if proxied {
            self.table.admit_unplaced_with(make)
        } else {
            self.table.admit_with(ip, make)
        };
        match admitted {
            Ok(token) => {
                src.counters.connections += 1;
                src.counters.accepted += 1;
                log::debug!("source {name}: {peer}: connected");
                return Some(token);
            }
            Err(Refused::Limit(refusal)) => {
                let (why, message) = match refusal {
                    Refusal::Total(n) => (
                        Drop::MaxConnections,
                        format!("source {name}: {peer}: max_connections ({n}) reached; connection closed"),
                    ),
                    Refusal::PerIp(n) => (
                        Drop::MaxConnectionsPerIp,
                        format!("source {name}: {peer}: max_connections_per_ip ({n}) reached; connection closed"),
                    ),
                };
                src.counters.drop(why, 1);
                limit_log.hit(source, why.name(), || message);
            }
            Err(Refused::Failed(e)) => {
                log::error!("source {name}: {peer}: {e}; connection closed");
            }
        }
        None
    }

    /// Reads one connection within its budget; returns whether it may have more to read.
    /// While the disk is `full` it reads nothing (and says there is more).
    pub fn read(&mut self, cx: &mut Ctx, token: Token, full: bool) -> bool {
        if self.table.get(token).is_some_and(|c| c.proxy.is_some()) && !full {
            if let Some(more) = self.read_proxy_header(cx, token) {
                return more;
            }
        }
        let Some(conn) = self.table.get_mut(token) else {
            return false;
        };
        if full {
            return true;
        }
        let src = &mut cx.sources[conn.source];
        let held = conn.framing.pending();
        let (outcome, total) = if conn.tls.is_some() {
            read_tls(conn, src, cx.scratch)
        } else {
            read_plain(conn, src, cx.scratch)
        };
        self.pending = self.pending - held + conn.framing.pending();
        if total > 0 {
            if let Some(t) = &mut conn.tls {
                t.spoke = true;
            }
            conn.last_active = Instant::now();
            src.counters.last_received = clock::unix_secs(SystemTime::now());
        }
        match outcome {
            ReadOutcome::More => true,
            ReadOutcome::Drained => {
                self.table.idle(token);
                false
            }
            ReadOutcome::Closed(err) => {
                let handshaking = conn
                    .tls
                    .as_ref()
                    .is_some_and(|t| t.handshake_since.is_some() && (t.spoke || total > 0));
                if handshaking {
                    // A client that gives up mid-handshake (a port scan, a certificate it
                    // did not like) is a failed handshake too.
                    src.counters.drop(Drop::TlsHandshake, 1);
                    let (name, peer) = (src.cfg.name.clone(), conn.peer);
                    let how = match &err {
                        Some(e) => format!("reset ({e})"),
                        None => "closed".to_string(),
                    };
                    let key = LimitKey::new(conn.source, "tls").with(peer.ip(), "cut short");
                    cx.limit_log.hit_key(key, || {
                        format!("source {name}: {peer}: TLS handshake failed: the client {how} the connection before it finished")
                    });
                } else if let Some(e) = err.filter(|_| !conn.balancer_check) {
                    log::info!(
                        "source {}: {}: connection error: {e}",
                        src.cfg.name,
                        conn.peer
                    );
                }
                self.close(cx, token);
                false
            }
            ReadOutcome::TlsFailed(e) => {
                src.counters.drop(Drop::TlsHandshake, 1);
                let (name, peer) = (src.cfg.name.clone(), conn.peer);
                let why = crate::tls::explain(&e);
                // Keyed by the reason without its numbers (times, lengths), so one peer's
                // repeated failure is one key.
                let kind: String = why.chars().filter(|c| !c.is_ascii_digit()).collect();
                let key = LimitKey::new(conn.source, "tls").with(peer.ip(), kind);
                cx.limit_log.hit_key(key, || {
                    format!("source {name}: {peer}: TLS handshake failed: {why}")
                });
                self.close(cx, token);
                false
            }
            ReadOutcome::NameRefused(names) => {
                src.counters.drop(Drop::NotAllowedCn, 1);
                let (name, peer) = (src.cfg.name.clone(), conn.peer);
                let key = LimitKey::new(conn.source, "allow_cn").with(peer.ip(), names.join(","));
                cx.limit_log.hit_key(key, || {
                    format!("source {name}: {peer}: client certificate names {names:?} not in allow_cn; connection closed")
                });
                self.close(cx, token);
                false
            }
        }
    }

    /// Reads the PROXY protocol header of a `proxy_protocol = on` connection. Once it is
    /// whole, the client it names is the connection's sender: its allow list, its per-IP
    /// limit, its address in logs and in the rendering. `None` when the stream may be read
    /// now; else whether there may be more to read.
    fn read_proxy_header(&mut self, cx: &mut Ctx, token: Token) -> Option<bool> {
        let conn = self.table.get_mut(token)?;
        let src = &mut cx.sources[conn.source];
        let (name, balancer) = (src.cfg.name.clone(), conn.peer);
        let balancer_ip = canonical(balancer.ip());
        let refused = match stream::read_proxy(conn, cx.scratch) {
            ProxyRead::Waiting => {
                self.table.idle(token);
                return Some(false);
            }
            ProxyRead::Closed => {
                self.close(cx, token);
                return Some(false);
            }
            ProxyRead::Invalid(why) => (
                Drop::ProxyHeader,
                balancer_ip,
                why,
                format!("source {name}: {balancer}: {why}; connection closed"),
            ),
            // The balancer speaking for itself: a v2 LOCAL or v1 UNKNOWN header, or (HAProxy's
            // v1 health checks) a header that names the balancer as the client. It is no
            // sender's connection: nothing to refuse or count, and its reset is not news. It
            // is read as a sender only when the allow list takes the balancer's address.
            ProxyRead::Done(Header::Local) => return self.balancer_check(cx, token),
            ProxyRead::Done(Header::Proxied { client, .. })
                if canonical(client.ip()) == balancer_ip =>
            {
                return self.balancer_check(cx, token)
            }
            ProxyRead::Done(Header::Proxied { client, .. }) => {
                let ip = canonical(client.ip());
                if !src.cfg.allow.allows(ip) {
                    (
                        Drop::NotAllowed,
                        ip,
                        "",
                        format!("source {name}: {client} (through {balancer}): sender not in the allow list; connection closed"),
                    )
                } else {
                    match self.table.readdress(token, ip) {
                        Ok(()) => {
                            let conn = self.table.get_mut(token).expect("just read");
                            conn.peer = client;
                            conn.framing.set_peer(ip);
                            log::debug!("source {name}: {client}: connected through {balancer}");
                            return None;
                        }
                        Err(refusal) => (
                            Drop::MaxConnectionsPerIp,
                            ip,
                            "",
                            format!("source {name}: {client} (through {balancer}): max_connections_per_ip ({}) reached; connection closed", match refusal {
                                Refusal::PerIp(n) | Refusal::Total(n) => n,
                            }),
                        ),
                    }
                }
            }
        };
        let (why, peer, reason, message) = refused;
        self.refuse(cx, token, why, peer, reason, message);
        Some(false)
    }

    /// Counts and logs (once per key) why the connection at `token` is refused, and closes it.
    fn refuse(
        &mut self,
        cx: &mut Ctx,
        token: Token,
        why: Drop,
        peer: IpAddr,
        reason: &str,
        message: String,
    ) {
        let Some(conn) = self.table.get(token) else {
            return;
        };
        let source = conn.source;
        cx.sources[source].counters.drop(why, 1);
        let key = LimitKey::new(source, why.name()).with(peer, reason);
        cx.limit_log.hit_key(key, || message);
        self.close(cx, token);
    }

    /// A balancer's own connection after its PROXY header (see `read_proxy_header`): read
    /// as the balancer's, under its per-IP limit, when the allow list takes its address;
    /// else closed without a word.
    fn balancer_check(&mut self, cx: &mut Ctx, token: Token) -> Option<bool> {
        let conn = self.table.get_mut(token)?;
        conn.balancer_check = true;
        let (balancer, ip) = (conn.peer, canonical(conn.peer.ip()));
        let src = &cx.sources[conn.source];
        let name = &src.cfg.name;
        log::debug!("source {name}: {balancer}: the balancer's own connection (a health check)");
        if !src.cfg.allow.allows(ip) {
            self.close(cx, token);
            return Some(false);
        }
        let Err(Refusal::PerIp(n) | Refusal::Total(n)) = self.table.readdress(token, ip) else {
            return None;
        };
        let message = format!(
            "source {name}: {balancer}: max_connections_per_ip ({n}) reached; connection closed"
        );
        self.refuse(cx, token, Drop::MaxConnectionsPerIp, ip, "", message);
        Some(false)
    }

    /// Closes a connection, keeping any partial frame the sender had sent.
    pub fn close(&mut self, cx: &mut Ctx, token: Token) {
        let Some(mut conn) = self.table.remove(token) else {
            return;
        };
        let src = &mut cx.sources[conn.source];
        self.pending -= conn.framing.pending();
        conn.framing.finish(src);
        let _ = cx.registry.deregister(&mut conn.stream);
        src.counters.connections -= 1;
        log::debug!("source {}: {}: closed", src.cfg.name, conn.peer);
    }

    /// Closes connections idle for `idle_timeout_secs`, and TLS connections whose handshake
    /// has not finished within `handshake_timeout_secs` (a peer that stalls mid-handshake).
    pub fn close_idle(
        &mut self,
        cx: &mut Ctx,
        now: Instant,
        timeout: Duration,
        handshake_timeout: Duration,
    ) {
        let activity = self.table.iter().map(|(token, c)| Activity {
            token,
            last_active: c.last_active,
            // A PROXY header not yet sent counts as a handshake not yet done.
            handshake_since: c
                .proxy
                .as_ref()
                .map(|p| p.since)
                .or_else(|| c.tls.as_ref().and_then(|t| t.handshake_since)),
        });
        for (token, why) in housekeeping::stale(activity, now, timeout, handshake_timeout) {
            let conn = self.table.get(token).expect("just listed");
            let src = &mut cx.sources[conn.source];
            match why {
                Stale::Handshake if conn.proxy.is_some() => {
                    src.counters.drop(Drop::ProxyHeader, 1);
                    let (name, peer) = (src.cfg.name.clone(), conn.peer);
                    let key = LimitKey::new(conn.source, Drop::ProxyHeader.name())
                        .with(canonical(peer.ip()), "late");
                    cx.limit_log.hit_key(key, || {
                        format!(
                            "source {name}: {peer}: no PROXY header in {}s; closed",
                            handshake_timeout.as_secs()
                        )
                    });
                }
                Stale::Handshake => {
                    src.counters.drop(Drop::TlsHandshake, 1);
                    let (name, peer) = (src.cfg.name.clone(), conn.peer);
                    let key = LimitKey::new(conn.source, "tls").with(peer.ip(), "stalled");
                    cx.limit_log.hit_key(key, || {
                        format!(
                            "source {name}: {peer}: TLS handshake not done in {}s; closed",
                            handshake_timeout.as_secs()
                        )
                    });
                }
                Stale::Idle => {
                    src.counters.idle_closed += 1;
                    log::info!(
                        "source {}: {}: idle for {}s; closed",
                        src.cfg.name,
                        conn.peer,
                        timeout.as_secs()
                    );
                }
            }
            self.close(cx, token);
        }
    }

    /// Over the budget for partial frames (`max_pending_bytes`): the largest are cut, each
    /// kept as a truncated message, until the bytes held fit again.
    pub fn cut_pending(&mut self, cx: &mut Ctx, budget: usize) {
        if self.pending <= budget {
            return;
        }
        let held = self
            .table
            .iter()
            .map(|(t, c)| (t, c.framing.pending()))
            .collect();
        let total = self.pending;
        for token in housekeeping::cuts(held, total, budget) {
            let Some(conn) = self.table.get_mut(token) else {
                continue;
            };
            let src = &mut cx.sources[conn.source];
            let freed = conn.framing.cut(src);
            self.pending -= freed;
            let (name, peer) = (src.cfg.name.clone(), conn.peer);
            let key = LimitKey::new(conn.source, "max_pending_bytes").with(peer.ip(), "");
            cx.limit_log.hit_key(key, || {
                format!("source {name}: {peer}: incomplete frames of all connections hold {total} bytes, over max_pending_bytes ({budget}); kept this sender's {freed} bytes as a truncated message")
            });
        }
    }

    /// Closes every connection of source `source` (retired by a reload).
    pub fn close_of(&mut self, cx: &mut Ctx, source: usize) {
        let tokens: Vec<Token> = self
            .table
            .iter()
            .filter(|(_, c)| c.source == source)
            .map(|(t, _)| t)
            .collect();
        for token in tokens {
            self.close(cx, token);
        }
    }
}
