//! The live format check of one source: over its last [`WINDOW`] checked lines, how many match
//! its configured type and what the others look like, and whether that is below the source's
//! `format_warn_below` (a [`Change`] when it crosses, so the caller logs once per transition).
//!
//! Bounded memory: one byte per line in a ring (which class the line fell in) and one counter
//! per class, allocated once. A check is one [`Line::new`] and the configured family's
//! recognizer, and for a line that does not match, [`guess`] over every format: 0.1 to 1 µs,
//! and several µs for a line no recognizer accepts. That is more than the whole receive path
//! spends on a message, so a busy source is sampled: at most [`CHECKS_PER_TICK`] lines are
//! checked between two [`Window::tick`]s (the loop ticks every 250 ms), spread over the
//! tick's lines by a jittered stride taken from the previous tick's rate. A source below
//! 500 lines a second has every line checked; a busier one has 500 a second sampled, and its
//! window covers its last 20 s. A line not checked costs a counter and a compare. No
//! allocation per line, no I/O, no clock; the server calls [`Window::count`] with each line
//! as it is stored (`server/source.rs`), the snapshot reads the rest.

use super::{guess, Family, Line, KINDS};

/// Lines the rate is computed over: the "last 10,000 lines".
pub const WINDOW: usize = 10_000;

/// Lines checked at most per tick (the loop's housekeeping, every 250 ms): 500 a second.
pub const CHECKS_PER_TICK: u32 = 125;

/// Lines a window needs before it judges: a source that sent three odd lines since a reload
/// is not yet a mismatch.
pub const MIN_LINES: u32 = 100;

/// Points above `format_warn_below` the rate must climb back to before a warning clears, so a
/// source hovering at the threshold does not log a pair of lines per line received.
pub const HYSTERESIS: u32 = 2;

/// A ring slot's class: the line matched, or was guessed as family `f` (`f as u8 + 1`), or
/// looked like no format lc knows.
const MATCH: u8 = 0;
const UNKNOWN: u8 = KINDS.len() as u8 + 1;
const CLASSES: usize = KINDS.len() + 2;

/// What `lc status` says of a source's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not checked: lc has no recognizer for the type, or the source takes files (FTP).
    Unchecked,
    /// Fewer than [`MIN_LINES`] lines since the start or the last change of type.
    Learning,
    Ok,
    /// The match rate is below `format_warn_below`.
    Warning,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Unchecked => "unchecked",
            State::Learning => "learning",
            State::Ok => "ok",
            State::Warning => "warning",
        }
    }
}

/// A transition the caller logs: into the warning state, or out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Warn,
    Clear,
}

/// One source's sliding window.
pub struct Window {
    expected: Option<Family>,
    warn_below: u32,
    /// The class of each of the last `lines` lines; `next` is where the next one goes.
    ring: Box<[u8]>,
    next: usize,
    lines: u32,
    /// Lines per class (index: [`MATCH`], family + 1, [`UNKNOWN`]).
    counts: [u32; CLASSES],
    warning: bool,
    /// Lines offered since the last tick, checks left in this one, check one line in about
    /// `stride`, lines to let pass before the next check, and the jitter's state.
    seen: u32,
    budget: u32,
    stride: u32,
    skip: u32,
    rng: u32,
}

impl Window {
    /// The window of a source of type `format` (`None` when it is not checked: FTP sources,
    /// types without a recognizer), warning below `warn_below` percent.
    pub fn new(format: Option<&str>, warn_below: u8) -> Window {
        let expected = format.and_then(Family::of);
        Window {
            expected,
            warn_below: u32::from(warn_below.min(100)),
            ring: if expected.is_some() {
                vec![MATCH; WINDOW].into_boxed_slice()
            } else {
                Box::new([])
            },
            next: 0,
            lines: 0,
            counts: [0; CLASSES],
            warning: false,
            seen: 0,
            budget: CHECKS_PER_TICK,
            stride: 1,
            skip: 0,
            rng: 0x9e37_79b9,
        }
    }

    /// Offers one stored line (without its newline): checked, or let pass by the sampling.
    #[inline]
    pub fn count(&mut self, line: &[u8]) -> Option<Change> {
        self.expected?;
        self.seen = self.seen.saturating_add(1);
        if self.skip > 0 {
            self.skip -= 1;
            return None;
        }
        if self.budget == 0 {
            return None;
        }
        self.budget -= 1;
        if self.stride > 1 {
            // Uniform in 0..2*stride-1: one check per `stride` lines on average, and no
            // aliasing with a sender's own period (a heartbeat every 16th line).
            self.rng ^= self.rng << 13;
            self.rng ^= self.rng >> 17;
            self.rng ^= self.rng << 5;
            self.skip = self.rng % (2 * self.stride - 1);
        }
        self.check(line)
    }

    /// The loop's tick: a new budget, and the stride that spreads it over as many lines as
    /// the last tick saw.
    pub fn tick(&mut self) {
        self.stride = self.seen.div_ceil(CHECKS_PER_TICK).max(1);
        self.skip = self.skip.min(self.stride - 1);
        self.seen = 0;
        self.budget = CHECKS_PER_TICK;
    }

    /// One line in how many is checked (1: every line).
    pub fn stride(&self) -> u32 {
        self.stride
    }

    /// Checks one line and counts it in the window.
    fn check(&mut self, line: &[u8]) -> Option<Change> {
        let expected = self.expected?;
        let view = Line::new(line);
        let class = if expected.recognizes(&view) {
            MATCH
        } else {
            guess(&view).map_or(UNKNOWN, |f| f as u8 + 1)
        };
        self.push(class)
    }

    fn push(&mut self, class: u8) -> Option<Change> {
        if self.lines as usize == WINDOW {
            self.counts[self.ring[self.next] as usize] -= 1;
        } else {
            self.lines += 1;
        }
        self.ring[self.next] = class;
        self.counts[class as usize] += 1;
        self.next = if self.next + 1 == WINDOW {
            0
        } else {
            self.next + 1
        };
        if self.lines < MIN_LINES {
            return None;
        }
        let matched = self.counts[MATCH as usize] * 100;
        if !self.warning && matched < self.warn_below * self.lines {
            self.warning = true;
            Some(Change::Warn)
        } else if self.warning && matched >= (self.warn_below + HYSTERESIS).min(100) * self.lines {
            self.warning = false;
            Some(Change::Clear)
        } else {
            None
        }
    }

    pub fn state(&self) -> State {
        match self.expected {
            None => State::Unchecked,
            Some(_) if self.warning => State::Warning,
            Some(_) if self.lines < MIN_LINES => State::Learning,
            Some(_) => State::Ok,
        }
    }

    pub fn expected(&self) -> Option<Family> {
        self.expected
    }

    /// Lines in the window.
    pub fn lines(&self) -> u32 {
        self.lines
    }

    /// Percent of the window's lines that match (rounded down); `None` before any line.
    pub fn match_pct(&self) -> Option<u32> {
        (self.lines > 0).then(|| pct(self.counts[MATCH as usize], self.lines))
    }

    /// What most of the lines that do not match look like, and their percent of the window:
    /// a family, or `None` for lines no recognizer accepts. `None` when every line matches.
    pub fn looks_like(&self) -> Option<(Option<Family>, u32)> {
        let (class, n) = (1..CLASSES)
            .map(|c| (c, self.counts[c]))
            .filter(|(_, n)| *n > 0)
            .fold(None, |best: Option<(usize, u32)>, (c, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((c, n)),
            })?;
        let family = (class != UNKNOWN as usize).then(|| KINDS[class - 1].family);
        Some((family, pct(n, self.lines)))
    }

    /// Percent of the window's lines that look like no format lc knows.
    pub fn unknown_pct(&self) -> u32 {
        pct(self.counts[UNKNOWN as usize], self.lines)
    }

    /// The log line of a transition of source `name` of type `ty`.
    pub fn describe(&self, change: Change, name: &str, ty: &str) -> String {
        let rate = self.match_pct().unwrap_or(0);
        match change {
            Change::Warn => {
                let like = match self.looks_like() {
                    Some((Some(f), p)) => format!("{p} % of recent lines look like {}", f.name()),
                    Some((None, p)) => {
                        format!("{p} % of recent lines look like no format lc knows")
                    }
                    None => "recent lines do not look".into(),
                };
                format!(
                    "source {name}: {like}, not {ty} ({rate} % of the last {} lines checked match, format_warn_below = {}); `lc check {name}` shows examples",
                    self.lines, self.warn_below
                )
            }
            Change::Clear => format!(
                "source {name}: lines look like {ty} again ({rate} % of the last {} lines checked match)",
                self.lines
            ),
        }
    }
}

fn pct(n: u32, of: u32) -> u32 {
    if of == 0 {
        0
    } else {
        (u64::from(n) * 100 / u64::from(of)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASA: &[u8] = b"<166>Apr 09 2019 16:03:37: %ASA-6-302013: Built outbound TCP connection 1";
    const FORTI: &[u8] =
        b"date=2019-04-09 time=16:03:38 devname=FGT60E logid=0000000020 type=traffic";
    const JUNK: &[u8] = b"hello world";

    /// Feeds `runs` of (line, times) to a CISCO_ASA_SYSLOG window warning below `warn` and
    /// checks the changes it reported, in order, and the final state, rate and guess.
    #[track_caller]
    fn check(
        warn: u8,
        runs: &[(&[u8], usize)],
        changes: &[Change],
        state: State,
        rate: Option<u32>,
        like: Option<(Option<Family>, u32)>,
    ) {
        let mut w = Window::new(Some("CISCO_ASA_SYSLOG"), warn);
        let mut got = Vec::new();
        for (line, n) in runs {
            for _ in 0..*n {
                got.extend(w.check(line));
            }
        }
        assert_eq!(got, changes, "changes");
        assert_eq!(w.state(), state, "state");
        assert_eq!(w.match_pct(), rate, "rate");
        assert_eq!(w.looks_like(), like, "looks like");
        let total = w.counts.iter().sum::<u32>();
        assert_eq!(total, w.lines, "counts add up to the window");
    }

    #[test]
    fn table() {
        use Change::*;
        let forti = Some((Some(Family::FortiGate), 100));
        check(90, &[], &[], State::Learning, None, None);
        check(90, &[(ASA, 200)], &[], State::Ok, Some(100), None);
        // Too few lines to judge, then enough.
        check(90, &[(FORTI, 99)], &[], State::Learning, Some(0), forti);
        check(90, &[(FORTI, 100)], &[Warn], State::Warning, Some(0), forti);
        // Once per transition, however long it lasts.
        check(
            90,
            &[(FORTI, 5000)],
            &[Warn],
            State::Warning,
            Some(0),
            forti,
        );
        // Unknown lines are named as such.
        check(
            90,
            &[(JUNK, 150)],
            &[Warn],
            State::Warning,
            Some(0),
            Some((None, 100)),
        );
        // 90 % is enough at 90; 89 % is not.
        check(
            90,
            &[(FORTI, 10), (ASA, 90)],
            &[],
            State::Ok,
            Some(90),
            Some((Some(Family::FortiGate), 10)),
        );
        check(
            90,
            &[(FORTI, 11), (ASA, 89)],
            &[Warn],
            State::Warning,
            Some(89),
            Some((Some(Family::FortiGate), 11)),
        );
        // The window slides: FortiGate lines leave it as ASA lines come, and the warning
        // clears only at 92 % (hysteresis), once.
        check(
            90,
            &[(FORTI, 10_000), (ASA, 9_199)],
            &[Warn],
            State::Warning,
            Some(91),
            Some((Some(Family::FortiGate), 8)),
        );
        check(
            90,
            &[(FORTI, 10_000), (ASA, 9_200), (ASA, 5_000)],
            &[Warn, Clear],
            State::Ok,
            Some(100),
            None,
        );
        // And warns again when it falls.
        check(
            90,
            &[(FORTI, 200), (ASA, 10_000), (JUNK, 2_000)],
            &[Warn, Clear, Warn],
            State::Warning,
            Some(80),
            Some((None, 20)),
        );
        // 0 never warns; 100 warns at the first odd line and clears at none.
        check(0, &[(FORTI, 300)], &[], State::Ok, Some(0), forti);
        check(
            100,
            &[(ASA, 200), (JUNK, 1)],
            &[Warn],
            State::Warning,
            Some(99),
            Some((None, 0)),
        );
        check(
            100,
            &[(ASA, 200), (JUNK, 1), (ASA, 10_000)],
            &[Warn, Clear],
            State::Ok,
            Some(100),
            None,
        );
    }

    #[test]
    fn unchecked_types_count_nothing() {
        for w in [Window::new(Some("CISCO_FWSM"), 90), Window::new(None, 90)] {
            let mut w = w;
            assert_eq!(w.count(FORTI), None);
            assert_eq!(
                (w.state(), w.lines(), w.match_pct()),
                (State::Unchecked, 0, None)
            );
        }
    }

    #[test]
    fn the_log_line_names_the_look_alike() {
        let mut w = Window::new(Some("CISCO_ASA_SYSLOG"), 90);
        for _ in 0..97 {
            w.check(FORTI);
        }
        for _ in 0..3 {
            w.check(ASA);
        }
        assert_eq!(
            w.describe(Change::Warn, "asa-hq", "CISCO_ASA_SYSLOG"),
            "source asa-hq: 97 % of recent lines look like FortiGate, not CISCO_ASA_SYSLOG (3 % of the last 100 lines checked match, format_warn_below = 90); `lc check asa-hq` shows examples"
        );
    }

    /// Feeds `per_tick` lines a tick for `ticks` ticks; the lines checked in the last tick.
    fn sampled(w: &mut Window, per_tick: u32, ticks: u32) -> u32 {
        let mut checked = 0;
        for _ in 0..ticks {
            w.tick();
            let before = w.lines();
            for _ in 0..per_tick {
                w.count(ASA);
            }
            checked = w.lines() - before;
        }
        checked
    }

    #[test]
    fn a_busy_source_is_sampled_within_the_budget() {
        // Below the budget, every line.
        let mut w = Window::new(Some("CISCO_ASA_SYSLOG"), 90);
        assert_eq!(sampled(&mut w, CHECKS_PER_TICK, 3), CHECKS_PER_TICK);
        assert_eq!(w.stride(), 1);
        // A burst takes the budget from its first lines, then the stride spreads it.
        let mut w = Window::new(Some("CISCO_ASA_SYSLOG"), 90);
        assert_eq!(sampled(&mut w, 40_000, 1), CHECKS_PER_TICK);
        let steady = sampled(&mut w, 40_000, 20);
        assert_eq!(w.stride(), 320);
        assert!(
            steady <= CHECKS_PER_TICK && steady > CHECKS_PER_TICK / 2,
            "{steady}"
        );
        // Back to a trickle: every line again.
        assert_eq!(sampled(&mut w, 10, 2), 10);
        assert_eq!(w.stride(), 1);
    }
}
