//! Owner, group and mode of the files that lc's commands write as root (`lc passwd`,
//! `lc connect`, `lc certs init`, `lc certs reload`), so that the service, which runs as the
//! unprivileged user `lc`, can read them and no other user can.
//!
//! The rule: run as root, a new file takes root as owner and the group of the folder it is
//! written into; a replaced file keeps the owner and group it had. A secret (token, password
//! file, private key) is mode 0640 when that group is not root's, else 0600. install.sh makes
//! /etc/lc and /etc/lc/certs `root:lc 0750`, so secrets there end up `root:lc 0640`: the service
//! reads them through its group, cannot change them, and other users cannot reach the folder.
//! `certs/private/` (the local CA's key) is root's alone, so that key stays `root:root 0600`.
//! Run as any other user nothing changes hands (a file is its writer's, a secret 0600), which
//! is what the tests and the quick start see. This module only decides and applies; writing
//! the files atomically stays with each command.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What a file written to some path should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// (uid, gid) to give the file; `None` leaves it as created.
    chown: Option<(u32, u32)>,
    /// Whether a group other than root's is to read a secret.
    group_reads: bool,
}

/// The pure rule: `euid` of this process, the group of the destination folder, the (uid, gid)
/// of the file being replaced.
fn decide(euid: u32, dir_gid: Option<u32>, old: Option<(u32, u32)>) -> Owner {
    if euid != 0 {
        // An unprivileged writer can only keep what is there (when it may) and makes no
        // secret readable by anyone else.
        return Owner {
            chown: old,
            group_reads: false,
        };
    }
    let chown = old.or(dir_gid.map(|g| (0, g)));
    Owner {
        chown,
        group_reads: chown.is_some_and(|(_, g)| g != 0),
    }
}

/// What to give the file at `path`, from this process's user, `path`'s folder and the file
/// `path` replaces (if any).
pub fn for_path(path: &Path) -> Owner {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let old = fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
    let dir_gid = fs::metadata(dir).ok().map(|m| m.gid());
    decide(nix::unistd::geteuid().as_raw(), dir_gid, old)
}

impl Owner {
    /// The mode of a secret file: readable by the group when the service's group owns it.
    pub fn secret_mode(&self) -> u32 {
        if self.group_reads {
            0o640
        } else {
            0o600
        }
    }

    /// Gives an open file its owner and group (nothing when they are already right, so an
    /// unprivileged writer never needs the right to chown).
    pub fn apply(&self, file: &File) -> io::Result<()> {
        let Some((uid, gid)) = self.chown else {
            return Ok(());
        };
        let m = file.metadata()?;
        if (m.uid(), m.gid()) != (uid, gid) {
            std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// `apply` for a file or folder named by its path (symbolic links are not followed).
    pub fn apply_path(&self, path: &Path) -> io::Result<()> {
        let Some((uid, gid)) = self.chown else {
            return Ok(());
        };
        let m = fs::symlink_metadata(path)?;
        if (m.uid(), m.gid()) != (uid, gid) {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
        }
        Ok(())
    }
}

/// Gives `to` the owner and group of `from` when running as root (a copied folder or file
/// must stay readable by the same group as the original); does nothing otherwise.
pub fn copy(from: &fs::Metadata, to: &Path) -> io::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    Owner {
        chown: Some((from.uid(), from.gid())),
        group_reads: false,
    }
    .apply_path(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[track_caller]
    fn check(euid: u32, dir_gid: Option<u32>, old: Option<(u32, u32)>, expected: &str) {
        let o = decide(euid, dir_gid, old);
        let got = format!("chown={:?} secret={:o}", o.chown, o.secret_mode());
        assert_eq!(got, expected);
    }

    #[test]
    fn rule() {
        // root, new file: the folder's group; group-readable secrets only for a non-root group.
        check(0, Some(999), None, "chown=Some((0, 999)) secret=640");
        check(0, Some(0), None, "chown=Some((0, 0)) secret=600");
        check(0, None, None, "chown=None secret=600");
        // root, replaced file: keeps what it had, whatever the folder says.
        check(0, Some(999), Some((0, 0)), "chown=Some((0, 0)) secret=600");
        check(
            0,
            Some(0),
            Some((999, 999)),
            "chown=Some((999, 999)) secret=640",
        );
        // not root: keeps the old owner, never group-readable.
        check(1000, Some(999), None, "chown=None secret=600");
        check(
            1000,
            Some(999),
            Some((1000, 1000)),
            "chown=Some((1000, 1000)) secret=600",
        );
    }

    /// As root in a temp dir: a secret written into a folder of another group gets that group
    /// and 0640; the same written into root's folder stays 0600 root:root.
    #[test]
    fn root_takes_the_folders_group() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root to chown");
            return;
        }
        let dir = std::env::temp_dir().join(format!("lc-owner-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let shared = dir.join("shared");
        let private = dir.join("private");
        fs::create_dir_all(&shared).unwrap();
        fs::create_dir_all(&private).unwrap();
        std::os::unix::fs::chown(&shared, Some(0), Some(4242)).unwrap();
        for (folder, gid, mode) in [(&shared, 4242, 0o640), (&private, 0, 0o600)] {
            let path = folder.join("token");
            let o = for_path(&path);
            let f = File::create(&path).unwrap();
            f.set_permissions(fs::Permissions::from_mode(o.secret_mode()))
                .unwrap();
            o.apply(&f).unwrap();
            let m = fs::metadata(&path).unwrap();
            assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (0, gid, mode));
        }
        // A replaced file keeps its group even when the folder's changed since.
        std::os::unix::fs::chown(&shared, Some(0), Some(0)).unwrap();
        let o = for_path(&shared.join("token"));
        assert_eq!(o.secret_mode(), 0o640);
        let _ = fs::remove_dir_all(&dir);
    }
}
