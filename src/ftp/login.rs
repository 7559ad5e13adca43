//! Password checks on their own thread (`lc-ftp-login`): argon2 takes tens of milliseconds
//! by design, so a flood of logins must not hold up anything else. Upload commits and file
//! operations have the `lc-ftp` thread (`jobs.rs`) to themselves; a commit never waits
//! behind a password check.
//!
//! The queue is bounded ([`LOGIN_QUEUE`] checks waiting): when it is full, the login is
//! refused at once (`Err` from [`Logins::check`]) instead of queued behind the others.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::Waker;

use super::jobs::ConnRef;
use super::passwd;
use crate::secret::Secret;

/// Password checks waiting at most; more are refused until the thread catches up.
pub const LOGIN_QUEUE: usize = 16;

pub struct Check {
    pub conn: ConnRef,
    pub passwd_file: PathBuf,
    pub user: String,
    pub password: Secret,
}

/// A finished check.
pub struct Checked {
    pub conn: ConnRef,
    pub ok: bool,
    /// Why the password file could not be used, for the log.
    pub error: Option<String>,
}

pub struct Logins {
    tx: Option<SyncSender<Check>>,
    pub rx: Receiver<Checked>,
    handle: Option<JoinHandle<()>>,
    /// Set at stop: checks still queued are dropped, not computed.
    stop: Arc<AtomicBool>,
}

impl Logins {
    pub fn spawn(waker: Arc<Waker>) -> io::Result<Logins> {
        let (tx, checks) = mpsc::sync_channel::<Check>(LOGIN_QUEUE);
        let (out, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("lc-ftp-login".into())
            .spawn(move || {
                for c in checks {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    if out.send(check(c)).is_err() {
                        break;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Logins {
            tx: Some(tx),
            rx,
            handle: Some(handle),
            stop,
        })
    }

    /// Queues a check; gives it back when [`LOGIN_QUEUE`] checks are waiting already.
    pub fn check(&self, c: Check) -> Result<(), Check> {
        match &self.tx {
            Some(tx) => tx.try_send(c).map_err(|e| match e {
                TrySendError::Full(c) | TrySendError::Disconnected(c) => c,
            }),
            None => Err(c),
        }
    }

    /// Stops the thread once the check under way is done; queued ones are dropped (their
    /// sessions are closed already).
    pub fn join(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn check(c: Check) -> Checked {
    // Read at every login: `lc passwd` changes apply at the next one, no reload.
    let (ok, error) = match passwd::load(&c.passwd_file) {
        Ok(p) => (passwd::verify(&p, &c.user, &c.password), None),
        Err(e) => {
            // Spend the same time as a real check, so failures all look alike.
            passwd::verify(&passwd::Passwd::default(), &c.user, &c.password);
            (false, Some(e.to_string()))
        }
    };
    Checked {
        conn: c.conn,
        ok,
        error,
    }
}
