//! Pacing of Cloud Discovery API calls: one token bucket for the whole host.
//!
//! The tenant allows 30 requests a minute across all its collectors; `api_calls_per_min` is
//! this host's share. Every instance on the host takes tokens from the same bucket, kept in a
//! small file in run_dir under an exclusive `flock`, so ten `lc@` units do not multiply the
//! rate. A 429's Retry-After blocks the bucket for everyone. The arithmetic (`Bucket`) is pure;
//! `Pacer` adds the file and the waiting, and runs only on the delivery thread.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};

use crate::careful;

/// The bucket is one short line; anything longer is not a bucket.
const MAX_BUCKET_BYTES: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub tokens: f64,
    pub updated_ms: u64,
    pub blocked_until_ms: u64,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(capacity: f64, now_ms: u64) -> Bucket {
        Bucket {
            tokens: capacity,
            updated_ms: now_ms,
            blocked_until_ms: 0,
        }
    }

    pub fn parse(s: &str) -> Option<Bucket> {
        let mut it = s.split_whitespace();
        Some(Bucket {
            tokens: it.next()?.parse().ok()?,
            updated_ms: it.next()?.parse().ok()?,
            blocked_until_ms: it.next()?.parse().ok()?,
        })
    }

    pub fn render(&self) -> String {
        format!(
            "{:.4} {} {}\n",
            self.tokens, self.updated_ms, self.blocked_until_ms
        )
    }

    /// Takes one token at `now_ms`, refilling `per_min` tokens a minute up to `capacity`.
    /// `Err(wait)` says how long until one is there.
    pub fn take(&mut self, now_ms: u64, per_min: f64, capacity: f64) -> Result<(), Duration> {
        if now_ms < self.blocked_until_ms {
            return Err(Duration::from_millis(self.blocked_until_ms - now_ms));
        }
        // A clock that went backwards refills nothing rather than panicking.
        let elapsed = now_ms.saturating_sub(self.updated_ms) as f64;
        self.tokens = (self.tokens + elapsed * per_min / 60_000.0).min(capacity);
        self.updated_ms = now_ms.max(self.updated_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let ms = ((1.0 - self.tokens) * 60_000.0 / per_min).ceil() as u64;
            Err(Duration::from_millis(ms.max(1)))
        }
    }
}

/// Burst size: with `per_min` refill, at most `capacity + per_min` calls fit in any minute,
/// so the burst is kept to a quarter of the rate.
pub fn capacity(per_min: u32) -> f64 {
    (f64::from(per_min) / 4.0).floor().max(1.0)
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

    /// Blocks until this host may make one more API call.
    pub fn acquire(&self) -> io::Result<()> {
        loop {
            match self.with_bucket(|b, now| {
                b.take(now, f64::from(self.per_min), capacity(self.per_min))
            })? {
                Ok(()) => return Ok(()),
                Err(wait) => std::thread::sleep(wait.min(Duration::from_secs(5))),
            }
        }
    }

    /// After a 429: no instance on this host calls the API for `d`.
    pub fn block_for(&self, d: Duration) -> io::Result<()> {
        self.with_bucket(|b, now| {
            b.blocked_until_ms = b.blocked_until_ms.max(now + d.as_millis() as u64);
            b.tokens = 0.0;
        })
    }

    fn with_bucket<T>(&self, f: impl FnOnce(&mut Bucket, u64) -> T) -> io::Result<T> {
        let annotate =
            |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(annotate)?;
        }
        let file = self.open()?;
        let mut lock =
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| annotate(e.into()))?;
        let now = now_ms();
        let file: &mut File = &mut lock;
        let text = careful::read_limited(&self.path, file, MAX_BUCKET_BYTES)?;
        let mut bucket = Bucket::parse(&String::from_utf8_lossy(&text))
            .unwrap_or_else(|| Bucket::full(capacity(self.per_min), now));
        let out = f(&mut bucket, now);
        file.seek(SeekFrom::Start(0)).map_err(annotate)?;
        file.set_len(0).map_err(annotate)?;
        file.write_all(bucket.render().as_bytes())
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

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
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

    #[test]
    fn bucket_paces_and_never_exceeds_the_rate() {
        let per_min = 20.0;
        let cap = capacity(20);
        assert_eq!(cap, 5.0);
        let mut b = Bucket::full(cap, 0);
        // Simulate a greedy caller for ten minutes: count calls in every 60 s window.
        let mut calls = Vec::new();
        let mut now = 0u64;
        while now < 600_000 {
            match b.take(now, per_min, cap) {
                Ok(()) => calls.push(now),
                Err(wait) => now += wait.as_millis() as u64,
            }
        }
        for (i, &t) in calls.iter().enumerate() {
            let in_window = calls[i..].iter().take_while(|&&c| c < t + 60_000).count();
            assert!(
                in_window <= 25,
                "{in_window} calls in the minute from {t} ms"
            );
        }
        assert!(calls.len() >= 200, "{} calls in 10 minutes", calls.len());
    }

    #[test]
    fn retry_after_blocks_and_text_round_trips() {
        let mut b = Bucket {
            tokens: 3.0,
            updated_ms: 1000,
            blocked_until_ms: 5000,
        };
        assert_eq!(b.take(2000, 20.0, 5.0), Err(Duration::from_millis(3000)));
        assert_eq!(Bucket::parse(&b.render()), Some(b));
        assert_eq!(Bucket::parse("junk"), None);
        assert_eq!(b.take(5000, 20.0, 5.0), Ok(()));
    }

    #[test]
    fn a_bucket_made_by_root_belongs_to_the_run_folders_owner() {
        use std::os::unix::fs::MetadataExt;
        // CI runs as root, which is the case this is about; others cannot chown.
        assert!(nix::unistd::geteuid().is_root(), "this test needs root");
        let dir = std::env::temp_dir().join(format!("lc-pacer-own-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let nobody = (65534, 65534);
        nix::unistd::chown(
            &dir,
            Some(nix::unistd::Uid::from_raw(nobody.0)),
            Some(nix::unistd::Gid::from_raw(nobody.1)),
        )
        .unwrap();
        Pacer::new(&dir, 20).acquire().unwrap();
        let meta = std::fs::metadata(dir.join("api-bucket")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), nobody);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_bucket_is_shared_through_its_file() {
        let dir = std::env::temp_dir().join(format!("lc-pacer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = Pacer::new(&dir, 4);
        let b = Pacer::new(&dir, 4);
        a.acquire().unwrap();
        b.block_for(Duration::from_secs(60)).unwrap();
        let wait = a.with_bucket(|bk, now| bk.take(now, 4.0, 1.0)).unwrap();
        assert!(wait.unwrap_err() > Duration::from_secs(50));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
