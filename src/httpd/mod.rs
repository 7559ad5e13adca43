//! `[collector] metrics_listen`: `/metrics` and `/health` on a loopback port, served by the
//! instance's own loop (no thread, no HTTP crate).
//!
//! Several instances on a host (`lc@514`, `lc@21`) share one lc.ini, so they all want the one
//! address. Whichever binds it serves every instance: answers are made from the status
//! snapshots in run_dir, read as `lc status` reads them (`status::read_all`: careful opens,
//! `alive` from the pid file locks, stale snapshots flagged). The others find the address in
//! use and try again every `BIND_RETRY`, so when the holder stops, a surviving instance takes
//! over within seconds, and a scraper sees one target whatever runs.
//!
//! The guest of the loop, like the FTP server: `ready` takes the events of its tokens
//! (`reactor::HTTP_BASE`), `do_work` services what is ready, `tick` (at housekeeping) binds,
//! follows a reload's `metrics_listen` and closes connections past their deadline.
//! `request.rs` reads a request head (pure, bounded), `answer.rs` makes the answer (pure).
//! Limits: `MAX_CONNECTIONS` open at once (more are closed at accept), a request head within
//! `request::MAX_REQUEST_BYTES` and `MAX_HEADERS`, whole within `REQUEST_DEADLINE` of the
//! accept (a slowloris client is cut then), the answer written within `WRITE_DEADLINE`, one
//! request per connection (`Connection: close`).

pub mod answer;
pub mod request;

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use serde_json::{json, Value};

use crate::clock;
use crate::config::Collector;
use crate::reactor::slab::{Reuse, Slab};
use crate::reactor::HTTP_BASE;
use answer::Answer;
use request::{Method, MAX_REQUEST_BYTES};

/// Connections open at once; a scraper and a probe need two.
pub const MAX_CONNECTIONS: usize = 8;
/// From accept to a whole request head.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// From the request to the answer's last byte taken by the socket.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// How often an instance that does not hold `metrics_listen` tries to bind it.
pub const BIND_RETRY: Duration = Duration::from_secs(5);
/// Accepts per iteration.
const ACCEPT_BUDGET: usize = 64;
/// Bytes read per read call (a request head is a few hundred).
const READ_CHUNK: usize = 2048;
/// How often a repeated refusal (same reason) is logged.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(60);

const LISTENER: Token = Token(HTTP_BASE);

struct Conn {
    stream: TcpStream,
    /// The request head so far; then empty.
    buf: Vec<u8>,
    /// The answer once there is one, and how much of it the socket took.
    out: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

struct Listening {
    socket: TcpListener,
    addr: SocketAddr,
    ready: bool,
}

/// The metrics server of one instance: the listener when it holds the address, connections,
/// counters. Created idle; the first `tick` binds.
pub struct MetricsHttp {
    /// The configured address and run_dir (what `tick` saw last).
    want: Option<SocketAddr>,
    run_dir: PathBuf,
    listener: Option<Listening>,
    conns: Slab<Conn>,
    work: Vec<Token>,
    next_bind: Option<Instant>,
    /// The last bind failure logged (said again only when it changes).
    bind_said: Option<String>,
    /// Binds in a row that found the address in use with no lc instance saying it serves it.
    unclaimed: u32,
    /// The last run_dir warning logged, likewise.
    read_said: Option<String>,
    requests: u64,
    refused: BTreeMap<&'static str, u64>,
    refusal_said: BTreeMap<&'static str, Instant>,
}

impl Default for MetricsHttp {
    fn default() -> Self {
        MetricsHttp {
            want: None,
            run_dir: PathBuf::new(),
            listener: None,
            conns: Slab::new(HTTP_BASE + 1, Reuse::NextBatch),
            work: Vec::new(),
            next_bind: None,
            bind_said: None,
            unclaimed: 0,
            read_said: None,
            requests: 0,
            refused: BTreeMap::new(),
            refusal_said: BTreeMap::new(),
        }
    }
}

impl MetricsHttp {
    /// An event for one of the server's tokens.
    pub fn ready(&mut self, token: Token) {
        if token == LISTENER {
            if let Some(l) = self.listener.as_mut().filter(|l| !l.ready) {
                l.ready = true;
                self.work.push(token);
            }
        } else if self.conns.wake(token) {
            self.work.push(token);
        }
    }

    /// Whether the loop should poll without waiting.
    pub fn has_work(&self) -> bool {
        !self.work.is_empty()
    }

    /// Services every ready socket once.
    pub fn do_work(&mut self, registry: &Registry) {
        // No event of this batch can name a slot freed before it was polled: free them now.
        self.conns.next_batch();
        for token in std::mem::take(&mut self.work) {
            let more = if token == LISTENER {
                self.accept(registry)
            } else {
                self.service(token, registry)
            };
            if more {
                self.work.push(token);
            }
        }
    }

    /// At housekeeping: follows the config (a reload may change or clear `metrics_listen`),
    /// binds when the address is free, closes connections past their deadline.
    pub fn tick(&mut self, c: &Collector, registry: &Registry, now: Instant) {
        if c.metrics_listen != self.want || c.run_dir != self.run_dir {
            self.close_all(registry);
            if let Some(old) = self.listener.take() {
                log::info!("metrics: stopped serving on {}", old.addr);
            }
            self.want = c.metrics_listen;
            self.run_dir = c.run_dir.clone();
            self.next_bind = Some(now);
            self.bind_said = None;
            self.unclaimed = 0;
        }
        if let (Some(addr), None) = (self.want, &self.listener) {
            if self.next_bind.is_none_or(|t| now >= t) {
                self.next_bind = Some(now + BIND_RETRY);
                self.bind(addr, registry);
            }
        }
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| now >= c.deadline)
            .map(|(t, _)| t)
            .collect();
        for token in expired {
            let reading = self.conns.get(token).is_some_and(|c| c.out.is_none());
            self.count(if reading { "timeout" } else { "write_timeout" });
            self.close(token, registry);
        }
    }

    /// The `metrics_listen` object of the status snapshot.
    pub fn status(&self) -> Value {
        let Some(want) = self.want else {
            return Value::Null;
        };
        json!({
            "addr": self.listener.as_ref().map_or(want, |l| l.addr).to_string(),
            "serving": self.listener.is_some(),
            "connections": self.conns.len(),
            "requests": self.requests,
            "refused": self.refused,
        })
    }

    fn bind(&mut self, addr: SocketAddr, registry: &Registry) {
        // mio sets SO_REUSEADDR and not SO_REUSEPORT: a second instance gets EADDRINUSE.
        let result = TcpListener::bind(addr).and_then(|mut socket| {
            registry.register(&mut socket, LISTENER, Interest::READABLE)?;
            let bound = socket.local_addr()?;
            Ok((socket, bound))
        });
        match result {
            Ok((socket, bound)) => {
                log::info!(
                    "metrics: serving /metrics and /health on http://{bound} for every instance in {}",
                    self.run_dir.display()
                );
                self.bind_said = None;
                self.listener = Some(Listening {
                    socket,
                    addr: bound,
                    ready: true,
                });
                self.work.push(LISTENER);
            }
            Err(e) => {
                let (level, said) = if e.kind() == io::ErrorKind::AddrInUse {
                    // Whoever holds it may be an lc instance (which then serves every
                    // instance's metrics) or any other program: only the snapshots tell.
                    let snapshots = crate::status::read_all_noting(&self.run_dir, &mut |_| {})
                        .unwrap_or_default();
                    let holder = holder(&snapshots, addr);
                    self.unclaimed = if holder.is_some() {
                        0
                    } else {
                        self.unclaimed + 1
                    };
                    in_use(addr, holder, self.unclaimed, &self.run_dir)
                } else {
                    let said = format!(
                        "metrics: cannot listen on metrics_listen {addr}: {e}; trying again every {}s",
                        BIND_RETRY.as_secs()
                    );
                    (log::Level::Warn, said)
                };
                if self.bind_said.as_ref() != Some(&said) {
                    log::log!(level, "{said}");
                    self.bind_said = Some(said);
                }
            }
        }
    }

    /// Accepts within the budget; returns whether there may be more.
    fn accept(&mut self, registry: &Registry) -> bool {
        for _ in 0..ACCEPT_BUDGET {
            let Some(l) = &mut self.listener else {
                return false;
            };
            let (mut stream, _) = match l.socket.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    l.ready = false;
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: the next edge or poll tries again.
                    log::warn!("metrics: accept on {}: {e}", l.addr);
                    l.ready = false;
                    return false;
                }
            };
            if self.conns.len() >= MAX_CONNECTIONS {
                self.count("max_connections");
                drop(stream);
                continue;
            }
            let token = self.conns.next_token();
            if let Err(e) =
                registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            {
                log::warn!("metrics: cannot register a connection: {e}");
                continue;
            }
            let token = self.conns.insert(Conn {
                stream,
                buf: Vec::new(),
                out: None,
                deadline: Instant::now() + REQUEST_DEADLINE,
            });
            self.work.push(token);
        }
        true
    }

    /// Reads a request, then writes its answer; returns whether the connection may have more
    /// to do now (it stays listed) or waits for its next edge.
    fn service(&mut self, token: Token, registry: &Registry) -> bool {
        let Some(conn) = self.conns.get_mut(token) else {
            return false;
        };
        if conn.out.is_none() {
            let mut chunk = [0u8; READ_CHUNK];
            let closed = loop {
                match conn.stream.read(&mut chunk) {
                    Ok(0) => break true,
                    Ok(n) => {
                        conn.buf.extend_from_slice(&chunk[..n]);
                        if conn.buf.len() > MAX_REQUEST_BYTES {
                            break false;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break true,
                }
            };
            let parsed = request::parse(&conn.buf);
            let req = match parsed.transpose() {
                Some(r) => r,
                None if closed => {
                    self.close(token, registry);
                    return false;
                }
                None => {
                    self.conns.idle(token);
                    return false;
                }
            };
            let method = req.as_ref().map_or(Method::Get, |r| r.method);
            if let Err(r) = &req {
                self.count(if r.status() == 431 {
                    "too_large"
                } else {
                    "bad_request"
                });
            }
            let answer = match (answer::without_snapshots(&req), &req) {
                (Some(a), _) => a,
                (None, Ok(r)) => self.answer_from_run_dir(r),
                (None, Err(r)) => Answer::refused(*r),
            };
            self.requests += 1;
            let conn = self.conns.get_mut(token).expect("still open");
            conn.buf = Vec::new();
            conn.out = Some((answer.bytes(method), 0));
            conn.deadline = Instant::now() + WRITE_DEADLINE;
        }
        let conn = self.conns.get_mut(token).expect("still open");
        let (out, sent) = conn.out.as_mut().expect("an answer");
        while *sent < out.len() {
            match conn.stream.write(&out[*sent..]) {
                Ok(0) => break,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.conns.idle(token);
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = conn.stream.shutdown(Shutdown::Write);
        self.close(token, registry);
        false
    }

    /// `/metrics` or `/health`, from the snapshots in run_dir.
    fn answer_from_run_dir(&mut self, req: &request::Request) -> Answer {
        let page = answer::Page::of(&req.path);
        let mut warnings = Vec::new();
        let read = crate::status::read_all_noting(&self.run_dir, &mut |w| warnings.push(w));
        let now = clock::unix_secs(SystemTime::now());
        let answer = match &read {
            Ok(s) => Answer::page(page, Ok(s), now),
            Err(e) => Answer::page(page, Err(&e.to_string()), now),
        };
        let said = (!warnings.is_empty()).then(|| warnings.join("; "));
        if said.is_some() && said != self.read_said {
            log::warn!("metrics: {}", said.as_deref().unwrap_or(""));
        }
        self.read_said = said;
        answer
    }

    fn count(&mut self, why: &'static str) {
        *self.refused.entry(why).or_default() += 1;
        let now = Instant::now();
        let due = self
            .refusal_said
            .get(why)
            .is_none_or(|t| now.duration_since(*t) >= REFUSAL_LOG_EVERY);
        if due {
            self.refusal_said.insert(why, now);
            let total = self.refused[why];
            log::warn!(
                "metrics: a connection refused or closed: {} ({total} so far; said once a minute)",
                match why {
                    "max_connections" => format!("{MAX_CONNECTIONS} connections already open"),
                    "timeout" => format!("no whole request within {}s", REQUEST_DEADLINE.as_secs()),
                    "write_timeout" =>
                        format!("the answer not taken within {}s", WRITE_DEADLINE.as_secs()),
                    "too_large" => "request head over its limit".to_string(),
                    _ => "not a valid HTTP request".to_string(),
                }
            );
        }
    }

    fn close(&mut self, token: Token, registry: &Registry) {
        if let Some(mut c) = self.conns.remove(token) {
            let _ = registry.deregister(&mut c.stream);
        }
    }

    fn close_all(&mut self, registry: &Registry) {
        for token in self.conns.tokens() {
            self.close(token, registry);
        }
        if let Some(l) = &mut self.listener {
            let _ = registry.deregister(&mut l.socket);
        }
    }
}

/// The live instance whose snapshot says it serves `addr`: its name and pid.
fn holder(snapshots: &[Value], addr: SocketAddr) -> Option<(String, u64)> {
    snapshots
        .iter()
        .find(|s| {
            let m = &s["metrics_listen"];
            s["alive"] == true
                && m["serving"] == true
                && m["addr"].as_str().and_then(|a| a.parse().ok()) == Some(addr)
        })
        .map(|s| {
            let name = s["instance"].as_str().unwrap_or("?").to_string();
            (name, s["pid"].as_u64().unwrap_or(0))
        })
}

/// What to log when `addr` is in use: by the lc instance `holder`, or by no instance that says
/// so, `unclaimed` binds in a row. The first such time an instance may just be starting (its
/// snapshot not written yet); from the second on, something else holds the address.
fn in_use(
    addr: SocketAddr,
    holder: Option<(String, u64)>,
    unclaimed: u32,
    run_dir: &std::path::Path,
) -> (log::Level, String) {
    let retry = BIND_RETRY.as_secs();
    match holder {
        Some((name, pid)) => (
            log::Level::Info,
            format!("metrics: metrics_listen {addr} is in use by lc instance {name} (pid {pid}), which serves every instance's metrics there; trying again every {retry}s to take over"),
        ),
        None if unclaimed <= 1 => (
            log::Level::Info,
            format!("metrics: metrics_listen {addr} is in use, and no running lc instance says it serves there (one may be starting); trying again every {retry}s"),
        ),
        None => (
            log::Level::Warn,
            format!("metrics: metrics_listen {addr} is still in use, and no running lc instance in {} serves there: another program holds it (`ss -ltnp 'sport = :{}'` names it); trying again every {retry}s", run_dir.display(), addr.port()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_holds_the_address() {
        let addr: SocketAddr = "127.0.0.1:9514".parse().unwrap();
        let snap = |name: &str, alive: bool, serving: bool, at: &str| {
            json!({
                "instance": name, "pid": 42, "alive": alive,
                "metrics_listen": { "addr": at, "serving": serving },
            })
        };
        let held = |snapshots: &[Value]| holder(snapshots, addr);
        assert_eq!(held(&[]), None);
        assert_eq!(held(&[json!({"instance": "514", "alive": true})]), None);
        assert_eq!(held(&[snap("514", true, false, "127.0.0.1:9514")]), None);
        assert_eq!(held(&[snap("514", false, true, "127.0.0.1:9514")]), None);
        assert_eq!(held(&[snap("514", true, true, "127.0.0.1:9515")]), None);
        assert_eq!(
            held(&[
                snap("21", true, false, "127.0.0.1:9514"),
                snap("514", true, true, "127.0.0.1:9514"),
            ]),
            Some(("514".to_string(), 42))
        );
    }

    #[test]
    fn in_use_names_an_lc_instance_only_when_one_says_so() {
        let addr: SocketAddr = "127.0.0.1:9514".parse().unwrap();
        let run = std::path::Path::new("/run/lc");
        let (level, said) = in_use(addr, Some(("514".into(), 42)), 0, run);
        assert_eq!(level, log::Level::Info);
        assert!(
            said.contains("in use by lc instance 514 (pid 42)"),
            "{said}"
        );
        let (level, said) = in_use(addr, None, 1, run);
        assert_eq!(level, log::Level::Info);
        assert!(
            said.contains("no running lc instance says it serves there"),
            "{said}"
        );
        let (level, said) = in_use(addr, None, 2, run);
        assert_eq!(level, log::Level::Warn);
        assert!(
            said.contains("another program holds it (`ss -ltnp 'sport = :9514'`"),
            "{said}"
        );
    }
}
