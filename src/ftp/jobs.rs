//! The FTP server's blocking work, on its own thread (`lc-ftp`): committing uploads (fsync,
//! rename) and the file operations behind LIST, SIZE, MDTM, MLST, DELE and RNTO. Password
//! checks have a thread of their own (`login.rs`), so a commit never waits behind argon2. The loop sends a [`Job`] and hears back
//! through a channel and the waker; nothing here touches a socket.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::Waker;

use super::content::Kind;
use super::listing::{self, Entry, Facts};
use super::session::{ListKind, Reply};
use crate::clock;
use crate::spool;

/// A real folder behind a name at `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Folder {
    /// A source's spool: files are its uploads not yet delivered (`.name` sidecars).
    Spool(PathBuf),
    /// `state_dir/ftp/ssl_update`: plain files.
    Plain(PathBuf),
}

/// Which control connection a job is for: its slot and the id that slot had when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRef {
    pub slot: mio::Token,
    pub id: u64,
}

pub enum Job {
    /// Make a received upload durable and move it where it belongs.
    Commit {
        conn: ConnRef,
        temp: PathBuf,
        dest: Dest,
    },
    /// An aborted or failed upload: remove its temp file.
    Discard(PathBuf),
    List {
        conn: ConnRef,
        /// `None` lists `/` (the folders, given here).
        folder: Option<Folder>,
        folders: Vec<String>,
        /// A single file to list (LIST of a file name).
        name: Option<String>,
        kind: ListKind,
        facts: Facts,
        /// The client speaks Latin-1: names go out as its bytes.
        latin1: bool,
        /// Uploads of this folder completed lately, listed even once delivered.
        recent: Vec<Entry>,
    },
    /// SIZE (213 size), MDTM (213 time), MLST (250 facts) or RNFR (350) of a file or folder.
    Stat {
        conn: ConnRef,
        folder: Option<Folder>,
        name: Option<String>,
        what: Stat,
        facts: Facts,
        /// Uploads of this folder completed lately, found even once delivered.
        recent: Vec<Entry>,
    },
    Delete {
        conn: ConnRef,
        folder: Folder,
        name: String,
    },
    Rename {
        conn: ConnRef,
        folder: Folder,
        from: String,
        to: String,
        /// `from` is a recently completed upload (the loop renamed its record): renaming
        /// succeeds even if it was delivered meanwhile.
        recent: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Size,
    Mdtm,
    Mlst,
    /// RNFR: 350 if the file exists.
    Exists,
}

/// Where a committed upload goes.
pub enum Dest {
    /// Into a source's spool as segment `raw` (reserved by the loop), listed as `name`;
    /// `kind` says whether it is sealed already (`spool::upload_path`).
    Spool {
        source: String,
        seq: u64,
        raw: PathBuf,
        name: String,
        kind: Kind,
    },
    /// A plain file (ssl_update), replacing any of the same name.
    Plain(PathBuf),
}

/// An upload committed to a source's spool.
pub struct Spooled {
    pub source: String,
    pub seq: u64,
    /// Its path in the spool.
    pub raw: PathBuf,
    pub bytes: u64,
    /// A `.gz`/`.zip` file, sealed as it is.
    pub precompressed: bool,
    /// Its first lines, for the source's live format check.
    pub sample: Vec<Vec<u8>>,
}

pub enum Outcome {
    Committed {
        conn: ConnRef,
        /// For spool uploads: what is in the spool now.
        spooled: Option<Spooled>,
        /// For spool uploads: the entry SIZE, MDTM and listings show, kept after delivery.
        listed: Option<Entry>,
        result: Result<u64, String>,
    },
    Listed {
        conn: ConnRef,
        kind: ListKind,
        /// A single file was listed (`STAT file` answers 213, a folder 212).
        file: bool,
        result: Result<Vec<u8>, Reply>,
    },
    Reply {
        conn: ConnRef,
        reply: Reply,
    },
}

pub struct Jobs {
    tx: Option<Sender<Job>>,
    pub rx: Receiver<Outcome>,
    handle: Option<JoinHandle<()>>,
}

impl Jobs {
    pub fn spawn(waker: Arc<Waker>) -> io::Result<Jobs> {
        let (tx, job_rx) = mpsc::channel::<Job>();
        let (out_tx, rx) = mpsc::channel();
        let handle = thread::Builder::new()
            .name("lc-ftp".into())
            .spawn(move || {
                for job in job_rx {
                    if let Some(outcome) = run(job) {
                        if out_tx.send(outcome).is_err() {
                            break;
                        }
                        let _ = waker.wake();
                    }
                }
            })?;
        Ok(Jobs {
            tx: Some(tx),
            rx,
            handle: Some(handle),
        })
    }

    pub fn send(&self, job: Job) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(job);
        }
    }

    /// Finishes queued jobs (discards, commits) and stops the thread.
    pub fn join(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn run(job: Job) -> Option<Outcome> {
    Some(match job {
        Job::Commit { conn, temp, dest } => match dest {
            Dest::Spool {
                source,
                seq,
                raw,
                name,
                kind,
            } => match spool::commit_upload(&temp, &raw, &name, kind) {
                Ok((path, size, bytes)) => Outcome::Committed {
                    conn,
                    spooled: Some(Spooled {
                        source,
                        seq,
                        sample: spool::sample_lines(&path, kind),
                        raw: path,
                        bytes,
                        precompressed: kind.precompressed(),
                    }),
                    listed: Some(Entry {
                        name,
                        is_dir: false,
                        size,
                        modified: clock::unix_secs(std::time::SystemTime::now()),
                    }),
                    result: Ok(bytes),
                },
                Err(e) => {
                    let _ = fs::remove_file(&temp);
                    let _ = fs::remove_file(spool::sidecar_path(&raw));
                    Outcome::Committed {
                        conn,
                        spooled: None,
                        listed: None,
                        result: Err(e.to_string()),
                    }
                }
            },
            Dest::Plain(path) => {
                let result = commit_plain(&temp, &path);
                if result.is_err() {
                    let _ = fs::remove_file(&temp);
                }
                Outcome::Committed {
                    conn,
                    spooled: None,
                    listed: None,
                    result: result.map_err(|e| e.to_string()),
                }
            }
        },
        Job::Discard(path) => {
            let _ = fs::remove_file(path);
            return None;
        }
        Job::List {
            conn,
            folder,
            folders,
            name,
            kind,
            facts,
            latin1,
            recent,
        } => {
            let now = clock::unix_secs(std::time::SystemTime::now());
            // A folder lists what is pending (DESIGN: listed until delivered); a file named
            // alone (LIST file, STAT file) answers as SIZE does, from the recent record too.
            let listed = entries(folder.as_ref(), &folders).map(|all| match name {
                Some(_) => with_recent(all, recent),
                None => all,
            });
            let result = listed.and_then(|all| {
                let chosen: Vec<&Entry> = match &name {
                    None => all.iter().collect(),
                    Some(n) => {
                        let hits: Vec<&Entry> = all.iter().filter(|e| &e.name == n).collect();
                        if hits.is_empty() {
                            return Err(Reply::new(550, format!("{n}: no such file")));
                        }
                        hits
                    }
                };
                let mut out = String::new();
                for e in chosen {
                    out.push_str(&match kind {
                        ListKind::List | ListKind::Stat => listing::list_line(e, now),
                        ListKind::Nlst => listing::nlst_line(e),
                        ListKind::Mlsd => listing::mlsd_line(e, facts),
                    });
                }
                Ok(if latin1 {
                    super::command::to_latin1(&out)
                } else {
                    out.into_bytes()
                })
            });
            Outcome::Listed {
                conn,
                file: name.is_some(),
                kind,
                result,
            }
        }
        Job::Stat {
            conn,
            folder,
            name,
            what,
            facts,
            recent,
        } => Outcome::Reply {
            conn,
            reply: stat(folder.as_ref(), name.as_deref(), what, facts, recent),
        },
        Job::Delete { conn, folder, name } => Outcome::Reply {
            conn,
            reply: delete(&folder, &name),
        },
        Job::Rename {
            conn,
            folder,
            from,
            to,
            recent,
        } => Outcome::Reply {
            conn,
            reply: rename(&folder, &from, &to, recent),
        },
    })
}

fn commit_plain(temp: &Path, path: &Path) -> io::Result<u64> {
    let file = fs::File::open(temp)?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    fs::rename(temp, path).map_err(|e| spool::annotate(path, e))?;
    spool::worker::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(size)
}

/// The entries of a folder, or of `/` when `folder` is `None`.
fn entries(folder: Option<&Folder>, folders: &[String]) -> Result<Vec<Entry>, Reply> {
    let fail = |dir: &Path, e: io::Error| {
        log::warn!("ftp: {}: cannot list: {e}", dir.display());
        Reply::new(451, "cannot list the folder now; try again")
    };
    match folder {
        None => Ok(folders
            .iter()
            .map(|f| Entry {
                name: f.clone(),
                is_dir: true,
                size: 0,
                modified: 0,
            })
            .collect()),
        Some(Folder::Spool(dir)) => Ok(spool::spooled_uploads(dir)
            .into_iter()
            .map(|u| Entry {
                name: u.name,
                is_dir: false,
                size: u.size,
                modified: u.at,
            })
            .collect()),
        Some(Folder::Plain(dir)) => {
            let mut out = Vec::new();
            let read = match fs::read_dir(dir) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(fail(dir, e)),
            };
            for e in read.flatten() {
                // Only regular files; symlinks and anything else are not part of the namespace.
                let Ok(meta) = fs::symlink_metadata(e.path()) else {
                    continue;
                };
                let name = e.file_name().to_string_lossy().into_owned();
                if !meta.is_file() || name.starts_with('.') {
                    continue;
                }
                out.push(Entry {
                    name,
                    is_dir: false,
                    size: meta.len(),
                    modified: meta.modified().map(clock::unix_secs).unwrap_or(0),
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        }
    }
}

/// A spool folder's pending uploads plus those completed lately and delivered already (the
/// pending entry wins where both name a file).
fn with_recent(mut all: Vec<Entry>, recent: Vec<Entry>) -> Vec<Entry> {
    for r in recent {
        if !all.iter().any(|e| e.name == r.name) {
            all.push(r);
        }
    }
    all
}

fn find(folder: &Folder, name: &str, recent: Vec<Entry>) -> Result<Entry, Reply> {
    let pending = entries(Some(folder), &[])?
        .into_iter()
        .rev()
        .find(|e| e.name == name);
    pending
        .or_else(|| recent.into_iter().rev().find(|e| e.name == name))
        .ok_or_else(|| Reply::new(550, format!("{name}: no such file")))
}

fn stat(
    folder: Option<&Folder>,
    name: Option<&str>,
    what: Stat,
    facts: Facts,
    recent: Vec<Entry>,
) -> Reply {
    let entry = match (folder, name) {
        (Some(f), Some(n)) => find(f, n, recent),
        // A folder (or `/`): only MLST describes it.
        (_, None) => Ok(Entry {
            name: String::new(),
            is_dir: true,
            size: 0,
            modified: 0,
        }),
        (None, Some(n)) => Err(Reply::new(550, format!("{n}: no such file"))),
    };
    let e = match entry {
        Ok(e) => e,
        Err(r) => return r,
    };
    match what {
        Stat::Size => Reply::new(213, e.size.to_string()),
        Stat::Mdtm => Reply::new(213, clock::compact(e.modified).replace(['T', 'Z'], "")),
        Stat::Exists => Reply::new(350, "ready for RNTO"),
        Stat::Mlst => Reply {
            code: 250,
            lines: vec!["listing".into(), listing::facts(&e, facts), "end".into()],
        },
    }
}

fn delete(folder: &Folder, name: &str) -> Reply {
    match folder {
        Folder::Spool(_) => Reply::new(
            550,
            format!(
                "{name}: uploads are delivered, not deleted; it leaves this list once delivered"
            ),
        ),
        Folder::Plain(dir) => {
            let path = dir.join(name);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => match fs::remove_file(&path) {
                    Ok(()) => Reply::new(250, format!("{name} deleted")),
                    Err(e) => {
                        log::warn!("ftp: {}: cannot delete: {e}", path.display());
                        Reply::new(450, format!("{name}: cannot delete now"))
                    }
                },
                _ => Reply::new(550, format!("{name}: no such file")),
            }
        }
    }
}

fn rename(folder: &Folder, from: &str, to: &str, recent: bool) -> Reply {
    match folder {
        // The data is already spooled: only the name it is listed under changes. Once
        // delivered (WinSCP renames NAME.filepart right after its 226, and `dir:` delivery is
        // instant) only the loop's record of recent uploads holds the name, and it is renamed
        // there; what was delivered is never touched.
        Folder::Spool(dir) => {
            let Some(upload) = spool::spooled_uploads(dir)
                .into_iter()
                .rev()
                .find(|u| u.name == from)
            else {
                if recent {
                    return Reply::new(250, format!("renamed to {to}"));
                }
                return Reply::new(550, format!("{from}: no such file"));
            };
            let sidecar = upload.sidecar;
            match write_sidecar(&sidecar, to, upload.size) {
                Ok(()) => Reply::new(250, format!("renamed to {to}")),
                // Delivered between the look and the rewrite.
                Err(e) if recent && e.kind() == io::ErrorKind::NotFound => {
                    Reply::new(250, format!("renamed to {to}"))
                }
                Err(e) => {
                    log::warn!("ftp: {}: cannot rename: {e}", sidecar.display());
                    Reply::new(450, format!("{from}: cannot rename now"))
                }
            }
        }
        Folder::Plain(dir) => {
            let (src, dst) = (dir.join(from), dir.join(to));
            match fs::symlink_metadata(&src) {
                Ok(m) if m.is_file() => match fs::rename(&src, &dst) {
                    Ok(()) => Reply::new(250, format!("renamed to {to}")),
                    Err(e) => {
                        log::warn!("ftp: {}: cannot rename: {e}", src.display());
                        Reply::new(450, format!("{from}: cannot rename now"))
                    }
                },
                _ => Reply::new(550, format!("{from}: no such file")),
            }
        }
    }
}

/// Rewrites a sidecar under a new name. A segment delivered meanwhile takes its sidecar
/// with it; a sidecar left without a segment is removed at the next start.
fn write_sidecar(path: &Path, name: &str, size: u64) -> io::Result<()> {
    let tmp = path.with_extension("rename");
    fs::write(&tmp, format!("{name}\n{size}\n"))?;
    if !path.exists() {
        let _ = fs::remove_file(&tmp);
        return Err(io::ErrorKind::NotFound.into());
    }
    fs::rename(&tmp, path)
}
