//! Delivery into a folder (`url = dir:PATH`): for data diodes and offline transfer.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::fsx::{annotate, sync_dir};

/// Places `src` in `outbox` under `name`, atomically. A name that already exists means an
/// earlier run delivered it and stopped before the move to backup: it is not placed again.
pub fn deliver(src: &Path, outbox: &Path, name: &str) -> io::Result<()> {
    fs::create_dir_all(outbox).map_err(|e| annotate(outbox, e))?;
    let dest = outbox.join(name);
    match fs::hard_link(src, &dest) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        // Another filesystem (or one without links): copy under a hidden name, then rename.
        Err(_) => copy_durably(src, outbox, name)?,
    }
    sync_dir(outbox)
}

fn copy_durably(src: &Path, dir: &Path, name: &str) -> io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let result = (|| {
        let mut out = File::create(&tmp).map_err(|e| annotate(&tmp, e))?;
        io::copy(
            &mut File::open(src).map_err(|e| annotate(src, e))?,
            &mut out,
        )
        .map_err(|e| annotate(&tmp, e))?;
        out.flush()?;
        out.sync_all().map_err(|e| annotate(&tmp, e))?;
        fs::rename(&tmp, dir.join(name)).map_err(|e| annotate(&tmp, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}
