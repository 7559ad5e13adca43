//! The blocking half of the spool: three threads that fsync, seal (gzip) and deliver segments.
//!
//! Each thread takes jobs from its own channel and reports every outcome on one shared channel,
//! then wakes the event loop through a `mio::Waker`. They never decide anything: the loop
//! sends what the spool's inventory answers, one job per segment or batch. Delivery here is the outbox (`url = dir:PATH`):
//! a hard link (or copy, across filesystems) into the folder under its final name, then the
//! segment moves to `backup/SOURCE/` and the oldest backups beyond `backup_keep` are removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use mio::Waker;

use super::Sealed;
use crate::clock;
use crate::deliver::api::Failure;
use crate::deliver::plan::Kept;
pub use crate::deliver::worker::DeliverMsg;
use crate::deliver::worker::Delivery;
use crate::fsx::annotate;
pub use crate::fsx::sync_dir;
use crate::segment::{gz_path, part_path, tmp_path};

pub struct SealJob {
    pub source: String,
    pub seq: u64,
    pub raw: PathBuf,
    /// Compressed bytes per part (`[delivery] max_upload_bytes`).
    pub max_part: u64,
}

/// What a worker reports back to the loop.
#[derive(Debug)]
pub enum Done {
    SyncFailed {
        path: PathBuf,
        error: String,
    },
    Sealed {
        source: String,
        seq: u64,
        parts: Vec<Sealed>,
    },
    SealFailed {
        source: String,
        seq: u64,
        error: String,
    },
    Delivered {
        source: String,
        paths: Vec<PathBuf>,
        bytes: u64,
        at: u64,
    },
    DeliveryFailed {
        source: String,
        paths: Vec<PathBuf>,
        failure: Failure,
        /// How much of the batch the tenant has: the retry is for the same files unless
        /// nothing.
        kept: Kept,
    },
    /// The batch was not begun: the host's API budget allows no call for `wait`.
    Deferred {
        source: String,
        wait: Duration,
    },
    /// A sealed file was damaged (a truncated or corrupt gzip, a zip without its directory):
    /// moved to `spool/SOURCE/quarantine/`, not delivered.
    Quarantined {
        source: String,
        paths: Vec<PathBuf>,
        reason: String,
    },
}

pub struct Workers {
    pub sync: Sender<(Arc<File>, PathBuf)>,
    pub seal: Sender<SealJob>,
    pub deliver: Sender<DeliverMsg>,
    handles: Vec<JoinHandle<()>>,
}

/// A worker's way back: the shared channel plus the loop's waker.
#[derive(Clone)]
struct Report {
    tx: Sender<Done>,
    waker: Arc<Waker>,
}

impl Report {
    fn send(&self, done: Done) {
        // The loop may already be gone at shutdown; then nobody needs the report.
        if self.tx.send(done).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

impl Workers {
    pub fn spawn(tx: Sender<Done>, waker: Arc<Waker>) -> io::Result<Workers> {
        let report = Report { tx, waker };
        let (sync, sync_rx) = mpsc::channel();
        let (seal, seal_rx) = mpsc::channel();
        let (deliver, deliver_rx) = mpsc::channel();
        let r = report.clone();
        let h1 = thread::Builder::new()
            .name("lc-sync".into())
            .spawn(move || sync_loop(sync_rx, r))?;
        let r = report.clone();
        let h2 = thread::Builder::new()
            .name("lc-seal".into())
            .spawn(move || seal_loop(seal_rx, r))?;
        let h3 = thread::Builder::new()
            .name("lc-deliver".into())
            .spawn(move || deliver_loop(deliver_rx, report))?;
        Ok(Workers {
            sync,
            seal,
            deliver,
            handles: vec![h1, h2, h3],
        })
    }

    /// Closes the job channels and waits for the threads to finish what they hold, up to
    /// `deadline`. A thread still busy then (a delivery in a slow network call) is left to die
    /// with the process: its segment stays in the spool and is delivered at the next start.
    pub fn join(self, deadline: Instant) {
        drop(self.sync);
        drop(self.seal);
        drop(self.deliver);
        for h in self.handles {
            while !h.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

fn sync_loop(rx: Receiver<(Arc<File>, PathBuf)>, report: Report) {
    while let Ok((file, path)) = rx.recv() {
        if let Err(e) = file.sync_data() {
            report.send(Done::SyncFailed {
                path,
                error: e.to_string(),
            });
        }
    }
}

fn seal_loop(rx: Receiver<SealJob>, report: Report) {
    while let Ok(job) = rx.recv() {
        let done = match seal(&job.raw, job.seq, job.max_part) {
            Ok(parts) => Done::Sealed {
                source: job.source,
                seq: job.seq,
                parts,
            },
            Err(e) => Done::SealFailed {
                source: job.source,
                seq: job.seq,
                error: e.to_string(),
            },
        };
        report.send(done);
    }
}

fn deliver_loop(rx: Receiver<DeliverMsg>, report: Report) {
    crate::deliver::worker::run(rx, |job, result| {
        let (source, parts) = (job.source, job.parts);
        report.send(match result {
            Delivery::Delivered(bytes) => Done::Delivered {
                source,
                paths: parts,
                bytes,
                at: clock::unix_secs(SystemTime::now()),
            },
            // Only the damaged segment: the rest of the batch goes with the next job.
            Delivery::Quarantined { paths, reason } => Done::Quarantined {
                source,
                paths,
                reason,
            },
            Delivery::Failed(failure) => Done::DeliveryFailed {
                source,
                paths: parts,
                failure,
                kept: Kept::Nothing,
            },
            Delivery::Held(failure, kept) => Done::DeliveryFailed {
                source,
                paths: parts,
                failure,
                kept,
            },
            Delivery::Deferred(wait) => Done::Deferred { source, wait },
        })
    });
}

/// gzip level for sealed segments: on syslog, level 3 of zlib-rs compresses about twice as
/// fast as the default 6 for files ~6 % larger; uploads are paced by API calls, not bytes.
const SEAL_LEVEL: u32 = 3;
/// Input is compressed in chunks of this size, each cut at its last complete line.
const SEAL_CHUNK: usize = 256 * 1024;

/// Compresses `raw` into one or more `.gz` parts of at most about `max_part` compressed bytes,
/// cut at line boundaries, durably; then removes `raw`. All parts are written as temp files
/// first and renamed with part 0 last, so a crash leaves either the raw segment (sealed again
/// at the next start, stale parts removed) or every part.
pub fn seal(raw: &Path, seq: u64, max_part: u64) -> io::Result<Vec<Sealed>> {
    let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        let mut input = File::open(raw).map_err(|e| annotate(raw, e))?;
        // The raw segment is durable before its seal starts (DESIGN: fsync at seal), so a
        // machine crash while compressing still finds every line in it.
        input.sync_data().map_err(|e| annotate(raw, e))?;
        let mut part = 0u32;
        let mut chunk = vec![0u8; SEAL_CHUNK];
        let mut carry = 0usize;
        let mut enc: Option<GzEncoder<CountingWriter>> = None;
        loop {
            let n = read_full(&mut input, &mut chunk[carry..]).map_err(|e| annotate(raw, e))?;
            let filled = carry + n;
            if filled == 0 {
                break;
            }
            let at_end = n == 0 || filled < chunk.len();
            // Write whole lines only; a chunk without any newline (a huge line) goes whole.
            let cut = if at_end {
                filled
            } else {
                memchr::memrchr(b'\n', &chunk[..filled]).map_or(filled, |i| i + 1)
            };
            if enc.is_none() {
                let path = part_path(raw, part);
                let tmp = tmp_path(&path);
                let out = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&tmp)
                    .map_err(|e| annotate(&tmp, e))?;
                enc = Some(GzEncoder::new(
                    CountingWriter::new(out),
                    Compression::new(SEAL_LEVEL),
                ));
                done.push((tmp, path));
            }
            let e = enc.as_mut().expect("opened above");
            e.write_all(&chunk[..cut])
                .map_err(|err| annotate(&done.last().expect("pushed").0, err))?;
            chunk.copy_within(cut..filled, 0);
            carry = filled - cut;
            if e.get_ref().written >= max_part {
                finish_part(
                    enc.take().expect("checked"),
                    &done.last().expect("pushed").0,
                )?;
                part += 1;
            }
            if at_end && carry == 0 {
                break;
            }
        }
        if let Some(e) = enc.take() {
            finish_part(e, &done.last().expect("pushed").0)?;
        }
        let mut parts = Vec::new();
        let now = clock::unix_secs(SystemTime::now());
        // Part 0 last: its name is what recovery takes as "every part is in place".
        for (i, (tmp, path)) in done.iter().enumerate().rev() {
            let bytes = fs::metadata(tmp).map_err(|e| annotate(tmp, e))?.len();
            fs::rename(tmp, path).map_err(|e| annotate(path, e))?;
            parts.push(Sealed {
                seq,
                part: i as u32,
                path: path.clone(),
                bytes,
                sealed_at: now,
                // Lines cut whole and ending in a newline: it may join a batch.
                alone: false,
            });
        }
        parts.reverse();
        sync_dir(raw.parent().unwrap_or(Path::new(".")))?;
        fs::remove_file(raw).map_err(|e| annotate(raw, e))?;
        if parts.is_empty() {
            // An empty FTP upload: nothing to deliver, so nothing may stay listed either.
            let _ = fs::remove_file(crate::segment::sidecar_path(raw));
        }
        Ok(parts)
    })();
    if result.is_err() {
        for (tmp, path) in &done {
            let _ = fs::remove_file(tmp);
            // Renamed parts without part 0 are stale; recovery would remove them too.
            if !gz_path(raw).exists() {
                let _ = fs::remove_file(path);
            }
        }
    }
    result
}

fn finish_part(enc: GzEncoder<CountingWriter>, tmp: &Path) -> io::Result<()> {
    let out = enc.finish().map_err(|e| annotate(tmp, e))?;
    let file = out
        .inner
        .into_inner()
        .map_err(|e| annotate(tmp, e.into_error()))?;
    file.sync_all().map_err(|e| annotate(tmp, e))
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A buffered file writer that counts what the encoder has produced.
struct CountingWriter {
    inner: BufWriter<File>,
    written: u64,
}

impl CountingWriter {
    fn new(f: File) -> Self {
        CountingWriter {
            inner: BufWriter::with_capacity(256 * 1024, f),
            written: 0,
        }
    }
}

impl Write for CountingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn large_segments_are_sealed_in_parts_cut_at_lines() {
        let dir = crate::testing::fresh_dir("parts");
        let raw = dir.join("0000000007-20261126T000000Z.log");
        // Incompressible lines, so parts fill up: ~2 MB in parts of ~300 KB.
        let mut x = 0x9E3779B97F4A7C15u64;
        let mut text = Vec::new();
        for i in 0..20_000 {
            text.extend_from_slice(format!("line {i:05} ").as_bytes());
            for _ in 0..12 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                text.extend_from_slice(format!("{x:016x}").as_bytes()[..8].as_ref());
            }
            text.push(b'\n');
        }
        fs::write(&raw, &text).unwrap();
        let parts = seal(&raw, 7, 300 * 1024).unwrap();
        assert!(parts.len() >= 3, "{} parts", parts.len());
        assert!(!raw.exists());
        let mut joined = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            assert_eq!((p.seq, p.part), (7, i as u32));
            assert!(p.bytes < 300 * 1024 + SEAL_CHUNK as u64);
            let mut one = Vec::new();
            flate2::read::GzDecoder::new(File::open(&p.path).unwrap())
                .read_to_end(&mut one)
                .unwrap();
            assert_eq!(one.last(), Some(&b'\n'), "part {i} ends with a whole line");
            joined.extend(one);
        }
        assert_eq!(joined, text);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn seal_writes_an_intact_gzip_and_removes_the_raw_segment() {
        let root = crate::testing::fresh_dir("worker");
        let spool = root.join("spool/a");
        fs::create_dir_all(&spool).unwrap();
        let raw = spool.join("0000000001-20261126T000000Z.log");
        fs::write(&raw, b"one\ntwo\n").unwrap();
        let sealed = seal(&raw, 1, 56 << 20).unwrap().remove(0);
        assert!(!raw.exists());
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&sealed.path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");

        fs::remove_dir_all(root).unwrap();
    }
}
