//! The on-disk spool of one source: `state_dir/spool/SOURCE/`.
//!
//! The event loop owns a [`SourceSpool`] per source. Messages are appended to an in-memory
//! buffer and written to the open segment (`SEQ-STAMP.log`) once per loop iteration, so data
//! reaches the kernel promptly without a syscall per message. A segment is sealed at
//! `rotate_bytes` or `rotate_secs`; sealing (gzip to `SEQ-STAMP.log.gz`), fsync and delivery
//! happen on the worker threads in `worker.rs`, which report back to the loop. The loop keeps
//! the inventory (what is open, being sealed, sealed and waiting, in delivery) and decides
//! eviction; the workers only do what they are told.
//!
//! File names carry a per-source sequence number that grows across restarts (the highest in
//! spool/ and backup/ plus one) and the UTC time the segment was opened.

pub mod worker;

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crate::clock;
pub use crate::fsx::annotate;
use crate::ftp::content::Kind;
pub use crate::segment::{gz_path, parse_part, parse_seq, sidecar_path};
use crate::syslog::render::{Origin, Render};

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
    pub next_seq: u64,
    /// Raw segments handed to the sealer: (seq, raw bytes).
    pub sealing: Vec<(u64, PathBuf, u64)>,
    /// Sealed segments, oldest first; the front one may be in delivery.
    pub sealed: VecDeque<Sealed>,
    /// The segment (every sealed part of it) the deliverer is working on.
    pub in_delivery: Option<u64>,
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
        // Existing folders on a read-only mount (a state_dir systemd's ProtectSystem does not
        // let the service write) must stop the start, not lose every line later.
        for d in [&dir, &backup_dir] {
            let probe = d.join(".lc-write-test");
            fs::write(&probe, b"")
                .and_then(|()| fs::remove_file(&probe))
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("{}: cannot write here: {e}", d.display()))
                })?;
        }
        // One instance serves a source: a second one (a port moved between instances, an
        // `lc run` beside the units) must not seal, deliver or evict the same files.
        let lock = lock_folder(&dir)?;
        let mut recovery = Recovery::default();
        let mut max_seq = 0u64;
        let mut sealed = Vec::new();
        let mut raw = Vec::new();
        let mut sidecars = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| annotate(&dir, e))? {
            let entry = entry?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(seq) = parse_seq(&file_name) else {
                continue;
            };
            max_seq = max_seq.max(seq);
            // `DirEntry::metadata` does not follow links. Only a regular file with one link is
            // lc's own: a link, a FIFO or a hard link to a file elsewhere is never opened,
            // truncated or delivered.
            let meta = entry.metadata().map_err(|e| annotate(&path, e))?;
            if !meta.file_type().is_file() || meta.nlink() != 1 {
                let why = if meta.file_type().is_symlink() {
                    "a symbolic link".to_string()
                } else if meta.file_type().is_file() {
                    format!("a file with {} hard links", meta.nlink())
                } else {
                    "not a regular file".to_string()
                };
                quarantine(&dir, &path, &why)?;
                recovery.quarantined += 1;
                continue;
            }
            if file_name.ends_with(".log.gz.tmp") {
                // A seal that did not finish; the raw segment is still there.
                fs::remove_file(&path).map_err(|e| annotate(&path, e))?;
            } else if file_name.ends_with(".log.gz") || file_name.ends_with(".zip") {
                let sealed_at = meta.modified().map(clock::unix_secs).unwrap_or(0);
                sealed.push(Sealed {
                    seq,
                    part: parse_part(&file_name),
                    path,
                    bytes: meta.len(),
                    sealed_at,
                });
            } else if file_name.ends_with(".log") {
                raw.push((seq, path));
            } else if file_name.ends_with(".name") {
                sidecars.push((seq, path));
            }
        }
        for (seq, path) in raw {
            if gz_path(&path).exists() {
                // Sealed and renamed (part 0 is renamed last), but the crash came before the
                // raw file was removed.
                fs::remove_file(&path).map_err(|e| annotate(&path, e))?;
                continue;
            }
            // Parts of a seal that did not finish: sealed again from the raw segment.
            for stale in sealed.iter().filter(|s| s.seq == seq) {
                fs::remove_file(&stale.path).map_err(|e| annotate(&stale.path, e))?;
            }
            sealed.retain(|s| s.seq != seq);
            let (kept, cut) = cut_torn_tail(&path).map_err(|e| annotate(&path, e))?;
            recovery.torn_bytes += cut;
            if kept == 0 {
                fs::remove_file(&path).map_err(|e| annotate(&path, e))?;
            } else {
                recovery.to_seal.push((seq, path, kept));
            }
        }
        if let Ok(entries) = fs::read_dir(&backup_dir) {
            for entry in entries.flatten() {
                if let Some(seq) = parse_seq(&entry.file_name().to_string_lossy()) {
                    max_seq = max_seq.max(seq);
                }
            }
        }
        // A name sidecar whose upload was delivered before a crash removed it.
        for (seq, path) in sidecars {
            if !sealed.iter().any(|s| s.seq == seq)
                && !recovery.to_seal.iter().any(|(s, _, _)| *s == seq)
            {
                let _ = fs::remove_file(&path);
            }
        }
        sealed.sort_by_key(|s| (s.seq, s.part));
        recovery.to_seal.sort_by_key(|(seq, _, _)| *seq);
        // Files alone do not remember the highest number once backup/ is empty
        // (`backup_keep = 0`, a low-disk prune): the `.seq` file does.
        let next_seq = (max_seq + 1).max(read_next_seq(&dir));
        let spool = SourceSpool {
            dir,
            backup_dir,
            _lock: lock,
            open: None,
            buf: Vec::new(),
            next_seq,
            sealing: Vec::new(),
            sealed: sealed.into(),
            in_delivery: None,
            rotate_bytes,
            newly_sealing: Vec::new(),
        };
        Ok((spool, recovery))
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

    /// Segments that `flush` filled since the last call: the loop sends them to the sealer.
    pub fn take_sealed(&mut self) -> Vec<(u64, PathBuf, u64)> {
        std::mem::take(&mut self.newly_sealing)
    }

    /// The next sequence number, remembered in `.seq` before it is used.
    fn reserve_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Err(e) = write_next_seq(&self.dir, self.next_seq) {
            log::warn!("{e}; sequence numbers rely on the file names alone");
        }
        seq
    }

    fn open_segment(&mut self) -> io::Result<OpenSegment> {
        let seq = self.next_seq;
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

    /// Takes the open segment out for sealing, if it holds anything. The caller flushes first.
    pub fn take_for_seal(&mut self) -> Option<(u64, PathBuf, u64)> {
        let seg = self.open.take()?;
        if seg.written == 0 {
            let _ = fs::remove_file(&seg.path);
            return None;
        }
        let item = (seg.seq, seg.path, seg.written);
        self.sealing.push(item.clone());
        Some(item)
    }

    /// Reserves a segment for an FTP upload: its sequence number and raw path. The upload is
    /// moved there by [`commit_upload`] (off the loop thread), then announced with `adopted`.
    pub fn reserve_upload(&mut self) -> (u64, PathBuf) {
        let seq = self.reserve_seq();
        let stamp = clock::compact(clock::unix_secs(SystemTime::now()));
        (seq, self.dir.join(crate::segment::raw_name(seq, &stamp)))
    }

    /// A committed upload joins the segments to seal.
    pub fn adopted(&mut self, seq: u64, raw: PathBuf, bytes: u64) {
        self.sealing.push((seq, raw, bytes));
    }

    /// A committed `.gz` or `.zip` upload is sealed as it is: it joins the sealed segments.
    pub fn adopted_sealed(&mut self, seq: u64, path: PathBuf, bytes: u64) {
        let sealed_at = clock::unix_secs(SystemTime::now());
        self.add_sealed(vec![Sealed {
            seq,
            part: 0,
            path,
            bytes,
            sealed_at,
        }]);
    }

    /// Bytes this source holds on disk or in memory: open, sealing and sealed segments.
    pub fn backlog_bytes(&self) -> u64 {
        let open = self.open.as_ref().map_or(0, |s| s.written);
        let sealing: u64 = self.sealing.iter().map(|(_, _, b)| b).sum();
        let sealed: u64 = self.sealed.iter().map(|s| s.bytes).sum();
        open + sealing + sealed + self.buf.len() as u64
    }

    /// Raw segments whose seal failed (`failed`: the loop's list), (seq, path, bytes): what
    /// eviction may take when nothing sealed is left, since a compressed copy that does not
    /// fit beside its raw segment would otherwise keep the receivers paused for good.
    pub fn unsealable<'a>(
        &'a self,
        failed: &'a [u64],
    ) -> impl Iterator<Item = &'a (u64, PathBuf, u64)> {
        self.sealing
            .iter()
            .filter(move |(seq, _, _)| failed.contains(seq))
    }

    /// Adds sealed parts to the inventory, keeping it ordered oldest first.
    pub fn add_sealed(&mut self, parts: Vec<Sealed>) {
        for p in parts {
            let at = self
                .sealed
                .partition_point(|s| (s.seq, s.part) < (p.seq, p.part));
            self.sealed.insert(at, p);
        }
    }
}

/// What `recover` found that a previous run left behind.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Raw segments to seal, each (seq, path, bytes kept).
    pub to_seal: Vec<(u64, PathBuf, u64)>,
    /// Bytes of incomplete last lines cut from raw segments.
    pub torn_bytes: u64,
    /// Files named like segments that are not lc's own regular files (links, FIFOs, hard
    /// links), moved to `quarantine/` untouched.
    pub quarantined: u64,
}

/// Where the highest sequence number handed out is remembered (the next one, as text).
const SEQ_FILE: &str = ".seq";
const LOCK_FILE: &str = ".lock";

/// The next sequence number `.seq` remembers; 0 when there is none (or it is not lc's).
fn read_next_seq(dir: &Path) -> u64 {
    crate::careful::read_in_folder(&dir.join(SEQ_FILE), 64)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Replaces `.seq` atomically (a temp file created with `O_EXCL|O_NOFOLLOW`, then renamed).
/// Not fsynced here, which the loop never does: a kill -9 keeps it (page cache), and the
/// sealer's fsync of the folder after each seal makes it durable before any segment of that
/// number is sealed.
fn write_next_seq(dir: &Path, next: u64) -> io::Result<()> {
    let tmp = dir.join(".seq.tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = crate::careful::create_new(&tmp, 0o600)?;
    f.write_all(format!("{next}\n").as_bytes())
        .map_err(|e| annotate(&tmp, e))?;
    fs::rename(&tmp, dir.join(SEQ_FILE)).map_err(|e| annotate(&tmp, e))
}

/// Takes the exclusive lock of a source's spool folder, or says who holds it.
fn lock_folder(dir: &Path) -> io::Result<nix::fcntl::Flock<File>> {
    use nix::fcntl::{Flock, FlockArg};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| annotate(&path, e))?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((file, _)) => {
            let mut holder = String::new();
            let _ = (&file).take(32).read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{}: in use by another lc instance{}; a source is served by one instance at a time (stop the other, or move the source in both configs and reload both)",
                    dir.display(),
                    if holder.is_empty() { String::new() } else { format!(" (pid {holder})") }
                ),
            ));
        }
    };
    lock.set_len(0).map_err(|e| annotate(&path, e))?;
    (&*lock)
        .write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| annotate(&path, e))?;
    Ok(lock)
}

/// Moves a planted file out of the way, untouched (rename follows no link), and says so.
fn quarantine(dir: &Path, path: &Path, why: &str) -> io::Result<()> {
    let q = dir.join(crate::deliver::worker::QUARANTINE);
    fs::create_dir_all(&q).map_err(|e| annotate(&q, e))?;
    let to = q.join(path.file_name().unwrap_or_default());
    fs::rename(path, &to).map_err(|e| annotate(path, e))?;
    log::error!(
        "{}: {why}, not lc's own segment; moved to {} and never opened",
        path.display(),
        to.display()
    );
    Ok(())
}

/// Where an FTP upload of `kind` lands, from the raw path `reserve_upload` gave: text is the
/// raw segment (split at lines and gzipped by the sealer); a gzip file is the sealed
/// `X.log.gz` and a zip file `X.zip` as they are, since Cloud Discovery takes both and the
/// vendor's collector delivers them untouched.
pub fn upload_path(raw: &Path, kind: Kind) -> PathBuf {
    match kind {
        Kind::Text => raw.to_path_buf(),
        Kind::Gzip => gz_path(raw),
        Kind::Zip => raw.with_extension("zip"),
    }
}

/// Makes a received FTP upload part of the spool at `upload_path(raw, kind)`: a text whose
/// last line has no newline gets one (compressed files never get a byte), it is fsynced, the
/// `.name` sidecar that keeps it listed under `name` until delivered is written, it is
/// renamed into the spool and the folder fsynced. Returns where it is, its size as uploaded
/// (what SIZE says) and as stored.
/// Blocking: runs on the FTP worker thread.
pub fn commit_upload(
    upload: &Path,
    raw: &Path,
    name: &str,
    kind: Kind,
) -> io::Result<(PathBuf, u64, u64)> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .open(upload)
        .map_err(|e| annotate(upload, e))?;
    let size = file.metadata()?.len();
    let mut bytes = size;
    if size > 0 && kind == Kind::Text {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(size - 1))?;
        file.read_exact(&mut last)?;
        if last[0] != b'\n' {
            file.write_all(b"\n").map_err(|e| annotate(upload, e))?;
            bytes += 1;
        }
    }
    file.sync_all().map_err(|e| annotate(upload, e))?;
    let sidecar = sidecar_path(raw);
    fs::write(&sidecar, format!("{name}\n{size}\n")).map_err(|e| annotate(&sidecar, e))?;
    let dest = upload_path(raw, kind);
    fs::rename(upload, &dest).map_err(|e| annotate(&dest, e))?;
    worker::sync_dir(raw.parent().unwrap_or(Path::new(".")))?;
    Ok((dest, size, bytes))
}

/// An FTP upload still in the spool, as its `.name` sidecar tells.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpooledUpload {
    /// The name it was uploaded as (or renamed to).
    pub name: String,
    pub size: u64,
    /// When it was handed over (unix seconds).
    pub at: u64,
    pub sidecar: PathBuf,
}

/// A sidecar is a name (FTP paths are short) and a size.
const MAX_SIDECAR_BYTES: u64 = 4096;

/// The FTP uploads in a source's spool folder that are not delivered yet.
pub fn spooled_uploads(dir: &Path) -> Vec<SpooledUpload> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "name") {
            continue;
        }
        // The spool is writable by the service: a sidecar that is a link, a FIFO or huge is
        // skipped rather than followed, waited on or read whole (`careful`).
        let Ok(bytes) = crate::careful::read_in_folder(&path, MAX_SIDECAR_BYTES) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        let (Some(name), Some(size)) = (lines.next(), lines.next().and_then(|s| s.parse().ok()))
        else {
            continue;
        };
        let at = e
            .metadata()
            .ok()
            .and_then(|m| m.modified().ok())
            .map(clock::unix_secs)
            .unwrap_or(0);
        out.push(SpooledUpload {
            name: name.to_string(),
            size,
            at,
            sidecar: path,
        });
    }
    out.sort();
    out
}

/// Truncates `path` after its last LF; returns (bytes kept, bytes cut).
pub fn cut_torn_tail(path: &Path) -> io::Result<(u64, u64)> {
    // Never through a link, never a file with other names (`careful`).
    let owners = crate::careful::Owners::of_parent(path)?;
    let mut file = crate::careful::open_rw(path, owners, u64::MAX)?;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut chunk = vec![0u8; 64 * 1024];
    let keep = loop {
        if end == 0 {
            break 0;
        }
        let start = end.saturating_sub(chunk.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..n])?;
        if let Some(i) = memchr::memrchr(b'\n', &chunk[..n]) {
            break start + i as u64 + 1;
        }
        end = start;
    };
    if keep != len {
        file.set_len(keep)?;
        file.sync_all()?;
    }
    Ok((keep, len - keep))
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
    use crate::segment::part_path;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("lc-spool-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[track_caller]
    fn check_cut(content: &[u8], kept: &[u8]) {
        let dir = tmp("cut");
        let p = dir.join("x.log");
        fs::write(&p, content).unwrap();
        let (k, c) = cut_torn_tail(&p).unwrap();
        assert_eq!(fs::read(&p).unwrap(), kept);
        assert_eq!(
            (k, c),
            (kept.len() as u64, (content.len() - kept.len()) as u64)
        );
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn torn_tails() {
        check_cut(b"", b"");
        check_cut(b"a\nb\n", b"a\nb\n");
        check_cut(b"a\nb\npart", b"a\nb\n");
        check_cut(b"no newline at all", b"");
        let mut big = vec![b'x'; 200_000];
        big[10] = b'\n';
        check_cut(&big, &big[..11]);
    }

    #[test]
    fn recovery_cuts_torn_tails_and_keeps_sealed() {
        let state = tmp("recover");
        let dir = state.join("spool/a");
        fs::create_dir_all(&dir).unwrap();
        fs::create_dir_all(state.join("backup/a")).unwrap();
        fs::write(
            dir.join("0000000003-20261126T000000Z.log"),
            b"one\ntwo\nthr",
        )
        .unwrap();
        fs::write(dir.join("0000000002-20261126T000000Z.log.gz"), b"gz").unwrap();
        fs::write(
            dir.join("0000000004-20261126T000000Z.log.gz.tmp"),
            b"partial",
        )
        .unwrap();
        fs::write(dir.join("0000000005-20261126T000000Z.log"), b"torn only").unwrap();
        fs::write(
            state.join("backup/a/0000000009-20261126T000000Z.log.gz"),
            b"old",
        )
        .unwrap();
        let (spool, rec) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        assert_eq!(rec.to_seal.len(), 1);
        assert_eq!(rec.to_seal[0].0, 3);
        assert_eq!(rec.to_seal[0].2, 8);
        assert_eq!(rec.torn_bytes, 3 + 9);
        assert_eq!(
            spool.sealed.iter().map(|s| s.seq).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(spool.next_seq, 10);
        assert!(!dir.join("0000000004-20261126T000000Z.log.gz.tmp").exists());
        assert!(!dir.join("0000000005-20261126T000000Z.log").exists());
        assert!(!dir.join("0000000003-20261126T000000Z-p1.log.gz").exists());
        fs::remove_dir_all(state).unwrap();
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
    fn an_ftp_upload_is_adopted_with_its_name_and_a_final_newline() {
        let state = tmp("adopt");
        let (mut spool, _) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        let upload = state.join("upload.tmp");
        fs::write(&upload, b"one\ntwo").unwrap();
        let (seq, raw) = spool.reserve_upload();
        let (at, size, bytes) = commit_upload(&upload, &raw, "fw 1.log", Kind::Text).unwrap();
        assert_eq!((at, size), (raw.clone(), 7));
        spool.adopted(seq, raw.clone(), bytes);
        assert_eq!((seq, bytes), (1, 8));
        assert_eq!(fs::read(&raw).unwrap(), b"one\ntwo\n");
        assert!(!upload.exists());
        let listed = spooled_uploads(&spool.dir);
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].name.as_str(), listed[0].size), ("fw 1.log", 7));
        assert_eq!(sidecar_path(&raw), sidecar_path(&part_path(&raw, 3)));
        assert_eq!(sidecar_path(&raw), sidecar_path(&gz_path(&raw)));
        // After a restart the sidecar stays while the segment is there, and goes with it.
        drop(spool);
        let (again, rec) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        assert_eq!(rec.to_seal.len(), 1);
        drop(again);
        assert_eq!(spooled_uploads(&state.join("spool/a")).len(), 1);
        fs::remove_file(&raw).unwrap();
        drop(SourceSpool::recover(&state, "a", 1 << 20).unwrap());
        assert!(spooled_uploads(&state.join("spool/a")).is_empty());
        fs::remove_dir_all(state).unwrap();
    }

    /// Regression: `.name` sidecars were read through links planted in the spool, and a FIFO
    /// there hung the reader.
    #[test]
    fn planted_sidecars_are_not_followed_or_waited_on() {
        let state = tmp("planted-sidecar");
        let dir = state.join("spool/a");
        fs::create_dir_all(&dir).unwrap();
        let secret = state.join("secret");
        fs::write(&secret, "root only\n1\n").unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("0000000001-x.name")).unwrap();
        fs::hard_link(&secret, dir.join("0000000002-x.name")).unwrap();
        nix::unistd::mkfifo(
            &dir.join("0000000003-x.name"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        fs::write(dir.join("0000000004-x.name"), "fine.log\n5\n").unwrap();
        let listed = spooled_uploads(&dir);
        let names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["fine.log"]);
        fs::remove_dir_all(state).unwrap();
    }

    #[test]
    fn a_compressed_upload_is_sealed_as_it_is_without_a_byte_added() {
        let state = tmp("adopt-gz");
        let (mut spool, _) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        for (kind, content, ext) in [
            (Kind::Gzip, &b"\x1f\x8bno newline"[..], ".log.gz"),
            (Kind::Zip, b"PK\x03\x04no newline", ".zip"),
        ] {
            let upload = state.join("upload.tmp");
            fs::write(&upload, content).unwrap();
            let (seq, raw) = spool.reserve_upload();
            let (at, _, bytes) = commit_upload(&upload, &raw, "x", kind).unwrap();
            assert!(at.to_string_lossy().ends_with(ext), "{}", at.display());
            assert_eq!(
                (fs::read(&at).unwrap(), bytes),
                (content.to_vec(), content.len() as u64)
            );
            assert_eq!(sidecar_path(&at), sidecar_path(&raw));
            spool.adopted_sealed(seq, at, bytes);
        }
        // Sealed as they are after a restart too, their sidecars kept.
        let paths = |s: &SourceSpool| s.sealed.iter().map(|x| x.path.clone()).collect::<Vec<_>>();
        let before = paths(&spool);
        drop(spool);
        let (again, rec) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        assert!(rec.to_seal.is_empty());
        assert_eq!(paths(&again), before);
        assert_eq!(spooled_uploads(&again.dir).len(), 2);
        fs::remove_dir_all(state).unwrap();
    }

    /// Issue 12, bug 8: with backup/ empty (`backup_keep = 0`, a low-disk prune) numbers
    /// started again at 1.
    #[test]
    fn sequence_numbers_grow_when_every_file_is_gone() {
        let state = tmp("seq");
        {
            let (mut spool, _) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
            spool.append(b"one");
            spool.flush().unwrap();
            let (seq, raw, _) = spool.take_for_seal().unwrap();
            assert_eq!(seq, 1);
            let (up, _) = spool.reserve_upload();
            assert_eq!(up, 2);
            // Delivered, and its backup pruned.
            fs::remove_file(raw).unwrap();
        }
        let (spool, _) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        assert_eq!(spool.next_seq, 3);
        fs::remove_dir_all(state).unwrap();
    }

    /// Issue 12, bug 8: past 9999999999 the name grows a digit, and start-up still sees it.
    #[test]
    fn an_eleven_digit_segment_is_recovered() {
        let state = tmp("seq-width");
        let dir = state.join("spool/a");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("9999999999-20261126T000000Z.log"), b"one\n").unwrap();
        fs::write(dir.join("10000000000-20261126T000000Z.log"), b"two\n").unwrap();
        let (spool, rec) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        let seqs: Vec<u64> = rec.to_seal.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(seqs, [9_999_999_999, 10_000_000_000]);
        assert_eq!(spool.next_seq, 10_000_000_001);
        fs::remove_dir_all(state).unwrap();
    }

    /// Issue 12, bug 9: recovery followed a link named like a raw segment and truncated its
    /// target outside the state folder (then delivered it).
    #[test]
    fn planted_segments_are_quarantined_untouched() {
        let state = tmp("planted-segment");
        let dir = state.join("spool/a");
        fs::create_dir_all(&dir).unwrap();
        let outside = state.join("outside");
        fs::write(&outside, b"keep\ntorn").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("0000000001-x.log")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("0000000002-x.log.gz")).unwrap();
        fs::hard_link(&outside, dir.join("0000000003-x.log")).unwrap();
        fs::write(dir.join("0000000004-x.log"), b"mine\n").unwrap();
        let (spool, rec) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        assert_eq!(fs::read(&outside).unwrap(), b"keep\ntorn");
        assert_eq!(rec.quarantined, 3);
        let seqs: Vec<u64> = rec.to_seal.iter().map(|(s, _, _)| *s).collect();
        assert_eq!(seqs, [4]);
        assert!(spool.sealed.is_empty());
        for n in [
            "0000000001-x.log",
            "0000000002-x.log.gz",
            "0000000003-x.log",
        ] {
            assert!(
                dir.join("quarantine").join(n).symlink_metadata().is_ok(),
                "{n}"
            );
        }
        fs::remove_dir_all(state).unwrap();
    }

    /// Issue 12, bug 9: two instances could serve one spool folder.
    #[test]
    fn a_spool_folder_is_served_by_one_instance() {
        let state = tmp("lock");
        let (first, _) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        let e = SourceSpool::recover(&state, "a", 1 << 20).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("in use by another lc instance"), "{text}");
        assert!(
            text.contains(&format!("(pid {})", std::process::id())),
            "{text}"
        );
        drop(first);
        SourceSpool::recover(&state, "a", 1 << 20).unwrap();
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
        assert_eq!(spool.backlog_bytes(), 22);
        fs::remove_dir_all(state).unwrap();
    }
}
