//! Fixtures the unit tests of several modules share (compiled for tests only).

use std::path::PathBuf;

/// An empty folder for one test: `lc-TAG-PID` in the temp folder, whatever an earlier run
/// left there removed. Tags must differ between tests that run at the same time.
pub fn fresh_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lc-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
