//! The login gate: whether a password is checked at all, what a check's answer leads to
//! (a session logged in, or a failure answered after [`FAILED_LOGIN_DELAY`] and counted
//! towards the address's lockout in [`Lockout`]), whether a new session of an address is
//! refused as locked out, and the counts of all that for the status snapshot.
//!
//! No I/O: the server asks it when a client sends PASS and when the `lc-ftp-login` thread
//! answers, and carries out what it says (queue the check, hold the reply back, log).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::lockout::Lockout;

/// A failed login is answered after this, to slow guessing down.
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);

/// Counts for the status snapshot.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub logins: u64,
    pub failed_logins: u64,
    pub lockouts: u64,
    /// Addresses the failed-login table forgot to make room for others.
    pub lockout_evicted: u64,
    /// Logins refused because `LOGIN_QUEUE` password checks were waiting.
    pub refused_login_queue: u64,
}

/// What to do with a password a client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Check it (on the `lc-ftp-login` thread).
    Check,
    /// The address is locked out: not even checked, answered as a failure at this instant
    /// (as slowly as a wrong password).
    FailAt(Instant),
}

/// What a check's answer leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Logged in: reply now.
    In,
    /// A failed login, answered at `at`.
    Out {
        at: Instant,
        /// Failures of the address towards its lockout, this one included (the maximum
        /// when this one locked it out).
        count: u32,
        /// This failure locked the address out.
        locked: bool,
        /// The failed-login table was full: another address was forgotten.
        evicted: bool,
    },
}

pub struct Gate {
    failures: Lockout,
    max_failures: u32,
    pub counts: Counts,
}

impl Gate {
    /// `[ftp] max_login_failures` and `lockout_secs`.
    pub fn new(max_failures: u32, lockout: Duration) -> Gate {
        Gate {
            failures: Lockout::new(max_failures, lockout),
            max_failures,
            counts: Counts::default(),
        }
    }

    /// New limits from a reload; addresses keep their counts.
    pub fn set_limits(&mut self, max_failures: u32, lockout: Duration) {
        self.failures.set_limits(max_failures, lockout);
        self.max_failures = max_failures;
    }

    pub fn max_failures(&self) -> u32 {
        self.max_failures
    }

    /// Whether `ip` is locked out now (its sessions are refused).
    pub fn locked(&self, ip: IpAddr, now: Instant) -> bool {
        self.failures.locked(ip, now)
    }

    /// A client of `ip` sent a password.
    pub fn asked(&mut self, ip: IpAddr, now: Instant) -> Asked {
        if self.failures.locked(ip, now) {
            self.counts.failed_logins += 1;
            return Asked::FailAt(now + FAILED_LOGIN_DELAY);
        }
        Asked::Check
    }

    /// The check could not be queued: too many wait already (the login is refused).
    pub fn queue_full(&mut self) {
        self.counts.refused_login_queue += 1;
    }

    /// A password check of `ip` answered `ok`.
    pub fn answered(&mut self, ip: IpAddr, ok: bool, now: Instant) -> Answer {
        if ok {
            self.counts.logins += 1;
            self.failures.succeeded(ip);
            return Answer::In;
        }
        self.counts.failed_logins += 1;
        let failed = self.failures.failed(ip, now);
        self.counts.lockout_evicted += u64::from(failed.evicted);
        self.counts.lockouts += u64::from(failed.locked);
        Answer::Out {
            at: now + FAILED_LOGIN_DELAY,
            count: if failed.locked {
                self.max_failures
            } else {
                failed.count
            },
            locked: failed.locked,
            evicted: failed.evicted,
        }
    }

    /// Forgets addresses whose time is up (housekeeping).
    pub fn expire(&mut self, now: Instant) {
        self.failures.expire(now);
    }

    /// Addresses locked out now.
    pub fn locked_now(&self, now: Instant) -> usize {
        self.failures.locked_now(now)
    }

    /// Addresses remembered.
    pub fn tracked(&self) -> usize {
        self.failures.tracked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` against a gate with `max_login_failures` 3 and `lockout_secs` 60, and
    /// returns its answers: `pA` a client of address 192.0.2.A sends a password (`check`, or
    /// `fail+MS` when it is answered unchecked MS ms later), `yA` / `nA` its check answers
    /// yes / no (`in`, or `out+MS:COUNT` with `!locked`, `!evicted`), `q` the queue is full,
    /// `lA` is A locked out (`locked` / `open`), `tS` S seconds pass, `x` expire.
    #[track_caller]
    fn check(script: &str, expected: &str, counts: Counts) {
        let mut gate = Gate::new(3, Duration::from_secs(60));
        let start = Instant::now();
        let mut now = start;
        let mut out = Vec::new();
        let ms = |at: Instant, now: Instant| at.duration_since(now).as_millis();
        for step in script.split_whitespace() {
            let (op, arg) = step.split_at(1);
            let ip = || IpAddr::from([192, 0, 2, arg.parse::<u8>().unwrap()]);
            match op {
                "p" => out.push(match gate.asked(ip(), now) {
                    Asked::Check => "check".to_string(),
                    Asked::FailAt(at) => format!("fail+{}", ms(at, now)),
                }),
                "y" | "n" => out.push(match gate.answered(ip(), op == "y", now) {
                    Answer::In => "in".to_string(),
                    Answer::Out {
                        at,
                        count,
                        locked,
                        evicted,
                    } => format!(
                        "out+{}:{count}{}{}",
                        ms(at, now),
                        if locked { "!locked" } else { "" },
                        if evicted { "!evicted" } else { "" }
                    ),
                }),
                "q" => gate.queue_full(),
                "l" => out.push(
                    if gate.locked(ip(), now) {
                        "locked"
                    } else {
                        "open"
                    }
                    .into(),
                ),
                "t" => now += Duration::from_secs(arg.parse().unwrap()),
                "x" => gate.expire(now),
                _ => panic!("bad step {step}"),
            }
        }
        assert_eq!(out.join(" "), expected, "script {script:?}");
        assert_eq!(gate.counts, counts, "script {script:?}");
    }

    fn counts(logins: u64, failed: u64, lockouts: u64, queue: u64) -> Counts {
        Counts {
            logins,
            failed_logins: failed,
            lockouts,
            lockout_evicted: 0,
            refused_login_queue: queue,
        }
    }

    #[test]
    fn logins_and_failures() {
        check("p1 y1", "check in", counts(1, 0, 0, 0));
        check(
            "p1 n1 p1 y1",
            "check out+1000:1 check in",
            counts(1, 1, 0, 0),
        );
        // A login forgets the failures before it.
        check(
            "n1 n1 y1 n1 l1",
            "out+1000:1 out+1000:2 in out+1000:1 open",
            counts(1, 3, 0, 0),
        );
        check("q q", "", counts(0, 0, 0, 2));
    }

    #[test]
    fn the_third_failure_locks_the_address_out() {
        check(
            "n1 n1 n1 l1 l2 p1 t59 l1 t1 l1 p1",
            "out+1000:1 out+1000:2 out+1000:3!locked locked open fail+1000 locked open check",
            counts(0, 4, 1, 0),
        );
        // Failures of other addresses count apart.
        check(
            "n1 n2 n1 n2 l1 l2",
            "out+1000:1 out+1000:1 out+1000:2 out+1000:2 open open",
            counts(0, 4, 0, 0),
        );
        // Failures are forgotten a lockout's time after the last one.
        check(
            "n1 n1 t60 x n1 l1",
            "out+1000:1 out+1000:2 out+1000:1 open",
            counts(0, 3, 0, 0),
        );
    }
}
