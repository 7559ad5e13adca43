//! Status snapshots on disk: where an instance's snapshot and pid file are in run_dir,
//! writing a snapshot atomically, and reading them back as `lc status` (run as root) must:
//! carefully, each one a JSON object or skipped with a warning.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

pub fn snapshot_path(run_dir: &Path, instance: &str) -> PathBuf {
    run_dir.join(format!("{instance}.json"))
}

pub fn pid_path(run_dir: &Path, instance: &str) -> PathBuf {
    run_dir.join(format!("{instance}.pid"))
}

/// Writes `value` to `path` atomically: a temp file in the same folder, then rename.
pub fn write_atomically(path: &Path, value: &Value) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::File::create(&tmp)?;
    serde_json::to_writer_pretty(&mut f, value)?;
    f.write_all(b"\n")?;
    drop(f);
    fs::rename(&tmp, path)
}

/// A snapshot is a few KiB per source; anything this big is not one.
const MAX_SNAPSHOT_BYTES: u64 = 16 << 20;

/// Reads one status snapshot. run_dir is the service's folder and `lc status`, `lc certs
/// reload` run as root, so the file is opened with `careful` (no link, FIFO, hard link, file
/// of a stranger, or huge file); it must be a JSON object.
pub fn read_snapshot(path: &Path) -> io::Result<Value> {
    let bytes = crate::careful::read_in_folder(path, MAX_SNAPSHOT_BYTES)?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a status snapshot (a JSON object)", path.display()),
        )),
    }
}

/// Every snapshot in `run_dir`, sorted by instance name, with whether its process is alive.
/// A file that is refused or is not a snapshot is skipped with a warning naming it.
pub fn read_all(run_dir: &Path) -> io::Result<Vec<Value>> {
    read_all_noting(run_dir, &mut |warning| {
        crate::logging::report(crate::logging::Severity::Warning, &format!("lc: {warning}"))
    })
}

/// `read_all`, with each warning (a file skipped, an instance shown as not running) handed to
/// `note` (the metrics server logs them once, not at every scrape).
pub fn read_all_noting(run_dir: &Path, note: &mut dyn FnMut(String)) -> io::Result<Vec<Value>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(run_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", run_dir.display()),
            ))
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in paths {
        let mut v = match read_snapshot(&p) {
            Ok(v) => v,
            // Removed between the listing and the read: the instance is gone.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                note(format!("{e}; skipped"));
                continue;
            }
        };
        let instance = v["instance"].as_str().unwrap_or("").to_string();
        // Alive = its pid file is locked. Whether that pid is really lc matters only to the
        // commands that signal it (`pidfile::signal`); /proc may not tell a non-root `lc status`.
        let claim = match crate::pidfile::claim(&pid_path(run_dir, &instance)) {
            Ok(c) => c,
            Err(e) => {
                note(format!("{e}; instance {instance} shown as not running"));
                None
            }
        };
        let alive = v["running"].as_bool() == Some(true) && claim.is_some();
        v["alive"] = json!(alive);
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 12, bug 10): a snapshot that was JSON but not an object panicked
    /// `lc status` (exit 134).
    #[test]
    fn a_snapshot_that_is_not_an_object_is_skipped() {
        let dir = crate::testing::fresh_dir("status-junk");
        for (name, text) in [
            ("a", "[1, 2]"),
            ("b", "\"text\""),
            ("c", "42"),
            ("d", "null"),
            ("e", "{not json"),
            ("f", r#"{"instance": "f", "running": false}"#),
        ] {
            fs::write(dir.join(format!("{name}.json")), text).unwrap();
        }
        let got = read_all(&dir).unwrap();
        let names: Vec<&str> = got
            .iter()
            .map(|v| v["instance"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["f"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
