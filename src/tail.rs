//! `lc tail SOURCE [-f]`: the latest lines a source received, read from its spool and backup
//! (what the vendor collector's `messages` file was for). It reads files only; it needs no
//! running instance and never changes anything. `lc check SOURCE` reads the same lines
//! ([`recent`]).
//!
//! The spool and backup are the service's folders and `lc tail` runs as root: every segment
//! is opened with `careful` (a link, FIFO, hard link or stranger's file is refused and named,
//! and skipped), and a line is kept to `MAX_LINE_BYTES`, so a planted file without newlines
//! cannot fill root's memory.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::segment::parse_seq;

/// How often `-f` looks for new lines and new segments.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

/// A longer line is shown cut to this (lc's own lines are at most `max_message_bytes`, 64 KiB
/// by default, escaped).
const MAX_LINE_BYTES: usize = 1 << 20;

/// Segment files are read as streams; the size limit only stops what no spool holds.
const MAX_SEGMENT_BYTES: u64 = 1 << 40;

/// Opens a segment of the service's carefully (see the module comment).
fn open_segment(path: &Path) -> io::Result<File> {
    crate::careful::open(
        path,
        crate::careful::Owners::of_parent(path)?,
        MAX_SEGMENT_BYTES,
    )
}

/// The next line without its newline, at most `MAX_LINE_BYTES` of it (the rest is skipped);
/// `None` at the end.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<Option<()>> {
    line.clear();
    let n = reader.take(MAX_LINE_BYTES as u64).read_until(b'\n', line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
    } else if line.len() == MAX_LINE_BYTES {
        reader.skip_until(b'\n')?;
    }
    Ok(Some(()))
}

/// Segment files of a source, oldest first: backup (delivered), then spool (sealed and open).
fn segments(state_dir: &Path, source: &str) -> Vec<(u64, PathBuf)> {
    let mut out = Vec::new();
    for dir in [
        state_dir.join("backup").join(source),
        state_dir.join("spool").join(source),
    ] {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.ends_with(".log") || name.ends_with(".log.gz")) {
                continue;
            }
            if let Some(seq) = parse_seq(&name) {
                out.push((seq, e.path()));
            }
        }
    }
    out.sort();
    out
}

fn read_lines(path: &Path, keep: usize, out: &mut VecDeque<Vec<u8>>) -> io::Result<()> {
    let file = open_segment(path)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut lines = VecDeque::new();
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    while next_line(&mut reader, &mut line)?.is_some() {
        lines.push_back(std::mem::take(&mut line));
        if lines.len() > keep {
            lines.pop_front();
        }
    }
    // Older lines go in front of what newer segments gave; `lines` holds at most `keep`,
    // the number still wanted.
    while let Some(l) = lines.pop_back() {
        out.push_front(l);
    }
    Ok(())
}

/// The last `lines` lines `source` received, oldest first, from its open and sealed segments
/// and, when they hold fewer, the delivered ones in backup (what `lc tail` prints and `lc
/// check SOURCE` checks).
pub fn recent(state_dir: &Path, source: &str, lines: usize) -> io::Result<VecDeque<Vec<u8>>> {
    let mut last: VecDeque<Vec<u8>> = VecDeque::new();
    for (_, path) in segments(state_dir, source).iter().rev() {
        if last.len() >= lines {
            break;
        }
        match read_lines(path, lines - last.len(), &mut last) {
            Ok(()) => {}
            // Sealed or delivered while we looked: the next file has it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            // Refused by `careful` (the message names the file): said, and skipped.
            Err(e) if e.to_string().contains(": refused: ") => {
                crate::logging::report(
                    crate::logging::Severity::Warning,
                    &format!("lc: {e}; skipped"),
                );
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
    Ok(last)
}

pub fn run(state_dir: &Path, source: &str, lines: usize, follow: bool) -> io::Result<()> {
    let segs = segments(state_dir, source);
    let last = recent(state_dir, source, lines)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for l in &last {
        out.write_all(l)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if follow {
        follow_source(
            state_dir,
            source,
            segs.last().map(|(seq, _)| *seq),
            &mut out,
        )?;
    }
    Ok(())
}

/// Prints lines appended to the open segment, moving to each new segment as it opens.
fn follow_source(
    state_dir: &Path,
    source: &str,
    mut last_seq: Option<u64>,
    out: &mut impl Write,
) -> io::Result<()> {
    // The open segment we print from: its handle stays valid after sealing removes the name.
    let mut current: Option<(u64, File)> = None;
    if let Some((seq, path)) = segments(state_dir, source)
        .into_iter()
        .rev()
        .find(|(_, p)| p.extension().is_some_and(|e| e == "log"))
    {
        let mut f = open_segment(&path)?;
        f.seek(SeekFrom::End(0))?;
        current = Some((seq, f));
        last_seq = Some(seq);
    }
    let mut partial = Vec::new();
    loop {
        if let Some((_, f)) = current.as_mut() {
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            partial.extend_from_slice(&buf);
            if let Some(end) = memchr::memrchr(b'\n', &partial) {
                out.write_all(&partial[..=end])?;
                out.flush()?;
                partial.drain(..=end);
            }
            if partial.len() > MAX_LINE_BYTES {
                // A line this long is shown cut, as `run` shows it.
                out.write_all(&partial[..MAX_LINE_BYTES])?;
                out.write_all(b"\n")?;
                partial.clear();
            }
        }
        let newer = segments(state_dir, source).into_iter().find(|(seq, p)| {
            last_seq.is_none_or(|l| *seq > l) && p.extension().is_some_and(|e| e == "log")
        });
        match newer {
            Some((seq, path)) => {
                match open_segment(&path) {
                    Ok(f) => current = Some((seq, f)),
                    Err(e) => {
                        if e.kind() != io::ErrorKind::NotFound {
                            crate::logging::report(
                                crate::logging::Severity::Warning,
                                &format!("lc: {e}; skipped"),
                            );
                        }
                        current = None;
                    }
                }
                last_seq = Some(seq);
                partial.clear();
            }
            None => std::thread::sleep(FOLLOW_POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_cut_at_the_limit_and_the_rest_skipped() {
        let mut long = vec![b'x'; MAX_LINE_BYTES + 10];
        long.extend_from_slice(b"\nnext\nlast");
        let mut reader = BufReader::new(&long[..]);
        let mut line = Vec::new();
        let mut got = Vec::new();
        while next_line(&mut reader, &mut line).unwrap().is_some() {
            got.push(line.len());
        }
        assert_eq!(got, [MAX_LINE_BYTES, 4, 4]);
    }

    #[test]
    fn the_last_lines_span_segments_in_order() {
        let dir = crate::testing::fresh_dir("tail");
        let (old, new) = (dir.join("old.log"), dir.join("new.log"));
        std::fs::write(&old, "a\nb\nc\nd\n").unwrap();
        std::fs::write(&new, "e\nf\ng\n").unwrap();
        let mut out = VecDeque::new();
        // As `run` does: the newest file first, then what is still wanted from the older.
        read_lines(&new, 5, &mut out).unwrap();
        read_lines(&old, 5 - out.len(), &mut out).unwrap();
        let got: Vec<&[u8]> = out.iter().map(Vec::as_slice).collect();
        assert_eq!(got, [&b"c"[..], b"d", b"e", b"f", b"g"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
