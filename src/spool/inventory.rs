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
mod tests {
    use super::*;

    /// Runs a script against an inventory whose `next_seq` is 1 and that holds `sealed`
    /// (`SEQ` or `SEQ.PARTS` words, 10 bytes a file). One line is one event, optionally after
    /// `@SECS` (the time since the start; else the last one):
    ///
    /// `raw SEQ` (100 bytes), `sealed SEQ PARTS`, `gz SEQ` (an FTP gzip kept as it came),
    /// `sealfail SEQ`, `gone SEQ`, `ok` (the batch delivered), `fail transient|after=S|permanent
    /// nothing|stored|acked` (spread 0.5), `quarantine SEQ`, `tick`, `reload`, `stop`,
    /// `reserve`, `evict SEQ[.PART]` (says whether eviction may take it, and takes it if so),
    /// `outbox`, `start`; and `?`, which shows each segment's
    /// state (`3:sealed 4:sending`), `settled` and the retry time.
    ///
    /// Expected: what each event answered, one line per action (`seal 3`, `reseal 3`,
    /// `deliver 3 3-p1 4`), per retry (`retry in 1.5s`), per reserved number (`seq 5`).
    #[track_caller]
    fn check(sealed: &str, script: &[&str], expected: &[&str]) {
        let t0 = Instant::now();
        let mut now = t0;
        let files = sealed.split_whitespace().flat_map(|w| {
            let (seq, parts) = w.split_once('.').unwrap_or((w, "1"));
            let seq: u64 = seq.parse().unwrap();
            (0..parts.parse::<u32>().unwrap()).map(move |k| file(seq, k))
        });
        let mut inv = Inventory::new(1, files.collect());
        let mut got = Vec::new();
        for line in script {
            let line = match line.strip_prefix('@') {
                Some(rest) => {
                    let (secs, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                    now = t0 + Duration::from_secs_f64(secs.parse().unwrap());
                    rest
                }
                None => line,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let num = |i: usize| -> u64 { words[i].parse().unwrap() };
            let actions = match words[..] {
                ["raw", _] => vec![inv.raw(num(1), raw_path(num(1)), 100)],
                ["sealed", _, _] => {
                    let parts = (0..num(2) as u32).map(|k| file(num(1), k)).collect();
                    inv.sealed(num(1), parts, now)
                }
                ["gz", _] => {
                    let f = Sealed {
                        alone: true,
                        ..file(num(1), 0)
                    };
                    inv.adopted_sealed(f, now)
                }
                ["sealfail", _] => {
                    if !inv.seal_failed(num(1), now) {
                        got.push("not retried".to_string());
                    }
                    vec![]
                }
                ["gone", _] => {
                    inv.raw_gone(num(1));
                    vec![]
                }
                ["ok"] => {
                    let files = inv.batch.as_ref().map(|b| b.files.clone());
                    inv.delivered(&files.unwrap_or_default(), now)
                }
                ["fail", how, kept] => {
                    let failure = match how {
                        "permanent" => Failure::Permanent { reason: "x".into() },
                        _ => Failure::Transient {
                            reason: "x".into(),
                            after: how
                                .strip_prefix("after=")
                                .map(|s| Duration::from_secs(s.parse().unwrap())),
                        },
                    };
                    let kept = match kept {
                        "nothing" => Kept::Nothing,
                        "stored" => Kept::Stored,
                        _ => Kept::Acked,
                    };
                    let wait = inv.delivery_failed(kept, &failure, 0.5, now);
                    got.push(format!("retry in {}s", wait.as_secs_f64()));
                    vec![]
                }
                ["quarantine", _] => {
                    let paths: Vec<PathBuf> = inv
                        .sealed
                        .iter()
                        .filter(|s| s.seq == num(1))
                        .map(|s| s.path.clone())
                        .collect();
                    inv.quarantined(&paths, now)
                }
                ["tick"] => inv.tick(now),
                ["reload"] => inv.retry_now(now),
                ["stop"] => {
                    inv.stop();
                    vec![]
                }
                ["start"] => inv.start(now),
                ["outbox"] => {
                    inv.set_limits(Limits::OUTBOX);
                    vec![]
                }
                ["reserve"] => {
                    got.push(format!("seq {}", inv.reserve()));
                    vec![]
                }
                ["evict", what] => {
                    let name = match what.split_once('.') {
                        Some((seq, part)) => file(seq.parse().unwrap(), part.parse().unwrap()).path,
                        None => file(what.parse().unwrap(), 0).path,
                    };
                    let path = if inv.sealing.iter().any(|r| r.seq.to_string() == *what) {
                        raw_path(what.parse().unwrap())
                    } else {
                        name
                    };
                    let evictable = inv.evictable().any(|s| s.path == path)
                        || inv.unsealable().any(|r| r.path == path);
                    got.push(format!("evictable {evictable}"));
                    if evictable {
                        inv.evict(&path);
                    }
                    vec![]
                }
                ["?"] => {
                    got.push(show(&inv, t0));
                    vec![]
                }
                _ => panic!("bad script line {line:?}"),
            };
            got.extend(actions.iter().map(render));
        }
        assert_eq!(got, expected, "{script:#?}");
    }

    fn raw_path(seq: u64) -> PathBuf {
        PathBuf::from(format!("{seq}.log"))
    }

    /// Part `k` of segment `seq`, 10 bytes, sealed at `seq` seconds.
    fn file(seq: u64, k: u32) -> Sealed {
        let name = match k {
            0 => format!("{seq}"),
            k => format!("{seq}-p{k}"),
        };
        Sealed {
            seq,
            part: k,
            path: PathBuf::from(name),
            bytes: 10,
            sealed_at: seq,
            alone: false,
        }
    }

    fn render(a: &Action) -> String {
        match a {
            Action::Seal { seq, raw } => {
                assert_eq!(*raw, raw_path(*seq));
                format!("seal {seq}")
            }
            Action::Reseal { seq, .. } => format!("reseal {seq}"),
            Action::Deliver(files) => {
                let names: Vec<_> = files.iter().map(|p| p.display().to_string()).collect();
                format!("deliver {}", names.join(" "))
            }
        }
    }

    fn show(inv: &Inventory, t0: Instant) -> String {
        let mut seqs: Vec<u64> = inv.sealing.iter().map(|r| r.seq).collect();
        seqs.extend(inv.sealed.iter().map(|s| s.seq));
        seqs.sort();
        seqs.dedup();
        let mut words: Vec<String> = seqs
            .iter()
            .map(|&seq| {
                let state = match inv.state(seq).unwrap() {
                    State::Sealing => "sealing",
                    State::SealFailed => "sealfailed",
                    State::Sealed => "sealed",
                    State::Batch(Flight::Sending) => "sending",
                    State::Batch(Flight::Stored) => "stored",
                    State::Batch(Flight::Acked) => "acked",
                };
                format!("{seq}:{state}")
            })
            .collect();
        if inv.settled() {
            words.push("settled".into());
        }
        if let Some(t) = inv.retry_at() {
            words.push(format!("retry@{}", t.duration_since(t0).as_secs_f64()));
        }
        words.join(" ")
    }

    #[test]
    fn segments_go_from_raw_to_sealed_to_one_batch_at_a_time() {
        check("", &["?"], &["settled"]);
        check(
            "",
            &[
                "raw 1",
                "?",
                "sealed 1 1",
                "?",
                "raw 2",
                "sealed 2 1",
                "?",
                "ok",
                "?",
            ],
            &[
                "seal 1",
                "1:sealing",
                "deliver 1",
                "1:sending",
                "seal 2",
                // One batch with the delivery thread at a time: 2 waits for it.
                "1:sending 2:sealed",
                "deliver 2",
                "2:sending",
            ],
        );
        // A backlog leaves as one batch; a segment in parts goes whole, in order.
        check(
            "1 2.2 3",
            &["start", "?"],
            &["deliver 1 2 2-p1 3", "1:sending 2:sending 3:sending"],
        );
        // An FTP gzip goes alone; the outbox takes one segment at a time.
        check("1 2", &["gz 3", "ok", "ok"], &["deliver 1 2", "deliver 3"]);
        check(
            "1 2",
            &["outbox", "start", "ok"],
            &["deliver 1", "deliver 2"],
        );
        // Sealing out of order still delivers oldest first.
        check(
            "",
            &["raw 1", "raw 2", "sealed 2 1", "ok", "sealed 1 1"],
            &["seal 1", "seal 2", "deliver 2", "deliver 1"],
        );
        // An empty segment seals to nothing.
        check("", &["raw 1", "sealed 1 0", "?"], &["seal 1", "settled"]);
        // Recovered raw segments are sealed at start.
        check("5", &["raw 6", "start"], &["seal 6", "seal 6", "deliver 5"]);
    }

    #[test]
    fn failed_deliveries_wait_and_back_off() {
        check(
            "1",
            &[
                "start",
                "fail transient nothing",
                "?",
                "@0.7 tick",
                "@0.75 tick",
                "fail transient nothing",
                "@2.25 tick",
                "fail after=30 nothing",
                "@32.2 tick",
                "@32.25 tick",
                "fail transient nothing",
                "fail permanent nothing",
                "@400 tick",
                "ok",
                "raw 2",
                "sealed 2 1",
                "fail transient nothing",
            ],
            &[
                "deliver 1",
                // Between half and all of 1 s (spread 0.5), then doubling.
                "retry in 0.75s",
                "1:sealed settled retry@0.75",
                "deliver 1",
                "retry in 1.5s",
                "deliver 1",
                // Retry-After wins; the backoff still grows.
                "retry in 30s",
                "deliver 1",
                "retry in 6s",
                "retry in 300s",
                "deliver 1",
                "seal 2",
                "deliver 2",
                // Delivered: the backoff starts over.
                "retry in 0.75s",
            ],
        );
        // Backoff stops at a minute; a reload retries at once.
        let mut script = vec!["start"];
        script.extend(["fail transient nothing"; 8]);
        script.push("reload");
        script.push("fail transient nothing");
        check(
            "1",
            &script,
            &[
                "deliver 1",
                "retry in 0.75s",
                "retry in 1.5s",
                "retry in 3s",
                "retry in 6s",
                "retry in 12s",
                "retry in 24s",
                "retry in 45s",
                "retry in 45s",
                "deliver 1",
                "retry in 0.75s",
            ],
        );
    }

    /// A batch that failed before anything was stored is chosen again, with what came since;
    /// one whose parts are stored goes again with the same files.
    #[test]
    fn a_held_batch_is_retried_with_the_same_files() {
        check(
            "1",
            &["start", "fail transient nothing", "sealed 2 1", "@1 tick"],
            &["deliver 1", "retry in 0.75s", "deliver 1 2"],
        );
        check(
            "1",
            &[
                "start",
                "fail transient stored",
                "sealed 2 1",
                "?",
                "@1 tick",
                "ok",
            ],
            &[
                "deliver 1",
                "retry in 0.75s",
                "1:stored 2:sealed settled retry@0.75",
                "deliver 1",
                "deliver 2",
            ],
        );
        // Eviction may take part of a stored batch: the retry sends the rest.
        check(
            "1 2",
            &["start", "fail transient stored", "evict 1", "@1 tick"],
            &[
                "deliver 1 2",
                "retry in 0.75s",
                "evictable true",
                "deliver 2",
            ],
        );
        // A quarantined segment leaves; the rest of its batch is chosen again.
        check(
            "1 2 3",
            &["start", "fail transient stored", "quarantine 2", "@1 tick"],
            &["deliver 1 2 3", "retry in 0.75s", "deliver 1 3"],
        );
    }

    /// Issue 12, bug 3: upload progress was forgotten before the move to backup, so a failing
    /// move uploaded the segment again and again. `done_upload` succeeded, backup pending, is
    /// a state of its own: retried with the same files (the delivery thread only moves them),
    /// never evicted, never joined by newer segments; a later delivery goes on.
    #[test]
    fn acknowledged_but_not_moved_is_a_state_of_its_own() {
        check(
            "1 2",
            &[
                "start",
                "fail transient acked",
                "?",
                "sealed 3 1",
                "evict 1",
                "?",
                "@1 tick",
                "fail transient acked",
                "@3 tick",
                "ok",
                "?",
            ],
            &[
                "deliver 1 2",
                "retry in 0.75s",
                "1:acked 2:acked settled retry@0.75",
                "evictable false",
                "1:acked 2:acked 3:sealed settled retry@0.75",
                "deliver 1 2",
                "retry in 1.5s",
                "deliver 1 2",
                "deliver 3",
                "3:sending",
            ],
        );
        // In flight, nothing of the batch is evictable; the rest is.
        check(
            "1 2",
            &["outbox", "start", "evict 1", "evict 2"],
            &["deliver 1", "evictable false", "evictable true"],
        );
    }

    /// Issue 12, bug 6: a raw segment whose seal fails (its compressed copy does not fit)
    /// stays evictable, so eviction always has a way forward; failed seals are retried after
    /// `SEAL_RETRY`, one send each, and a raw segment that is gone is forgotten.
    #[test]
    fn failed_seals_are_retried_and_evictable() {
        check(
            "",
            &[
                "raw 1",
                "raw 2",
                "sealfail 1",
                "?",
                "@9 tick",
                "@10 tick",
                "?",
                "sealfail 1",
                "@20 tick",
                "evict 1",
                "?",
            ],
            &[
                "seal 1",
                "seal 2",
                "1:sealfailed 2:sealing",
                "reseal 1",
                "1:sealing 2:sealing",
                "reseal 1",
                // With the sealer again: not evictable while it works.
                "evictable false",
                "1:sealing 2:sealing",
            ],
        );
        check(
            "",
            &["raw 1", "sealfail 1", "evict 1", "?"],
            &["seal 1", "evictable true", "settled"],
        );
        check(
            "",
            &["raw 1", "sealfail 1", "@10 tick", "gone 1", "?"],
            &["seal 1", "reseal 1", "settled"],
        );
        // A seal failure does not hold delivery up.
        check(
            "1",
            &["raw 2", "sealfail 2", "start"],
            &["seal 2", "deliver 1"],
        );
    }

    /// A stop sends no new batch and waits only for what the workers hold; a seal that fails
    /// then is left to the next start.
    #[test]
    fn a_stop_waits_for_the_workers_only() {
        check(
            "1",
            &["start", "raw 2", "stop", "?", "sealed 2 1", "?", "ok", "?"],
            &[
                "deliver 1",
                "seal 2",
                "1:sending 2:sealing",
                "1:sending 2:sealed",
                "2:sealed settled",
            ],
        );
        check(
            "",
            &["raw 1", "stop", "sealfail 1", "?"],
            &["seal 1", "not retried", "settled"],
        );
        check(
            "",
            &["raw 1", "sealfail 1", "stop", "?"],
            &["seal 1", "1:sealfailed settled"],
        );
    }

    /// Issue 12, bug 8: sequence numbers never go back, whatever leaves the spool; what the
    /// inventory learns (recovered, sealed, adopted) only raises them.
    #[test]
    fn sequence_numbers_never_go_back() {
        check(
            "",
            &["reserve", "reserve", "raw 1", "sealed 1 1", "ok", "reserve"],
            &["seq 1", "seq 2", "seal 1", "deliver 1", "seq 3"],
        );
        check("7", &["reserve"], &["seq 8"]);
        check(
            "",
            &["raw 41", "sealed 41 1", "ok", "reserve"],
            &["seal 41", "deliver 41", "seq 42"],
        );
        check(
            "",
            &["gz 9999999999", "reserve"],
            &["deliver 9999999999", "seq 10000000000"],
        );
        let mut inv = Inventory::new(50, vec![file(3, 0)]);
        inv.recovered(vec![(4, raw_path(4), 1)]);
        assert_eq!(inv.reserve(), 50);
        let mut inv = Inventory::new(1, vec![file(3, 0)]);
        inv.recovered(vec![(4, raw_path(4), 1)]);
        assert_eq!(inv.reserve(), 5);
    }
}
