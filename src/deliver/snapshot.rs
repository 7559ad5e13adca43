//! `lc upload --snapshot NAME --format TYPE FILE...`: a manual snapshot report. The files are
//! checked as `lc check --format TYPE FILE...` checks them (and refused if they do not look
//! like TYPE, unless `--force`), gathered into one gzip file (gzip inputs decompressed first,
//! so the report is one file of lines), and sent through the same client and host-wide pacing
//! as delivery: `upload_url`, PUT, then `done_upload` with `uploadAsSnapshot: true` and NAME as
//! `inputStreamName`. One report, three API calls, whatever the number of files.
//!
//! It leaves the spool alone: nothing is queued, kept in backup or retried later. A transient
//! failure is retried a few times here (Retry-After honoured), then reported.

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::api::Failure;
use super::Console;
use crate::clock;
use crate::config::formats::{self, Family};
use crate::config::{Config, Target};
use crate::format_check;

/// Attempts per API step on transient failures (network, 5xx, 429).
const ATTEMPTS: u32 = 4;
/// The longest wait between attempts, whatever Retry-After says.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Characters of a report name.
const MAX_NAME: usize = 128;

/// Why the snapshot was not sent.
#[derive(Debug)]
pub enum Error {
    /// Usage or config (exit 2).
    Usage(String),
    /// The files do not look like TYPE (exit 1); the check's report.
    Refused(String),
    /// The API or a file failed (exit 1).
    Failed(String),
}

impl Error {
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Refused(_) | Error::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Usage(m) | Error::Refused(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

/// What to send.
pub struct Request<'a> {
    pub name: &'a str,
    pub format: &'a str,
    pub files: &'a [PathBuf],
    pub force: bool,
}

/// Checks, packs and sends the snapshot; what to print on success.
pub fn run(config: &Config, req: &Request) -> Result<String, Error> {
    check_name(req.name).map_err(Error::Usage)?;
    if !formats::is_known(req.format) {
        return Err(Error::Usage(
            format_check::Error::UnknownType(req.format.to_string()).to_string(),
        ));
    }
    let base = match &config.delivery.target {
        Target::Console(base) => base.clone(),
        Target::Outbox(dir) => {
            return Err(Error::Usage(format!(
                "{}: [delivery] url is the outbox {}; a snapshot report needs a console (url = https://TENANT.portal.cloudappsecurity.com, `lc connect`)",
                config.path.display(),
                dir.display()
            )))
        }
    };
    let mut out = check(req)?;
    let stamp = clock::compact(clock::unix_secs(SystemTime::now()));
    let filename = format!(
        "snapshot_{}_{}_{stamp}.log.gz",
        safe(req.name),
        safe(&config.collector.name)
    );
    let packed = Packed::new(&filename)?;
    let bytes = packed.write(req.files)?;
    if bytes > config.delivery.max_upload_bytes {
        return Err(Error::Failed(format!(
            "the files compress to {bytes} bytes, more than one upload takes ([delivery] max_upload_bytes = {}); send them as several snapshots",
            config.delivery.max_upload_bytes
        )));
    }
    let console = Console::new(config, &base).map_err(Error::Usage)?;
    let target = retried("upload_url", || console.upload_url(&filename, req.format))?;
    retried("PUT", || {
        console.put_parts(&target, std::slice::from_ref(&packed.path))
    })?;
    retried("done_upload", || {
        console.done_upload_as(&target.url, req.name, true)
    })?;
    let _ = writeln!(
        out,
        "sent {} ({bytes} bytes gzip) to {base} as snapshot report {:?} of type {}",
        req.files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        req.name,
        req.format
    );
    Ok(out)
}

/// The `lc check` of the files: its report, or the refusal.
fn check(req: &Request) -> Result<String, Error> {
    if Family::of(req.format).is_none() {
        return Ok(format!(
            "{}: lc has no recognizer for it; the files are sent unchecked\n",
            req.format
        ));
    }
    let (report, passed) = format_check::check_files(req.format, req.files)
        .map_err(|e| Error::Usage(e.to_string()))?;
    match (passed, req.force) {
        (true, _) => Ok(report),
        (false, true) => Ok(format!(
            "{report}--force: sent although the lines do not look like {}\n",
            req.format
        )),
        (false, false) => Err(Error::Refused(format!(
            "{report}not sent: the files do not look like {}; check the type, or send them anyway with --force\n",
            req.format
        ))),
    }
}

/// A report name: what the portal shows. Not empty, printable, at most [`MAX_NAME`].
fn check_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty()
        || name.chars().count() > MAX_NAME
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "snapshot name {name:?} must be 1 to {MAX_NAME} printable characters"
        ));
    }
    Ok(())
}

/// A name as a file name part: letters, digits, `-`, `_`; others become `_`.
fn safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The gzip file sent, in a private temp folder removed on drop.
struct Packed {
    dir: PathBuf,
    path: PathBuf,
}

impl Packed {
    fn new(filename: &str) -> Result<Packed, Error> {
        let dir = std::env::temp_dir().join(format!(
            "lc-snapshot-{}-{}",
            std::process::id(),
            clock::unix_millis()
        ));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::Failed(format!("{}: {e}", dir.display())))?;
        Ok(Packed {
            path: dir.join(filename),
            dir,
        })
    }

    /// Writes every file's lines (gzip inputs decompressed) into one gzip; its size.
    fn write(&self, files: &[PathBuf]) -> Result<u64, Error> {
        let failed = |p: &Path, e: io::Error| Error::Failed(format!("{}: {e}", p.display()));
        let out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| failed(&self.path, e))?;
        let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        for path in files {
            let input: Box<dyn Read> = if path == Path::new("-") {
                Box::new(io::stdin().lock())
            } else {
                Box::new(File::open(path).map_err(|e| failed(path, e))?)
            };
            let mut reader = BufReader::new(input);
            let gzip = reader
                .fill_buf()
                .map_err(|e| failed(path, e))?
                .starts_with(&[0x1f, 0x8b]);
            let mut reader: Box<dyn Read> = if gzip {
                Box::new(flate2::bufread::MultiGzDecoder::new(reader))
            } else {
                Box::new(reader)
            };
            let mut last = b'\n';
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = reader.read(&mut buf).map_err(|e| failed(path, e))?;
                if n == 0 {
                    break;
                }
                gz.write_all(&buf[..n]).map_err(|e| failed(&self.path, e))?;
                last = buf[n - 1];
            }
            // Files are joined at line boundaries.
            if last != b'\n' {
                gz.write_all(b"\n").map_err(|e| failed(&self.path, e))?;
            }
        }
        let file = gz.finish().map_err(|e| failed(&self.path, e))?;
        file.sync_all().map_err(|e| failed(&self.path, e))?;
        Ok(file.metadata().map_err(|e| failed(&self.path, e))?.len())
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// One API step, tried again on transient failures (Retry-After, else 1 s, 2 s, 4 s).
fn retried<T>(what: &str, mut step: impl FnMut() -> Result<T, Failure>) -> Result<T, Error> {
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        match step() {
            Ok(v) => return Ok(v),
            Err(Failure::Transient { reason, after }) if attempt < ATTEMPTS => {
                let pause = after.unwrap_or(wait).min(MAX_WAIT);
                log::warn!(
                    "{what}: {reason}; trying again in {:.0}s",
                    pause.as_secs_f64()
                );
                std::thread::sleep(pause);
                wait *= 2;
            }
            Err(f) => {
                return Err(Error::Failed(format!(
                    "snapshot not sent: {what}: {}",
                    f.reason()
                )))
            }
        }
    }
    unreachable!("the last attempt returns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("Q3 firewall review").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(" ").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name(&"x".repeat(129)).is_err());
        assert_eq!(safe("Q3 review/ä"), "Q3_review__");
    }

    #[test]
    fn packs_plain_and_gzip_files_as_one_gzip_of_lines() {
        let dir = crate::testing::fresh_dir("snap-test");
        let plain = dir.join("a.log");
        fs::write(&plain, "one\ntwo").unwrap();
        let gz = dir.join("b.log.gz");
        let mut enc =
            flate2::write::GzEncoder::new(File::create(&gz).unwrap(), flate2::Compression::fast());
        enc.write_all(b"three\n").unwrap();
        enc.finish().unwrap();
        let packed = Packed::new("x.log.gz").unwrap();
        packed.write(&[plain, gz]).unwrap();
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(File::open(&packed.path).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "one\ntwo\nthree\n");
        let tmp = packed.dir.clone();
        drop(packed);
        assert!(!tmp.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
