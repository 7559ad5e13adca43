//! Recovery of a source's spool folder at start (or when a reload adds the source): what a
//! previous run left (open segments to cut at their last line and seal, half-done seals,
//! sealed files, stale sidecars), which sequence number comes next, the folder's lock, and
//! the quarantine of anything named like a segment that is not lc's own regular file.
//!
//! Blocking (fsync of cut segments): it runs before the loop starts, or on the chores thread.

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::Sealed;
use crate::clock;
use crate::fsx::annotate;
use crate::segment::{gz_path, parse_part, parse_seq};

/// What the scan of a spool folder found.
pub(super) struct Found {
    pub lock: nix::fcntl::Flock<File>,
    pub next_seq: u64,
    /// Sealed files, oldest first.
    pub sealed: Vec<Sealed>,
    pub recovery: Recovery,
}

/// Scans `dir` (the source's spool) and `backup_dir`, both existing: locks the folder,
/// quarantines planted files, removes what half-done work left, cuts torn tails.
pub(super) fn scan(dir: &Path, backup_dir: &Path) -> io::Result<Found> {
    // Existing folders on a read-only mount (a state_dir systemd's ProtectSystem does not
    // let the service write) must stop the start, not lose every line later.
    for d in [dir, backup_dir] {
        let probe = d.join(".lc-write-test");
        fs::write(&probe, b"")
            .and_then(|()| fs::remove_file(&probe))
            .map_err(|e| {
                io::Error::new(e.kind(), format!("{}: cannot write here: {e}", d.display()))
            })?;
    }
    // One instance serves a source: a second one (a port moved between instances, an
    // `lc run` beside the units) must not seal, deliver or evict the same files.
    let lock = lock_folder(dir)?;
    let mut recovery = Recovery::default();
    let mut max_seq = 0u64;
    let mut sealed = Vec::new();
    let mut raw = Vec::new();
    let mut sidecars = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| annotate(dir, e))? {
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
            quarantine(dir, &path, &why)?;
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
                // Corrected below for an FTP upload (its sidecar is there).
                alone: file_name.ends_with(".zip"),
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
    if let Ok(entries) = fs::read_dir(backup_dir) {
        for entry in entries.flatten() {
            if let Some(seq) = parse_seq(&entry.file_name().to_string_lossy()) {
                max_seq = max_seq.max(seq);
            }
        }
    }
    // A name sidecar whose upload was delivered before a crash removed it.
    for (seq, path) in &sidecars {
        if !sealed.iter().any(|s| s.seq == *seq)
            && !recovery.to_seal.iter().any(|(s, _, _)| s == seq)
        {
            let _ = fs::remove_file(path);
        }
    }
    // An FTP upload sealed as it came goes alone (one sealed by lc from text would not need
    // to, but its name no longer tells).
    for s in sealed.iter_mut() {
        s.alone |= sidecars.iter().any(|(seq, _)| *seq == s.seq);
    }
    sealed.sort_by_key(|s| (s.seq, s.part));
    recovery.to_seal.sort_by_key(|(seq, _, _)| *seq);
    // Files alone do not remember the highest number once backup/ is empty
    // (`backup_keep = 0`, a low-disk prune): the `.seq` file does.
    let next_seq = (max_seq + 1).max(read_next_seq(dir));
    Ok(Found {
        lock,
        next_seq,
        sealed,
        recovery,
    })
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
pub(super) fn read_next_seq(dir: &Path) -> u64 {
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
pub(super) fn write_next_seq(dir: &Path, next: u64) -> io::Result<()> {
    let tmp = dir.join(".seq.tmp");
    let _ = fs::remove_file(&tmp);
    let mut f = crate::careful::create_new(&tmp, 0o600)?;
    f.write_all(format!("{next}\n").as_bytes())
        .map_err(|e| annotate(&tmp, e))?;
    fs::rename(&tmp, dir.join(SEQ_FILE)).map_err(|e| annotate(&tmp, e))
}

/// Takes the exclusive lock of a source's spool folder, or says who holds it.
fn lock_folder(dir: &Path) -> io::Result<nix::fcntl::Flock<File>> {
    crate::fsx::lock_folder(dir, LOCK_FILE).map_err(|held| match held {
        Ok(holder) => io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{}: in use by another lc instance{}; a source is served by one instance at a time (stop the other, or move the source in both configs and reload both)",
                dir.display(),
                if holder.is_empty() { String::new() } else { format!(" (pid {holder})") }
            ),
        ),
        Err(e) => e,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::SourceSpool;

    fn tmp(name: &str) -> PathBuf {
        crate::testing::fresh_dir(&format!("spool-{name}"))
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
            spool.inv.sealed_iter().map(|s| s.seq).collect::<Vec<_>>(),
            vec![2]
        );
        assert_eq!(spool.inv.next_seq(), 10);
        assert!(!dir.join("0000000004-20261126T000000Z.log.gz.tmp").exists());
        assert!(!dir.join("0000000005-20261126T000000Z.log").exists());
        assert!(!dir.join("0000000003-20261126T000000Z-p1.log.gz").exists());
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
        assert_eq!(spool.inv.next_seq(), 3);
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
        assert_eq!(spool.inv.next_seq(), 10_000_000_001);
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
        assert_eq!(spool.inv.sealed_files(), 0);
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
}
