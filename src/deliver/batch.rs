//! Batching: which sealed files of one source go as one upload, and how an upload is cut into
//! PUTs once the provider is known.
//!
//! A backlog should cost two API calls (`upload_url`, `done_upload`), not two per segment, so
//! when a source has several sealed segments waiting, consecutive ones leave as one upload
//! named after its first segment: Put Block per file and one Put Block List on Azure, one PUT
//! of the concatenation elsewhere (within the single-PUT limit; past it, the next unit gets its
//! own two calls). The files are gzip members, and a series of members is one gzip file
//! (RFC 1952 section 2.2). What never joins another file: an FTP upload delivered as it came
//! (a zip, or a gzip whose last line may lack its newline), and anything for an outbox, which
//! gets one file per segment. A segment's parts are never split between batches.
//!
//! Pure: sizes and kinds in, counts out. The loop (`server/source.rs`) chooses the batch, the
//! upload plan (`plan.rs`) cuts it into units.

use super::api::Provider;

/// A batch stays under the API's documented 5 GB per file.
pub const MAX_BATCH_BYTES: u64 = 4 << 30;
/// And under Azure's 50,000 blocks per blob, with a job list of bounded length.
pub const MAX_BATCH_FILES: usize = 4096;
/// One PUT stays under the API's 64 MB (a single sealed part is at most `max_upload_bytes`,
/// 56M by default, plus one chunk, so it always fits alone).
pub const MAX_PUT_BYTES: u64 = 60 << 20;

/// A sealed file waiting in a source's spool, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// The segment it belongs to (a segment sealed in parts has several pieces).
    pub seq: u64,
    pub bytes: u64,
    /// Delivered by itself, never concatenated (an FTP upload kept as it came).
    pub alone: bool,
}

/// The limits of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_files: usize,
    /// `dir:` delivery: one segment at a time, one file each, as before batching.
    pub outbox: bool,
}

impl Limits {
    pub const API: Limits = Limits {
        max_bytes: MAX_BATCH_BYTES,
        max_files: MAX_BATCH_FILES,
        outbox: false,
    };
    pub const OUTBOX: Limits = Limits {
        outbox: true,
        ..Limits::API
    };
}

/// How many of the front `pieces` form the next batch: the first segment whole (whatever
/// its size: its parts always went as one upload), then whole segments after it while they
/// fit the limits, stopping before one that goes alone.
pub fn next_batch(pieces: &[Piece], limits: Limits) -> usize {
    let Some(first) = pieces.first() else {
        return 0;
    };
    let segment_end = |at: usize| {
        let seq = pieces[at].seq;
        at + pieces[at..].iter().take_while(|p| p.seq == seq).count()
    };
    let mut end = segment_end(0);
    if limits.outbox || first.alone {
        return end;
    }
    let mut bytes: u64 = pieces[..end].iter().map(|p| p.bytes).sum();
    while end < pieces.len() && !pieces[end].alone {
        let next = segment_end(end);
        let more: u64 = pieces[end..next].iter().map(|p| p.bytes).sum();
        if bytes + more > limits.max_bytes || next > limits.max_files {
            break;
        }
        bytes += more;
        end = next;
    }
    end
}

/// Where the upload unit that starts at file `at` of a batch ends (exclusive): Azure stores
/// every remaining file as a block of one blob; elsewhere one PUT carries consecutive files
/// while their sum stays within `MAX_PUT_BYTES` (at least one file).
pub fn unit_end(sizes: &[u64], at: usize, provider: Provider) -> usize {
    match provider {
        Provider::Azure => sizes.len(),
        Provider::Aws => {
            let mut end = (at + 1).min(sizes.len());
            let mut bytes = sizes.get(at).copied().unwrap_or(0);
            while end < sizes.len() && bytes + sizes[end] <= MAX_PUT_BYTES {
                bytes += sizes[end];
                end += 1;
            }
            end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `spec`: one piece per word, `SEQ:BYTES`, `z` after the bytes for one that goes alone
    /// (`3:10z`).
    fn pieces(spec: &str) -> Vec<Piece> {
        spec.split_whitespace()
            .map(|w| {
                let (seq, rest) = w.split_once(':').unwrap();
                let alone = rest.ends_with('z');
                Piece {
                    seq: seq.parse().unwrap(),
                    bytes: rest.trim_end_matches('z').parse().unwrap(),
                    alone,
                }
            })
            .collect()
    }

    #[track_caller]
    fn check(spec: &str, max_bytes: u64, max_files: usize, outbox: bool, expected: usize) {
        let limits = Limits {
            max_bytes,
            max_files,
            outbox,
        };
        assert_eq!(next_batch(&pieces(spec), limits), expected, "{spec}");
    }

    #[test]
    fn batches() {
        // Nothing waiting; one segment; one segment in parts.
        check("", 100, 10, false, 0);
        check("1:10", 100, 10, false, 1);
        check("1:10 1:10 1:10", 100, 10, false, 3);
        // A backlog: consecutive segments together, up to the byte cap.
        check("1:10 2:10 3:10", 100, 10, false, 3);
        check("1:40 2:40 3:40", 100, 10, false, 2);
        check("1:40 2:60 3:1", 100, 10, false, 2);
        check("1:40 2:61 3:1", 100, 10, false, 1);
        // The first segment goes whole even past the cap; so do its parts.
        check("1:150 2:1", 100, 10, false, 1);
        check("1:60 1:60 2:1", 100, 10, false, 2);
        // A segment is never cut between batches.
        check("1:10 2:50 2:50", 100, 10, false, 1);
        check("1:10 2:40 2:40 3:5", 100, 10, false, 4);
        // The file cap.
        check("1:1 2:1 3:1 4:1", 100, 3, false, 3);
        check("1:1 2:1 2:1 3:1", 100, 2, false, 1);
        // A zip (or an FTP gzip as it came) goes alone, before or after.
        check("1:10z 2:10", 100, 10, false, 1);
        check("1:10 2:10z 3:10", 100, 10, false, 1);
        check("1:10 2:10 3:10z", 100, 10, false, 2);
        check("1:10z 2:10z", 100, 10, false, 1);
        // The outbox: one segment per job, its parts together.
        check("1:10 2:10", 100, 10, true, 1);
        check("1:10 1:10 2:10", 100, 10, true, 2);
        // The real limits take a backlog of 32 MiB segments by the hundred.
        let backlog: Vec<Piece> = (0..200)
            .map(|seq| Piece {
                seq,
                bytes: 3 << 20,
                alone: false,
            })
            .collect();
        assert_eq!(next_batch(&backlog, Limits::API), 200);
        assert_eq!(next_batch(&backlog, Limits::OUTBOX), 1);
    }

    #[track_caller]
    fn check_unit(sizes: &[u64], at: usize, provider: Provider, expected: usize) {
        assert_eq!(unit_end(sizes, at, provider), expected, "{sizes:?} at {at}");
    }

    #[test]
    fn units() {
        const M: u64 = 1 << 20;
        use Provider::{Aws, Azure};
        check_unit(&[M, M, M], 0, Azure, 3);
        check_unit(&[56 * M, 56 * M], 0, Azure, 2);
        check_unit(&[M, M, M], 0, Aws, 3);
        check_unit(&[M, M, M], 1, Aws, 3);
        check_unit(&[56 * M, 56 * M, M], 0, Aws, 1);
        check_unit(&[56 * M, 56 * M, M], 1, Aws, 3);
        check_unit(&[30 * M, 30 * M, M], 0, Aws, 2);
        check_unit(&[61 * M], 0, Aws, 1);
        check_unit(&[M], 0, Aws, 1);
    }
}
