//! The on-disk spool of one source: `state_dir/spool/SOURCE/`.
//!
//! The event loop owns a [`SourceSpool`] per source. Messages are appended to an in-memory
//! buffer and written to the open segment (`SEQ-STAMP.log`) once per loop iteration, so data
//! reaches the kernel promptly without a syscall per message. A segment is sealed at
//! `rotate_bytes` or `rotate_secs`; sealing (gzip to `SEQ-STAMP.log.gz`), fsync and delivery
//! happen on the worker threads in `worker.rs`, which report back to the loop. What follows
//! the open segment (raw, sealed, in a batch, retries) is the spool's `inventory/`, pure;
//! `space.rs` keeps the disk limits across sources. The loop performs what they answer; the
//! workers only do what they are told.
//!
//! File names carry a per-source sequence number that grows across restarts (the inventory
//! hands it out; `.seq` and the highest name in spool/ and backup/ plus one bring it back)
//! and the UTC time the segment was opened.

pub mod inventory;
mod recover;
pub mod space;
mod upload;
pub mod worker;

pub use recover::{cut_torn_tail, Recovery};
pub use upload::{commit_upload, sample_lines, spooled_uploads, upload_path, SpooledUpload};

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::clock;
pub use crate::fsx::annotate;
pub use crate::segment::{gz_path, parse_part, parse_seq, sidecar_path};
use crate::syslog::render::{Origin, Render};
use inventory::Inventory;

/// The buffer is written out when it reaches this size, even mid-iteration.
pub const FLUSH_BYTES: usize = 256 * 1024;

/// A segment that is still being appended to.
#[derive(Debug)]
pub struct OpenSegment {
    pub seq: u64,
    pub path: PathBuf,
    pub file: Arc<File>,
    pub written: u64,
    pub opened: Instant,
    /// Written since the last fsync was requested.
    pub dirty: bool,
}

/// A sealed, compressed segment (or one part of one) waiting for delivery. A segment whose
/// compressed size would pass one upload's limit is sealed as several parts, cut at lines:
/// part 0 is `SEQ-STAMP.log.gz`, part k `SEQ-STAMP-pK.log.gz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub seq: u64,
    pub part: u32,
    pub path: PathBuf,
    pub bytes: u64,
    /// Seconds since the epoch when the segment was sealed (file mtime after a restart).
    pub sealed_at: u64,
    /// Delivered alone, never concatenated with other segments: an FTP upload kept as it
    /// came (a zip, or a gzip whose last line may lack its newline).
    pub alone: bool,
}

/// What a failed write means for the receivers.
#[derive(Debug)]
pub enum WriteError {
    /// ENOSPC or EDQUOT: keep the data, pause stream reads, retry later.
    DiskFull,
    Other(io::Error),
}

#[derive(Debug)]
pub struct SourceSpool {
    pub dir: PathBuf,
    pub backup_dir: PathBuf,
    /// `flock` on `dir/.lock`, held while this instance serves the source.
    _lock: nix::fcntl::Flock<File>,
    pub open: Option<OpenSegment>,
    /// Escaped lines not yet written to the open segment.
    pub buf: Vec<u8>,
    /// Every segment after the open one, and the sequence numbers.
    pub inv: Inventory,
    /// Segments are sealed when they reach this size (`[spool] rotate_bytes`).
    pub rotate_bytes: u64,
    /// Filled by `flush`, drained by `take_sealed`.
    newly_sealing: Vec<(u64, PathBuf, u64)>,
}

impl SourceSpool {
    /// Opens the spool of `name` under `state_dir`, creating folders as needed, and recovers
    /// what a previous run left: returns the spool and the raw segments that must be sealed.
    pub fn recover(
        state_dir: &Path,
        name: &str,
        rotate_bytes: u64,
    ) -> io::Result<(SourceSpool, Recovery)> {
        let dir = state_dir.join("spool").join(name);
        let backup_dir = state_dir.join("backup").join(name);
        fs::create_dir_all(&dir).map_err(|e| annotate(&dir, e))?;
        fs::create_dir_all(&backup_dir).map_err(|e| annotate(&backup_dir, e))?;
        let found = recover::scan(&dir, &backup_dir)?;
        let spool = SourceSpool {
            dir,
            backup_dir,
            _lock: found.lock,
            open: None,
            buf: Vec::new(),
            inv: Inventory::new(found.next_seq, found.sealed),
            rotate_bytes,
            newly_sealing: Vec::new(),
        };
        Ok((spool, found.recovery))
    }

    /// Appends one message as received (escaped), for tests.
    #[cfg(test)]
    pub fn append(&mut self, msg: &[u8]) {
        self.append_message(Render::Raw, msg, &Origin::new(), |_| {});
    }

    /// Appends one received message as `render` makes it a line; false when the rendering
    /// drops it (nothing to store). `seen` gets the stored line (without its newline) before
    /// anything is flushed: the live format check reads lines as they are stored.
    pub fn append_message(
        &mut self,
        render: Render,
        msg: &[u8],
        origin: &Origin,
        seen: impl FnOnce(&[u8]),
    ) -> bool {
        let start = self.buf.len();
        let kept = crate::syslog::render::push(&mut self.buf, render, msg, origin);
        if kept {
            seen(&self.buf[start..self.buf.len() - 1]);
        }
        if self.buf.len() >= FLUSH_BYTES {
            // Errors leave the bytes buffered; the loop's flush after this iteration reports them.
            let _ = self.flush();
        }
        kept
    }

    /// Drops the lines still buffered (a stop that cannot write them) and returns how many
    /// there were, a torn one included.
    pub fn discard_unwritten(&mut self) -> u64 {
        let lines = memchr::memchr_iter(b'\n', &self.buf).count() as u64;
        self.buf = Vec::new();
        lines
    }

    /// Writes the buffer to the open segment, opening one if needed. A segment that reaches
    /// `rotate_bytes` is cut at the last line that fits and taken for sealing (see
    /// `take_sealed`); a single line longer than that fills a segment of its own. On error the
    /// unwritten bytes stay in the buffer.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        let mut done = 0;
        let result = loop {
            if done == self.buf.len() {
                break Ok(());
            }
            if self.open.is_none() {
                match self.open_segment() {
                    Ok(seg) => self.open = Some(seg),
                    Err(e) => break Err(classify(e)),
                }
            }
            let seg = self.open.as_mut().expect("opened above");
            let room = self.rotate_bytes.saturating_sub(seg.written) as usize;
            let rest = &self.buf[done..];
            let (chunk, fills) = if rest.len() <= room {
                (rest.len(), false)
            } else {
                match memchr::memrchr(b'\n', &rest[..room]) {
                    Some(i) => (i + 1, true),
                    // Not even one line fits: an empty segment takes it whole, else seal first.
                    None if seg.written == 0 => (
                        memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
                        true,
                    ),
                    None => (0, true),
                }
            };
            match write_all(&seg.file, &rest[..chunk]) {
                Ok(()) => {
                    seg.written += chunk as u64;
                    seg.dirty |= chunk > 0;
                    done += chunk;
                }
                Err((n, e)) => {
                    seg.written += n as u64;
                    seg.dirty |= n > 0;
                    done += n;
                    break Err(e);
                }
            }
            if fills {
                if let Some(item) = self.take_for_seal() {
                    self.newly_sealing.push(item);
                }
            }
        };
        self.buf.drain(..done);
        result
    }

    /// Segments that `flush` filled since the last call: the loop hands them to the inventory.
    pub fn take_sealed(&mut self) -> Vec<(u64, PathBuf, u64)> {
        std::mem::take(&mut self.newly_sealing)
    }

    /// The next sequence number, remembered in `.seq` before it is used.
    fn reserve_seq(&mut self) -> u64 {
        let seq = self.inv.reserve();
        if let Err(e) = recover::write_next_seq(&self.dir, self.inv.next_seq()) {
            log::warn!("{e}; sequence numbers rely on the file names alone");
        }
        seq
    }

    fn open_segment(&mut self) -> io::Result<OpenSegment> {
        let seq = self.inv.next_seq();
        let stamp = clock::compact(clock::unix_secs(SystemTime::now()));
        let path = self.dir.join(crate::segment::raw_name(seq, &stamp));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| annotate(&path, e))?;
        self.reserve_seq();
        Ok(OpenSegment {
            seq,
            path,
            file: Arc::new(file),
            written: 0,
            opened: Instant::now(),
            dirty: false,
        })
    }

    /// Takes the open segment out for sealing, if it holds anything: (seq, path, bytes) for
    /// the inventory's `raw`. The caller flushes first.
    pub fn take_for_seal(&mut self) -> Option<(u64, PathBuf, u64)> {
        let seg = self.open.take()?;
        if seg.written == 0 {
            let _ = fs::remove_file(&seg.path);
            return None;
        }
        Some((seg.seq, seg.path, seg.written))
    }

    /// Reserves a segment for an FTP upload: its sequence number and raw path. The upload is
    /// moved there by [`commit_upload`] (off the loop thread), then announced with `adopted`.
    pub fn reserve_upload(&mut self) -> (u64, PathBuf) {
        let seq = self.reserve_seq();
        let stamp = clock::compact(clock::unix_secs(SystemTime::now()));
        (seq, self.dir.join(crate::segment::raw_name(seq, &stamp)))
    }

    /// A committed `.gz` or `.zip` upload is sealed as it is: what the inventory adds.
    pub fn sealed_upload(seq: u64, path: PathBuf, bytes: u64) -> Sealed {
        Sealed {
            seq,
            part: 0,
            path,
            bytes,
            sealed_at: clock::unix_secs(SystemTime::now()),
            alone: true,
        }
    }

    /// Bytes this source holds on disk or in memory: open, raw and sealed segments.
    pub fn backlog_bytes(&self) -> u64 {
        let open = self.open.as_ref().map_or(0, |s| s.written);
        open + self.inv.bytes() + self.buf.len() as u64
    }
}

/// Writes all of `data`; on error returns how much was written before it.
fn write_all(file: &File, data: &[u8]) -> Result<(), (usize, WriteError)> {
    let mut done = 0;
    while done < data.len() {
        match (&*file).write(&data[done..]) {
            Ok(0) => return Err((done, WriteError::DiskFull)),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((done, classify(e))),
        }
    }
    Ok(())
}

fn classify(e: io::Error) -> WriteError {
    match e.raw_os_error() {
        Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT => {
            WriteError::DiskFull
        }
        _ => WriteError::Other(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        crate::testing::fresh_dir(&format!("spool-{name}"))
    }

    #[test]
    fn flush_cuts_segments_at_line_boundaries() {
        let state = tmp("cut-rotate");
        let (mut spool, _) = SourceSpool::recover(&state, "a", 10).unwrap();
        for m in ["aaaa", "bbbb", "cccc", "a line longer than ten bytes", "d"] {
            spool.append(m.as_bytes());
        }
        spool.flush().unwrap();
        let sealed: Vec<Vec<u8>> = spool
            .take_sealed()
            .iter()
            .map(|(_, p, _)| fs::read(p).unwrap())
            .collect();
        assert_eq!(
            sealed,
            [
                &b"aaaa\nbbbb\n"[..],
                b"cccc\n",
                b"a line longer than ten bytes\n"
            ]
        );
        assert_eq!(
            fs::read(&spool.open.as_ref().unwrap().path).unwrap(),
            b"d\n"
        );
        fs::remove_dir_all(state).unwrap();
    }

    #[test]
    fn append_flush_and_seal() {
        let state = tmp("append");
        let (mut spool, _) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        spool.append(b"hello\nworld");
        spool.append(b"second");
        spool.flush().unwrap();
        let seg = spool.open.as_ref().unwrap();
        assert_eq!(fs::read(&seg.path).unwrap(), b"hello#012world\nsecond\n");
        let (seq, path, bytes) = spool.take_for_seal().unwrap();
        assert_eq!((seq, bytes), (1, 22));
        assert!(path.exists());
        spool.inv.raw(seq, path, bytes);
        assert_eq!(spool.backlog_bytes(), 22);
        fs::remove_dir_all(state).unwrap();
    }
}
