//! Which processes are running lc instances, and signalling them.
//!
//! An instance writes its pid to `run_dir/INSTANCE.pid` and holds an exclusive `flock` on it
//! while it runs (`server/mod.rs`). run_dir is the service user's folder, so root's `lc certs
//! reload` and `lc connect`, which send SIGHUP to the instances, cannot take a pid file's word
//! for it: the `lc` account could lock a file of its own with the pid of any process in it. A
//! pid is signalled only when the process is an `lc run` of the pid file's owner (`judge`, a
//! pure rule over what /proc says), and through a pidfd opened before the check, so a pid that
//! is reused between the check and the signal gets nothing. Anything else is refused and named.
//! The pid file itself is opened with `careful` (no link, FIFO, hard link or stranger's file).

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use nix::libc;
use nix::sys::signal::Signal;

use crate::careful;

/// A pid file is a number and a newline.
const MAX_PID_FILE_BYTES: u64 = 64;

/// A pid file whose lock is held: the pid in it and the uid that owns the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub path: PathBuf,
    pub pid: i32,
    pub owner: u32,
}

/// The claim of the pid file at `path` if a process holds its lock (an instance does while it
/// runs); `Ok(None)` for a missing or stale file; `Err` for a file `careful` refuses.
pub fn claim(path: &Path) -> io::Result<Option<Claim>> {
    let owners = careful::Owners::of_parent(path)?;
    let file = match careful::open(path, owners, MAX_PID_FILE_BYTES) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let owner = file.metadata()?.uid();
    let mut file = match Flock::lock(file, FlockArg::LockSharedNonblock) {
        // We got the lock: nobody holds it, the file is stale.
        Ok(_) => return Ok(None),
        Err((f, nix::errno::Errno::EWOULDBLOCK)) => f,
        Err((_, e)) => {
            return Err(io::Error::new(
                io::Error::from(e).kind(),
                format!("{}: {e}", path.display()),
            ))
        }
    };
    let bytes = careful::read_limited(path, &mut file, MAX_PID_FILE_BYTES)?;
    let pid = String::from_utf8_lossy(&bytes)
        .trim()
        .parse::<i32>()
        .ok()
        .filter(|&p| p > 0)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: refused: not a pid", path.display()),
            )
        })?;
    Ok(Some(Claim {
        path: path.to_path_buf(),
        pid,
        owner,
    }))
}

/// What /proc says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Owner of `/proc/PID` (the process's effective uid).
    pub uid: u32,
    /// The target of `/proc/PID/exe`, `None` if it cannot be read.
    pub exe: Option<PathBuf>,
    /// `/proc/PID/cmdline`, split at NULs.
    pub args: Vec<String>,
}

impl Process {
    pub fn read(pid: i32) -> io::Result<Process> {
        let dir = PathBuf::from(format!("/proc/{pid}"));
        let uid = fs::metadata(&dir)?.uid();
        let exe = fs::read_link(dir.join("exe")).ok();
        let cmdline = fs::read(dir.join("cmdline"))?;
        let args = cmdline
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        Ok(Process { uid, exe, args })
    }
}

/// The pure rule: is `p` an `lc run` (a program named `lc`) of the pid file's owner? `Err`
/// says why not.
pub fn judge(file_owner: u32, p: &Process) -> Result<(), String> {
    if p.uid != file_owner {
        return Err(format!(
            "it runs as uid {}, the pid file belongs to uid {file_owner}",
            p.uid
        ));
    }
    let Some(exe) = &p.exe else {
        return Err("its program cannot be read".into());
    };
    // An upgrade replaces the binary under a running instance: the kernel shows the old one
    // as "PATH (deleted)".
    let exe_str = exe.to_string_lossy();
    let exe = Path::new(exe_str.strip_suffix(" (deleted)").unwrap_or(&exe_str));
    if exe.file_name().is_none_or(|n| n != "lc") {
        return Err(format!("it is {}, not lc", exe.display()));
    }
    if !p.args.iter().skip(1).any(|a| a == "run") {
        let mut shown = p.args.join(" ");
        shown.truncate(120);
        return Err(format!("it is not `lc run` ({shown})"));
    }
    Ok(())
}

/// Every live instance in `run_dir` (sorted by pid file), and a line for each pid file that
/// was refused: a file `careful` will not open, or a pid that is not an lc instance.
pub fn live_instances(run_dir: &Path) -> (Vec<Claim>, Vec<String>) {
    let mut paths: Vec<PathBuf> = fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "pid"))
        .collect();
    paths.sort();
    let mut live = Vec::new();
    let mut refused = Vec::new();
    for path in paths {
        match claim(&path) {
            Ok(Some(c)) => match check(&c) {
                Ok(()) => live.push(c),
                Err(why) => refused.push(why),
            },
            Ok(None) => {}
            Err(e) => refused.push(format!("{e}; not signalled")),
        }
    }
    (live, refused)
}

/// Whether the claim's process is an lc instance: `Err` names the file and says why not.
pub fn check(c: &Claim) -> Result<(), String> {
    Process::read(c.pid)
        .map_err(|e| format!("cannot read /proc/{}: {e}", c.pid))
        .and_then(|p| judge(c.owner, &p))
        .map_err(|why| {
            format!(
                "{}: pid {} is not an lc instance: {why}; not signalled",
                c.path.display(),
                c.pid
            )
        })
}

/// Sends `sig` to the claim's process if it is an lc instance: a pidfd is opened first, the
/// process checked, then signalled through the pidfd, so a pid reused in between is not hit.
pub fn signal(c: &Claim, sig: Signal) -> Result<(), String> {
    let err = |e: io::Error| format!("{}: pid {}: {e}", c.path.display(), c.pid);
    let pidfd = pidfd_open(c.pid).map_err(err)?;
    check(c)?;
    match &pidfd {
        Some(fd) => pidfd_send_signal(fd, sig).map_err(err),
        // A kernel before 5.3: the check and the signal are as close as they can be.
        None => nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.pid), sig)
            .map_err(|e| err(e.into())),
    }
}

/// `pidfd_open(2)`; `Ok(None)` where the kernel has none.
fn pidfd_open(pid: i32) -> io::Result<Option<OwnedFd>> {
    // SAFETY: a plain syscall with integer arguments; the result is a new fd we own, or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel just gave us this fd and nothing else holds it.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd as i32) }))
}

fn pidfd_send_signal(fd: &OwnedFd, sig: Signal) -> io::Result<()> {
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LC: u32 = 999;

    #[track_caller]
    fn check_judge(uid: u32, exe: Option<&str>, args: &str, expected: Result<(), &str>) {
        let p = Process {
            uid,
            exe: exe.map(PathBuf::from),
            args: args.split(' ').map(String::from).collect(),
        };
        let got = judge(LC, &p);
        assert_eq!(got, expected.map_err(String::from));
    }

    #[test]
    fn only_an_lc_run_of_the_pid_files_owner_is_an_instance() {
        check_judge(
            LC,
            Some("/usr/local/bin/lc"),
            "/usr/local/bin/lc run 514",
            Ok(()),
        );
        check_judge(LC, Some("/usr/local/bin/lc (deleted)"), "lc run", Ok(()));
        check_judge(LC, Some("/opt/build/lc"), "lc --config x run", Ok(()));
        check_judge(
            LC,
            Some("/opt/build/lc-test"),
            "lc-test run",
            Err("it is /opt/build/lc-test, not lc"),
        );
        check_judge(
            0,
            Some("/usr/local/bin/lc"),
            "lc run",
            Err("it runs as uid 0, the pid file belongs to uid 999"),
        );
        check_judge(LC, None, "lc run", Err("its program cannot be read"));
        check_judge(
            LC,
            Some("/usr/bin/sleep"),
            "sleep run",
            Err("it is /usr/bin/sleep, not lc"),
        );
        check_judge(LC, Some("/usr/local/bin/lc"), "lc tail run", Ok(()));
        check_judge(
            LC,
            Some("/usr/local/bin/lc"),
            "lc status",
            Err("it is not `lc run` (lc status)"),
        );
    }

    #[test]
    fn a_locked_pid_file_of_another_program_is_refused() {
        let dir = crate::testing::fresh_dir("pidfile");
        let path = dir.join("x.pid");
        // This test process holds the lock; the pid is its own, which is not `lc run`.
        fs::write(&path, format!("{}\n", std::process::id())).unwrap();
        let _lock = Flock::lock(fs::File::open(&path).unwrap(), FlockArg::LockExclusive).unwrap();
        let c = claim(&path).unwrap().unwrap();
        assert_eq!(c.pid, std::process::id() as i32);
        let (live, refused) = live_instances(&dir);
        assert!(live.is_empty());
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(
            refused[0].starts_with(&format!(
                "{}: pid {} is not an lc instance: ",
                path.display(),
                c.pid
            )),
            "{refused:?}"
        );
        assert!(signal(&c, Signal::SIGHUP).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
