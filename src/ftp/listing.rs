//! Directory listings as FTP clients read them, without I/O: `LIST` in the `ls -l` form most
//! clients parse, `NLST` names, and `MLSD`/`MLST` facts (RFC 3659 section 7). The server
//! gathers the entries; this module only formats them.

use crate::clock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    /// Unix seconds.
    pub modified: u64,
}

/// One `LIST` line, `ls -l` style, CRLF-terminated.
pub fn list_line(e: &Entry, now: u64) -> String {
    let mode = if e.is_dir { "drwxr-x---" } else { "-rw-r-----" };
    format!(
        "{mode} 1 lc lc {:>12} {} {}\r\n",
        e.size,
        clock::ls_date(e.modified, now),
        e.name
    )
}

pub fn nlst_line(e: &Entry) -> String {
    format!("{}\r\n", e.name)
}

/// RFC 3659 facts: `type=file;size=12;modify=20261127002500; name`.
pub fn facts(e: &Entry) -> String {
    let kind = if e.is_dir { "dir" } else { "file" };
    let modify = clock::compact(e.modified).replace(['T', 'Z'], "");
    format!("type={kind};size={};modify={modify}; {}", e.size, e.name)
}

pub fn mlsd_line(e: &Entry) -> String {
    format!("{}\r\n", facts(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let f = Entry {
            name: "fw 1.log".into(),
            is_dir: false,
            size: 1234,
            modified: 1_795_737_900,
        };
        let d = Entry {
            name: "asa".into(),
            is_dir: true,
            size: 0,
            modified: 951_782_400,
        };
        let now = 1_795_737_900;
        assert_eq!(
            list_line(&f, now),
            "-rw-r----- 1 lc lc         1234 Nov 27 00:05 fw 1.log\r\n"
        );
        assert_eq!(
            list_line(&d, now),
            "drwxr-x--- 1 lc lc            0 Feb 29  2000 asa\r\n"
        );
        assert_eq!(nlst_line(&f), "fw 1.log\r\n");
        assert_eq!(
            mlsd_line(&f),
            "type=file;size=1234;modify=20261127000500; fw 1.log\r\n"
        );
        assert_eq!(facts(&d), "type=dir;size=0;modify=20000229000000; asa");
    }
}
