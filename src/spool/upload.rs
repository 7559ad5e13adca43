//! FTP uploads in the spool: where a committed upload lands (raw text, or sealed as it is),
//! the commit itself (final newline, fsync, `.name` sidecar, rename), and the uploads still
//! listed because their sidecar is there. The loop reserves the sequence number
//! (`SourceSpool::reserve_upload`); the commit runs on the FTP worker thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::clock;
use crate::fsx::{annotate, sync_dir};
use crate::ftp::content::Kind;
use crate::segment::{gz_path, sidecar_path};

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
    sync_dir(raw.parent().unwrap_or(Path::new(".")))?;
    Ok((dest, size, bytes))
}

/// The most lines of an upload the live format check sees, and the bytes read for them.
const SAMPLE_LINES: usize = 125;
const SAMPLE_BYTES: u64 = 64 * 1024;

/// The first lines of an upload just committed to `path` (a gzip file decompressed), for the
/// source's live format check: at most `SAMPLE_LINES` whole lines from its first
/// `SAMPLE_BYTES`. A zip, or a file that cannot be read, gives none.
pub fn sample_lines(path: &Path, kind: Kind) -> Vec<Vec<u8>> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut head = Vec::new();
    let read = match kind {
        Kind::Text => file.take(SAMPLE_BYTES).read_to_end(&mut head),
        Kind::Gzip => flate2::read::MultiGzDecoder::new(file)
            .take(SAMPLE_BYTES)
            .read_to_end(&mut head),
        Kind::Zip => return Vec::new(),
    };
    if read.is_err() && head.is_empty() {
        return Vec::new();
    }
    // Only whole lines: the last piece may be cut by the byte limit.
    let end = head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    head[..end]
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .take(SAMPLE_LINES)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect()
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
        let bytes = match crate::careful::read_in_folder(&path, MAX_SIDECAR_BYTES) {
            Ok(b) => b,
            // Delivered (and its sidecar removed) while we looked.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                log::warn!("{e}; its upload is not listed");
                continue;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::part_path;
    use crate::spool::SourceSpool;

    fn tmp(name: &str) -> PathBuf {
        crate::testing::fresh_dir(&format!("spool-{name}"))
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
        spool.inv.raw(seq, raw.clone(), bytes);
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
        // The spool folder is the service's (as root, given to another user): root's secret
        // with a second name in it is a planted hard link. Run as that user, the secret is its
        // own file, which a second name does not make dangerous.
        let as_root = nix::unistd::geteuid().is_root();
        if as_root {
            nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        }
        let listed = spooled_uploads(&dir);
        let names: Vec<&str> = listed.iter().map(|u| u.name.as_str()).collect();
        if as_root {
            assert_eq!(names, ["fine.log"]);
        } else {
            assert_eq!(names, ["fine.log", "root only"]);
        }
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
            let file = SourceSpool::sealed_upload(seq, at, bytes);
            spool.inv.adopted_sealed(file, std::time::Instant::now());
        }
        // Sealed as they are after a restart too, their sidecars kept.
        let paths = |s: &SourceSpool| {
            s.inv
                .sealed_iter()
                .map(|x| x.path.clone())
                .collect::<Vec<_>>()
        };
        let before = paths(&spool);
        drop(spool);
        let (again, rec) = SourceSpool::recover(&state, "a", 1 << 20).unwrap();
        assert!(rec.to_seal.is_empty());
        assert_eq!(paths(&again), before);
        assert_eq!(spooled_uploads(&again.dir).len(), 2);
        fs::remove_dir_all(state).unwrap();
    }
}
