//! The FTP namespace as the server carries it out: which real folder a session's path is
//! (a source's spool, or `ssl_update`), whether the session's address may use it and, for
//! an `ftps` source's uploads, whether its data is protected; the jobs for the `lc-ftp`
//! thread that a session's file actions become (SIZE, MDTM, MLST, RNFR, DELE, RNTO, LIST,
//! NLST, MLSD, STAT of a path), with the uploads answered with 226 lately (`Recent`) that
//! those must still know.
//!
//! No I/O: the server hands it an action and who asks, and gets a [`Plan`] back (a reply
//! now, or a job whose outcome the client waits for). The server owns the sockets, the
//! session and the job thread.

use std::net::IpAddr;
use std::path::PathBuf;

use super::jobs::{ConnRef, Folder, Job, Stat};
use super::listing::{self, Entry, Facts};
use super::path::{VPath, SSL_UPDATE};
use super::recent::Recent;
use super::session::{Action, ListKind, Reply};
use crate::allow::AllowList;
use crate::config::Receiver as Kind;

/// One FTP source as the server sees it.
pub struct FolderInfo {
    pub name: String,
    pub receiver: Kind,
    pub allow: AllowList,
    pub spool_dir: PathBuf,
}

/// The session an action comes from.
pub struct Who {
    pub conn: ConnRef,
    /// The client's address (behind a balancer, the one its PROXY header named).
    pub ip: IpAddr,
    pub facts: Facts,
    /// The folders at `/` for this session.
    pub folders: Vec<String>,
    /// The client speaks Latin-1: listings go out as its bytes.
    pub latin1: bool,
}

/// What the server does for a file action.
pub enum Plan {
    /// Answer now: a refusal, or MLST of a folder.
    Reply(Reply),
    /// Send this to the `lc-ftp` thread; its outcome answers the client.
    Job(Job),
}

pub struct Files {
    folders: Vec<FolderInfo>,
    ssl_update: PathBuf,
    /// Uploads answered with 226 lately, per folder: SIZE, MDTM, RNFR/RNTO and listings
    /// know them even once delivered.
    recent: Recent,
}

impl Files {
    pub fn new(folders: Vec<FolderInfo>, ssl_update: PathBuf) -> Files {
        Files {
            folders,
            ssl_update,
            recent: Recent::default(),
        }
    }

    /// The FTP sources after a reload.
    pub fn set_folders(&mut self, folders: Vec<FolderInfo>) {
        self.folders = folders;
    }

    pub fn ssl_update(&self) -> &PathBuf {
        &self.ssl_update
    }

    /// The folders at `/` for a new session.
    pub fn names(&self) -> Vec<String> {
        let names = self.folders.iter().map(|f| f.name.clone());
        names.chain([SSL_UPDATE.to_string()]).collect()
    }

    /// Whether some source's allow list takes `ip` (else it gets no session).
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.folders.iter().any(|f| f.allow.allows(ip))
    }

    /// An upload answered with 226 is in `source`'s spool, listed as `entry`.
    pub fn committed(&mut self, source: &str, entry: Entry, now: u64) {
        self.recent.add(source, entry, now);
    }

    /// The file name an upload to `path` from `ip` takes, or why it may not.
    pub fn upload(&self, path: &VPath, ip: IpAddr, private: bool) -> Result<String, Reply> {
        match self.locate(path, ip, private, true)? {
            (_, Some(name)) => Ok(name),
            _ => Err(Reply::new(553, "only files can be stored")),
        }
    }

    /// The plan for a file action of `who` (`now`: Unix seconds). Actions that are not
    /// about files are the server's.
    pub fn plan(&mut self, who: &Who, action: Action, now: u64) -> Plan {
        // `Err` is a reply now: a refusal, or MLST of a folder.
        let planned = match action {
            Action::RenameFrom(path) => self.stat(who, path, Stat::Exists, now),
            Action::Size(path) => self.stat(who, path, Stat::Size, now),
            Action::Mdtm(path) => self.stat(who, path, Stat::Mdtm, now),
            Action::Mlst(path @ (VPath::Root | VPath::Folder(_))) => {
                let entry = Entry {
                    name: path.to_string(),
                    is_dir: true,
                    size: 0,
                    modified: 0,
                };
                let facts = listing::facts(&entry, who.facts);
                Err(Reply {
                    code: 250,
                    lines: vec!["listing".into(), facts, "end".into()],
                })
            }
            Action::Mlst(path) => self.stat(who, path, Stat::Mlst, now),
            Action::List {
                path,
                kind,
                private,
            } => self.list(who, path, kind, private, now),
            Action::Delete(path) => match self.locate(&path, who.ip, true, false) {
                Ok((Some(folder), Some(name))) => Ok(Job::Delete {
                    conn: who.conn,
                    folder,
                    name,
                }),
                Ok(_) => Err(Reply::new(550, "only files can be deleted")),
                Err(r) => Err(r),
            },
            Action::Rename { from, to } => self.rename(who, from, to, now),
            other => unreachable!("{other:?} is not a file action"),
        };
        match planned {
            Ok(job) => Plan::Job(job),
            Err(reply) => Plan::Reply(reply),
        }
    }

    fn stat(&mut self, who: &Who, path: VPath, what: Stat, now: u64) -> Result<Job, Reply> {
        let (folder, name) = self.locate(&path, who.ip, true, false)?;
        let recent = match folder {
            Some(Folder::Spool(_)) => self.recent_of(&path, now),
            _ => Vec::new(),
        };
        Ok(Job::Stat {
            conn: who.conn,
            folder,
            name,
            what,
            facts: who.facts,
            recent,
        })
    }

    fn list(
        &mut self,
        who: &Who,
        path: VPath,
        kind: ListKind,
        private: bool,
        now: u64,
    ) -> Result<Job, Reply> {
        let (folder, name) = self.locate(&path, who.ip, private, false)?;
        // STAT's lines go out as a reply, encoded with the rest of it.
        let latin1 = who.latin1 && kind != ListKind::Stat;
        Ok(Job::List {
            conn: who.conn,
            folder,
            folders: who.folders.clone(),
            name,
            kind,
            facts: who.facts,
            latin1,
            recent: self.recent_of(&path, now),
        })
    }

    fn rename(&mut self, who: &Who, from: VPath, to: VPath, now: u64) -> Result<Job, Reply> {
        let (
            VPath::File {
                folder: f1,
                name: from,
            },
            VPath::File {
                folder: f2,
                name: to,
            },
        ) = (from, to)
        else {
            return Err(Reply::new(553, "only files can be renamed"));
        };
        if f1 != f2 {
            return Err(Reply::new(553, "files cannot move between folders"));
        }
        let Some(folder) = self
            .locate(&VPath::Folder(f1.clone()), who.ip, true, false)?
            .0
        else {
            unreachable!("a folder's path is a folder")
        };
        let recent = matches!(folder, Folder::Spool(_)) && self.recent.rename(&f1, &from, &to, now);
        Ok(Job::Rename {
            conn: who.conn,
            folder,
            from,
            to,
            recent,
        })
    }

    /// The recent uploads of `path`'s folder (none for `/` and `ssl_update`).
    fn recent_of(&mut self, path: &VPath, now: u64) -> Vec<Entry> {
        match path {
            VPath::Folder(f) | VPath::File { folder: f, .. } if f != SSL_UPDATE => {
                self.recent.entries(f, now)
            }
            _ => Vec::new(),
        }
    }

    /// The real folder and file name of `path`, after the source's allow list and, for
    /// uploads to `ftps` sources, the need for protected data; or the refusal.
    fn locate(
        &self,
        path: &VPath,
        ip: IpAddr,
        private: bool,
        upload: bool,
    ) -> Result<(Option<Folder>, Option<String>), Reply> {
        let (folder, name) = match path {
            VPath::Root => return Ok((None, None)),
            VPath::Folder(f) => (f, None),
            VPath::File { folder, name } => (folder, Some(name.clone())),
        };
        if folder == SSL_UPDATE {
            return Ok((Some(Folder::Plain(self.ssl_update.clone())), name));
        }
        match self.folders.iter().find(|f| &f.name == folder) {
            None => Err(Reply::new(550, format!("/{folder}: no such folder"))),
            Some(f) if !f.allow.allows(ip) => Err(Reply::new(
                550,
                format!("/{folder}: not allowed from your address"),
            )),
            Some(f) if upload && f.receiver == Kind::Ftps && !private => Err(Reply::new(
                521,
                format!("/{folder} takes protected data only: AUTH TLS, PBSZ 0 and PROT P first"),
            )),
            Some(f) => Ok((Some(Folder::Spool(f.spool_dir.clone())), name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::Cidr;

    /// Plans `action` from 192.0.2.COUNT (`ip`, after `uploads` `FOLDER/NAME` were
    /// answered with 226) in a namespace of `fw` (an `ftp` source open to everyone), `fs`
    /// (an `ftps` one) and `only` (an `ftp` source open to 192.0.2.1 only); answers the
    /// reply's code and first line, or the job in a word or two.
    #[track_caller]
    fn check(ip: u8, uploads: &[&str], action: Action, expected: &str) {
        let folder = |name: &str, receiver, allow: &[&str]| FolderInfo {
            name: name.into(),
            receiver,
            allow: AllowList(allow.iter().map(|c| Cidr::parse(c).unwrap()).collect()),
            spool_dir: PathBuf::from(format!("/spool/{name}")),
        };
        let mut files = Files::new(
            vec![
                folder("fw", Kind::Ftp, &[]),
                folder("fs", Kind::Ftps, &[]),
                folder("only", Kind::Ftp, &["192.0.2.1/32"]),
            ],
            PathBuf::from("/ftp/ssl_update"),
        );
        for u in uploads {
            let (f, name) = u.split_once('/').unwrap();
            let entry = Entry {
                name: name.into(),
                is_dir: false,
                size: 1,
                modified: 1,
            };
            files.committed(f, entry, 100);
        }
        let who = Who {
            conn: ConnRef {
                slot: mio::Token(1),
                id: 1,
            },
            ip: IpAddr::from([192, 0, 2, ip]),
            facts: Facts::default(),
            folders: files.names(),
            latin1: false,
        };
        let where_ = |f: &Option<Folder>| match f {
            None => "/".to_string(),
            Some(Folder::Spool(p)) | Some(Folder::Plain(p)) => p.display().to_string(),
        };
        let got = match files.plan(&who, action, 110) {
            Plan::Reply(r) => format!("{} {}", r.code, r.lines[0]),
            Plan::Job(Job::Stat {
                folder,
                name,
                what,
                recent,
                ..
            }) => format!(
                "stat {what:?} {} {name:?} recent={}",
                where_(&folder),
                recent.len()
            ),
            Plan::Job(Job::List {
                folder,
                name,
                recent,
                folders,
                ..
            }) => format!(
                "list {} {name:?} recent={} of {}",
                where_(&folder),
                recent.len(),
                folders.join(",")
            ),
            Plan::Job(Job::Delete { folder, name, .. }) => {
                format!("delete {} {name}", where_(&Some(folder)))
            }
            Plan::Job(Job::Rename {
                folder,
                from,
                to,
                recent,
                ..
            }) => format!(
                "rename {} {from} {to} recent={recent}",
                where_(&Some(folder))
            ),
            Plan::Job(_) => "another job".into(),
        };
        assert_eq!(got, expected);
    }

    fn file(folder: &str, name: &str) -> VPath {
        VPath::File {
            folder: folder.into(),
            name: name.into(),
        }
    }

    fn dir(folder: &str) -> VPath {
        VPath::Folder(folder.into())
    }

    #[test]
    fn paths_reach_their_folders_or_are_refused() {
        check(
            2,
            &[],
            Action::Size(file("fw", "a")),
            "stat Size /spool/fw Some(\"a\") recent=0",
        );
        check(
            2,
            &[],
            Action::Mdtm(file("nope", "a")),
            "550 /nope: no such folder",
        );
        check(
            2,
            &[],
            Action::Size(file("only", "a")),
            "550 /only: not allowed from your address",
        );
        check(
            1,
            &[],
            Action::Size(file("only", "a")),
            "stat Size /spool/only Some(\"a\") recent=0",
        );
        check(
            2,
            &[],
            Action::RenameFrom(file("ssl_update", "cert.pem")),
            "stat Exists /ftp/ssl_update Some(\"cert.pem\") recent=0",
        );
        check(
            2,
            &[],
            Action::Delete(file("fw", "a")),
            "delete /spool/fw a",
        );
        check(
            2,
            &[],
            Action::Delete(file("only", "a")),
            "550 /only: not allowed from your address",
        );
    }

    #[test]
    fn listings_and_mlst() {
        let list = |path, kind| Action::List {
            path,
            kind,
            private: false,
        };
        check(
            2,
            &[],
            list(VPath::Root, ListKind::List),
            "list / None recent=0 of fw,fs,only,ssl_update",
        );
        // Uploads answered lately are listed even once delivered; not those of other folders.
        check(
            2,
            &["fw/x", "fs/y"],
            list(dir("fw"), ListKind::Mlsd),
            "list /spool/fw None recent=1 of fw,fs,only,ssl_update",
        );
        check(
            2,
            &["fw/x"],
            list(dir("only"), ListKind::Nlst),
            "550 /only: not allowed from your address",
        );
        // An ftps source's listing needs no protection; its uploads do.
        check(
            2,
            &[],
            list(dir("fs"), ListKind::Stat),
            "list /spool/fs None recent=0 of fw,fs,only,ssl_update",
        );
        check(2, &[], Action::Mlst(dir("fw")), "250 listing");
        check(2, &[], Action::Mlst(VPath::Root), "250 listing");
        check(
            2,
            &["fw/x"],
            Action::Mlst(file("fw", "x")),
            "stat Mlst /spool/fw Some(\"x\") recent=1",
        );
    }

    #[test]
    fn renames_stay_in_their_folder() {
        let rename = |from, to| Action::Rename { from, to };
        check(
            2,
            &[],
            rename(file("fw", "a"), file("fw", "b")),
            "rename /spool/fw a b recent=false",
        );
        check(
            2,
            &["fw/a"],
            rename(file("fw", "a"), file("fw", "b")),
            "rename /spool/fw a b recent=true",
        );
        check(
            2,
            &[],
            rename(file("fw", "a"), file("fs", "a")),
            "553 files cannot move between folders",
        );
        check(
            2,
            &[],
            rename(file("only", "a"), file("only", "b")),
            "550 /only: not allowed from your address",
        );
        check(
            2,
            &[],
            rename(dir("fw"), file("fw", "b")),
            "553 only files can be renamed",
        );
    }

    #[test]
    fn uploads_need_an_open_folder_and_protection_where_asked() {
        let ip = |n| IpAddr::from([192, 0, 2, n]);
        let files = Files::new(
            vec![FolderInfo {
                name: "fs".into(),
                receiver: Kind::Ftps,
                allow: AllowList::default(),
                spool_dir: PathBuf::from("/spool/fs"),
            }],
            PathBuf::from("/ftp/ssl_update"),
        );
        let code = |r: Result<String, Reply>| r.map_err(|r| r.code);
        assert_eq!(
            code(files.upload(&file("fs", "a"), ip(2), true)),
            Ok("a".into())
        );
        assert_eq!(code(files.upload(&file("fs", "a"), ip(2), false)), Err(521));
        assert_eq!(
            code(files.upload(&file("ssl_update", "k"), ip(2), false)),
            Ok("k".into())
        );
        assert_eq!(code(files.upload(&file("x", "a"), ip(2), true)), Err(550));
    }
}
