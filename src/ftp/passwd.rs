//! The FTP password file: one `user:PHC` line per user, the PHC string an argon2id hash
//! (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`), with `#` comments and blank lines kept as
//! written.
//!
//! This module owns the format (`parse_str` from text, every bad line reported as
//! `PATH:LINE: message`), the rules for user names and passwords, hashing and verification
//! (argon2 from RustCrypto), and replacing the file: a temp file in the same folder, fsync,
//! rename, fsync of the folder, mode 0600 (0640 for the service's group, see `owner.rs`),
//! under an exclusive `flock` on the folder so two `lc passwd` runs cannot lose each other's
//! change. Prompting for a password is `prompt.rs`'s job; when to read the file and what to
//! answer a client is the FTP session's.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use nix::fcntl::{Flock, FlockArg};

use crate::secret::Secret;

pub const MAX_NAME_BYTES: usize = 64;
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// A larger file is refused rather than read: thousands of users fit in far less.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// The parameters `hash` uses: OWASP's minimum for argon2id (19 MiB, 2 passes, 1 lane), about
/// 20 ms of one core per hash or login in a release build.
const M_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Limits on the costs a line may ask for. The server pays them on every login attempt, so a
/// typo like `m=1945600` must not let each attempt take gigabytes or seconds.
const MAX_M_KIB: u32 = 256 * 1024;
const MAX_T_COST: u32 = 32;
const MAX_P_COST: u32 = 16;

/// What unknown users are checked against, made with `hash`'s parameters and a password nobody
/// knows, so a login for a user that does not exist costs as much as one for a user that does.
const DUMMY_PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$6G8vivKHKfHSdXQj3LGN9g$zWBtXwzSipefypC8tvkt4rrjr4mCYNWz+w01lOZiniw";

/// The file's lines in order; comments and blank lines are kept so a rewrite changes only
/// the line of the user concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Passwd {
    lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    User {
        name: String,
        phc: String,
    },
    /// A comment or a blank line, as written.
    Other(String),
}

/// What `set` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Replaced,
}

#[derive(Debug)]
pub enum Error {
    /// A user name or password that is not acceptable (a usage error).
    Invalid {
        path: PathBuf,
        message: String,
    },
    /// Lines of the file that do not parse, as (line, message).
    Parse {
        path: PathBuf,
        problems: Vec<(usize, String)>,
    },
    NoSuchUser {
        path: PathBuf,
        user: String,
    },
    Io {
        path: PathBuf,
        what: &'static str,
        error: io::Error,
    },
}

impl Error {
    /// The caller gave something wrong (a name, a password) or the file needs an operator's
    /// edit; as opposed to the system failing.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Invalid { .. } | Error::Parse { .. })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { path, message } => write!(f, "{}: {message}", path.display()),
            Error::Parse { path, problems } => {
                for (i, (line, message)) in problems.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{}:{line}: {message}", path.display())?;
                }
                Ok(())
            }
            Error::NoSuchUser { path, user } => write!(f, "{}: no user {user:?}", path.display()),
            Error::Io { path, what, error } => write!(f, "{}: {what}: {error}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// Non-empty, at most 64 bytes, and nothing that could split a line or a path: no `:`, `/`,
/// whitespace or control characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("user name is empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!(
            "user name {name:?} is longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|&c| c == ':' || c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(format!("user name {name:?} must not contain {c:?}"));
    }
    Ok(())
}

/// Non-empty and at most 1024 bytes; any characters.
pub fn check_password(password: &Secret) -> Result<(), String> {
    let len = password.expose().len();
    if len == 0 {
        Err("the password is empty".into())
    } else if len > MAX_PASSWORD_BYTES {
        Err(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes"
        ))
    } else {
        Ok(())
    }
}

/// The PHC string of `password` with a fresh random salt and the parameters above.
pub fn hash(password: &Secret) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.expose().as_bytes(), &salt)
        // Constant parameters, a 16-byte salt and a password under 4 GiB cannot fail.
        .expect("argon2id with fixed parameters")
        .to_string()
}

/// Whether `password` is `user`'s. Unknown users are checked against a dummy hash with the
/// same cost, and the comparison is argon2's constant-time one, so neither the answer's
/// timing nor its content tells which users exist.
// Until the FTP session calls it at PASS.
#[allow(dead_code)]
pub fn verify(passwd: &Passwd, user: &str, password: &Secret) -> bool {
    let phc = passwd.get(user);
    let matched = verify_phc(phc.unwrap_or(DUMMY_PHC), password);
    matched && phc.is_some()
}

fn verify_phc(phc: &str, password: &Secret) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => argon2()
            .verify_password(password.expose().as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(M_KIB, T_COST, P_COST, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Why `phc` is not an argon2id PHC string this module accepts.
fn check_phc(phc: &str) -> Result<(), String> {
    let h = PasswordHash::new(phc).map_err(|e| format!("{e}"))?;
    if h.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "algorithm {:?} is not argon2id",
            h.algorithm.as_str()
        ));
    }
    if h.version != Some(19) {
        return Err("the version must be v=19".into());
    }
    if h.salt.is_none() || h.hash.is_none() {
        return Err("the salt or the hash is missing".into());
    }
    let mut costs = [0u32; 3];
    for (cost, (key, max)) in
        costs
            .iter_mut()
            .zip([("m", MAX_M_KIB), ("t", MAX_T_COST), ("p", MAX_P_COST)])
    {
        *cost = h
            .params
            .get_decimal(key)
            .ok_or_else(|| format!("parameter {key} is missing"))?;
        if *cost > max {
            return Err(format!("{key}={cost} is above the limit of {max}"));
        }
    }
    let [m, _, p] = costs;
    // Argon2 needs 8 KiB of memory per lane (RFC 9106 section 3.1).
    if m < 8 * p {
        return Err(format!("m={m} is below 8 KiB per lane (8 * p = {})", 8 * p));
    }
    Params::try_from(&h).map_err(|e| format!("{e}"))?;
    Ok(())
}

impl Passwd {
    /// Parses the file's text; problems name `path` and the line.
    pub fn parse_str(text: &str, path: &Path) -> Result<Passwd, Error> {
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            // `lines` leaves a CR of a CRLF ending in place; a file edited elsewhere still reads.
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                lines.push(Line::Other(line.to_string()));
                continue;
            }
            let Some((name, phc)) = line.split_once(':') else {
                problems.push((n, "expected USER:HASH".to_string()));
                continue;
            };
            if let Err(m) = check_name(name) {
                problems.push((n, m));
                continue;
            }
            if let Err(m) = check_phc(phc) {
                problems.push((
                    n,
                    format!("user {name:?}: not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): {m}"),
                ));
                continue;
            }
            if let Some((_, first)) = seen.iter().find(|(s, _)| *s == name) {
                problems.push((
                    n,
                    format!("user {name:?} is already defined at line {first}"),
                ));
                continue;
            }
            seen.push((name, n));
            lines.push(Line::User {
                name: name.to_string(),
                phc: phc.to_string(),
            });
        }
        if problems.is_empty() {
            Ok(Passwd { lines })
        } else {
            Err(Error::Parse {
                path: path.to_path_buf(),
                problems,
            })
        }
    }

    /// The user names, in file order.
    pub fn users(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| match l {
                Line::User { name, .. } => Some(name.as_str()),
                Line::Other(_) => None,
            })
            .collect()
    }

    fn get(&self, user: &str) -> Option<&str> {
        self.lines.iter().find_map(|l| match l {
            Line::User { name, phc } if name == user => Some(phc.as_str()),
            _ => None,
        })
    }

    /// Replaces `user`'s hash where its line is, or appends a line for a new user. `phc` is
    /// trusted to come from `hash`.
    pub fn set(&mut self, user: &str, phc: String) -> Change {
        for l in &mut self.lines {
            if let Line::User { name, phc: old } = l {
                if name == user {
                    *old = phc;
                    return Change::Replaced;
                }
            }
        }
        self.lines.push(Line::User {
            name: user.to_string(),
            phc,
        });
        Change::Added
    }

    /// Removes `user`'s line; false if there was none.
    pub fn delete(&mut self, user: &str) -> bool {
        let before = self.lines.len();
        self.lines
            .retain(|l| !matches!(l, Line::User { name, .. } if name == user));
        self.lines.len() != before
    }

    /// The file's text: every line as kept, each ending in LF.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            match l {
                Line::User { name, phc } => {
                    out.push_str(name);
                    out.push(':');
                    out.push_str(phc);
                }
                Line::Other(text) => out.push_str(text),
            }
            out.push('\n');
        }
        out
    }
}

/// Reads and parses the file; a missing file is an error.
pub fn load(path: &Path) -> Result<Passwd, Error> {
    let io = |what, error| Error::Io {
        path: path.to_path_buf(),
        what,
        error,
    };
    // `lc passwd` runs as root and passwd_file is configurable, maybe into a folder the
    // service can write: a link, FIFO, hard link, stranger's or huge file is refused, named
    // (`careful`), not followed or waited on.
    let bytes = crate::careful::read_in_folder(path, MAX_FILE_BYTES).map_err(|e| {
        // careful's errors name the path, which this error does already; a missing file (or
        // folder) is just that.
        if e.kind() == io::ErrorKind::NotFound {
            return io(
                "cannot read",
                io::Error::from_raw_os_error(nix::libc::ENOENT),
            );
        }
        let msg = e.to_string();
        let prefix = format!("{}: ", path.display());
        let msg = msg.strip_prefix(&prefix).unwrap_or(&msg).to_string();
        io("cannot read", io::Error::new(e.kind(), msg))
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        io(
            "cannot read",
            io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"),
        )
    })?;
    Passwd::parse_str(&text, path)
}

/// Like `load`, but a missing file is one without users (the first `lc passwd` creates it).
pub fn load_or_empty(path: &Path) -> Result<Passwd, Error> {
    match load(path) {
        Err(Error::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {
            Ok(Passwd::default())
        }
        other => other,
    }
}

/// Sets `user`'s password in the file at `path`, creating the file if need be.
pub fn set(path: &Path, user: &str, password: &Secret) -> Result<Change, Error> {
    let invalid = |message| Error::Invalid {
        path: path.to_path_buf(),
        message,
    };
    check_name(user).map_err(invalid)?;
    check_password(password).map_err(invalid)?;
    // Hashing takes a while; the lock is taken after it.
    let phc = hash(password);
    update(path, true, |p| Ok(p.set(user, phc)))
}

/// Removes `user` from the file at `path`.
pub fn delete(path: &Path, user: &str) -> Result<(), Error> {
    update(path, false, |p| {
        if p.delete(user) {
            Ok(())
        } else {
            Err(Error::NoSuchUser {
                path: path.to_path_buf(),
                user: user.to_string(),
            })
        }
    })
}

/// The user names in the file at `path`.
pub fn list(path: &Path) -> Result<Vec<String>, Error> {
    Ok(load(path)?.users().into_iter().map(String::from).collect())
}

/// Read, change and replace the file under the folder's lock, so concurrent updates apply one
/// after the other instead of the last one undoing the others.
fn update<T>(
    path: &Path,
    create: bool,
    change: impl FnOnce(&mut Passwd) -> Result<T, Error>,
) -> Result<T, Error> {
    let dir = folder(path);
    let io = |what, error| Error::Io {
        path: path.to_path_buf(),
        what,
        error,
    };
    if create {
        fs::create_dir_all(dir).map_err(|e| io("cannot create its folder", e))?;
    }
    if !create {
        // A missing file is reported as such, not as a folder that cannot be locked.
        load(path)?;
    }
    let folder_file = File::open(dir).map_err(|e| io("cannot open its folder", e))?;
    let _lock = Flock::lock(folder_file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io("cannot lock its folder", e.into()))?;
    let mut passwd = if create {
        load_or_empty(path)?
    } else {
        load(path)?
    };
    let result = change(&mut passwd)?;
    save(path, &passwd)?;
    Ok(result)
}

/// The folder `path` is in (`.` for a bare file name).
fn folder(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Replaces the file at `path` with `passwd`, atomically and durably, mode 0600. The owner
/// and group of the file it replaces are kept, so a root `lc passwd` does not take the file
/// away from a service that runs as another user; a new file written by root takes its
/// folder's group and mode 0640 when that group is not root's (`owner.rs`).
pub fn save(path: &Path, passwd: &Passwd) -> Result<(), Error> {
    let io = |what, error| Error::Io {
        path: path.to_path_buf(),
        what,
        error,
    };
    let dir = folder(path);
    let name = path
        .file_name()
        .ok_or_else(|| io("cannot write", io::Error::other("not a file name")))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let owner = crate::owner::for_path(path);
    let write = || -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // The mode above is filtered by the umask and ignored for a stale temp file.
        f.set_permissions(fs::Permissions::from_mode(owner.secret_mode()))?;
        owner.apply(&f)?;
        f.write_all(passwd.render().as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("cannot write", e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cheap hash (64 KiB, one pass) so the tables run fast; `verify` takes the cost from it.
    fn cheap(password: &str) -> String {
        let params = Params::new(64, 1, 1, None).unwrap();
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    }

    /// Parses `input` and renders the outcome: the users on success, else every problem.
    #[track_caller]
    fn check_parse(input: &str, expected: &str) {
        let got = match Passwd::parse_str(input, Path::new("/etc/lc/ftp.passwd")) {
            Ok(p) => format!("users: {}", p.users().join(" ")),
            Err(e) => e.to_string(),
        };
        assert_eq!(got, expected);
    }

    const H: &str = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$x/Ztb2uR0GMGr5wMrPwy8pCnoOkzZ5nyiqNl2shzuVE";

    #[test]
    fn parse() {
        check_parse("", "users: ");
        check_parse(&format!("alice:{H}\n"), "users: alice");
        check_parse(
            &format!("# FTP users\n\nalice:{H}\r\n  # indented\nbob:{H}"),
            "users: alice bob",
        );
        check_parse("alice\n", "/etc/lc/ftp.passwd:1: expected USER:HASH");
        check_parse(
            &format!(":{H}\n"),
            "/etc/lc/ftp.passwd:1: user name is empty",
        );
        check_parse(
            &format!("a b:{H}\n"),
            "/etc/lc/ftp.passwd:1: user name \"a b\" must not contain ' '",
        );
        check_parse(
            &format!("alice:{H}\n\nalice:{H}\n"),
            "/etc/lc/ftp.passwd:3: user \"alice\" is already defined at line 1",
        );
        check_parse(
            "alice:secret\nbob:$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n",
            "/etc/lc/ftp.passwd:1: user \"alice\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): password hash string missing field\n\
             /etc/lc/ftp.passwd:2: user \"bob\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): algorithm \"argon2i\" is not argon2id",
        );
        check_parse(
            "a:$argon2id$v=16$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n",
            "/etc/lc/ftp.passwd:1: user \"a\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): the version must be v=19",
        );
        check_parse(
            "a:$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ\n",
            "/etc/lc/ftp.passwd:1: user \"a\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): the salt or the hash is missing",
        );
        check_parse(
            "a:$argon2id$v=19$t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n",
            "/etc/lc/ftp.passwd:1: user \"a\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): parameter m is missing",
        );
        check_parse(
            "a:$argon2id$v=19$m=1945600,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n",
            "/etc/lc/ftp.passwd:1: user \"a\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): m=1945600 is above the limit of 262144",
        );
        check_parse(
            "a:$argon2id$v=19$m=8,t=1,p=4$c29tZXNhbHQ$aGFzaGhhc2hoYXNo\n",
            "/etc/lc/ftp.passwd:1: user \"a\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): m=8 is below 8 KiB per lane (8 * p = 32)",
        );
        check_parse(
            &format!("a:{H} \n"),
            "/etc/lc/ftp.passwd:1: user \"a\": not an argon2id hash ($argon2id$v=19$m=M,t=T,p=P$SALT$HASH): invalid Base64 encoding",
        );
    }

    #[track_caller]
    fn check_name_(name: &str, expected: &str) {
        let got = match check_name(name) {
            Ok(()) => "ok".to_string(),
            Err(e) => e,
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn names() {
        check_name_("discovery", "ok");
        check_name_("fw-01.example_com", "ok");
        check_name_("pare-feu-é", "ok");
        check_name_(&"a".repeat(64), "ok");
        check_name_("", "user name is empty");
        check_name_(
            &"a".repeat(65),
            &format!("user name {:?} is longer than 64 bytes", "a".repeat(65)),
        );
        check_name_("a:b", "user name \"a:b\" must not contain ':'");
        check_name_("a/b", "user name \"a/b\" must not contain '/'");
        check_name_("a\tb", "user name \"a\\tb\" must not contain '\\t'");
        check_name_(
            "a\u{a0}b",
            "user name \"a\\u{a0}b\" must not contain '\\u{a0}'",
        );
        check_name_(
            "a\u{7f}",
            "user name \"a\\u{7f}\" must not contain '\\u{7f}'",
        );
    }

    #[track_caller]
    fn check_password_(password: &str, expected: &str) {
        let got = match check_password(&Secret::new(password)) {
            Ok(()) => "ok".to_string(),
            Err(e) => e,
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn passwords() {
        check_password_("x", "ok");
        check_password_("correct horse: battery/staple\t", "ok");
        check_password_(&"é".repeat(512), "ok");
        check_password_("", "the password is empty");
        check_password_(&"a".repeat(1025), "the password is longer than 1024 bytes");
    }

    /// Verifies `password` for `user` against a file of `alice:pw-a` and `bob:pw-b`.
    #[track_caller]
    fn check_verify(user: &str, password: &str, expected: bool) {
        let text = format!("alice:{}\n# bob\nbob:{}\n", cheap("pw-a"), cheap("pw-b"));
        let p = Passwd::parse_str(&text, Path::new("p")).unwrap();
        assert_eq!(verify(&p, user, &Secret::new(password)), expected);
    }

    #[test]
    fn verification() {
        check_verify("alice", "pw-a", true);
        check_verify("bob", "pw-b", true);
        check_verify("alice", "pw-b", false);
        check_verify("alice", "", false);
        check_verify("alice", "pw-a ", false);
        check_verify("Alice", "pw-a", false);
        check_verify("carol", "pw-a", false);
        check_verify("", "", false);
    }

    #[test]
    fn hash_is_argon2id_with_the_appliance_parameters_and_verifies() {
        let phc = hash(&Secret::new("s3cret"));
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(check_phc(&phc), Ok(()));
        assert_ne!(phc, hash(&Secret::new("s3cret")), "salts must differ");
        let p = Passwd::parse_str(&format!("u:{phc}\n"), Path::new("p")).unwrap();
        assert!(verify(&p, "u", &Secret::new("s3cret")));
        // The dummy costs what a real hash costs.
        assert_eq!(check_phc(DUMMY_PHC), Ok(()));
        assert_eq!(DUMMY_PHC.split('$').nth(3), phc.split('$').nth(3));
    }

    /// Applies `edit` to a file and compares the text it would write.
    #[track_caller]
    fn check_edit(input: &str, edit: impl FnOnce(&mut Passwd) -> String, expected: &str) {
        let mut p = Passwd::parse_str(input, Path::new("p")).unwrap();
        let said = edit(&mut p);
        assert_eq!(format!("{said} | {}", p.render()), expected);
    }

    #[test]
    fn edits_keep_other_lines_in_order() {
        let a = |h: &str| format!("# ops\nalice:{h}\n\n# firewalls\nbob:{h}\n");
        check_edit(
            &a(H),
            |p| format!("{:?}", p.set("alice", "NEW".into())),
            &format!("Replaced | # ops\nalice:NEW\n\n# firewalls\nbob:{H}\n"),
        );
        check_edit(
            &a(H),
            |p| format!("{:?}", p.set("carol", "NEW".into())),
            &format!("Added | {}carol:NEW\n", a(H)),
        );
        check_edit(
            &a(H),
            |p| format!("{}", p.delete("alice")),
            &format!("true | # ops\n\n# firewalls\nbob:{H}\n"),
        );
        check_edit(
            &a(H),
            |p| format!("{}", p.delete("carol")),
            &format!("false | {}", a(H)),
        );
        check_edit(
            &format!("alice:{H}"),
            |p| p.users().join(","),
            &format!("alice | alice:{H}\n"),
        );
        check_edit(
            "",
            |p| format!("{:?}", p.set("a", "X".into())),
            "Added | a:X\n",
        );
    }

    #[test]
    fn file_round_trip() {
        let dir = std::env::temp_dir().join(format!("lc-passwd-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("sub/ftp.passwd");
        assert!(matches!(load(&path), Err(Error::Io { .. })));
        assert_eq!(load_or_empty(&path).unwrap(), Passwd::default());
        assert_eq!(
            delete(&path, "x").unwrap_err().to_string(),
            format!(
                "{}: cannot read: No such file or directory (os error 2)",
                path.display()
            )
        );
        let mut p = Passwd::default();
        p.set("alice", H.into());
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        save(&path, &p).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(list(&path).unwrap(), ["alice"]);
        assert_eq!(
            delete(&path, "bob").unwrap_err().to_string(),
            format!("{}: no user \"bob\"", path.display())
        );
        delete(&path, "alice").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "");
        // No temp files are left behind.
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        let _ = fs::remove_dir_all(&dir);
    }
}
