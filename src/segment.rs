//! Segment naming: the one parser and printer of spool file names.
//!
//! A segment is `SEQ-STAMP.log` while raw (open, or waiting to be sealed), `SEQ-STAMP.log.gz`
//! once sealed (part k > 0 of a large one: `SEQ-STAMP-pK.log.gz`), `SEQ-STAMP.zip` for a zip
//! file uploaded by FTP, `SEQ-STAMP.log.gz.tmp` (or `-pK.log.gz.tmp`) while being written, and
//! `SEQ-STAMP.name` for the sidecar that keeps an FTP upload listed until it is delivered.
//! SEQ is at least ten digits (zero-padded), STAMP the UTC time the segment was opened
//! (`20261126T234500Z`). Everything else in a spool or backup folder is not a segment.
//!
//! Pure: names in, names out. The spool (`spool/`), delivery (`deliver/`) and `lc tail` use it;
//! it uses nothing of theirs.

use std::path::{Path, PathBuf};

/// Digits of a sequence number in a name: ten, zero-padded; more only past 9,999,999,999.
/// The parser takes up to twenty (a u64), so a name never becomes one start-up ignores.
pub const SEQ_WIDTH: usize = 10;

/// What a file in a spool folder is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.log`: raw lines, open or waiting for the sealer.
    Raw,
    /// `.log.gz`: sealed (a compressed part, or a gzip file uploaded by FTP).
    Gz,
    /// `.zip`: a zip file uploaded by FTP, sealed as it is.
    Zip,
    /// `.log.gz.tmp`: a part being written by the sealer.
    Tmp,
    /// `.name`: an FTP upload's sidecar.
    Sidecar,
}

/// A parsed segment file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub seq: u64,
    /// What follows `SEQ-` up to the part marker or suffix (the opening time, normally).
    pub stamp: String,
    pub part: u32,
    pub kind: Kind,
}

impl Name {
    /// `0000000042-20261126T234500Z-p3.log.gz` and the like; `None` for anything else.
    pub fn parse(file_name: &str) -> Option<Name> {
        let (digits, rest) = file_name.split_once('-')?;
        if digits.len() < SEQ_WIDTH
            || digits.len() > 20
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let seq = digits.parse().ok()?;
        let (stem, kind) = [
            (".log.gz.tmp", Kind::Tmp),
            (".log.gz", Kind::Gz),
            (".log", Kind::Raw),
            (".zip", Kind::Zip),
            (".name", Kind::Sidecar),
        ]
        .into_iter()
        .find_map(|(suffix, kind)| Some((rest.strip_suffix(suffix)?, kind)))?;
        let (stamp, part) = match stem.rsplit_once("-p") {
            Some((head, n))
                if matches!(kind, Kind::Gz | Kind::Tmp)
                    && !n.is_empty()
                    && !n.starts_with('0')
                    && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (head, n.parse().ok()?)
            }
            _ => (stem, 0),
        };
        if stamp.is_empty() || stamp.contains('/') {
            return None;
        }
        Some(Name {
            seq,
            stamp: stamp.to_string(),
            part,
            kind,
        })
    }

    /// The file name this parses from.
    pub fn file_name(&self) -> String {
        let part = if self.part > 0 && matches!(self.kind, Kind::Gz | Kind::Tmp) {
            format!("-p{}", self.part)
        } else {
            String::new()
        };
        let suffix = match self.kind {
            Kind::Raw => ".log",
            Kind::Gz => ".log.gz",
            Kind::Zip => ".zip",
            Kind::Tmp => ".log.gz.tmp",
            Kind::Sidecar => ".name",
        };
        format!(
            "{:0w$}-{}{part}{suffix}",
            self.seq,
            self.stamp,
            w = SEQ_WIDTH
        )
    }

    /// The same segment as another kind or part.
    pub fn with(&self, kind: Kind, part: u32) -> Name {
        Name {
            kind,
            part,
            ..self.clone()
        }
    }
}

/// The raw segment `SEQ-STAMP.log`.
pub fn raw_name(seq: u64, stamp: &str) -> String {
    Name {
        seq,
        stamp: stamp.to_string(),
        part: 0,
        kind: Kind::Raw,
    }
    .file_name()
}

/// The sequence number a name carries: `0000000042-20261126T234500Z.log[.gz[.tmp]]` -> 42.
pub fn parse_seq(file_name: &str) -> Option<u64> {
    Name::parse(file_name).map(|n| n.seq)
}

/// `...-p3.log.gz` -> 3; part 0 (and anything not a part) has no marker.
pub fn parse_part(file_name: &str) -> u32 {
    Name::parse(file_name).map_or(0, |n| n.part)
}

fn sibling(path: &Path, f: impl FnOnce(&Name) -> Name) -> Option<PathBuf> {
    let name = Name::parse(&path.file_name()?.to_string_lossy())?;
    Some(path.with_file_name(f(&name).file_name()))
}

/// The name of part `part` of the sealed `raw` segment.
pub fn part_path(raw: &Path, part: u32) -> PathBuf {
    sibling(raw, |n| n.with(Kind::Gz, part)).unwrap_or_else(|| gz_path(raw))
}

/// Part 0 of the sealed `raw` segment: `X.log` -> `X.log.gz`.
pub fn gz_path(raw: &Path) -> PathBuf {
    let mut s = raw.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

/// The temp file a part is written to before its rename: `X.log.gz` -> `X.log.gz.tmp`.
pub fn tmp_path(part: &Path) -> PathBuf {
    let mut s = part.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// The name sidecar of a segment, from its raw path or any of its parts:
/// `X.log`, `X.log.gz`, `X-p3.log.gz`, `X.zip` -> `X.name`.
pub fn sidecar_path(segment: &Path) -> PathBuf {
    sibling(segment, |n| n.with(Kind::Sidecar, 0)).unwrap_or_else(|| segment.with_extension("name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(file_name: &str, expected: Option<(u64, &str, u32, Kind)>) {
        let got = Name::parse(file_name);
        assert_eq!(
            got.as_ref()
                .map(|n| (n.seq, n.stamp.as_str(), n.part, n.kind)),
            expected,
            "{file_name}"
        );
        if let Some(n) = got {
            assert_eq!(n.file_name(), file_name, "prints back");
        }
    }

    #[test]
    fn names() {
        use Kind::*;
        const T: &str = "20261126T234500Z";
        check("0000000042-20261126T234500Z.log", Some((42, T, 0, Raw)));
        check("0000000042-20261126T234500Z.log.gz", Some((42, T, 0, Gz)));
        check(
            "0000000042-20261126T234500Z-p12.log.gz",
            Some((42, T, 12, Gz)),
        );
        check(
            "0000000042-20261126T234500Z-p1.log.gz.tmp",
            Some((42, T, 1, Tmp)),
        );
        check(
            "0000000042-20261126T234500Z.log.gz.tmp",
            Some((42, T, 0, Tmp)),
        );
        check("0000000042-20261126T234500Z.zip", Some((42, T, 0, Zip)));
        check(
            "0000000042-20261126T234500Z.name",
            Some((42, T, 0, Sidecar)),
        );
        // Past ten digits the name grows and is still a segment (bug 8: it was ignored).
        check(
            "9999999999-20261126T234500Z.log",
            Some((9_999_999_999, T, 0, Raw)),
        );
        check(
            "10000000000-20261126T234500Z.log.gz",
            Some((10_000_000_000, T, 0, Gz)),
        );
        check("18446744073709551615-x.log", Some((u64::MAX, "x", 0, Raw)));
        // Not segments.
        check("184467440737095516150-x.log", None);
        check("99999999999999999999-x.log", None);
        check("42-x.log", None);
        check("000000004a-x.log", None);
        check("0000000042-.log", None);
        check("0000000042-x.txt", None);
        check("0000000042", None);
        check("notes.txt", None);
        check(".lock", None);
        check("", None);
        // A part marker only means something on a compressed part.
        check("0000000042-x-p3.log", Some((42, "x-p3", 0, Raw)));
    }

    /// Found by fuzzing (`segment_name`): `X-p0-p00.log.gz` parsed as part 0 of `X-p0`, which
    /// prints as `X-p0.log.gz`, another file's name. Part 0 has no marker and the spool writes
    /// none with a leading zero, so such a marker is part of the stamp.
    #[test]
    fn a_part_marker_with_a_leading_zero_is_part_of_the_stamp() {
        use Kind::*;
        check(
            "0000020000-x-p0-p00.log.gz",
            Some((20000, "x-p0-p00", 0, Gz)),
        );
        check("0000000042-x-p0.log.gz.tmp", Some((42, "x-p0", 0, Tmp)));
        check("0000000042-x-p03.log.gz", Some((42, "x-p03", 0, Gz)));
        check("0000000042-x-p30.log.gz", Some((42, "x", 30, Gz)));
    }

    #[test]
    fn paths() {
        let raw = Path::new("/s/0000000042-20261126T234500Z.log");
        assert_eq!(
            part_path(raw, 0),
            Path::new("/s/0000000042-20261126T234500Z.log.gz")
        );
        assert_eq!(
            part_path(raw, 2),
            Path::new("/s/0000000042-20261126T234500Z-p2.log.gz")
        );
        let side = Path::new("/s/0000000042-20261126T234500Z.name");
        for p in [
            raw.to_path_buf(),
            part_path(raw, 0),
            part_path(raw, 3),
            raw.with_extension("zip"),
        ] {
            assert_eq!(sidecar_path(&p), side, "{}", p.display());
        }
        assert_eq!(raw_name(7, "x"), "0000000007-x.log");
        assert_eq!(raw_name(12_345_678_901, "x"), "12345678901-x.log");
        assert_eq!(
            parse_seq("0000000042-20261126T234500Z-p12.log.gz"),
            Some(42)
        );
        assert_eq!(parse_part("0000000042-20261126T234500Z-p12.log.gz"), 12);
    }
}
