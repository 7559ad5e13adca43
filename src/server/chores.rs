//! The `lc-chores` thread: the blocking work of a reload and of eviction, off the loop.
//!
//! A reload reads the config, the token and certificates (`prepare`), plans (`ReloadPlan`) and
//! recovers the spools of sources new to the instance (which may cut torn tails and fsync);
//! eviction unlinks segments and prunes backup/. The loop sends a [`Chore`], keeps serving, and
//! takes the [`ChoreDone`] when the waker fires; the thread decides nothing the loop has not
//! already decided (which files go, what the plan binds is applied by the loop). One thread,
//! jobs in order: a reload's recovery and an unlink never race.

use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use mio::Waker;

use super::lifecycle::{prepare, Prepared};
use super::reload::{Current, ReloadPlan};
use super::source::{self, SourceState};
use crate::config::{self, Config, Source};

pub enum Chore {
    /// Prepare a reload of `old.path` for the instance on `port`; `current` is what it
    /// serves (config, retired, unbound).
    Reload {
        old: Box<Config>,
        port: Option<u16>,
        current: Vec<(Source, bool, bool)>,
    },
    /// Remove these files (evicted segments).
    Unlink(Vec<(PathBuf, u64)>),
    /// Remove every file in these backup folders.
    PruneBackups(Vec<PathBuf>),
}

/// A reload ready to apply: nothing of it is in effect yet.
pub struct Prepped {
    pub config: Config,
    pub prepared: Prepared,
    pub plan: ReloadPlan,
    /// The sources of `plan.add`, their spools recovered, in that order.
    pub added: Vec<SourceState>,
}

pub enum ChoreDone {
    Reload(Result<Box<Prepped>, String>),
    /// Bytes asked to free, and the files that could not be removed.
    Unlinked {
        asked: u64,
        failed: Vec<(PathBuf, io::Error)>,
    },
    /// Whether anything was removed.
    Pruned(bool),
}

pub struct Chores {
    tx: Sender<Chore>,
    pub rx: Receiver<ChoreDone>,
}

impl Chores {
    pub fn spawn(waker: Arc<Waker>) -> io::Result<Chores> {
        let (tx, jobs) = mpsc::channel::<Chore>();
        let (done, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("lc-chores".into())
            .spawn(move || {
                for job in jobs {
                    if done.send(run(job)).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })?;
        Ok(Chores { tx, rx })
    }

    pub fn send(&self, chore: Chore) {
        let _ = self.tx.send(chore);
    }
}

/// Does one chore; also what a stop does inline, once the loop has ended.
pub fn run(job: Chore) -> ChoreDone {
    match job {
        Chore::Reload { old, port, current } => ChoreDone::Reload(reload(&old, port, current)),
        Chore::Unlink(files) => {
            let asked = files.iter().map(|f| f.1).sum();
            let failed = files
                .into_iter()
                .filter_map(|(path, _)| std::fs::remove_file(&path).err().map(|e| (path, e)))
                .collect();
            ChoreDone::Unlinked { asked, failed }
        }
        Chore::PruneBackups(dirs) => ChoreDone::Pruned(prune(&dirs)),
    }
}

fn reload(
    old: &Config,
    port: Option<u16>,
    current: Vec<(Source, bool, bool)>,
) -> Result<Box<Prepped>, String> {
    let path = &old.path;
    // Problems of other instances' sources do not refuse this one's reload (`lc config check
    // --port`, which ExecReload runs, passes them too); they are logged.
    let (config, others) = config::load_for(path, port).map_err(|e| format!("\n{e}"))?;
    for p in &others {
        log::warn!(
            "{}:{}: {} (another instance's source, not served here)",
            path.display(),
            p.line,
            p.message
        );
    }
    // The token, ca_file and certificates are read now, so a bad one refuses the whole reload.
    let prepared = prepare(&config, port)?;
    let view: Vec<Current> = current
        .iter()
        .map(|(cfg, retired, unbound)| Current {
            cfg,
            retired: *retired,
            unbound: *unbound,
        })
        .collect();
    let plan = ReloadPlan::new(old, &view, &config, port)?;
    let added = plan
        .add
        .iter()
        .map(|s| {
            source::recover(
                &config.collector.state_dir,
                config.spool.rotate_bytes,
                s.clone(),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(Box::new(Prepped {
        config,
        prepared,
        plan,
        added,
    }))
}

fn prune(dirs: &[PathBuf]) -> bool {
    let mut removed = false;
    for dir in dirs {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if std::fs::remove_file(e.path()).is_ok() {
                removed = true;
            }
        }
    }
    removed
}
