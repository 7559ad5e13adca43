//! `lc tail SOURCE [-f]`: the latest lines a source received, read from its spool and backup
//! (what the vendor collector's `messages` file was for). It reads files only; it needs no
//! running instance and never changes anything.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::segment::parse_seq;

/// How often `-f` looks for new lines and new segments.
const FOLLOW_POLL: Duration = Duration::from_millis(200);

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
    let file = File::open(path)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut lines = VecDeque::new();
    for line in BufReader::new(reader).split(b'\n') {
        lines.push_back(line?);
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

pub fn run(state_dir: &Path, source: &str, lines: usize, follow: bool) -> io::Result<()> {
    let segs = segments(state_dir, source);
    let mut last: VecDeque<Vec<u8>> = VecDeque::new();
    for (_, path) in segs.iter().rev() {
        if last.len() >= lines {
            break;
        }
        match read_lines(path, lines - last.len(), &mut last) {
            Ok(()) => {}
            // Sealed or delivered while we looked: the next file has it.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }
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
        let mut f = File::open(&path)?;
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
        }
        let newer = segments(state_dir, source).into_iter().find(|(seq, p)| {
            last_seq.is_none_or(|l| *seq > l) && p.extension().is_some_and(|e| e == "log")
        });
        match newer {
            Some((seq, path)) => {
                if let Ok(f) = File::open(&path) {
                    current = Some((seq, f));
                    last_seq = Some(seq);
                    partial.clear();
                }
            }
            None => std::thread::sleep(FOLLOW_POLL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_span_segments_in_order() {
        let dir = std::env::temp_dir().join(format!("lc-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
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
