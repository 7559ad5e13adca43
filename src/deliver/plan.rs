//! The upload plan of one batch: which step comes next, and what an outcome makes of it.
//!
//! A batch (one segment's sealed parts, or consecutive segments of a backlog: `batch.rs`)
//! goes through: check the files (an intact gzip or zip, else its segment goes to quarantine),
//! then either place them in the outbox, or for the API per upload unit: `upload_url`, PUT,
//! `done_upload`; then the move to backup. "Delivered, backup pending" (`Stage::Acked`) is a
//! state of its own for every file of the batch, so a move that fails is retried as a move and
//! never uploads anything again. A unit is every remaining file on Azure (Put Block per file,
//! one blob) and consecutive files within one PUT's limit elsewhere (`batch::unit_end`).
//!
//! Pure: state × outcome → state, state → next action. `worker.rs` performs the actions.

use std::ops::Range;
use std::time::{Duration, Instant};

use super::api::{Failure, Provider, UploadTarget};
use super::batch;

/// An upload URL is reused for a retry while younger than this (SAS URLs live longer).
pub const SAS_REUSE: Duration = Duration::from_secs(10 * 60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Nothing checked yet.
    New,
    /// The files are intact; the parts before `at` are acknowledged by `done_upload`.
    Ready { at: usize },
    /// `upload_url` answered for the unit starting at part `at`.
    HaveUrl {
        at: usize,
        target: UploadTarget,
        got_at: Instant,
    },
    /// The unit starting at `at` is stored; `done_upload` is next.
    Stored { at: usize, target: UploadTarget },
    /// Delivered (every `done_upload` succeeded, or the outbox links are in place); only the
    /// move to backup is left.
    Acked,
    /// In backup: done.
    Moved,
    /// File `part` is damaged: its segment goes to quarantine, never to the tenant.
    Corrupt { part: usize, reason: String },
    /// In quarantine: done (the rest of the batch waits for the next job).
    Quarantined { part: usize, reason: String },
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Check every part (gzip trailer and CRC, zip directory); learn the bytes.
    Check,
    /// Link every part into the outbox folder.
    Place,
    GetUrl {
        part: usize,
    },
    Put {
        parts: Range<usize>,
        target: UploadTarget,
    },
    DoneUpload {
        url: String,
    },
    Move,
    /// Move the segment of file `part` to quarantine.
    Quarantine {
        part: usize,
    },
    /// Nothing left: report `Delivered`.
    ReportDelivered,
    /// Nothing left: report the quarantine of the segment of file `part`.
    ReportQuarantined {
        part: usize,
        reason: String,
    },
}

/// How an action went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// `Check` found the files intact, of these sizes.
    Checked(Vec<u64>),
    /// `Check` found file `.0` damaged.
    Damaged(usize, String),
    /// `GetUrl` answered.
    Url(UploadTarget),
    Failed(Failure),
}

/// How far a failed attempt got: what its retry must respect (`Plan::kept`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// Nothing is stored: the batch may be chosen again, larger.
    Nothing,
    /// Part of it is stored (or a file was found damaged): the retry sends the same files.
    Stored,
    /// Every `done_upload` succeeded (or every outbox link is in place); only the move to
    /// backup is left, retried as a move with the same files.
    Acked,
}

/// One batch's way to its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Files in the batch.
    pub parts: usize,
    /// `dir:` delivery: the parts are placed, not uploaded.
    pub outbox: bool,
    pub stage: Stage,
    /// Each file's size, as the check found it.
    pub sizes: Vec<u64>,
}

impl Plan {
    pub fn new(parts: usize, outbox: bool) -> Plan {
        Plan {
            parts,
            outbox,
            stage: Stage::New,
            sizes: Vec::new(),
        }
    }

    /// What of the batch the tenant (or the outbox) already has, or whether a file was found
    /// damaged: from `Stored` on, the next attempt must be for the same files (a batch is the
    /// unit of retry); before that, the loop may choose the batch again (a backlog that grew
    /// meanwhile leaves as one upload).
    pub fn kept(&self) -> Kept {
        match self.stage {
            Stage::New | Stage::Ready { at: 0 } | Stage::HaveUrl { at: 0, .. } => Kept::Nothing,
            Stage::Acked | Stage::Moved => Kept::Acked,
            _ => Kept::Stored,
        }
    }

    /// Whether nothing of the batch has cost an API call yet: its next call is its first
    /// `upload_url`. Then a job that would wait for the API budget goes back to the loop,
    /// which chooses the batch again once the budget allows, with what sealed meanwhile.
    pub fn unstarted(&self) -> bool {
        !self.outbox && matches!(self.stage, Stage::New | Stage::Ready { at: 0 })
    }

    /// What the check counted, reported with `Delivered`.
    pub fn bytes(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// The next action at `now`.
    pub fn next(&self, now: Instant) -> Action {
        match &self.stage {
            Stage::New => Action::Check,
            Stage::Ready { .. } if self.outbox => Action::Place,
            Stage::Ready { at } => Action::GetUrl { part: *at },
            Stage::HaveUrl { at, got_at, .. } if now.duration_since(*got_at) >= SAS_REUSE => {
                Action::GetUrl { part: *at }
            }
            Stage::HaveUrl { at, target, .. } => Action::Put {
                parts: *at..self.unit_end(*at, target.provider),
                target: target.clone(),
            },
            Stage::Stored { target, .. } => Action::DoneUpload {
                url: target.url.clone(),
            },
            Stage::Acked => Action::Move,
            Stage::Moved => Action::ReportDelivered,
            Stage::Corrupt { part, .. } => Action::Quarantine { part: *part },
            Stage::Quarantined { part, reason } => Action::ReportQuarantined {
                part: *part,
                reason: reason.clone(),
            },
        }
    }

    fn unit_end(&self, at: usize, provider: Provider) -> usize {
        if self.sizes.len() == self.parts {
            batch::unit_end(&self.sizes, at, provider)
        } else {
            // Sizes unknown (never after a check): one file per unit.
            (at + 1).min(self.parts)
        }
    }

    /// Applies how `action` went. A failure ends the attempt: it is returned, to be reported,
    /// and the plan stays where the next attempt must start.
    pub fn apply(&mut self, action: &Action, outcome: Outcome, now: Instant) -> Option<Failure> {
        let stage = std::mem::replace(&mut self.stage, Stage::New);
        let (next, failure) = match (stage, action, outcome) {
            (Stage::New, Action::Check, Outcome::Checked(sizes)) => {
                self.sizes = sizes;
                (Stage::Ready { at: 0 }, None)
            }
            (Stage::New, Action::Check, Outcome::Damaged(part, reason)) => {
                (Stage::Corrupt { part, reason }, None)
            }
            (Stage::Ready { .. }, Action::Place, Outcome::Ok) => (Stage::Acked, None),
            (
                Stage::Ready { at } | Stage::HaveUrl { at, .. },
                Action::GetUrl { .. },
                Outcome::Url(target),
            ) => (
                Stage::HaveUrl {
                    at,
                    target,
                    got_at: now,
                },
                None,
            ),
            (Stage::HaveUrl { at, target, .. }, Action::Put { .. }, Outcome::Ok) => {
                (Stage::Stored { at, target }, None)
            }
            // The next attempt asks for a fresh URL: this one may have expired.
            (Stage::HaveUrl { at, .. }, Action::Put { .. }, Outcome::Failed(f)) => {
                (Stage::Ready { at }, Some(f))
            }
            (Stage::Stored { at, target }, Action::DoneUpload { .. }, Outcome::Ok) => {
                let end = self.unit_end(at, target.provider);
                if end >= self.parts {
                    (Stage::Acked, None)
                } else {
                    (Stage::Ready { at: end }, None)
                }
            }
            // The tenant refused this upload for good (or forgot it): upload it again later.
            (
                Stage::Stored { at, .. },
                Action::DoneUpload { .. },
                Outcome::Failed(f @ Failure::Permanent { .. }),
            ) => (Stage::Ready { at }, Some(f)),
            (Stage::Acked, Action::Move, Outcome::Ok) => (Stage::Moved, None),
            (Stage::Corrupt { part, reason }, Action::Quarantine { .. }, Outcome::Ok) => {
                (Stage::Quarantined { part, reason }, None)
            }
            // Any other failure: the same step again next time (a transient done_upload
            // failure keeps the stored upload; a failed move keeps the acknowledgement).
            (stage, _, Outcome::Failed(f)) => (stage, Some(f)),
            (stage, action, outcome) => {
                debug_assert!(false, "{action:?} gave {outcome:?} in {stage:?}");
                (stage, None)
            }
        };
        self.stage = next;
        failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files of 40 MiB: on AWS, one per PUT.
    const SIZE: u64 = 40 << 20;

    fn target(provider: Provider) -> UploadTarget {
        UploadTarget {
            url: "https://blob/x?sig".into(),
            provider,
        }
    }

    fn transient() -> Failure {
        Failure::Transient {
            reason: "down".into(),
            after: None,
        }
    }

    fn permanent() -> Failure {
        Failure::Permanent {
            reason: "token".into(),
        }
    }

    /// One row: a plan of `parts` in `stage` does `action` (checked against `next`), which
    /// gives `outcome`; then the plan is in `expected` and the attempt ends with `failure`.
    #[track_caller]
    fn check(
        parts: usize,
        outbox: bool,
        stage: Stage,
        action: Action,
        outcome: Outcome,
        expected: Stage,
        failure: Option<Failure>,
    ) {
        let now = Instant::now();
        let mut plan = Plan {
            parts,
            outbox,
            stage,
            sizes: vec![SIZE; parts],
        };
        assert_eq!(plan.next(now), action, "next action");
        let got = plan.apply(&action, outcome, now);
        // `got_at` is `now`: compare it through a copy of the expected stage.
        assert_eq!(plan.stage, expected, "stage after");
        assert_eq!(got, failure, "failure reported");
    }

    #[test]
    fn table() {
        use Action as A;
        use Outcome as O;
        use Stage as S;
        let az = target(Provider::Azure);
        let aws = target(Provider::Aws);
        let t0 = Instant::now();
        let have = |at, t: &UploadTarget| S::HaveUrl {
            at,
            target: t.clone(),
            got_at: t0,
        };
        let stored = |at, t: &UploadTarget| S::Stored {
            at,
            target: t.clone(),
        };
        let put = |r: Range<usize>, t: &UploadTarget| A::Put {
            parts: r,
            target: t.clone(),
        };
        let done = A::DoneUpload {
            url: az.url.clone(),
        };

        // The check: intact, damaged, or unreadable (retried).
        check(
            1,
            false,
            S::New,
            A::Check,
            O::Checked(vec![9]),
            S::Ready { at: 0 },
            None,
        );
        check(
            1,
            false,
            S::New,
            A::Check,
            O::Damaged(0, "crc".into()),
            S::Corrupt {
                part: 0,
                reason: "crc".into(),
            },
            None,
        );
        check(
            1,
            false,
            S::New,
            A::Check,
            O::Failed(transient()),
            S::New,
            Some(transient()),
        );
        check(
            1,
            false,
            S::Corrupt {
                part: 0,
                reason: "crc".into(),
            },
            A::Quarantine { part: 0 },
            O::Ok,
            S::Quarantined {
                part: 0,
                reason: "crc".into(),
            },
            None,
        );
        check(
            1,
            false,
            S::Corrupt {
                part: 0,
                reason: "crc".into(),
            },
            A::Quarantine { part: 0 },
            O::Failed(transient()),
            S::Corrupt {
                part: 0,
                reason: "crc".into(),
            },
            Some(transient()),
        );

        // Outbox: place, then move.
        check(2, true, S::Ready { at: 0 }, A::Place, O::Ok, S::Acked, None);
        check(
            2,
            true,
            S::Ready { at: 0 },
            A::Place,
            O::Failed(transient()),
            S::Ready { at: 0 },
            Some(transient()),
        );

        // API, Azure: one unit of every part.
        check(
            3,
            false,
            S::Ready { at: 0 },
            A::GetUrl { part: 0 },
            O::Failed(transient()),
            S::Ready { at: 0 },
            Some(transient()),
        );
        check(
            3,
            false,
            have(0, &az),
            put(0..3, &az),
            O::Ok,
            stored(0, &az),
            None,
        );
        check(
            3,
            false,
            have(0, &az),
            put(0..3, &az),
            O::Failed(transient()),
            S::Ready { at: 0 },
            Some(transient()),
        );
        check(
            3,
            false,
            stored(0, &az),
            done.clone(),
            O::Ok,
            S::Acked,
            None,
        );
        // A transient done_upload failure keeps the stored upload: no second PUT.
        check(
            3,
            false,
            stored(0, &az),
            done.clone(),
            O::Failed(transient()),
            stored(0, &az),
            Some(transient()),
        );
        check(
            3,
            false,
            stored(0, &az),
            done.clone(),
            O::Failed(permanent()),
            S::Ready { at: 0 },
            Some(permanent()),
        );

        // API, AWS: a unit per part.
        check(
            2,
            false,
            have(0, &aws),
            put(0..1, &aws),
            O::Ok,
            stored(0, &aws),
            None,
        );
        check(
            2,
            false,
            stored(0, &aws),
            done.clone(),
            O::Ok,
            S::Ready { at: 1 },
            None,
        );
        check(
            2,
            false,
            S::Ready { at: 1 },
            A::GetUrl { part: 1 },
            O::Failed(transient()),
            S::Ready { at: 1 },
            Some(transient()),
        );
        check(
            2,
            false,
            have(1, &aws),
            put(1..2, &aws),
            O::Ok,
            stored(1, &aws),
            None,
        );
        check(
            2,
            false,
            stored(1, &aws),
            done.clone(),
            O::Ok,
            S::Acked,
            None,
        );

        // Bug 3: delivered, backup pending. A failed move is retried as a move, never as an
        // upload; then delivery is reported.
        check(
            1,
            false,
            S::Acked,
            A::Move,
            O::Failed(transient()),
            S::Acked,
            Some(transient()),
        );
        check(1, false, S::Acked, A::Move, O::Ok, S::Moved, None);
        let plan = Plan {
            parts: 1,
            outbox: false,
            stage: S::Moved,
            sizes: vec![SIZE],
        };
        assert_eq!(plan.next(t0), A::ReportDelivered);
        let plan = Plan {
            parts: 1,
            outbox: false,
            stage: S::Quarantined {
                part: 0,
                reason: "crc".into(),
            },
            sizes: vec![SIZE],
        };
        assert_eq!(
            plan.next(t0),
            A::ReportQuarantined {
                part: 0,
                reason: "crc".into()
            }
        );
    }

    #[test]
    fn a_url_is_reused_while_fresh_and_asked_again_when_old() {
        let t0 = Instant::now();
        let mut plan = Plan::new(1, false);
        plan.apply(&Action::Check, Outcome::Checked(vec![5]), t0);
        assert_eq!(plan.bytes(), 5);
        assert_eq!(plan.next(t0), Action::GetUrl { part: 0 });
        let t = target(Provider::Azure);
        plan.apply(&Action::GetUrl { part: 0 }, Outcome::Url(t.clone()), t0);
        let put = Action::Put {
            parts: 0..1,
            target: t.clone(),
        };
        assert_eq!(plan.next(t0 + SAS_REUSE / 2), put);
        assert_eq!(plan.next(t0 + SAS_REUSE), Action::GetUrl { part: 0 });
        let t2 = UploadTarget {
            url: "https://blob/y".into(),
            ..t
        };
        plan.apply(
            &Action::GetUrl { part: 0 },
            Outcome::Url(t2.clone()),
            t0 + SAS_REUSE,
        );
        assert_eq!(
            plan.next(t0 + SAS_REUSE),
            Action::Put {
                parts: 0..1,
                target: t2
            }
        );
    }

    /// A batch of three small files: one unit on Azure (blocks) and on AWS (one PUT of the
    /// concatenation); one done_upload acknowledges every file; a damaged file quarantines
    /// only itself.
    #[test]
    fn a_batch_is_one_upload_and_its_files_are_acked_together() {
        let t0 = Instant::now();
        for provider in [Provider::Azure, Provider::Aws] {
            let t = target(provider);
            let mut plan = Plan::new(3, false);
            assert!(plan.unstarted());
            assert!(
                !Plan::new(3, true).unstarted(),
                "an outbox takes no API call"
            );
            plan.apply(&Action::Check, Outcome::Checked(vec![10, 20, 30]), t0);
            assert_eq!(plan.bytes(), 60);
            assert!(plan.unstarted());
            plan.apply(&Action::GetUrl { part: 0 }, Outcome::Url(t.clone()), t0);
            let put = Action::Put {
                parts: 0..3,
                target: t.clone(),
            };
            assert_eq!(plan.next(t0), put, "{provider:?}");
            // A failed PUT retries the whole batch, from a fresh URL; nothing of it is spent
            // but that URL, so the batch may still be chosen again.
            assert!(plan.apply(&put, Outcome::Failed(transient()), t0).is_some());
            assert_eq!(plan.next(t0), Action::GetUrl { part: 0 });
            assert!(plan.unstarted() && plan.kept() == Kept::Nothing);
            plan.apply(&Action::GetUrl { part: 0 }, Outcome::Url(t.clone()), t0);
            assert!(!plan.unstarted(), "a URL in hand is a call spent");
            plan.apply(&put, Outcome::Ok, t0);
            assert!(!plan.unstarted() && plan.kept() == Kept::Stored);
            let done = Action::DoneUpload { url: t.url.clone() };
            assert_eq!(plan.next(t0), done);
            plan.apply(&done, Outcome::Ok, t0);
            assert_eq!(plan.stage, Stage::Acked, "{provider:?}");
        }
        let mut plan = Plan::new(3, false);
        plan.apply(&Action::Check, Outcome::Damaged(1, "crc".into()), t0);
        assert_eq!(plan.next(t0), Action::Quarantine { part: 1 });
        plan.apply(&Action::Quarantine { part: 1 }, Outcome::Ok, t0);
        assert_eq!(
            plan.next(t0),
            Action::ReportQuarantined {
                part: 1,
                reason: "crc".into()
            }
        );
    }
}
