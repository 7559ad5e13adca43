//! Failed logins per client address, and the lockout they lead to: a pure table of
//! addresses with a cap, so a flood of logins from ever new addresses cannot grow it without
//! bound. Time comes in as `now`; nothing here touches a socket or a clock.
//!
//! An address is remembered from its first failed login until `lockout` after its last one
//! (or until its lockout ends, whichever is later). At `max_failures` it is locked out for
//! `lockout`. When [`MAX_TRACKED`] addresses are remembered and a new one fails, forgotten
//! first are those whose time is up anyway, then the address failing least recently that is
//! not locked out, and only when all are locked out, the one whose lockout ends first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Addresses remembered at most (about 100 bytes each).
pub const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// Failures since the last lockout.
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

impl Failures {
    fn locked(&self, now: Instant) -> bool {
        self.locked_until.is_some_and(|t| t > now)
    }

    fn expired(&self, now: Instant, lockout: Duration) -> bool {
        !self.locked(now) && now.saturating_duration_since(self.last) >= lockout
    }
}

/// What a failed login led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failed {
    /// Failures counted for the address since its last lockout (this one included); 0 when
    /// this one locked it out.
    pub count: u32,
    /// This failure locked the address out.
    pub locked: bool,
    /// Another address was forgotten to make room for this one.
    pub evicted: bool,
}

#[derive(Debug)]
pub struct Lockout {
    max_failures: u32,
    lockout: Duration,
    cap: usize,
    ips: HashMap<IpAddr, Failures>,
}

impl Lockout {
    pub fn new(max_failures: u32, lockout: Duration) -> Lockout {
        Lockout::with_cap(max_failures, lockout, MAX_TRACKED)
    }

    fn with_cap(max_failures: u32, lockout: Duration, cap: usize) -> Lockout {
        Lockout {
            max_failures: max_failures.max(1),
            lockout,
            cap: cap.max(1),
            ips: HashMap::new(),
        }
    }

    /// New limits from a reload; addresses keep their counts.
    pub fn set_limits(&mut self, max_failures: u32, lockout: Duration) {
        self.max_failures = max_failures.max(1);
        self.lockout = lockout;
    }

    pub fn locked(&self, ip: IpAddr, now: Instant) -> bool {
        self.ips.get(&ip).is_some_and(|f| f.locked(now))
    }

    /// Counts a failed login from `ip`.
    pub fn failed(&mut self, ip: IpAddr, now: Instant) -> Failed {
        let mut evicted = false;
        if !self.ips.contains_key(&ip) && self.ips.len() >= self.cap {
            self.expire(now);
            if self.ips.len() >= self.cap {
                self.evict_one(now);
                evicted = true;
            }
        }
        let f = self.ips.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        f.count += 1;
        f.last = now;
        let locked = f.count >= self.max_failures;
        if locked {
            f.count = 0;
            f.locked_until = Some(now + self.lockout);
        }
        Failed {
            count: f.count,
            locked,
            evicted,
        }
    }

    /// A successful login forgets the address's failures.
    pub fn succeeded(&mut self, ip: IpAddr) {
        self.ips.remove(&ip);
    }

    /// Forgets the addresses whose time is up.
    pub fn expire(&mut self, now: Instant) {
        let lockout = self.lockout;
        self.ips.retain(|_, f| !f.expired(now, lockout));
    }

    /// Addresses locked out now.
    pub fn locked_now(&self, now: Instant) -> usize {
        self.ips.values().filter(|f| f.locked(now)).count()
    }

    /// Addresses remembered.
    pub fn tracked(&self) -> usize {
        self.ips.len()
    }

    /// Forgets the address failing least recently among those not locked out, else the one
    /// whose lockout ends first. A scan: it only runs when the table is full, and failures
    /// arrive no faster than password checks finish.
    fn evict_one(&mut self, now: Instant) {
        let victim = self
            .ips
            .iter()
            .min_by_key(|(_, f)| match f.locked(now) {
                false => (0, f.last),
                true => (1, f.locked_until.unwrap_or(now)),
            })
            .map(|(ip, _)| *ip);
        if let Some(ip) = victim {
            self.ips.remove(&ip);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` on a table with `max_failures` 3, `lockout` 10 s and a cap of 3
    /// addresses, starting at t = 0: `fN@T` is a failed login of 10.0.0.N at T seconds
    /// (writes count, `L` when locked out, `+e` when another address was evicted), `sN` a
    /// success, `?N@T` asks whether it is locked (`y`/`n`), `x@T` expires. The end shows the
    /// addresses remembered.
    #[track_caller]
    fn check(script: &str, expected: &str) {
        let t0 = Instant::now();
        let at = |s: &str| t0 + Duration::from_secs(s.parse().unwrap());
        let ip = |n: &str| -> IpAddr { format!("10.0.0.{n}").parse().unwrap() };
        let mut table = Lockout::with_cap(3, Duration::from_secs(10), 3);
        let mut out = Vec::new();
        for step in script.split_whitespace() {
            let (op, arg) = step.split_at(1);
            let (n, t) = arg.split_once('@').unwrap_or((arg, "0"));
            match op {
                "f" => {
                    let r = table.failed(ip(n), at(t));
                    let mut s = if r.locked {
                        "L".to_string()
                    } else {
                        r.count.to_string()
                    };
                    if r.evicted {
                        s.push_str("+e");
                    }
                    out.push(s);
                }
                "s" => table.succeeded(ip(n)),
                "?" => out.push(if table.locked(ip(n), at(t)) { "y" } else { "n" }.into()),
                "x" => table.expire(at(t)),
                _ => panic!("bad step {step}"),
            }
        }
        let mut left: Vec<String> = table.ips.keys().map(|ip| ip.to_string()).collect();
        left.sort();
        let left: Vec<&str> = left.iter().map(|s| &s["10.0.0.".len()..]).collect();
        assert_eq!(
            format!("{} / {}", out.join(" "), left.join(" ")),
            expected,
            "script {script:?}"
        );
    }

    #[test]
    fn failures_lock_out_and_are_forgotten() {
        check("f1 f1 ?1@0 f1 ?1@0 ?1@9 ?1@10", "1 2 n L y y n / 1");
        check("f1 f1 s1 f1", "1 2 1 / 1");
        // Forgotten `lockout` after the last failure, or when the lockout ends.
        check("f1@0 f1@5 x@14 x@15", "1 2 / ");
        check("f1@0 f1@5 x@14", "1 2 / 1");
        check("f1 f1 f1@2 x@11 ?1@11 x@12", "1 2 L y / ");
        // After a lockout, counting starts again.
        check("f1 f1 f1 f1@20 f1@20 f1@20", "1 2 L 1 2 L / 1");
    }

    #[test]
    fn a_full_table_forgets_what_matters_least() {
        // Expired addresses go first, and then nothing else must.
        check("f1@0 f2@5 f3@6 f4@12", "1 1 1 1 / 2 3 4");
        // Then the one failing least recently that is not locked out.
        check("f1@0 f2@1 f3@2 f1@3 f4@4", "1 1 1 2 1+e / 1 3 4");
        // Locked-out addresses stay while others can go.
        check("f1 f1 f1 f2@1 f3@2 f4@3", "1 2 L 1 1 1+e / 1 3 4");
        // All locked out: the lockout that ends first goes.
        check(
            "f1 f1 f1 f2@1 f2@1 f2@1 f3@2 f3@2 f3@2 f4@3 ?1@3 ?2@3",
            "1 2 L 1 2 L 1 2 L 1+e n y / 2 3 4",
        );
        // A flood of new addresses never grows the table past its cap.
        let mut table = Lockout::with_cap(3, Duration::from_secs(1000), 3);
        let t0 = Instant::now();
        for n in 0..1000 {
            let ip: IpAddr = format!("10.0.{}.{}", n / 256, n % 256).parse().unwrap();
            table.failed(ip, t0);
            assert!(table.tracked() <= 3);
        }
    }
}
