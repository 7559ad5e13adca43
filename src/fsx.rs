//! Two file-system helpers every module that writes files shares: errors that name their
//! path, and the fsync of a folder that makes a rename durable. Nothing else lives here.

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
