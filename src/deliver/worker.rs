//! The delivery thread: performs each batch's upload plan (`plan.rs`) against the target,
//! checks sealed files before they leave, moves delivered ones to `backup/SOURCE/` and
//! quarantines damaged segments in `spool/SOURCE/quarantine/`.
//!
//! It decides nothing about order, batching or timing: the loop sends one job per batch (one
//! segment, or consecutive ones: `batch.rs`), at most one per source at a time, and retries
//! when it chooses, with the same files. The thread only remembers each source's plan between
//! attempts, so a retry resumes where the last attempt stopped (no second upload after a
//! failed `done_upload` or a failed move to backup). Outcomes go back through the `report`
//! function the spool's worker set gives it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::api::Failure;
use super::plan::{Action, Kept, Outcome, Plan};
use super::{outbox, Console, DeliverJob, Target};
use crate::fsx::{annotate, sync_dir};
use crate::segment;

/// What the delivery thread is told: a new target (at start and reload), or a segment.
pub enum DeliverMsg {
    Target(Target),
    Job(DeliverJob),
}

/// How one attempt at a batch ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered and moved to backup; the bytes sent.
    Delivered(u64),
    /// A file was damaged: its segment (`paths`) is in quarantine, not delivered; the rest of
    /// the batch was not delivered either and waits for the next job.
    Quarantined {
        paths: Vec<PathBuf>,
        reason: String,
    },
    Failed(Failure),
    /// Failed after some of the batch was stored or acknowledged (`Plan::kept`): the retry
    /// must send the same files.
    Held(Failure, Kept),
    /// Not begun: the host's API budget allows no call for this long. The loop chooses the
    /// batch again then, so that segments sealed during the wait leave with it
    /// (`Plan::unstarted`).
    Deferred(Duration),
}

/// Where damaged segments go, inside the source's spool folder (no segment name, so recovery
/// and `lc tail` pass it by).
pub const QUARANTINE: &str = "quarantine";

/// Serves jobs until the channel closes.
pub fn run(rx: Receiver<DeliverMsg>, report: impl Fn(DeliverJob, Delivery)) {
    let mut target = None;
    // Each source's plan for the batch it was last working on.
    let mut plans: HashMap<String, (Vec<PathBuf>, Plan)> = HashMap::new();
    while let Ok(msg) = rx.recv() {
        let job = match msg {
            DeliverMsg::Target(t) => {
                target = Some(t);
                continue;
            }
            DeliverMsg::Job(job) => job,
        };
        let result = match &target {
            Some(t) => attempt(t, &job, &mut plans),
            None => Delivery::Failed(Failure::Transient {
                reason: "no delivery target configured".into(),
                after: None,
            }),
        };
        report(job, result);
    }
}

/// One attempt: resumes the source's plan for this batch (a plan for other files is stale:
/// the loop moved on, or eviction took some of them), runs it until it ends or fails.
fn attempt(
    target: &Target,
    job: &DeliverJob,
    plans: &mut HashMap<String, (Vec<PathBuf>, Plan)>,
) -> Delivery {
    if job.parts.is_empty() {
        return Delivery::Delivered(0);
    }
    let outbox = matches!(target, Target::Outbox(_));
    let entry = plans
        .entry(job.source.clone())
        .or_insert_with(|| (job.parts.clone(), Plan::new(job.parts.len(), outbox)));
    if entry.0 != job.parts || entry.1.outbox != outbox {
        *entry = (job.parts.clone(), Plan::new(job.parts.len(), outbox));
    }
    if let (Target::Console(c), true) = (target, entry.1.unstarted()) {
        if let Some(wait) = c.budget_wait() {
            // The plan stays: chosen again as it is, the batch is not checked twice.
            return Delivery::Deferred(wait);
        }
    }
    match drive(target, job, &mut entry.1) {
        Delivery::Failed(f) if entry.1.kept() != Kept::Nothing => Delivery::Held(f, entry.1.kept()),
        failed @ Delivery::Failed(_) => failed,
        done => {
            plans.remove(&job.source);
            done
        }
    }
}

/// Runs `plan` until it reports, or an action fails.
pub fn drive(target: &Target, job: &DeliverJob, plan: &mut Plan) -> Delivery {
    loop {
        let action = plan.next(Instant::now());
        let outcome = match &action {
            Action::ReportDelivered => return Delivery::Delivered(plan.bytes()),
            Action::ReportQuarantined { part, reason } => {
                return Delivery::Quarantined {
                    paths: segment_of(&job.parts, *part),
                    reason: reason.clone(),
                }
            }
            Action::Check => check_parts(&job.parts),
            Action::Place => match target {
                Target::Outbox(dir) => result(place(job, dir)),
                Target::Console(_) => Outcome::Failed(transient("place without an outbox".into())),
            },
            Action::GetUrl { part } => match console(target) {
                Ok(c) => match c.upload_url(&job.name_of(&job.parts[*part]), &job.format) {
                    Ok(t) => Outcome::Url(t),
                    Err(f) => Outcome::Failed(f),
                },
                Err(f) => Outcome::Failed(f),
            },
            Action::Put { parts, target: t } => match console(target) {
                Ok(c) => failed_or_ok(c.put_parts(t, &job.parts[parts.clone()])),
                Err(f) => Outcome::Failed(f),
            },
            Action::DoneUpload { url } => match console(target) {
                Ok(c) => failed_or_ok(c.done_upload(url, &job.source)),
                Err(f) => Outcome::Failed(f),
            },
            Action::Move => result(to_backup(job)),
            Action::Quarantine { part } => result(quarantine(&segment_of(&job.parts, *part))),
        };
        if let Some(f) = plan.apply(&action, outcome, Instant::now()) {
            return Delivery::Failed(f);
        }
    }
}

fn console(target: &Target) -> Result<&Console, Failure> {
    match target {
        Target::Console(c) => Ok(c),
        Target::Outbox(_) => Err(transient("the target changed during the upload".into())),
    }
}

fn transient(reason: String) -> Failure {
    Failure::Transient {
        reason,
        after: None,
    }
}

fn result(r: io::Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Failed(transient(e.to_string())),
    }
}

fn failed_or_ok(r: Result<(), Failure>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(f) => Outcome::Failed(f),
    }
}

/// The files of `parts` that belong to the segment of file `part` (its sealed parts).
fn segment_of(parts: &[PathBuf], part: usize) -> Vec<PathBuf> {
    let seq = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| segment::parse_seq(&n.to_string_lossy()))
    };
    let want = seq(&parts[part]);
    if want.is_none() {
        return vec![parts[part].clone()];
    }
    parts.iter().filter(|p| seq(p) == want).cloned().collect()
}

/// Checks each part: a `.gz` must decompress whole, its CRC and length trailer matching (every
/// member, since parts and uploads may be concatenated members); a `.zip` must end with its
/// central directory. A file that cannot be read is a failure to retry, not damage.
fn check_parts(parts: &[PathBuf]) -> Outcome {
    let mut sizes = Vec::with_capacity(parts.len());
    for (i, p) in parts.iter().enumerate() {
        let file = match File::open(p) {
            Ok(f) => f,
            Err(e) => return Outcome::Failed(transient(annotate(p, e).to_string())),
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        sizes.push(len);
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let damage = match segment::Name::parse(&name).map(|n| n.kind) {
            Some(segment::Kind::Zip) => zip_damage(file, len),
            _ => gzip_damage(file, len),
        };
        match damage {
            Ok(None) => {}
            Ok(Some(why)) => return Outcome::Damaged(i, format!("{}: {why}", p.display())),
            Err(e) => return Outcome::Failed(transient(annotate(p, e).to_string())),
        }
    }
    Outcome::Checked(sizes)
}

/// Why a gzip file is damaged, if it is. Decompresses it (into nothing).
pub fn gzip_damage(file: File, len: u64) -> io::Result<Option<String>> {
    if len == 0 {
        return Ok(Some("empty, not a gzip file".into()));
    }
    let mut dec = flate2::read::MultiGzDecoder::new(io::BufReader::with_capacity(256 * 1024, file));
    let mut sink = vec![0u8; 256 * 1024];
    loop {
        match dec.read(&mut sink) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidData
                        | io::ErrorKind::InvalidInput
                        | io::ErrorKind::UnexpectedEof
                ) =>
            {
                return Ok(Some(format!("not an intact gzip file ({e})")));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Why a zip file is damaged, if it is: its end of central directory record must be in the
/// last 64 KiB + 22 bytes (APPNOTE 4.3.16), which a truncated upload lacks.
fn zip_damage(mut file: File, len: u64) -> io::Result<Option<String>> {
    use std::io::{Seek, SeekFrom};
    let tail = len.min(65_535 + 22);
    file.seek(SeekFrom::Start(len - tail))?;
    let mut buf = Vec::with_capacity(tail as usize);
    file.take(tail).read_to_end(&mut buf)?;
    let found = buf.len() >= 22 && buf.windows(4).rev().any(|w| w == b"PK\x05\x06");
    Ok((!found).then(|| "not an intact zip file (no end of central directory)".into()))
}

fn place(job: &DeliverJob, dir: &Path) -> io::Result<()> {
    let about = outbox::About {
        source: &job.source,
        format: &job.format,
        collector: &job.collector,
    };
    for p in &job.parts {
        outbox::deliver(p, dir, &job.name_of(p), &about)?;
    }
    Ok(())
}

/// Moves a delivered batch's files into backup (a file already there from an earlier attempt
/// stays), drops their FTP sidecars and keeps the newest `backup_keep` backups. A prune that
/// fails is logged: the batch is delivered either way, and the next prune tries again.
fn to_backup(job: &DeliverJob) -> io::Result<()> {
    fs::create_dir_all(&job.backup_dir).map_err(|e| annotate(&job.backup_dir, e))?;
    for p in &job.parts {
        let file_name = p.file_name().expect("segment paths have a file name");
        let backup = job.backup_dir.join(file_name);
        match fs::rename(p, &backup) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound && backup.exists() => {}
            Err(e) => return Err(annotate(&backup, e)),
        }
    }
    // An FTP upload is listed until delivered: that ends now (a text upload, sealed by lc,
    // may be in the middle of a batch).
    for p in &job.parts {
        if segment::parse_part(&p.file_name().unwrap_or_default().to_string_lossy()) == 0 {
            let _ = fs::remove_file(segment::sidecar_path(p));
        }
    }
    if let Err(e) = prune_backup(&job.backup_dir, job.backup_keep) {
        log::warn!("source {}: pruning backup: {e}", job.source);
    }
    Ok(())
}

/// Moves a damaged segment's parts (and sidecar) to the spool's quarantine folder.
fn quarantine(parts: &[PathBuf]) -> io::Result<()> {
    let Some(dir) = parts.first().and_then(|p| p.parent()) else {
        return Ok(());
    };
    let q = dir.join(QUARANTINE);
    fs::create_dir_all(&q).map_err(|e| annotate(&q, e))?;
    let side = segment::sidecar_path(&parts[0]);
    for p in parts.iter().chain([&side]) {
        let Some(name) = p.file_name() else { continue };
        match fs::rename(p, q.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(annotate(p, e)),
        }
    }
    sync_dir(dir)
}

/// Keeps the newest `keep` segment files of `dir` (by sequence number in the name).
pub fn prune_backup(dir: &Path, keep: usize) -> io::Result<()> {
    let files: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(|e| annotate(dir, e))?
        .flatten()
        .filter_map(|e| {
            Some((
                segment::parse_seq(&e.file_name().to_string_lossy())?,
                e.path(),
            ))
        })
        .collect();
    keep_newest(files, keep)
}

/// Removes all but the last `keep` of `files` in the order of their keys (oldest first). One
/// file that will not go does not keep the others: the first error is returned at the end.
pub fn keep_newest<K: Ord>(mut files: Vec<(K, PathBuf)>, keep: usize) -> io::Result<()> {
    if files.len() <= keep {
        return Ok(());
    }
    files.sort();
    let mut first_error = None;
    for (_, path) in &files[..files.len() - keep] {
        if let Err(e) = fs::remove_file(path) {
            first_error.get_or_insert(annotate(path, e));
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tmp(name: &str) -> PathBuf {
        crate::testing::fresh_dir(&format!("deliver-{name}"))
    }

    fn gz(text: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text).unwrap();
        e.finish().unwrap()
    }

    /// Source `a`'s job for one sealed file under `root`, `spool/a/0000000003-x.log.gz`,
    /// written with `content`; backups in `root/backup/a`, `keep` of them kept.
    fn job_of(root: &Path, content: &[u8], keep: usize) -> DeliverJob {
        let spool = root.join("spool/a");
        fs::create_dir_all(&spool).unwrap();
        let part = spool.join("0000000003-x.log.gz");
        fs::write(&part, content).unwrap();
        DeliverJob {
            source: "a".into(),
            format: "SQUID".into(),
            parts: vec![part],
            collector: "c".into(),
            prefix: "c_a_".into(),
            backup_dir: root.join("backup/a"),
            backup_keep: keep,
        }
    }

    #[track_caller]
    fn check_damage(name: &str, content: &[u8], damaged: bool) {
        let dir = tmp("damage");
        let p = dir.join(name);
        fs::write(&p, content).unwrap();
        match check_parts(std::slice::from_ref(&p)) {
            Outcome::Checked(n) => {
                assert!(!damaged && n == [content.len() as u64], "{name}: intact")
            }
            Outcome::Damaged(0, why) => assert!(damaged, "{name}: {why}"),
            other => panic!("{name}: {other:?}"),
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sealed_files_are_checked_before_they_leave() {
        let good = gz(b"one\ntwo\n");
        let mut two = good.clone();
        two.extend(gz(b"three\n"));
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 0xff;
        let g = "0000000001-x.log.gz";
        check_damage(g, &good, false);
        check_damage(g, &two, false);
        check_damage(g, &good[..good.len() - 4], true);
        check_damage(g, &good[..10], true);
        check_damage(g, &bad_crc, true);
        check_damage(g, b"", true);
        check_damage(g, b"plain text\n", true);
        let z = "0000000001-x.zip";
        let mut zip = b"PK\x03\x04 some entry ".to_vec();
        zip.extend(b"PK\x05\x06");
        zip.extend([0u8; 18]);
        check_damage(z, &zip, false);
        check_damage(z, &zip[..zip.len() - 20], true);
    }

    #[test]
    fn outbox_then_backup_and_a_prune_that_fails_does_not_undo_delivery() {
        let root = tmp("outbox");
        let content = gz(b"one\n");
        let job = job_of(&root, &content, 0);
        let part = job.parts[0].clone();
        // Something in backup that cannot be removed (a folder named like a segment).
        fs::create_dir_all(root.join("backup/a/0000000001-x.log.gz")).unwrap();
        let target = Target::Outbox(root.join("outbox"));
        let mut plan = Plan::new(1, true);
        assert_eq!(
            drive(&target, &job, &mut plan),
            Delivery::Delivered(content.len() as u64)
        );
        assert!(root.join("outbox/c_a_0000000003-x.log.gz").exists());
        assert!(!part.exists());
        // The delivered file itself was pruned (keep 0), the folder could not be.
        assert!(!root.join("backup/a/0000000003-x.log.gz").exists());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_failed_move_to_backup_is_retried_as_a_move() {
        let root = tmp("move");
        let job = job_of(&root, &gz(b"one\n"), 5);
        // backup/a is a file: the move fails.
        fs::create_dir_all(root.join("backup")).unwrap();
        fs::write(root.join("backup/a"), b"").unwrap();
        let outbox = root.join("outbox");
        let target = Target::Outbox(outbox.clone());
        let mut plans = HashMap::new();
        assert!(matches!(
            attempt(&target, &job, &mut plans),
            Delivery::Held(_, Kept::Acked)
        ));
        assert_eq!(plans["a"].1.stage, super::super::plan::Stage::Acked);
        // Whatever the outbox's reader did meanwhile, the segment is not placed again.
        fs::remove_file(outbox.join("c_a_0000000003-x.log.gz")).unwrap();
        fs::remove_file(root.join("backup/a")).unwrap();
        assert!(matches!(
            attempt(&target, &job, &mut plans),
            Delivery::Delivered(_)
        ));
        assert!(!outbox.join("c_a_0000000003-x.log.gz").exists());
        assert!(root.join("backup/a/0000000003-x.log.gz").exists());
        assert!(plans.is_empty());
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_damaged_segment_goes_to_quarantine_with_its_sidecar() {
        let root = tmp("quarantine");
        let job = job_of(&root, &gz(b"one\n")[..12], 5);
        let (spool, part) = (root.join("spool/a"), job.parts[0].clone());
        fs::write(spool.join("0000000003-x.name"), b"fw.log.gz\n12\n").unwrap();
        let target = Target::Outbox(root.join("outbox"));
        let got = attempt(&target, &job, &mut HashMap::new());
        assert!(
            matches!(&got, Delivery::Quarantined { paths, reason } if reason.contains("gzip") && *paths == [part.clone()]),
            "{got:?}"
        );
        assert!(spool.join("quarantine/0000000003-x.log.gz").exists());
        assert!(spool.join("quarantine/0000000003-x.name").exists());
        assert!(!part.exists());
        assert!(!root.join("outbox/c_a_0000000003-x.log.gz").exists());
        fs::remove_dir_all(root).unwrap();
    }
}
