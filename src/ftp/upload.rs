//! One upload while it arrives: its temp file in `state_dir/ftp/incoming/`, what it is
//! (`content.rs`: text, gzip, zip; TYPE A conversion) and the limits checked as bytes come
//! in; and the `lc-ftp-write` thread that writes its bytes to the file, so the event loop
//! never does (ARCHITECTURE: the loop only does page-cache writes of buffered lines).
//!
//! The loop reads the data connection, converts, and hands each piece to [`Writer`]; at most
//! [`UPLOAD_QUEUE_BYTES`] of one upload wait for the thread, and while they do, the loop
//! reads no more of that connection (TCP flow control pauses the client). The thread
//! answers each piece with [`Wrote`] through a channel and the waker; an upload is complete
//! when its connection ended cleanly and nothing of it waits any more.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::Waker;

use super::command::escaped;
use super::content;
use super::session::Reply;

/// An upload's writeback is started every this many bytes, so the fsync before its 226
/// waits only for its last window.
const WRITEBACK_WINDOW: u64 = 8 << 20;
/// Bytes of one upload handed to the writer and not written yet, at most (one more read
/// may come on top): the loop stops reading its data connection at this.
pub const UPLOAD_QUEUE_BYTES: u64 = 2 << 20;

pub struct Upload {
    /// Unique among the uploads of this process: the writer's answers name it.
    pub id: u64,
    pub folder: String,
    pub name: String,
    pub temp: PathBuf,
    pub file: Arc<File>,
    /// Bytes received.
    pub bytes: u64,
    /// Bytes handed to the writer (fewer than received when TYPE A drops CRs).
    pub written: u64,
    /// Bytes handed to the writer and not written yet.
    pub in_flight: u64,
    pub content: content::Upload,
}

impl Upload {
    pub fn new(
        id: u64,
        folder: String,
        name: String,
        temp: PathBuf,
        file: File,
        ascii: bool,
    ) -> Upload {
        Upload {
            id,
            folder,
            name,
            temp,
            file: Arc::new(file),
            bytes: 0,
            written: 0,
            in_flight: 0,
            content: content::Upload::new(ascii),
        }
    }

    /// `data` (converted bytes of this upload) as the next piece for the writer; counted as
    /// in flight until the writer answers.
    pub fn piece(&mut self, data: Vec<u8>) -> Option<Piece> {
        if data.is_empty() {
            return None;
        }
        let len = data.len() as u64;
        let piece = Piece {
            id: self.id,
            file: Arc::clone(&self.file),
            offset: self.written,
            data,
        };
        self.written += len;
        self.in_flight += len;
        Some(piece)
    }

    /// Whether the loop must wait for the writer before reading more of this upload.
    pub fn throttled(&self) -> bool {
        self.in_flight >= UPLOAD_QUEUE_BYTES
    }
}

/// Bytes of one upload for the writer to append to its file.
#[derive(Debug)]
pub struct Piece {
    pub id: u64,
    file: Arc<File>,
    /// Where `data` goes in the file.
    pub offset: u64,
    pub data: Vec<u8>,
}

/// The writer's answer for one piece.
pub struct Wrote {
    pub id: u64,
    pub bytes: u64,
    pub result: io::Result<()>,
}

impl Wrote {
    /// The reply that ends an upload whose write failed.
    pub fn refusal(e: &io::Error) -> Reply {
        match e.raw_os_error() {
            Some(nix::libc::ENOSPC) | Some(nix::libc::EDQUOT) => Reply::new(
                452,
                "the collector's disk is full; upload discarded, try again later",
            ),
            _ => Reply::new(451, "cannot store the file; upload discarded"),
        }
    }
}

/// The `lc-ftp-write` thread: writes uploads' bytes and starts their writeback.
pub struct Writer {
    tx: Option<Sender<Piece>>,
    pub rx: Receiver<Wrote>,
    handle: Option<JoinHandle<()>>,
}

impl Writer {
    pub fn spawn(waker: Arc<Waker>) -> io::Result<Writer> {
        let (tx, pieces) = mpsc::channel::<Piece>();
        let (out, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("lc-ftp-write".into())
            .spawn(move || {
                for p in pieces {
                    let bytes = p.data.len() as u64;
                    let result = write_piece(&p);
                    if out
                        .send(Wrote {
                            id: p.id,
                            bytes,
                            result,
                        })
                        .is_err()
                    {
                        break;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Writer {
            tx: Some(tx),
            rx,
            handle: Some(handle),
        })
    }

    /// Hands a piece to the thread.
    pub fn send(&self, piece: Piece) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(piece);
        }
    }

    /// Writes what is queued and stops the thread.
    pub fn join(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Writes one piece (appended: pieces of one upload come in order) and starts writeback of
/// each window it completes. `sync_file_range` may block on a busy disk; the loop does not.
fn write_piece(p: &Piece) -> io::Result<()> {
    (&*p.file).write_all(&p.data)?;
    let end = p.offset + p.data.len() as u64;
    let window = |b: u64| b / WRITEBACK_WINDOW;
    if window(p.offset) != window(end) {
        use std::os::fd::AsRawFd;
        let start = window(end) * WRITEBACK_WINDOW - WRITEBACK_WINDOW;
        // SAFETY: a plain syscall on a descriptor the Arc keeps open; it only starts
        // writeback and touches no memory of ours.
        unsafe {
            nix::libc::sync_file_range(
                p.file.as_raw_fd(),
                start as i64,
                WRITEBACK_WINDOW as i64,
                nix::libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    Ok(())
}

/// A `.gz` or `.zip` upload is delivered as the file it is, in one PUT: it cannot be cut at
/// lines as text is, so one larger than `max` (under the API's 64 MB per PUT) is refused
/// while it arrives, rather than acknowledged and never delivered.
pub fn too_large(u: &Upload, max: u64) -> Option<Reply> {
    let kind = u.content.kind()?;
    (kind.precompressed() && u.bytes > max).then(|| {
        log::warn!(
            "ftp: /{}/{}: a {kind:?} file larger than max_upload_bytes ({max}) cannot be delivered in one upload; refused",
            u.folder,
            escaped(&u.name)
        );
        Reply::new(
            552,
            format!(
                "a compressed file is delivered whole and must not exceed {max} bytes; upload discarded (split it, or send it uncompressed)"
            ),
        )
    })
}
