//! The event loop of one `lc run` instance: events in, calls out.
//!
//! One `mio::Poll` drives everything; the token space, the slots and the connection limits
//! are `reactor`'s. Sockets are registered once, edge-triggered; readiness is tracked in
//! userland (ready flags in the slots, plus a work list) and each ready socket is serviced
//! under a per-iteration budget, so one busy sender cannot starve the rest. Stream reads pause
//! while the disk is full; the kernel's buffers then push back on senders.
//!
//! This file wires the seams to sockets and threads and holds no rule of its own beyond
//! that wiring: `udp.rs` and `stream.rs` receive, `source.rs` stores and answers what to
//! deliver next, `reload.rs` plans a reload, `listeners.rs` opens and closes the listening
//! sockets (a plan's all or nothing), `housekeeping.rs` decides what idles, what is
//! evicted and which partial frames are cut, `chores.rs` does the blocking work a reload and
//! eviction need off the loop, `snapshot.rs` writes the status file, `lifecycle.rs` is what
//! happens before the loop starts and after it ends, `work.rs` is the work list and parks
//! connections while the disk is full. fsync, gzip and delivery run on the
//! worker threads of `spool::worker`, which report through a channel and the waker.

mod chores;
mod conns;
mod housekeeping;
mod lifecycle;
pub mod listen;
mod listeners;
mod reload;
mod snapshot;
mod source;
mod stream;
mod udp;
mod work;

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::clock;
use crate::config::{Config, Source};
use crate::ftp::jobs::{Dest, Spooled};
use crate::ftp::server::{Event as FtpEvent, FolderInfo, FtpServer};
use crate::logging::LimitLog;
use crate::reactor::guard::Limits;
use crate::reactor::{self, Owner, ACCEPT_BUDGET, CONN_BASE, SIGNALS, WAKER};
use crate::spool::inventory::Action;
use crate::spool::space::{Facts, Space, Step};
use crate::spool::worker::{DeliverMsg, Done, SealJob, Workers};
use crate::spool::{SourceSpool, WriteError};
use crate::status::Drop;
use chores::{Chore, ChoreDone, Chores};
use conns::Conns;
use lifecycle::PidFile;
pub use lifecycle::{block_signals, prepare, Prepared, RunError};
use listen::Socket;
use listeners::Listeners;
use reload::ReloadPlan;
use source::SourceState;
use work::Work;

/// The shared read buffer; one read never returns more.
const SCRATCH_BYTES: usize = 64 * 1024;
/// How often rotation, fsync, free space, idle connections and status are looked at.
const HOUSEKEEPING: Duration = Duration::from_millis(250);
const STATUS_EVERY: Duration = Duration::from_secs(2);
const DISK_CHECK_EVERY: Duration = Duration::from_secs(1);
/// How long a stop waits for sealing to finish before leaving it to the next start.
const STOP_DEADLINE: Duration = Duration::from_secs(10);

pub struct Server {
    poll: Poll,
    instance: String,
    port: Option<u16>,
    config: Config,
    sources: Vec<SourceState>,
    /// The syslog receivers' listening sockets.
    listeners: Listeners,
    /// Stream connections, their slots, per-IP counts and partial frames.
    conns: Conns,
    /// Tokens that may have more to read, accept or receive, and those parked by a full disk.
    work: Work,
    scratch: Vec<u8>,
    workers: Option<Workers>,
    done_rx: Receiver<Done>,
    signals: SignalFd,
    /// Disk limits: pruning, eviction, whether stream reads are paused.
    space: Space,
    disk_free: u64,
    disk_total: u64,
    limit_log: LimitLog,
    stopping: bool,
    next_housekeeping: Instant,
    next_status: Instant,
    next_disk_check: Instant,
    next_sync: Instant,
    /// The pid file, locked while the instance runs.
    pid_file: Option<PidFile>,
    /// The thread that does a reload's and eviction's blocking work.
    chores: Chores,
    /// A reload is being prepared on the chores thread; another SIGHUP meanwhile runs after it.
    reloading: bool,
    reload_again: bool,
    /// The syslog-tls configuration, when this instance serves syslog-tls sources.
    tls: Option<crate::tls::SyslogTls>,
    /// The status snapshot's own state (start, the last reload's outcome) and its writer.
    status: snapshot::Status,
    /// The FTP server, when this instance serves FTP sources.
    ftp: Option<FtpServer>,
    /// `metrics_listen`: `/metrics` and `/health` for every instance, when this one holds it.
    http: crate::httpd::MetricsHttp,
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
        let chores = Chores::spawn(Arc::clone(&waker))?;
        let now = Instant::now();
        let mut server = Server {
            poll,
            instance,
            port,
            sources: Vec::new(),
            listeners: Listeners::default(),
            conns: Conns::new(limits(&config)),
            work: Work::default(),
            scratch: vec![0; SCRATCH_BYTES.max(config.collector.max_message_bytes + 1)],
            workers: None,
            done_rx,
            signals,
            space: Space::default(),
            disk_free: 0,
            disk_total: 0,
            limit_log: LimitLog::default(),
            stopping: false,
            next_housekeeping: now,
            next_status: now,
            next_disk_check: now,
            next_sync: now + config.spool.sync_secs,
            pid_file: None,
            chores,
            reloading: false,
            reload_again: false,
            tls,
            status: snapshot::Status::new(),
            ftp: None,
            http: Default::default(),
            config,
        };
        // Bind first: a port in use must fail before this instance touches any spool.
        let rcvbuf = server.config.collector.udp_rcvbuf;
        let bound = wanted
            .iter()
            .map(|s| listeners::bind(s, rcvbuf))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RunError)?;
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
        server.pid_file = Some(PidFile::lock(
            &server.config.collector.run_dir,
            &server.instance,
        )?);
        for s in wanted {
            let (dir, rotate) = (
                &server.config.collector.state_dir,
                server.config.spool.rotate_bytes,
            );
            server
                .sources
                .push(source::recover(dir, rotate, s).map_err(RunError)?);
        }
        for (i, ls) in bound.into_iter().enumerate() {
            let tokens = server.listeners.serve(server.poll.registry(), i, ls)?;
            server.work.extend(tokens);
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

    /// Sends what recovery found to the workers: raw segments to seal, sealed ones to deliver.
    fn start_recovered(&mut self, i: usize) {
        let inv = &mut self.sources[i].spool.inv;
        inv.set_limits(batch_limits(&self.config));
        let next = inv.start(Instant::now());
        self.act(i, next);
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
            let timeout = if self.work.is_empty() && !ftp_busy && !self.http.has_work() {
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
                    Owner::Http(token) => self.http.ready(token),
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
            self.enforce_pending_budget();
            self.ftp_work();
            self.http.do_work(self.poll.registry());
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
        let mut keep = Vec::new();
        for token in self.work.take() {
            let more = if token.0 >= CONN_BASE {
                self.read_conn(token)
            } else {
                self.service_listener(token)
            };
            if more {
                keep.push(token);
            }
        }
        self.work.keep(keep, self.space.full());
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
        let l = self.listeners.get(token).expect("serviced listeners exist");
        let Socket::Udp(sock) = &l.socket else {
            unreachable!("a UDP listener")
        };
        udp::receive(
            sock,
            l.addr,
            l.source,
            &mut self.sources[l.source],
            &mut self.scratch,
            self.config.collector.max_message_bytes,
            self.space.full(),
            &mut self.limit_log,
        )
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
            let max = self.config.collector.max_message_bytes;
            let tls = self.tls.as_ref().map(|t| Arc::clone(&t.config));
            let (conns, mut cx) = self.conns();
            if let Some(token) = conns.admit(&mut cx, stream, peer, source, tls, max) {
                self.work.push(token);
            }
        }
        true
    }

    /// The stream connections, and what their calls borrow of the instance.
    fn conns(&mut self) -> (&mut Conns, conns::Ctx<'_>) {
        let cx = conns::Ctx {
            registry: self.poll.registry(),
            sources: &mut self.sources,
            limit_log: &mut self.limit_log,
            scratch: &mut self.scratch,
        };
        (&mut self.conns, cx)
    }

    /// Reads one connection within its budget; returns whether it may have more to read.
    fn read_conn(&mut self, token: Token) -> bool {
        let full = self.space.full();
        let (conns, mut cx) = self.conns();
        conns.read(&mut cx, token, full)
    }

    /// Closes a connection, keeping any partial frame the sender had sent.
    fn close_conn(&mut self, token: Token) {
        let (conns, mut cx) = self.conns();
        conns.close(&mut cx, token);
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
                if self.space.write_failed() {
                    log::error!(
                        "source {}: {}: disk full; pausing stream receivers, counting UDP drops",
                        src.cfg.name,
                        src.spool.dir.display()
                    );
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
                self.space.write_failed();
            }
        }
        for (seq, raw, bytes) in self.sources[i].spool.take_sealed() {
            let seal = self.sources[i].spool.inv.raw(seq, raw, bytes);
            self.act(i, vec![seal]);
        }
    }

    /// Seals the open segment of source `i` (after flushing what is buffered).
    fn seal_open(&mut self, i: usize) {
        self.flush_source(i);
        if !self.sources[i].spool.buf.is_empty() {
            // The disk refused the rest; the segment stays open until it is written.
            return;
        }
        if let Some((seq, raw, bytes)) = self.sources[i].spool.take_for_seal() {
            let seal = self.sources[i].spool.inv.raw(seq, raw, bytes);
            self.act(i, vec![seal]);
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

    /// Performs what source `i`'s inventory answered: seals to the sealer (a retried one only
    /// if its raw segment is still there: one `stat`), batches to the delivery thread.
    fn act(&mut self, i: usize, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Seal { seq, raw } => self.send_seal(i, seq, raw),
                Action::Reseal { seq, raw } if raw.exists() => self.send_seal(i, seq, raw),
                Action::Reseal { seq, .. } => self.sources[i].spool.inv.raw_gone(seq),
                Action::Deliver(files) => {
                    let (collector, keep) =
                        (&self.config.collector.name, self.config.spool.backup_keep);
                    let job = self.sources[i].job(files, collector, keep);
                    if let Some(w) = &self.workers {
                        let _ = w.deliver.send(DeliverMsg::Job(job));
                    }
                }
            }
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
        while let Ok(done) = self.chores.rx.try_recv() {
            self.chore_done(done);
        }
        if let Some(ftp) = &mut self.ftp {
            let events = ftp.drain(self.poll.registry());
            self.ftp_events(events);
        }
    }

    fn handle_done(&mut self, done: Done) {
        let now = Instant::now();
        let unix_now = clock::unix_secs(SystemTime::now());
        let source = match &done {
            Done::SyncFailed { path, error } => {
                log::error!("{}: fsync failed: {error}", path.display());
                return;
            }
            Done::Sealed { source, .. }
            | Done::SealFailed { source, .. }
            | Done::Delivered { source, .. }
            | Done::Quarantined { source, .. }
            | Done::DeliveryFailed { source, .. }
            | Done::Deferred { source, .. } => source,
        };
        let Some(i) = self.source_index(source) else {
            return;
        };
        let src = &mut self.sources[i];
        let next = match done {
            Done::SyncFailed { .. } => unreachable!("returned above"),
            Done::Sealed { seq, parts, .. } => src.spool.inv.sealed(seq, parts, now),
            Done::SealFailed { source, seq, error } => {
                log::error!("source {source}: sealing segment {seq} failed: {error}; will retry");
                if src.spool.inv.seal_failed(seq, now) {
                    src.counters.last_error = Some((unix_now, format!("seal: {error}")));
                }
                Vec::new()
            }
            Done::Delivered {
                paths, bytes, at, ..
            } => {
                src.delivered(&paths, bytes, at);
                // The move to backup/ may have left something to prune.
                self.space.delivered();
                src.spool.inv.delivered(&paths, now)
            }
            Done::Quarantined {
                source,
                paths,
                reason,
            } => {
                src.counters.drop(Drop::QuarantinedSegments, 1);
                log::error!("source {source}: {reason}; moved to quarantine/, not delivered");
                src.counters.last_error = Some((unix_now, format!("quarantined: {reason}")));
                src.spool.inv.quarantined(&paths, now)
            }
            Done::DeliveryFailed {
                paths,
                failure,
                kept,
                ..
            } => {
                let spread = clock::spread();
                let wait = src.spool.inv.delivery_failed(kept, &failure, spread, now);
                src.delivery_failed(&paths, &failure, wait, unix_now);
                Vec::new()
            }
            Done::Deferred { source, wait } => {
                log::debug!(
                    "source {source}: API budget spent; next delivery in {:.1}s",
                    wait.as_secs_f64()
                );
                src.spool.inv.deferred(wait, now);
                Vec::new()
            }
        };
        self.act(i, next);
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
                        for s in &mut self.sources {
                            s.spool.inv.stop();
                        }
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

impl Server {
    /// Periodic work: rotation, fsync, free space, retries, idle connections, status.
    fn housekeeping(&mut self, now: Instant) {
        self.next_housekeeping = now + HOUSEKEEPING;
        let rotate_after = self.config.spool.rotate_secs;
        let unix_now = clock::unix_secs(SystemTime::now());
        for s in &mut self.sources {
            // The live format check's sampling budget is per housekeeping tick.
            s.format.tick();
        }
        for i in 0..self.sources.len() {
            self.sources[i].remind_failing(unix_now);
            if self.sources[i]
                .spool
                .open
                .as_ref()
                .is_some_and(|s| now.duration_since(s.opened) >= rotate_after)
            {
                self.seal_open(i);
            }
            let next = self.sources[i].spool.inv.tick(now);
            self.act(i, next);
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
        self.http
            .tick(&self.config.collector, self.poll.registry(), now);
        self.tell_ftp_room();
        if let Some(ftp) = &mut self.ftp {
            ftp.tick(self.poll.registry(), now);
        }
        if now >= self.next_status {
            self.next_status = now + STATUS_EVERY;
            snapshot::count_udp_drops(&self.listeners, &mut self.sources);
            self.write_status(true);
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

    /// Measures the disk and does what `Space` answers: prune backups, evict, pause or resume
    /// receivers. The files go on the chores thread; evicted ones have left the inventory
    /// (counted and logged here).
    fn check_disk(&mut self) {
        let state_dir = self.config.collector.state_dir.clone();
        let spool_cfg = self.config.spool.clone();
        let backlog = self.sources.iter().map(|s| s.spool.backlog_bytes()).sum();
        let free = housekeeping::disk_space(&state_dir).map(|(free, size)| {
            (self.disk_free, self.disk_total) = (free, size);
            free
        });
        let facts = Facts {
            backlog,
            max_spool: spool_cfg.max_spool_bytes,
            free,
            min_free: spool_cfg.min_free_bytes,
        };
        let mut invs: Vec<_> = self.sources.iter_mut().map(|s| &mut s.spool.inv).collect();
        for step in self.space.check(facts, &mut invs) {
            match step {
                Step::Prune => {
                    let dirs = self.sources.iter().map(|s| s.spool.backup_dir.clone());
                    self.chores.send(Chore::PruneBackups(dirs.collect()));
                }
                Step::Evict { files, why } => self.evicted(files, why),
                Step::Pause => log::error!(
                    "{}: free space {} is below min_free_bytes {}; pausing stream receivers, counting UDP drops",
                    state_dir.display(),
                    free.unwrap_or(0),
                    spool_cfg.min_free_bytes
                ),
                Step::Resume => {
                    // Retry what is buffered; resume only if it all went out.
                    self.flush_spools();
                    if !self.space.full() {
                        log::info!(
                            "{}: disk has room again; receivers resumed",
                            state_dir.display()
                        );
                        self.work.resume();
                    }
                }
            }
        }
    }

    /// Files eviction took out of the inventories: counted, logged, unlinked on the chores
    /// thread (a raw segment's `.name` sidecar with it).
    fn evicted(&mut self, files: Vec<crate::spool::space::Candidate>, why: &str) {
        let mut unlink = Vec::new();
        for e in files {
            let src = &mut self.sources[e.source];
            if e.raw {
                log::warn!(
                    "source {}: segment {} could not be sealed: its compressed copy did not fit",
                    src.cfg.name,
                    e.path.display()
                );
                unlink.push((crate::spool::sidecar_path(&e.path), 0));
            }
            src.counters.drop(Drop::EvictedSegments, 1);
            src.counters.evicted_bytes += e.bytes;
            log::warn!(
                "source {}: evicted undelivered segment {} ({} bytes) to respect {why}",
                src.cfg.name,
                e.path.display(),
                e.bytes
            );
            unlink.push((e.path, e.bytes));
        }
        self.chores.send(Chore::Unlink(unlink));
    }

    /// Closes connections idle for `idle_timeout_secs`, and those whose TLS handshake or
    /// PROXY header has not come within `handshake_timeout_secs`.
    fn close_idle(&mut self, now: Instant) {
        let collector = &self.config.collector;
        let (idle, handshake) = (collector.idle_timeout, collector.handshake_timeout);
        let (conns, mut cx) = self.conns();
        conns.close_idle(&mut cx, now, idle, handshake);
    }

    /// Over `max_pending_bytes`, the largest partial frames are cut.
    fn enforce_pending_budget(&mut self) {
        let budget = self.config.collector.max_pending_bytes;
        let (conns, mut cx) = self.conns();
        conns.cut_pending(&mut cx, budget);
    }

    /// Writes the status snapshot (and the metrics textfile).
    fn write_status(&mut self, running: bool) {
        let view = snapshot::View {
            instance: &self.instance,
            config: &self.config,
            running,
            sources: &mut self.sources,
            listeners: &self.listeners,
            disk_free: self.disk_free,
            disk_total: self.disk_total,
            disk_full: self.space.full(),
            connections: self.conns.len(),
            pending_bytes: self.conns.pending(),
            tls: self.tls.as_ref(),
            ftp: self.ftp.as_ref().map(FtpServer::status),
            metrics_listen: self.http.status(),
        };
        self.status.write(view, &mut self.limit_log);
    }

    /// What the chores thread reports.
    fn chore_done(&mut self, done: ChoreDone) {
        match done {
            ChoreDone::Reload(prepped) => self.reloaded(prepped),
            ChoreDone::Unlinked { asked, failed } => {
                self.space.unlinked(asked);
                for (path, e) in failed {
                    log::error!("{}: evicting: {e}", path.display());
                }
            }
            ChoreDone::Pruned(removed) => {
                self.space.pruned(removed);
                if removed {
                    log::warn!(
                        "{}: disk space low; removed the backup copies of delivered segments",
                        self.config.collector.state_dir.display()
                    );
                }
            }
        }
    }

    /// SIGHUP: the config, token and certificates are read and the spools of new sources
    /// recovered on the chores thread; `reloaded` applies the result.
    fn reload(&mut self) {
        if self.reloading {
            self.reload_again = true;
            return;
        }
        crate::notify::reloading();
        self.reloading = true;
        let current = self
            .sources
            .iter()
            .map(|s| (s.cfg.clone(), s.retired, s.unbound))
            .collect();
        self.chores.send(Chore::Reload {
            old: Box::new(self.config.clone()),
            port: self.port,
            current,
        });
    }

    /// A reload came back from the chores thread: apply it, or keep the running config.
    fn reloaded(&mut self, prepped: Result<Box<chores::Prepped>, String>) {
        self.reloading = false;
        let path = self.config.path.clone();
        let result = prepped.and_then(|p| self.commit(*p).map_err(|e| e.to_string()));
        if let Err(e) = &result {
            log::error!("reload refused, keeping the running config: {e}");
        } else {
            log::info!("{}: config reloaded", path.display());
        }
        self.status.reloaded(result.err());
        self.write_status(true);
        crate::notify::ready();
        if std::mem::take(&mut self.reload_again) {
            self.reload();
        }
    }

    /// Applies a prepared reload: the plan's sockets, then the delivery target, certificates
    /// and FTP settings; or nothing, when a socket cannot be bound.
    fn commit(&mut self, p: chores::Prepped) -> Result<(), RunError> {
        let Prepared {
            target,
            tls,
            ftp_tls,
        } = p.prepared;
        self.apply(p.config, p.plan, p.added)?;
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
            ftp.reconfigure(&self.config, folders, ftp_tls);
        } else if !folders.is_empty() {
            log::warn!("ftp: FTP sources were added; the FTP server starts with a restart of this instance");
        }
        // A fixed token or proxy should be tried at once, not after the backoff.
        for i in 0..self.sources.len() {
            let inv = &mut self.sources[i].spool.inv;
            inv.set_limits(batch_limits(&self.config));
            let next = inv.retry_now(Instant::now());
            self.act(i, next);
        }
        if let (Some(p), true) = (self.port, wanted.is_empty()) {
            log::error!(
                "{}: no source listens on port {p} any more: this instance receives nothing (stop it: systemctl disable --now lc@{p})",
                self.config.path.display()
            );
        }
        Ok(())
    }

    /// Applies a new config by its plan: new sockets are all bound before anything changes;
    /// then limits and spool settings apply at once, sources are added, moved or retired.
    /// `plan` was made from the sources served now (only a reload changes them, one at a
    /// time); `added` are the sources of `plan.add`, recovered.
    fn apply(
        &mut self,
        new: Config,
        plan: ReloadPlan,
        added: Vec<SourceState>,
    ) -> Result<(), RunError> {
        let registry = self.poll.registry();
        let staged = match self
            .listeners
            .bind_all(registry, &plan, new.collector.udp_rcvbuf)
        {
            Ok(staged) => staged,
            Err(refused) => {
                self.work.extend(refused.listening);
                for i in refused.unbound {
                    self.sources[i].unbound = true;
                }
                return Err(RunError(refused.error));
            }
        };
        // Commit: nothing below can be refused.
        self.config = new;
        for &i in &plan.close {
            self.listeners.close_of(self.poll.registry(), i);
        }
        for &i in &plan.retire {
            log::info!(
                "source {}: removed from the config; its spool is still delivered",
                self.sources[i].cfg.name
            );
            self.sources[i].retired = true;
            self.seal_open(i);
            let (conns, mut cx) = self.conns();
            conns.close_of(&mut cx, i);
        }
        for (i, cfg) in plan.update {
            self.sources[i].retired = false;
            self.sources[i].reconfigure(cfg);
        }
        for s in added {
            self.sources.push(s);
            self.start_recovered(self.sources.len() - 1);
        }
        for (name, ls) in staged {
            let i = self.source_index(&name).expect("bound sources are served");
            self.sources[i].unbound = false;
            let tokens = self.listeners.serve(self.poll.registry(), i, ls)?;
            self.work.extend(tokens);
        }
        for src in &mut self.sources {
            src.spool.rotate_bytes = self.config.spool.rotate_bytes;
        }
        self.conns.set_limits(limits(&self.config));
        let need = SCRATCH_BYTES.max(self.config.collector.max_message_bytes + 1);
        self.scratch.resize(need, 0);
        Ok(())
    }

    /// SIGTERM: stop listening, read what senders already sent, seal, wait for the sealer.
    fn stop(mut self) -> Result<(), RunError> {
        crate::notify::stopping();
        self.listeners.close_all(self.poll.registry());
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
            while !self.space.full() && Instant::now() < deadline && self.read_conn(token) {
                if let Some(i) = self.conns.source_of(token) {
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
            self.sources[i].spool.inv.stop();
            self.seal_open(i);
        }
        let deadline = Instant::now() + STOP_DEADLINE;
        while self.sources.iter().any(|s| !s.spool.inv.settled()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done_rx.recv_timeout(left) {
                Ok(done) => self.handle_done(done),
                Err(_) => {
                    log::warn!(
                        "sealing or the delivery in flight did not finish in {}s; the next start completes it (a delivery may then repeat: at-least-once)",
                        STOP_DEADLINE.as_secs()
                    );
                    break;
                }
            }
        }
        self.write_status(false);
        if let Some(w) = self.workers.take() {
            w.join(Instant::now() + Duration::from_secs(2));
        }
        if let Some(p) = self.pid_file.take() {
            p.remove();
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

    /// Tells the FTP server what an upload may add without making `check_disk` evict
    /// acknowledged data, and whether the disk is full.
    fn tell_ftp_room(&mut self) {
        let Some(ftp) = &mut self.ftp else { return };
        let facts = Facts {
            backlog: self.sources.iter().map(|s| s.spool.backlog_bytes()).sum(),
            max_spool: self.config.spool.max_spool_bytes,
            // The last measure, between the checks once a second.
            free: (self.disk_total > 0).then_some(self.disk_free),
            min_free: self.config.spool.min_free_bytes,
        };
        ftp.set_disk(self.space.full(), self.space.full(), facts.room());
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
                FtpEvent::Spooled(Spooled {
                    source,
                    seq,
                    raw,
                    bytes,
                    precompressed,
                    sample,
                }) => {
                    let Some(i) = self.source_index(&source) else {
                        continue;
                    };
                    let src = &mut self.sources[i];
                    src.counters.files += 1;
                    src.counters.bytes += bytes;
                    src.counters.last_received = clock::unix_secs(SystemTime::now());
                    src.check_format(&sample);
                    let next = if precompressed {
                        let file = SourceSpool::sealed_upload(seq, raw, bytes);
                        src.spool.inv.adopted_sealed(file, Instant::now())
                    } else {
                        vec![src.spool.inv.raw(seq, raw, bytes)]
                    };
                    self.act(i, next);
                    // The client hears 226 now and may send the next upload at once: the room
                    // it may take counts this one from here, not from the next tick (which
                    // may have come between its end and its commit, and forgotten it).
                    self.tell_ftp_room();
                }
            }
        }
    }
}

/// The batch limits of `config`'s delivery target.
fn batch_limits(config: &Config) -> crate::deliver::batch::Limits {
    match config.delivery.target {
        crate::config::Target::Outbox(_) => crate::deliver::batch::Limits::OUTBOX,
        crate::config::Target::Console(_) => crate::deliver::batch::Limits::API,
    }
}

/// The connection limits of `config`.
fn limits(config: &Config) -> Limits {
    Limits {
        total: config.collector.max_connections,
        per_ip: config.collector.max_connections_per_ip,
    }
}
