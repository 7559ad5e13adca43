//! Uploads answered with 226 lately, per folder, without I/O.
//!
//! A spool folder lists an upload while its `.name` sidecar is there, that is until it is
//! delivered; with `url = dir:` that can be before the client's next command. Clients ask
//! right after 226 all the same: SIZE to check the transfer, RNFR/RNTO to give WinSCP's
//! `NAME.filepart` its real name, MDTM, MLST, LIST or STAT of the file. Folder listings
//! still show only what is pending (DESIGN.md). pure-ftpd keeps the file, so they work
//! there; lc keeps this record, bounded by [`RECENT_UPLOADS`] per folder and [`RECENT_SECS`],
//! so they work here too. A rename changes only the record (and a pending sidecar), never a
//! file already delivered.

use std::collections::{HashMap, VecDeque};

use super::listing::Entry;

/// Uploads remembered per folder, newest kept.
pub const RECENT_UPLOADS: usize = 64;
/// How long an upload is remembered after its 226.
pub const RECENT_SECS: u64 = 15 * 60;

#[derive(Debug, Default)]
pub struct Recent {
    folders: HashMap<String, VecDeque<Entry>>,
}

impl Recent {
    /// `entry` of `folder` got its 226 at `entry.modified`.
    pub fn add(&mut self, folder: &str, entry: Entry, now: u64) {
        let list = self.folders.entry(folder.to_string()).or_default();
        list.retain(|e| e.name != entry.name);
        list.push_back(entry);
        while list.len() > RECENT_UPLOADS {
            list.pop_front();
        }
        self.prune(now);
    }

    /// The uploads of `folder` still remembered at `now`, oldest first.
    pub fn entries(&mut self, folder: &str, now: u64) -> Vec<Entry> {
        self.prune(now);
        self.folders
            .get(folder)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Renames a remembered upload; false if `from` is not remembered.
    pub fn rename(&mut self, folder: &str, from: &str, to: &str, now: u64) -> bool {
        self.prune(now);
        let Some(list) = self.folders.get_mut(folder) else {
            return false;
        };
        let Some(i) = list.iter().rposition(|e| e.name == from) else {
            return false;
        };
        let mut e = list.remove(i).expect("index from rposition");
        list.retain(|x| x.name != to);
        e.name = to.to_string();
        list.push_back(e);
        true
    }

    /// Forgets what is older than [`RECENT_SECS`].
    pub fn prune(&mut self, now: u64) {
        for list in self.folders.values_mut() {
            list.retain(|e| now.saturating_sub(e.modified) < RECENT_SECS);
        }
        self.folders.retain(|_, l| !l.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, at: u64) -> Entry {
        Entry {
            name: name.into(),
            is_dir: false,
            size: 1,
            modified: at,
        }
    }

    fn names(r: &mut Recent, folder: &str, now: u64) -> Vec<String> {
        r.entries(folder, now).into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn bounded_by_count_and_age_and_renamed_in_place() {
        let mut r = Recent::default();
        r.add("squid", file("a.filepart", 100), 100);
        r.add("asa", file("b", 100), 100);
        assert_eq!(names(&mut r, "squid", 100), ["a.filepart"]);
        assert!(r.rename("squid", "a.filepart", "a", 101));
        assert!(!r.rename("squid", "a.filepart", "a", 101));
        assert!(!r.rename("asa", "a", "c", 101));
        assert_eq!(names(&mut r, "squid", 101), ["a"]);
        // The same name again replaces the older record.
        r.add("squid", file("a", 102), 102);
        assert_eq!(names(&mut r, "squid", 102), ["a"]);
        // Forgotten RECENT_SECS after their 226.
        assert_eq!(
            names(&mut r, "asa", 100 + RECENT_SECS),
            Vec::<String>::new()
        );
        assert_eq!(names(&mut r, "squid", 101 + RECENT_SECS), ["a"]);
        for i in 0..RECENT_UPLOADS + 5 {
            r.add("squid", file(&format!("f{i}"), 200), 200);
        }
        let kept = names(&mut r, "squid", 200);
        assert_eq!(kept.len(), RECENT_UPLOADS);
        assert_eq!(kept[0], "f5");
    }
}
