//! `lc upload --from DIR`: the connected side of an air gap. Delivers the files a `dir:`
//! outbox produced (`*.log.gz`, `*.zip`, each with its `NAME.manifest`, `deliver/outbox.rs`)
//! after they crossed to DIR, with the same client, pacing, proxy, trust and plan as `lc run`
//! (`deliver::worker::drive`), then moves each to `DIR/backup/SOURCE/`.
//!
//! What is taken: a file whose manifest is there, names it, and matches its size and SHA-256;
//! the plan's check then reads the whole gzip stream (or a zip's directory) as before any
//! upload. A file without a manifest, or shorter than its manifest says, is still being copied
//! and is left for a later run. A longer file, another digest, or a damaged gzip or zip is
//! corrupt: named, counted and moved with its manifest to `DIR/quarantine/`, so later runs do
//! not read it again and the operator finds it in one place. Each source's files go in order
//! (stamp, then sequence, then part), one at a time; a failure that survives the retries
//! stops that source for this run, the others continue. A file leaves DIR only after
//! `done_upload` succeeded: a crash before that delivers it again at most once. One run per
//! DIR at a time (`DIR/.lock`).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{self, Config};
use crate::deliver::api::Failure;
use crate::deliver::outbox::{self, Manifest, MANIFEST_SUFFIX, MAX_MANIFEST_BYTES};
use crate::deliver::plan::Plan;
use crate::deliver::worker::{self, Delivery, QUARANTINE};
use crate::deliver::{Console, DeliverJob, Target};
use crate::fsx::{annotate, sync_dir};
use crate::segment;

/// Delivered files go to `DIR/backup/SOURCE/` (in DIR, so the move is a rename).
pub const BACKUP: &str = "backup";
const LOCK_FILE: &str = ".lock";
/// Attempts at one file in one run before its source waits for the next run.
pub const ATTEMPTS: u32 = 6;
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(60);
/// A Retry-After longer than this ends the source's run instead of holding the process.
const WAIT_MAX: Duration = Duration::from_secs(600);

/// What one data file in DIR is, judged from its manifest and size (pure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Complete if its digest matches: hash it.
    Hash(Manifest),
    /// Not yet complete (no manifest, or fewer bytes than it says): left for a later run.
    Waiting(String),
    /// Never deliverable as it is.
    Corrupt(String),
}

/// Judges data file `name` of `size` bytes by its manifest's text (`None`: no manifest).
pub fn judge(name: &str, manifest: Option<&str>, size: u64) -> Verdict {
    let Some(text) = manifest else {
        return Verdict::Waiting("no manifest yet".into());
    };
    let m = match Manifest::parse(text) {
        Ok(m) => m,
        // A manifest copied in place may be read half-written: wait, saying why.
        Err(e) => return Verdict::Waiting(format!("manifest not (yet) valid: {e}")),
    };
    if m.file != name {
        return Verdict::Corrupt(format!("its manifest describes {:?}", m.file));
    }
    if size < m.size {
        return Verdict::Waiting(format!("{size} of {} bytes: still being copied?", m.size));
    }
    if size > m.size {
        return Verdict::Corrupt(format!("{size} bytes, its manifest says {}", m.size));
    }
    Verdict::Hash(m)
}

/// The data files of DIR by name: `*.log.gz` and `*.zip`, not hidden (a transfer's temp names).
pub fn is_data(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".log.gz") || name.ends_with(".zip"))
}

/// Unparsed last, stamp, sequence, part, name.
pub type OrderKey = (bool, String, u64, u32, String);

/// Order within a source: by the segment's stamp, sequence and part after the
/// `SOURCE_COLLECTOR_` prefix, then by name (a name that does not parse goes last).
pub fn order_key(m: &Manifest) -> OrderKey {
    let prefix = format!("{}_{}_", m.source, m.collector);
    match m.file.strip_prefix(&prefix).and_then(segment::Name::parse) {
        Some(n) => (false, n.stamp, n.seq, n.part, m.file.clone()),
        None => (true, String::new(), 0, 0, m.file.clone()),
    }
}

/// How a run went.
#[derive(Debug, Default)]
pub struct Report {
    pub delivered: Vec<String>,
    pub waiting: Vec<String>,
    pub corrupt: Vec<String>,
    pub failed: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.corrupt.is_empty() && self.failed.is_empty()
    }

    pub fn summary(&self, dir: &Path) -> String {
        format!(
            "{}: delivered {}, waiting {}, corrupt {}, failed {}",
            dir.display(),
            self.delivered.len(),
            self.waiting.len(),
            self.corrupt.len(),
            self.failed.len()
        )
    }
}

/// Why `lc upload --from` cannot start: a config problem (exit 2) or a runtime one (exit 1).
pub enum Error {
    Config(String),
    Runtime(String),
}

/// The console `config` delivers to, or why there is none.
pub fn target(config: &Config) -> Result<Target, Error> {
    match &config.delivery.target {
        config::Target::Console(base) => Console::new(config, base)
            .map(|c| Target::Console(Box::new(c)))
            .map_err(Error::Config),
        config::Target::Outbox(dir) => Err(Error::Config(format!(
            "[delivery] url is dir:{}; lc upload --from delivers to a tenant: set url = https://TENANT (lc connect does)",
            dir.display()
        ))),
    }
}

/// Delivers every complete file of `dir` to `target`.
pub fn run(dir: &Path, target: &Target, backup_keep: usize) -> Result<Report, Error> {
    if !dir.is_dir() {
        return Err(Error::Runtime(format!("{}: not a folder", dir.display())));
    }
    let _lock = lock(dir).map_err(|e| Error::Runtime(e.to_string()))?;
    let mut report = Report::default();
    let mut sources: BTreeMap<String, Vec<(Manifest, PathBuf)>> = BTreeMap::new();
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| Error::Runtime(annotate(dir, e).to_string()))?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names.iter().filter(|n| is_data(n)) {
        let path = dir.join(name);
        match examine(dir, name) {
            Ok(Verdict::Hash(m)) => sources.entry(m.source.clone()).or_default().push((m, path)),
            Ok(Verdict::Waiting(why)) => {
                log::info!("{}: left for a later run: {why}", path.display());
                report.waiting.push(name.clone());
            }
            Ok(Verdict::Corrupt(why)) => reject(dir, name, &why, &mut report),
            Err(e) => {
                log::error!("{e}");
                report.failed.push(name.clone());
            }
        }
    }
    forget_delivered_manifests(dir, &names);
    for (source, mut files) in sources {
        files.sort_by_key(|(m, _)| order_key(m));
        for (m, path) in files {
            let job = DeliverJob {
                source: m.source.clone(),
                format: m.format.clone(),
                parts: vec![path.clone()],
                collector: m.collector.clone(),
                prefix: String::new(),
                backup_dir: dir.join(BACKUP).join(&source),
                backup_keep,
            };
            match deliver(target, &job) {
                Delivery::Delivered(bytes) => {
                    remove_manifest(dir, &m.file);
                    if let Err(e) = prune(&job.backup_dir, backup_keep) {
                        log::warn!("source {source}: pruning backup: {e}");
                    }
                    log::info!("source {source}: delivered {} ({bytes} bytes)", m.file);
                    report.delivered.push(m.file);
                }
                Delivery::Quarantined { reason: why, .. } => {
                    let _ = move_to_quarantine(dir, &format!("{}{MANIFEST_SUFFIX}", m.file));
                    log::error!("{why}; moved to {}", dir.join(QUARANTINE).display());
                    report.corrupt.push(m.file);
                }
                Delivery::Failed(f) | Delivery::Held(f, _) => {
                    log::error!(
                        "source {source}: delivering {} failed: {}; its files wait for the next run",
                        path.display(),
                        f.reason()
                    );
                    report.failed.push(m.file);
                    break;
                }
                // `drive` waits for the budget itself; only `lc run`'s worker defers.
                Delivery::Deferred(_) => {
                    report.failed.push(m.file);
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Reads a data file's manifest and size, and hashes it when they agree.
fn examine(dir: &Path, name: &str) -> io::Result<Verdict> {
    let path = dir.join(name);
    let manifest_path = dir.join(format!("{name}{MANIFEST_SUFFIX}"));
    let text = match File::open(&manifest_path) {
        Ok(f) => {
            let mut s = String::new();
            f.take(MAX_MANIFEST_BYTES)
                .read_to_string(&mut s)
                .map_err(|e| annotate(&manifest_path, e))?;
            Some(s)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(annotate(&manifest_path, e)),
    };
    let file = File::open(&path).map_err(|e| annotate(&path, e))?;
    let size = file.metadata().map_err(|e| annotate(&path, e))?.len();
    match judge(name, text.as_deref(), size) {
        Verdict::Hash(m) => {
            let (_, sha) = outbox::digest(file).map_err(|e| annotate(&path, e))?;
            if sha != m.sha256 {
                return Ok(Verdict::Corrupt(format!(
                    "sha256 {sha}, its manifest says {}",
                    m.sha256
                )));
            }
            Ok(Verdict::Hash(m))
        }
        other => Ok(other),
    }
}

/// One file through the plan, retried with backoff (and the server's Retry-After) up to
/// `ATTEMPTS` times; the plan is kept between attempts, as `lc run` keeps it.
fn deliver(target: &Target, job: &DeliverJob) -> Delivery {
    let mut plan = Plan::new(1, false);
    let mut delay = RETRY_MIN;
    let mut attempt = 1;
    loop {
        let failure = match worker::drive(target, job, &mut plan) {
            Delivery::Failed(f) => f,
            done => return done,
        };
        let wait = match &failure {
            Failure::Transient { after, .. } => after.unwrap_or(crate::clock::jitter(delay)),
            Failure::Permanent { .. } => return Delivery::Failed(failure),
        };
        if attempt >= ATTEMPTS || wait > WAIT_MAX {
            return Delivery::Failed(failure);
        }
        log::warn!(
            "source {}: {}: {}; attempt {} of {ATTEMPTS} in {:.1}s",
            job.source,
            job.parts[0].display(),
            failure.reason(),
            attempt + 1,
            wait.as_secs_f64()
        );
        std::thread::sleep(wait);
        delay = (delay * 2).min(RETRY_MAX);
        attempt += 1;
    }
}

fn reject(dir: &Path, name: &str, why: &str, report: &mut Report) {
    let moved = move_to_quarantine(dir, name)
        .and_then(|()| move_to_quarantine(dir, &format!("{name}{MANIFEST_SUFFIX}")));
    match moved {
        Ok(()) => log::error!(
            "{}: corrupt, not delivered: {why}; moved to {}",
            dir.join(name).display(),
            dir.join(QUARANTINE).display()
        ),
        Err(e) => log::error!(
            "{}: corrupt, not delivered: {why}; left in place ({e})",
            dir.join(name).display()
        ),
    }
    report.corrupt.push(name.to_string());
}

fn move_to_quarantine(dir: &Path, name: &str) -> io::Result<()> {
    let q = dir.join(QUARANTINE);
    fs::create_dir_all(&q).map_err(|e| annotate(&q, e))?;
    match fs::rename(dir.join(name), q.join(name)) {
        Ok(()) => sync_dir(dir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(annotate(&dir.join(name), e)),
    }
}

fn remove_manifest(dir: &Path, name: &str) {
    let path = dir.join(format!("{name}{MANIFEST_SUFFIX}"));
    if let Err(e) = fs::remove_file(&path) {
        if e.kind() != io::ErrorKind::NotFound {
            log::warn!("{}: {e}", path.display());
        }
    }
}

/// A manifest whose file is gone because a run was stopped between the move to backup and
/// the manifest's removal: its file is in backup, so it goes too.
fn forget_delivered_manifests(dir: &Path, names: &[String]) {
    for m in names.iter().filter_map(|n| n.strip_suffix(MANIFEST_SUFFIX)) {
        if names.iter().any(|n| n == m) || !is_data(m) {
            continue;
        }
        let in_backup = fs::read_dir(dir.join(BACKUP))
            .into_iter()
            .flatten()
            .flatten()
            .any(|source| source.path().join(m).is_file());
        if in_backup {
            remove_manifest(dir, m);
        }
    }
}

/// Keeps the newest `keep` files of a backup folder, in the order files are delivered.
fn prune(backup: &Path, keep: usize) -> io::Result<()> {
    let files: Vec<(OrderKey, PathBuf)> = fs::read_dir(backup)
        .map_err(|e| annotate(backup, e))?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            is_data(&name).then(|| (key_of_name(&name), e.path()))
        })
        .collect();
    crate::deliver::worker::keep_newest(files, keep)
}

/// `order_key` from a name alone: the segment name is what follows the last `_` before
/// its ten or more digits.
fn key_of_name(name: &str) -> OrderKey {
    let parsed = name
        .char_indices()
        .filter(|(_, c)| *c == '_')
        .find_map(|(i, _)| segment::Name::parse(&name[i + 1..]));
    match parsed {
        Some(n) => (false, n.stamp, n.seq, n.part, name.to_string()),
        None => (true, String::new(), 0, 0, name.to_string()),
    }
}

/// Takes `DIR/.lock`, or says which run holds it.
fn lock(dir: &Path) -> io::Result<nix::fcntl::Flock<File>> {
    crate::fsx::lock_folder(dir, LOCK_FILE).map_err(|held| match held {
        Ok(pid) => io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{}: another lc upload --from is delivering this folder (pid {pid})",
                dir.display()
            ),
        ),
        Err(e) => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(file: &str, size: u64) -> String {
        Manifest {
            file: file.into(),
            size,
            sha256: "00".repeat(32),
            source: "asa".into(),
            format: "SQUID".into(),
            collector: "c1".into(),
        }
        .render()
    }

    #[track_caller]
    fn check(name: &str, manifest: Option<&str>, size: u64, expected: &str) {
        let got = match judge(name, manifest, size) {
            Verdict::Hash(_) => "hash".to_string(),
            Verdict::Waiting(why) => format!("waiting: {why}"),
            Verdict::Corrupt(why) => format!("corrupt: {why}"),
        };
        assert!(got.starts_with(expected), "{name}: {got}");
    }

    #[test]
    fn a_file_is_taken_only_when_its_manifest_says_it_is_complete() {
        let f = "asa_c1_0000000001-x.log.gz";
        check(f, None, 10, "waiting: no manifest");
        check(f, Some("{\"file\": \"asa"), 10, "waiting: manifest not");
        check(f, Some(&manifest(f, 10)), 10, "hash");
        check(f, Some(&manifest(f, 10)), 4, "waiting: 4 of 10");
        check(f, Some(&manifest(f, 10)), 11, "corrupt: 11 bytes");
        check(
            f,
            Some(&manifest("other.log.gz", 10)),
            10,
            "corrupt: its manifest",
        );
    }

    #[test]
    fn data_files_and_their_order() {
        assert!(is_data("a_c_0000000001-x.log.gz"));
        assert!(is_data("a_c_0000000001-x.zip"));
        assert!(!is_data(".a_c_0000000001-x.log.gz.tmp"));
        assert!(!is_data(".a_c_0000000001-x.log.gz"));
        assert!(!is_data("a_c_0000000001-x.log.gz.manifest"));
        assert!(!is_data("a_c_0000000001-x.log.gz.part"));
        let m = |file: &str| Manifest {
            file: file.into(),
            size: 1,
            sha256: "00".repeat(32),
            source: "a_b".into(),
            format: "SQUID".into(),
            collector: "c".into(),
        };
        let mut names = vec![
            "a_b_c_0000000010-20260102T000000Z.log.gz",
            "a_b_c_0000000002-20260101T000000Z-p1.log.gz",
            "a_b_c_0000000002-20260101T000000Z.log.gz",
            "a_b_c_0000000009-20260101T000000Z.zip",
            "stray.log.gz",
        ];
        names.sort_by_key(|n| order_key(&m(n)));
        assert_eq!(
            names,
            [
                "a_b_c_0000000002-20260101T000000Z.log.gz",
                "a_b_c_0000000002-20260101T000000Z-p1.log.gz",
                "a_b_c_0000000009-20260101T000000Z.zip",
                "a_b_c_0000000010-20260102T000000Z.log.gz",
                "stray.log.gz",
            ]
        );
        for n in &names {
            assert_eq!(key_of_name(n), order_key(&m(n)), "{n}");
        }
    }
}
