//! Careful file primitives for paths another user can write.
//!
//! The service runs as `lc`; `lc connect`, `lc certs reload`, `lc passwd`, `lc status` and
//! `lc tail` run as root. Everything in a folder the service can write (run_dir, state_dir,
//! the spool, `ftp/ssl_update/`) is hostile to root: a symbolic link there can point at
//! /etc/shadow, a FIFO can hang a reader, a hard link can alias a root-only file, a huge file
//! can exhaust memory. Every root-run path that touches such a folder goes through this
//! module, which:
//!
//! - opens with `O_NOFOLLOW` (a link is refused, never followed) and `O_NONBLOCK` (a FIFO
//!   opens at once instead of waiting for a writer), then checks the *handle* with `fstat`:
//!   a regular file, with one link, owned by root or the folder's owner;
//! - reads with a size limit;
//! - creates a file only with `O_CREAT|O_EXCL|O_NOFOLLOW`, so nothing planted is written through;
//! - changes the owner only of a file it has just created, through the handle it created.
//!
//! Whether a path is worth this care is the caller's question; what "careful" means is this
//! module's alone.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::libc;

/// Who may own a file that root is to trust: root, and the owner of the folder it is in (the
/// service user, for the service's folders). A file of any third user is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owners {
    folder_owner: u32,
}

impl Owners {
    /// The owners trusted for files in `dir`.
    pub fn of_folder(dir: &Path) -> io::Result<Owners> {
        let meta = fs::metadata(dir).map_err(|e| annotate(dir, e))?;
        Ok(Owners {
            folder_owner: meta.uid(),
        })
    }

    /// The owners trusted for `path`, from its folder.
    pub fn of_parent(path: &Path) -> io::Result<Owners> {
        Owners::of_folder(parent(path))
    }

    fn allows(&self, uid: u32) -> bool {
        uid == 0 || uid == self.folder_owner
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// What `fstat` said about an opened handle, reduced to what the checks need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Handle {
    /// `st_mode & S_IFMT`.
    kind: u32,
    nlink: u64,
    uid: u32,
    size: u64,
}

/// The pure rule: why a handle is refused, or `None`.
fn refusal(h: Handle, owners: Owners, max_bytes: u64) -> Option<String> {
    let kind = match h.kind {
        libc::S_IFREG => None,
        libc::S_IFIFO => Some("a FIFO"),
        libc::S_IFDIR => Some("a folder"),
        libc::S_IFLNK => Some("a symbolic link"),
        libc::S_IFSOCK => Some("a socket"),
        libc::S_IFCHR | libc::S_IFBLK => Some("a device"),
        _ => Some("not a regular file"),
    };
    if let Some(kind) = kind {
        return Some(format!("{kind}, not a regular file"));
    }
    // A second name makes a file dangerous only when it is root's in a folder another user
    // owns: that user may have linked it there for root to read or rewrite. A file of the
    // folder's owner is one that user can read and write anyway (the service's delivered
    // segments keep a second name in a `dir:` outbox), and a folder of root's holds nothing
    // another user planted.
    if h.nlink != 1 && h.uid == 0 && owners.folder_owner != 0 {
        return Some(format!(
            "root's file with {} hard links in a folder of uid {}; only a file with one is trusted",
            h.nlink, owners.folder_owner
        ));
    }
    if !owners.allows(h.uid) {
        return Some(format!(
            "owned by uid {}, neither root nor the folder's owner (uid {})",
            h.uid, owners.folder_owner
        ));
    }
    if h.size > max_bytes {
        return Some(format!(
            "{} bytes, more than the {max_bytes} allowed",
            h.size
        ));
    }
    None
}

/// The error for a refused path: `PATH: refused: WHY`.
fn refused(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: refused: {why}", path.display()),
    )
}

fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn open_checked(path: &Path, write: bool, owners: Owners, max_bytes: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                refused(path, "a symbolic link, not followed")
            } else {
                annotate(path, e)
            }
        })?;
    let m = file.metadata().map_err(|e| annotate(path, e))?;
    let h = Handle {
        kind: m.mode() & libc::S_IFMT,
        nlink: m.nlink(),
        uid: m.uid(),
        size: m.len(),
    };
    if let Some(why) = refusal(h, owners, max_bytes) {
        return Err(refused(path, &why));
    }
    Ok(file)
}

/// Opens an existing file for reading, refusing links, FIFOs, devices, hard-linked files,
/// files of untrusted owners and files over `max_bytes`.
pub fn open(path: &Path, owners: Owners, max_bytes: u64) -> io::Result<File> {
    open_checked(path, false, owners, max_bytes)
}

/// `open` for reading and writing (a state file shared with the service).
pub fn open_rw(path: &Path, owners: Owners, max_bytes: u64) -> io::Result<File> {
    open_checked(path, true, owners, max_bytes)
}

/// Reads all of an opened file, at most `max_bytes` (the file may grow after the check).
pub fn read_limited(path: &Path, file: &mut File, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| annotate(path, e))?;
    if bytes.len() as u64 > max_bytes {
        return Err(refused(
            path,
            &format!("grew past the {max_bytes} bytes allowed while read"),
        ));
    }
    Ok(bytes)
}

/// Reads a whole file carefully (see `open`).
pub fn read(path: &Path, owners: Owners, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut file = open(path, owners, max_bytes)?;
    read_limited(path, &mut file, max_bytes)
}

/// Reads a file in a folder, trusting root and the folder's owner (`Owners::of_parent`).
pub fn read_in_folder(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    read(path, Owners::of_parent(path)?, max_bytes)
}

/// Creates a new file: `O_CREAT|O_EXCL|O_NOFOLLOW`, so whatever is at `path` already, a
/// planted link included, makes this fail instead of being written through.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| annotate(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LC: u32 = 999;

    #[track_caller]
    fn check(kind: u32, nlink: u64, uid: u32, size: u64, expected: Option<&str>) {
        let h = Handle {
            kind,
            nlink,
            uid,
            size,
        };
        let got = refusal(h, Owners { folder_owner: LC }, 100);
        assert_eq!(got.as_deref(), expected);
    }

    #[test]
    fn rule() {
        check(libc::S_IFREG, 1, 0, 10, None);
        check(libc::S_IFREG, 1, LC, 100, None);
        check(libc::S_IFIFO, 1, LC, 0, Some("a FIFO, not a regular file"));
        check(libc::S_IFCHR, 1, 0, 0, Some("a device, not a regular file"));
        check(
            libc::S_IFDIR,
            2,
            LC,
            0,
            Some("a folder, not a regular file"),
        );
        check(
            libc::S_IFSOCK,
            1,
            LC,
            0,
            Some("a socket, not a regular file"),
        );
        check(
            libc::S_IFREG,
            2,
            0,
            10,
            Some("root's file with 2 hard links in a folder of uid 999; only a file with one is trusted"),
        );
        // The service's own file with a second name (a delivered segment in the outbox).
        check(libc::S_IFREG, 2, LC, 10, None);
        check(
            libc::S_IFREG,
            1,
            1000,
            10,
            Some("owned by uid 1000, neither root nor the folder's owner (uid 999)"),
        );
        check(
            libc::S_IFREG,
            1,
            LC,
            101,
            Some("101 bytes, more than the 100 allowed"),
        );
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        crate::testing::fresh_dir(&format!("careful-{name}"))
    }

    #[test]
    fn links_fifos_and_big_files_are_refused_on_disk() {
        let dir = temp_dir("refuse");
        let target = dir.join("target");
        fs::write(&target, b"secret").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("link")).unwrap();
        fs::hard_link(&target, dir.join("hard")).unwrap();
        nix::unistd::mkfifo(
            &dir.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        fs::write(dir.join("big"), vec![b'x'; 101]).unwrap();
        fs::write(dir.join("ok"), b"fine").unwrap();
        // As root, the folder is given to another user (as the service's are): root's file
        // with a second name in it is then what a planted hard link looks like. Otherwise the
        // file is the folder owner's own, which a second name does not make dangerous.
        let as_root = nix::unistd::geteuid().is_root();
        if as_root {
            nix::unistd::chown(&dir, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
        }
        let owners = Owners::of_folder(&dir).unwrap();
        let why = |name: &str| match read(&dir.join(name), owners, 100) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(e) => e.to_string().replace(&dir.display().to_string(), "D"),
        };
        assert_eq!(
            why("link"),
            "D/link: refused: a symbolic link, not followed"
        );
        if as_root {
            assert_eq!(
                why("hard"),
                "D/hard: refused: root's file with 2 hard links in a folder of uid 65534; only a file with one is trusted"
            );
        } else {
            assert_eq!(why("hard"), "secret");
        }
        assert_eq!(why("fifo"), "D/fifo: refused: a FIFO, not a regular file");
        assert_eq!(
            why("big"),
            "D/big: refused: 101 bytes, more than the 100 allowed"
        );
        assert_eq!(why("ok"), "fine");
        assert!(create_new(&dir.join("link"), 0o600).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"secret");
        assert!(create_new(&dir.join("ok"), 0o600).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
