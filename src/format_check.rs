//! `lc check SOURCE`, `lc check --format TYPE FILE...` and `lc check --list`: does a sample of
//! logs look like the Cloud Discovery source type it is meant for? Counts the lines each format
//! recognizer (`config/formats/`) accepts, and reports the match rate, the best guess and a few
//! lines that do not match. The counting ([`Tally`]) is pure and fed lines by the caller; [`run`]
//! reads files (plain or gzip), [`check_source`] a source's recent lines through `tail.rs`, and
//! nothing else. The live per-source counting is `config/formats/window.rs`, over the same
//! recognizers.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::config::formats::window::WINDOW;
use crate::config::formats::{self, Family, Line, KINDS};
use crate::config::Config;

/// The help text (`lc check --help`).
pub const USAGE: &str = "\
usage: lc check SOURCE
       lc check --format TYPE FILE...
       lc check --list

SOURCE: checks the last 10000 lines the source stored (its spool, then its backup of delivered
files, as `lc tail` reads them) against its configured format; exit 0 if at least the source's
format_warn_below percent (default 90) match, 1 if not or if it has stored no line yet, 2 for an
unknown source or a type lc has no recognizer for. A running instance keeps the same rate live
(`lc status`).

--format: reads FILE... (plain text or gzip; `-` is standard input) and tells whether its lines look
like the source type TYPE (e.g. CISCO_ASA_SYSLOG): the share of lines that match, the type the
lines look like most, and a few lines that do not match. Files as uploaded and lines as lc
stores them (render = vendor or raw) are both understood. Exit 0 if at least 90 % of the lines
match, 1 if not (or if no line was read), 2 for an unknown TYPE, one lc has no recognizer for,
or a file that cannot be read. --list prints the types lc can check and what their lines look like.
";

/// The share of lines that must match, in percent: `format_warn_below`'s default.
pub const MATCH_PERCENT: u64 = 90;

/// How many lines that do not match are kept for the report.
const SAMPLES: usize = 5;

/// Characters of a sample line shown.
const SAMPLE_CHARS: usize = 160;

/// Lines longer than this are cut before counting (the recognizers read the first KiB).
const MAX_LINE: usize = 64 * 1024;

/// Counts over a stream of lines for one expected family.
#[derive(Debug, Clone)]
pub struct Tally {
    pub expected: Family,
    /// The percent of lines that must match ([`MATCH_PERCENT`] unless the caller says).
    pub needed: u64,
    pub lines: u64,
    pub matched: u64,
    /// Per family (index `Family as usize`), the lines its recognizer accepts.
    pub per_family: Vec<u64>,
    /// Per family, the lines [`formats::guess`] takes for it (each line counts once).
    pub guessed: Vec<u64>,
    /// Lines no recognizer accepts.
    pub unknown: u64,
    /// A few lines that do not match: where (`FILE:LINE`) and the start of the line.
    pub samples: Vec<(String, String)>,
}

impl Tally {
    pub fn new(expected: Family) -> Tally {
        Tally {
            expected,
            needed: MATCH_PERCENT,
            lines: 0,
            matched: 0,
            per_family: vec![0; KINDS.len()],
            guessed: vec![0; KINDS.len()],
            unknown: 0,
            samples: Vec::new(),
        }
    }

    /// Counts one line; `at` names it for the report (called only when it is kept).
    pub fn add(&mut self, line: &[u8], at: impl FnOnce() -> String) {
        let view = Line::new(line);
        self.lines += 1;
        let mut any = false;
        for k in KINDS {
            if k.family.recognizes(&view) {
                self.per_family[k.family as usize] += 1;
                any = true;
            }
        }
        self.unknown += u64::from(!any);
        if let Some(g) = formats::guess(&view) {
            self.guessed[g as usize] += 1;
        }
        if self.expected.recognizes(&view) {
            self.matched += 1;
        } else if self.samples.len() < SAMPLES {
            let text: String = String::from_utf8_lossy(line)
                .chars()
                .take(SAMPLE_CHARS)
                .collect();
            self.samples.push((at(), text));
        }
    }

    /// The family most lines are guessed as (the first in table order on a tie), and how many.
    pub fn best(&self) -> Option<(Family, u64)> {
        KINDS
            .iter()
            .map(|k| (k.family, self.guessed[k.family as usize]))
            .filter(|(_, n)| *n > 0)
            .fold(None, |best: Option<(Family, u64)>, (f, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((f, n)),
            })
    }

    /// Whether enough lines match: at least `needed` percent of them, and at least one.
    pub fn passes(&self) -> bool {
        self.lines > 0 && self.matched * 100 >= self.lines * self.needed
    }

    /// The report `lc check` prints, naming what was read (`what`) and the expected `ty`.
    pub fn report(&self, what: &str, ty: &str) -> String {
        let mut out = String::new();
        let exp = self.expected.name();
        let _ = writeln!(
            out,
            "{what}: {} of {} lines ({}) look like {ty} ({exp}); {} % needed",
            self.matched,
            self.lines,
            percent(self.matched, self.lines),
            self.needed
        );
        let same: Vec<&str> = formats::ambiguous_with(ty).collect();
        if !same.is_empty() {
            let _ = writeln!(
                out,
                "({ty} lines cannot be told apart from {}: the same format)",
                same.join(", ")
            );
        }
        match self.best() {
            Some((f, n)) => {
                let _ = writeln!(
                    out,
                    "best guess: {} ({}), {} of lines",
                    f.name(),
                    types_of(f),
                    percent(n, self.lines)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "best guess: none; no line looks like a format lc knows"
                );
            }
        }
        let others: Vec<String> = KINDS
            .iter()
            .filter(|k| {
                let n = self.per_family[k.family as usize];
                n > 0 && k.family != self.expected && Some(k.family) != self.best().map(|b| b.0)
            })
            .map(|k| {
                let n = self.per_family[k.family as usize];
                match formats::overlap(k.family, self.expected) {
                    Some(why) => format!("{} {} ({why})", k.name, percent(n, self.lines)),
                    None => format!("{} {}", k.name, percent(n, self.lines)),
                }
            })
            .collect();
        if !others.is_empty() {
            let _ = writeln!(out, "also like: {}", others.join(", "));
        }
        if self.unknown > 0 {
            let _ = writeln!(
                out,
                "unknown: {} of lines look like no format lc knows",
                percent(self.unknown, self.lines)
            );
        }
        if !self.samples.is_empty() {
            let _ = writeln!(out, "lines that do not look like {ty}:");
            for (at, text) in &self.samples {
                let _ = writeln!(out, "  {at}: {text}");
            }
        }
        out
    }
}

fn percent(n: u64, of: u64) -> String {
    if of == 0 {
        return "0 %".into();
    }
    format!("{} %", n * 100 / of)
}

/// `PALO_ALTO, PALO_ALTO_SYSLOG`, or what to say when Cloud Discovery has no type for it.
fn types_of(f: Family) -> String {
    let types = f.kind().types;
    if types.is_empty() {
        "no Cloud Discovery collector type".into()
    } else {
        types.join(", ")
    }
}

/// `lc check --list`: each type lc can check with what its lines look like, then the formats
/// recognized only as a best guess, then the types lc cannot check.
pub fn list() -> String {
    let mut out = String::new();
    for k in KINDS.iter().filter(|k| !k.types.is_empty()) {
        let _ = writeln!(out, "{}\n    {}: {}", k.types.join(", "), k.name, k.hint);
    }
    for k in KINDS.iter().filter(|k| k.types.is_empty()) {
        let _ = writeln!(
            out,
            "(no collector type)\n    {}, named as a best guess only: {}",
            k.name, k.hint
        );
    }
    let unchecked: Vec<&str> = formats::FORMATS
        .iter()
        .copied()
        .filter(|t| Family::of(t).is_none())
        .collect();
    let _ = writeln!(
        out,
        "\nTypes on one line cannot be told apart from their lines (one format, as files or over\nsyslog). Not checked yet: {}",
        unchecked.join(", ")
    );
    out
}

/// Why `lc check` could not give an answer (exit 2).
#[derive(Debug)]
pub enum Error {
    UnknownType(String),
    NoRecognizer(String),
    /// `lc check SOURCE` for a name the config does not have: (config path, name, names).
    UnknownSource(PathBuf, String, Vec<String>),
    Read {
        path: PathBuf,
        err: std::io::Error,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::UnknownType(t) => write!(
                f,
                "unknown format {t:?}; expected one of: {}",
                formats::FORMATS.join(", ")
            ),
            Error::NoRecognizer(t) => write!(
                f,
                "format {t:?}: lc has no recognizer for it yet; `lc check --list` shows the types it can check"
            ),
            Error::Read { path, err } => write!(f, "{}: {err}", path.display()),
            Error::UnknownSource(config, name, names) => write!(
                f,
                "{}: no source {name:?}; configured: {}",
                config.display(),
                names.join(", ")
            ),
        }
    }
}

/// `lc check --format TYPE FILE...`: the tally over every line of the files.
pub fn run(ty: &str, files: &[PathBuf]) -> Result<Tally, Error> {
    if !formats::is_known(ty) {
        return Err(Error::UnknownType(ty.to_string()));
    }
    let family = Family::of(ty).ok_or_else(|| Error::NoRecognizer(ty.to_string()))?;
    let mut tally = Tally::new(family);
    for path in files {
        let read = |err| Error::Read {
            path: path.clone(),
            err,
        };
        let input: Box<dyn Read> = if path == Path::new("-") {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(path).map_err(read)?)
        };
        let mut reader = BufReader::new(input);
        // gzip (RFC 1952 magic 1f 8b), as uploaded and as lc's own sealed segments.
        let gzip = reader.fill_buf().map_err(read)?.starts_with(&[0x1f, 0x8b]);
        let mut reader: Box<dyn BufRead> = if gzip {
            Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(reader)))
        } else {
            Box::new(reader)
        };
        count_lines(&mut reader, &mut tally, &path.display().to_string()).map_err(read)?;
    }
    Ok(tally)
}

/// `lc check --format TYPE FILE...` as printed: the report, and whether the files passed.
pub fn check_files(ty: &str, files: &[PathBuf]) -> Result<(String, bool), Error> {
    let tally = run(ty, files)?;
    let what: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    Ok((tally.report(&what.join(", "), ty), tally.passes()))
}

/// `lc check SOURCE` as printed: the source's last [`WINDOW`] stored lines against its type
/// and its `format_warn_below`.
pub fn check_source(config: &Config, name: &str) -> Result<(String, bool), Error> {
    let Some(src) = config.sources.iter().find(|s| s.name == name) else {
        let names = config.sources.iter().map(|s| s.name.clone()).collect();
        return Err(Error::UnknownSource(
            config.path.clone(),
            name.to_string(),
            names,
        ));
    };
    let family = Family::of(&src.format).ok_or_else(|| Error::NoRecognizer(src.format.clone()))?;
    let spool = config.collector.state_dir.join("spool").join(name);
    let lines = crate::tail::recent(&config.collector.state_dir, name, WINDOW)
        .map_err(|err| Error::Read { path: spool, err })?;
    let mut tally = Tally::new(family);
    tally.needed = u64::from(src.format_warn_below);
    let total = lines.len();
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        tally.add(&line[..line.len().min(MAX_LINE)], || {
            format!("line {} of {total}", i + 1)
        });
    }
    let what = format!("source {name} (its last {total} stored lines)");
    let mut report = tally.report(&what, &src.format);
    if total == 0 {
        report.push_str(&format!(
            "source {name} has stored no line yet (spool and backup under {} are empty)\n",
            config.collector.state_dir.display()
        ));
    }
    Ok((report, tally.passes()))
}

/// Feeds every non-empty line of `reader` to `tally`, cut to [`MAX_LINE`] bytes.
fn count_lines(reader: &mut dyn BufRead, tally: &mut Tally, name: &str) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut number = 0u64;
    loop {
        buf.clear();
        let n = reader.take(MAX_LINE as u64).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf.last() != Some(&b'\n') && n == MAX_LINE {
            // The rest of an over-long line is not counted as lines of its own.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
        }
        number += 1;
        let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        tally.add(line, || format!("{name}:{number}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASA: &str = "<166>Apr 09 2019 16:03:37: %ASA-6-302013: Built outbound TCP connection 1";
    const FORTI: &str =
        "date=2019-04-09 time=16:03:38 devname=FGT60E logid=0000000020 type=traffic";

    fn tally(expected: Family, text: &str) -> Tally {
        let mut t = Tally::new(expected);
        count_lines(&mut text.as_bytes(), &mut t, "sample.log").unwrap();
        t
    }

    #[track_caller]
    fn check(expected: Family, text: &str, passes: bool, report: &[&str]) {
        let t = tally(expected, text);
        assert_eq!(t.passes(), passes, "{text}");
        let got = t.report("sample.log", "TYPE");
        for r in report {
            assert!(got.contains(r), "missing {r:?} in:\n{got}");
        }
    }

    #[test]
    fn table() {
        let asa = Family::CiscoAsa;
        check(
            asa,
            &format!("{ASA}\n{ASA}\n"),
            true,
            &[
                "2 of 2 lines (100 %) look like TYPE (Cisco ASA)",
                "best guess: Cisco ASA (CISCO_ASA, CISCO_ASA_SYSLOG), 100 %",
            ],
        );
        check(
            asa,
            &format!("{FORTI}\n\n{FORTI}\r\n"),
            false,
            &[
                "0 of 2 lines (0 %)",
                "best guess: FortiGate (FORTIGATE, FORTIGATE_SYSLOG, FORTIOS_SYSLOG), 100 %",
                "sample.log:1: date=2019-04-09",
                "sample.log:3: date=",
            ],
        );
        // 9 of 10 is enough, 8 of 10 is not.
        let nine = format!("{}{FORTI}\n", format!("{ASA}\n").repeat(9));
        check(
            asa,
            &nine,
            true,
            &["9 of 10 lines (90 %)", "also like: FortiGate 10 %"],
        );
        let eight = format!("{}{}", format!("{ASA}\n").repeat(8), "junk\n".repeat(2));
        check(
            asa,
            &eight,
            false,
            &["8 of 10", "unknown: 20 % of lines", "sample.log:9: junk"],
        );
        check(asa, "", false, &["0 of 0 lines (0 %)", "best guess: none"]);
        // A generic type accepts the vendor's own flavour of it.
        check(
            Family::GenericCef,
            "CEF:0|Forcepoint|Security|8.5|1|x|1|act=permitted\n",
            true,
            &["best guess: Forcepoint / Websense CEF"],
        );
    }

    #[test]
    fn samples_are_few_and_cut() {
        let t = tally(
            Family::CiscoAsa,
            &format!("{}\n", "x".repeat(500)).repeat(20),
        );
        assert_eq!(t.samples.len(), SAMPLES);
        assert_eq!(t.samples[0].1.len(), SAMPLE_CHARS);
    }

    #[test]
    fn over_long_line_counts_once() {
        let text = format!("{}\n{ASA}\n", "y".repeat(MAX_LINE + 10));
        let t = tally(Family::CiscoAsa, &text);
        assert_eq!((t.lines, t.matched), (2, 1));
    }

    #[test]
    fn errors() {
        assert!(matches!(run("CISCO", &[]), Err(Error::UnknownType(_))));
        assert!(matches!(
            run("CISCO_FWSM", &[]),
            Err(Error::NoRecognizer(_))
        ));
        let e = run("CISCO_ASA_SYSLOG", &[PathBuf::from("/nonexistent/x.log")]).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/x.log: "), "{e}");
    }

    #[test]
    fn list_names_every_checked_type_once() {
        let l = list();
        assert!(l.contains("CISCO_ASA_SYSLOG"));
        assert!(l.contains("Not checked yet: "));
        assert!(l.lines().any(|x| x == "GENERIC_W3C, GENERIC_W3C_SYSLOG"));
        for t in formats::FORMATS {
            assert_eq!(
                l.matches(&format!("{t},")).count() + l.matches(&format!("{t}\n")).count(),
                1,
                "{t}"
            );
        }
    }
}
