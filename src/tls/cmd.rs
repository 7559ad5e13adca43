//! `lc certs check [DIR]` and `lc certs reload`.
//!
//! check: what each file in the certificate folder is, its names, issuer and validity, whether
//! keys match, and what is wrong. reload: takes a new set dropped into `ssl_update/` (by FTP or
//! cp), validates it as a whole for the receivers in use, keeps the previous set as
//! `certs.prev/`, moves the new one in, clears `ssl_update/`, and has every running instance
//! reload (SIGHUP), then waits for each to say how it went in its status snapshot.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::careful;
use crate::clock;
use crate::config::{Config, Receiver, Source, TlsMode};

use super::{
    load_identity, load_syslog, read_certs, CertInfo, CLIENT_CA, EXPIRY_WARNING_SECS, FTP_PEM,
    SERVER_CERT, SERVER_KEY,
};

/// A certificate, key or chain file is a few KiB; anything over this is not one.
const MAX_CERT_FILE_BYTES: u64 = 1 << 20;

/// How long `lc certs reload` waits for running instances to report.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

/// The outcome of a check: lines to print, and problems that would break a receiver in use.
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

fn now() -> i64 {
    clock::unix_secs(SystemTime::now()) as i64
}

/// How much the FTP server depends on `pure-ftpd.pem`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FtpsNeed {
    /// No FTP source, or `[ftp] tls = off`: the file is not read.
    Unused,
    /// `tls = optional`: FTPS is offered when the file exists, so if it exists it must work.
    IfPresent,
    /// `tls = required` or an `ftps` source: the file must exist and work.
    Required,
}

/// What the configured receivers need: syslog-tls certificates, and pure-ftpd.pem.
pub fn needs(config: &Config) -> (bool, FtpsNeed) {
    let tls = config
        .sources
        .iter()
        .any(|s| s.receiver == Receiver::SyslogTls);
    (tls, ftps_need(&config.sources, config.ftp.tls))
}

/// How much an FTP server serving `sources` with `[ftp] tls = mode` depends on pure-ftpd.pem.
pub fn ftps_need(sources: &[Source], mode: TlsMode) -> FtpsNeed {
    let ftp = sources
        .iter()
        .any(|s| matches!(s.receiver, Receiver::Ftp | Receiver::Ftps));
    if !ftp || mode == TlsMode::Off {
        FtpsNeed::Unused
    } else if mode == TlsMode::Required || sources.iter().any(|s| s.receiver == Receiver::Ftps) {
        FtpsNeed::Required
    } else {
        FtpsNeed::IfPresent
    }
}

fn describe(info: &CertInfo, now: i64) -> Vec<String> {
    let left = (info.not_after - now) / 86400;
    vec![
        format!("  subject: {}", info.subject),
        format!(
            "  names:   {}",
            if info.sans.is_empty() {
                "(no subject alternative names)".to_string()
            } else {
                info.sans.join(", ")
            }
        ),
        format!("  issuer:  {}", info.issuer),
        format!(
            "  valid:   {} .. {} ({left} days left)",
            clock::rfc3339(info.not_before.max(0) as u64),
            clock::rfc3339(info.not_after.max(0) as u64)
        ),
    ]
}

/// Checks the set in `dir`. `need_tls` makes the syslog-tls files mandatory; `ftps` says
/// whether a problem with pure-ftpd.pem is one (or only a warning, when nothing reads it).
pub fn check(dir: &Path, need_tls: bool, ftps: FtpsNeed) -> Report {
    let now = now();
    let mut r = Report {
        lines: Vec::new(),
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let expiry = |info: &CertInfo, path: &Path, r: &mut Report| {
        if info.not_after - now <= EXPIRY_WARNING_SECS && info.not_after >= now {
            r.warnings.push(format!(
                "{}: expires in {} days",
                path.display(),
                (info.not_after - now) / 86400
            ));
        }
    };
    let cert_path = dir.join(SERVER_CERT);
    let key_path = dir.join(SERVER_KEY);
    if cert_path.exists() || key_path.exists() || need_tls {
        r.lines.push(format!(
            "{}: syslog-tls server certificate, key in {SERVER_KEY}",
            cert_path.display()
        ));
        match load_identity(&cert_path, &key_path, now) {
            Ok(id) => {
                r.lines.extend(describe(&id.info, now));
                r.lines.push(format!(
                    "  key:     matches ({} certificates in the chain)",
                    id.chain.len()
                ));
                expiry(&id.info, &cert_path, &mut r);
            }
            Err(p) => {
                // Still show what can be read.
                if let Some(info) = read_certs(&cert_path)
                    .ok()
                    .and_then(|c| CertInfo::parse(&c[0]).ok())
                {
                    r.lines.extend(describe(&info, now));
                }
                let target = if need_tls {
                    &mut r.problems
                } else {
                    &mut r.warnings
                };
                target.extend(p);
            }
        }
    }
    let ca_path = dir.join(CLIENT_CA);
    if ca_path.exists() {
        r.lines.push(format!(
            "{}: client CA; syslog-tls clients must present a certificate it signed",
            ca_path.display()
        ));
        match read_certs(&ca_path) {
            Ok(certs) => {
                for c in certs {
                    match CertInfo::parse(&c) {
                        Ok(info) => {
                            r.lines.extend(describe(&info, now));
                            if !info.is_ca {
                                r.warnings.push(format!(
                                    "{}: {} is not marked as a CA",
                                    ca_path.display(),
                                    info.subject
                                ));
                            }
                            if let Some(p) = info.validity_problem(now) {
                                r.problems.push(format!("{}: {p}", ca_path.display()));
                            }
                            expiry(&info, &ca_path, &mut r);
                        }
                        Err(e) => r.problems.push(format!("{}: {e}", ca_path.display())),
                    }
                }
            }
            Err(e) => r.problems.push(e),
        }
    } else if need_tls {
        r.lines.push(format!(
            "{}: absent; syslog-tls accepts clients without a certificate",
            ca_path.display()
        ));
    }
    // `lc certs init`'s CA key, for signing client certificates, must still be ca.pem's: an
    // operator who installs a CA of their own leaves it behind.
    let ca_key = dir.join(super::init::CA_KEY);
    if ca_path.exists() && ca_key.exists() {
        if let (Ok(chain), Ok(key)) = (read_certs(&ca_path), super::read_key(&ca_key)) {
            if super::key_matches(&chain, &key, &ca_path, &ca_key).is_err() {
                r.warnings.push(format!(
                    "{}: not the key of {}; client certificates signed with it will be refused (sign with your CA's key, and remove this one)",
                    ca_key.display(),
                    ca_path.display()
                ));
            }
        }
    }
    let ftp_path = dir.join(FTP_PEM);
    if ftp_path.exists() || ftps == FtpsNeed::Required {
        r.lines
            .push(format!("{}: FTPS key and certificate", ftp_path.display()));
        match load_identity(&ftp_path, &ftp_path, now) {
            Ok(id) => {
                r.lines.extend(describe(&id.info, now));
                r.lines.push("  key:     matches".to_string());
                expiry(&id.info, &ftp_path, &mut r);
            }
            Err(p) => {
                let target = if ftps == FtpsNeed::Unused {
                    &mut r.warnings
                } else {
                    &mut r.problems
                };
                target.extend(p);
            }
        }
    }
    if need_tls && r.problems.is_empty() {
        // The set as a whole must make a working TLS configuration.
        if let Err(p) = load_syslog(dir, now) {
            r.problems.extend(p);
        }
    }
    r
}

/// The folder operators drop new certificates into (by FTP or cp).
pub fn update_dir(config: &Config) -> PathBuf {
    config.collector.state_dir.join("ftp").join("ssl_update")
}

/// `lc certs reload`: Ok(lines to print) when every instance reloaded, Err(lines) otherwise.
pub fn reload(config: &Config) -> Result<Vec<String>, Vec<String>> {
    let mut out = Vec::new();
    let certs = &config.collector.certs_dir;
    let update = update_dir(config);
    let new_files = take_update(&update)?;
    if !new_files.is_empty() {
        install(certs, &update, &new_files, config)?;
        out.push(format!(
            "{}: installed {} from {}; the previous set is in {}",
            certs.display(),
            new_files
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            update.display(),
            prev_dir(certs).display()
        ));
    } else {
        out.push(format!(
            "{}: empty; running instances reload {} as it is",
            update.display(),
            certs.display()
        ));
    }
    let (reloaded, failures) = signal_and_wait(&config.collector.run_dir);
    out.push(format!("{reloaded} running instances reloaded"));
    if failures.is_empty() {
        Ok(out)
    } else {
        out.extend(failures);
        Err(out)
    }
}

/// One file taken from `ssl_update/`: its name, path, and the bytes read from the handle
/// that was checked.
struct NewFile {
    name: String,
    path: PathBuf,
    bytes: Vec<u8>,
}

/// Reads every file of `ssl_update/`. The folder is the service's (and FTP users'), so root
/// takes only regular files with one link, owned by root or the folder's owner, of at most
/// `MAX_CERT_FILE_BYTES`, read from the handle it checked (`careful`): a link to a root-only
/// key, a FIFO or a hard link refuses the whole set, naming the file.
fn take_update(update: &Path) -> Result<Vec<NewFile>, Vec<String>> {
    let entries = match fs::read_dir(update) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(vec![format!("{}: {e}", update.display())]),
    };
    let owners = careful::Owners::of_folder(update)
        .map_err(|e| vec![e.to_string(), "nothing changed".into()])?;
    let mut files = Vec::new();
    let mut refused = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        // A real folder is not part of a set (FTP users cannot make one); a link to one is
        // refused below like any other link.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        match careful::read(&path, owners, MAX_CERT_FILE_BYTES) {
            Ok(bytes) => files.push(NewFile {
                name: e.file_name().to_string_lossy().into_owned(),
                path,
                bytes,
            }),
            Err(e) => refused.push(e.to_string()),
        }
    }
    if !refused.is_empty() {
        refused.sort();
        refused.push("nothing changed".into());
        return Err(refused);
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

fn prev_dir(certs: &Path) -> PathBuf {
    let mut s = certs.as_os_str().to_owned();
    s.push(".prev");
    PathBuf::from(s)
}

/// Builds the candidate set (current files overlaid with the update) in `certs.new`,
/// validates it, then swaps it in: certs -> certs.prev, certs.new -> certs.
fn install(
    certs: &Path,
    update: &Path,
    new_files: &[NewFile],
    config: &Config,
) -> Result<(), Vec<String>> {
    let err = |p: &Path, e: std::io::Error| vec![format!("{}: {e}", p.display())];
    let mut staging = certs.as_os_str().to_owned();
    staging.push(".new");
    let staging = PathBuf::from(staging);
    let _ = fs::remove_dir_all(&staging);
    copy_tree(certs, &staging).map_err(|e| err(certs, e))?;
    let known = [SERVER_CERT, SERVER_KEY, CLIENT_CA, FTP_PEM];
    for f in new_files {
        let name = &f.name;
        if !known.contains(&name.as_str()) {
            let _ = fs::remove_dir_all(&staging);
            return Err(vec![format!(
                "{}: unknown file; expected {} (nothing changed)",
                f.path.display(),
                known.join(", ")
            )]);
        }
        // A file that replaces one keeps its owner and group; a new one takes the folder's
        // (`owner.rs`), so the service's group can still read the keys. The bytes are the ones
        // read from the checked handle, written into root's own staging folder.
        let dest = staging.join(name);
        let owner = crate::owner::for_path(&dest);
        let mode = if name.contains("key") || name == FTP_PEM {
            owner.secret_mode()
        } else {
            0o644
        };
        let _ = fs::remove_file(&dest);
        let written = careful::create_new(&dest, mode).and_then(|mut out| {
            use std::io::Write;
            out.write_all(&f.bytes)?;
            owner.apply(&out)?;
            out.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))
        });
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&staging);
            return Err(err(&dest, e));
        }
    }
    let (need_tls, ftps) = needs(config);
    let report = check(&staging, need_tls, ftps);
    if !report.problems.is_empty() {
        let _ = fs::remove_dir_all(&staging);
        // Each file is named where it came from: ssl_update/ if it was dropped there, else
        // the installed one (a new certificate that does not match the installed key blames
        // that key, not an ssl_update/server-key.pem that does not exist).
        let blame = |p: &String| {
            let mut p = p.clone();
            for name in known {
                let from = if new_files.iter().any(|f| f.name == name) {
                    update.join(name)
                } else {
                    certs.join(name)
                };
                p = p.replace(
                    &staging.join(name).display().to_string(),
                    &from.display().to_string(),
                );
            }
            p.replace(&staging.display().to_string(), &certs.display().to_string())
        };
        let mut p: Vec<String> = report.problems.iter().map(blame).collect();
        p.push("nothing changed".into());
        return Err(p);
    }
    let prev = prev_dir(certs);
    let _ = fs::remove_dir_all(&prev);
    if certs.exists() {
        fs::rename(certs, &prev).map_err(|e| err(certs, e))?;
    }
    fs::rename(&staging, certs).map_err(|e| err(certs, e))?;
    for f in new_files {
        let _ = fs::remove_file(&f.path);
    }
    Ok(())
}

/// Copies a folder, keeping each folder's mode (`private/` stays 0700) and, as root, the owner
/// and group of every folder and file (the service reads the certificates through the group).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(to)?;
    let meta = fs::metadata(from).ok();
    let mode = meta
        .as_ref()
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o750);
    set_mode(to, mode);
    if let Some(m) = &meta {
        crate::owner::copy(m, to)?;
    }
    for e in fs::read_dir(from).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(e.file_name()))?;
        } else {
            let dest = to.join(e.file_name());
            fs::copy(&path, &dest)?;
            crate::owner::copy(&fs::metadata(&path)?, &dest)?;
        }
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
}

/// SIGHUP to every live instance; waits for each snapshot's `reloaded_at` to pass the signal.
/// Returns (instances reloaded, failure lines).
fn signal_and_wait(run_dir: &Path) -> (usize, Vec<String>) {
    let started = clock::unix_millis();
    let mut pending = Vec::new();
    // A pid file or process that is not an lc instance is refused, named, and not signalled.
    let (live, mut failures) = crate::pidfile::live_instances(run_dir);
    for c in live {
        match crate::pidfile::signal(&c, nix::sys::signal::Signal::SIGHUP) {
            Ok(()) => pending.push((c.path.with_extension("json"), c.pid)),
            Err(e) => failures.push(e),
        }
    }
    let signalled = pending.len();
    let refused = failures.len();
    let deadline = Instant::now() + RELOAD_WAIT;
    while !pending.is_empty() {
        pending.retain(|(snapshot, pid)| {
            let v = crate::status::read_snapshot(snapshot).ok();
            let Some(v) = v.filter(|v| v["reloaded_at"].as_u64().unwrap_or(0) >= started) else {
                return true;
            };
            if let Some(e) = v["reload_error"].as_str() {
                failures.push(format!(
                    "instance {} (pid {pid}) kept its previous configuration: {e}",
                    v["instance"]
                ));
            }
            false
        });
        if Instant::now() > deadline {
            for (snapshot, pid) in &pending {
                failures.push(format!(
                    "pid {pid} did not report a reload within {}s ({})",
                    RELOAD_WAIT.as_secs(),
                    snapshot.display()
                ));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Each instance signalled either reloaded or has a line in `failures`.
    (signalled - (failures.len() - refused), failures)
}
