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

/// The MLST/MLSD facts in effect for a session: all three until `OPTS MLST` picks some
/// (RFC 3659 section 7.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub kind: bool,
    pub size: bool,
    pub modify: bool,
}

impl Default for Facts {
    fn default() -> Facts {
        Facts {
            kind: true,
            size: true,
            modify: true,
        }
    }
}

impl Facts {
    /// `OPTS MLST type;size;`: the facts named; unknown names are ignored and no name at all
    /// selects none (RFC 3659 section 7.9).
    pub fn parse(list: &str) -> Facts {
        let mut f = Facts {
            kind: false,
            size: false,
            modify: false,
        };
        for name in list.split(';').map(str::trim) {
            match name.to_ascii_lowercase().as_str() {
                "type" => f.kind = true,
                "size" => f.size = true,
                "modify" => f.modify = true,
                _ => {}
            }
        }
        f
    }

    /// The facts in effect, as OPTS MLST answers them: `type;size;`.
    pub fn selected(&self) -> String {
        self.names()
            .iter()
            .filter(|(_, on)| *on)
            .map(|(n, _)| format!("{n};"))
            .collect()
    }

    /// FEAT's MLST line: every fact, `*` marking those in effect.
    pub fn feat(&self) -> String {
        let list: String = self
            .names()
            .iter()
            .map(|(n, on)| format!("{n}{};", if *on { "*" } else { "" }))
            .collect();
        format!("MLST {list}")
    }

    fn names(&self) -> [(&'static str, bool); 3] {
        [
            ("type", self.kind),
            ("size", self.size),
            ("modify", self.modify),
        ]
    }
}

/// RFC 3659 facts: `type=file;size=12;modify=20261127002500; name`.
pub fn facts(e: &Entry, f: Facts) -> String {
    let mut out = String::new();
    if f.kind {
        out.push_str(if e.is_dir { "type=dir;" } else { "type=file;" });
    }
    if f.size {
        out.push_str(&format!("size={};", e.size));
    }
    if f.modify {
        let modify = clock::compact(e.modified).replace(['T', 'Z'], "");
        out.push_str(&format!("modify={modify};"));
    }
    format!("{out} {}", e.name)
}

pub fn mlsd_line(e: &Entry, f: Facts) -> String {
    format!("{}\r\n", facts(e, f))
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
        let all = Facts::default();
        assert_eq!(
            mlsd_line(&f, all),
            "type=file;size=1234;modify=20261127000500; fw 1.log\r\n"
        );
        assert_eq!(facts(&d, all), "type=dir;size=0;modify=20000229000000; asa");
        let some = Facts::parse("type;Size;perm;");
        assert_eq!(facts(&f, some), "type=file;size=1234; fw 1.log");
        assert_eq!(some.selected(), "type;size;");
        assert_eq!(some.feat(), "MLST type*;size*;modify;");
        assert_eq!(Facts::parse("").selected(), "");
        assert_eq!(facts(&f, Facts::parse("")), " fw 1.log");
    }
}
