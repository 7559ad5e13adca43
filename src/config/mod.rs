//! lc.ini: from text to a validated [`Config`].
//!
//! `ini.rs` tokenizes; the rest knows every section and key of DESIGN.md's config and turns
//! them into typed values, collecting every problem with its line instead of stopping at the
//! first: each section's type reads itself (`collector.rs`, `spool.rs`, `delivery.rs`,
//! `ftp.rs`, `source.rs`, with the checks across sources) through `values.rs` (one reader per
//! kind of value, the problems found). This file is the whole: which sections there are,
//! defaults for missing ones, and which problems stop which instance. Reading the file is
//! separate (`load`) from validating text (`parse_str`), so tests feed strings. Nothing here
//! touches sockets or the spool; relative paths are resolved against the config file's
//! folder but not checked for existence.

mod collector;
mod delivery;
pub mod formats;
mod ftp;
pub mod ini;
mod source;
mod spool;
mod values;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::syslog::frame::FramingMode;
pub use crate::syslog::render::Render;
pub use collector::{
    Collector, Listen, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_PENDING_BYTES,
    DEFAULT_UDP_RCVBUF,
};
pub use delivery::{check_proxy_url, Delivery, Target};
pub use ftp::{Ftp, TlsMode};
pub use source::{Receiver, Site, Source};
pub use spool::Spool;
use values::Validator;
pub use values::{parse_secs, parse_size, valid_name};

pub const DEFAULT_PATH: &str = "/etc/lc/lc.ini";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub path: PathBuf,
    pub collector: Collector,
    pub spool: Spool,
    pub delivery: Delivery,
    pub ftp: Ftp,
    pub sources: Vec<Source>,
}

/// One problem in the config, with the line it is about (0 = the file as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub message: String,
    /// The `[source NAME]` section the problem is in and where that source listens, as far
    /// as its section says; None for the rest of the file, which every instance reads.
    pub source: Option<(String, Site)>,
}

/// Every problem found in one file.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line == 0 {
                write!(f, "{}: {}", self.path.display(), p.message)?;
            } else {
                write!(f, "{}:{}: {}", self.path.display(), p.line, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Reads and validates the file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read: {e}"),
            source: None,
        }],
    })?;
    parse_str(&text, path)
}

/// Where the instances keep their snapshots and spools as far as a config that does not
/// validate tells: `[collector] run_dir` and `state_dir` as written (relative to the config's
/// folder), else the defaults. `lc status` and `lc tail` use it when `load` fails, since that is
/// when a reload was just refused and the admin wants to see the instances.
pub fn folders_leniently(path: &Path) -> (PathBuf, PathBuf) {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let (sections, _) = ini::parse(&text);
    let get = |key: &str, default: &str| {
        sections
            .iter()
            .filter(|s| s.name == "collector")
            .flat_map(|s| s.entries.iter())
            .rfind(|e| e.key == key && !e.value.is_empty())
            .map_or_else(|| PathBuf::from(default), |e| base.join(&e.value))
    };
    (get("run_dir", "/run/lc"), get("state_dir", "/var/lib/lc"))
}

/// Reads and validates the file at `path` for the instance on `port` (see `parse_str_for`).
pub fn load_for(path: &Path, port: Option<u16>) -> Result<(Config, Vec<Problem>), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: 0,
            message: format!("cannot read: {e}"),
            source: None,
        }],
    })?;
    parse_str_for(&text, path, port)
}

/// Lines whose unquoted value is followed by what looks like its own rest cut off as a
/// comment (`proxy = http://u:pa ;ss@h`), for `config check` to point out. The cut text is
/// not repeated: it may be half a password.
pub fn cut_values(text: &str, path: &Path) -> Vec<String> {
    let (sections, _) = ini::parse(text);
    sections
        .iter()
        .flat_map(|s| &s.entries)
        .filter(|e| e.cut)
        .map(|e| {
            format!(
                "{}:{}: warning: the value of {:?} ends where ` ;` or ` #` starts a comment; if they belong to the value, put it in double quotes",
                path.display(),
                e.line,
                e.key
            )
        })
        .collect()
}

/// Validates config text as if read from `path` (relative paths resolve against its folder).
pub fn parse_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    parse_str_for(text, path, None).map(|(config, _)| config)
}

/// Validates config text for the instance `lc run PORT` (all of it for `None`): problems in
/// sections of sources another instance serves do not stop this one, so one broken source
/// does not keep every `lc@PORT` from starting. Those come back as the second value, to be
/// shown as warnings, and their sources are left out of the config.
pub fn parse_str_for(
    text: &str,
    path: &Path,
    port: Option<u16>,
) -> Result<(Config, Vec<Problem>), ConfigError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut v = Validator::new(base);
    let (sections, syntax) = ini::parse(text);
    for e in syntax {
        v.problem(e.line, e.message);
    }
    let mut config = Config::read(&mut v, &sections, path);
    let ftp_port = config.ftp.port;
    let (mut errors, mut others): (Vec<Problem>, Vec<Problem>) =
        v.problems.into_iter().partition(|p| match &p.source {
            None => true,
            Some((_, site)) => site.served_by(port, ftp_port),
        });
    if !errors.is_empty() {
        errors.sort_by_key(|p| p.line);
        return Err(ConfigError {
            path: path.to_path_buf(),
            problems: errors,
        });
    }
    others.sort_by_key(|p| p.line);
    config.sources.retain(|s| {
        !others
            .iter()
            .any(|p| p.source.as_ref().is_some_and(|(name, _)| *name == s.name))
    });
    Ok((config, others))
}

impl Config {
    /// Every section of the file, validated, with the defaults for those it lacks.
    fn read(v: &mut Validator, sections: &[ini::Section], path: &Path) -> Config {
        let mut collector = None;
        let mut spool = None;
        let mut delivery = None;
        let mut ftp = None;
        let mut sources: Vec<Source> = Vec::new();
        let mut seen_sections: BTreeMap<&str, usize> = BTreeMap::new();
        for s in sections {
            if let Some(first) = seen_sections.insert(s.name.as_str(), s.line) {
                let message = match s.name.strip_prefix("source ") {
                    Some(name) => format!("source {name:?} is already defined at line {first}"),
                    None => format!("section [{}] already appeared at line {first}", s.name),
                };
                v.problem(s.line, message);
                continue;
            }
            match s.name.as_str() {
                "collector" => collector = Some(Collector::read(v, s)),
                "spool" => spool = Some(Spool::read(v, s)),
                "delivery" => delivery = Some(Delivery::read(v, s)),
                "ftp" => ftp = Some(Ftp::read(v, s)),
                name => match name.strip_prefix("source ") {
                    Some(src) => {
                        if let Some(source) = Source::read(v, src.trim(), s) {
                            sources.push(source);
                        }
                    }
                    None => v.problem(
                        s.line,
                        format!(
                            "unknown section [{name}]; expected [collector], [spool], [delivery], [ftp] or [source NAME]"
                        ),
                    ),
                },
            }
        }
        let empty = ini::Section {
            name: String::new(),
            line: 0,
            entries: Vec::new(),
        };
        let collector = collector.unwrap_or_else(|| Collector::read(v, &empty));
        let spool = spool.unwrap_or_else(|| Spool::read(v, &empty));
        let mut delivery = delivery.unwrap_or_else(|| Delivery::read(v, &empty));
        let ftp = ftp.unwrap_or_else(|| Ftp::read(v, &empty));
        if delivery.target == Target::Outbox(PathBuf::new()) {
            // No url: the outbox under state_dir, so `lc run` works out of the box.
            delivery.target = Target::Outbox(collector.state_dir.join("outbox"));
        }
        for s in &mut sources {
            // Sources without their own `listen` bind what the collector's says.
            s.listen.get_or_insert_with(|| collector.listen.clone());
        }
        source::cross_checks(v, &sources, ftp.port);
        source::metrics_clash(v, &collector, &ftp, &sources);
        Config {
            path: path.to_path_buf(),
            collector,
            spool,
            delivery,
            ftp,
            sources,
        }
    }

    /// The sources an instance serves: `lc run PORT` takes the syslog sources on PORT (and, when
    /// PORT is the FTP port, the FTP sources); `lc run` takes all.
    pub fn sources_for(&self, port: Option<u16>) -> Vec<Source> {
        self.sources
            .iter()
            .filter(|s| match port {
                None => true,
                Some(p) if s.receiver.is_syslog() => s.port == p,
                Some(p) => p == self.ftp.port,
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` validated: its sources (`name format receiver port`), or its problems
    /// (`line: message`), one a line.
    #[track_caller]
    pub(super) fn check(input: &str, expected: &str) {
        let got = match parse_str(input, Path::new("/etc/lc/lc.ini")) {
            Ok(c) => c
                .sources
                .iter()
                .map(|s| format!("{} {} {} {}", s.name, s.format, s.receiver.as_str(), s.port))
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => e
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.line, p.message))
                .collect::<Vec<_>>()
                .join("\n"),
        };
        assert_eq!(got, expected);
    }

    pub(super) const ASA: &str =
        "[source asa]\nformat = CISCO_ASA_SYSLOG\nreceiver = syslog-udp\nport = 514\n";

    #[test]
    fn table() {
        check("", "");
        check(ASA, "asa CISCO_ASA_SYSLOG syslog-udp 514");
        check(
            "[source asa]\nformat = CISCO_ASA_SYSLOG\nreceiver = syslog-udp\nport = 514\n\
             [source asa-tcp]\nformat = CISCO_ASA_SYSLOG\nreceiver = syslog-tcp\nport = 514\n",
            "asa CISCO_ASA_SYSLOG syslog-udp 514; asa-tcp CISCO_ASA_SYSLOG syslog-tcp 514",
        );
        check("[collector]\nmetrics_listen = 127.0.0.1:9514\n", "");
        check("[collector]\nmetrics_listen = [::1]:9514\n", "");
        check("[collector]\nmetrics_listen = 127.3.0.1:0\n", "");
        check("[collector]\nmetrics_listen =\n", "");
        check(
            "[collector]\nmetrics_listen = 0.0.0.0:9514\n",
            "2: metrics_listen \"0.0.0.0:9514\" is not a loopback address (127.0.0.0/8 or [::1]): the metrics are served to this host only",
        );
        check(
            "[collector]\nmetrics_listen = 10.0.0.5:9514\n",
            "2: metrics_listen \"10.0.0.5:9514\" is not a loopback address (127.0.0.0/8 or [::1]): the metrics are served to this host only",
        );
        check(
            "[collector]\nmetrics_listen = localhost:9514\n",
            "2: metrics_listen \"localhost:9514\" is not HOST:PORT with a loopback IP address (e.g. 127.0.0.1:9514 or [::1]:9514)",
        );
        check(
            "[collector]\nmetrics_listen = 127.0.0.1\n",
            "2: metrics_listen \"127.0.0.1\" is not HOST:PORT with a loopback IP address (e.g. 127.0.0.1:9514 or [::1]:9514)",
        );
        check("[bogus]\n", "1: unknown section [bogus]; expected [collector], [spool], [delivery], [ftp] or [source NAME]");
        check(
            "[collector]\nnmae = x\n",
            "2: unknown key \"nmae\" in [collector]; expected one of: certs_dir, handshake_timeout_secs, idle_timeout_secs, listen, log_level, max_connections, max_connections_per_ip, max_message_bytes, max_pending_bytes, metrics_dir, metrics_listen, name, run_dir, state_dir, udp_rcvbuf",
        );
        check(
            "[source a]\nformat = SQUID\nreceiver = syslog-tcp\nport = 70000\n",
            "4: port \"70000\" must be a number from 0 to 65535",
        );
        check(
            "[source a]\nformat = SQUID\nreceiver = syslog-tcp\n",
            "1: [source a] needs `port =` for syslog-tcp",
        );
        check(
            "[source a]\nformat = SQUID\nreceiver = ftp\n",
            "a SQUID ftp 0",
        );
        check("[source a]\nformat = SQUID\nreceiver = syslog-tcp\nport = 601\n[source a]\nformat = SQUID\nreceiver = syslog-udp\nport = 601\n",
            "5: source \"a\" is already defined at line 1");
        check(
            "[source a]\nformat = SQUID\nreceiver = syslog-tcp\nport = 601\n[source b]\nformat = SQUID\nreceiver = syslog-tls\nport = 601\n",
            "5: source \"b\" claims TCP port 601 already used by source \"a\" (line 1)",
        );
        check("[source bad.name]\nformat = SQUID\nreceiver = syslog-udp\nport = 1\n",
            "1: source name \"bad.name\" must match [A-Za-z0-9_-]{1,64} (it is sent as inputStreamName)");
        check("[source a]\nformat = SQUID\nreceiver = syslog-udp\nport = 1\nallow = 10.0.0.1, 10.9.1.0/16\n",
            "5: allow: \"10.9.1.0/16\" has host bits set; did you mean 10.9.0.0/16?");
        check(
            "[source a]\nformat = SQUID\nreceiver = ftp\nformat_warn_below = 101\n",
            "4: format_warn_below \"101\" must be a whole number from 0 to 100",
        );
        check(
            "[source a]\nformat = SQUID\nreceiver = ftp\nformat_warn_below = 95\n",
            "a SQUID ftp 0",
        );
        check("[source a]\nformat = SQUID\nreceiver = pigeon\nport = 1\n",
            "3: unknown receiver \"pigeon\"; expected syslog-udp, syslog-tcp, syslog-tls, ftp or ftps");
        check(
            "[spool]\nrotate_bytes = 32X\n",
            "2: rotate_bytes \"32X\" is not a size (a number with optional K, M, G or T, e.g. 64K, 32M, 32MB, 1GiB)",
        );
        check(
            "[spool]\nrotate_secs = 5 fortnights\n",
            "2: rotate_secs \"5 fortnights\" must be a duration from 1 to 31536000 seconds (a number of seconds, or with s, m, h or d: 300, 5m, 1h)",
        );
        check(
            "[spool]\nsync_secs = 0\n",
            "2: sync_secs \"0\" must be a duration from 1 to 31536000 seconds (a number of seconds, or with s, m, h or d: 300, 5m, 1h)",
        );
        // Sizes and durations as operators write them, and a file saved by Notepad.
        check(
            "\u{feff}[spool]\nrotate_bytes = 32MB\nrotate_secs = 5m\nmax_spool_bytes = 20 GiB\n[source a]\nformat = SQUID\nreceiver = ftp\n",
            "a SQUID ftp 0",
        );
        check(
            "[spool]\nrotate_bytes = 2G\nmax_spool_bytes = 1G\n",
            "3: max_spool_bytes (1073741824) must be larger than rotate_bytes (2147483648)",
        );
        check(
            "[delivery]\nurl = ftp://x\n",
            "2: url \"ftp://x\" must be dir:PATH or https://TENANT.portal.cloudappsecurity.com",
        );
        check(
            "[collector]\nlisten = 127.0.0.1, nope\n",
            "2: listen: \"nope\" is not an IP address (or * for all)",
        );
        check(
            "[collector]\n[collector]\n",
            "2: section [collector] already appeared at line 1",
        );
        check(
            "[spool]\nsync_secs = 1\nsync_secs = 2\n",
            "3: key \"sync_secs\" is set twice in [spool]",
        );
        check("[ftp]\npasswd_file =\n", "2: passwd_file must not be empty");
        check(
            "[ftp]\npassive_ports = 30000-20000\n",
            "2: passive_ports \"30000-20000\" must be FIRST-LAST (e.g. 20000-20099) with FIRST <= LAST, or 0 for any",
        );
        check(
            "[ftp]\npublic_address = collector.example\n",
            "2: public_address \"collector.example\" is not an IP address",
        );
        check(
            "[ftp]\nactive = maybe\n",
            "2: active \"maybe\" must be on or off",
        );
        check(
            "[ftp]\nmax_file_bytes = 6G\n",
            "2: max_file_bytes = 6442450944 is outside 1..=5000000000",
        );
    }

    #[test]
    fn unknown_format_lists_the_valid_ones() {
        let err = parse_str(
            "[source a]\nformat = CISCO\nreceiver = syslog-udp\nport = 1\n",
            Path::new("x.ini"),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("x.ini:2: unknown format \"CISCO\"; expected one of: BARRACUDA, "),
            "{text}"
        );
        assert!(text.contains("CISCO_ASA_SYSLOG"));
    }

    #[test]
    fn every_problem_is_reported() {
        let err = parse_str(
            "[collector]\nbad = 1\n[source a]\nformat = X\nreceiver = syslog-udp\nport = x\n",
            Path::new("x.ini"),
        )
        .unwrap_err();
        let lines: Vec<usize> = err.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, vec![2, 4, 6]);
    }

    #[test]
    fn a_broken_config_still_names_its_folders() {
        let dir = crate::testing::fresh_dir("lenient");
        let path = dir.join("lc.ini");
        std::fs::write(
            &path,
            "[collector]\nrun_dir = run\nbogus = 1\n[source x]\nformat = NOPE\n",
        )
        .unwrap();
        assert!(load(&path).is_err());
        assert_eq!(
            folders_leniently(&path),
            (dir.join("run"), PathBuf::from("/var/lib/lc"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            folders_leniently(&path),
            (PathBuf::from("/run/lc"), PathBuf::from("/var/lib/lc"))
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_folder() {
        let c = parse_str(
            "[collector]\nstate_dir = ../var/state\n[delivery]\nurl = dir:out\n[ftp]\npasswd_file = ftp.passwd\n",
            Path::new("/opt/lc/examples/lc.ini"),
        )
        .unwrap();
        assert_eq!(
            c.ftp.passwd_file,
            PathBuf::from("/opt/lc/examples/ftp.passwd")
        );
        assert_eq!(
            c.collector.state_dir,
            PathBuf::from("/opt/lc/examples/../var/state")
        );
        assert_eq!(
            c.delivery.target,
            Target::Outbox(PathBuf::from("/opt/lc/examples/out"))
        );
    }

    /// `parse_str_for(input, port)`: the sources the instance serves and the warnings, or
    /// the errors.
    #[track_caller]
    fn check_for(input: &str, port: u16, expected: &str) {
        let got = match parse_str_for(input, Path::new("x.ini"), Some(port)) {
            Ok((c, warnings)) => {
                let mut out: Vec<String> = c
                    .sources_for(Some(port))
                    .into_iter()
                    .map(|s| s.name)
                    .collect();
                for w in warnings {
                    out.push(format!("warning {}: {}", w.line, w.message));
                }
                out.join("; ")
            }
            Err(e) => e
                .problems
                .iter()
                .map(|p| format!("error {}: {}", p.line, p.message))
                .collect::<Vec<_>>()
                .join("; "),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn problems_of_other_instances_are_warnings() {
        const A514: &str = "[source a]\nformat = SQUID\nreceiver = syslog-udp\nport = 514\n";
        const F: &str = "[source f]\nformat = SQUID\nreceiver = ftp\n";
        let t6514 = |extra: &str| {
            format!(
                "{A514}{F}[source t]\nformat = SQUID\nreceiver = syslog-tls\nport = 6514\n{extra}"
            )
        };
        check_for(&t6514(""), 514, "a");
        check_for(&t6514(""), 21, "f");
        check_for(&t6514(""), 6514, "t");
        // A broken source on 6514: a warning for the others, an error for its own instance.
        let broken = t6514("allow = 10.0.0.0/33\n");
        check_for(
            &broken,
            514,
            "a; warning 12: allow: \"10.0.0.0/33\" has a prefix length outside 0..=32",
        );
        check_for(
            &broken,
            21,
            "f; warning 12: allow: \"10.0.0.0/33\" has a prefix length outside 0..=32",
        );
        check_for(
            &broken,
            6514,
            "error 12: allow: \"10.0.0.0/33\" has a prefix length outside 0..=32",
        );
        // A broken FTP source is the FTP port's.
        let ftp = format!("{A514}[source f]\nformat = SQUID\nreceiver = ftp\nrender = raw\n");
        check_for(&ftp, 514, "a; warning 8: `render` is for syslog receivers; ftp sources deliver the uploaded file's own lines");
        check_for(&ftp, 21, "error 8: `render` is for syslog receivers; ftp sources deliver the uploaded file's own lines");
        // An unknown receiver: the port still says whose it is.
        let typo =
            format!("{A514}[source t]\nformat = SQUID\nreceiver = syslog-tpc\nport = 6514\n");
        check_for(&typo, 514, "a; warning 7: unknown receiver \"syslog-tpc\"; expected syslog-udp, syslog-tcp, syslog-tls, ftp or ftps");
        check_for(&typo, 6514, "error 7: unknown receiver \"syslog-tpc\"; expected syslog-udp, syslog-tcp, syslog-tls, ftp or ftps");
        // A port that is no number: no instance serves it, every instance warns.
        let noport =
            format!("{A514}[source t]\nformat = SQUID\nreceiver = syslog-tcp\nport = 65a\n");
        check_for(
            &noport,
            514,
            "a; warning 8: port \"65a\" must be a number from 0 to 65535",
        );
        // Two sources on one port: that port's problem.
        let clash = format!("{A514}[source b]\nformat = SQUID\nreceiver = syslog-udp\nport = 601\n[source c]\nformat = SQUID\nreceiver = syslog-udp\nport = 601\n");
        check_for(
            &clash,
            514,
            "a; warning 9: source \"c\" claims UDP port 601 already used by source \"b\" (line 5)",
        );
        check_for(
            &clash,
            601,
            "error 9: source \"c\" claims UDP port 601 already used by source \"b\" (line 5)",
        );
        // What is not in a source section is every instance's.
        let global = format!("[spool]\nrotate_bytes = lots\n{A514}");
        check_for(&global, 514, "error 2: rotate_bytes \"lots\" is not a size (a number with optional K, M, G or T, e.g. 64K, 32M, 32MB, 1GiB)");
        check_for(&global, 6514, "error 2: rotate_bytes \"lots\" is not a size (a number with optional K, M, G or T, e.g. 64K, 32M, 32MB, 1GiB)");
        // Without a port (`lc run`, `lc config check`) every problem is an error.
        assert!(parse_str(&broken, Path::new("x.ini")).is_err());
    }

    #[test]
    fn sources_for_a_port() {
        let c = parse_str(
            "[source a]\nformat = SQUID\nreceiver = syslog-udp\nport = 514\n[source b]\nformat = SQUID\nreceiver = syslog-tcp\nport = 601\n[source c]\nformat = SQUID\nreceiver = ftp\n",
            Path::new("x.ini"),
        )
        .unwrap();
        let names = |p| {
            c.sources_for(p)
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Some(514)), ["a"]);
        assert_eq!(names(Some(21)), ["c"]);
        assert_eq!(names(None), ["a", "b", "c"]);
        assert!(names(Some(9)).is_empty());
    }
}
