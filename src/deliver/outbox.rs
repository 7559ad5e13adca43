//! Delivery into a folder (`url = dir:PATH`): for data diodes and offline transfer.
//!
//! Each file placed there gets a manifest beside it, `NAME.manifest` (JSON: file, size,
//! sha256, source, format, collector), written atomically after the file itself is in place,
//! so a manifest's presence says its file is complete. `lc upload --from` (`airgap.rs`) on the
//! connected side takes a file only when its manifest is there and matches; this file owns
//! the manifest's format, its writer and its parser.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;

use serde_json::{json, Value};

use crate::fsx::{annotate, sync_dir};

/// What follows a placed file's name to name its manifest.
pub const MANIFEST_SUFFIX: &str = ".manifest";
/// A manifest is a few hundred bytes; anything much larger is not one.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// Who a placed file belongs to, written into its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About<'a> {
    pub source: &'a str,
    /// The MDCA source type (`upload_url`'s `source=`).
    pub format: &'a str,
    pub collector: &'a str,
}

/// A placed file's manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The data file's name in the folder.
    pub file: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
    pub source: String,
    pub format: String,
    pub collector: String,
}

impl Manifest {
    /// One line of JSON (with its newline).
    pub fn render(&self) -> String {
        let v = json!({
            "file": self.file,
            "size": self.size,
            "sha256": self.sha256,
            "source": self.source,
            "format": self.format,
            "collector": self.collector,
        });
        format!("{v}\n")
    }

    /// Parses and checks a manifest's text: every field there and well formed (a source name
    /// as the config allows it, since it becomes `inputStreamName`).
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
        let s = |k: &str| -> Result<String, String> {
            v.get(k)
                .and_then(Value::as_str)
                .map(String::from)
                .ok_or_else(|| format!("no string {k:?}"))
        };
        let m = Manifest {
            file: s("file")?,
            size: v
                .get("size")
                .and_then(Value::as_u64)
                .ok_or("no number \"size\"")?,
            sha256: s("sha256")?,
            source: s("source")?,
            format: s("format")?,
            collector: s("collector")?,
        };
        let word = |w: &str| {
            !w.is_empty()
                && w.len() <= 64
                && w.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !word(&m.source) {
            return Err(format!("source {:?} is not a data source name", m.source));
        }
        if !word(&m.format) {
            return Err(format!("format {:?} is not a source type", m.format));
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("sha256 {:?} is not 64 hex digits", m.sha256));
        }
        if m.file.is_empty() || m.file.contains('/') || m.file.starts_with('.') {
            return Err(format!("file {:?} is not a file name", m.file));
        }
        Ok(m)
    }
}

/// The size and SHA-256 (lowercase hex) of what `file` reads to its end.
pub fn digest(mut file: impl Read) -> io::Result<(u64, String)> {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                ctx.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let hex = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((size, hex))
}

/// Places `src` in `outbox` under `name`, atomically, then its manifest. A name that already
/// exists means an earlier run placed it and stopped before the move to backup: it is not
/// placed again, and its manifest is written (again).
pub fn deliver(src: &Path, outbox: &Path, name: &str, about: &About) -> io::Result<()> {
    fs::create_dir_all(outbox).map_err(|e| annotate(outbox, e))?;
    let dest = outbox.join(name);
    match fs::hard_link(src, &dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        // Another filesystem (or one without links): copy under a hidden name, then rename.
        Err(_) => copy_durably(src, outbox, name)?,
    }
    sync_dir(outbox)?;
    let (size, sha256) = digest(File::open(&dest).map_err(|e| annotate(&dest, e))?)
        .map_err(|e| annotate(&dest, e))?;
    let manifest = Manifest {
        file: name.to_string(),
        size,
        sha256,
        source: about.source.to_string(),
        format: about.format.to_string(),
        collector: about.collector.to_string(),
    };
    write_durably(
        outbox,
        &format!("{name}{MANIFEST_SUFFIX}"),
        manifest.render().as_bytes(),
    )?;
    sync_dir(outbox)
}

fn copy_durably(src: &Path, dir: &Path, name: &str) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut out = File::create(&tmp).map_err(|e| annotate(&tmp, e))?;
        io::copy(
            &mut File::open(src).map_err(|e| annotate(src, e))?,
            &mut out,
        )
        .map_err(|e| annotate(&tmp, e))?;
        out.flush()?;
        out.sync_all().map_err(|e| annotate(&tmp, e))?;
        fs::rename(&tmp, dir.join(name)).map_err(|e| annotate(&tmp, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` as `dir/name` through a hidden temp file, fsync and rename.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut out = File::create(&tmp).map_err(|e| annotate(&tmp, e))?;
        out.write_all(bytes).map_err(|e| annotate(&tmp, e))?;
        out.sync_all().map_err(|e| annotate(&tmp, e))?;
        fs::rename(&tmp, dir.join(name)).map_err(|e| annotate(&tmp, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Manifest {
        Manifest {
            file: "asa_c1_0000000001-20260101T000000Z.log.gz".into(),
            size: 42,
            sha256: "ab".repeat(32),
            source: "asa".into(),
            format: "CISCO_ASA_SYSLOG".into(),
            collector: "c1".into(),
        }
    }

    #[track_caller]
    fn check(edit: impl Fn(&mut Value), expected: Result<(), &str>) {
        let mut v: Value = serde_json::from_str(&good().render()).unwrap();
        edit(&mut v);
        match (Manifest::parse(&v.to_string()), expected) {
            (Ok(m), Ok(())) => assert_eq!(Manifest::parse(&m.render()), Ok(m)),
            (Err(e), Err(want)) => assert!(e.contains(want), "{e:?} lacks {want:?}"),
            (got, want) => panic!("{got:?}, expected {want:?}"),
        }
    }

    #[test]
    fn manifests_round_trip_and_bad_ones_say_why() {
        check(|_| {}, Ok(()));
        check(|v| v["extra"] = json!(1), Ok(()));
        check(|v| v["size"] = json!(-1), Err("\"size\""));
        check(|v| v["size"] = json!("42"), Err("\"size\""));
        check(|v| v["sha256"] = json!("ab"), Err("64 hex"));
        check(|v| v["source"] = json!("a b"), Err("data source name"));
        check(|v| v["source"] = json!(""), Err("data source name"));
        check(|v| v["format"] = json!("X/Y"), Err("source type"));
        check(|v| v["file"] = json!("../x.log.gz"), Err("file name"));
        check(|v| v["file"] = json!(".x.tmp"), Err("file name"));
        check(
            |v| {
                v.as_object_mut().unwrap().remove("collector");
            },
            Err("\"collector\""),
        );
        assert!(Manifest::parse("{\"file\": \"x")
            .unwrap_err()
            .contains("not JSON"));
    }

    #[test]
    fn a_placed_file_has_a_manifest_that_describes_it() {
        let dir = crate::testing::fresh_dir("outbox");
        let src = dir.join("0000000001-x.log.gz");
        fs::write(&src, b"abc").unwrap();
        let about = About {
            source: "asa",
            format: "SQUID",
            collector: "c1",
        };
        deliver(&src, &dir.join("out"), "asa_c1_0000000001-x.log.gz", &about).unwrap();
        // Again (a crash before the move to backup): the same file, the same manifest.
        deliver(&src, &dir.join("out"), "asa_c1_0000000001-x.log.gz", &about).unwrap();
        let text = fs::read_to_string(dir.join("out/asa_c1_0000000001-x.log.gz.manifest")).unwrap();
        let m = Manifest::parse(&text).unwrap();
        assert_eq!(m.size, 3);
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            m.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!((m.source.as_str(), m.collector.as_str()), ("asa", "c1"));
        assert_eq!(m.format, "SQUID");
        let mut names: Vec<String> = fs::read_dir(dir.join("out"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "asa_c1_0000000001-x.log.gz",
                "asa_c1_0000000001-x.log.gz.manifest"
            ]
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
