//! Pacing of Cloud Discovery API calls: one sliding window for the whole host.
//!
//! The tenant allows 30 requests a minute across all its collectors; `api_calls_per_min` is
//! this host's share. The rule is: in **every** window of `WINDOW_MS`, at most
//! `api_calls_per_min` calls, whoever on the host makes them. A token bucket cannot keep that
//! (its burst comes on top of its rate, which is how 30 a minute became 37), so the shared
//! state is the list of the last calls' times itself, at most `api_calls_per_min` of them: a
//! call may go when fewer than that were made in the window before it. Every instance on the
//! host takes its turn from the same list, kept in a small file in run_dir under an exclusive
//! `flock`, so ten `lc@` units do not multiply the rate. A 429's Retry-After blocks every
//! instance until it passes.
//!
//! Times are `CLOCK_BOOTTIME` milliseconds, a clock no process can step backwards, shared by
//! every process of the host and running through suspend; run_dir is cleared at boot. What is
//! read from the file is clamped against now (`Window::parse`): a time in the future counts as
//! now, a block ends at most `MAX_BLOCK_MS` from now, garbage is absent, so neither a planted
//! file nor a file from an earlier boot stalls the host longer than one window or one capped
//! Retry-After. The arithmetic (`Window`) is pure, with `now` given; `Pacer` adds the file and
//! the waiting, and runs only on the delivery thread.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::careful;

/// The bucket is two short lines; anything longer is not a bucket.
const MAX_BUCKET_BYTES: u64 = 4096;

/// The window the budget holds over: the tenant's minute plus a second, so that two calls a
/// minute apart here cannot land in one minute at the tenant when the first was slower on the
/// way (at most `api_calls_per_min` calls in any 60 s, with room to spare).
pub const WINDOW_MS: u64 = 61_000;

/// The longest a 429 blocks the host: `api::parse_retry_after`'s cap. A block read from the
/// file that ends later is cut to this.
pub const MAX_BLOCK_MS: u64 = crate::deliver::api::MAX_RETRY_AFTER.as_millis() as u64;

/// The host's recent API calls and any block after a 429, as of one reading of the file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Window {
    /// Times of the last calls, oldest first, at most the budget of them, none after `now`.
    calls: Vec<u64>,
    /// No call before this time (0 = none).
    blocked_until_ms: u64,
}

impl Window {
    /// Reads the file's text at `now_ms` for a budget of `per_min` calls. Whatever does not
    /// parse is absent; times in the future count as now (a clock or a file from elsewhere
    /// cannot stall the host for longer than one window); calls that left the window are
    /// dropped, and only the newest `per_min` are kept; a block is cut to `MAX_BLOCK_MS`.
    pub fn parse(text: &str, now_ms: u64, per_min: u32) -> Window {
        let mut w = Window::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("blocked_until") => {
                    w.blocked_until_ms = words
                        .next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .unwrap_or(0)
                        .min(now_ms.saturating_add(MAX_BLOCK_MS));
                }
                Some("calls") => {
                    w.calls = words
                        .filter_map(|v| v.parse::<u64>().ok())
                        .map(|t| t.min(now_ms))
                        .collect();
                }
                _ => {}
            }
        }
        w.calls.sort_unstable();
        w.forget(now_ms, per_min);
        w
    }

    pub fn render(&self) -> String {
        let calls: Vec<String> = self.calls.iter().map(u64::to_string).collect();
        format!(
            "blocked_until {}\ncalls {}\n",
            self.blocked_until_ms,
            calls.join(" ")
        )
    }

    /// Drops the calls that no longer count at `now_ms`, and all but the newest `per_min`.
    fn forget(&mut self, now_ms: u64, per_min: u32) {
        self.calls.retain(|&t| t + WINDOW_MS > now_ms);
        let extra = self.calls.len().saturating_sub(per_min as usize);
        self.calls.drain(..extra);
    }

    /// Takes one call at `now_ms` within a budget of `per_min` per window; `Err(wait)` says how
    /// long until one may go.
    pub fn take(&mut self, now_ms: u64, per_min: u32) -> Result<(), Duration> {
        match self.wait(now_ms, per_min) {
            Some(wait) => Err(wait),
            None => {
                self.calls.push(now_ms);
                Ok(())
            }
        }
    }

    /// How long until a call may go at `now_ms` (None: now), taking nothing.
    pub fn wait(&mut self, now_ms: u64, per_min: u32) -> Option<Duration> {
        if now_ms < self.blocked_until_ms {
            return Some(Duration::from_millis(self.blocked_until_ms - now_ms));
        }
        // Times are clamped to `now` when read; within one reading nothing goes back.
        if let Some(&last) = self.calls.last() {
            debug_assert!(last <= now_ms);
        }
        self.forget(now_ms, per_min);
        if self.calls.len() < per_min.max(1) as usize {
            None
        } else {
            // The oldest call of a full window leaves it first.
            let wait = self.calls[0] + WINDOW_MS - now_ms;
            Some(Duration::from_millis(wait.max(1)))
        }
    }

    /// After a 429: no call for `d` (at most `MAX_BLOCK_MS`) from `now_ms`.
    pub fn block(&mut self, now_ms: u64, d: Duration) {
        let until = now_ms.saturating_add((d.as_millis() as u64).min(MAX_BLOCK_MS));
        self.blocked_until_ms = self.blocked_until_ms.max(until);
    }
}

pub struct Pacer {
    path: PathBuf,
    per_min: u32,
}

impl Pacer {
    pub fn new(run_dir: &Path, per_min: u32) -> Pacer {
        Pacer {
            path: run_dir.join("api-bucket"),
            per_min,
        }
    }

    /// Blocks until this host may make one more API call; returns how long it waited (zero
    /// when the budget had room at once).
    pub fn acquire(&self) -> io::Result<Duration> {
        let start = std::time::Instant::now();
        let mut slept = false;
        loop {
            match self.take_at(now_ms())? {
                Ok(()) if slept => return Ok(start.elapsed()),
                Ok(()) => return Ok(Duration::ZERO),
                Err(wait) => {
                    slept = true;
                    std::thread::sleep(wait.min(Duration::from_secs(5)));
                }
            }
        }
    }

    /// How long until this host may make a call (None: now), without making one: so that a
    /// batch is not chosen long before it can leave (`deliver::worker`).
    pub fn wait(&self) -> io::Result<Option<Duration>> {
        self.wait_at(now_ms())
    }

    pub fn wait_at(&self, now_ms: u64) -> io::Result<Option<Duration>> {
        self.with_window(now_ms, |w| w.wait(now_ms, self.per_min))
    }

    /// One try at `now_ms`: `Ok(Err(wait))` when the window is full or the host is blocked.
    pub fn take_at(&self, now_ms: u64) -> io::Result<Result<(), Duration>> {
        self.with_window(now_ms, |w| w.take(now_ms, self.per_min))
    }

    /// After a 429: no instance on this host calls the API for `d`.
    pub fn block_for(&self, d: Duration) -> io::Result<()> {
        self.block_at(now_ms(), d)
    }

    fn block_at(&self, now_ms: u64, d: Duration) -> io::Result<()> {
        self.with_window(now_ms, |w| w.block(now_ms, d))
    }

    fn with_window<T>(&self, now_ms: u64, f: impl FnOnce(&mut Window) -> T) -> io::Result<T> {
        let annotate =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(annotate)?;
        }
        let file = self.open()?;
        let mut lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| annotate(e.into()))?;
        let file: &mut File = &mut lock;
        let text = careful::read_limited(&self.path, file, MAX_BUCKET_BYTES)?;
        let mut window = Window::parse(&String::from_utf8_lossy(&text), now_ms, self.per_min);
        let out = f(&mut window);
        file.seek(SeekFrom::Start(0)).map_err(annotate)?;
        file.set_len(0).map_err(annotate)?;
        file.write_all(window.render().as_bytes())
            .map_err(annotate)?;
        Ok(out)
    }

    /// Opens the bucket file. run_dir is the service's folder, so whatever is there may have
    /// been planted for a root `lc connect` to trip on: only a regular file with one link, owned
    /// by root or the folder's owner, is used (`careful`); anything else is refused and left
    /// as it is. A missing bucket is created, and only that new file is given away.
    fn open(&self) -> io::Result<File> {
        let owners = careful::Owners::of_parent(&self.path)?;
        match careful::open_rw(&self.path, owners, MAX_BUCKET_BYTES) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                match careful::create_new(&self.path, 0o644) {
                    Ok(file) => {
                        share_with_folder_owner(&file, &self.path);
                        Ok(file)
                    }
                    // Another instance made it first.
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                        careful::open_rw(&self.path, owners, MAX_BUCKET_BYTES)
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        }
    }
}

/// Milliseconds of `CLOCK_BOOTTIME`: the same for every process of the host, never stepped.
fn now_ms() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000)
        .unwrap_or(0)
}

/// The bucket is shared by every instance, which run as the service user: when root makes it
/// (`lc connect` checking a token), it goes to the run folder's owner, or the service could no
/// longer take a token from it. `file` is always one this process just created.
fn share_with_folder_owner(file: &File, path: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let (Some(dir), Ok(meta)) = (path.parent(), file.metadata()) else {
        return;
    };
    let Ok(dir_meta) = std::fs::metadata(dir) else {
        return;
    };
    if (meta.uid(), meta.gid()) != (dir_meta.uid(), dir_meta.gid()) {
        use std::os::fd::AsRawFd;
        let _ = nix::unistd::fchown(
            file.as_raw_fd(),
            Some(nix::unistd::Uid::from_raw(dir_meta.uid())),
            Some(nix::unistd::Gid::from_raw(dir_meta.gid())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most calls in any 60 s window `[t, t + 60 s)` of sorted `calls`.
    fn busiest_minute(calls: &[u64]) -> usize {
        (0..calls.len())
            .map(|i| {
                calls[i..]
                    .iter()
                    .take_while(|&&c| c < calls[i] + 60_000)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// Tries at the given times with a budget of `per_min`: `Ok` or `Err(wait in ms)`.
    #[track_caller]
    fn check(per_min: u32, tries: &[(u64, Result<(), u64>)]) {
        let mut w = Window::default();
        for &(now, expected) in tries {
            // Through the file's text each time, as instances share it.
            w = Window::parse(&w.render(), now, per_min);
            let waits = w.wait(now, per_min).map(|d| d.as_millis() as u64);
            let got = w.take(now, per_min).map_err(|d| d.as_millis() as u64);
            assert_eq!(got, expected, "try at {now} ms");
            assert_eq!(waits, expected.err(), "wait at {now} ms");
        }
    }

    #[test]
    fn calls_fit_the_budget_of_every_window() {
        check(
            1,
            &[
                (0, Ok(())),
                (1, Err(60_999)),
                (60_999, Err(1)),
                (61_000, Ok(())),
            ],
        );
        // Regression (issue 12, bug 5): 30 a minute let 7 more through as a burst.
        let mut thirty: Vec<(u64, Result<(), u64>)> = (0..30).map(|i| (i * 100, Ok(()))).collect();
        thirty.push((3_000, Err(58_000)));
        thirty.push((60_999, Err(1)));
        thirty.push((61_000, Ok(())));
        thirty.push((61_001, Err(99)));
        thirty.push((61_100, Ok(())));
        check(30, &thirty);
        // Spread calls: each leaves the window 61 s after it was made.
        check(
            3,
            &[
                (0, Ok(())),
                (20_000, Ok(())),
                (40_000, Ok(())),
                (50_000, Err(11_000)),
                (61_000, Ok(())),
                (62_000, Err(19_000)),
                (81_000, Ok(())),
            ],
        );
    }

    /// A small xorshift, so the property test needs no dependency and replays from its seed.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    #[test]
    fn no_sixty_seconds_ever_hold_more_than_the_budget_whatever_the_arrivals() {
        for seed in 1..=200u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let per_min = 1 + rng.below(30) as u32;
            let instances = 1 + rng.below(10) as usize;
            let mut file = String::new();
            // Each instance tries at its own random times, or as soon as told when greedy.
            let mut next: Vec<u64> = (0..instances).map(|_| rng.below(5_000)).collect();
            let greedy = rng.below(2) == 0;
            let mut calls = Vec::new();
            loop {
                let (i, &now) = next.iter().enumerate().min_by_key(|(_, t)| **t).unwrap();
                if now > 900_000 {
                    break;
                }
                let mut w = Window::parse(&file, now, per_min);
                let got = w.take(now, per_min);
                file = w.render();
                next[i] = match got {
                    Ok(()) => {
                        calls.push(now);
                        now + if greedy { 0 } else { rng.below(20_000) }
                    }
                    Err(wait) => now + wait.as_millis() as u64 + rng.below(3) * rng.below(500),
                };
            }
            let busiest = busiest_minute(&calls);
            assert!(
                busiest <= per_min as usize,
                "seed {seed}: {busiest} calls in one minute for a budget of {per_min}"
            );
            if greedy {
                // And the budget is used: every window is filled.
                assert!(
                    calls.len() as u64 >= u64::from(per_min) * (900_000 / WINDOW_MS),
                    "seed {seed}: only {} calls in 15 minutes at {per_min} a minute",
                    calls.len()
                );
            }
        }
    }

    #[test]
    fn what_the_file_says_is_clamped_to_now() {
        let per_min = 3;
        let now = 1_000_000;
        #[track_caller]
        fn wait(text: &str, now: u64, per_min: u32) -> Result<(), u64> {
            Window::parse(text, now, per_min)
                .take(now, per_min)
                .map_err(|d| d.as_millis() as u64)
        }
        // Regression (issue 12, bug 7): garbage, -inf, NaN and the old token-bucket line are
        // absent; a huge or far-future block ends within the Retry-After cap.
        for text in [
            "",
            "junk",
            "-inf 0 0",
            "5.0000 1000 18446744073709551615",
            "blocked_until -inf\ncalls NaN inf -1\n",
            "blocked_until 0\ncalls\n",
        ] {
            assert_eq!(wait(text, now, per_min), Ok(()), "{text:?}");
        }
        assert_eq!(
            wait("blocked_until 18446744073709551615\n", now, per_min),
            Err(MAX_BLOCK_MS)
        );
        // Calls stamped in the future (a clock that went back, a planted file) count as made
        // now: the wait is one window at most, not until the clock catches up.
        let future = format!("calls {0} {0} {0}\n", u64::MAX - 1);
        assert_eq!(wait(&future, now, per_min), Err(WINDOW_MS));
        // Read once, they are written back as now, and age from there.
        let rewritten = Window::parse(&future, now, per_min).render();
        assert_eq!(wait(&rewritten, now + WINDOW_MS - 1, per_min), Err(1));
        assert_eq!(wait(&rewritten, now + WINDOW_MS, per_min), Ok(()));
        // A file holding more calls than the budget keeps only the newest.
        let many = format!("calls {}\n", vec!["999999"; 1000].join(" "));
        assert_eq!(Window::parse(&many, now, per_min).calls.len(), 3);
        assert!(Window::parse(&many, now, per_min).render().len() < 100);
    }

    #[test]
    fn retry_after_blocks_everyone_and_text_round_trips() {
        let mut w = Window::default();
        w.take(1_000, 20).unwrap();
        w.block(2_000, Duration::from_secs(3));
        assert_eq!(w.take(2_500, 20), Err(Duration::from_millis(2_500)));
        assert_eq!(Window::parse(&w.render(), 2_500, 20), w);
        assert_eq!(w.take(5_000, 20), Ok(()));
        w.block(5_000, Duration::from_secs(86_400));
        assert_eq!(w.blocked_until_ms, 5_000 + MAX_BLOCK_MS);
    }

    fn temp_dir(tag: &str) -> PathBuf {
        crate::testing::fresh_dir(&format!("pacer-{tag}"))
    }

    /// Regression (issue 12, bug 14): this asserted root and failed for everyone else.
    #[test]
    fn a_new_bucket_belongs_to_the_run_folders_owner() {
        use std::os::unix::fs::MetadataExt;
        let dir = temp_dir("own");
        // Root gives a bucket it makes to the folder's owner (the service); anyone else owns
        // the folder it runs in and makes the bucket as itself.
        if nix::unistd::geteuid().is_root() {
            nix::unistd::chown(
                &dir,
                Some(nix::unistd::Uid::from_raw(65534)),
                Some(nix::unistd::Gid::from_raw(65534)),
            )
            .unwrap();
        }
        Pacer::new(&dir, 20).acquire().unwrap();
        let meta = std::fs::metadata(dir.join("api-bucket")).unwrap();
        let folder = std::fs::metadata(&dir).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (folder.uid(), folder.gid()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_window_is_shared_through_its_file() {
        let dir = temp_dir("shared");
        let a = Pacer::new(&dir, 2);
        let b = Pacer::new(&dir, 2);
        assert_eq!(a.take_at(10_000).unwrap(), Ok(()));
        // Asking how long to wait takes nothing.
        assert_eq!(b.wait_at(10_001).unwrap(), None);
        assert_eq!(b.take_at(10_001).unwrap(), Ok(()));
        let wait = Duration::from_millis(WINDOW_MS - 2);
        assert_eq!(a.wait_at(10_002).unwrap(), Some(wait));
        assert_eq!(a.take_at(10_002).unwrap(), Err(wait));
        b.block_at(10_003, Duration::from_secs(120)).unwrap();
        assert_eq!(
            a.take_at(71_000).unwrap(),
            Err(Duration::from_millis(130_003 - 71_000))
        );
        // The wall clock plays no part: a later boot-time reading is all that counts.
        assert_eq!(a.take_at(130_003).unwrap(), Ok(()));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
