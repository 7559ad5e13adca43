//! Command-line parsing with lexopt: raw arguments to a [`Command`], nothing more. Reading the
//! config and acting on the command is `main.rs`'s job.

use std::ffi::OsString;
use std::path::PathBuf;

use lexopt::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Run {
        port: Option<u16>,
    },
    /// `lc config check [--port N]`: with a port, only that instance's problems are errors.
    ConfigCheck {
        port: Option<u16>,
    },
    /// `lc status [--json | --check] [-v]`.
    Status {
        json: bool,
        verbose: bool,
        check: bool,
    },
    Tail {
        source: String,
        follow: bool,
        lines: usize,
    },
    Connect {
        token_file: PathBuf,
        tenant: String,
        name: Option<String>,
    },
    CertsInit {
        dir: Option<PathBuf>,
        days: u32,
        names: Vec<String>,
        force: bool,
    },
    CertsCheck {
        dir: Option<PathBuf>,
    },
    CertsReload,
    /// A new password for an FTP user, from the terminal or (`--stdin`) one line of input.
    PasswdSet {
        user: String,
        stdin: bool,
    },
    PasswdDelete {
        user: String,
    },
    PasswdList,
    /// `lc check --format TYPE FILE...`: do the files look like source type TYPE?
    FormatCheck {
        format: String,
        files: Vec<PathBuf>,
    },
    /// `lc check --list`: the types `lc check` knows.
    FormatList,
    /// `lc upload --from DIR`: deliver the files a `dir:` outbox made, copied to DIR.
    UploadFrom {
        dir: PathBuf,
    },
    /// `lc upload --snapshot NAME --format TYPE [--force] FILE...`: a manual snapshot report.
    UploadSnapshot {
        name: String,
        format: String,
        force: bool,
        files: Vec<PathBuf>,
    },
    /// `lc check SOURCE`: do the source's recent lines look like its configured type?
    SourceCheck {
        source: String,
    },
    Version,
    /// Print this help text and exit 0.
    Help(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub command: Command,
    /// `--config`, else `LC_CONFIG`, else /etc/lc/lc.ini (resolved by the caller).
    pub config: Option<PathBuf>,
}

/// What a usage error prints after its message: a few lines, not the whole help.
pub const SHORT_USAGE: &str = "\
usage: lc [--config PATH] COMMAND [ARGS]
commands: run, config check, status, tail, check, connect, upload, certs, passwd, version, help
";

pub const USAGE: &str = "\
lc: log collector for Cloud Discovery (Microsoft Defender for Cloud Apps)

usage: lc [--config PATH] COMMAND

commands:
  run [PORT]          serve the sources on PORT (all sources without PORT)
  config check [--port N]
                      validate the config; print every problem with its line
  status [-v] [--json | --check]
                      state, counters and backlog of every instance on this host;
                      --check: monitoring exit codes (0 ok, 1 warning, 2 critical, 3 unknown)
  tail SOURCE [-f]    the latest received lines of SOURCE
  check SOURCE | --format TYPE FILE... | --list
                      do SOURCE's recent lines (or these files) look like its type?
  upload --snapshot NAME --format TYPE [--force] FILE...
                      send files to the tenant as a snapshot report
  certs init|check|reload
                      make, inspect or hot-swap the TLS certificates
  passwd USER | --delete USER | --list
                      set, remove or list the FTP server's users
  connect --token-file FILE TENANT [NAME]
                      deliver to a Cloud Discovery tenant: check the token, store it,
                      set [delivery] url (and [collector] name), reload running instances
  upload --from DIR   deliver the files a dir: outbox made, copied to DIR (air gap)
  version             print the version (also -V, --version)
  help [COMMAND]      this text, or one command's (also `lc COMMAND --help`)

options:
  -c, --config PATH   config file (default: $LC_CONFIG, else /etc/lc/lc.ini)
  -h, --help          help
  -V, --version       the version

man lc: the manual page

exit status: 0 ok, 1 runtime failure, 2 usage or config error
";

const VERSION_USAGE: &str = "\
usage: lc version

Prints the version (`lc 0.1.0+g1234abcd`: Cargo's version and the commit). Also -V, --version.
";

const RUN_USAGE: &str = "\
usage: lc run [PORT] [--config PATH]

Serves every source on PORT (syslog UDP and TCP may share it; the FTP port serves the FTP
sources), or every source without PORT. Runs in the foreground until SIGTERM or SIGINT;
SIGHUP re-reads the config. systemd's lc@PORT.service runs `lc run PORT`.
";

const CONFIG_USAGE: &str = "\
usage: lc config check [--port N] [--config PATH]

Validates the config file and the files it names (token, ca_file, certificates and keys of
the receivers in use) and prints every problem as FILE:LINE: message. Exit 0 if valid, 2 if
not. With --port N (what lc@N.service runs before a reload, and what `lc run N` checks
before it starts) only what the instance on port N serves must be valid: problems of sources
on other ports, and of their certificates, are printed as warnings and do not fail the check.
";

const STATUS_USAGE: &str = "\
usage: lc status [-v] [--config PATH]
       lc status --json [--config PATH]
       lc status --check [-v] [--config PATH]

Shows each instance (from the status snapshots in run_dir): per source its state, messages,
rate over the last minute, last received, connections, backlog, whether it is paused and why,
and delivery (last success, failing since, last error with its time); disk use and whether
the disk is full; certificates. The table fits 120 columns; -v adds every counter, drops by
reason, listeners and whole error texts. Works from the snapshots when the config file has
errors (it says so).
--json prints the snapshots as they are.
--check is for monitoring (a Nagios plugin): one line of reasons and exit 0 ok, 1 warning,
2 critical, 3 unknown. Critical: an instance died (its pid file is not held), delivery failing
for 15 minutes or needing an operator, the disk full, a certificate expired. Warning: delivery
failing for less, a backlog older than an hour, a certificate expiring within 30 days, a
source receiving another format than configured. Unknown: no snapshot.
";

const TAIL_USAGE: &str = "\
usage: lc tail SOURCE [-f] [-n LINES] [--config PATH]

Prints the latest LINES (default 10) lines SOURCE received, from its spool and backup.
-f keeps printing new lines as they arrive.
";

const CONNECT_USAGE: &str = "\
usage: lc connect --token-file FILE TENANT [NAME] [--config PATH]

Checks the API token in FILE against TENANT (e.g. tenant.us2.portal.cloudappsecurity.com,
through [delivery] proxy if set) and lists its data sources. If the token works: stores it in
[delivery] token_file (0600; as root, 0640 with the folder's group), sets [delivery] url =
https://TENANT (and [collector] name = NAME) in the config, prints configured sources the
tenant lacks, and tells running instances to reload. Exit 0 if every source exists there, 1 otherwise or if the token fails.
";

const UPLOAD_USAGE: &str = "\
usage: lc upload --from DIR [--config PATH]
       lc upload --snapshot NAME --format TYPE [--force] FILE...

--from: delivers the files a `url = dir:` outbox made (NAME.log.gz or NAME.zip, each with its
NAME.manifest), once they crossed to DIR, to the tenant of [delivery] url with the same token,
proxy, ca_file, API pacing and retries as `lc run`. A file is taken only when its manifest is
there and its size and sha256 match: copy the data file first and its manifest last (or copy
each under a temp name, hidden or not ending in .log.gz/.zip/.manifest, and rename it). A file
without a manifest, or shorter than it says, is left for a later run. A corrupt one (longer,
another digest, a damaged gzip or zip) is named and moved to DIR/quarantine/. Delivered files
move to DIR/backup/SOURCE/ after done_upload (the newest [spool] backup_keep are kept).
Exit 0 if every complete file was delivered, 1 if one was corrupt or failed, 2 for a config
error.

--snapshot: sends FILE... (plain text or gzip; `-` is standard input) to the tenant of
[delivery] url as one snapshot report named NAME, of source type TYPE (e.g.
CISCO_ASA_SYSLOG). The files are first checked as `lc check --format TYPE FILE...` checks
them; if fewer than 90 % of their lines look like TYPE, nothing is sent (exit 1) unless
--force is given. They go as one gzip file with the same token, proxy, ca_file and API pacing
as `lc run`. Exit 0 when the tenant accepted the report, 1 if the files were refused or the
upload failed, 2 for a usage or config error (unknown TYPE, no console in [delivery] url, a
file that cannot be read).
";

const CERTS_USAGE: &str = "\
usage: lc certs init [DIR] [--days N] [--name DNS|IP ...] [--force]
       lc certs check [DIR]
       lc certs reload

init    makes a local CA (ca.pem, its key in private/ca-key.pem) and a server certificate it
        signs (server-cert.pem, server-key.pem, pure-ftpd.pem) in DIR (default: certs_dir).
        --days N: server certificate validity (default 397); --name: its DNS names and IP
        addresses (default: this host's name, localhost, 127.0.0.1, ::1). Existing files are
        kept unless --force.
check   prints each file's subject, names, issuer, validity and key match, and what is wrong.
        Exit 1 if a receiver in use would not work with the set.
reload  if ssl_update/ (under state_dir/ftp) holds files: validates the new set as a whole,
        keeps the current one as certs.prev/, installs it and empties ssl_update/; nothing
        changes if anything is wrong. Then every running instance reloads its TLS settings
        (open connections continue). Exit 0 only if every instance reloaded.
";

const PASSWD_USAGE: &str = "\
usage: lc passwd USER [--stdin] [--config PATH]
       lc passwd --delete USER
       lc passwd --list

Sets the FTP password of USER in [ftp] passwd_file (default /etc/lc/ftp.passwd), adding the
user if new. Asks twice on the terminal, without echo; with --stdin reads one line of standard
input instead, for scripts: echo \"$PW\" | lc passwd --stdin discovery
--delete removes USER; --list prints the user names, one a line.

The file holds one USER:HASH line per user (argon2id), mode 0600 (0640 with the folder's
group when root writes it, so the service can read it), and is replaced atomically;
comments and the other users' lines stay as they are. User names: 1 to 64 bytes, no ':', '/',
spaces or control characters. Passwords: 1 to 1024 bytes. Exit 2 for a bad name or password.
";

/// A command line that cannot be run: what is wrong, and the usage lines of the command it
/// was for (or of lc), which main prints instead of the whole help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    /// The command the help is for (`run`, `certs`), empty for lc as a whole.
    pub command: &'static str,
}

impl UsageError {
    /// The message, the command's `usage:` lines, and where the full help is.
    pub fn render(&self) -> String {
        let (usage, more) = match help_for(self.command) {
            Some(text) if !self.command.is_empty() => {
                (short(text), format!("try `lc {} --help`", self.command))
            }
            _ => (SHORT_USAGE.to_string(), "try `lc --help`".to_string()),
        };
        format!("lc: {}\n{usage}{more}\n", self.message)
    }
}

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The commands with their own help text.
const COMMANDS: &[&str] = &[
    "run", "config", "status", "tail", "check", "connect", "upload", "certs", "passwd", "version",
];

/// The first paragraph of a command's help: its `usage:` lines.
fn short(help: &str) -> String {
    let end = help.find("\n\n").map_or(help.len(), |i| i + 1);
    help[..end].to_string()
}

/// The help text of COMMAND (`lc help COMMAND`, `lc COMMAND --help`).
fn help_for(command: &str) -> Option<&'static str> {
    Some(match command {
        "" => USAGE,
        "run" => RUN_USAGE,
        "config" => CONFIG_USAGE,
        "status" => STATUS_USAGE,
        "tail" => TAIL_USAGE,
        "check" => crate::format_check::USAGE,
        "connect" => CONNECT_USAGE,
        "upload" => UPLOAD_USAGE,
        "certs" => CERTS_USAGE,
        "passwd" => PASSWD_USAGE,
        "version" => VERSION_USAGE,
        "help" => USAGE,
        _ => return None,
    })
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Args, UsageError> {
    let args: Vec<OsString> = args.into_iter().collect();
    // Which command a usage error is about: the first word that names one.
    let command = args
        .iter()
        .filter_map(|a| a.to_str())
        .find_map(|a| COMMANDS.iter().find(|c| **c == a).copied())
        .unwrap_or("");
    parse_inner(args).map_err(|message| UsageError { message, command })
}

fn parse_inner(args: Vec<OsString>) -> Result<Args, String> {
    let mut parser = lexopt::Parser::from_args(args);
    let mut config = None;
    let mut words: Vec<String> = Vec::new();
    let mut json = false;
    let mut verbose = false;
    let mut check = false;
    let mut follow = false;
    let mut lines = 10usize;
    let mut help = false;
    let mut version = false;
    let mut token_file = None;
    let mut days = 397u32;
    let mut names: Vec<String> = Vec::new();
    let mut force = false;
    let mut stdin = false;
    let mut delete = false;
    let mut list = false;
    let mut port: Option<u16> = None;
    let mut format: Option<String> = None;
    let mut from: Option<PathBuf> = None;
    let mut snapshot: Option<String> = None;
    let e = |e: lexopt::Error| e.to_string();
    while let Some(arg) = parser.next().map_err(e)? {
        match arg {
            Short('c') | Long("config") => config = Some(PathBuf::from(parser.value().map_err(e)?)),
            Short('h') | Long("help") => help = true,
            Short('V') | Long("version") => version = true,
            Long("json") => json = true,
            Short('v') | Long("verbose") => verbose = true,
            Long("check") => check = true,
            Short('f') | Long("follow") => follow = true,
            Short('n') | Long("lines") => lines = parser.value().map_err(e)?.parse().map_err(e)?,
            Long("token-file") => token_file = Some(PathBuf::from(parser.value().map_err(e)?)),
            Long("days") => days = parser.value().map_err(e)?.parse().map_err(e)?,
            Long("name") => names.push(parser.value().map_err(e)?.string().map_err(e)?),
            Long("force") => force = true,
            Long("stdin") => stdin = true,
            Long("delete") => delete = true,
            Long("list") => list = true,
            Long("from") => from = Some(PathBuf::from(parser.value().map_err(e)?)),
            Long("format") => format = Some(parser.value().map_err(e)?.string().map_err(e)?),
            Long("snapshot") => snapshot = Some(parser.value().map_err(e)?.string().map_err(e)?),
            Long("port") => {
                let p = parser.value().map_err(e)?.string().map_err(e)?;
                port = Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("--port {p:?} is not a port number"))?,
                );
            }
            Value(v) => words.push(v.string().map_err(e)?),
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    let mut words = words.into_iter();
    let first = words.next();
    if help {
        // `lc COMMAND [SUBCOMMAND ...] --help`: that command's help, whatever else was given.
        let text = help_for(first.as_deref().unwrap_or(""))
            .ok_or_else(|| format!("unknown command {:?}", first.unwrap_or_default()))?;
        return Ok(Args {
            command: Command::Help(text),
            config,
        });
    }
    if version && first.is_none() {
        return Ok(Args {
            command: Command::Version,
            config,
        });
    }
    if port.is_some() && first.as_deref() != Some("config") {
        return Err(
            "--port is for `lc config check --port N`; `lc run` takes PORT as a word".into(),
        );
    }
    let command = match first.as_deref() {
        None => return Err("missing command".into()),
        Some("help") => {
            let topic = words.next();
            let text = help_for(topic.as_deref().unwrap_or("")).ok_or_else(|| {
                format!("no help for {:?}: not a command", topic.unwrap_or_default())
            })?;
            Command::Help(text)
        }
        Some("run") => {
            let port = match words.next() {
                None => None,
                Some(p) => Some(
                    p.parse::<u16>()
                        .map_err(|_| format!("PORT {p:?} is not a port number"))?,
                ),
            };
            Command::Run { port }
        }
        Some("config") => match words.next().as_deref() {
            Some("check") => Command::ConfigCheck { port },
            Some(other) => {
                return Err(format!(
                    "unknown config command {other:?}; expected `lc config check`"
                ))
            }
            None => return Err("`lc config` needs a command: check".into()),
        },
        Some("status") => {
            if json && check {
                return Err("--json and --check are separate views; give one".into());
            }
            Command::Status {
                json,
                verbose,
                check,
            }
        }
        Some("tail") => match words.next() {
            Some(source) => Command::Tail {
                source,
                follow,
                lines,
            },
            None => return Err("`lc tail` needs a SOURCE".into()),
        },
        Some("certs") => match words.next().as_deref() {
            Some("init") => Command::CertsInit {
                dir: words.next().map(PathBuf::from),
                days,
                names,
                force,
            },
            Some("check") => Command::CertsCheck {
                dir: words.next().map(PathBuf::from),
            },
            Some("reload") => Command::CertsReload,
            Some(other) => {
                return Err(format!(
                    "unknown certs command {other:?}; expected init, check or reload"
                ))
            }
            None => return Err("`lc certs` needs a command: init, check or reload".into()),
        },
        Some("connect") => {
            let tenant = words.next().ok_or("`lc connect` needs a TENANT")?;
            let token_file = token_file.ok_or("`lc connect` needs --token-file FILE")?;
            Command::Connect {
                token_file,
                tenant,
                name: words.next(),
            }
        }
        Some("passwd") => match (words.next(), stdin, delete, list) {
            (None, _, _, true) if !stdin && !delete => Command::PasswdList,
            (_, _, _, true) => {
                return Err("`lc passwd --list` takes no USER, --stdin or --delete".into())
            }
            (Some(_), true, true, _) => {
                return Err("`lc passwd` takes --stdin or --delete, not both".into())
            }
            (Some(user), false, true, _) => Command::PasswdDelete { user },
            (Some(user), _, false, _) => Command::PasswdSet { user, stdin },
            (None, ..) => return Err("`lc passwd` needs a USER (or --list)".into()),
        },
        Some("check") => match (format, list) {
            (None, true) if words.len() == 0 => Command::FormatList,
            (None, false) if words.len() == 1 => Command::SourceCheck {
                source: words.next().expect("one word"),
            },
            (Some(format), false) if words.len() > 0 => Command::FormatCheck {
                format,
                files: words.by_ref().map(PathBuf::from).collect(),
            },
            (Some(_), false) => return Err("`lc check --format TYPE` needs a FILE".into()),
            _ => return Err("`lc check` takes SOURCE, --format TYPE FILE... or --list".into()),
        },
        Some("upload") => match (from.take(), snapshot, format) {
            (Some(dir), None, None) if words.len() == 0 => Command::UploadFrom { dir },
            (Some(_), ..) => {
                return Err("`lc upload --from DIR` takes no --snapshot, --format or FILE".into())
            }
            (None, Some(name), Some(format)) if words.len() > 0 => Command::UploadSnapshot {
                name,
                format,
                force,
                files: words.by_ref().map(PathBuf::from).collect(),
            },
            (None, Some(_), Some(_)) => return Err("`lc upload --snapshot` needs a FILE".into()),
            (None, Some(_), None) => {
                return Err("`lc upload --snapshot NAME` needs --format TYPE".into())
            }
            (None, None, _) => {
                return Err(
                    "`lc upload` takes --from DIR or --snapshot NAME --format TYPE FILE...".into(),
                )
            }
        },
        Some("version") => Command::Version,
        Some(other) => return Err(format!("unknown command {other:?}")),
    };
    if from.is_some() {
        return Err("--from is for `lc upload --from DIR`".into());
    }
    if let Some(extra) = words.next() {
        return Err(format!("unexpected argument {extra:?}"));
    }
    Ok(Args { command, config })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(args: &str, expected: &str) {
        let got = match parse(args.split_whitespace().map(OsString::from)) {
            Ok(a) => format!("{:?} {:?}", a.command, a.config)
                .replace(&format!("{USAGE:?}"), "USAGE")
                .replace(&format!("{PASSWD_USAGE:?}"), "PASSWD_USAGE")
                .replace(&format!("{CONFIG_USAGE:?}"), "CONFIG_USAGE")
                .replace(&format!("{CERTS_USAGE:?}"), "CERTS_USAGE")
                .replace(&format!("{RUN_USAGE:?}"), "RUN_USAGE")
                .replace(&format!("{CONNECT_USAGE:?}"), "CONNECT_USAGE")
                .replace(&format!("{VERSION_USAGE:?}"), "VERSION_USAGE"),
            Err(e) if e.command.is_empty() => format!("error: {e}"),
            Err(e) => format!("error ({}): {e}", e.command),
        };
        let got = if got.len() > 120 {
            got[..120].to_string()
        } else {
            got
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn table() {
        check("run", "Run { port: None } None");
        check("run 514", "Run { port: Some(514) } None");
        check(
            "run 514 --config /x.ini",
            "Run { port: Some(514) } Some(\"/x.ini\")",
        );
        check("--config /x.ini run", "Run { port: None } Some(\"/x.ini\")");
        check(
            "-c /x.ini status --json",
            "Status { json: true, verbose: false, check: false } Some(\"/x.ini\")",
        );
        check(
            "tail asa -f",
            "Tail { source: \"asa\", follow: true, lines: 10 } None",
        );
        check(
            "tail asa -n 3",
            "Tail { source: \"asa\", follow: false, lines: 3 } None",
        );
        check("config check", "ConfigCheck { port: None } None");
        check(
            "config check --port 514",
            "ConfigCheck { port: Some(514) } None",
        );
        check(
            "config check --port x",
            "error (config): --port \"x\" is not a port number",
        );
        check(
            "run --port 514",
            "error (run): --port is for `lc config check --port N`; `lc run` takes PORT as a word",
        );
        // Every command has its help, asked for either way; `-V` is the version.
        check("config check --help", "Help(CONFIG_USAGE) None");
        check("certs init --help", "Help(CERTS_USAGE) None");
        check("certs check -h", "Help(CERTS_USAGE) None");
        check("certs reload --help", "Help(CERTS_USAGE) None");
        check("help run", "Help(RUN_USAGE) None");
        check("help connect", "Help(CONNECT_USAGE) None");
        check("run 514 --help", "Help(RUN_USAGE) None");
        check("version --help", "Help(VERSION_USAGE) None");
        check("help bogus", "error: no help for \"bogus\": not a command");
        check("-V", "Version None");
        check("version", "Version None");
        check("--version", "Version None");
        check("help", "Help(USAGE) None");
        check("--help", "Help(USAGE) None");
        check("", "error: missing command");
        check(
            "run 99999",
            "error (run): PORT \"99999\" is not a port number",
        );
        check("run 1 2", "error (run): unexpected argument \"2\"");
        check("frobnicate", "error: unknown command \"frobnicate\"");
        check(
            "config",
            "error (config): `lc config` needs a command: check",
        );
        check("tail", "error (tail): `lc tail` needs a SOURCE");
        check("status --bogus", "error (status): invalid option '--bogus'");
        check("connect --token-file t.txt tenant.example LC1", "Connect { token_file: \"t.txt\", tenant: \"tenant.example\", name: Some(\"LC1\") } None");
        check(
            "connect tenant.example",
            "error (connect): `lc connect` needs --token-file FILE",
        );
        check("certs init --days 30 --name a.example --name 10.0.0.1", "CertsInit { dir: None, days: 30, names: [\"a.example\", \"10.0.0.1\"], force: false } None");
        check("certs check /x", "CertsCheck { dir: Some(\"/x\") } None");
        check("certs reload", "CertsReload None");
        check(
            "certs",
            "error (certs): `lc certs` needs a command: init, check or reload",
        );
        check(
            "passwd discovery",
            "PasswdSet { user: \"discovery\", stdin: false } None",
        );
        check(
            "passwd --stdin discovery -c /x.ini",
            "PasswdSet { user: \"discovery\", stdin: true } Some(\"/x.ini\")",
        );
        check(
            "passwd --delete discovery",
            "PasswdDelete { user: \"discovery\" } None",
        );
        check("passwd --list", "PasswdList None");
        check("passwd --help", "Help(PASSWD_USAGE) None");
        check(
            "passwd",
            "error (passwd): `lc passwd` needs a USER (or --list)",
        );
        check(
            "passwd --stdin",
            "error (passwd): `lc passwd` needs a USER (or --list)",
        );
        check(
            "passwd --list bob",
            "error (passwd): `lc passwd --list` takes no USER, --stdin or --delete",
        );
        check(
            "passwd --delete --stdin bob",
            "error (passwd): `lc passwd` takes --stdin or --delete, not both",
        );
        check(
            "check --format CISCO_ASA_SYSLOG a.log b.log",
            "FormatCheck { format: \"CISCO_ASA_SYSLOG\", files: [\"a.log\", \"b.log\"] } None",
        );
        check("check --list", "FormatList None");
        check(
            "check --format SQUID",
            "error (check): `lc check --format TYPE` needs a FILE",
        );
        check("check asa-hq", "SourceCheck { source: \"asa-hq\" } None");
        check(
            "upload --snapshot q3 --format SQUID a.log --force",
            "UploadSnapshot { name: \"q3\", format: \"SQUID\", force: true, files: [\"a.log\"] } None",
        );
        check(
            "upload --snapshot q3 a.log",
            "error (upload): `lc upload --snapshot NAME` needs --format TYPE",
        );
        check(
            "upload --format SQUID a.log",
            "error (upload): `lc upload` takes --from DIR or --snapshot NAME --format TYPE FILE...",
        );
        check(
            "upload --snapshot q3 --format SQUID",
            "error (upload): `lc upload --snapshot` needs a FILE",
        );
        check(
            "upload --from /x --snapshot q3",
            "error (upload): `lc upload --from DIR` takes no --snapshot, --format or FILE",
        );
        check(
            "check asa-hq b",
            "error (check): `lc check` takes SOURCE, --format TYPE FILE... or --list",
        );
        check(
            "check --list asa-hq",
            "error (check): `lc check` takes SOURCE, --format TYPE FILE... or --list",
        );
        check("passwd a b", "error (passwd): unexpected argument \"b\"");
    }

    #[test]
    fn usage_errors_print_the_commands_usage_lines_not_the_whole_help() {
        let e = parse(["certs", "frob"].map(OsString::from)).unwrap_err();
        assert_eq!(
            e.render(),
            "lc: unknown certs command \"frob\"; expected init, check or reload\n\
             usage: lc certs init [DIR] [--days N] [--name DNS|IP ...] [--force]\n       \
             lc certs check [DIR]\n       lc certs reload\ntry `lc certs --help`\n"
        );
        let e = parse(["frobnicate"].map(OsString::from)).unwrap_err();
        assert_eq!(
            e.render(),
            format!("lc: unknown command \"frobnicate\"\n{SHORT_USAGE}try `lc --help`\n")
        );
        assert!(e.render().lines().count() <= 5);
    }
}
