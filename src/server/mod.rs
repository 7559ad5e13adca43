//! The event loop of one `lc run` instance: sockets in, spool out.
//!
//! One `mio::Poll` drives everything. Tokens: the waker, the signalfd, listeners (indices that
//! are never reused within a process) and connections (slab slots, freed only after the event
//! batch that closed them, so a stale event never names a new connection). Sockets are
//! registered once, edge-triggered; readiness is tracked here (`ready` flags plus a work list)
//! and each ready socket is drained to `WouldBlock` under a per-iteration byte budget, so one
//! busy sender cannot starve the rest. Stream reads pause while the disk is full; the kernel's
//! buffers then push back on senders.
//!
//! The loop never blocks on the disk beyond page-cache writes: fsync, gzip and delivery run on
//! the worker threads of `spool::worker`, which report through a channel and the waker.

pub mod listen;
mod reload;

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;

use crate::allow::canonical;
use crate::clock;
use crate::config::{self, Config, Receiver as Kind, Source};
use crate::deliver::api::Failure;
use crate::deliver::{self, DeliverJob};
use crate::ftp::jobs::Dest;
use crate::ftp::server::{Event as FtpEvent, FolderInfo, FtpServer};
use crate::logging::LimitLog;
use crate::reactor::guard::{Limits, Refusal};
use crate::reactor::slab::{Reuse, Slab};
use crate::reactor::table::{ConnTable, Refused};
use crate::reactor::{
    self, Owner, ACCEPT_BUDGET, CONN_BASE, LISTENER_BASE, READ_BUDGET, SIGNALS, UDP_BUDGET, WAKER,
};
use crate::spool::worker::{DeliverMsg, Done, SealJob, Workers};
use crate::spool::{SourceSpool, WriteError};
use crate::status::{self, Counters, Drop};
use crate::syslog::frame::{self, Decoded, Decoder, Ends};
use crate::syslog::render::{Origin, Render};
use crate::tls::cmd::FtpsNeed;
use reload::{Current, ReloadPlan};

// The FTP server's tokens are the reactor's FTP range.
const _: () = assert!(reactor::FTP_BASE == crate::ftp::server::TOKEN_BASE);

/// The shared read buffer; one read never returns more.
const SCRATCH_BYTES: usize = 64 * 1024;
/// How often rotation, fsync, free space, idle connections and status are looked at.
const HOUSEKEEPING: Duration = Duration::from_millis(250);
const STATUS_EVERY: Duration = Duration::from_secs(2);
const DISK_CHECK_EVERY: Duration = Duration::from_secs(1);
/// Delivery and sealing retries back off from this to `RETRY_MAX`.
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// Failures that need an operator (token, data source) are retried this rarely, and at once
/// after a reload.
const RETRY_PERMANENT: Duration = Duration::from_secs(300);
/// How long a stop waits for sealing to finish before leaving it to the next start.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

impl From<io::Error> for RunError {
    fn from(e: io::Error) -> Self {
        RunError(e.to_string())
    }
}

/// A source being served: its config, spool and counters.
struct SourceState {
    cfg: Source,
    spool: SourceSpool,
    counters: Counters,
    /// When delivery of the front segment may be tried again.
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// Set when the source left the config at a reload: served no more, drained then dropped.
    retired: bool,
    /// Segments whose sealing failed, to be sent to the sealer again (not those still queued
    /// or in progress there).
    seal_failed: Vec<u64>,
    /// The sender and receive time of the datagram being stored (UDP sources).
    udp_origin: Origin,
    /// Its sockets were closed for a reload that was then refused, and could not be bound
    /// again: the next reload binds them whatever changed.
    unbound: bool,
}

impl SourceState {
    /// Stores one received message as a spool line, rendered as the source says, and counts
    /// it (or counts it dropped, when the rendering keeps nothing of it).
    #[inline]
    fn store(&mut self, msg: &[u8], origin: &Origin) {
        if self.spool.append_message(self.cfg.render, msg, origin) {
            self.counters.messages += 1;
            self.counters.bytes += msg.len() as u64;
        } else {
            self.counters.drop(Drop::Empty, 1);
        }
    }
}

enum Socket {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

struct Listener {
    socket: Socket,
    source: usize,
    addr: SocketAddr,
    /// Bound as one dual-stack IPv6 socket (`listen = *`); kept to bind the same again.
    dual: bool,
}

struct Conn {
    stream: TcpStream,
    peer: SocketAddr,
    source: usize,
    framing: Framing,
    last_active: Instant,
    /// The TLS session of a syslog-tls connection.
    tls: Option<Box<TlsState>>,
}

/// RFC 6587 decoding state of one stream.
struct Framing {
    decoder: Decoder,
    /// The sender and the time of the current read, for the rendering.
    origin: Origin,
    /// Bytes of an incomplete frame, kept between reads.
    pending: Vec<u8>,
}

struct TlsState {
    session: rustls::ServerConnection,
    /// Set until the handshake completes; the handshake timeout counts from here.
    handshake_since: Option<Instant>,
    /// The client sent something: a close before the handshake is done is then a failed
    /// handshake, where a connection closed without a byte is a probe (a load balancer's
    /// TCP check).
    spoke: bool,
}

pub struct Server {
    poll: Poll,
    instance: String,
    port: Option<u16>,
    config: Config,
    started: u64,
    sources: Vec<SourceState>,
    /// Listener tokens are never reused within the process.
    listeners: Slab<Listener>,
    /// Stream connections, their slots and the per-IP counts.
    conns: ConnTable<Conn>,
    /// Tokens that may have more to read, accept or receive.
    work: Vec<Token>,
    /// Connections with data waiting while the disk is full; back on `work` when it has room.
    parked: Vec<Token>,
    scratch: Vec<u8>,
    workers: Option<Workers>,
    done_rx: Receiver<Done>,
    signals: SignalFd,
    disk_full: bool,
    disk_free: u64,
    disk_total: u64,
    limit_log: LimitLog,
    stopping: bool,
    next_housekeeping: Instant,
    next_status: Instant,
    next_disk_check: Instant,
    next_sync: Instant,
    /// The pid file and the lock held on it while the instance runs.
    pid_file: Option<(PathBuf, nix::fcntl::Flock<std::fs::File>)>,
    /// The syslog-tls configuration, when this instance serves syslog-tls sources.
    tls: Option<crate::tls::SyslogTls>,
    /// When the last SIGHUP was handled (ms since the epoch) and why it was refused, if it was:
    /// `lc certs reload` waits for these in the status snapshot.
    reloaded_at: u64,
    reload_error: Option<String>,
    /// The FTP server, when this instance serves FTP sources.
    ftp: Option<FtpServer>,
}

/// What an instance needs from files beyond the config: the delivery target (token, ca_file)
/// and, when it serves syslog-tls, the certificates. Read at start and at each reload, so a
/// bad file refuses the reload and keeps what runs.
pub struct Prepared {
    pub target: deliver::Target,
    pub tls: Option<crate::tls::SyslogTls>,
    pub ftp_tls: Option<crate::tls::FtpTls>,
}

pub fn prepare(config: &Config, port: Option<u16>) -> Result<Prepared, String> {
    let target = deliver::Target::from_config(config)?;
    let needs_tls = config
        .sources_for(port)
        .iter()
        .any(|s| s.receiver == Kind::SyslogTls);
    let tls = if needs_tls {
        let now = clock::unix_secs(SystemTime::now()) as i64;
        Some(crate::tls::load_syslog(&config.collector.certs_dir, now).map_err(|p| p.join("\n"))?)
    } else {
        None
    };
    let pem = config.collector.certs_dir.join(crate::tls::FTP_PEM);
    let ftp_tls = match crate::tls::cmd::ftps_need(&config.sources_for(port), config.ftp.tls) {
        FtpsNeed::Unused => None,
        FtpsNeed::IfPresent if !pem.exists() => {
            log::warn!(
                "ftp: {} is missing: FTPS (AUTH TLS) is not offered; `lc certs init` makes one",
                pem.display()
            );
            None
        }
        FtpsNeed::IfPresent | FtpsNeed::Required => {
            let now = clock::unix_secs(SystemTime::now()) as i64;
            Some(crate::tls::load_ftp(&config.collector.certs_dir, now).map_err(|p| p.join("\n"))?)
        }
    };
    Ok(Prepared {
        target,
        tls,
        ftp_tls,
    })
}

/// Blocks the signals lc handles so they arrive on a signalfd. Must run before any thread is
/// spawned, so every thread inherits the mask.
pub fn block_signals() -> io::Result<SigSet> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGHUP);
    mask.thread_block()?;
    // A peer that closes while we write must not kill the process.
    unsafe {
        nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn)?;
    }
    Ok(mask)
}

impl Server {
    /// Binds every listener of the instance, recovers the spool and starts the workers.
    pub fn new(
        config: Config,
        port: Option<u16>,
        mask: SigSet,
        prepared: Prepared,
    ) -> Result<Server, RunError> {
        let Prepared {
            target,
            tls,
            ftp_tls,
        } = prepared;
        let instance = port.map_or_else(|| "all".to_string(), |p| p.to_string());
        let wanted = config.sources_for(port);
        if wanted.is_empty() {
            return Err(RunError(match port {
                Some(p) => format!("{}: no source listens on port {p}", config.path.display()),
                None => format!("{}: no [source] is configured", config.path.display()),
            }));
        }
        let poll = Poll::new()?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| RunError(format!("signalfd: {e}")))?;
        poll.registry().register(
            &mut SourceFd(&signals.as_fd().as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let (done_tx, done_rx) = mpsc::channel();
        let now = Instant::now();
        let mut server = Server {
            poll,
            instance,
            port,
            started: clock::unix_secs(SystemTime::now()),
            sources: Vec::new(),
            listeners: Slab::new(LISTENER_BASE, Reuse::Never),
            conns: ConnTable::new(CONN_BASE, limits(&config)),
            work: Vec::new(),
            parked: Vec::new(),
            scratch: vec![0; SCRATCH_BYTES.max(config.collector.max_message_bytes + 1)],
            workers: None,
            done_rx,
            signals,
            disk_full: false,
            disk_free: 0,
            disk_total: 0,
            limit_log: LimitLog::default(),
            stopping: false,
            next_housekeeping: now,
            next_status: now,
            next_disk_check: now,
            next_sync: now + config.spool.sync_secs,
            pid_file: None,
            tls,
            reloaded_at: 0,
            reload_error: None,
            ftp: None,
            config,
        };
        // Bind first: a port in use must fail before this instance touches any spool.
        let mut bound = Vec::new();
        for (i, s) in wanted.iter().enumerate() {
            bound.extend(server.bind(s, i)?);
        }
        if wanted.iter().any(|s| !s.receiver.is_syslog()) {
            let folders = server.ftp_folders(&wanted);
            let ftp = FtpServer::new(
                &server.config,
                folders,
                ftp_tls,
                Arc::clone(&waker),
                server.poll.registry(),
            )
            .map_err(RunError)?;
            server.ftp = Some(ftp);
        }
        server.write_pid_file()?;
        for s in wanted {
            server.add_source(s)?;
        }
        for l in bound {
            server.register_listener(l)?;
        }
        log::info!("delivering to {}", target.describe());
        let workers = Workers::spawn(done_tx, waker)?;
        let _ = workers.deliver.send(DeliverMsg::Target(target));
        server.workers = Some(workers);
        for i in 0..server.sources.len() {
            server.start_recovered(i);
        }
        Ok(server)
    }

    fn bind(&self, s: &Source, source: usize) -> Result<Vec<Listener>, RunError> {
        if !s.receiver.is_syslog() {
            // A folder of the FTP server, which binds its own port.
            return Ok(Vec::new());
        }
        let listen = s.listen.clone().unwrap_or(config::Listen::Any);
        self.bind_at(s, source, &listen::addresses(&listen, s.port))
    }

    /// Binds `s`'s sockets on exactly `addrs` (address, dual-stack).
    fn bind_at(
        &self,
        s: &Source,
        source: usize,
        addrs: &[(SocketAddr, bool)],
    ) -> Result<Vec<Listener>, RunError> {
        let mut out = Vec::new();
        for &(addr, dual) in addrs {
            let socket = if s.receiver.is_udp() {
                let (sock, warning) = listen::udp(addr, dual, self.config.collector.udp_rcvbuf)
                    .map_err(|e| RunError(format!("source {}: {e}", s.name)))?;
                if let Some(w) = warning {
                    log::warn!("source {}: {w}", s.name);
                }
                Socket::Udp(sock)
            } else {
                Socket::Tcp(
                    listen::tcp(addr, dual)
                        .map_err(|e| RunError(format!("source {}: {e}", s.name)))?,
                )
            };
            let local = match &socket {
                Socket::Udp(u) => u.local_addr()?,
                Socket::Tcp(t) => t.local_addr()?,
            };
            out.push(Listener {
                socket,
                source,
                addr: local,
                dual,
            });
        }
        Ok(out)
    }

    fn register_listener(&mut self, mut l: Listener) -> io::Result<()> {
        let token = self.listeners.next_token();
        match &mut l.socket {
            Socket::Udp(u) => self
                .poll
                .registry()
                .register(u, token, Interest::READABLE)?,
            Socket::Tcp(t) => self
                .poll
                .registry()
                .register(t, token, Interest::READABLE)?,
        }
        let proto = if matches!(l.socket, Socket::Udp(_)) {
            "UDP"
        } else {
            "TCP"
        };
        log::info!(
            "source {}: listening on {proto} {}",
            self.sources[l.source].cfg.name,
            l.addr
        );
        // Data may already be queued: look once without waiting for an edge.
        self.work.push(self.listeners.insert(l));
        Ok(())
    }

    fn add_source(&mut self, cfg: Source) -> Result<(), RunError> {
        let (spool, recovery) = SourceSpool::recover(
            &self.config.collector.state_dir,
            &cfg.name,
            self.config.spool.rotate_bytes,
        )
        .map_err(|e| RunError(format!("source {}: spool: {e}", cfg.name)))?;
        if recovery.torn_bytes > 0 {
            log::warn!(
                "source {}: cut {} bytes of incomplete last lines left by an unclean stop",
                cfg.name,
                recovery.torn_bytes
            );
        }
        if !recovery.to_seal.is_empty() {
            log::info!(
                "source {}: recovered {} open segments from the last run",
                cfg.name,
                recovery.to_seal.len()
            );
        }
        let mut spool = spool;
        spool.sealing = recovery.to_seal;
        let mut counters = Counters::default();
        (counters.last_received, counters.last_delivery) = last_activity(&spool);
        self.sources.push(SourceState {
            cfg,
            spool,
            counters,
            retry_at: None,
            retry_delay: RETRY_MIN,
            retired: false,
            seal_failed: Vec::new(),
            udp_origin: Origin::new(),
            unbound: false,
        });
        Ok(())
    }

    /// Sends what recovery found to the workers: raw segments to seal, sealed ones to deliver.
    fn start_recovered(&mut self, i: usize) {
        let jobs: Vec<_> = self.sources[i].spool.sealing.clone();
        for (seq, raw, _) in jobs {
            self.send_seal(i, seq, raw);
        }
        self.try_deliver(i);
    }

    /// Writes `run_dir/INSTANCE.pid` and holds an exclusive lock on it for the life of the
    /// process: other commands signal only pids whose file is locked, so a stale file (after
    /// a crash, with the pid reused) never makes them signal a stranger.
    fn write_pid_file(&mut self) -> Result<(), RunError> {
        let run_dir = &self.config.collector.run_dir;
        std::fs::create_dir_all(run_dir)
            .map_err(|e| RunError(format!("{}: {e}", run_dir.display())))?;
        let path = status::pid_path(run_dir, &self.instance);
        let err = |e: String| RunError(format!("{}: {e}", path.display()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| err(e.to_string()))?;
        let mut lock =
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(l) => l,
                Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                    let pid = std::fs::read_to_string(&path).unwrap_or_default();
                    return Err(err(format!(
                        "instance {} is already running (pid {})",
                        self.instance,
                        pid.trim()
                    )));
                }
                Err((_, e)) => return Err(err(e.to_string())),
            };
        use std::io::Write;
        let file: &mut std::fs::File = &mut lock;
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| err(e.to_string()))?;
        self.pid_file = Some((path, lock));
        Ok(())
    }

    /// Runs until SIGTERM or SIGINT, then drains, seals and returns.
    pub fn run(mut self) -> Result<(), RunError> {
        let mut events = Events::with_capacity(1024);
        self.housekeeping(Instant::now());
        crate::notify::ready();
        log::info!(
            "instance {} started (pid {})",
            self.instance,
            std::process::id()
        );
        while !self.stopping {
            let ftp_busy = self.ftp.as_ref().is_some_and(FtpServer::has_work);
            let timeout = if self.work.is_empty() && !ftp_busy {
                self.next_housekeeping
                    .saturating_duration_since(Instant::now())
            } else {
                Duration::ZERO
            };
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RunError(format!("poll: {e}"))),
            }
            self.conns.next_batch();
            for event in events.iter() {
                match reactor::owner(event.token()) {
                    Owner::Waker => self.drain_done(),
                    Owner::Signals => self.read_signals(),
                    Owner::Ftp(token) => {
                        debug_assert!(FtpServer::owns(token));
                        if let Some(ftp) = &mut self.ftp {
                            ftp.ready(token);
                        }
                    }
                    Owner::Conn(token) => {
                        if self.conns.wake(token) {
                            self.work.push(token);
                        }
                    }
                    Owner::Listener(_) => {
                        if self.listeners.wake(event.token()) {
                            self.work.push(event.token());
                        }
                    }
                    Owner::Unknown => {}
                }
            }
            self.do_work();
            self.ftp_work();
            self.flush_spools();
            let now = Instant::now();
            if now >= self.next_housekeeping {
                self.housekeeping(now);
            }
        }
        self.stop()
    }

    /// Services every ready socket once, within its budget; keeps those with more to do.
    fn do_work(&mut self) {
        let work = std::mem::take(&mut self.work);
        let mut keep = Vec::new();
        for token in work {
            let more = if token.0 >= CONN_BASE {
                self.read_conn(token)
            } else {
                self.service_listener(token)
            };
            if more {
                keep.push(token);
            }
        }
        // Connections parked by a full disk stay on the list but must not spin the loop.
        if self.disk_full {
            self.parked.extend(keep.iter().filter(|t| t.0 >= CONN_BASE));
            keep.retain(|t| t.0 < CONN_BASE);
        }
        self.work.extend(keep);
    }
}

impl Server {
    /// Accepts connections or receives datagrams; returns whether the socket may have more.
    fn service_listener(&mut self, token: Token) -> bool {
        let Some(l) = self.listeners.get(token) else {
            return false;
        };
        let more = match &l.socket {
            Socket::Udp(_) => self.receive_udp(token),
            Socket::Tcp(_) => self.accept(token),
        };
        if !more {
            self.listeners.idle(token);
        }
        more
    }

    fn receive_udp(&mut self, token: Token) -> bool {
        let Server {
            listeners,
            sources,
            scratch,
            disk_full,
            limit_log,
            config,
            ..
        } = self;
        let l = listeners.get(token).expect("serviced listeners exist");
        let Socket::Udp(sock) = &l.socket else {
            unreachable!()
        };
        let src = &mut sources[l.source];
        let max = config.collector.max_message_bytes;
        let mut received = 0;
        let mut more = true;
        let mut origin = std::mem::take(&mut src.udp_origin);
        origin.set_time(clock::unix_secs(SystemTime::now()));
        for _ in 0..UDP_BUDGET {
            let (n, peer) = match sock.recv_from(scratch) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    more = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("source {}: UDP {}: {e}", src.cfg.name, l.addr);
                    more = false;
                    break;
                }
            };
            if !src.cfg.allow.allows(peer.ip()) {
                src.counters.drop(Drop::NotAllowed, 1);
                let name = &src.cfg.name;
                limit_log.hit(l.source, "allow", || {
                    format!("source {name}: {peer}: sender not in the allow list; dropped")
                });
                continue;
            }
            if *disk_full {
                src.counters.drop(Drop::DiskFull, 1);
                continue;
            }
            // `render = vendor` drops a trailing NUL and LF itself, as rsyslog does (a CR
            // before the LF stays, a datagram of just LF is written).
            let mut msg = match src.cfg.render {
                Render::Vendor => &scratch[..n],
                Render::Raw => frame::trim_trailing_newline(&scratch[..n]),
            };
            if msg.len() > max {
                msg = &msg[..max];
                src.counters.truncated += 1;
            }
            origin.set_peer(peer.ip());
            src.store(msg, &origin);
            received += 1;
        }
        src.udp_origin = origin;
        if received > 0 {
            src.counters.last_received = clock::unix_secs(SystemTime::now());
        }
        more
    }

    fn accept(&mut self, token: Token) -> bool {
        for _ in 0..ACCEPT_BUDGET {
            let l = self.listeners.get(token).expect("serviced listeners exist");
            let Socket::Tcp(t) = &l.socket else {
                unreachable!()
            };
            let (stream, peer) = match t.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: stop accepting this round, try again at the next one.
                    let name = self.sources[l.source].cfg.name.clone();
                    let addr = l.addr;
                    self.limit_log.hit(l.source, "accept", || {
                        format!("source {name}: accept on {addr}: {e}")
                    });
                    return false;
                }
            };
            let source = l.source;
            self.admit(stream, peer, source);
        }
        true
    }

    /// Applies the allow list and connection limits to a new connection, then registers it.
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr, source: usize) {
        let ip = canonical(peer.ip());
        let Server {
            sources,
            conns,
            poll,
            tls,
            limit_log,
            config,
            work,
            ..
        } = self;
        let src = &mut sources[source];
        let name = &src.cfg.name;
        if !src.cfg.allow.allows(ip) {
            src.counters.drop(Drop::NotAllowed, 1);
            limit_log.hit(source, Drop::NotAllowed.name(), || {
                format!("source {name}: {peer}: sender not in the allow list; connection closed")
            });
            return;
        }
        let max = config.collector.max_message_bytes;
        let admitted = conns.admit_with(ip, |token| {
            let tls = if src.cfg.receiver == Kind::SyslogTls {
                let Some(t) = tls else {
                    return Err("no TLS configuration loaded".to_string());
                };
                let session = rustls::ServerConnection::new(Arc::clone(&t.config))
                    .map_err(|e| format!("TLS: {e}"))?;
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
            poll.registry()
                .register(&mut stream, token, interest)
                .map_err(|e| format!("cannot register connection: {e}"))?;
            Ok(Conn {
                stream,
                peer,
                source,
                framing: Framing::new(max, &src.cfg, peer.ip()),
                last_active: Instant::now(),
                tls,
            })
        });
        match admitted {
            Ok(token) => {
                src.counters.connections += 1;
                src.counters.accepted += 1;
                log::debug!("source {name}: {peer}: connected");
                work.push(token);
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
    }

    /// Reads one connection within its budget; returns whether it may have more to read.
    fn read_conn(&mut self, token: Token) -> bool {
        let Server {
            conns,
            sources,
            scratch,
            disk_full,
            ..
        } = self;
        let Some(conn) = conns.get_mut(token) else {
            return false;
        };
        if *disk_full {
            return true;
        }
        let src = &mut sources[conn.source];
        let (outcome, total) = if conn.tls.is_some() {
            read_tls(conn, src, scratch)
        } else {
            read_plain(conn, src, scratch)
        };
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
                conns.idle(token);
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
                    self.limit_log.hit(conn.source, "tls", || {
                        format!("source {name}: {peer}: TLS handshake failed: the client {how} the connection before it finished")
                    });
                } else if let Some(e) = err {
                    log::info!(
                        "source {}: {}: connection error: {e}",
                        src.cfg.name,
                        conn.peer
                    );
                }
                self.close_conn(token);
                false
            }
            ReadOutcome::TlsFailed(e) => {
                src.counters.drop(Drop::TlsHandshake, 1);
                let (name, peer) = (src.cfg.name.clone(), conn.peer);
                self.limit_log.hit(conn.source, "tls", || {
                    format!(
                        "source {name}: {peer}: TLS handshake failed: {}",
                        crate::tls::explain(&e)
                    )
                });
                self.close_conn(token);
                false
            }
            ReadOutcome::NameRefused(names) => {
                src.counters.drop(Drop::NotAllowedCn, 1);
                let (name, peer) = (src.cfg.name.clone(), conn.peer);
                self.limit_log.hit(conn.source, "allow_cn", || {
                    format!("source {name}: {peer}: client certificate names {names:?} not in allow_cn; connection closed")
                });
                self.close_conn(token);
                false
            }
        }
    }

    /// Closes a connection, keeping any partial frame the sender had sent.
    fn close_conn(&mut self, token: Token) {
        let Some(mut conn) = self.conns.remove(token) else {
            return;
        };
        let src = &mut self.sources[conn.source];
        conn.framing.finish(src);
        let _ = self.poll.registry().deregister(&mut conn.stream);
        src.counters.connections -= 1;
        log::debug!("source {}: {}: closed", src.cfg.name, conn.peer);
    }

    /// Writes every source's buffered lines to its open segment.
    fn flush_spools(&mut self) {
        for i in 0..self.sources.len() {
            self.flush_source(i);
        }
    }

    fn flush_source(&mut self, i: usize) {
        let src = &mut self.sources[i];
        match src.spool.flush() {
            Ok(()) => {}
            Err(WriteError::DiskFull) => {
                if !self.disk_full {
                    log::error!(
                        "source {}: {}: disk full; pausing stream receivers, counting UDP drops",
                        src.cfg.name,
                        src.spool.dir.display()
                    );
                    self.disk_full = true;
                }
            }
            Err(WriteError::Other(e)) => {
                // Not writing is handled as a full disk: the lines stay buffered, stream
                // receivers pause (their senders queue) and UDP drops are counted, until the
                // next disk check finds writes working again. Never a silent loss.
                let name = src.cfg.name.clone();
                self.limit_log.hit(i, "write", || {
                    format!("source {name}: write failed: {e}; pausing stream receivers, counting UDP drops")
                });
                src.counters.last_error = Some((
                    clock::unix_secs(SystemTime::now()),
                    format!("spool write: {e}"),
                ));
                self.disk_full = true;
            }
        }
        for (seq, raw, _) in self.sources[i].spool.take_sealed() {
            self.send_seal(i, seq, raw);
        }
    }

    /// Seals the open segment of source `i` (after flushing what is buffered).
    fn seal_open(&mut self, i: usize) {
        self.flush_source(i);
        if !self.sources[i].spool.buf.is_empty() {
            // The disk refused the rest; the segment stays open until it is written.
            return;
        }
        if let Some((seq, raw, _)) = self.sources[i].spool.take_for_seal() {
            self.send_seal(i, seq, raw);
        }
    }

    fn send_seal(&mut self, i: usize, seq: u64, raw: PathBuf) {
        let source = self.sources[i].cfg.name.clone();
        if let Some(w) = &self.workers {
            let max_part = self.config.delivery.max_upload_bytes;
            let _ = w.seal.send(SealJob {
                source,
                seq,
                raw,
                max_part,
            });
        }
    }

    /// Hands the oldest sealed segment to the deliverer, if none is in flight.
    fn try_deliver(&mut self, i: usize) {
        let collector = self.config.collector.name.clone();
        let backup_keep = self.config.spool.backup_keep;
        let src = &mut self.sources[i];
        if self.stopping
            || src.spool.in_delivery.is_some()
            || src.retry_at.is_some_and(|t| t > Instant::now())
        {
            return;
        }
        let Some(seq) = src.spool.sealed.front().map(|f| f.seq) else {
            return;
        };
        // Every sealed part of the segment goes in one job (one upload, blocks on Azure).
        let parts: Vec<PathBuf> = src
            .spool
            .sealed
            .iter()
            .filter(|s| s.seq == seq)
            .map(|s| s.path.clone())
            .collect();
        let job = DeliverJob {
            source: src.cfg.name.clone(),
            format: src.cfg.format.clone(),
            parts,
            // Source, host and sequence: unique across restarts, as the API's filename.
            prefix: format!("{}_{}_", src.cfg.name, collector),
            backup_dir: src.spool.backup_dir.clone(),
            backup_keep,
        };
        src.spool.in_delivery = Some(seq);
        src.retry_at = None;
        if let Some(w) = &self.workers {
            let _ = w.deliver.send(DeliverMsg::Job(job));
        }
    }

    fn source_index(&self, name: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.cfg.name == name)
    }

    /// Applies what the workers report.
    fn drain_done(&mut self) {
        while let Ok(done) = self.done_rx.try_recv() {
            self.handle_done(done);
        }
        if let Some(ftp) = &mut self.ftp {
            let events = ftp.drain(self.poll.registry());
            self.ftp_events(events);
        }
    }

    fn handle_done(&mut self, done: Done) {
        let now = clock::unix_secs(SystemTime::now());
        match done {
            Done::SyncFailed { path, error } => {
                log::error!("{}: fsync failed: {error}", path.display())
            }
            Done::Sealed { source, seq, parts } => {
                let Some(i) = self.source_index(&source) else {
                    return;
                };
                let spool = &mut self.sources[i].spool;
                spool.sealing.retain(|(s, _, _)| *s != seq);
                spool.add_sealed(parts);
                self.try_deliver(i);
            }
            Done::SealFailed { source, seq, error } => {
                log::error!("source {source}: sealing segment {seq} failed: {error}; will retry");
                let Some(i) = self.source_index(&source) else {
                    return;
                };
                if self.stopping {
                    // The next start seals it from the raw segment.
                    self.sources[i].spool.sealing.retain(|(s, _, _)| *s != seq);
                    return;
                }
                self.sources[i].seal_failed.push(seq);
                self.sources[i].counters.last_error = Some((now, format!("seal: {error}")));
                // Retried by housekeeping: the raw segment stays in `sealing`.
                self.sources[i].retry_at =
                    Some(Instant::now() + RETRY_MAX.min(Duration::from_secs(10)));
            }
            Done::Delivered {
                source,
                paths,
                bytes,
                at,
            } => {
                let Some(i) = self.source_index(&source) else {
                    return;
                };
                let src = &mut self.sources[i];
                src.spool.in_delivery = None;
                src.spool.sealed.retain(|s| !paths.contains(&s.path));
                src.counters.delivered_files += 1;
                src.counters.delivered_bytes += bytes;
                src.counters.last_delivery = at;
                if src.counters.failing_since != 0 {
                    log::info!("source {source}: delivery works again");
                }
                src.counters.failing_since = 0;
                src.counters.error_permanent = false;
                src.retry_delay = RETRY_MIN;
                log::debug!(
                    "source {source}: delivered {} ({bytes} bytes)",
                    paths[0].display()
                );
                self.try_deliver(i);
            }
            Done::DeliveryFailed {
                source,
                paths,
                failure,
            } => {
                let Some(i) = self.source_index(&source) else {
                    return;
                };
                let src = &mut self.sources[i];
                src.spool.in_delivery = None;
                let (wait, next) = match &failure {
                    Failure::Transient { after, .. } => {
                        let backoff = jitter(src.retry_delay);
                        src.retry_delay = (src.retry_delay * 2).min(RETRY_MAX);
                        (after.unwrap_or(backoff), "retrying")
                    }
                    Failure::Permanent { .. } => {
                        (RETRY_PERMANENT, "this needs an operator; retrying")
                    }
                };
                let message = format!("delivery: {}", failure.reason());
                if src
                    .counters
                    .last_error
                    .as_ref()
                    .is_none_or(|(_, e)| *e != message)
                {
                    log::error!(
                        "source {source}: delivering {} failed: {}; {next} in {:.1}s",
                        paths[0].display(),
                        failure.reason(),
                        wait.as_secs_f64()
                    );
                }
                if src.counters.failing_since == 0 {
                    src.counters.failing_since = now;
                }
                src.counters.last_error = Some((now, message));
                src.counters.error_permanent = matches!(failure, Failure::Permanent { .. });
                src.retry_at = Some(Instant::now() + wait);
            }
        }
    }

    fn read_signals(&mut self) {
        loop {
            match self.signals.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                        log::info!(
                            "instance {}: stopping on signal {}",
                            self.instance,
                            info.ssi_signo
                        );
                        self.stopping = true;
                    }
                    Ok(Signal::SIGHUP) => self.reload(),
                    _ => {}
                },
                Ok(None) => return,
                Err(e) => {
                    log::error!("signalfd: {e}");
                    return;
                }
            }
        }
    }
}

enum ReadOutcome {
    More,
    Drained,
    Closed(Option<io::Error>),
    /// The TLS handshake or a record failed (no or a wrong client certificate, old TLS).
    TlsFailed(rustls::Error),
    /// The client certificate's names are not in `allow_cn`.
    NameRefused(Vec<String>),
}

/// Reads a plain TCP connection up to the budget; returns the outcome and bytes read.
fn read_plain(conn: &mut Conn, src: &mut SourceState, scratch: &mut [u8]) -> (ReadOutcome, usize) {
    let mut total = 0;
    loop {
        if total >= READ_BUDGET {
            return (ReadOutcome::More, total);
        }
        match conn.stream.read(scratch) {
            Ok(0) => return (ReadOutcome::Closed(None), total),
            Ok(n) => {
                total += n;
                conn.framing.feed(src, &scratch[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return (ReadOutcome::Drained, total)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (ReadOutcome::Closed(Some(e)), total),
        }
    }
}

/// Reads a TLS connection up to the budget: sends what rustls has queued (handshake records,
/// alerts), feeds it records, checks `allow_cn` once the handshake is done, and decodes the
/// plaintext. RFC 5425: the syslog frames inside TLS are the same as on TCP.
fn read_tls(conn: &mut Conn, src: &mut SourceState, scratch: &mut [u8]) -> (ReadOutcome, usize) {
    let Conn {
        stream,
        framing,
        tls,
        ..
    } = conn;
    let tls = tls.as_mut().expect("read_tls is for TLS connections");
    let mut total = 0;
    loop {
        while tls.session.wants_write() {
            match tls.session.write_tls(stream) {
                Ok(_) => {}
                // The socket is full: its WRITABLE event brings us back.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (ReadOutcome::Closed(Some(e)), total),
            }
        }
        if total >= READ_BUDGET {
            return (ReadOutcome::More, total);
        }
        let (eof, drained) = match tls.session.read_tls(stream) {
            Ok(0) => (true, false),
            Ok(n) => {
                total += n;
                (false, false)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (false, true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (ReadOutcome::Closed(Some(e)), total),
        };
        if let Err(e) = tls.session.process_new_packets() {
            // Tell the peer why (the alert rustls queued), as far as the socket takes it.
            let _ = tls.session.write_tls(stream);
            return (ReadOutcome::TlsFailed(e), total);
        }
        if tls.handshake_since.is_some() && !tls.session.is_handshaking() {
            tls.handshake_since = None;
            let names = tls
                .session
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| crate::tls::peer_names(c))
                .unwrap_or_default();
            if !crate::tls::name_allowed(&names, &src.cfg.allow_cn) {
                return (ReadOutcome::NameRefused(names), total);
            }
        }
        loop {
            match tls.session.reader().read(scratch) {
                // close_notify: the peer ended the session cleanly.
                Ok(0) => return (ReadOutcome::Closed(None), total),
                Ok(n) => framing.feed(src, &scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return (ReadOutcome::Closed(None), total)
                }
                Err(e) => return (ReadOutcome::Closed(Some(e)), total),
            }
        }
        if eof {
            return (ReadOutcome::Closed(None), total);
        }
        if drained {
            return (ReadOutcome::Drained, total);
        }
    }
}

/// Decodes `data` read from `conn` into the source's spool, keeping any incomplete frame.
impl Framing {
    fn new(max: usize, cfg: &Source, peer: IpAddr) -> Framing {
        let mut origin = Origin::new();
        origin.set_peer(peer);
        // The vendor rendering frames as the vendor's rsyslog does, so its lines match
        // byte for byte; raw keeps the common terminators (NUL, CRLF) as framing.
        let ends = match cfg.render {
            Render::Vendor => Ends::Lf,
            Render::Raw => Ends::Any,
        };
        Framing {
            decoder: Decoder::new(max, cfg.framing, ends),
            origin,
            pending: Vec::new(),
        }
    }

    /// Decodes `data` into the source's spool, keeping any incomplete frame.
    fn feed(&mut self, src: &mut SourceState, data: &[u8]) {
        self.origin.set_time(clock::unix_secs(SystemTime::now()));
        // Common case: no partial frame waiting, decode straight from the read buffer.
        if self.pending.is_empty() {
            let used = decode_all(&mut self.decoder, src, data, &self.origin);
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let pending = std::mem::take(&mut self.pending);
            let used = decode_all(&mut self.decoder, src, &pending, &self.origin);
            self.pending = pending;
            self.pending.drain(..used);
        }
        // Don't hold on to a large buffer after a large frame has gone through.
        if self.pending.is_empty() && self.pending.capacity() > SCRATCH_BYTES {
            self.pending = Vec::new();
        }
    }

    /// The stream ended: what the sender sent of a last frame is kept as a message.
    fn finish(&mut self, src: &mut SourceState) {
        let pending = std::mem::take(&mut self.pending);
        if let Some(msg) = self.decoder.finish(&pending) {
            self.origin.set_time(clock::unix_secs(SystemTime::now()));
            src.store(msg, &self.origin);
        }
    }
}

fn decode_all(decoder: &mut Decoder, src: &mut SourceState, buf: &[u8], origin: &Origin) -> usize {
    let mut at = 0;
    while let Some((what, used)) = decoder.decode(&buf[at..]) {
        at += used;
        if let Decoded::Message { msg, truncated } = what {
            src.store(msg, origin);
            src.counters.truncated += u64::from(truncated);
        }
    }
    at
}

/// A delay between half and all of `d`, so collectors that failed together don't retry
/// together (xorshift over the clock's nanoseconds; no need for better randomness here).
fn jitter(d: Duration) -> Duration {
    let mut x = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |t| t.subsec_nanos() as u64 | 1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    d / 2 + d.mul_f64((x % 1000) as f64 / 2000.0)
}

/// When a source last received and delivered, as far as its files tell after a restart.
fn last_activity(spool: &SourceSpool) -> (u64, u64) {
    let newest = |dir: &Path| -> u64 {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.metadata().ok()?.modified().ok())
            .map(clock::unix_secs)
            .max()
            .unwrap_or(0)
    };
    let delivered = newest(&spool.backup_dir);
    (newest(&spool.dir).max(delivered), delivered)
}

impl Server {
    /// Periodic work: rotation, fsync, free space, retries, idle connections, status.
    fn housekeeping(&mut self, now: Instant) {
        self.next_housekeeping = now + HOUSEKEEPING;
        let rotate_after = self.config.spool.rotate_secs;
        for i in 0..self.sources.len() {
            if self.sources[i]
                .spool
                .open
                .as_ref()
                .is_some_and(|s| now.duration_since(s.opened) >= rotate_after)
            {
                self.seal_open(i);
            }
            if self.sources[i].retry_at.is_some_and(|t| t <= now) {
                self.sources[i].retry_at = None;
                self.retry_seals(i);
                self.try_deliver(i);
            }
        }
        if now >= self.next_sync {
            self.next_sync = now + self.config.spool.sync_secs;
            self.request_syncs();
        }
        if now >= self.next_disk_check {
            self.next_disk_check = now + DISK_CHECK_EVERY;
            self.check_disk();
        }
        self.close_idle(now);
        if let Some(ftp) = &mut self.ftp {
            // What an upload may add without making check_disk evict acknowledged data.
            let backlog: u64 = self.sources.iter().map(|s| s.spool.backlog_bytes()).sum();
            let spool = &self.config.spool;
            let mut room = spool.max_spool_bytes.saturating_sub(backlog);
            if self.disk_total > 0 {
                room = room.min(self.disk_free.saturating_sub(spool.min_free_bytes));
            }
            ftp.set_disk(self.disk_full, self.disk_full, room);
            ftp.tick(self.poll.registry(), now);
        }
        if now >= self.next_status {
            self.next_status = now + STATUS_EVERY;
            self.update_udp_drops();
            self.write_status(true);
        }
    }

    /// Sends raw segments whose sealing failed back to the sealer (only those: a job still
    /// queued there must not be sent twice).
    fn retry_seals(&mut self, i: usize) {
        let failed = std::mem::take(&mut self.sources[i].seal_failed);
        let jobs: Vec<_> = self.sources[i]
            .spool
            .sealing
            .iter()
            .filter(|(seq, raw, _)| failed.contains(seq) && raw.exists())
            .map(|(seq, raw, _)| (*seq, raw.clone()))
            .collect();
        for (seq, raw) in jobs {
            self.send_seal(i, seq, raw);
        }
    }

    fn request_syncs(&mut self) {
        let Some(w) = &self.workers else { return };
        for src in &mut self.sources {
            if let Some(seg) = src.spool.open.as_mut().filter(|s| s.dirty) {
                seg.dirty = false;
                let _ = w.sync.send((Arc::clone(&seg.file), seg.path.clone()));
            }
        }
    }

    /// Enforces `max_spool_bytes` and `min_free_bytes`, and pauses or resumes receivers.
    fn check_disk(&mut self) {
        let state_dir = self.config.collector.state_dir.clone();
        let spool_cfg = self.config.spool.clone();
        let mut total: u64 = self.sources.iter().map(|s| s.spool.backlog_bytes()).sum();
        while total > spool_cfg.max_spool_bytes {
            let Some(freed) = self.evict_oldest("max_spool_bytes") else {
                break;
            };
            total = total.saturating_sub(freed);
        }
        while let Some((free, size)) = disk_space(&state_dir) {
            (self.disk_free, self.disk_total) = (free, size);
            if free >= spool_cfg.min_free_bytes {
                break;
            }
            if self.prune_backups() || self.evict_oldest("min_free_bytes").is_some() {
                continue;
            }
            if !self.disk_full {
                log::error!(
                    "{}: free space {free} is below min_free_bytes {}; pausing stream receivers, counting UDP drops",
                    state_dir.display(),
                    spool_cfg.min_free_bytes
                );
                self.disk_full = true;
            }
            return;
        }
        if self.disk_full {
            // Room again: retry what is buffered; resume only if it all went out.
            self.disk_full = false;
            self.flush_spools();
            if !self.disk_full {
                log::info!(
                    "{}: disk has room again; receivers resumed",
                    state_dir.display()
                );
                self.work.append(&mut self.parked);
            }
        }
    }

    /// Removes delivered segments kept in backup/ (the first thing to go when space is short).
    fn prune_backups(&mut self) -> bool {
        let mut removed = false;
        for src in &self.sources {
            for e in std::fs::read_dir(&src.spool.backup_dir)
                .into_iter()
                .flatten()
                .flatten()
            {
                if std::fs::remove_file(e.path()).is_ok() {
                    removed = true;
                }
            }
        }
        if removed {
            log::warn!(
                "{}: disk space low; removed the backup copies of delivered segments",
                self.config.collector.state_dir.display()
            );
        }
        removed
    }

    /// Evicts the oldest sealed segment of any source; returns the bytes freed.
    fn evict_oldest(&mut self, why: &str) -> Option<u64> {
        let (_, _, i, path) = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.spool
                    .oldest_evictable()
                    .map(|o| (o.sealed_at, (o.seq, o.part), i, o.path.clone()))
            })
            .min()?;
        let src = &mut self.sources[i];
        match src.spool.evict(&path) {
            Ok(bytes) => {
                src.counters.drop(Drop::EvictedSegments, 1);
                src.counters.evicted_bytes += bytes;
                log::warn!(
                    "source {}: evicted undelivered segment {} ({bytes} bytes) to respect {why}",
                    src.cfg.name,
                    path.display()
                );
                Some(bytes)
            }
            Err(e) => {
                log::error!("source {}: evicting {}: {e}", src.cfg.name, path.display());
                None
            }
        }
    }

    /// Closes connections idle for `idle_timeout_secs`, and TLS connections whose handshake
    /// has not finished within `handshake_timeout_secs` (a peer that stalls mid-handshake).
    fn close_idle(&mut self, now: Instant) {
        let timeout = self.config.collector.idle_timeout;
        let handshake_timeout = self.config.collector.handshake_timeout;
        let mut stale = Vec::new();
        for (slot, c) in self.conns.iter() {
            let handshake = c.tls.as_ref().and_then(|t| t.handshake_since);
            if handshake.is_some_and(|t| now.duration_since(t) >= handshake_timeout) {
                stale.push((slot, true));
            } else if now.duration_since(c.last_active) >= timeout {
                stale.push((slot, false));
            }
        }
        for (slot, handshaking) in stale {
            let conn = self.conns.get(slot).expect("just found");
            let src = &mut self.sources[conn.source];
            if handshaking {
                src.counters.drop(Drop::TlsHandshake, 1);
                let (name, peer) = (src.cfg.name.clone(), conn.peer);
                self.limit_log.hit(conn.source, "tls", || {
                    format!(
                        "source {name}: {peer}: TLS handshake not done in {}s; closed",
                        handshake_timeout.as_secs()
                    )
                });
            } else {
                src.counters.idle_closed += 1;
                log::info!(
                    "source {}: {}: idle for {}s; closed",
                    src.cfg.name,
                    conn.peer,
                    timeout.as_secs()
                );
            }
            self.close_conn(slot);
        }
    }

    /// Reads the kernel's per-socket drop counters for this instance's UDP sockets.
    fn update_udp_drops(&mut self) {
        let mut per_source: HashMap<usize, u64> = HashMap::new();
        let table = udp_drop_table();
        for (_, l) in self.listeners.iter() {
            if let Socket::Udp(u) = &l.socket {
                let Ok(st) = nix::sys::stat::fstat(u.as_raw_fd()) else {
                    continue;
                };
                if let Some(d) = table.get(&st.st_ino) {
                    *per_source.entry(l.source).or_insert(0) += d;
                }
            }
        }
        for (i, d) in per_source {
            self.sources[i].counters.set_dropped(Drop::UdpKernel, d);
        }
    }

    fn write_status(&mut self, running: bool) {
        let now = clock::unix_secs(SystemTime::now());
        let sources: Vec<_> = self
            .sources
            .iter()
            .filter(|s| !s.retired)
            .map(|s| {
                let oldest = s
                    .spool
                    .sealed
                    .front()
                    .map_or(0, |f| now.saturating_sub(f.sealed_at));
                status::source_json(
                    &status::SourceView {
                        name: &s.cfg.name,
                        format: &s.cfg.format,
                        receiver: s.cfg.receiver.as_str(),
                        port: s.cfg.port,
                        counters: &s.counters,
                        backlog_files: s.spool.sealed.len()
                            + s.spool.sealing.len()
                            + usize::from(s.spool.open.is_some()),
                        backlog_bytes: s.spool.backlog_bytes(),
                        oldest_backlog: oldest,
                    },
                    now,
                )
            })
            .collect();
        let listeners: Vec<_> = self
            .listeners
            .iter()
            .map(|(_, l)| {
                json!({
                    "source": self.sources[l.source].cfg.name,
                    "proto": if matches!(l.socket, Socket::Udp(_)) { "udp" } else { "tcp" },
                    "addr": l.addr.to_string(),
                    "port": l.addr.port(),
                })
            })
            .collect();
        let spool_bytes: u64 = self.sources.iter().map(|s| s.spool.backlog_bytes()).sum();
        let value = json!({
            "instance": self.instance,
            "pid": std::process::id(),
            "version": crate::VERSION,
            "config": self.config.path.display().to_string(),
            "running": running,
            "started": clock::rfc3339(self.started),
            "updated": now,
            "state_dir": self.config.collector.state_dir.display().to_string(),
            "disk": { "free_bytes": self.disk_free, "total_bytes": self.disk_total, "spool_bytes": spool_bytes, "full": self.disk_full },
            "connections": self.conns.len(),
            "reloaded_at": self.reloaded_at,
            "reload_error": self.reload_error,
            "tls": self.tls.as_ref().map(|t| json!({
                "subject": t.server.subject,
                "serial": t.server.serial,
                "not_after": t.server.not_after,
                "client_ca": t.client_ca.iter().map(|c| c.subject.clone()).collect::<Vec<_>>(),
                "client_ca_not_after": t.client_ca.iter().map(|c| c.not_after).min(),
            })),
            "listeners": listeners,
            "ftp": self.ftp.as_ref().map(FtpServer::status),
            "sources": sources,
        });
        let path = status::snapshot_path(&self.config.collector.run_dir, &self.instance);
        if let Err(e) = status::write_atomically(&path, &value) {
            self.limit_log.hit(usize::MAX, "status", || {
                format!("{}: cannot write status: {e}", path.display())
            });
        }
    }

    /// SIGHUP: re-reads the config; a bad one keeps the running one and says why.
    fn reload(&mut self) {
        crate::notify::reloading();
        let path = self.config.path.clone();
        let port = self.port;
        // Problems of other instances' sources do not refuse this one's reload (`lc config
        // check --port`, which ExecReload runs, passes them too); they are logged.
        let loaded = config::load_for(&path, port)
            .map(|(new, others)| {
                for p in &others {
                    log::warn!(
                        "{}:{}: {} (another instance's source, not served here)",
                        path.display(),
                        p.line,
                        p.message
                    );
                }
                new
            })
            .map_err(|e| format!("\n{e}"))
            .and_then(|new| {
                // The token, ca_file and certificates are read now, so a bad one refuses the
                // whole reload.
                let prepared = prepare(&new, port)?;
                Ok((new, prepared))
            });
        let result = match loaded {
            Err(e) => Err(e),
            Ok((
                new,
                Prepared {
                    target,
                    tls,
                    ftp_tls,
                },
            )) => match self.apply(new) {
                Ok(()) => {
                    log::info!("delivering to {}", target.describe());
                    if let Some(w) = &self.workers {
                        let _ = w.deliver.send(DeliverMsg::Target(target));
                    }
                    if let Some(t) = &tls {
                        log::info!(
                            "syslog-tls: new handshakes use {} (serial {}); open connections keep theirs",
                            t.server.subject,
                            t.server.serial
                        );
                    }
                    self.tls = tls;
                    let wanted = self.config.sources_for(self.port);
                    let folders = self.ftp_folders(&wanted);
                    if let Some(ftp) = &mut self.ftp {
                        ftp.reconfigure(&self.config.ftp, folders, ftp_tls);
                    } else if !folders.is_empty() {
                        log::warn!("ftp: FTP sources were added; the FTP server starts with a restart of this instance");
                    }
                    // A fixed token or proxy should be tried at once, not after the backoff.
                    for i in 0..self.sources.len() {
                        self.sources[i].retry_at = None;
                        self.sources[i].retry_delay = RETRY_MIN;
                        self.try_deliver(i);
                    }
                    log::info!("{}: config reloaded", path.display());
                    if let (Some(p), true) = (self.port, wanted.is_empty()) {
                        log::error!(
                            "{}: no source listens on port {p} any more: this instance receives nothing (stop it: systemctl disable --now lc@{p})",
                            path.display()
                        );
                    }
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
        };
        if let Err(e) = &result {
            log::error!("reload refused, keeping the running config: {e}");
        }
        self.reload_error = result.err().map(|e| e.trim().to_string());
        self.reloaded_at = clock::unix_millis();
        self.write_status(true);
        crate::notify::ready();
    }

    /// Applies a new config by its plan: new sockets are all bound before anything changes;
    /// then limits and spool settings apply at once, sources are added, moved or retired.
    fn apply(&mut self, new: Config) -> Result<(), RunError> {
        let current: Vec<Current> = self
            .sources
            .iter()
            .map(|s| Current {
                cfg: &s.cfg,
                retired: s.retired,
                unbound: s.unbound,
            })
            .collect();
        let plan = ReloadPlan::new(&self.config, &current, &new, self.port).map_err(RunError)?;
        let old_config = std::mem::replace(&mut self.config, new);
        let bound = match self.bind_all(&plan) {
            Ok(bound) => bound,
            Err(e) => {
                self.config = old_config;
                return Err(e);
            }
        };
        // Commit: nothing below can be refused.
        for &i in &plan.close {
            self.close_listeners_of(i);
        }
        for &i in &plan.retire {
            log::info!(
                "source {}: removed from the config; its spool is still delivered",
                self.sources[i].cfg.name
            );
            self.sources[i].retired = true;
            self.seal_open(i);
            self.close_conns_of(i);
        }
        for (i, cfg) in plan.update {
            self.sources[i].retired = false;
            self.sources[i].cfg = cfg;
        }
        for s in plan.add {
            self.add_source(s)?;
            self.start_recovered(self.sources.len() - 1);
        }
        for (name, listeners) in bound {
            let i = self.source_index(&name).expect("bound sources are served");
            self.sources[i].unbound = false;
            for mut l in listeners {
                l.source = i;
                self.register_listener(l)?;
            }
        }
        for src in &mut self.sources {
            src.spool.rotate_bytes = self.config.spool.rotate_bytes;
        }
        self.conns.set_limits(limits(&self.config));
        let need = SCRATCH_BYTES.max(self.config.collector.max_message_bytes + 1);
        self.scratch.resize(need, 0);
        Ok(())
    }

    /// Binds the sockets of every source in `plan.bind`, or none. A moving source may hold
    /// the address another one (or itself) moves to: then the listeners of `plan.close` close
    /// and the binds are tried once more. If one still fails, what was bound is dropped and
    /// what was closed is bound again where it was: the instance listens as before.
    fn bind_all(&mut self, plan: &ReloadPlan) -> Result<Vec<(String, Vec<Listener>)>, RunError> {
        let try_all = |server: &Server| -> Result<Vec<(String, Vec<Listener>)>, RunError> {
            plan.bind
                .iter()
                // The source index is set at commit; bind with a placeholder.
                .map(|s| Ok((s.name.clone(), server.bind(s, usize::MAX)?)))
                .collect()
        };
        let first = try_all(self);
        if first.is_ok() || plan.close.is_empty() {
            return first;
        }
        drop(first);
        let closed: Vec<_> = plan
            .close
            .iter()
            .map(|&i| (i, self.close_listeners_of(i)))
            .collect();
        let second = try_all(self);
        if second.is_err() {
            for (i, addrs) in closed {
                self.listen_again(i, &addrs);
            }
        }
        second
    }

    /// A refused reload had closed source `i`'s sockets: bind them again on the same
    /// addresses. Failing that (another process took the port in between) the source is left
    /// without a listener, said at error level, and the next reload binds it.
    fn listen_again(&mut self, i: usize, addrs: &[(SocketAddr, bool)]) {
        let cfg = self.sources[i].cfg.clone();
        match self.bind_at(&cfg, i, addrs) {
            Ok(ls) => {
                for l in ls {
                    if let Err(e) = self.register_listener(l) {
                        log::error!("source {}: cannot listen again: {e}", cfg.name);
                    }
                }
            }
            Err(e) => {
                log::error!("{e}; the source has no listener until a reload or restart binds it");
                self.sources[i].unbound = true;
            }
        }
    }

    /// Closes source `i`'s sockets; returns the addresses they had.
    fn close_listeners_of(&mut self, source: usize) -> Vec<(SocketAddr, bool)> {
        let mut closed = Vec::new();
        let tokens: Vec<Token> = self
            .listeners
            .iter()
            .filter(|(_, l)| l.source == source)
            .map(|(t, _)| t)
            .collect();
        for token in tokens {
            {
                let mut l = self.listeners.remove(token).expect("listed");
                let _ = match &mut l.socket {
                    Socket::Udp(u) => self.poll.registry().deregister(u),
                    Socket::Tcp(t) => self.poll.registry().deregister(t),
                };
                log::info!(
                    "source {}: stopped listening on {}",
                    self.sources[source].cfg.name,
                    l.addr
                );
                closed.push((l.addr, l.dual));
            }
        }
        closed
    }

    fn close_conns_of(&mut self, source: usize) {
        let tokens: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.source == source)
            .map(|(t, _)| t)
            .collect();
        for token in tokens {
            self.close_conn(token);
        }
    }

    /// SIGTERM: stop listening, read what senders already sent, seal, wait for the sealer.
    fn stop(mut self) -> Result<(), RunError> {
        crate::notify::stopping();
        for i in 0..self.sources.len() {
            self.close_listeners_of(i);
        }
        if let Some(mut ftp) = self.ftp.take() {
            ftp.stop(self.poll.registry());
            let events = ftp.take_events();
            self.ftp = Some(ftp);
            self.ftp_events(events);
        }
        // A stop reads what senders queued only while the disk takes it: a fresh look at the
        // disk first, a flush after each read, and no more reading once a write fails. What
        // stays unread is the senders' to send again; what was read and cannot be written is
        // counted and logged below, never lost in silence.
        let deadline = Instant::now() + Duration::from_secs(2);
        self.check_disk();
        for token in self.conns.tokens() {
            while !self.disk_full && Instant::now() < deadline && self.read_conn(token) {
                if let Some(i) = self.conns.get(token).map(|c| c.source) {
                    self.flush_source(i);
                }
            }
            self.close_conn(token);
        }
        self.flush_spools();
        for src in &mut self.sources {
            let lost = src.spool.discard_unwritten();
            if lost > 0 {
                src.counters.drop(Drop::DiskFull, lost);
                log::error!(
                    "source {}: {}: {lost} received messages could not be written before the stop (disk full or not writable); lost and counted as disk_full",
                    src.cfg.name,
                    src.spool.dir.display()
                );
            }
        }
        for i in 0..self.sources.len() {
            self.seal_open(i);
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while self
            .sources
            .iter()
            .any(|s| !s.spool.sealing.is_empty() || s.spool.in_delivery.is_some())
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::warn!(
                    "sealing or the delivery in flight did not finish in {}s; the next start completes it (a delivery may then repeat: at-least-once)",
                    STOP_DEADLINE.as_secs()
                );
                break;
            }
            match self.done_rx.recv_timeout(left) {
                Ok(done) => self.handle_done(done),
                Err(_) => break,
            }
        }
        self.write_status(false);
        if let Some(w) = self.workers.take() {
            w.join(Instant::now() + Duration::from_secs(2));
        }
        if let Some((p, _lock)) = self.pid_file.take() {
            let _ = std::fs::remove_file(p);
        }
        log::info!("instance {} stopped", self.instance);
        Ok(())
    }
}

/// The FTP server's side of the loop.
impl Server {
    /// The FTP sources among `sources`, as folders.
    fn ftp_folders(&self, sources: &[Source]) -> Vec<FolderInfo> {
        sources
            .iter()
            .filter(|s| !s.receiver.is_syslog())
            .map(|s| FolderInfo {
                name: s.name.clone(),
                receiver: s.receiver,
                allow: s.allow.clone(),
                spool_dir: self.config.collector.state_dir.join("spool").join(&s.name),
            })
            .collect()
    }

    fn ftp_work(&mut self) {
        if let Some(ftp) = &mut self.ftp {
            let events = ftp.do_work(self.poll.registry());
            self.ftp_events(events);
        }
    }

    fn ftp_events(&mut self, events: Vec<FtpEvent>) {
        for event in events {
            match event {
                FtpEvent::Received {
                    conn,
                    folder,
                    name,
                    temp,
                    kind,
                } => {
                    let dest = if folder == crate::ftp::path::SSL_UPDATE {
                        self.ftp
                            .as_ref()
                            .map(|f| Dest::Plain(f.ssl_update_dir().join(&name)))
                    } else {
                        self.source_index(&folder).map(|i| {
                            let (seq, raw) = self.sources[i].spool.reserve_upload();
                            Dest::Spool {
                                source: folder.clone(),
                                seq,
                                raw,
                                name,
                                kind,
                            }
                        })
                    };
                    if let Some(ftp) = &mut self.ftp {
                        ftp.commit(conn, temp, dest);
                    }
                }
                FtpEvent::Spooled {
                    source,
                    seq,
                    raw,
                    bytes,
                    precompressed,
                } => {
                    let Some(i) = self.source_index(&source) else {
                        continue;
                    };
                    let src = &mut self.sources[i];
                    src.counters.files += 1;
                    src.counters.bytes += bytes;
                    src.counters.last_received = clock::unix_secs(SystemTime::now());
                    if precompressed {
                        src.spool.adopted_sealed(seq, raw, bytes);
                        self.try_deliver(i);
                    } else {
                        src.spool.adopted(seq, raw.clone(), bytes);
                        self.send_seal(i, seq, raw);
                    }
                }
            }
        }
    }
}

/// The connection limits of `config`.
fn limits(config: &Config) -> Limits {
    Limits {
        total: config.collector.max_connections,
        per_ip: config.collector.max_connections_per_ip,
    }
}

/// (free bytes for unprivileged users, total bytes) of the filesystem holding `dir`.
fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let frag = st.fragment_size() as u64;
    Some((
        st.blocks_available() as u64 * frag,
        st.blocks() as u64 * frag,
    ))
}

/// Socket inode -> drops, from the kernel's UDP tables (their last column).
fn udp_drop_table() -> HashMap<u64, u64> {
    let mut out = HashMap::new();
    // /proc/self/net: the same tables (this process's network namespace), and still there
    // when the unit mounts /proc with ProcSubset=pid.
    for file in ["/proc/self/net/udp", "/proc/self/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 13 {
                continue;
            }
            if let (Ok(inode), Ok(drops)) =
                (cols[9].parse::<u64>(), cols[cols.len() - 1].parse::<u64>())
            {
                out.insert(inode, drops);
            }
        }
    }
    out
}
