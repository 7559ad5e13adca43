//! A user's FTP namespace, without I/O: `/` holds one folder per FTP source plus
//! `ssl_update`, each folder holds files, and nothing else is reachable.
//!
//! Paths are resolved against the working folder with `.` and `..` handled here, so a client
//! can never name anything outside the namespace: `..` at `/` stays at `/`, there are no deeper
//! levels, and names that could mean something else to the filesystem (empty, `.`-prefixed,
//! with control characters, NUL, `/` or `\`) are refused. Symlinks are the file layer's job
//! (it opens with O_NOFOLLOW).

use std::fmt;

/// The folder certificates are uploaded to for `lc certs reload`.
pub const SSL_UPDATE: &str = "ssl_update";
/// The longest file name accepted.
const MAX_NAME: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VPath {
    Root,
    Folder(String),
    File { folder: String, name: String },
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VPath::Root => f.write_str("/"),
            VPath::Folder(d) => write!(f, "/{d}"),
            VPath::File { folder, name } => write!(f, "/{folder}/{name}"),
        }
    }
}

/// Resolves `arg` against `cwd`. `folders` are the folders that exist at `/`.
pub fn resolve(cwd: &VPath, arg: &str, folders: &[String]) -> Result<VPath, String> {
    let mut parts: Vec<String> = if arg.starts_with('/') {
        Vec::new()
    } else {
        match cwd {
            VPath::Root => Vec::new(),
            VPath::Folder(d) => vec![d.clone()],
            VPath::File { folder, name } => vec![folder.clone(), name.clone()],
        }
    };
    for part in arg.split('/') {
        match part {
            "" | "." => {}
            // `..` at the top stays at the top: the namespace has no outside.
            ".." => {
                parts.pop();
            }
            name => {
                check_name(name)?;
                parts.push(name.to_string());
            }
        }
    }
    match parts.as_slice() {
        [] => Ok(VPath::Root),
        [d] if folders.iter().any(|f| f == d) => Ok(VPath::Folder(d.clone())),
        [d, n] if folders.iter().any(|f| f == d) => Ok(VPath::File {
            folder: d.clone(),
            name: n.clone(),
        }),
        [d, ..] if !folders.iter().any(|f| f == d) => Err(format!("/{d}: no such folder")),
        _ => Err(format!("{arg}: folders have no subfolders")),
    }
}

fn check_name(name: &str) -> Result<(), String> {
    if name.len() > MAX_NAME {
        return Err(format!("name longer than {MAX_NAME} bytes"));
    }
    if name.starts_with('.') {
        return Err(format!("{name}: names starting with '.' are not allowed"));
    }
    // C0 controls and DEL only: U+0080 to U+009F are the bytes 0x80 to 0x9F of a Latin-1 line
    // (`command::latin1`), printable letters in the code pages appliances use (CP1252, CP850).
    if name.chars().any(|c| c < ' ' || c == '\x7f' || c == '\\') {
        return Err("names with control characters or '\\' are not allowed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(cwd: &str, arg: &str, expected: &str) {
        let folders = vec![
            "asa".to_string(),
            "squid".to_string(),
            SSL_UPDATE.to_string(),
        ];
        let cwd = resolve(&VPath::Root, cwd, &folders).unwrap();
        let got = match resolve(&cwd, arg, &folders) {
            Ok(p) => p.to_string(),
            Err(e) => format!("! {e}"),
        };
        assert_eq!(got, expected, "cwd {cwd} arg {arg:?}");
    }

    #[test]
    fn table() {
        check("/", "asa", "/asa");
        check("/", "/asa/", "/asa");
        check("/", "asa/fw.log", "/asa/fw.log");
        check("/asa", "fw.log", "/asa/fw.log");
        check("/asa", "/squid/a.log", "/squid/a.log");
        check("/asa", "..", "/");
        check("/", "..", "/");
        check("/", "../../../etc/passwd", "! /etc: no such folder");
        check("/asa", "../../etc", "! /etc: no such folder");
        check("/asa", "../squid/./x", "/squid/x");
        check("/asa", "a/b", "! a/b: folders have no subfolders");
        check("/", "nope", "! /nope: no such folder");
        check(
            "/asa",
            ".hidden",
            "! .hidden: names starting with '.' are not allowed",
        );
        check(
            "/asa",
            "a\u{1}b",
            "! names with control characters or '\\' are not allowed",
        );
        check(
            "/asa",
            "..\\..\\etc",
            "! ..\\..\\etc: names starting with '.' are not allowed",
        );
        check("/asa", "%2e%2e", "/asa/%2e%2e");
        check("/asa", "caf\u{e9}\u{82}.log", "/asa/caf\u{e9}\u{82}.log");
        check(
            "/asa",
            "a\u{7f}b",
            "! names with control characters or '\\' are not allowed",
        );
        check(
            "/",
            "ssl_update/server-cert.pem",
            "/ssl_update/server-cert.pem",
        );
        check("/asa", "", "/asa");
        check("/asa", "//", "/");
    }
}
