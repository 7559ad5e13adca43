//! `[spool]`: when segments are sealed and synced, and the spool's limits.

use std::time::Duration;

use super::ini;
use super::values::{Keys, Validator};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spool {
    pub rotate_bytes: u64,
    pub rotate_secs: Duration,
    pub sync_secs: Duration,
    pub max_spool_bytes: u64,
    pub min_free_bytes: u64,
    pub backup_keep: usize,
}

impl Spool {
    pub(super) fn read(v: &mut Validator, s: &ini::Section) -> Spool {
        let mut k = Keys::new(s);
        let rotate_bytes = v.size(k.get("rotate_bytes"), 32 << 20, 4096, 4 << 30);
        let rotate_secs = v.secs(k.get("rotate_secs"), Duration::from_secs(300), 1);
        let sync_secs = v.secs(k.get("sync_secs"), Duration::from_secs(1), 1);
        let max_entry = k.get("max_spool_bytes");
        let max_spool_bytes = v.size(max_entry, 20 << 30, 1 << 20, u64::MAX);
        let min_free_bytes = v.size(k.get("min_free_bytes"), 1 << 30, 0, u64::MAX);
        let backup_keep = v.number(k.get("backup_keep"), 20, 0, 100_000) as usize;
        if rotate_bytes >= max_spool_bytes {
            v.problem(
                max_entry.map_or(s.line, |e| e.line),
                format!(
                    "max_spool_bytes ({max_spool_bytes}) must be larger than rotate_bytes ({rotate_bytes})"
                ),
            );
        }
        k.finish(v);
        Spool {
            rotate_bytes,
            rotate_secs,
            sync_secs,
            max_spool_bytes,
            min_free_bytes,
            backup_keep,
        }
    }
}
