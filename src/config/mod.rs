//! lc.ini: from text to a validated [`Config`].
//!
//! `ini.rs` tokenizes; this module knows every section and key of DESIGN.md's config and turns
//! them into typed values, collecting every problem with its line instead of stopping at the
//! first. Reading the file is separate (`load`) from validating text (`parse_str`), so tests feed
//! strings. Nothing here touches sockets or the spool; relative paths are resolved against the
//! config file's folder but not checked for existence.

pub mod formats;
pub mod ini;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::allow::{canonical, AllowList, Cidr};
pub use crate::syslog::frame::FramingMode;
pub use crate::syslog::render::Render;

pub const DEFAULT_PATH: &str = "/etc/lc/lc.ini";

/// Defaults for the receive limits (DESIGN.md "Limits on everything").
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Incomplete frames of all connections together: 1,024 connections each holding a whole
/// maximal message, where `max_connections` x `max_message_bytes` would be 256 MiB.
pub const DEFAULT_MAX_PENDING_BYTES: usize = 64 << 20;
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 1024;
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// What lc asks the kernel for on UDP sockets; capped by net.core.rmem_max unless lc may force it.
pub const DEFAULT_UDP_RCVBUF: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Receiver {
    SyslogUdp,
    SyslogTcp,
    SyslogTls,
    Ftp,
    Ftps,
}

impl Receiver {
    pub fn parse(s: &str) -> Option<Receiver> {
        Some(match s {
            "syslog-udp" => Receiver::SyslogUdp,
            "syslog-tcp" => Receiver::SyslogTcp,
            "syslog-tls" => Receiver::SyslogTls,
            "ftp" => Receiver::Ftp,
            "ftps" => Receiver::Ftps,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Receiver::SyslogUdp => "syslog-udp",
            Receiver::SyslogTcp => "syslog-tcp",
            Receiver::SyslogTls => "syslog-tls",
            Receiver::Ftp => "ftp",
            Receiver::Ftps => "ftps",
        }
    }

    /// UDP or a stream transport: two sources may share a port number across these.
    pub fn is_udp(self) -> bool {
        self == Receiver::SyslogUdp
    }

    pub fn is_syslog(self) -> bool {
        matches!(
            self,
            Receiver::SyslogUdp | Receiver::SyslogTcp | Receiver::SyslogTls
        )
    }
}

/// Addresses to bind: `*` is every IPv4 and IPv6 address (one dual-stack socket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Any,
    Addrs(Vec<IpAddr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub format: String,
    pub receiver: Receiver,
    /// Syslog receivers only; 0 asks the kernel for a free port (tests).
    pub port: u16,
    pub allow: AllowList,
    pub allow_cn: Vec<String>,
    /// The source's own `listen`, or after validation the collector's.
    pub listen: Option<Listen>,
    /// How a syslog message becomes a spool line (FTP sources keep the file's own lines).
    pub render: Render,
    /// How TCP and TLS streams are cut into messages.
    pub framing: FramingMode,
    /// Percent of recent lines that must match `format` before the source warns (0-100).
    pub format_warn_below: u8,
    /// `proxy_protocol = on`: every connection must start with a PROXY protocol header and
    /// come from one of these balancers (`trusted_proxies`); `None` when off.
    pub proxy_protocol: Option<AllowList>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collector {
    pub name: String,
    pub state_dir: PathBuf,
    pub run_dir: PathBuf,
    pub certs_dir: PathBuf,
    pub metrics_dir: Option<PathBuf>,
    /// A loopback address serving `/metrics` and `/health` (`httpd`); `None` = off.
    pub metrics_listen: Option<SocketAddr>,
    pub log_level: log::LevelFilter,
    pub listen: Listen,
    pub max_message_bytes: usize,
    /// Bytes of incomplete frames all stream connections of an instance may hold at once.
    pub max_pending_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub idle_timeout: Duration,
    /// A TLS client must finish its handshake within this.
    pub handshake_timeout: Duration,
    pub udp_rcvbuf: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spool {
    pub rotate_bytes: u64,
    pub rotate_secs: Duration,
    pub sync_secs: Duration,
    pub max_spool_bytes: u64,
    pub min_free_bytes: u64,
    pub backup_keep: usize,
}

/// Where sealed segments go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Atomic rename into a folder (data diodes, offline transfer, the default).
    Outbox(PathBuf),
    /// A Cloud Discovery console, `https://TENANT.REGION.portal.cloudappsecurity.com`.
    Console(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub target: Target,
    pub token_file: PathBuf,
    /// `http://[user:pass@]host:port` or `https://...`; `None` = from HTTPS_PROXY, or direct.
    /// A secret: it prints with its password as `***`.
    pub proxy: Option<crate::secret::ProxyUrl>,
    /// Hosts reached without the proxy; `None` = from NO_PROXY.
    pub no_proxy: Option<Vec<String>>,
    /// Extra trusted roots (PEM), added to the built-in ones.
    pub ca_file: Option<PathBuf>,
    pub api_calls_per_min: u32,
    /// Delivery failing this long is critical for `lc status --check` and `/health` (before:
    /// a warning).
    pub critical_after: Duration,
    /// Connect, answer and stall timeout of each HTTP step.
    pub timeout: Duration,
    /// Compressed bytes in one PUT: segments are sealed in parts of this size, cut at lines.
    pub max_upload_bytes: u64,
}

/// `[ftp] tls`: whether FTPS (AUTH TLS) is offered, and whether it is a must.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Off,
    Optional,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ftp {
    pub port: u16,
    /// FTP users, `user:PHC` lines (`ftp/passwd.rs`); `lc passwd` writes it.
    pub passwd_file: PathBuf,
    /// Passive data ports, inclusive; `(0, 0)` lets the kernel choose (tests).
    pub passive_ports: (u16, u16),
    /// Advertised in PASV replies; `None` = the control connection's local address.
    pub public_address: Option<IpAddr>,
    pub tls: TlsMode,
    /// PORT/EPRT (only ever back to the control peer).
    pub active: bool,
    /// The largest file one STOR may write (the API takes files under 5 GB).
    pub max_file_bytes: u64,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// A control connection with no command for this long is closed.
    pub idle_timeout: Duration,
    /// Failed logins from one address before it is locked out for `lockout`.
    pub max_login_failures: u32,
    pub lockout: Duration,
    /// `proxy_protocol = on`: every control and passive data connection starts with a PROXY
    /// protocol header, from these balancers only.
    pub proxy_protocol: Option<AllowList>,
}

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

/// Where a source listens, as far as its (maybe broken) section says: which instance a
/// problem in it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// A syslog receiver on this port (or a section with this `port` and no known receiver).
    Port(u16),
    /// A folder of the FTP server: the instance on `[ftp] port`.
    Ftp,
    /// Neither receiver nor port could be read: no `lc run PORT` serves it, and each
    /// warns about it (`lc run` and `lc config check` without a port refuse it).
    Unknown,
}

impl Site {
    /// Whether the instance `lc run PORT` serves this source (`lc run` serves all).
    pub fn served_by(self, port: Option<u16>, ftp_port: u16) -> bool {
        match (self, port) {
            (_, None) => true,
            (Site::Unknown, Some(_)) => false,
            (Site::Port(p), Some(q)) => p == q,
            (Site::Ftp, Some(q)) => q == ftp_port,
        }
    }
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
    let mut v = Validator {
        base,
        problems: Vec::new(),
    };
    let (sections, syntax) = ini::parse(text);
    for e in syntax {
        v.problem(e.line, e.message);
    }
    let mut config = v.config(&sections, path);
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

struct Validator {
    base: PathBuf,
    problems: Vec<Problem>,
}

/// The entries of one section, taken key by key; what is left at the end is unknown.
struct Keys<'a> {
    section: &'a ini::Section,
    taken: HashSet<&'a str>,
}

impl<'a> Keys<'a> {
    fn new(section: &'a ini::Section) -> Self {
        Keys {
            section,
            taken: HashSet::new(),
        }
    }

    fn get(&mut self, key: &'a str) -> Option<&'a ini::Entry> {
        self.taken.insert(key);
        // The last assignment wins; duplicates are reported by `finish`.
        self.section.entries.iter().rev().find(|e| e.key == key)
    }

    fn finish(self, v: &mut Validator) {
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
    fn problem(&mut self, line: usize, message: String) {
        self.problems.push(Problem {
            line,
            message,
            source: None,
        });
    }

    /// Marks the problems from `from` on as those of source `name` at `site`.
    fn blame(&mut self, from: usize, name: &str, site: Site) {
        for p in &mut self.problems[from..] {
            p.source.get_or_insert_with(|| (name.to_string(), site));
        }
    }

    fn config(&mut self, sections: &[ini::Section], path: &Path) -> Config {
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
                self.problem(s.line, message);
                continue;
            }
            match s.name.as_str() {
                "collector" => collector = Some(self.collector(s)),
                "spool" => spool = Some(self.spool(s)),
                "delivery" => delivery = Some(self.delivery(s)),
                "ftp" => ftp = Some(self.ftp(s)),
                name => match name.strip_prefix("source ") {
                    Some(src) => {
                        if let Some(source) = self.source(src.trim(), s) {
                            sources.push(source);
                        }
                    }
                    None => self.problem(
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
        let collector = collector.unwrap_or_else(|| self.collector(&empty));
        let spool = spool.unwrap_or_else(|| self.spool(&empty));
        let mut delivery = delivery.unwrap_or_else(|| self.delivery(&empty));
        let ftp = ftp.unwrap_or_else(|| self.ftp(&empty));
        if delivery.target == Target::Outbox(PathBuf::new()) {
            // No url: the outbox under state_dir, so `lc run` works out of the box.
            delivery.target = Target::Outbox(collector.state_dir.join("outbox"));
        }
        for s in &mut sources {
            // Sources without their own `listen` bind what the collector's says.
            s.listen.get_or_insert_with(|| collector.listen.clone());
        }
        self.cross_checks(&sources, &spool, ftp.port);
        Config {
            path: path.to_path_buf(),
            collector,
            spool,
            delivery,
            ftp,
            sources,
        }
    }

    fn collector(&mut self, s: &ini::Section) -> Collector {
        let mut k = Keys::new(s);
        let name = match k.get("name") {
            Some(e) if valid_name(&e.value) => e.value.clone(),
            Some(e) => {
                self.problem(
                    e.line,
                    format!(
                        "collector name {:?} must match [A-Za-z0-9_-]{{1,64}}",
                        e.value
                    ),
                );
                String::new()
            }
            None => "LogCollector1".to_string(),
        };
        let state_dir = self.path(k.get("state_dir"), "/var/lib/lc");
        let run_dir = self.path(k.get("run_dir"), "/run/lc");
        let certs_dir = self.path(k.get("certs_dir"), "/etc/lc/certs");
        let metrics_dir = match k.get("metrics_dir") {
            Some(e) if !e.value.is_empty() => Some(self.base.join(&e.value)),
            _ => None,
        };
        let metrics_listen = self.metrics_listen(k.get("metrics_listen"));
        let log_level = match k.get("log_level") {
            None => log::LevelFilter::Info,
            Some(e) => match e.value.parse::<log::LevelFilter>() {
                Ok(l) => l,
                Err(_) => {
                    self.problem(
                        e.line,
                        format!(
                            "log_level {:?} is not one of off, error, warn, info, debug, trace",
                            e.value
                        ),
                    );
                    log::LevelFilter::Info
                }
            },
        };
        let listen = self.listen(k.get("listen")).unwrap_or(Listen::Any);
        let max_message_bytes = self.size(
            k.get("max_message_bytes"),
            DEFAULT_MAX_MESSAGE_BYTES as u64,
            64,
            16 << 20,
        ) as usize;
        let max_pending_bytes = self.size(
            k.get("max_pending_bytes"),
            DEFAULT_MAX_PENDING_BYTES as u64,
            64 << 10,
            1 << 40,
        ) as usize;
        let max_connections = self.number(
            k.get("max_connections"),
            DEFAULT_MAX_CONNECTIONS as u64,
            1,
            1_000_000,
        ) as usize;
        let max_connections_per_ip = self.number(
            k.get("max_connections_per_ip"),
            DEFAULT_MAX_CONNECTIONS_PER_IP as u64,
            1,
            1_000_000,
        ) as usize;
        let idle_timeout = self.secs(k.get("idle_timeout_secs"), DEFAULT_IDLE_TIMEOUT, 1);
        let handshake_timeout =
            self.secs(k.get("handshake_timeout_secs"), Duration::from_secs(10), 1);
        let udp_rcvbuf = self.size(
            k.get("udp_rcvbuf"),
            DEFAULT_UDP_RCVBUF as u64,
            4096,
            1 << 30,
        ) as usize;
        k.finish(self);
        Collector {
            name,
            state_dir,
            run_dir,
            certs_dir,
            metrics_dir,
            metrics_listen,
            log_level,
            listen,
            max_message_bytes,
            max_pending_bytes,
            max_connections,
            max_connections_per_ip,
            idle_timeout,
            handshake_timeout,
            udp_rcvbuf,
        }
    }

    fn spool(&mut self, s: &ini::Section) -> Spool {
        let mut k = Keys::new(s);
        let rotate_bytes = self.size(k.get("rotate_bytes"), 32 << 20, 4096, 4 << 30);
        let rotate_secs = self.secs(k.get("rotate_secs"), Duration::from_secs(300), 1);
        let sync_secs = self.secs(k.get("sync_secs"), Duration::from_secs(1), 1);
        let max_entry = k.get("max_spool_bytes");
        let max_spool_bytes = self.size(max_entry, 20 << 30, 1 << 20, u64::MAX);
        let min_free_bytes = self.size(k.get("min_free_bytes"), 1 << 30, 0, u64::MAX);
        let backup_keep = self.number(k.get("backup_keep"), 20, 0, 100_000) as usize;
        if rotate_bytes >= max_spool_bytes {
            self.problem(
                max_entry.map_or(s.line, |e| e.line),
                format!(
                    "max_spool_bytes ({max_spool_bytes}) must be larger than rotate_bytes ({rotate_bytes})"
                ),
            );
        }
        k.finish(self);
        Spool {
            rotate_bytes,
            rotate_secs,
            sync_secs,
            max_spool_bytes,
            min_free_bytes,
            backup_keep,
        }
    }

    fn delivery(&mut self, s: &ini::Section) -> Delivery {
        let mut k = Keys::new(s);
        let target = match k.get("url") {
            None => Target::Outbox(PathBuf::new()),
            Some(e) if e.value.is_empty() => Target::Outbox(PathBuf::new()),
            Some(e) => {
                if let Some(dir) = e.value.strip_prefix("dir:") {
                    if dir.is_empty() {
                        self.problem(
                            e.line,
                            "url \"dir:\" needs a folder, e.g. dir:/var/lib/lc/outbox".into(),
                        );
                    }
                    Target::Outbox(self.base.join(dir))
                } else if let Some(host) = e.value.strip_prefix("https://") {
                    let host = host.trim_end_matches('/');
                    if host.is_empty() || host.contains('/') || host.contains('@') {
                        self.problem(
                            e.line,
                            format!("url {:?} must be https://HOST[:PORT] with no path", e.value),
                        );
                    }
                    Target::Console(format!("https://{host}"))
                } else {
                    self.problem(
                        e.line,
                        format!("url {:?} must be dir:PATH or https://TENANT.portal.cloudappsecurity.com", e.value),
                    );
                    Target::Outbox(PathBuf::new())
                }
            }
        };
        let token_file = self.path(k.get("token_file"), "/etc/lc/token");
        let proxy = match k.get("proxy") {
            Some(e) if !e.value.is_empty() => {
                if let Err(msg) = check_proxy_url(&e.value) {
                    self.problem(e.line, msg);
                }
                Some(crate::secret::ProxyUrl::new(e.value.clone()))
            }
            _ => None,
        };
        let no_proxy = k.get("no_proxy").filter(|e| !e.value.is_empty()).map(|e| {
            e.value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
        let ca_file = k
            .get("ca_file")
            .filter(|e| !e.value.is_empty())
            .map(|e| self.base.join(&e.value));
        let api_calls_per_min = self.number(k.get("api_calls_per_min"), 20, 1, 30) as u32;
        let timeout = self.secs(k.get("timeout_secs"), Duration::from_secs(60), 1);
        let critical_after = self.secs(
            k.get("critical_after_secs"),
            Duration::from_secs(crate::status::FAILING_CRITICAL_SECS),
            0,
        );
        // The API takes one PUT under 64 MB; a part may pass this by one 256 KiB chunk.
        let max_upload_bytes = self.size(k.get("max_upload_bytes"), 56 << 20, 64 << 10, 60 << 20);
        k.finish(self);
        Delivery {
            target,
            token_file,
            proxy,
            no_proxy,
            ca_file,
            api_calls_per_min,
            critical_after,
            timeout,
            max_upload_bytes,
        }
    }

    fn ftp(&mut self, s: &ini::Section) -> Ftp {
        let mut k = Keys::new(s);
        let port = self.port(k.get("port"), 21);
        let passwd_file = self.path(k.get("passwd_file"), "/etc/lc/ftp.passwd");
        let passive_ports = match k.get("passive_ports") {
            None => (20000, 20099),
            Some(e) => match parse_port_range(&e.value) {
                Some(r) => r,
                None => {
                    self.problem(
                        e.line,
                        format!(
                            "passive_ports {:?} must be FIRST-LAST (e.g. 20000-20099) with FIRST <= LAST, or 0 for any",
                            e.value
                        ),
                    );
                    (20000, 20099)
                }
            },
        };
        let public_address = match k.get("public_address") {
            Some(e) if !e.value.is_empty() => match e.value.parse::<IpAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    self.problem(
                        e.line,
                        format!("public_address {:?} is not an IP address", e.value),
                    );
                    None
                }
            },
            _ => None,
        };
        let tls = match k.get("tls") {
            None => TlsMode::Optional,
            Some(e) => match e.value.as_str() {
                "off" => TlsMode::Off,
                "optional" => TlsMode::Optional,
                "required" => TlsMode::Required,
                v => {
                    self.problem(
                        e.line,
                        format!("tls {v:?} must be off, optional or required"),
                    );
                    TlsMode::Optional
                }
            },
        };
        let active = match k.get("active") {
            None => true,
            Some(e) => match e.value.as_str() {
                "on" | "yes" | "true" => true,
                "off" | "no" | "false" => false,
                v => {
                    self.problem(e.line, format!("active {v:?} must be on or off"));
                    true
                }
            },
        };
        let max_file_bytes = self.size(k.get("max_file_bytes"), 5_000_000_000, 1, 5_000_000_000);
        let max_connections = self.number(k.get("max_connections"), 100, 1, 100_000) as usize;
        let max_connections_per_ip =
            self.number(k.get("max_connections_per_ip"), 10, 1, 100_000) as usize;
        let idle_timeout = self.secs(k.get("idle_timeout_secs"), Duration::from_secs(900), 1);
        let max_login_failures = self.number(k.get("max_login_failures"), 5, 1, 1000) as u32;
        let lockout = self.secs(k.get("lockout_secs"), Duration::from_secs(300), 1);
        let proxy_on = match k.get("proxy_protocol") {
            None => false,
            Some(e) => match e.value.as_str() {
                "on" => true,
                "off" => false,
                v => {
                    self.problem(
                        e.line,
                        format!("proxy_protocol {v:?} is not one of off, on"),
                    );
                    false
                }
            },
        };
        let proxy_protocol =
            self.proxy_protocol(s.line, "[ftp]", proxy_on, k.get("trusted_proxies"));
        k.finish(self);
        Ftp {
            port,
            passwd_file,
            passive_ports,
            public_address,
            tls,
            active,
            max_file_bytes,
            max_connections,
            max_connections_per_ip,
            idle_timeout,
            max_login_failures,
            lockout,
            proxy_protocol,
        }
    }

    fn source(&mut self, name: &str, s: &ini::Section) -> Option<Source> {
        let from = self.problems.len();
        let source = self.source_keys(name, s);
        let site = match &source {
            Some(src) if src.receiver.is_syslog() => Site::Port(src.port),
            Some(_) => Site::Ftp,
            None => {
                // No receiver: the port says whose it is, if it is a number.
                let port = s.entries.iter().rev().find(|e| e.key == "port");
                match port.map(|e| e.value.parse::<u16>()) {
                    Some(Ok(p)) => Site::Port(p),
                    _ => Site::Unknown,
                }
            }
        };
        // A syslog source whose port is not a number is no instance's.
        let site = match (site, s.entries.iter().rev().find(|e| e.key == "port")) {
            (Site::Port(_), Some(e)) if e.value.parse::<u16>().is_err() => Site::Unknown,
            (site, _) => site,
        };
        self.blame(from, name, site);
        source
    }

    fn source_keys(&mut self, name: &str, s: &ini::Section) -> Option<Source> {
        let mut k = Keys::new(s);
        if !valid_name(name) {
            self.problem(
                s.line,
                format!("source name {name:?} must match [A-Za-z0-9_-]{{1,64}} (it is sent as inputStreamName)"),
            );
        }
        let format = match k.get("format") {
            None => {
                self.problem(s.line, format!("[source {name}] needs `format =`"));
                String::new()
            }
            Some(e) if formats::is_known(&e.value) => e.value.clone(),
            Some(e) => {
                self.problem(
                    e.line,
                    format!(
                        "unknown format {:?}; expected one of: {}",
                        e.value,
                        formats::FORMATS.join(", ")
                    ),
                );
                String::new()
            }
        };
        let receiver = match k.get("receiver") {
            None => {
                self.problem(s.line, format!("[source {name}] needs `receiver =`"));
                None
            }
            Some(e) => match Receiver::parse(&e.value) {
                Some(r) => Some(r),
                None => {
                    self.problem(
                        e.line,
                        format!(
                            "unknown receiver {:?}; expected syslog-udp, syslog-tcp, syslog-tls, ftp or ftps",
                            e.value
                        ),
                    );
                    None
                }
            },
        };
        let port_entry = k.get("port");
        let port = match (receiver, port_entry) {
            (Some(r), Some(e)) if !r.is_syslog() => {
                self.problem(
                    e.line,
                    format!(
                        "`port` is for syslog receivers; {} sources use [ftp] port",
                        r.as_str()
                    ),
                );
                0
            }
            (Some(r), None) if r.is_syslog() => {
                self.problem(
                    s.line,
                    format!("[source {name}] needs `port =` for {}", r.as_str()),
                );
                0
            }
            (_, e) => self.port(e, 0),
        };
        let allow = self.cidrs(k.get("allow"));
        let allow_cn = match k.get("allow_cn") {
            None => Vec::new(),
            Some(e) => e
                .value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        };
        let listen = self.listen(k.get("listen"));
        let render = self.syslog_choice(receiver, k.get("render"), Render::parse, Render::Vendor);
        let framing = self.syslog_choice(
            receiver,
            k.get("framing"),
            FramingMode::parse,
            FramingMode::Auto,
        );
        let format_warn_below = self.number(k.get("format_warn_below"), 90, 0, 100) as u8;
        let proxy_protocol = self.syslog_choice(
            receiver,
            k.get("proxy_protocol"),
            |v| match v {
                "on" => Ok(true),
                "off" => Ok(false),
                _ => Err("off, on"),
            },
            false,
        );
        if proxy_protocol && receiver == Some(Receiver::SyslogUdp) {
            self.problem(
                s.line,
                format!("[source {name}] proxy_protocol is for syslog-tcp and syslog-tls (a balancer must not carry UDP syslog)"),
            );
        }
        let proxy_protocol = self.proxy_protocol(
            s.line,
            &format!("[source {name}]"),
            proxy_protocol,
            k.get("trusted_proxies"),
        );
        k.finish(self);
        Some(Source {
            name: name.to_string(),
            format,
            receiver: receiver?,
            port,
            allow,
            allow_cn,
            listen,
            render,
            framing,
            format_warn_below,
            proxy_protocol,
            line: s.line,
        })
    }

    /// `proxy_protocol` (already read: `on`) and `trusted_proxies` of the section `what`
    /// (`[ftp]`, `[source NAME]`) at line `at`: the balancers to take headers from, if on.
    fn proxy_protocol(
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
    fn cidrs(&mut self, e: Option<&ini::Entry>) -> AllowList {
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
    fn syslog_choice<T: Copy>(
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

    fn cross_checks(&mut self, sources: &[Source], _spool: &Spool, ftp_port: u16) {
        let mut ports: BTreeMap<(bool, u16), (&str, usize)> = BTreeMap::new();
        for s in sources {
            if !s.receiver.is_syslog() || s.port == 0 {
                continue;
            }
            let proto = if s.receiver.is_udp() { "UDP" } else { "TCP" };
            let from = self.problems.len();
            if let Some((other, line)) =
                ports.insert((s.receiver.is_udp(), s.port), (&s.name, s.line))
            {
                self.problem(
                    s.line,
                    format!("source {:?} claims {proto} port {} already used by source {other:?} (line {line})", s.name, s.port),
                );
            }
            if !s.receiver.is_udp()
                && s.port == ftp_port
                && sources.iter().any(|o| !o.receiver.is_syslog())
            {
                self.problem(
                    s.line,
                    format!(
                        "source {:?} claims TCP port {} which the FTP server uses",
                        s.name, s.port
                    ),
                );
            }
            self.blame(from, &s.name, Site::Port(s.port));
        }
    }

    fn path(&mut self, e: Option<&ini::Entry>, default: &str) -> PathBuf {
        match e {
            Some(e) if !e.value.is_empty() => self.base.join(&e.value),
            Some(e) => {
                self.problem(e.line, format!("{} must not be empty", e.key));
                PathBuf::from(default)
            }
            None => PathBuf::from(default),
        }
    }

    fn listen(&mut self, e: Option<&ini::Entry>) -> Option<Listen> {
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
    fn metrics_listen(&mut self, e: Option<&ini::Entry>) -> Option<SocketAddr> {
        let e = e.filter(|e| !e.value.is_empty())?;
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

    fn port(&mut self, e: Option<&ini::Entry>, default: u16) -> u16 {
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

    fn size(&mut self, e: Option<&ini::Entry>, default: u64, min: u64, max: u64) -> u64 {
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

    fn number(&mut self, e: Option<&ini::Entry>, default: u64, min: u64, max: u64) -> u64 {
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

    fn secs(&mut self, e: Option<&ini::Entry>, default: Duration, min: u64) -> Duration {
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

/// `FIRST-LAST` inclusive, or `0` for a port the kernel chooses.
fn parse_port_range(v: &str) -> Option<(u16, u16)> {
    if v == "0" {
        return Some((0, 0));
    }
    let (a, b) = v.split_once('-')?;
    let (a, b) = (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?);
    (a > 0 && a <= b).then_some((a, b))
}

/// `http://[user:pass@]host:port` or `https://...`; the error does not repeat the URL, which
/// may hold a password.
pub fn check_proxy_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("proxy must start with http:// or https://")?;
    let host_port = rest.trim_end_matches('/').rsplit('@').next().unwrap_or("");
    // A port that is not a number is most often a password cut short (by ` ;` read as a
    // comment): `http://user:pa ;ss@host` leaves `user:pa` as host and port.
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let port_ok = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').is_some_and(|(_, after)| {
            after.is_empty() || after.strip_prefix(':').is_some_and(digits)
        }),
        None => host_port.rsplit_once(':').is_none_or(|(_, p)| digits(p)),
    };
    if host_port.is_empty() || host_port.contains('/') || !port_ok {
        return Err("proxy must be http(s)://[user:pass@]host:port (a password with ` ;` or ` #` in it needs the value in double quotes)".into());
    }
    Ok(())
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

impl Config {
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

    /// Validates `input` and renders the outcome as one string: the sources on success, or
    /// every problem as `LINE: message` on failure.
    #[track_caller]
    fn check(input: &str, expected: &str) {
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

    const ASA: &str =
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
    fn proxy_protocol() {
        let tcp = "[source t]\nformat = SQUID\nreceiver = syslog-tcp\nport = 514\n";
        check(
            &format!("{tcp}proxy_protocol = on\ntrusted_proxies = 10.0.0.5, 10.1.0.0/16\n"),
            "t SQUID syslog-tcp 514",
        );
        check(
            &format!("{tcp}proxy_protocol = on\n"),
            "1: [source t] proxy_protocol = on needs trusted_proxies (the load balancers' addresses)",
        );
        check(
            &format!("{tcp}trusted_proxies = 10.0.0.5\n"),
            "5: trusted_proxies is used only with proxy_protocol = on",
        );
        check(
            &format!("{tcp}proxy_protocol = yes\n"),
            "5: proxy_protocol \"yes\" is not one of off, on",
        );
        check(
            &format!("{tcp}proxy_protocol = on\ntrusted_proxies = 10.0.0.0/33\n"),
            "6: trusted_proxies: \"10.0.0.0/33\" has a prefix length outside 0..=32",
        );
        check(
            &format!("{ASA}proxy_protocol = on\ntrusted_proxies = 10.0.0.5\n"),
            "1: [source asa] proxy_protocol is for syslog-tcp and syslog-tls (a balancer must not carry UDP syslog)",
        );
        // FTP sources are behind the [ftp] server's setting, not their own.
        check(
            "[source f]\nformat = SQUID\nreceiver = ftp\nproxy_protocol = on\n",
            "4: `proxy_protocol` is for syslog receivers; ftp sources deliver the uploaded file's own lines",
        );
        check(
            "[ftp]\nproxy_protocol = on\ntrusted_proxies = 10.0.0.5\n",
            "",
        );
        check(
            "[ftp]\nproxy_protocol = on\n",
            "1: [ftp] proxy_protocol = on needs trusted_proxies (the load balancers' addresses)",
        );
        check(
            "[ftp]\nproxy_protocol = off\ntrusted_proxies = 10.0.0.5\n",
            "3: trusted_proxies is used only with proxy_protocol = on",
        );
        check(
            "[ftp]\nproxy_protocol = v2\n",
            "2: proxy_protocol \"v2\" is not one of off, on",
        );
        check(
            "[ftp]\nproxy_protocol = on\ntrusted_proxies = 10.0.0.0/8, nope\n",
            "3: trusted_proxies: \"nope\" is not an IP address or CIDR block",
        );
        let c = parse_str(
            "[ftp]\nproxy_protocol = on\ntrusted_proxies = 10.0.0.5, 10.1.0.0/16\n",
            Path::new("/etc/lc/lc.ini"),
        )
        .unwrap();
        let trusted = c.ftp.proxy_protocol.expect("on");
        assert!(trusted.allows("10.1.2.3".parse().unwrap()));
        assert!(!trusted.allows("10.0.0.6".parse().unwrap()));
        let c = parse_str(
            &format!("{tcp}proxy_protocol = on\ntrusted_proxies = 10.0.0.5\n"),
            Path::new("/etc/lc/lc.ini"),
        )
        .unwrap();
        let trusted = c.sources[0].proxy_protocol.as_ref().unwrap();
        assert!(trusted.allows("10.0.0.5".parse().unwrap()));
        assert!(!trusted.allows("10.0.0.6".parse().unwrap()));
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

    #[test]
    fn ftp_defaults() {
        let c = parse_str("", Path::new("/opt/lc/lc.ini")).unwrap();
        let passwd_file = PathBuf::from("/etc/lc/ftp.passwd");
        assert_eq!(
            c.ftp,
            Ftp {
                port: 21,
                passwd_file,
                passive_ports: (20000, 20099),
                public_address: None,
                tls: TlsMode::Optional,
                active: true,
                max_file_bytes: 5_000_000_000,
                max_connections: 100,
                max_connections_per_ip: 10,
                idle_timeout: Duration::from_secs(900),
                max_login_failures: 5,
                lockout: Duration::from_secs(300),
                proxy_protocol: None,
            }
        );
    }

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
