//! What a reload changes, decided before anything is touched.
//!
//! [`ReloadPlan::new`] is a pure function of the sources being served and the new config: which
//! sources need new sockets (new ones, moved ones, ones a refused reload left without a
//! listener), which current sources' listeners close at commit, which sources leave the config
//! (retired: served no more, their spool still delivered), which are new to the instance
//! (their spool is recovered) and which stay with a new config. The loop then binds every
//! socket of `bind` first and commits only when all are bound; otherwise it closes what it
//! bound, binds again what it had closed, and the instance runs as before (`Listeners::bind_all`).
//! The plan never binds, reads or writes anything itself.

use crate::config::{Config, Listen, Receiver, Source};

/// A source the instance serves now, as the plan sees it.
pub struct Current<'a> {
    pub cfg: &'a Source,
    /// Left the config at an earlier reload; still draining.
    pub retired: bool,
    /// A refused reload could not bind its old sockets again: it needs binding whatever changed.
    pub unbound: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReloadPlan {
    /// Sources to bind sockets for, in config order.
    pub bind: Vec<Source>,
    /// Current sources (by index) whose listeners close at commit: moved and removed ones.
    pub close: Vec<usize>,
    /// Current sources (by index) that left the config.
    pub retire: Vec<usize>,
    /// Sources new to this instance (also in `bind` when they have sockets).
    pub add: Vec<Source>,
    /// Current sources (by index) that stay, with their new config.
    pub update: Vec<(usize, Source)>,
}

/// What decides a source's sockets.
fn listen_key(s: &Source) -> (Receiver, u16, Option<Listen>) {
    (s.receiver, s.port, s.listen.clone())
}

impl ReloadPlan {
    /// Plans the move from `current` (served under `old`) to `new`'s sources for `port`.
    pub fn new(
        old: &Config,
        current: &[Current],
        new: &Config,
        port: Option<u16>,
    ) -> Result<ReloadPlan, String> {
        if new.collector.state_dir != old.collector.state_dir
            || new.collector.run_dir != old.collector.run_dir
        {
            return Err("state_dir and run_dir change only with a restart".into());
        }
        let wanted = new.sources_for(port);
        let index = |name: &str| current.iter().position(|c| c.cfg.name == name);
        let mut plan = ReloadPlan::default();
        for s in &wanted {
            match index(&s.name) {
                None => {
                    plan.add.push(s.clone());
                    if s.receiver.is_syslog() {
                        plan.bind.push(s.clone());
                    }
                }
                Some(i) => {
                    let c = &current[i];
                    let same = listen_key(c.cfg) == listen_key(s);
                    if !same || c.retired || c.unbound {
                        if s.receiver.is_syslog() {
                            plan.bind.push(s.clone());
                        }
                        if !same {
                            plan.close.push(i);
                        }
                    }
                    plan.update.push((i, s.clone()));
                }
            }
        }
        for (i, c) in current.iter().enumerate() {
            if !wanted.iter().any(|w| w.name == c.cfg.name) {
                if !plan.close.contains(&i) {
                    plan.close.push(i);
                }
                if !c.retired {
                    plan.retire.push(i);
                }
            }
        }
        plan.close.sort_unstable();
        Ok(plan)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::path::Path;

    /// An INI for `spec`: sources as `NAME RECEIVER PORT [LISTEN]` separated by `;`, and
    /// `state_dir=X` for a state_dir (also `listeners.rs`'s tests').
    pub(in crate::server) fn config(spec: &str) -> Config {
        let mut ini = String::new();
        for s in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let f: Vec<&str> = s.split_whitespace().collect();
            if let Some(dir) = f[0].strip_prefix("state_dir=") {
                ini = format!("[collector]\nstate_dir = {dir}\n{ini}");
                continue;
            }
            ini += &format!("[source {}]\nformat = SQUID\nreceiver = {}\n", f[0], f[1]);
            if f[1] != "ftp" {
                ini += &format!("port = {}\n", f[2]);
            }
            if let Some(l) = f.get(3) {
                ini += &format!("listen = {l}\n");
            }
        }
        crate::config::parse_str(&ini, Path::new("/etc/lc/lc.ini")).unwrap()
    }

    /// `old` is the running config; the current sources are its sources for `port`, a name
    /// followed by `!` being unbound and one followed by `~` retired (those stay in `old`).
    /// The plan is written as `bind=.. close=.. retire=.. add=.. update=..`, sources by name.
    #[track_caller]
    fn check(port: Option<u16>, old: &str, new: &str, expected: &str) {
        let flags = |s: &str| {
            s.split(';')
                .filter_map(|x| x.split_whitespace().next().map(str::to_string))
                .collect::<Vec<_>>()
        };
        let marks = flags(old);
        let old = config(&old.replace(['!', '~'], ""));
        let served = old.sources_for(port);
        let current: Vec<Current> = served
            .iter()
            .map(|s| {
                let mark = marks
                    .iter()
                    .find(|m| m.trim_end_matches(['!', '~']) == s.name);
                Current {
                    cfg: s,
                    retired: mark.is_some_and(|m| m.ends_with('~')),
                    unbound: mark.is_some_and(|m| m.ends_with('!')),
                }
            })
            .collect();
        let got = match ReloadPlan::new(&old, &current, &config(new), port) {
            Err(e) => format!("refused: {e}"),
            Ok(p) => {
                let names = |v: &[Source]| {
                    v.iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let at = |v: &[usize]| {
                    v.iter()
                        .map(|&i| served[i].name.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let update: Vec<&str> = p
                    .update
                    .iter()
                    .map(|(i, s)| {
                        assert_eq!(served[*i].name, s.name);
                        s.name.as_str()
                    })
                    .collect();
                format!(
                    "bind={} close={} retire={} add={} update={}",
                    names(&p.bind),
                    at(&p.close),
                    at(&p.retire),
                    names(&p.add),
                    update.join(",")
                )
            }
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn nothing_changes() {
        check(
            None,
            "a syslog-udp 514",
            "a syslog-udp 514",
            "bind= close= retire= add= update=a",
        );
        check(
            Some(514),
            "a syslog-udp 514; b syslog-tcp 601",
            "a syslog-udp 514; b syslog-tcp 601",
            "bind= close= retire= add= update=a",
        );
    }

    #[test]
    fn sources_come_and_go() {
        check(
            None,
            "a syslog-udp 514",
            "a syslog-udp 514; b syslog-tcp 514",
            "bind=b close= retire= add=b update=a",
        );
        check(
            None,
            "a syslog-udp 514; b syslog-tcp 514",
            "b syslog-tcp 514",
            "bind= close=a retire=a add= update=b",
        );
        // An FTP source is a folder: nothing to bind, but its spool is the instance's.
        check(
            None,
            "a syslog-udp 514",
            "a syslog-udp 514; f ftp 0",
            "bind= close= retire= add=f update=a",
        );
        // Another port's sources are another instance's.
        check(
            Some(514),
            "a syslog-udp 514",
            "a syslog-udp 514; b syslog-udp 601",
            "bind= close= retire= add= update=a",
        );
        // A source that moves to another instance's port leaves this one.
        check(
            Some(514),
            "a syslog-udp 514",
            "a syslog-udp 601",
            "bind= close=a retire=a add= update=",
        );
    }

    #[test]
    fn moved_sources_bind_anew_and_close_the_old() {
        check(
            None,
            "a syslog-udp 514",
            "a syslog-udp 515",
            "bind=a close=a retire= add= update=a",
        );
        check(
            None,
            "a syslog-udp 514",
            "a syslog-tcp 514",
            "bind=a close=a retire= add= update=a",
        );
        check(
            None,
            "a syslog-udp 514",
            "a syslog-udp 514 127.0.0.1",
            "bind=a close=a retire= add= update=a",
        );
        // Two sources swap ports: both bind and both close (the loop closes, then binds again).
        check(
            None,
            "a syslog-udp 514; b syslog-udp 515",
            "a syslog-udp 515; b syslog-udp 514",
            "bind=a,b close=a,b retire= add= update=a,b",
        );
        // Another key (format, allow, render) is an update without sockets.
        check(
            None,
            "a syslog-tcp 514",
            "a syslog-tcp 514",
            "bind= close= retire= add= update=a",
        );
    }

    #[test]
    fn refused_reloads_leave_marks_the_next_one_clears() {
        // Its old sockets could not be bound again: bind them, though nothing changed.
        check(
            None,
            "a! syslog-udp 514",
            "a syslog-udp 514",
            "bind=a close= retire= add= update=a",
        );
        // A source retired earlier comes back: it needs sockets, its spool is still here.
        check(
            None,
            "a~ syslog-udp 514",
            "a syslog-udp 514",
            "bind=a close= retire= add= update=a",
        );
        // Retired and still gone: nothing to retire twice, its (closed) listeners stay closed.
        check(
            None,
            "a~ syslog-udp 514; b syslog-udp 515",
            "b syslog-udp 515",
            "bind= close=a retire= add= update=b",
        );
    }

    #[test]
    fn folders_are_not_reloadable() {
        check(
            None,
            "a syslog-udp 514",
            "state_dir=/srv/lc; a syslog-udp 514",
            "refused: state_dir and run_dir change only with a restart",
        );
    }
}
