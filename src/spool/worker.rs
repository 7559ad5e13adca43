//! The blocking half of the spool: three threads that fsync, seal (gzip) and deliver segments.
//!
//! Each thread takes jobs from its own channel and reports every outcome on one shared channel,
//! then wakes the event loop through a `mio::Waker`. They never decide anything: the loop owns
//! the inventory and sends one job per segment. Delivery here is the outbox (`url = dir:PATH`):
//! a hard link (or copy, across filesystems) into the folder under its final name, then the
//! segment moves to `backup/SOURCE/` and the oldest backups beyond `backup_keep` are removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use flate2::write::GzEncoder;
use flate2::Compression;
use mio::Waker;

use super::{annotate, gz_path, Sealed};
use crate::clock;
use crate::deliver::api::Failure;
use crate::deliver::{DeliverJob, Progress, Target};

pub struct SealJob {
    pub source: String,
    pub seq: u64,
    pub raw: PathBuf,
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
        sealed: Sealed,
    },
    SealFailed {
        source: String,
        seq: u64,
        error: String,
    },
    Delivered {
        source: String,
        seq: u64,
        bytes: u64,
        at: u64,
    },
    DeliveryFailed {
        source: String,
        seq: u64,
        failure: Failure,
    },
}

pub struct Workers {
    pub sync: Sender<(Arc<File>, PathBuf)>,
    pub seal: Sender<SealJob>,
    pub deliver: Sender<DeliverMsg>,
    handles: Vec<JoinHandle<()>>,
}

/// What the delivery thread is told: a new target (at start and reload), or a segment.
pub enum DeliverMsg {
    Target(Target),
    Job(DeliverJob),
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
        let done = match seal(&job.raw, job.seq) {
            Ok(sealed) => Done::Sealed {
                source: job.source,
                seq: job.seq,
                sealed,
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
    let mut target = None;
    let mut progress = Progress::default();
    while let Ok(msg) = rx.recv() {
        let job = match msg {
            DeliverMsg::Target(t) => {
                target = Some(t);
                continue;
            }
            DeliverMsg::Job(job) => job,
        };
        let result = match &target {
            Some(t) => t.deliver(&job, &mut progress),
            None => Err(Failure::Transient {
                reason: "no delivery target configured".into(),
                after: None,
            }),
        };
        let done = match result {
            Ok(bytes) => Done::Delivered {
                source: job.source,
                seq: job.seq,
                bytes,
                at: clock::unix_secs(SystemTime::now()),
            },
            Err(failure) => Done::DeliveryFailed {
                source: job.source,
                seq: job.seq,
                failure,
            },
        };
        report.send(done);
    }
}

/// Compresses `raw` into `raw.gz` durably, then removes `raw`. A crash at any point leaves
/// either the raw segment (sealed again at the next start) or the complete `.gz`.
pub fn seal(raw: &Path, seq: u64) -> io::Result<Sealed> {
    let gz = gz_path(raw);
    let tmp = {
        let mut s = gz.clone().into_os_string();
        s.push(".tmp");
        PathBuf::from(s)
    };
    let result = (|| {
        let input = File::open(raw).map_err(|e| annotate(raw, e))?;
        // The raw segment is durable before its seal starts (DESIGN: fsync at seal), so a
        // machine crash while compressing still finds every line in it.
        input.sync_data().map_err(|e| annotate(raw, e))?;
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| annotate(&tmp, e))?;
        let mut enc = GzEncoder::new(
            BufWriter::with_capacity(256 * 1024, out),
            Compression::default(),
        );
        io::copy(&mut BufReader::with_capacity(256 * 1024, input), &mut enc)
            .map_err(|e| annotate(&tmp, e))?;
        let out = enc
            .finish()
            .map_err(|e| annotate(&tmp, e))?
            .into_inner()
            .map_err(|e| annotate(&tmp, e.into_error()))?;
        out.sync_all().map_err(|e| annotate(&tmp, e))?;
        let bytes = out.metadata()?.len();
        fs::rename(&tmp, &gz).map_err(|e| annotate(&gz, e))?;
        sync_dir(raw.parent().unwrap_or(Path::new(".")))?;
        fs::remove_file(raw).map_err(|e| annotate(raw, e))?;
        Ok(Sealed {
            seq,
            path: gz.clone(),
            bytes,
            sealed_at: clock::unix_secs(SystemTime::now()),
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Keeps the newest `keep` files of `dir` (by sequence number in the name).
pub fn prune_backup(dir: &Path, keep: usize) -> io::Result<()> {
    let mut files: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(|e| annotate(dir, e))?
        .flatten()
        .filter_map(|e| {
            Some((
                super::parse_seq(&e.file_name().to_string_lossy())?,
                e.path(),
            ))
        })
        .collect();
    if files.len() <= keep {
        return Ok(());
    }
    files.sort();
    for (_, path) in &files[..files.len() - keep] {
        fs::remove_file(path).map_err(|e| annotate(path, e))?;
    }
    Ok(())
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| annotate(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn seal_then_deliver_to_outbox_and_backup() {
        let root = std::env::temp_dir().join(format!("lc-worker-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let spool = root.join("spool/a");
        fs::create_dir_all(&spool).unwrap();
        let raw = spool.join("0000000001-20261126T000000Z.log");
        fs::write(&raw, b"one\ntwo\n").unwrap();
        let sealed = seal(&raw, 1).unwrap();
        assert!(!raw.exists());
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&sealed.path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\n");

        let job = DeliverJob {
            source: "a".into(),
            format: "SQUID".into(),
            seq: 1,
            path: sealed.path.clone(),
            name: "c_a_0000000001.log.gz".into(),
            backup_dir: root.join("backup/a"),
            backup_keep: 1,
        };
        let target = Target::Outbox(root.join("outbox"));
        assert_eq!(
            target.deliver(&job, &mut Progress::default()).unwrap(),
            sealed.bytes
        );
        assert!(root.join("outbox/c_a_0000000001.log.gz").exists());
        assert!(root
            .join("backup/a/0000000001-20261126T000000Z.log.gz")
            .exists());
        assert!(!sealed.path.exists());

        fs::write(
            root.join("backup/a/0000000002-20261126T000000Z.log.gz"),
            b"x",
        )
        .unwrap();
        prune_backup(&root.join("backup/a"), 1).unwrap();
        assert!(!root
            .join("backup/a/0000000001-20261126T000000Z.log.gz")
            .exists());
        fs::remove_dir_all(root).unwrap();
    }
}
