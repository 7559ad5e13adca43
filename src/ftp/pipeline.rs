//! Every FTP upload from its first byte to `Event::Received`: the bytes a data connection
//! read, through `content` (what the file is, TYPE A's CRLF), the limits (`max_file_bytes`,
//! a compressed file's `max_upload_bytes`, and the spool's [`Room`]), as pieces for the
//! `lc-ftp-write` thread, and, once the connection ended cleanly, held until the writer
//! has answered for every piece. Also the counts of files, bytes and discarded uploads.
//!
//! No I/O and no callbacks: the server feeds it what its data connections read and what the
//! writer answered, and carries out the [`Step`]s it returns (hand a piece to the writer,
//! read a connection again, end a transfer, give the instance a received file). The server
//! owns the sockets and the threads; this owns the uploads, by id.

use std::collections::HashMap;
use std::path::PathBuf;

use super::command::escaped;
use super::content::Kind;
use super::jobs::ConnRef;
use super::room::Room;
use super::session::Reply;
use super::upload::{too_large, Piece, Upload, Wrote};

/// What the server must do for an upload.
#[derive(Debug)]
pub enum Step {
    /// Hand this to the writer thread.
    Write(Piece),
    /// The writer caught up with an upload still arriving: read its data connection again.
    ReadOn(ConnRef),
    /// The writer failed: the upload is discarded (remove `temp`), and `owner` hears
    /// `reply`. `arriving`: its data connection is still open (end the transfer).
    Failed {
        owner: ConnRef,
        temp: PathBuf,
        reply: Reply,
        arriving: bool,
    },
    /// Complete and written: the instance reserves its place and commits it.
    Received(Received),
}

/// An upload that arrived completely and is written to `temp`.
#[derive(Debug, PartialEq)]
pub struct Received {
    pub owner: ConnRef,
    pub folder: String,
    pub name: String,
    pub temp: PathBuf,
    pub kind: Kind,
    pub bytes: u64,
}

/// Why an upload is refused while it arrives.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// It would need eviction of acknowledged data (`Room`).
    Room,
    /// Larger than `max_file_bytes`.
    MaxFile(u64),
    /// A compressed file larger than one upload to the API may be.
    Compressed(Reply),
}

impl Refused {
    pub fn reply(self) -> Reply {
        match self {
            Refused::Room => Reply::new(
                452,
                "the collector's spool is full; upload discarded, try again later",
            ),
            Refused::MaxFile(max) => Reply::new(
                552,
                format!("the file is larger than max_file_bytes ({max}); discarded"),
            ),
            Refused::Compressed(reply) => reply,
        }
    }
}

/// Counts for the status snapshot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Uploads received completely.
    pub files: u64,
    pub bytes: u64,
    /// Uploads discarded (aborted, refused, failed).
    pub aborted: u64,
    /// FTPS uploads whose data connection closed without a TLS close_notify, kept.
    pub no_close_notify: u64,
    /// Compressed uploads refused for being larger than one upload's limit.
    pub refused_too_large: u64,
}

struct Entry {
    owner: ConnRef,
    upload: Upload,
    /// The data connection ended cleanly: what the file turned out to be. Until the writer
    /// has written the last piece, the upload waits here.
    ended: Option<Kind>,
}

/// The uploads under way, by id.
pub struct Uploads {
    room: Room,
    max_file: u64,
    max_compressed: u64,
    uploads: HashMap<u64, Entry>,
    pub counts: Counts,
}

impl Uploads {
    /// `max_file`: `[ftp] max_file_bytes`; `max_compressed`: `[delivery] max_upload_bytes`.
    pub fn new(max_file: u64, max_compressed: u64) -> Uploads {
        Uploads {
            room: Room::default(),
            max_file,
            max_compressed,
            uploads: HashMap::new(),
            counts: Counts::default(),
        }
    }

    pub fn set_limits(&mut self, max_file: u64) {
        self.max_file = max_file;
    }

    /// The loop's free-space check (see `Room::set_disk`).
    pub fn set_disk(&mut self, no_space: bool, room: u64) {
        self.room.set_disk(no_space, room);
    }

    /// Whether a new upload may start.
    pub fn may_start(&self) -> bool {
        self.room.may_start()
    }

    /// An upload begins, for the session `owner`; its id names it from now on.
    pub fn start(&mut self, owner: ConnRef, upload: Upload) {
        let entry = Entry {
            owner,
            upload,
            ended: None,
        };
        self.uploads.insert(entry.upload.id, entry);
    }

    /// Whether the server must wait for the writer before reading more of upload `id`.
    pub fn throttled(&self, id: u64) -> bool {
        self.uploads.get(&id).is_some_and(|e| e.upload.throttled())
    }

    /// `data` arrived for upload `id`: the piece to write, if any, or why the upload is
    /// refused (then the server ends its transfer, which discards it).
    pub fn read(&mut self, id: u64, data: &[u8]) -> Result<Option<Piece>, Refused> {
        let Some(e) = self.uploads.get_mut(&id) else {
            return Ok(None);
        };
        let u = &mut e.upload;
        let n = data.len() as u64;
        u.bytes += n;
        if !self.room.arrived(n) {
            return Err(Refused::Room);
        }
        if u.bytes > self.max_file {
            return Err(Refused::MaxFile(self.max_file));
        }
        let mut converted = Vec::with_capacity(data.len());
        u.content.push(data, &mut converted);
        if let Some(refusal) = too_large(u, self.max_compressed) {
            self.counts.refused_too_large += 1;
            return Err(Refused::Compressed(refusal));
        }
        Ok(u.piece(converted))
    }

    /// Upload `id`'s data connection ended cleanly (`truncated`: without a TLS
    /// close_notify): what the converter held back goes to the writer, and the upload is
    /// received once the writer has written everything.
    pub fn ended(&mut self, id: u64, truncated: bool) -> Vec<Step> {
        let Some(e) = self.uploads.get_mut(&id) else {
            return Vec::new();
        };
        let u = &mut e.upload;
        if truncated {
            // TCP closed without a TLS close_notify. RFC 8446 section 6.1 calls that a
            // possible truncation, but in stream mode the close of the data connection is
            // the end of the file (RFC 959 section 3.4.1), appliances' FTPS clients end
            // their uploads this way, and pure-ftpd keeps such files: kept too, and counted
            // so an operator can tell.
            self.counts.no_close_notify += 1;
            log::info!(
                "ftp: /{}/{}: the data connection ended without TLS close_notify; kept",
                u.folder,
                escaped(&u.name)
            );
        }
        // What the converter held back (a short file's first bytes, a final CR).
        let mut rest = Vec::new();
        e.ended = Some(u.content.finish(&mut rest));
        let mut steps: Vec<Step> = u.piece(rest).map(Step::Write).into_iter().collect();
        steps.extend(self.complete(id));
        steps
    }

    /// The writer's answer for a piece.
    pub fn wrote(&mut self, w: Wrote) -> Option<Step> {
        let e = self.uploads.get_mut(&w.id)?;
        e.upload.in_flight -= w.bytes;
        match w.result {
            Ok(()) if e.ended.is_some() => self.complete(w.id),
            Ok(()) => Some(Step::ReadOn(e.owner)),
            Err(err) => {
                log::warn!("ftp: {}: write failed: {err}", e.upload.temp.display());
                let (owner, arriving) = (e.owner, e.ended.is_none());
                let temp = self.discard(w.id)?;
                Some(Step::Failed {
                    owner,
                    temp,
                    reply: Wrote::refusal(&err),
                    arriving,
                })
            }
        }
    }

    /// Upload `id` is given up (aborted, refused, its connection or session gone): its
    /// temp file, to remove.
    pub fn discard(&mut self, id: u64) -> Option<PathBuf> {
        let Entry { upload: u, .. } = self.uploads.remove(&id)?;
        log::info!(
            "ftp: upload of /{}/{} discarded after {} bytes",
            u.folder,
            escaped(&u.name),
            u.bytes
        );
        self.room.dropped(u.bytes);
        self.counts.aborted += 1;
        Some(u.temp)
    }

    /// Every upload left (at a stop, once the writer has stopped): their temp files.
    pub fn discard_all(&mut self) -> Vec<PathBuf> {
        let ids: Vec<u64> = self.uploads.keys().copied().collect();
        ids.into_iter().filter_map(|id| self.discard(id)).collect()
    }

    /// Upload `id`, if it ended and nothing of it waits for the writer, as received (the
    /// client may have left before its 226: what arrived completely still counts).
    fn complete(&mut self, id: u64) -> Option<Step> {
        let e = self.uploads.get(&id)?;
        let kind = e.ended?;
        if e.upload.in_flight > 0 {
            return None;
        }
        let Entry { owner, upload, .. } = self.uploads.remove(&id)?;
        let Upload {
            folder,
            name,
            temp,
            bytes,
            ..
        } = upload;
        self.room.completed(bytes);
        self.counts.files += 1;
        self.counts.bytes += bytes;
        Some(Step::Received(Received {
            owner,
            folder,
            name,
            temp,
            kind,
            bytes,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io;

    const OWNER: ConnRef = ConnRef {
        slot: mio::Token(7),
        id: 1,
    };

    /// Runs `script` against uploads with `max_file_bytes` 100 and `max_upload_bytes` 50,
    /// and returns what they answered, one word per answer:
    /// `sN` / `aN` starts upload N (TYPE I / TYPE A), `=R` a free-space check with room R,
    /// `rN:TEXT` TEXT arrives for N, `eN` / `tN` its connection ends (cleanly / without
    /// close_notify), `wN:B` / `fN:B` the writer wrote / failed B bytes of it, `dN` it is
    /// discarded, `?` may one start; in TEXT and DATA, `^` is CR and `~` LF. Answers: `write@OFF:DATA`, `readon`, `failed:CODE`
    /// (`+arriving`), `received:BYTES:KIND`, `refused:CODE`, `gone:N`, `start`/`no`.
    #[track_caller]
    fn check(script: &str, expected: &str, counts: Counts) {
        let mut ups = Uploads::new(100, 50);
        let mut out = Vec::new();
        let step_text = |s: Step| match s {
            Step::Write(p) => format!(
                "write@{}:{}",
                p.offset,
                String::from_utf8_lossy(&p.data)
                    .replace('\r', "^")
                    .replace('\n', "~")
            ),
            Step::ReadOn(o) => format!("readon{}", if o == OWNER { "" } else { "?" }),
            Step::Failed {
                reply, arriving, ..
            } => format!(
                "failed:{}{}",
                reply.code,
                if arriving { "+arriving" } else { "" }
            ),
            Step::Received(r) => format!("received:{}:{:?}", r.bytes, r.kind),
        };
        for step in script.split_whitespace() {
            let (op, arg) = step.split_at(1);
            let (id, rest) = arg.split_once(':').unwrap_or((arg, ""));
            let id = || id.parse::<u64>().unwrap();
            let n = || rest.parse::<u64>().unwrap();
            match op {
                "s" | "a" => {
                    let file = File::open("/dev/null").unwrap();
                    let temp = PathBuf::from(format!("{}.part", id()));
                    let u = Upload::new(id(), "f".into(), "x".into(), temp, file, op == "a");
                    ups.start(OWNER, u);
                }
                "=" => ups.set_disk(false, id()),
                "?" => out.push(if ups.may_start() { "start" } else { "no" }.to_string()),
                "r" => {
                    match ups.read(id(), rest.replace('^', "\r").replace('~', "\n").as_bytes()) {
                        Ok(Some(p)) => out.push(step_text(Step::Write(p))),
                        Ok(None) => {}
                        Err(r) => out.push(format!("refused:{}", r.reply().code)),
                    }
                }
                "e" | "t" => out.extend(ups.ended(id(), op == "t").into_iter().map(step_text)),
                "w" | "f" => {
                    let result = match op {
                        "w" => Ok(()),
                        _ => Err(io::Error::from_raw_os_error(nix::libc::ENOSPC)),
                    };
                    let w = Wrote {
                        id: id(),
                        bytes: n(),
                        result,
                    };
                    out.extend(ups.wrote(w).map(step_text));
                }
                "d" => out.extend(ups.discard(id()).map(|t| format!("gone:{}", t.display()))),
                _ => panic!("bad step {step}"),
            }
        }
        assert_eq!(out.join(" "), expected, "script {script:?}");
        assert_eq!(ups.counts, counts, "script {script:?}");
    }

    fn counts(
        files: u64,
        bytes: u64,
        aborted: u64,
        no_close_notify: u64,
        too_large: u64,
    ) -> Counts {
        Counts {
            files,
            bytes,
            aborted,
            no_close_notify,
            refused_too_large: too_large,
        }
    }

    #[test]
    fn an_upload_is_received_once_written() {
        // Held until the kind is known (a "P" could start a zip), then passed on.
        check("s1 r1:P r1:ab", "write@0:Pab", counts(0, 0, 0, 0, 0));
        check(
            "s1 r1:hello e1 w1:5",
            "write@0:hello received:5:Text",
            counts(1, 5, 0, 0, 0),
        );
        // The end waits for the writer's last answer; earlier answers let reading go on.
        check(
            "s1 r1:hello r1:world w1:5 e1 w1:5",
            "write@0:hello write@5:world readon received:10:Text",
            counts(1, 10, 0, 0, 0),
        );
        // What the converter held back goes out at the end.
        check(
            "s1 r1:P e1 w1:1",
            "write@0:P received:1:Text",
            counts(1, 1, 0, 0, 0),
        );
        // TYPE A: CRLF to LF, a final CR kept.
        check(
            "a1 r1:a^~b^ e1 w1:3 w1:1",
            "write@0:a~b write@3:^ received:5:Text",
            counts(1, 5, 0, 0, 0),
        );
        // An empty file, and one ended without close_notify (kept, counted).
        check("s1 e1", "received:0:Text", counts(1, 0, 0, 0, 0));
        check("s1 t1", "received:0:Text", counts(1, 0, 0, 1, 0));
    }

    #[test]
    fn limits_refuse_an_upload_while_it_arrives() {
        check(
            "s1 r1:0123456789 d1",
            "write@0:0123456789 gone:1.part",
            counts(0, 0, 1, 0, 0),
        );
        // max_file_bytes, the room, and a compressed file over max_upload_bytes.
        let big = "x".repeat(101);
        check(
            &format!("s1 r1:{big}"),
            "refused:552",
            counts(0, 0, 0, 0, 0),
        );
        check("=4 s1 r1:hello", "refused:452", counts(0, 0, 0, 0, 0));
        let zip = format!("PK\x03\x04{}", "z".repeat(60));
        check(
            &format!("s1 r1:{zip}"),
            "refused:552",
            counts(0, 0, 0, 0, 1),
        );
        // A received upload keeps its room until the next check; a discarded one gives it back.
        check(
            "=10 s1 r1:hello e1 w1:5 s2 r2:world! ?",
            "write@0:hello received:5:Text refused:452 no",
            counts(1, 5, 0, 0, 0),
        );
        check(
            "=10 s1 r1:hello d1 ? s2 r2:hello",
            "write@0:hello gone:1.part start write@0:hello",
            counts(0, 0, 1, 0, 0),
        );
    }

    #[test]
    fn a_failed_write_ends_the_upload() {
        check(
            "s1 r1:hello f1:5 w1:5",
            "write@0:hello failed:452+arriving",
            counts(0, 0, 1, 0, 0),
        );
        check(
            "s1 r1:hello e1 f1:5 d1",
            "write@0:hello failed:452",
            counts(0, 0, 1, 0, 0),
        );
        // Answers for an upload already discarded are nothing to act on.
        check(
            "s1 r1:hello d1 w1:5",
            "write@0:hello gone:1.part",
            counts(0, 0, 1, 0, 0),
        );
    }
}
