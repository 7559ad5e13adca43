//! The instance's disk space: `max_spool_bytes` and `min_free_bytes` kept by pruning backups,
//! evicting segments and pausing receivers, in that order.
//!
//! Once a second the loop measures (the backlog of every source, free space from `statvfs`)
//! and asks [`Space::check`], which answers with [`Step`]s: prune the backup folders, evict
//! these files (already taken out of their sources' inventories), pause the stream receivers,
//! resume them. It remembers what is under way (bytes being unlinked, a prune running, whether
//! the last prune found nothing) so that one shortage is answered once. No I/O: the loop
//! unlinks and prunes on the chores thread and reports back (`unlinked`, `pruned`).
//!
//! Eviction always leaves a way forward: the oldest sealed files first across sources (never
//! those with the delivery thread or acknowledged by the tenant), and when none is left, raw
//! segments whose seal failed (a compressed copy that did not fit beside them).

use std::path::PathBuf;

use super::inventory::Inventory;

/// A file eviction may remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// When it was sealed (0 for a raw segment).
    pub sealed_at: u64,
    pub seq: u64,
    pub part: u32,
    /// Its source's index.
    pub source: usize,
    pub path: PathBuf,
    pub bytes: u64,
    /// A raw segment whose seal failed (its `.name` sidecar goes with it).
    pub raw: bool,
}

/// The files to evict to free `need` bytes: oldest first (by sealing time, then sequence
/// and part), across sources, until their sizes reach `need` or none is left.
pub fn evictions(mut candidates: Vec<Candidate>, need: u64) -> Vec<Candidate> {
    candidates.sort_by(|a, b| {
        (a.sealed_at, a.seq, a.part, a.source).cmp(&(b.sealed_at, b.seq, b.part, b.source))
    });
    let mut freed = 0;
    candidates
        .into_iter()
        .take_while(|c| {
            let take = freed < need;
            freed += c.bytes;
            take
        })
        .collect()
}

/// What the loop measured.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    /// Bytes held by every source (buffered, open, raw, sealed).
    pub backlog: u64,
    pub max_spool: u64,
    /// Free bytes on the state_dir's filesystem, when `statvfs` answered.
    pub free: Option<u64>,
    pub min_free: u64,
}

impl Facts {
    /// What more may be stored without making `Space::check` evict: the room under
    /// `max_spool_bytes`, and above `min_free_bytes` when the free space is known. An FTP
    /// upload may take this much (`ftp::room`).
    pub fn room(&self) -> u64 {
        let room = self.max_spool.saturating_sub(self.backlog);
        match self.free {
            Some(free) => room.min(free.saturating_sub(self.min_free)),
            None => room,
        }
    }
}

/// What the loop does about space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Remove every backup copy (the chores thread; answer with `pruned`).
    Prune,
    /// These files left their inventories: count, log and unlink them (answer with
    /// `unlinked`). `why` is the limit they make room for.
    Evict {
        files: Vec<Candidate>,
        why: &'static str,
    },
    /// Free space is short and nothing is left to remove: pause stream reads, count UDP drops.
    Pause,
    /// Room again: write what is buffered and, if that works, resume.
    Resume,
}

#[derive(Debug, Default)]
pub struct Space {
    /// Stream reads are paused (free space short, or a spool write failed).
    full: bool,
    /// Bytes handed to the chores thread for unlinking, not yet gone.
    freeing: u64,
    /// Backups are being pruned.
    pruning: bool,
    /// The last pruning found nothing to remove: eviction comes next.
    backups_gone: bool,
}

impl Space {
    /// Whether stream reads are paused.
    pub fn full(&self) -> bool {
        self.full
    }

    /// A write to the spool failed (no space, or not writable): pause. Returns whether this
    /// is news.
    pub fn write_failed(&mut self) -> bool {
        !std::mem::replace(&mut self.full, true)
    }

    /// Over `max_spool_bytes`, the oldest files go; short of `min_free_bytes` (counting what
    /// is being unlinked as free), backups go first, then the oldest files, and when nothing
    /// is left to remove the receivers pause. With room again they resume.
    pub fn check(&mut self, facts: Facts, sources: &mut [&mut Inventory]) -> Vec<Step> {
        let mut steps = Vec::new();
        if facts.backlog > facts.max_spool {
            steps.extend(self.evict(sources, facts.backlog - facts.max_spool, "max_spool_bytes"));
        }
        let Some(free) = facts.free else {
            return steps;
        };
        let short = facts
            .min_free
            .saturating_sub(free.saturating_add(self.freeing));
        if short > 0 {
            if self.pruning || self.freeing > 0 {
                // Room is being made; look again when it is done.
            } else if !self.backups_gone {
                self.pruning = true;
                steps.push(Step::Prune);
            } else if let Some(evict) = self.evict(sources, short, "min_free_bytes") {
                steps.push(evict);
            } else if !self.full {
                self.full = true;
                steps.push(Step::Pause);
            }
        } else if self.full && free >= facts.min_free {
            self.full = false;
            steps.push(Step::Resume);
        }
        steps
    }

    /// The files worth `need` bytes that eviction takes out of `sources`, if any.
    fn evict(
        &mut self,
        sources: &mut [&mut Inventory],
        need: u64,
        why: &'static str,
    ) -> Option<Step> {
        let sealed = sources.iter().enumerate().flat_map(|(i, inv)| {
            inv.evictable().map(move |s| Candidate {
                sealed_at: s.sealed_at,
                seq: s.seq,
                part: s.part,
                source: i,
                path: s.path.clone(),
                bytes: s.bytes,
                raw: false,
            })
        });
        let mut files = evictions(sealed.collect(), need);
        if files.is_empty() {
            let raw = sources.iter().enumerate().flat_map(|(i, inv)| {
                inv.unsealable().map(move |r| Candidate {
                    sealed_at: 0,
                    seq: r.seq,
                    part: 0,
                    source: i,
                    path: r.path.clone(),
                    bytes: r.bytes,
                    raw: true,
                })
            });
            files = evictions(raw.collect(), need);
        }
        if files.is_empty() {
            return None;
        }
        for f in &files {
            sources[f.source].evict(&f.path);
            self.freeing += f.bytes;
        }
        Some(Step::Evict { files, why })
    }

    /// The chores thread unlinked evicted files worth `asked` bytes.
    pub fn unlinked(&mut self, asked: u64) {
        self.freeing = self.freeing.saturating_sub(asked);
    }

    /// Pruning the backups ended; `removed`: whether it found anything.
    pub fn pruned(&mut self, removed: bool) {
        self.pruning = false;
        self.backups_gone = !removed;
    }

    /// A delivery moved files to backup: there may be something to prune again.
    pub fn delivered(&mut self) {
        self.backups_gone = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deliver::plan::Kept;
    use crate::spool::Sealed;
    use std::time::Instant;

    /// `Facts` as (backlog, max_spool, free, min_free), and the room they leave.
    #[track_caller]
    fn check_room(facts: (u64, u64, Option<u64>, u64), expected: u64) {
        let (backlog, max_spool, free, min_free) = facts;
        let facts = Facts {
            backlog,
            max_spool,
            free,
            min_free,
        };
        assert_eq!(facts.room(), expected);
    }

    #[test]
    fn room() {
        check_room((0, 100, None, 10), 100);
        check_room((40, 100, None, 10), 60);
        check_room((140, 100, None, 10), 0);
        // The disk is the tighter limit, or the spool is.
        check_room((40, 100, Some(30), 10), 20);
        check_room((40, 100, Some(500), 10), 60);
        // Below min_free_bytes already: no room.
        check_room((0, 100, Some(5), 10), 0);
    }

    /// Candidates as (sealed_at, seq, part, source, bytes); the answer as `source:seq.part`.
    #[track_caller]
    fn check_evictions(candidates: &[(u64, u64, u32, usize, u64)], need: u64, expected: &str) {
        let c = candidates
            .iter()
            .map(|&(sealed_at, seq, part, source, bytes)| Candidate {
                sealed_at,
                seq,
                part,
                source,
                path: PathBuf::from(format!("{source}/{seq}.{part}")),
                bytes,
                raw: false,
            })
            .collect();
        let got: Vec<String> = evictions(c, need)
            .iter()
            .map(|e| format!("{}:{}.{}", e.source, e.seq, e.part))
            .collect();
        assert_eq!(got.join(" "), expected, "need {need}");
    }

    #[test]
    fn eviction_takes_the_oldest_until_enough() {
        check_evictions(&[], 100, "");
        check_evictions(&[(10, 1, 0, 0, 50)], 0, "");
        check_evictions(&[(10, 1, 0, 0, 50)], 1, "0:1.0");
        check_evictions(&[(10, 1, 0, 0, 50), (20, 2, 0, 0, 50)], 50, "0:1.0");
        check_evictions(&[(10, 1, 0, 0, 50), (20, 2, 0, 0, 50)], 51, "0:1.0 0:2.0");
        check_evictions(&[(10, 1, 0, 0, 50), (20, 2, 0, 0, 50)], 500, "0:1.0 0:2.0");
        // Across sources by sealing time; a segment's parts in order.
        check_evictions(
            &[(30, 7, 0, 1, 10), (20, 9, 1, 0, 10), (20, 9, 0, 0, 10)],
            25,
            "0:9.0 0:9.1 1:7.0",
        );
    }

    /// Sources as words: `N` a sealed file of segment N (10 bytes, sealed at N s), `rN` a raw
    /// segment whose seal failed (100 bytes), `>` its first batch with the delivery thread,
    /// `>acked` acknowledged and waiting for its move to backup.
    fn sources(specs: &[&str]) -> Vec<Inventory> {
        let now = Instant::now();
        specs
            .iter()
            .map(|spec| {
                let sealed =
                    spec.split_whitespace()
                        .filter_map(|w| w.parse().ok())
                        .map(|seq: u64| Sealed {
                            seq,
                            part: 0,
                            path: PathBuf::from(seq.to_string()),
                            bytes: 10,
                            sealed_at: seq,
                            alone: false,
                        });
                let mut inv = Inventory::new(1, sealed.collect());
                for w in spec.split_whitespace() {
                    if let Some(seq) = w.strip_prefix('r') {
                        let seq = seq.parse().unwrap();
                        inv.raw(seq, PathBuf::from(format!("r{seq}")), 100);
                        inv.seal_failed(seq, now);
                    } else if w == ">" {
                        inv.start(now);
                    } else if w == ">acked" {
                        inv.start(now);
                        let f = crate::deliver::api::Failure::Permanent { reason: "x".into() };
                        inv.delivery_failed(Kept::Acked, &f, 0.0, now);
                    }
                }
                inv
            })
            .collect()
    }

    /// Runs `script` over `specs` (see `sources`). Events: `check BACKLOG MAX_SPOOL FREE
    /// MIN_FREE` (FREE `-` when statvfs failed), `pruned yes|no`, `unlinked BYTES`,
    /// `delivered`, `writefail`. Expected: the steps, one per line (`prune`, `pause`,
    /// `resume`, `evict max_spool_bytes 0:1 1:r5`), `news` for a write failure that paused.
    #[track_caller]
    fn check(specs: &[&str], script: &[&str], expected: &[&str]) {
        let mut invs = sources(specs);
        let mut space = Space::default();
        let mut got = Vec::new();
        for line in script {
            let w: Vec<&str> = line.split_whitespace().collect();
            let n = |i: usize| -> u64 { w[i].parse().unwrap() };
            match w[..] {
                ["check", _, _, free, _] => {
                    let facts = Facts {
                        backlog: n(1),
                        max_spool: n(2),
                        free: free.parse().ok(),
                        min_free: n(4),
                    };
                    let mut refs: Vec<&mut Inventory> = invs.iter_mut().collect();
                    for step in space.check(facts, &mut refs) {
                        got.push(match step {
                            Step::Prune => "prune".to_string(),
                            Step::Pause => "pause".to_string(),
                            Step::Resume => "resume".to_string(),
                            Step::Evict { files, why } => {
                                let names: Vec<String> = files
                                    .iter()
                                    .map(|f| format!("{}:{}", f.source, f.path.display()))
                                    .collect();
                                format!("evict {why} {}", names.join(" "))
                            }
                        });
                    }
                }
                ["pruned", yes] => space.pruned(yes == "yes"),
                ["unlinked", _] => space.unlinked(n(1)),
                ["delivered"] => space.delivered(),
                ["writefail"] => {
                    if space.write_failed() {
                        got.push("news".into());
                    }
                }
                _ => panic!("bad line {line:?}"),
            }
        }
        assert_eq!(got, expected, "{specs:?} {script:#?}");
    }

    #[test]
    fn max_spool_bytes_evicts_the_oldest_across_sources() {
        check(&["1 3", "2"], &["check 30 30 - 0"], &[]);
        check(
            &["1 3", "2"],
            &["check 45 30 - 0"],
            &["evict max_spool_bytes 0:1 1:2"],
        );
        // Not what is with the delivery thread, nor what is acknowledged.
        check(
            &["1 3 >", "2"],
            &["check 45 30 - 0"],
            &["evict max_spool_bytes 1:2"],
        );
        check(
            &["1 >acked", "2"],
            &["check 45 30 - 0"],
            &["evict max_spool_bytes 1:2"],
        );
    }

    #[test]
    fn short_of_free_space_backups_go_first_then_segments_then_receivers_pause() {
        check(
            &["1 2"],
            &[
                "check 0 100 50 40",
                "check 0 100 30 40",
                // While pruning runs, no second answer.
                "check 0 100 30 40",
                "pruned yes",
                "check 0 100 35 40",
                "pruned no",
                "check 0 100 35 40",
                // While unlinking runs, what it frees counts.
                "check 0 100 35 40",
                "unlinked 10",
                "check 0 100 35 40",
                "unlinked 10",
                "check 0 100 35 40",
                "check 0 100 35 40",
                "check 0 100 39 40",
                "check 0 100 40 40",
                "check 0 100 40 40",
            ],
            &[
                "prune",
                "prune",
                "evict min_free_bytes 0:1",
                "evict min_free_bytes 0:2",
                "pause",
                "resume",
            ],
        );
        // A delivery refills backup/: pruning comes first again.
        check(
            &["1"],
            &[
                "check 0 100 0 40",
                "pruned no",
                "delivered",
                "check 0 100 0 40",
            ],
            &["prune", "prune"],
        );
    }

    /// Issue 12, bug 6: a raw segment whose compressed copy does not fit is evicted when
    /// nothing sealed is left, so the receivers do not stay paused for good.
    #[test]
    fn eviction_always_leaves_a_way_forward() {
        check(
            &["r5", "3 >"],
            &["check 0 1000 0 40", "pruned no", "check 0 1000 0 40"],
            &["prune", "evict min_free_bytes 0:r5"],
        );
        // Sealed files go before raw ones.
        check(
            &["r5", "3"],
            &["check 0 1000 0 5", "pruned no", "check 0 1000 0 5"],
            &["prune", "evict min_free_bytes 1:3"],
        );
        check(
            &["r5"],
            &["check 200 100 - 0"],
            &["evict max_spool_bytes 0:r5"],
        );
    }

    #[test]
    fn a_failed_write_pauses_until_the_disk_has_room() {
        check(
            &[""],
            &[
                "writefail",
                "writefail",
                "check 0 100 10 5",
                "writefail",
                "check 0 100 1 5",
            ],
            &["news", "resume", "news", "prune"],
        );
    }
}
