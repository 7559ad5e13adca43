//! One source as the loop serves it: its config, spool, counters and format check.
//!
//! `SourceState` stores received messages (rendered, counted), builds the delivery job for a
//! batch the spool's inventory chose, and counts and logs what deliveries do (the decisions,
//! which batch and when, are the inventory's: `spool/inventory/`). It sends nothing itself;
//! the loop hands the jobs to the workers. Receivers (`udp.rs`, `stream.rs`) write into it;
//! it calls none of them.
//!
//! Each stored line also goes through the source's live format check (a
//! `config::formats::window::Window`): the line as stored, after rendering, because that is
//! what Cloud Discovery parses and what `lc check SOURCE` reads back from the spool, so the
//! live rate and the command agree. The recognizers skip whichever syslog header the
//! rendering keeps. FTP sources are not counted live (their files are checked by `lc check
//! SOURCE`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::clock;
use crate::config::formats::window::{Change, State, Window};
use crate::config::Source;
use crate::deliver::api::Failure;
use crate::deliver::DeliverJob;
use crate::spool::SourceSpool;
use crate::status::{Counters, Drop};
use crate::syslog::render::Origin;

/// A source being served: its config, spool and counters.
pub struct SourceState {
    pub cfg: Source,
    pub spool: SourceSpool,
    pub counters: Counters,
    /// Set when the source left the config at a reload: served no more, drained then dropped.
    pub retired: bool,
    /// The sender and receive time of the datagram being stored (UDP sources).
    pub udp_origin: Origin,
    /// Its sockets were closed for a reload that was then refused, and could not be bound
    /// again: the next reload binds them whatever changed.
    pub unbound: bool,
    /// The live format check over the last lines stored.
    pub format: Window,
}

impl SourceState {
    /// A source with a recovered spool; `activity` is (last received, last delivered) as its
    /// files tell (`last_activity`).
    pub fn new(cfg: Source, spool: SourceSpool, activity: (u64, u64)) -> SourceState {
        let mut counters = Counters::default();
        (counters.last_received, counters.last_delivery) = activity;
        let format = window_for(&cfg);
        SourceState {
            cfg,
            spool,
            counters,
            retired: false,
            udp_origin: Origin::new(),
            unbound: false,
            format,
        }
    }

    /// Takes a reloaded config. A new type or threshold starts the format check over: the
    /// lines counted so far were judged against the old one.
    pub fn reconfigure(&mut self, cfg: Source) {
        let old = &self.cfg;
        if (old.format.as_str(), old.format_warn_below, old.receiver)
            != (cfg.format.as_str(), cfg.format_warn_below, cfg.receiver)
        {
            if self.format.state() == State::Warning {
                log::info!(
                    "source {}: format is now {} (was {}); the format check starts over",
                    cfg.name,
                    cfg.format,
                    old.format
                );
            }
            self.format = window_for(&cfg);
        }
        self.cfg = cfg;
    }

    /// Stores one received message as a spool line, rendered as the source says, and counts
    /// it (or counts it dropped, when the rendering keeps nothing of it).
    #[inline]
    pub fn store(&mut self, msg: &[u8], origin: &Origin) {
        let mut change = None;
        let format = &mut self.format;
        if self
            .spool
            .append_message(self.cfg.render, msg, origin, |line| {
                change = format.count(line)
            })
        {
            self.counters.messages += 1;
            self.counters.bytes += msg.len() as u64;
        } else {
            self.counters.drop(Drop::Empty, 1);
        }
        if let Some(change) = change {
            self.format_changed(change);
        }
    }

    /// Offers lines of an FTP upload (its first ones, read by the commit) to the format check.
    pub fn check_format(&mut self, lines: &[Vec<u8>]) {
        for line in lines {
            if let Some(change) = self.format.count(line) {
                self.format_changed(change);
            }
        }
    }

    /// Logs a transition of the format check, once (the window reports each one once).
    #[cold]
    fn format_changed(&self, change: Change) {
        let line = self
            .format
            .describe(change, &self.cfg.name, &self.cfg.format);
        match change {
            Change::Warn => log::warn!("{line}"),
            Change::Clear => log::info!("{line}"),
        }
    }

    /// The delivery job for `files`, a batch the inventory chose; counted as an attempt.
    pub fn job(&mut self, files: Vec<PathBuf>, collector: &str, backup_keep: usize) -> DeliverJob {
        self.counters.delivery_attempts += 1;
        DeliverJob {
            source: self.cfg.name.clone(),
            format: self.cfg.format.clone(),
            parts: files,
            collector: collector.to_string(),
            // Source, host and sequence: unique across restarts, as the API's filename.
            prefix: format!("{}_{}_", self.cfg.name, collector),
            backup_dir: self.spool.backup_dir.clone(),
            backup_keep,
        }
    }

    /// The batch in flight was delivered (the inventory has forgotten it already).
    pub fn delivered(&mut self, paths: &[PathBuf], bytes: u64, at: u64) {
        self.counters.delivered_files += 1;
        self.counters.delivered_bytes += bytes;
        self.counters.last_delivery = at;
        if self.counters.failing_since != 0 {
            log::warn!(
                "source {}: delivery works again after {} of failures; {} files waiting",
                self.cfg.name,
                clock::human_age(at.saturating_sub(self.counters.failing_since)),
                self.spool.inv.sealed_files()
            );
        }
        self.counters.failing_said = 0;
        self.counters.failing_since = 0;
        self.counters.error_permanent = false;
        log::debug!(
            "source {}: delivered {} ({bytes} bytes)",
            self.cfg.name,
            paths[0].display()
        );
    }

    /// Delivering the batch in flight failed; the inventory retries it after `wait`. Counted,
    /// and said once per new reason.
    pub fn delivery_failed(
        &mut self,
        paths: &[PathBuf],
        failure: &Failure,
        wait: Duration,
        now: u64,
    ) {
        let next = match failure {
            Failure::Transient { .. } => "retrying",
            Failure::Permanent { .. } => "this needs an operator; retrying",
        };
        let message = format!("delivery: {}", failure.reason());
        if self
            .counters
            .last_error
            .as_ref()
            .is_none_or(|(_, e)| *e != message)
        {
            log::error!(
                "source {}: delivering {} failed: {}; {next} in {:.1}s",
                self.cfg.name,
                paths[0].display(),
                failure.reason(),
                wait.as_secs_f64()
            );
        }
        if self.counters.failing_since == 0 {
            self.counters.failing_since = now;
        }
        match failure {
            Failure::Transient { .. } => self.counters.delivery_failures_transient += 1,
            Failure::Permanent { .. } => self.counters.delivery_failures_permanent += 1,
        }
        self.counters.last_error = Some((now, message));
        self.counters.error_permanent = matches!(failure, Failure::Permanent { .. });
    }
}

impl SourceState {
    /// While delivery fails, says so every `FAILING_REMIND_SECS` with how long and how much
    /// waits (the first failure of each reason is logged by `delivery_failed`).
    pub fn remind_failing(&mut self, now: u64) {
        if !self.counters.failing_reminder_due(now) {
            return;
        }
        let error = self
            .counters
            .last_error
            .as_ref()
            .map_or("", |(_, e)| e.as_str());
        log::error!(
            "source {}: delivery still failing for {}, {} files waiting ({} bytes); last error: {error}",
            self.cfg.name,
            clock::human_age(now.saturating_sub(self.counters.failing_since)),
            self.spool.inv.sealed_files(),
            self.spool.backlog_bytes(),
        );
    }
}

/// The format check of a source whose type lc has a recognizer for: syslog sources line by
/// line as stored, FTP sources by the first lines of each upload.
fn window_for(cfg: &Source) -> Window {
    Window::new(Some(cfg.format.as_str()), cfg.format_warn_below)
}

/// When a source last received and delivered, as far as its files tell after a restart.
pub fn last_activity(spool: &SourceSpool) -> (u64, u64) {
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

/// Opens source `cfg`'s spool under `state_dir`, recovering what a previous run left (torn
/// tails cut, open segments to seal), and reads when it last received and delivered. This
/// blocks on the disk (fsync of cut segments): it runs before the loop starts, or on the
/// chores thread for a reload.
pub fn recover(state_dir: &Path, rotate_bytes: u64, cfg: Source) -> Result<SourceState, String> {
    let (mut spool, recovery) = SourceSpool::recover(state_dir, &cfg.name, rotate_bytes)
        .map_err(|e| format!("source {}: spool: {e}", cfg.name))?;
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
    spool.inv.recovered(recovery.to_seal);
    let activity = last_activity(&spool);
    let mut state = SourceState::new(cfg, spool, activity);
    state.counters.drop(
        crate::status::Drop::QuarantinedSegments,
        recovery.quarantined,
    );
    Ok(state)
}
