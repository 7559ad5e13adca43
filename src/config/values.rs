//! Reading config values: the problems found so far (each with its line and, inside a
//! `[source]` section, whose source it is), the keys of a section taken one by one (what is
//! left is unknown), and one reader per kind of value (path, size, duration, number, port,
//! addresses, CIDR lists, a word from a few), each of which records a problem and falls
//! back to the default when the value does not parse. The sections' own rules are in their
//! types' files (`collector.rs`, `spool.rs`, `delivery.rs`, `ftp.rs`, `source.rs`).

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::{ini, Listen, Problem, Receiver, Site};
use crate::allow::{canonical, AllowList, Cidr};

/// What validation found so far, and the folder relative paths resolve against.
pub(super) struct Validator {
    pub base: PathBuf,
    pub problems: Vec<Problem>,
    /// The line of `metrics_listen`, for what `source::metrics_clash` finds later.
    pub metrics_line: usize,
}

/// The entries of one section, taken key by key; what is left at the end is unknown.
pub(super) struct Keys<'a> {
    section: &'a ini::Section,
    taken: HashSet<&'a str>,
}

impl<'a> Keys<'a> {
    pub fn new(section: &'a ini::Section) -> Self {
        Keys {
            section,
            taken: HashSet::new(),
        }
    }

    pub fn get(&mut self, key: &'a str) -> Option<&'a ini::Entry> {
        self.taken.insert(key);
        // The last assignment wins; duplicates are reported by `finish`.
        self.section.entries.iter().rev().find(|e| e.key == key)
    }

    pub fn finish(self, v: &mut Validator) {
        let mut seen = HashSet::new();
        for e in &self.section.entries {
            if !self.taken.contains(e.key.as_str()) {
                let known: Vec<&str> = {
                    let mut k: Vec<&str> = self.taken.iter().copied().collect();
                    k.sort_unstable();
                    k
                };
                v.problem(
                    e.line,
                    format!(
                        "unknown key {:?} in [{}]; expected one of: {}",
                        e.key,
                        self.section.name,
                        known.join(", ")
                    ),
                );
            } else if !seen.insert(e.key.as_str()) {
                v.problem(
                    e.line,
                    format!("key {:?} is set twice in [{}]", e.key, self.section.name),
                );
            }
        }
    }
}

impl Validator {
    pub fn new(base: PathBuf) -> Validator {
        Validator {
            base,
            problems: Vec::new(),
            metrics_line: 0,
        }
    }

    pub fn problem(&mut self, line: usize, message: String) {
        self.problems.push(Problem {
            line,
            message,
            source: None,
        });
    }

    /// Marks the problems from `from` on as those of source `name` at `site`.
    pub fn blame(&mut self, from: usize, name: &str, site: Site) {
        for p in &mut self.problems[from..] {
            p.source.get_or_insert_with(|| (name.to_string(), site));
        }
    }

    /// `proxy_protocol` (already read: `on`) and `trusted_proxies` of the section `what`
    /// (`[ftp]`, `[source NAME]`) at line `at`: the balancers to take headers from, if on.
    pub fn proxy_protocol(
        &mut self,
        at: usize,
        what: &str,
        on: bool,
        trusted: Option<&ini::Entry>,
    ) -> Option<AllowList> {
        let trusted_proxies = self.cidrs(trusted);
        if on {
            if trusted.is_none_or(|e| e.value.trim().is_empty()) {
                self.problem(
                    at,
                    format!("{what} proxy_protocol = on needs trusted_proxies (the load balancers' addresses)"),
                );
            }
        } else if let Some(e) = trusted.filter(|_| !trusted_proxies.0.is_empty()) {
            self.problem(
                e.line,
                "trusted_proxies is used only with proxy_protocol = on".to_string(),
            );
        }
        on.then_some(trusted_proxies)
    }

    /// A comma-separated list of addresses and CIDRs (`allow`, `trusted_proxies`).
    pub fn cidrs(&mut self, e: Option<&ini::Entry>) -> AllowList {
        let Some(e) = e else {
            return AllowList::default();
        };
        let mut rules = Vec::new();
        for item in e.value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match Cidr::parse(item) {
                Ok(c) => rules.push(c),
                Err(msg) => self.problem(e.line, format!("{}: {msg}", e.key)),
            }
        }
        AllowList(rules)
    }

    /// A syslog-only key (`render`, `framing`) whose value is one of a few words: the parsed
    /// value, the default when absent, and a problem when it is unknown or on an FTP source
    /// (an uploaded file is delivered as its own lines).
    pub fn syslog_choice<T: Copy>(
        &mut self,
        receiver: Option<Receiver>,
        e: Option<&ini::Entry>,
        parse: fn(&str) -> Result<T, &'static str>,
        default: T,
    ) -> T {
        let Some(e) = e else { return default };
        if let Some(r) = receiver.filter(|r| !r.is_syslog()) {
            self.problem(
                e.line,
                format!(
                    "`{}` is for syslog receivers; {} sources deliver the uploaded file's own lines",
                    e.key,
                    r.as_str()
                ),
            );
            return default;
        }
        match parse(&e.value) {
            Ok(v) => v,
            Err(expected) => {
                self.problem(
                    e.line,
                    format!("{} {:?} is not one of {expected}", e.key, e.value),
                );
                default
            }
        }
    }

    pub fn path(&mut self, e: Option<&ini::Entry>, default: &str) -> PathBuf {
        match e {
            Some(e) if !e.value.is_empty() => self.base.join(&e.value),
            Some(e) => {
                self.problem(e.line, format!("{} must not be empty", e.key));
                PathBuf::from(default)
            }
            None => PathBuf::from(default),
        }
    }

    pub fn listen(&mut self, e: Option<&ini::Entry>) -> Option<Listen> {
        let e = e?;
        if e.value.is_empty() {
            return None;
        }
        if e.value == "*" {
            return Some(Listen::Any);
        }
        let mut addrs = Vec::new();
        for item in e.value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                Ok(a) => addrs.push(a),
                Err(_) => self.problem(
                    e.line,
                    format!("listen: {item:?} is not an IP address (or * for all)"),
                ),
            }
        }
        Some(Listen::Addrs(addrs))
    }

    /// `metrics_listen = HOST:PORT`: an IP literal on the loopback network only, since what it
    /// serves (source names, peers' errors, the backlog) is for this host's scraper alone.
    pub fn metrics_listen(&mut self, e: Option<&ini::Entry>) -> Option<SocketAddr> {
        let e = e.filter(|e| !e.value.is_empty())?;
        self.metrics_line = e.line;
        match e.value.parse::<SocketAddr>() {
            Ok(a) if canonical(a.ip()).is_loopback() => Some(a),
            Ok(_) => {
                self.problem(
                    e.line,
                    format!(
                        "metrics_listen {:?} is not a loopback address (127.0.0.0/8 or [::1]): the metrics are served to this host only",
                        e.value
                    ),
                );
                None
            }
            Err(_) => {
                self.problem(
                    e.line,
                    format!(
                        "metrics_listen {:?} is not HOST:PORT with a loopback IP address (e.g. 127.0.0.1:9514 or [::1]:9514)",
                        e.value
                    ),
                );
                None
            }
        }
    }

    pub fn port(&mut self, e: Option<&ini::Entry>, default: u16) -> u16 {
        match e {
            None => default,
            Some(e) => match e.value.parse::<u16>() {
                Ok(p) => p,
                Err(_) => {
                    self.problem(
                        e.line,
                        format!("port {:?} must be a number from 0 to 65535", e.value),
                    );
                    default
                }
            },
        }
    }

    pub fn size(&mut self, e: Option<&ini::Entry>, default: u64, min: u64, max: u64) -> u64 {
        let Some(e) = e else { return default };
        match parse_size(&e.value) {
            Some(n) if n >= min && n <= max => n,
            Some(n) => {
                self.problem(e.line, format!("{} = {n} is outside {min}..={max}", e.key));
                default
            }
            None => {
                self.problem(
                    e.line,
                    format!(
                        "{} {:?} is not a size (a number with optional K, M, G or T, e.g. 64K, 32M, 32MB, 1GiB)",
                        e.key, e.value
                    ),
                );
                default
            }
        }
    }

    pub fn number(&mut self, e: Option<&ini::Entry>, default: u64, min: u64, max: u64) -> u64 {
        let Some(e) = e else { return default };
        match e.value.parse::<u64>() {
            Ok(n) if n >= min && n <= max => n,
            _ => {
                self.problem(
                    e.line,
                    format!(
                        "{} {:?} must be a whole number from {min} to {max}",
                        e.key, e.value
                    ),
                );
                default
            }
        }
    }

    pub fn secs(&mut self, e: Option<&ini::Entry>, default: Duration, min: u64) -> Duration {
        let Some(e) = e else { return default };
        let max = 365 * 86400;
        match parse_secs(&e.value) {
            Some(n) if n >= min && n <= max => Duration::from_secs(n),
            _ => {
                self.problem(
                    e.line,
                    format!(
                        "{} {:?} must be a duration from {min} to {max} seconds (a number of seconds, or with s, m, h or d: 300, 5m, 1h)",
                        e.key, e.value
                    ),
                );
                default
            }
        }
    }
}

/// `[A-Za-z0-9_-]{1,64}`: source names (MDCA's inputStreamName) and the collector name.
pub fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `32M`, `1G`, `4096`, `64K`, and as operators also write them, `32MB`, `32 MiB`, `512B`:
/// K, M, G, T with an optional `B` or `iB`, any case, all powers of 1024 (`MB` too: a spool
/// size is not the place for the SI/IEC distinction, and 1024 is what `M` already means here).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let shift = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(1u64 << shift)
}

/// A `*_secs` value: seconds, or a number with a unit as operators write it: `300`, `300s`,
/// `5m`, `5min`, `2h`, `1d` (any case, space allowed before the unit).
pub fn parse_secs(s: &str) -> Option<u64> {
    let s = s.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(digits_end);
    let mult = match unit.trim_start().to_ascii_lowercase().as_str() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "m" | "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86400,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_size(input: &str, expected: Option<u64>) {
        assert_eq!(parse_size(input), expected, "{input:?}");
    }

    #[track_caller]
    fn check_secs(input: &str, expected: Option<u64>) {
        assert_eq!(parse_secs(input), expected, "{input:?}");
    }

    #[test]
    fn size_units() {
        check_size("32MB", Some(32 << 20));
        check_size("32mb", Some(32 << 20));
        check_size("32 MiB", Some(32 << 20));
        check_size("1GB", Some(1 << 30));
        check_size("1gib", Some(1 << 30));
        check_size("64KB", Some(64 << 10));
        check_size("2TB", Some(2 << 40));
        check_size("512B", Some(512));
        check_size("512 b", Some(512));
        check_size(" 7 ", Some(7));
        check_size("1.5G", None);
        check_size("32 M B", None);
        check_size("MB", None);
        check_size("32Mx", None);
        check_size("32 PB", None);
    }

    #[test]
    fn durations() {
        check_secs("300", Some(300));
        check_secs("300s", Some(300));
        check_secs("5m", Some(300));
        check_secs("5 min", Some(300));
        check_secs("5M", Some(300));
        check_secs("2h", Some(7200));
        check_secs("1d", Some(86400));
        check_secs("10 seconds", Some(10));
        check_secs("1.5h", None);
        check_secs("m", None);
        check_secs("-5", None);
        check_secs("5w", None);
        check_secs("99999999999999999999d", None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("32M"), Some(32 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("M"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }
}
