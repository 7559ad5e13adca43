//! One source's spool inventory: what state each segment is in, and what the loop does next.
//!
//! A segment is reserved (its sequence number), written while open (`SourceSpool`, the I/O
//! half), then raw and with the sealer, or raw after a failed seal waiting to be sealed again;
//! then sealed and waiting; then part of the batch with the delivery thread; after a failed
//! attempt, part of a held batch (`Flight::Stored`: some of it is stored, so the retry sends
//! the same files) or of an acknowledged one (`Flight::Acked`: `done_upload` succeeded and only
//! the move to backup is left, retried as a move, never evicted); gone once delivered,
//! quarantined or evicted. The inventory learns each step from an event (`raw`, `sealed`,
//! `seal_failed`, `delivered`, `delivery_failed`, `quarantined`, `tick`...) and answers with
//! what to do ([`Action`]: seal this, seal this again, deliver these files as one batch). It
//! does no I/O and reads no clock: time comes in as `now`, jitter as `spread`. The loop
//! (`server/mod.rs`) performs the actions; `space.rs` chooses across sources what eviction
//! takes from here.
//!
//! Rules kept here: at most one batch per source is with the delivery thread, oldest files
//! first (`deliver::batch::next_batch`); a held or acknowledged batch is retried with the
//! same files; sequence numbers only grow (`reserve`, and nothing learnt lowers them).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::Sealed;
use crate::deliver::api::Failure;
use crate::deliver::batch::{self, Limits, Piece};
use crate::deliver::plan::Kept;

/// Delivery retries back off from this to `RETRY_MAX`.
pub const RETRY_MIN: Duration = Duration::from_secs(1);
pub const RETRY_MAX: Duration = Duration::from_secs(60);
/// Failures that need an operator (token, data source) are retried this rarely, and at once
/// after a reload.
pub const RETRY_PERMANENT: Duration = Duration::from_secs(300);
/// A failed seal is tried again after this.
pub const SEAL_RETRY: Duration = Duration::from_secs(10);

/// A raw segment between its open life and its seal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    pub seq: u64,
    pub path: PathBuf,
    pub bytes: u64,
    /// Its last seal failed, and it is not with the sealer now.
    pub failed: bool,
}

/// What the loop does next for this source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hand this raw segment to the sealer.
    Seal { seq: u64, raw: PathBuf },
    /// Hand it again after a failed seal, if it is still there (else tell `raw_gone`).
    Reseal { seq: u64, raw: PathBuf },
    /// Send these sealed files to the delivery thread as one batch.
    Deliver(Vec<PathBuf>),
}

/// Where the batch is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flight {
    /// With the delivery thread.
    Sending,
    /// Its last attempt failed after part of it was stored: the retry sends the same files
    /// (less any that eviction took).
    Stored,
    /// Delivered, the move to backup failed: the retry sends the same files, and only moves
    /// them. Never evicted (the tenant has them; a retry with fewer files would upload the
    /// rest again).
    Acked,
}

#[derive(Debug)]
struct Batch {
    files: Vec<PathBuf>,
    flight: Flight,
}

/// One segment's state, as tests and the status read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Sealing,
    SealFailed,
    Sealed,
    /// In the batch, with `Flight`.
    Batch(Flight),
}

#[derive(Debug)]
pub struct Inventory {
    /// The next sequence number to hand out: above every segment this source ever had.
    next_seq: u64,
    /// Raw segments, oldest first.
    sealing: Vec<Raw>,
    /// Sealed files, oldest first (by sequence, then part).
    sealed: VecDeque<Sealed>,
    batch: Option<Batch>,
    /// No delivery before this (a failed attempt's backoff).
    retry_at: Option<Instant>,
    retry_delay: Duration,
    /// Failed seals are tried again at this time.
    seal_retry_at: Option<Instant>,
    limits: Limits,
    /// The instance is stopping: no new delivery, a failed seal waits for the next start.
    stopping: bool,
}

impl Inventory {
    /// What recovery found: the next sequence number (`.seq` or the highest name plus one)
    /// and the sealed files. Nothing is sent until `start`.
    pub fn new(next_seq: u64, sealed: Vec<Sealed>) -> Inventory {
        let mut inv = Inventory {
            next_seq,
            sealing: Vec::new(),
            sealed: VecDeque::new(),
            batch: None,
            retry_at: None,
            retry_delay: RETRY_MIN,
            seal_retry_at: None,
            limits: Limits::API,
            stopping: false,
        };
        inv.add_sealed(sealed);
        inv
    }

    /// Raw segments a previous run left, to seal at `start`.
    pub fn recovered(&mut self, raws: Vec<(u64, PathBuf, u64)>) {
        for (seq, path, bytes) in raws {
            self.learn_seq(seq);
            self.sealing.push(Raw {
                seq,
                path,
                bytes,
                failed: false,
            });
        }
    }

    /// The instance starts serving the source: every raw segment to the sealer, and the
    /// first batch.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut next: Vec<Action> = self
            .sealing
            .iter()
            .filter(|r| !r.failed)
            .map(|r| Action::Seal {
                seq: r.seq,
                raw: r.path.clone(),
            })
            .collect();
        next.extend(self.next(now));
        next
    }

    /// The batch limits of the delivery target (`Limits::OUTBOX` for `dir:`).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Hands out the next sequence number; the caller persists `next_seq` before using it.
    pub fn reserve(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// A number seen elsewhere only raises the next one.
    fn learn_seq(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
    }

    /// A raw segment is complete (rotated, taken at a stop or reload, an FTP upload
    /// committed): seal it.
    pub fn raw(&mut self, seq: u64, path: PathBuf, bytes: u64) -> Action {
        self.learn_seq(seq);
        self.sealing.push(Raw {
            seq,
            path: path.clone(),
            bytes,
            failed: false,
        });
        Action::Seal { seq, raw: path }
    }

    /// The sealer turned raw segment `seq` into `parts` (none for an empty file).
    pub fn sealed(&mut self, seq: u64, parts: Vec<Sealed>, now: Instant) -> Vec<Action> {
        self.sealing.retain(|r| r.seq != seq);
        self.add_sealed(parts);
        self.next(now).into_iter().collect()
    }

    /// A file that is sealed as it came (an FTP gzip or zip upload).
    pub fn adopted_sealed(&mut self, file: Sealed, now: Instant) -> Vec<Action> {
        self.add_sealed(vec![file]);
        self.next(now).into_iter().collect()
    }

    /// Sealing `seq` failed. Returns whether it will be tried again (`tick` after
    /// `SEAL_RETRY`); during a stop it is not: the next start seals the raw segment.
    pub fn seal_failed(&mut self, seq: u64, now: Instant) -> bool {
        if self.stopping {
            self.sealing.retain(|r| r.seq != seq);
            return false;
        }
        for r in self.sealing.iter_mut().filter(|r| r.seq == seq) {
            r.failed = true;
        }
        self.seal_retry_at = Some(now + SEAL_RETRY);
        true
    }

    /// A raw segment to seal again is not there any more: nothing is left of it to keep.
    pub fn raw_gone(&mut self, seq: u64) {
        self.sealing.retain(|r| r.seq != seq);
    }

    /// The batch was delivered (`paths`: its files) and moved to backup.
    pub fn delivered(&mut self, paths: &[PathBuf], now: Instant) -> Vec<Action> {
        self.batch = None;
        self.sealed.retain(|s| !paths.contains(&s.path));
        self.retry_delay = RETRY_MIN;
        self.next(now).into_iter().collect()
    }

    /// A file of the batch was damaged: its segment (`paths`) is in quarantine. The rest of
    /// the batch is chosen again, without it.
    pub fn quarantined(&mut self, paths: &[PathBuf], now: Instant) -> Vec<Action> {
        self.batch = None;
        self.sealed.retain(|s| !paths.contains(&s.path));
        self.next(now).into_iter().collect()
    }

    /// The batch's attempt failed, having `kept` this much of it with the tenant. Returns how
    /// long until the retry: the server's Retry-After, else a backoff doubling up to
    /// `RETRY_MAX` spread by `spread` (0 to 1: between half and all of it), or
    /// `RETRY_PERMANENT` for a failure that needs an operator.
    pub fn delivery_failed(
        &mut self,
        kept: Kept,
        failure: &Failure,
        spread: f64,
        now: Instant,
    ) -> Duration {
        let wait = match failure {
            Failure::Transient { after, .. } => {
                let d = self.retry_delay;
                self.retry_delay = (d * 2).min(RETRY_MAX);
                after.unwrap_or_else(|| d / 2 + d.mul_f64(spread.clamp(0.0, 1.0) / 2.0))
            }
            Failure::Permanent { .. } => RETRY_PERMANENT,
        };
        self.batch = match (self.batch.take(), kept) {
            (_, Kept::Nothing) | (None, _) => None,
            (Some(b), Kept::Stored) => Some(Batch {
                flight: Flight::Stored,
                ..b
            }),
            (Some(b), Kept::Acked) => Some(Batch {
                flight: Flight::Acked,
                ..b
            }),
        };
        self.retry_at = Some(now + wait);
        wait
    }

    /// The batch was given back unbegun: the host's API budget allows no call for `wait`. Not
    /// a failure (the backoff stays as it is); the batch is chosen again then, with what
    /// sealed meanwhile.
    pub fn deferred(&mut self, wait: Duration, now: Instant) {
        self.batch = None;
        self.retry_at = Some(now + wait);
    }

    /// Housekeeping at `now`: failed seals and delivery retries that are due.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut next = Vec::new();
        if self.seal_retry_at.is_some_and(|t| t <= now) {
            self.seal_retry_at = None;
            for r in self.sealing.iter_mut().filter(|r| r.failed) {
                r.failed = false;
                next.push(Action::Reseal {
                    seq: r.seq,
                    raw: r.path.clone(),
                });
            }
        }
        if self.retry_at.is_some_and(|t| t <= now) {
            self.retry_at = None;
            next.extend(self.next(now));
        }
        next
    }

    /// Try delivery at once, backoff forgotten (a reload may have fixed the token or proxy).
    pub fn retry_now(&mut self, now: Instant) -> Vec<Action> {
        self.retry_at = None;
        self.retry_delay = RETRY_MIN;
        self.next(now).into_iter().collect()
    }

    /// The instance stops: no new batch goes out.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Nothing is with the sealer or the delivery thread (what a stop waits for).
    pub fn settled(&self) -> bool {
        self.sealing.iter().all(|r| r.failed)
            && self
                .batch
                .as_ref()
                .is_none_or(|b| b.flight != Flight::Sending)
    }

    /// The next batch, if none is with the delivery thread and no retry is pending. A held or
    /// acknowledged batch goes again with its files, less any that eviction took (never one
    /// of an acknowledged batch); otherwise the oldest sealed files as `batch::next_batch`
    /// cuts them.
    fn next(&mut self, now: Instant) -> Option<Action> {
        if self.stopping || self.retry_at.is_some_and(|t| t > now) {
            return None;
        }
        let sealed = &self.sealed;
        let mut files = match self.batch.take() {
            Some(b) if b.flight == Flight::Sending => {
                self.batch = Some(b);
                return None;
            }
            Some(b) => b.files,
            None => Vec::new(),
        };
        files.retain(|p| sealed.iter().any(|s| s.path == *p));
        if files.is_empty() {
            let pieces: Vec<Piece> = sealed
                .iter()
                .map(|s| Piece {
                    seq: s.seq,
                    bytes: s.bytes,
                    alone: s.alone,
                })
                .collect();
            let n = batch::next_batch(&pieces, self.limits);
            files = sealed.iter().take(n).map(|s| s.path.clone()).collect();
        }
        if files.is_empty() {
            return None;
        }
        self.retry_at = None;
        self.batch = Some(Batch {
            files: files.clone(),
            flight: Flight::Sending,
        });
        Some(Action::Deliver(files))
    }

    /// Adds sealed files, keeping them ordered oldest first.
    fn add_sealed(&mut self, parts: Vec<Sealed>) {
        for p in parts {
            self.learn_seq(p.seq);
            let at = self
                .sealed
                .partition_point(|s| (s.seq, s.part) < (p.seq, p.part));
            self.sealed.insert(at, p);
        }
    }
}

/// What eviction may take, and taking it (`space.rs` chooses across sources).
impl Inventory {
    /// Sealed files not in the batch with the delivery thread nor in an acknowledged one.
    pub fn evictable(&self) -> impl Iterator<Item = &Sealed> {
        let kept = self
            .batch
            .as_ref()
            .filter(|b| b.flight != Flight::Stored)
            .map(|b| b.files.as_slice())
            .unwrap_or_default();
        self.sealed.iter().filter(move |s| !kept.contains(&s.path))
    }

    /// Raw segments whose seal failed: what eviction may take when nothing sealed is left,
    /// since a compressed copy that does not fit beside its raw segment would otherwise keep
    /// the receivers paused for good.
    pub fn unsealable(&self) -> impl Iterator<Item = &Raw> {
        self.sealing.iter().filter(|r| r.failed)
    }

    /// Takes the file at `path` out (evicted); true if it was a raw segment.
    pub fn evict(&mut self, path: &Path) -> bool {
        self.sealed.retain(|s| s.path != path);
        let raw = self.sealing.iter().any(|r| r.path == path);
        self.sealing.retain(|r| r.path != path);
        raw
    }
}

/// What the status and logs read.
impl Inventory {
    /// Bytes of raw and sealed segments.
    pub fn bytes(&self) -> u64 {
        let raw: u64 = self.sealing.iter().map(|r| r.bytes).sum();
        raw + self.sealed.iter().map(|s| s.bytes).sum::<u64>()
    }

    /// Raw and sealed files.
    pub fn files(&self) -> usize {
        self.sealing.len() + self.sealed.len()
    }

    /// Sealed files waiting (the batch's included).
    pub fn sealed_files(&self) -> usize {
        self.sealed.len()
    }

    /// When the oldest sealed file was sealed.
    pub fn oldest_sealed_at(&self) -> Option<u64> {
        self.sealed.front().map(|s| s.sealed_at)
    }

    /// Raw segments, oldest first.
    pub fn sealing(&self) -> &[Raw] {
        &self.sealing
    }

    pub fn sealed_iter(&self) -> impl Iterator<Item = &Sealed> {
        self.sealed.iter()
    }

    /// The state of segment `seq` (of its first file, for a segment in parts).
    pub fn state(&self, seq: u64) -> Option<State> {
        if let Some(r) = self.sealing.iter().find(|r| r.seq == seq) {
            return Some(if r.failed {
                State::SealFailed
            } else {
                State::Sealing
            });
        }
        let s = self.sealed.iter().find(|s| s.seq == seq)?;
        Some(match &self.batch {
            Some(b) if b.files.contains(&s.path) => State::Batch(b.flight),
            _ => State::Sealed,
        })
    }

    /// When a delivery is retried, if one waits.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }
}

#[cfg(test)]
mod tests;
