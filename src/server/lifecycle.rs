//! An instance's life outside its loop: what it reads before it starts or reloads (the
//! delivery target and certificates, `prepare`), the signals it takes over, and its pid file.
//! The loop (`mod.rs`) starts with these and drops them at the stop; nothing here runs on the
//! loop while it serves.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{SigSet, Signal};

use crate::clock;
use crate::config::{Config, Receiver as Kind};
use crate::deliver;
use crate::status;
use crate::tls::cmd::FtpsNeed;

#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

impl From<io::Error> for RunError {
    fn from(e: io::Error) -> Self {
        RunError(e.to_string())
    }
}

/// What an instance needs from files beyond the config: the delivery target (token, ca_file)
/// and, when it serves syslog-tls, the certificates. Read at start and at each reload, so a
/// bad file refuses the reload and keeps what runs.
pub struct Prepared {
    pub target: deliver::Target,
    pub tls: Option<crate::tls::SyslogTls>,
    pub ftp_tls: Option<crate::tls::FtpTls>,
}

pub fn prepare(config: &Config, port: Option<u16>) -> Result<Prepared, String> {
    let target = deliver::Target::from_config(config)?;
    let needs_tls = config
        .sources_for(port)
        .iter()
        .any(|s| s.receiver == Kind::SyslogTls);
    let tls = if needs_tls {
        let now = clock::unix_secs(SystemTime::now()) as i64;
        Some(crate::tls::load_syslog(&config.collector.certs_dir, now).map_err(|p| p.join("\n"))?)
    } else {
        None
    };
    let pem = config.collector.certs_dir.join(crate::tls::FTP_PEM);
    let ftp_tls = match crate::tls::cmd::ftps_need(&config.sources_for(port), config.ftp.tls) {
        FtpsNeed::Unused => None,
        FtpsNeed::IfPresent if !pem.exists() => {
            log::warn!(
                "ftp: {} is missing: FTPS (AUTH TLS) is not offered; `lc certs init` makes one",
                pem.display()
            );
            None
        }
        FtpsNeed::IfPresent | FtpsNeed::Required => {
            let now = clock::unix_secs(SystemTime::now()) as i64;
            Some(crate::tls::load_ftp(&config.collector.certs_dir, now).map_err(|p| p.join("\n"))?)
        }
    };
    Ok(Prepared {
        target,
        tls,
        ftp_tls,
    })
}

/// Blocks the signals lc handles so they arrive on a signalfd. Must run before any thread is
/// spawned, so every thread inherits the mask.
pub fn block_signals() -> io::Result<SigSet> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGHUP);
    mask.thread_block()?;
    // A peer that closes while we write must not kill the process.
    unsafe {
        nix::sys::signal::signal(Signal::SIGPIPE, nix::sys::signal::SigHandler::SigIgn)?;
    }
    Ok(mask)
}

/// `run_dir/INSTANCE.pid`, locked for the life of the process: other commands signal only
/// pids whose file is locked, so a stale file (after a crash, with the pid reused) never makes
/// them signal a stranger.
pub struct PidFile {
    path: PathBuf,
    _lock: Flock<std::fs::File>,
}

impl PidFile {
    /// Writes the pid file and takes its lock, or says which instance holds it.
    pub fn lock(run_dir: &Path, instance: &str) -> Result<PidFile, RunError> {
        std::fs::create_dir_all(run_dir)
            .map_err(|e| RunError(format!("{}: {e}", run_dir.display())))?;
        let path = status::pid_path(run_dir, instance);
        let err = |e: String| RunError(format!("{}: {e}", path.display()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| err(e.to_string()))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let pid = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(err(format!(
                    "instance {instance} is already running (pid {})",
                    pid.trim()
                )));
            }
            Err((_, e)) => return Err(err(e.to_string())),
        };
        let file: &mut std::fs::File = &mut lock;
        file.set_len(0)
            .and_then(|()| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .map_err(|e| err(e.to_string()))?;
        Ok(PidFile { path, _lock: lock })
    }

    /// A clean stop: the file goes, then the lock.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
