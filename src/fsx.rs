//! File-system helpers every module that writes files shares: errors that name their path,
//! the fsync of a folder that makes a rename durable, and the lock file that keeps a folder
//! to one process. Nothing else lives here.

use std::fs::File;
use std::io;
use std::path::Path;

/// Puts the path in front of an I/O error, so every message names what it is about.
pub fn annotate(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Makes the renames and creations in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| annotate(dir, e))
}

/// The exclusive lock on `dir/name` (created 0600, never through a link), with this process's
/// pid written in it; `Err(Ok(pid))` when another process holds it (its pid as it wrote it,
/// maybe empty), `Err(Err(e))` when the file cannot be opened or written.
pub fn lock_folder(
    dir: &Path,
    name: &str,
) -> Result<nix::fcntl::Flock<File>, Result<String, io::Error>> {
    use nix::fcntl::{Flock, FlockArg};
    use std::fs::OpenOptions;
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| Err(annotate(&path, e)))?;
    let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((file, _)) => {
            let mut holder = String::new();
            let _ = (&file).take(32).read_to_string(&mut holder);
            return Err(Ok(holder.trim().to_string()));
        }
    };
    lock.set_len(0).map_err(|e| Err(annotate(&path, e)))?;
    (&*lock)
        .write_all(format!("{}\n", std::process::id()).as_bytes())
        .map_err(|e| Err(annotate(&path, e)))?;
    Ok(lock)
}
