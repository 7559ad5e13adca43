//! One upload while it arrives: its temp file in `state_dir/ftp/incoming/`, what it is
//! (`content.rs`: text, gzip, zip; TYPE A conversion) and the limits checked as bytes come
//! in. The data connection (`data.rs`) feeds it; the server decides what a refusal ends.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use super::command::escaped;
use super::content;
use super::jobs::Writeback;
use super::session::Reply;

/// An upload's writeback is started every this many bytes (`jobs::Writeback`).
const WRITEBACK_WINDOW: u64 = 8 << 20;

pub struct Upload {
    pub folder: String,
    pub name: String,
    pub temp: PathBuf,
    pub file: Arc<File>,
    /// Bytes received.
    pub bytes: u64,
    /// Bytes written to `file` (fewer than received when TYPE A drops CRs).
    pub written: u64,
    pub content: content::Upload,
}

/// Writes an upload's (converted) bytes to its file, starting writeback each window.
pub fn write_upload(u: &mut Upload, data: &[u8], writeback: &Writeback) -> io::Result<()> {
    (&*u.file).write_all(data)?;
    let before = u.written;
    u.written += data.len() as u64;
    let window = |b: u64| b / WRITEBACK_WINDOW;
    if window(before) != window(u.written) {
        let end = window(u.written) * WRITEBACK_WINDOW;
        writeback.start(&u.file, end - WRITEBACK_WINDOW, WRITEBACK_WINDOW);
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
