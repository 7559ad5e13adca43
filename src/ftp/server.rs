//! The FTP server's connections, driven by the instance's event loop.
//!
//! Every socket of the FTP server (control listeners, control connections, passive listeners
//! and data connections) lives in one `reactor::slab::Slab` here, with tokens from `reactor::FTP_BASE`; the loop
//! hands their events to [`FtpServer::ready`] and calls [`FtpServer::do_work`] once per
//! iteration, as it does for its own sockets. The protocol is `session.rs`; this file moves
//! bytes and files. Blocking work (passwords, fsync, listings) goes to the `lc-ftp` thread
//! (`jobs.rs`) and comes back through [`FtpServer::drain`].
//!
//! An upload is written to a temp file in `state_dir/ftp/incoming/` while it arrives; only a
//! transfer that ends cleanly is committed (made durable and moved into the source's spool,
//! or into `ssl_update/`), and only then does the client get its 226. Anything else (ABOR,
//! a reset, a timeout, a size or disk limit) removes the temp file.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token, Waker};
use serde_json::Value;

use super::command::{escaped, is_latin1, parse};
use super::content::Kind as Content;
use super::control::{Control, Next};
use super::counts::{Counters, Refused, View};
use super::data::{DataConn, HeaderRead, HeaderWait, Task};
use super::expiry::{self, Clock, Due, Timeouts};
use super::files::{Files, Plan, Who};
use super::gate::{Answer, Asked, Gate};
use super::jobs::{ConnRef, Dest, Job, Jobs, Outcome, Spooled};
use super::login::{Check, Checked, Logins, LOGIN_QUEUE};
use super::passive::PassivePorts;
use super::path::{VPath, SSL_UPDATE};
use super::pipeline::{Refused as UploadRefused, Step as UploadStep, Uploads};
use super::session::{Action, ListKind, Reply, Session, Settings};
use super::stream::{Got, Stream};
use super::upload::{Upload, Writer, Wrote};
use crate::allow::canonical;
use crate::config;
use crate::logging::{LimitKey, LimitLog};
use crate::proxy_header::Header;
use crate::reactor::guard::{Admission, Limits};
use crate::reactor::slab::{Reuse, Slab};
use crate::reactor::FTP_BASE;
use crate::tls::FtpTls;

/// Bytes read from one data connection before others get a turn.
const READ_BUDGET: usize = 4 << 20;
const ACCEPT_BUDGET: usize = 64;
/// One read from a data connection (and one write to the upload's file) at most.
const SCRATCH_BYTES: usize = 1 << 20;

/// What the instance must do for the FTP server.
pub enum Event {
    /// An upload arrived completely: reserve its place and call [`FtpServer::commit`].
    Received {
        conn: ConnRef,
        folder: String,
        name: String,
        temp: PathBuf,
        kind: Content,
    },
    /// A committed upload is in `source`'s spool now: a raw segment to seal and deliver, or
    /// (`precompressed`) a `.gz`/`.zip` file sealed as it is, to deliver.
    Spooled(Spooled),
}

pub use super::files::FolderInfo;

enum Entry {
    Listener { sock: TcpListener, addr: SocketAddr },
    Control(Box<Control>),
    Passive { sock: TcpListener, owner: ConnRef },
    Data(Box<DataConn>),
}

pub struct FtpServer {
    cfg: config::Ftp,
    /// The folders, where their paths lead, and the uploads answered lately.
    files: Files,
    incoming: PathBuf,
    tls: Option<FtpTls>,
    /// Every socket, by token (`FTP_BASE + slot`); a slot closed in an event batch is reused
    /// only from the next one, so a stale event never reaches a new socket.
    slab: Slab<Entry>,
    /// Sockets to service (each once: the slab's ready flags).
    work: Vec<Token>,
    /// Upload connections waiting for disk space.
    parked: Vec<Token>,
    /// Control connections, in all and per client address (data connections take no place).
    admission: Admission,
    /// How long a connection through a balancer may take to send its PROXY header
    /// (`[collector] handshake_timeout_secs`, as for syslog).
    header_timeout: Duration,
    /// Failed logins, lockouts and their counts.
    gate: Gate,
    jobs: Jobs,
    logins: Logins,
    writer: Writer,
    /// Every upload from its first byte until it is received or discarded.
    uploads: Uploads,
    next_id: u64,
    next_upload: u64,
    passive: PassivePorts,
    counters: Counters,
    events: Vec<Event>,
    scratch: Vec<u8>,
    /// The disk is full: uploads in progress pause.
    paused: bool,
    limit_log: LimitLog,
}

impl FtpServer {
    /// Binds the control listeners (`[ftp] port` at the collector's `listen` addresses),
    /// then prepares `state_dir/ftp/` and starts the job thread. A port in use fails before
    /// anything on disk is touched.
    pub fn new(
        cfg: &config::Config,
        folders: Vec<FolderInfo>,
        tls: Option<FtpTls>,
        waker: Arc<Waker>,
        registry: &Registry,
    ) -> Result<FtpServer, String> {
        let mut bound = Vec::new();
        for (addr, dual) in crate::server::listen::addresses(&cfg.collector.listen, cfg.ftp.port) {
            let sock = crate::server::listen::tcp(addr, dual).map_err(|e| format!("ftp: {e}"))?;
            let local = sock.local_addr().map_err(|e| format!("ftp: {e}"))?;
            bound.push((sock, local));
        }
        let ftp_dir = cfg.collector.state_dir.join("ftp");
        let incoming = ftp_dir.join("incoming");
        let ssl_update = ftp_dir.join(SSL_UPDATE);
        // Partial uploads of a previous run never reach the spool: their clients got no 226.
        let _ = fs::remove_dir_all(&incoming);
        for d in [&incoming, &ssl_update] {
            fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let logins = Logins::spawn(Arc::clone(&waker))
            .map_err(|e| format!("ftp: cannot start its thread: {e}"))?;
        let writer = Writer::spawn(Arc::clone(&waker))
            .map_err(|e| format!("ftp: cannot start its thread: {e}"))?;
        let jobs = Jobs::spawn(waker).map_err(|e| format!("ftp: cannot start its thread: {e}"))?;
        let mut server = FtpServer {
            cfg: cfg.ftp.clone(),
            files: Files::new(folders, ssl_update),
            incoming,
            tls,
            slab: Slab::new(FTP_BASE, Reuse::NextBatch),
            work: Vec::new(),
            parked: Vec::new(),
            admission: Admission::new(limits(&cfg.ftp)),
            header_timeout: cfg.collector.handshake_timeout,
            gate: Gate::new(cfg.ftp.max_login_failures, cfg.ftp.lockout),
            jobs,
            logins,
            writer,
            // A precompressed upload cannot be split at lines: larger than `[delivery]
            // max_upload_bytes` (under the API's 64 MB per PUT) it is refused with 552.
            uploads: Uploads::new(cfg.ftp.max_file_bytes, cfg.delivery.max_upload_bytes),
            next_id: 1,
            next_upload: 1,
            passive: PassivePorts::default(),
            counters: Counters::default(),
            events: Vec::new(),
            scratch: vec![0; SCRATCH_BYTES],
            paused: false,
            limit_log: LimitLog::default(),
        };
        for (sock, addr) in bound {
            log::info!("ftp: listening on TCP {addr}");
            let slot = server.insert(Entry::Listener { sock, addr });
            server.register(registry, slot, Interest::READABLE);
        }
        Ok(server)
    }

    /// The control listeners' addresses.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.slab
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Listener { addr, .. } => Some(*addr),
                _ => None,
            })
            .collect()
    }

    /// A new config or certificate, from a reload. Sessions keep the folders they started
    /// with; TLS applies to the next handshake.
    pub fn reconfigure(
        &mut self,
        config: &config::Config,
        folders: Vec<FolderInfo>,
        tls: Option<FtpTls>,
    ) {
        let cfg = &config.ftp;
        self.header_timeout = config.collector.handshake_timeout;
        self.admission.set_limits(limits(cfg));
        if cfg.port != self.cfg.port {
            log::warn!(
                "ftp: port changes from {} to {} only with a restart",
                self.cfg.port,
                cfg.port
            );
        }
        let port = self.cfg.port;
        self.cfg = cfg.clone();
        self.cfg.port = port;
        self.files.set_folders(folders);
        self.uploads.set_limits(cfg.max_file_bytes);
        self.gate.set_limits(cfg.max_login_failures, cfg.lockout);
        if let Some(t) = &tls {
            log::info!(
                "ftp: new TLS sessions use {} (serial {})",
                t.server.subject,
                t.server.serial
            );
        }
        self.tls = tls;
    }

    pub fn owns(token: Token) -> bool {
        token.0 >= FTP_BASE
    }

    pub fn has_work(&self) -> bool {
        !self.work.is_empty() || !self.events.is_empty()
    }

    /// The disk state from the loop's free-space check; `room`: what the spool can take
    /// before it would evict acknowledged data.
    pub fn set_disk(&mut self, no_space: bool, full: bool, room: u64) {
        self.uploads.set_disk(no_space, room);
        if self.paused && !full {
            self.work.append(&mut self.parked);
        }
        self.paused = full;
    }

    pub fn ready(&mut self, token: Token) {
        self.wake(token);
    }

    /// Puts `slot` on the work list (once).
    fn wake(&mut self, slot: Token) {
        if self.slab.wake(slot) {
            self.work.push(slot);
        }
    }

    /// Services ready sockets; returns what the instance must act on.
    pub fn do_work(&mut self, registry: &Registry) -> Vec<Event> {
        self.slab.next_batch();
        let work = std::mem::take(&mut self.work);
        let mut keep = Vec::new();
        for slot in work {
            if self.slab.get(slot).is_none() {
                continue;
            }
            if self.service(registry, slot) {
                keep.push(slot);
            } else {
                self.slab.idle(slot);
            }
        }
        self.work.extend(keep);
        std::mem::take(&mut self.events)
    }

    /// Applies what the job thread finished.
    pub fn drain(&mut self, registry: &Registry) -> Vec<Event> {
        while let Ok(wrote) = self.writer.rx.try_recv() {
            self.on_wrote(registry, wrote);
        }
        while let Ok(checked) = self.logins.rx.try_recv() {
            self.on_login(checked);
        }
        while let Ok(outcome) = self.jobs.rx.try_recv() {
            self.on_outcome(registry, outcome);
        }
        std::mem::take(&mut self.events)
    }

    /// Sends a received upload to its place (from the instance, after `Event::Received`);
    /// `None` when its folder is gone (a reload removed the source).
    pub fn commit(&mut self, conn: ConnRef, temp: PathBuf, dest: Option<Dest>) {
        match dest {
            Some(dest) => self.jobs.send(Job::Commit { conn, temp, dest }),
            None => {
                self.jobs.send(Job::Discard(temp));
                self.reply_to(
                    conn,
                    Reply::new(451, "the folder is gone; upload discarded"),
                );
            }
        }
    }

    pub fn ssl_update_dir(&self) -> PathBuf {
        self.files.ssl_update().clone()
    }

    /// Timeouts: idle sessions, data connections that never came, held-back replies, lockouts.
    pub fn tick(&mut self, registry: &Registry, now: Instant) {
        self.gate.expire(now);
        let timeouts = Timeouts {
            idle: self.cfg.idle_timeout,
            header: self.header_timeout,
        };
        for slot in self.slab.tokens() {
            let clock = match self.slab.get(slot) {
                Some(Entry::Control(c)) => Clock::Control {
                    header_since: c.header.as_ref().map(|w| w.since),
                    reply_at: c.delayed.as_ref().map(|(at, _)| *at),
                    waiting_since: c.waiting_since,
                    working: c.transferring || c.busy,
                    last_active: c.last_active,
                },
                Some(Entry::Data(d)) => Clock::Data {
                    header_since: d.header.as_ref().map(|(w, _)| w.since),
                    has_task: d.task.is_some(),
                    last_active: d.last_active,
                },
                _ => continue,
            };
            match expiry::due(clock, now, timeouts) {
                None => {}
                Some(Due::Reply) => {
                    let c = self.control(slot);
                    let (_, reply) = c.delayed.take().expect("due");
                    c.busy = false;
                    c.reply(reply);
                    self.slab.idle(slot);
                    self.wake(slot);
                }
                Some(Due::NoHeader) => {
                    let from = match self.slab.get(slot) {
                        Some(Entry::Control(c)) => c.header.as_ref().map(|w| w.from),
                        Some(Entry::Data(d)) => d.header.as_ref().map(|(w, _)| w.from),
                        _ => None,
                    }
                    .expect("due");
                    self.counters.proxy_header += 1;
                    let secs = timeouts.header.as_secs();
                    self.warn_peer("proxy_header", from.ip(), "late", || {
                        format!("ftp: {from}: no PROXY header in {secs}s; closed")
                    });
                    self.close(registry, slot);
                }
                Some(Due::Idle) => {
                    let c = self.control(slot);
                    let secs = timeouts.idle.as_secs();
                    log::info!("ftp: {}: idle for {secs}s; closed", c.peer);
                    c.reply(Reply::new(421, "idle too long; closing"));
                    let _ = c.stream.flush();
                    self.close(registry, slot);
                }
                Some(Due::NoDataConnection) => self.end_transfer(
                    registry,
                    slot,
                    Some(Reply::new(
                        425,
                        "no data connection came; use PASV or EPSV again",
                    )),
                ),
                Some(Due::Unused) => self.close(registry, slot),
                Some(Due::Stalled) => {
                    let owner = match self.slab.get(slot) {
                        Some(Entry::Data(d)) => d.owner,
                        _ => unreachable!("stalled is a data connection's"),
                    };
                    match self.control_slot(owner) {
                        Some(c) => self.end_transfer(
                            registry,
                            c,
                            Some(Reply::new(426, "data connection stalled; transfer aborted")),
                        ),
                        None => self.close(registry, slot),
                    }
                }
            }
        }
    }

    pub fn status(&self) -> Value {
        let now = Instant::now();
        let view = View {
            port: self.cfg.port,
            listening: self.addrs(),
            sessions: self.admission.open(),
            tls: self.tls.as_ref().map(|t| &t.server),
            tls_mode: self.cfg.tls,
            counters: &self.counters,
            uploads: &self.uploads.counts,
            logins: &self.gate.counts,
            locked_out_now: self.gate.locked_now(now),
            lockout_tracked: self.gate.tracked(),
        };
        view.json()
    }

    /// Closes everything; uploads in progress are discarded (their clients got no 226).
    pub fn stop(&mut self, registry: &Registry) {
        for slot in self.slab.tokens() {
            if matches!(self.slab.get(slot), Some(Entry::Control(_))) {
                self.end_transfer(registry, slot, None);
            }
        }
        for slot in self.slab.tokens() {
            self.close(registry, slot);
        }
        // Uploads that ended but are not written yet: their clients got no 226 either.
        self.writer.join();
        for temp in self.uploads.discard_all() {
            self.jobs.send(Job::Discard(temp));
        }
        self.logins.join();
        self.jobs.join();
        // Commits that finished while stopping still belong to the spool.
        while let Ok(outcome) = self.jobs.rx.try_recv() {
            if let Outcome::Committed {
                spooled: Some(spooled),
                ..
            } = outcome
            {
                self.events.push(Event::Spooled(spooled));
            }
        }
    }

    /// Events left by `stop`.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }
}

// Slab and registration.
impl FtpServer {
    fn insert(&mut self, entry: Entry) -> Token {
        self.slab.insert(entry)
    }

    fn register(&mut self, registry: &Registry, slot: Token, interest: Interest) -> bool {
        let token = slot;
        let result = match self.slab.get_mut(slot) {
            Some(Entry::Listener { sock, .. }) | Some(Entry::Passive { sock, .. }) => {
                registry.register(sock, token, interest)
            }
            Some(Entry::Control(c)) => registry.register(&mut c.stream.sock, token, interest),
            Some(Entry::Data(d)) => registry.register(&mut d.stream.sock, token, interest),
            None => return false,
        };
        match result {
            Ok(()) => {
                // Something may be there already: look once without waiting for an edge
                // (the slab marks a new value ready).
                self.work.push(slot);
                true
            }
            Err(e) => {
                log::warn!("ftp: cannot register a socket: {e}");
                self.close(registry, slot);
                false
            }
        }
    }

    /// Closes whatever is in `slot`, with the bookkeeping its kind needs.
    fn close(&mut self, registry: &Registry, slot: Token) {
        let Some(entry) = self.slab.remove(slot) else {
            return;
        };
        match entry {
            Entry::Listener { mut sock, .. } => {
                let _ = registry.deregister(&mut sock);
            }
            Entry::Passive { mut sock, owner } => {
                let _ = registry.deregister(&mut sock);
                if let Some(c) = self.control_slot(owner) {
                    let c = self.control(c);
                    if c.data == Some(slot) {
                        c.data = None;
                    }
                }
            }
            Entry::Data(mut d) => {
                let _ = registry.deregister(&mut d.stream.sock);
                if let Some(Task::Upload(id)) = d.task.take() {
                    self.discard(id);
                }
                if let Some(c) = self.control_slot(d.owner) {
                    let c = self.control(c);
                    if c.data == Some(slot) {
                        c.data = None;
                    }
                }
            }
            Entry::Control(mut c) => {
                let _ = registry.deregister(&mut c.stream.sock);
                self.admission.release(c.ticket);
                if let Some(Task::Upload(id)) = c.task.take() {
                    self.discard(id);
                }
                if let Some(d) = c.data.take() {
                    self.close(registry, d);
                }
                log::debug!("ftp: {}: session closed", c.peer);
            }
        }
    }

    /// Gives upload `id` up, if it is still under way, and removes its temp file.
    fn discard(&mut self, id: u64) {
        if let Some(temp) = self.uploads.discard(id) {
            self.jobs.send(Job::Discard(temp));
        }
    }

    /// The slot of the control connection `conn`, if it is still open.
    fn control_slot(&self, conn: ConnRef) -> Option<Token> {
        match self.slab.get(conn.slot) {
            Some(Entry::Control(c)) if c.id == conn.id => Some(conn.slot),
            _ => None,
        }
    }

    fn control(&mut self, slot: Token) -> &mut Control {
        match self.slab.get_mut(slot) {
            Some(Entry::Control(c)) => c,
            _ => unreachable!("{slot:?} holds a control connection"),
        }
    }

    /// Queues a reply on `conn` (if still open) and makes it ready again.
    fn reply_to(&mut self, conn: ConnRef, reply: Reply) {
        if let Some(slot) = self.control_slot(conn) {
            let c = self.control(slot);
            c.busy = false;
            c.reply(reply);
            self.wake(slot);
        }
    }

    /// The FTP server's limits are the instance's, not a source's.
    fn warn_limited(&mut self, what: &'static str, message: impl FnOnce() -> String) {
        self.limit_log.hit(usize::MAX, what, message);
    }

    /// `warn_limited` per peer and reason: a second peer is named at once.
    fn warn_peer(
        &mut self,
        what: &'static str,
        ip: IpAddr,
        reason: &str,
        message: impl FnOnce() -> String,
    ) {
        let key = LimitKey::new(usize::MAX, what).with(canonical(ip), reason);
        self.limit_log.hit_key(key, message);
    }
}

// Servicing sockets.
impl FtpServer {
    fn service(&mut self, registry: &Registry, slot: Token) -> bool {
        match self.slab.get(slot) {
            Some(Entry::Listener { .. }) => self.accept_control(registry, slot),
            Some(Entry::Passive { .. }) => self.accept_data(registry, slot),
            Some(Entry::Control(_)) => self.service_control(registry, slot),
            Some(Entry::Data(_)) => self.service_data(registry, slot),
            None => false,
        }
    }

    fn accept_control(&mut self, registry: &Registry, slot: Token) -> bool {
        for _ in 0..ACCEPT_BUDGET {
            let Some(Entry::Listener { sock, addr }) = self.slab.get(slot) else {
                return false;
            };
            let listen_addr = *addr;
            let (stream, peer) = match sock.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.warn_limited("accept", || format!("ftp: accept on {listen_addr}: {e}"));
                    return false;
                }
            };
            self.admit(registry, stream, peer);
        }
        true
    }

    /// A new control connection: its checks, place in the counts and greeting; or, behind a
    /// balancer, a place in the total only until its PROXY header names the client.
    fn admit(&mut self, registry: &Registry, stream: TcpStream, peer: SocketAddr) {
        let ip = canonical(peer.ip());
        // Logged as 192.0.2.7:5000, not [::ffff:192.0.2.7]:5000, on a dual-stack listener.
        let peer = SocketAddr::new(ip, peer.port());
        let now = Instant::now();
        let proxied = self.cfg.proxy_protocol.is_some();
        let admitted = match &self.cfg.proxy_protocol {
            Some(trusted) if !trusted.allows(ip) => {
                self.counters.proxy_untrusted += 1;
                self.warn_peer("proxy_untrusted", ip, "", || {
                    format!("ftp: {peer}: not in trusted_proxies, so no PROXY header is taken from it; connection closed")
                });
                return;
            }
            Some(_) => self.admission.admit_unplaced().map_err(Refused::Limit),
            None => match self.refusal(ip, now) {
                Some(r) => Err(r),
                None => self.admission.admit(ip).map_err(Refused::Limit),
            },
        };
        let ticket = match admitted {
            Ok(t) => t,
            Err(r) => {
                let text = self.refused(&peer.to_string(), ip, r);
                // Best effort: a refused client hears why; the socket is closed either way.
                let mut stream = stream;
                let _ = stream.write(Reply::new(421, text).render().as_bytes());
                return;
            }
        };
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => {
                self.admission.release(ticket);
                return;
            }
        };
        // ABOR may come as urgent data (Python's ftplib): read it in line with the rest.
        let _ = nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::OobInline, &true);
        let session = Session::new(self.settings(), ip);
        let id = self.next_id;
        self.next_id += 1;
        let mut control = Control::new(id, Stream::new(stream), peer, local, session, ticket);
        control.last_active = now;
        if proxied {
            control.header = Some(HeaderWait::new(now, peer));
        }
        let slot = self.insert(Entry::Control(Box::new(control)));
        if self.register(registry, slot, Interest::READABLE | Interest::WRITABLE) && !proxied {
            self.greet(slot);
        }
    }

    /// What a new session may do, from the config as it is now.
    fn settings(&self) -> Settings {
        Settings {
            tls: self.cfg.tls,
            tls_ready: self.tls.is_some(),
            active_mode: self.cfg.active,
            folders: self.files.names(),
        }
    }

    /// The allow lists and the lockout, for a session of `ip` (the counts are `admission`'s).
    fn refusal(&self, ip: IpAddr, now: Instant) -> Option<Refused> {
        if !self.files.allows(ip) {
            Some(Refused::NotAllowed)
        } else if self.gate.locked(ip, now) {
            Some(Refused::LockedOut)
        } else {
            None
        }
    }

    /// Counts and logs a refused session of `who` (`ip`); the text of its 421.
    fn refused(&mut self, who: &str, ip: IpAddr, why: Refused) -> &'static str {
        let told = self.counters.refused(why);
        let line = told.line;
        self.warn_peer(told.what, ip, "", || format!("ftp: {who}: {line}; refused"));
        told.text
    }

    /// The session begins: 220.
    fn greet(&mut self, slot: Token) {
        let c = self.control(slot);
        let greeting = c.session.greeting();
        c.reply(greeting);
        let peer = c.peer;
        match c.balancer {
            Some(b) => log::debug!("ftp: {peer}: connected through {b}"),
            None => log::debug!("ftp: {peer}: connected"),
        }
        self.counters.sessions += 1;
        self.wake(slot);
    }

    /// Reads the PROXY protocol header of a control connection through a balancer. Once it
    /// names the client, the session is the client's: its allow lists, lockout, per-IP
    /// count, logs and data connections; then it is greeted. `None` when the connection may
    /// be serviced now; else whether there may be more to do.
    fn control_header(&mut self, registry: &Registry, slot: Token) -> Option<bool> {
        let c = self.control(slot);
        let wait = c.header.as_mut().expect("a header is awaited");
        let mut buf = [0u8; 512];
        let read = wait.read(&mut c.stream, &mut buf);
        let balancer = wait.from;
        let (client, dest, rest) = match read {
            HeaderRead::Waiting => return Some(false),
            // A health check that connected and left, or a reset: not news.
            HeaderRead::Closed => {
                self.close(registry, slot);
                return Some(false);
            }
            HeaderRead::Invalid(why) => {
                self.counters.proxy_header += 1;
                self.warn_peer("proxy_header", balancer.ip(), why, || {
                    format!("ftp: {balancer}: {why}; connection closed")
                });
                self.close(registry, slot);
                return Some(false);
            }
            HeaderRead::Done(Header::Proxied { client, dest }, rest)
                if canonical(client.ip()) != balancer.ip() =>
            {
                (client, Some(dest), rest)
            }
            // The balancer's own connection (a v2 LOCAL or v1 UNKNOWN header, or a header
            // naming the balancer, as HAProxy's v1 checks send): a session of the balancer's
            // address if an allow list takes it, else closed without a word.
            HeaderRead::Done(_, rest) => {
                if !self.files.allows(balancer.ip()) {
                    log::debug!(
                        "ftp: {balancer}: the balancer's own connection (a health check); closed"
                    );
                    self.close(registry, slot);
                    return Some(false);
                }
                (balancer, None, rest)
            }
        };
        let ip = canonical(client.ip());
        let client = SocketAddr::new(ip, client.port());
        let mut refusal = self.refusal(ip, Instant::now());
        let settings = self.settings();
        let Some(Entry::Control(c)) = self.slab.get_mut(slot) else {
            unreachable!("{slot:?} holds a control connection")
        };
        c.header = None;
        if refusal.is_none() {
            refusal = self
                .admission
                .transfer(&mut c.ticket, ip)
                .err()
                .map(Refused::Limit);
        }
        if let Some(r) = refusal {
            let text = self.refused(&format!("{client} (through {balancer})"), ip, r);
            let c = self.control(slot);
            c.reply(Reply::new(421, text));
            c.close_after_flush = true;
            return None;
        }
        c.peer = client;
        c.balancer = (client != balancer).then_some(balancer);
        if let Some(dest) = dest {
            c.advertise = canonical(dest.ip());
        }
        c.session = Session::new(settings, ip);
        self.greet(slot);
        // What the client sent right behind the header, read with it.
        self.control(slot).lines.push(&rest);
        None
    }

    fn service_control(&mut self, registry: &Registry, slot: Token) -> bool {
        if self.control(slot).header.is_some() {
            if let Some(more) = self.control_header(registry, slot) {
                return more;
            }
        }
        let tls_config = self.tls.as_ref().map(|t| Arc::clone(&t.config));
        // Send what is queued; switch to TLS or close once it is out.
        {
            let c = self.control(slot);
            match c.stream.flush() {
                Ok(true) => {
                    if c.close_after_flush {
                        self.close(registry, slot);
                        return false;
                    }
                    if std::mem::take(&mut c.tls_after_flush) {
                        let early = c.lines.take_rest();
                        let started = match &tls_config {
                            Some(cfg) => c.stream.start_tls(cfg, &early),
                            None => Err(io::Error::other("no certificate")),
                        };
                        if let Err(e) = started {
                            let peer = c.peer;
                            self.counters.tls_failures += 1;
                            log::info!("ftp: {peer}: TLS: {e}; closed");
                            self.close(registry, slot);
                            return false;
                        }
                    }
                }
                Ok(false) => {}
                Err(_) => {
                    self.close(registry, slot);
                    return false;
                }
            }
        }
        // Read and act on commands, one at a time, while not waiting for a job.
        let mut budget = 64;
        loop {
            let c = self.control(slot);
            match c.may_read() {
                Ok(Next::Command) => {}
                Ok(Next::Busy) => break,
                Ok(Next::Backlog) => {
                    let peer = c.peer;
                    self.counters.reply_backlog += 1;
                    self.warn_limited("backlog", || {
                        format!("ftp: {peer}: does not read its replies; no more commands read from it until it does (reply backlog over {} bytes)", super::control::REPLY_BACKLOG)
                    });
                    break;
                }
                Err(_) => {
                    self.close(registry, slot);
                    return false;
                }
            }
            match c.lines.next_line() {
                Ok(Some(line)) => {
                    c.last_active = Instant::now();
                    c.latin1 |= is_latin1(&line);
                    let actions = match parse(&line) {
                        Ok(cmd) => {
                            log::trace!("ftp: {}: {:?}", c.peer, cmd);
                            c.session.on_command(cmd)
                        }
                        Err(r) => vec![Action::Reply(Reply::new(r.code, r.text))],
                    };
                    for a in actions {
                        self.act(registry, slot, a);
                    }
                    if self.slab.get(slot).is_none() {
                        return false;
                    }
                    budget -= 1;
                    if budget == 0 {
                        return true;
                    }
                    continue;
                }
                Ok(None) => {}
                Err(r) => {
                    c.reply(Reply::new(r.code, r.text));
                    continue;
                }
            }
            // Need more bytes.
            let c = self.control(slot);
            let mut buf = [0u8; 4096];
            match c.stream.read(&mut buf) {
                Ok(Got::Data(n)) => c.lines.push(&buf[..n]),
                Ok(Got::Eof) | Ok(Got::Truncated) => {
                    self.end_transfer(registry, slot, None);
                    self.close(registry, slot);
                    return false;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    let (peer, handshaking) = (c.peer, c.stream.handshaking());
                    if handshaking {
                        self.counters.tls_failures += 1;
                        self.warn_limited("tls", || {
                            format!("ftp: {peer}: TLS handshake failed: {e}")
                        });
                    } else {
                        log::debug!("ftp: {peer}: {e}");
                    }
                    self.end_transfer(registry, slot, None);
                    self.close(registry, slot);
                    return false;
                }
            }
        }
        let c = self.control(slot);
        match c.stream.flush() {
            Ok(true) if c.close_after_flush => {
                self.close(registry, slot);
                false
            }
            // AUTH TLS went out in one go: switch now.
            Ok(true) if c.tls_after_flush => true,
            Ok(_) => false,
            Err(_) => {
                self.close(registry, slot);
                false
            }
        }
    }

    /// Carries out one action of the session.
    fn act(&mut self, registry: &Registry, slot: Token, action: Action) {
        let c = self.control(slot);
        let conn = ConnRef { slot, id: c.id };
        match action {
            Action::Reply(r) => c.reply(r),
            Action::StartTls(r) => {
                c.reply(r);
                c.tls_after_flush = true;
            }
            Action::Close(r) => {
                c.reply(r);
                c.close_after_flush = true;
                self.end_transfer(registry, slot, None);
            }
            Action::CheckPassword { user, password } => {
                let ip = canonical(c.peer.ip());
                let asked = self.gate.asked(ip, Instant::now());
                let c = self.control(slot);
                c.busy = true;
                if let Asked::FailAt(at) = asked {
                    // Not even checked; answered as slowly as a wrong password.
                    let reply = c.session.login_result(false);
                    c.delayed = Some((at, reply));
                    return;
                }
                let peer = c.peer;
                let check = Check {
                    conn,
                    passwd_file: self.cfg.passwd_file.clone(),
                    user,
                    password,
                };
                if self.logins.check(check).is_err() {
                    // Refused before it is checked: the queue of checks is full.
                    self.gate.queue_full();
                    self.warn_limited("logins", || {
                        format!("ftp: {peer}: {LOGIN_QUEUE} password checks waiting already; login refused")
                    });
                    let c = self.control(slot);
                    c.busy = false;
                    c.session.login_result(false);
                    c.reply(Reply::new(421, "too many logins at once; try again later"));
                    c.close_after_flush = true;
                }
            }
            Action::OpenPassive { extended, net } => {
                // The family the client sees (behind a balancer, its own connection's).
                let local_v4 = c.advertise.is_ipv4();
                match net {
                    Some(1) if !local_v4 => {
                        c.reply(Reply::new(522, "this connection is IPv6; use (2)"))
                    }
                    Some(2) if local_v4 => {
                        c.reply(Reply::new(522, "this connection is IPv4; use (1)"))
                    }
                    // PASV cannot name an IPv6 address (RFC 2428 section 1): refused before a
                    // listener is opened, and any earlier one is left as it was.
                    None if !extended && !local_v4 => {
                        c.reply(Reply::new(522, "PASV is IPv4 only; use EPSV"))
                    }
                    _ => self.open_passive(registry, slot, extended),
                }
            }
            Action::Store {
                path,
                append: _,
                offset,
                private,
                ascii,
            } => self.store(registry, slot, path, offset, private, ascii),
            Action::List { kind, .. } if c.transferring && kind != ListKind::Stat => {
                c.reply(Reply::new(450, "a transfer is in progress"))
            }
            file_action @ (Action::RenameFrom(_)
            | Action::List { .. }
            | Action::Mlst(_)
            | Action::Size(_)
            | Action::Mdtm(_)
            | Action::Delete(_)
            | Action::Rename { .. }) => {
                // Over the data connection: a transfer from now on.
                let transfer =
                    matches!(&file_action, Action::List { kind, .. } if *kind != ListKind::Stat);
                c.rnfr_pending |= matches!(file_action, Action::RenameFrom(_));
                let who = Who {
                    conn,
                    ip: canonical(c.peer.ip()),
                    facts: c.session.facts(),
                    folders: c.session.folders().to_vec(),
                    latin1: c.latin1,
                };
                match self.files.plan(&who, file_action, unix_now()) {
                    Plan::Reply(r) => {
                        let c = self.control(slot);
                        c.file_action_answered(r.code);
                        c.reply(r)
                    }
                    Plan::Job(job) => {
                        let c = self.control(slot);
                        c.busy = true;
                        c.transferring |= transfer;
                        self.jobs.send(job);
                    }
                }
            }
            Action::Abort => {
                let had = c.transferring;
                if had {
                    self.end_transfer(registry, slot, Some(Reply::new(426, "transfer aborted")));
                    self.control(slot).reply(Reply::new(226, "ABOR done"));
                } else {
                    self.close_data(registry, slot);
                    self.control(slot)
                        .reply(Reply::new(225, "no transfer to abort"));
                }
            }
        }
    }

    fn open_passive(&mut self, registry: &Registry, slot: Token, extended: bool) {
        if self.control(slot).transferring {
            // The running transfer keeps its data connection.
            self.control(slot)
                .reply(Reply::new(450, "a transfer is in progress; ABOR it first"));
            return;
        }
        self.close_data(registry, slot);
        let c = self.control(slot);
        let owner = ConnRef { slot, id: c.id };
        let ip = canonical(c.local.ip());
        let range = self.cfg.passive_ports;
        let bound = self
            .passive
            .take(range, |port| TcpListener::bind(SocketAddr::new(ip, port)));
        let sock = match bound {
            Ok(sock) => sock,
            Err(e) => {
                let (f, l) = range;
                self.warn_limited("passive", || {
                    format!(
                        "ftp: no free passive port in {f}-{l}: {}",
                        e.map_or_else(String::new, |e| e.to_string())
                    )
                });
                self.control(slot)
                    .reply(Reply::new(425, "no passive port free; try again"));
                return;
            }
        };
        let port = match sock.local_addr() {
            Ok(a) => a.port(),
            Err(_) => return,
        };
        let advertise = self.control(slot).advertise;
        let advertised = SocketAddr::new(self.cfg.public_address.unwrap_or(advertise), port);
        let data = self.insert(Entry::Passive { sock, owner });
        if !self.register(registry, data, Interest::READABLE) {
            self.control(slot)
                .reply(Reply::new(425, "cannot open a passive port"));
            return;
        }
        let c = self.control(slot);
        c.data = Some(data);
        let reply = c.session.passive_ready(advertised, extended);
        c.reply(reply);
    }

    /// Drops the data connection or passive listener of `slot`'s session.
    fn close_data(&mut self, registry: &Registry, slot: Token) {
        if let Some(d) = self.control(slot).data.take() {
            self.close(registry, d);
        }
    }

    fn store(
        &mut self,
        registry: &Registry,
        slot: Token,
        path: VPath,
        offset: u64,
        private: bool,
        ascii: bool,
    ) {
        if offset > 0 {
            self.control(slot).reply(Reply::new(
                554,
                "cannot resume: an interrupted upload is discarded; send the whole file again",
            ));
            return;
        }
        let ip = canonical(self.control(slot).peer.ip());
        let name = match self.files.upload(&path, ip, private) {
            Ok(name) => name,
            Err(r) => return self.control(slot).reply(r),
        };
        let folder = match &path {
            VPath::File { folder, .. } => folder.clone(),
            _ => return,
        };
        if !self.uploads.may_start() {
            self.control(slot).reply(Reply::new(
                452,
                "not enough free space on the collector; try again later",
            ));
            return;
        }
        if self.control(slot).transferring {
            self.control(slot)
                .reply(Reply::new(450, "a transfer is in progress"));
            return;
        }
        let id = self.next_upload;
        let temp = self.incoming.join(format!("{id}.part"));
        self.next_upload += 1;
        let file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&temp)
        {
            Ok(f) => f,
            Err(e) => {
                self.warn_limited("incoming", || format!("ftp: {}: {e}", temp.display()));
                self.control(slot)
                    .reply(Reply::new(451, "cannot store the file now; try again"));
                return;
            }
        };
        let owner = ConnRef {
            slot,
            id: self.control(slot).id,
        };
        let upload = Upload::new(id, folder, name, temp, file, ascii);
        self.uploads.start(owner, upload);
        self.start_transfer(registry, slot, Task::Upload(id), "ready for the file");
    }

    /// Hands `task` to the data connection, opening it if need be, and says 150.
    fn start_transfer(&mut self, registry: &Registry, slot: Token, task: Task, what: &str) {
        let c = self.control(slot);
        let owner = ConnRef { slot, id: c.id };
        c.transferring = true;
        c.reply(Reply::new(150, what));
        let active = c.session.active_target();
        self.wake(slot);
        if let Some(target) = active {
            // Active mode: connect back to the client now.
            self.close_data(registry, slot);
            let stream = match TcpStream::connect(target) {
                Ok(s) => s,
                Err(e) => {
                    log::info!("ftp: active connect to {target}: {e}");
                    self.fail_task(task);
                    self.end_transfer(
                        registry,
                        slot,
                        Some(Reply::new(425, "cannot connect to your data port")),
                    );
                    return;
                }
            };
            let data = self.insert(Entry::Data(Box::new(DataConn {
                owner,
                stream: Stream::new(stream),
                connecting: true,
                task: None,
                last_active: Instant::now(),
                closing: false,
                header: None,
            })));
            if !self.register(registry, data, Interest::READABLE | Interest::WRITABLE) {
                self.fail_task(task);
                self.end_transfer(
                    registry,
                    slot,
                    Some(Reply::new(425, "cannot open a data connection")),
                );
                return;
            }
            self.control(slot).data = Some(data);
        }
        let data = self.control(slot).data;
        let open = data.is_some_and(|d| matches!(self.slab.get(d), Some(Entry::Data(_))));
        let c = self.control(slot);
        match data {
            Some(d) if open => self.give_task(d, task),
            Some(_) => {
                c.task = Some(task);
                c.waiting_since = Some(Instant::now());
            }
            None => {
                self.fail_task(task);
                self.end_transfer(
                    registry,
                    slot,
                    Some(Reply::new(425, "use PASV, EPSV, PORT or EPRT first")),
                );
            }
        }
    }

    fn fail_task(&mut self, task: Task) {
        if let Task::Upload(id) = task {
            self.discard(id);
        }
    }

    /// Starts a task on an open data connection, with TLS when the session has PROT P.
    fn give_task(&mut self, data: Token, task: Task) {
        let Some(Entry::Data(d)) = self.slab.get_mut(data) else {
            return;
        };
        d.task = Some(task);
        d.last_active = Instant::now();
        self.wake(data);
    }

    fn accept_data(&mut self, registry: &Registry, slot: Token) -> bool {
        for _ in 0..ACCEPT_BUDGET {
            let Some(Entry::Passive { sock, owner }) = self.slab.get(slot) else {
                return false;
            };
            let owner = *owner;
            let (stream, peer) = match sock.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            };
            let Some(cslot) = self.control_slot(owner) else {
                self.close(registry, slot);
                return false;
            };
            let ip = canonical(peer.ip());
            let peer = SocketAddr::new(ip, peer.port());
            match &self.cfg.proxy_protocol {
                Some(trusted) if !trusted.allows(ip) => {
                    self.counters.proxy_untrusted += 1;
                    self.warn_peer("proxy_untrusted", ip, "", || {
                        format!("ftp: data connection from {peer} refused: not in trusted_proxies")
                    });
                }
                // Through a balancer: whose connection it is, its header says.
                Some(_) => {
                    let now = Instant::now();
                    let data = self.insert(Entry::Data(Box::new(DataConn {
                        owner,
                        stream: Stream::new(stream),
                        connecting: false,
                        task: None,
                        last_active: now,
                        closing: false,
                        header: Some((HeaderWait::new(now, peer), slot)),
                    })));
                    self.register(registry, data, Interest::READABLE | Interest::WRITABLE);
                }
                None => {
                    let expected = self.control(cslot).session.data_peer();
                    if ip != expected {
                        self.port_stealing(&peer.to_string(), expected);
                        continue;
                    }
                    self.close(registry, slot);
                    self.attach_data(registry, cslot, stream);
                    return false;
                }
            }
        }
        true
    }

    /// Someone else raced the client to its data port.
    fn port_stealing(&mut self, who: &str, expected: IpAddr) {
        self.counters.port_stealing += 1;
        self.warn_limited("stealing", || {
            format!("ftp: data connection from {who} refused: the session's client is {expected}")
        });
    }

    /// Reads the PROXY protocol header of a passive data connection through a balancer. The
    /// client it names must be the session's (as without a balancer); then the connection is
    /// the session's data connection, its passive listener closes, and the bytes that came
    /// with the header are the stream's first.
    fn data_header(&mut self, registry: &Registry, slot: Token) -> bool {
        let Some(Entry::Data(d)) = self.slab.get_mut(slot) else {
            return false;
        };
        let (wait, via) = d.header.as_mut().expect("a header is awaited");
        let via = *via;
        let owner = d.owner;
        let mut buf = [0u8; 512];
        let read = wait.read(&mut d.stream, &mut buf);
        let balancer = wait.from;
        let (client, rest) = match read {
            HeaderRead::Waiting => return false,
            HeaderRead::Closed => {
                self.close(registry, slot);
                return false;
            }
            HeaderRead::Invalid(why) => {
                self.counters.proxy_header += 1;
                self.warn_peer("proxy_header", balancer.ip(), why, || {
                    format!("ftp: data connection from {balancer}: {why}; closed")
                });
                self.close(registry, slot);
                return false;
            }
            HeaderRead::Done(Header::Proxied { client, .. }, rest)
                if canonical(client.ip()) != balancer.ip() =>
            {
                (client, rest)
            }
            // The balancer's own connection: no client's data.
            HeaderRead::Done(..) => {
                self.close(registry, slot);
                return false;
            }
        };
        let Some(cslot) = self.control_slot(owner) else {
            self.close(registry, slot);
            return false;
        };
        let c = self.control(cslot);
        let expected = c.session.data_peer();
        // The listener it came through is no longer the session's (a new PASV, a close).
        let current = c.data == Some(via);
        if canonical(client.ip()) != expected {
            self.port_stealing(&format!("{client} (through {balancer})"), expected);
            self.close(registry, slot);
            return false;
        }
        if !current {
            self.close(registry, slot);
            return false;
        }
        self.close(registry, via);
        let Some(Entry::Data(d)) = self.slab.get_mut(slot) else {
            return false;
        };
        d.header = None;
        d.stream.unread(rest);
        self.adopt(registry, cslot, slot);
        true
    }

    /// A data connection is up (accepted, or an active connect done): set up TLS and give it
    /// the waiting task.
    fn attach_data(&mut self, registry: &Registry, cslot: Token, stream: TcpStream) {
        let c = self.control(cslot);
        let owner = ConnRef {
            slot: cslot,
            id: c.id,
        };
        let data = self.insert(Entry::Data(Box::new(DataConn {
            owner,
            stream: Stream::new(stream),
            connecting: false,
            task: None,
            last_active: Instant::now(),
            closing: false,
            header: None,
        })));
        if !self.register(registry, data, Interest::READABLE | Interest::WRITABLE) {
            let task = self.control(cslot).task.take();
            if let Some(t) = task {
                self.fail_task(t);
            }
            self.end_transfer(
                registry,
                cslot,
                Some(Reply::new(425, "cannot open a data connection")),
            );
            return;
        }
        self.adopt(registry, cslot, data);
    }

    /// Makes the connected `data` the session's data connection: TLS when the session has
    /// PROT P, and the task that waited for it.
    fn adopt(&mut self, registry: &Registry, cslot: Token, data: Token) {
        let c = self.control(cslot);
        let private = c.session.prot_private();
        let task = c.task.take();
        c.waiting_since = None;
        c.data = Some(data);
        if private && !self.data_tls(data) {
            if let Some(t) = task {
                self.fail_task(t);
            }
            self.end_transfer(
                registry,
                cslot,
                Some(Reply::new(425, "cannot start TLS on the data connection")),
            );
            return;
        }
        if let Some(t) = task {
            self.give_task(data, t);
        }
    }

    fn data_tls(&mut self, data: Token) -> bool {
        let Some(cfg) = self.tls.as_ref().map(|t| Arc::clone(&t.config)) else {
            return false;
        };
        match self.slab.get_mut(data) {
            Some(Entry::Data(d)) => d.stream.start_tls(&cfg, &[]).is_ok(),
            _ => false,
        }
    }

    fn service_data(&mut self, registry: &Registry, slot: Token) -> bool {
        let Some(Entry::Data(d)) = self.slab.get_mut(slot) else {
            return false;
        };
        if d.header.is_some() {
            return self.data_header(registry, slot);
        }
        if d.connecting {
            // An active connect finished, one way or the other.
            match (d.stream.sock.take_error(), d.stream.sock.peer_addr()) {
                (Ok(None), Ok(_)) => {
                    d.connecting = false;
                    let owner = d.owner;
                    let Some(cslot) = self.control_slot(owner) else {
                        self.close(registry, slot);
                        return false;
                    };
                    self.adopt(registry, cslot, slot);
                    return true;
                }
                (Ok(Some(e)), _) | (Err(e), _) => {
                    let owner = d.owner;
                    log::info!("ftp: active data connection failed: {e}");
                    if let Some(cslot) = self.control_slot(owner) {
                        self.end_transfer(
                            registry,
                            cslot,
                            Some(Reply::new(425, "cannot connect to your data port")),
                        );
                    } else {
                        self.close(registry, slot);
                    }
                    return false;
                }
                // Not connected yet: wait for WRITABLE.
                (Ok(None), Err(_)) => return false,
            }
        }
        match d.task {
            None => {
                // Connected before the command: only notice a close.
                false
            }
            Some(Task::Send(_)) => self.send_data(registry, slot),
            Some(Task::Upload(_)) => self.receive_upload(registry, slot),
        }
    }

    fn send_data(&mut self, registry: &Registry, slot: Token) -> bool {
        let Some(Entry::Data(d)) = self.slab.get_mut(slot) else {
            return false;
        };
        let owner = d.owner;
        // Drive a TLS handshake (the client speaks first) and notice a close.
        let mut buf = [0u8; 1024];
        loop {
            match d.stream.read(&mut buf) {
                Ok(Got::Data(_)) => continue,
                Ok(_) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    return self.data_failed(registry, slot, owner, "the data connection failed")
                }
            }
        }
        if !d.stream.handshaking() {
            if let Some(Task::Send(bytes)) = d.task.as_mut() {
                let bytes = std::mem::take(bytes);
                d.stream.queue(&bytes);
                d.task = Some(Task::Send(Vec::new()));
                if !d.closing {
                    d.closing = true;
                    d.stream.close_notify();
                }
            }
        }
        match d.stream.flush() {
            Ok(true) if d.closing => {
                d.task = None;
                let _ = d.stream.sock.shutdown(std::net::Shutdown::Write);
                match self.control_slot(owner) {
                    Some(cslot) => {
                        self.end_transfer(registry, cslot, Some(Reply::new(226, "listing sent")))
                    }
                    None => self.close(registry, slot),
                }
                false
            }
            Ok(_) => false,
            Err(_) => self.data_failed(registry, slot, owner, "the data connection failed"),
        }
    }

    fn data_failed(&mut self, registry: &Registry, slot: Token, owner: ConnRef, why: &str) -> bool {
        match self.control_slot(owner) {
            Some(cslot) => self.end_transfer(
                registry,
                cslot,
                Some(Reply::new(426, format!("{why}; transfer aborted"))),
            ),
            None => self.close(registry, slot),
        }
        false
    }

    /// Reads an upload's data connection and hands the bytes to the writer.
    fn receive_upload(&mut self, registry: &Registry, slot: Token) -> bool {
        if self.paused {
            self.parked.push(slot);
            return false;
        }
        let mut read = 0;
        let Some(Entry::Data(d)) = self.slab.get_mut(slot) else {
            return false;
        };
        let owner = d.owner;
        let Some(Task::Upload(id)) = d.task else {
            unreachable!()
        };
        let step = loop {
            if read >= READ_BUDGET {
                break Step::Budget;
            }
            if self.uploads.throttled(id) {
                // The writer's answer wakes this connection again.
                break Step::Throttled;
            }
            match d.stream.read(&mut self.scratch) {
                Ok(Got::Data(n)) => {
                    read += n;
                    match self.uploads.read(id, &self.scratch[..n]) {
                        Ok(Some(piece)) => self.writer.send(piece),
                        Ok(None) => {}
                        Err(refused) => {
                            if refused == UploadRefused::Room {
                                self.limit_log.hit(usize::MAX, "room", || {
                                    "ftp: an upload would need eviction of acknowledged data (max_spool_bytes or min_free_bytes); refused with 452".to_string()
                                });
                            }
                            break Step::Failed(refused.reply());
                        }
                    }
                }
                Ok(Got::Eof) => break Step::Ended { truncated: false },
                Ok(Got::Truncated) => break Step::Ended { truncated: true },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let _ = d.stream.flush();
                    break Step::Drained;
                }
                Err(e) => {
                    log::info!("ftp: upload connection failed: {e}");
                    break Step::Failed(Reply::new(
                        426,
                        "the data connection broke; upload discarded",
                    ));
                }
            }
        };
        if read > 0 {
            d.last_active = Instant::now();
        }
        match step {
            Step::Budget => true,
            Step::Throttled | Step::Drained => false,
            Step::Failed(reply) => {
                match self.control_slot(owner) {
                    Some(c) => self.end_transfer(registry, c, Some(reply)),
                    None => self.close(registry, slot),
                }
                false
            }
            Step::Ended { truncated } => {
                d.task = None;
                // Answer the client's close_notify (Python's ftplib waits for it); the few
                // bytes fit the socket buffer, so one try suffices.
                d.stream.close_notify();
                let _ = d.stream.flush();
                self.close(registry, slot);
                if let Some(cslot) = self.control_slot(owner) {
                    // No command is read until the upload is answered.
                    let c = self.control(cslot);
                    c.transferring = false;
                    c.busy = true;
                    c.session.transfer_finished();
                }
                for step in self.uploads.ended(id, truncated) {
                    self.upload_step(registry, step);
                }
                false
            }
        }
    }

    /// Carries out what the uploads asked for.
    fn upload_step(&mut self, registry: &Registry, step: UploadStep) {
        match step {
            UploadStep::Write(piece) => self.writer.send(piece),
            UploadStep::ReadOn(owner) => {
                // Read on, if it waited for the writer.
                let data = self.control_slot(owner).and_then(|c| self.control(c).data);
                if let Some(slot) = data {
                    if let Some(Entry::Data(d)) = self.slab.get_mut(slot) {
                        d.last_active = Instant::now();
                        self.wake(slot);
                    }
                }
            }
            UploadStep::Failed {
                owner,
                temp,
                reply,
                arriving,
            } => {
                self.jobs.send(Job::Discard(temp));
                match self.control_slot(owner) {
                    Some(c) if arriving => self.end_transfer(registry, c, Some(reply)),
                    _ => self.reply_to(owner, reply),
                }
            }
            UploadStep::Received(r) => {
                if let Some(cslot) = self.control_slot(r.owner) {
                    log::info!(
                        "ftp: {}: received /{}/{} ({} bytes, {:?})",
                        self.control(cslot).peer,
                        r.folder,
                        escaped(&r.name),
                        r.bytes,
                        r.kind
                    );
                }
                self.events.push(Event::Received {
                    conn: r.owner,
                    folder: r.folder,
                    name: r.name,
                    temp: r.temp,
                    kind: r.kind,
                });
            }
        }
    }

    /// The writer wrote a piece of an upload, or failed to.
    fn on_wrote(&mut self, registry: &Registry, w: Wrote) {
        if let Some(step) = self.uploads.wrote(w) {
            self.upload_step(registry, step);
        }
    }

    /// Ends the session's transfer, if any: the data side closed, an upload discarded, and
    /// `reply` sent.
    fn end_transfer(&mut self, registry: &Registry, slot: Token, reply: Option<Reply>) {
        let Some(Entry::Control(c)) = self.slab.get_mut(slot) else {
            return;
        };
        let task = c.task.take();
        c.waiting_since = None;
        c.transferring = false;
        c.session.transfer_finished();
        if let Some(r) = reply {
            c.reply(r);
        }
        self.wake(slot);
        if let Some(t) = task {
            self.fail_task(t);
        }
        self.close_data(registry, slot);
    }

    /// A password check finished: the reply (a failure's held back), the lockout count.
    fn on_login(&mut self, checked: Checked) {
        let Checked { conn, ok, error } = checked;
        if let Some(e) = error {
            self.warn_limited("passwd", || format!("ftp: {e}; no one can log in"));
        }
        let Some(slot) = self.control_slot(conn) else {
            return;
        };
        let c = self.control(slot);
        let ip = canonical(c.peer.ip());
        let peer = c.peer;
        let user = c.session.pending_user();
        let reply = c.session.login_result(ok);
        let answer = self.gate.answered(ip, ok, Instant::now());
        let c = self.control(slot);
        let (at, count, locked, evicted) = match answer {
            Answer::In => {
                c.busy = false;
                c.reply(reply);
                self.wake(slot);
                log::info!("ftp: {peer}: {user} logged in");
                return;
            }
            Answer::Out {
                at,
                count,
                locked,
                evicted,
            } => (at, count, locked, evicted),
        };
        c.delayed = Some((at, reply));
        let max = self.gate.max_failures();
        log::warn!("ftp: {peer}: failed login as {user:?} ({count} of {max})");
        if evicted {
            self.warn_limited("lockout", || {
                format!(
                    "ftp: the failed-login table is full ({} addresses); forgetting the least recent",
                    super::lockout::MAX_TRACKED
                )
            });
        }
        if locked {
            log::warn!(
                "ftp: {ip}: locked out for {}s after {max} failed logins",
                self.cfg.lockout.as_secs()
            );
        }
    }

    fn on_outcome(&mut self, registry: &Registry, outcome: Outcome) {
        match outcome {
            Outcome::Committed {
                conn,
                spooled,
                listed,
                result,
            } => {
                let reply = match &result {
                    Ok(bytes) => Reply::new(
                        226,
                        format!("stored ({bytes} bytes); it is delivered from the spool"),
                    ),
                    Err(e) => {
                        log::error!("ftp: committing an upload failed: {e}");
                        Reply::new(451, "cannot store the file; upload discarded")
                    }
                };
                if let Some(spooled) = spooled {
                    if let Some(entry) = listed {
                        self.files.committed(&spooled.source, entry, unix_now());
                    }
                    self.events.push(Event::Spooled(spooled));
                }
                self.reply_to(conn, reply);
            }
            Outcome::Listed {
                conn,
                result,
                kind,
                file,
            } => {
                let Some(slot) = self.control_slot(conn) else {
                    return;
                };
                self.control(slot).busy = false;
                if let ListKind::Stat = kind {
                    self.reply_to(conn, stat_reply(file, result));
                    return;
                }
                match result {
                    Ok(bytes) => self.start_transfer(
                        registry,
                        slot,
                        Task::Send(bytes),
                        "here comes the listing",
                    ),
                    Err(reply) => self.end_transfer(registry, slot, Some(reply)),
                }
            }
            Outcome::Reply { conn, reply } => {
                if let Some(slot) = self.control_slot(conn) {
                    let c = self.control(slot);
                    c.file_action_answered(reply.code);
                }
                self.reply_to(conn, reply);
            }
        }
    }
}

/// The control connections `[ftp]` allows, in all and per client address.
fn limits(cfg: &config::Ftp) -> Limits {
    Limits {
        total: cfg.max_connections,
        per_ip: cfg.max_connections_per_ip,
    }
}

fn unix_now() -> u64 {
    crate::clock::unix_secs(std::time::SystemTime::now())
}

/// `STAT path`'s reply: the LIST lines between a first and a last line (RFC 959 section
/// 4.1.3), 213 for a file and 212 for a folder, or the refusal.
fn stat_reply(is_file: bool, result: Result<Vec<u8>, Reply>) -> Reply {
    match result {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let mut lines = vec!["status:".to_string()];
            lines.extend(text.lines().map(str::to_string));
            lines.push("end".into());
            Reply {
                code: if is_file { 213 } else { 212 },
                lines,
            }
        }
        Err(r) => r,
    }
}

/// How a service of an upload's data connection ended.
enum Step {
    /// `READ_BUDGET` read: others get a turn, then this one again.
    Budget,
    /// `UPLOAD_QUEUE_BYTES` wait for the writer: its answer wakes the connection.
    Throttled,
    /// Nothing more to read now: the next edge wakes it.
    Drained,
    Failed(Reply),
    /// The connection ended cleanly (`truncated`: without a TLS close_notify): the upload
    /// is complete once written.
    Ended {
        truncated: bool,
    },
}
