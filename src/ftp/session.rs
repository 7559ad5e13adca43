//! One FTP control session as a state machine, without I/O: a command in, [`Action`]s out.
//!
//! The session knows the login state, the working folder, the TLS and data-channel settings
//! and what each command needs before it may run; it never touches a socket or a file. Work
//! that needs either (checking a password, opening a passive port, a transfer, a file
//! operation) goes out as an action, and the server answers with the outcome through
//! `login_result` / `passive_ready` and replies itself for the rest. Replies follow RFC 959
//! section 4.2 codes; RFC 2228 (AUTH/PBSZ/PROT) and RFC 4217 (FTPS) for the TLS ones.

use std::net::{IpAddr, SocketAddr};

use super::command::Command;
use super::listing::Facts;
use super::path::{resolve, VPath};
use crate::allow::canonical;
use crate::secret::Secret;

pub use crate::config::TlsMode;

#[derive(Debug, Clone)]
pub struct Settings {
    pub tls: TlsMode,
    /// Whether a certificate is loaded (AUTH TLS is refused without one).
    pub tls_ready: bool,
    /// PORT/EPRT allowed (only ever to the control peer's own address).
    pub active_mode: bool,
    /// The folders at `/`: the FTP sources and `ssl_update`.
    pub folders: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// The reply as sent: `CODE text`, or the multi-line form of RFC 959 section 4.2.
    pub fn render(&self) -> String {
        match self.lines.as_slice() {
            [one] => format!("{} {one}\r\n", self.code),
            lines => {
                let mut out = format!("{}-{}\r\n", self.code, lines[0]);
                for l in &lines[1..lines.len() - 1] {
                    out.push_str(&format!(" {l}\r\n"));
                }
                out.push_str(&format!("{} {}\r\n", self.code, lines[lines.len() - 1]));
                out
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListKind {
    List,
    Nlst,
    Mlsd,
    /// `STAT path`: LIST's lines over the control connection (RFC 959 section 4.1.3).
    Stat,
}

/// Work for the server; it replies when done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Reply(Reply),
    /// Send this reply (234), then start TLS on the control connection.
    StartTls(Reply),
    /// Check the password (off the loop thread), then call `login_result`.
    CheckPassword {
        user: String,
        password: Secret,
    },
    /// Open a passive data listener, then call `passive_ready`. `net`: EPSV's network
    /// protocol (1 = IPv4, 2 = IPv6), which must be the control connection's.
    OpenPassive {
        extended: bool,
        net: Option<u8>,
    },
    /// RNFR named this file: say 350 if it exists, 550 if not.
    RenameFrom(VPath),
    /// Upload into `path` over the data connection (`offset`: REST; `append`: APPE;
    /// `ascii`: TYPE A, CRLF becomes LF).
    Store {
        path: VPath,
        append: bool,
        offset: u64,
        private: bool,
        ascii: bool,
    },
    /// Send a listing of `path` over the data connection.
    List {
        path: VPath,
        kind: ListKind,
        private: bool,
    },
    /// A one-line listing on the control connection (MLST).
    Mlst(VPath),
    Size(VPath),
    Mdtm(VPath),
    Delete(VPath),
    Rename {
        from: VPath,
        to: VPath,
    },
    /// Drop the data connection and any transfer on it (ABOR).
    Abort,
    Close(Reply),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Login {
    Anonymous,
    User(String),
    In(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Data {
    None,
    Passive,
    Active(SocketAddr),
}

#[derive(Debug)]
pub struct Session {
    settings: Settings,
    peer: IpAddr,
    login: Login,
    cwd: VPath,
    control_tls: bool,
    pbsz: bool,
    prot_private: bool,
    rest: u64,
    rename_from: Option<VPath>,
    epsv_all: bool,
    data: Data,
    /// TYPE A is in force (the default, RFC 959 section 3.1.1.1): uploads turn CRLF into LF.
    ascii: bool,
    /// The MLST/MLSD facts in effect (OPTS MLST).
    facts: Facts,
}

fn reply(code: u16, text: impl Into<String>) -> Vec<Action> {
    vec![Action::Reply(Reply::new(code, text))]
}

impl Session {
    pub fn new(settings: Settings, peer: IpAddr) -> Session {
        Session {
            settings,
            peer: canonical(peer),
            login: Login::Anonymous,
            cwd: VPath::Root,
            control_tls: false,
            pbsz: false,
            prot_private: false,
            rest: 0,
            rename_from: None,
            epsv_all: false,
            data: Data::None,
            ascii: true,
            facts: Facts::default(),
        }
    }

    /// The 220 greeting.
    pub fn greeting(&self) -> Reply {
        Reply::new(220, "lc FTP server ready")
    }

    pub fn user(&self) -> Option<&str> {
        match &self.login {
            Login::In(u) => Some(u),
            _ => None,
        }
    }

    /// The MLST/MLSD facts in effect.
    pub fn facts(&self) -> Facts {
        self.facts
    }

    /// PROT P is in force: data connections use TLS.
    pub fn prot_private(&self) -> bool {
        self.prot_private
    }

    /// The folders at `/` for this session.
    pub fn folders(&self) -> &[String] {
        &self.settings.folders
    }

    /// The file RNFR named does not exist: RNTO has nothing to rename.
    pub fn rename_refused(&mut self) {
        self.rename_from = None;
    }

    /// The user named by USER (logged in or not), for the log.
    pub fn pending_user(&self) -> String {
        match &self.login {
            Login::User(u) | Login::In(u) => u.clone(),
            Login::Anonymous => String::new(),
        }
    }

    /// The server checked the password of `CheckPassword`.
    pub fn login_result(&mut self, ok: bool) -> Reply {
        match (&self.login, ok) {
            (Login::User(u), true) => {
                let u = u.clone();
                self.login = Login::In(u);
                self.cwd = VPath::Root;
                Reply::new(230, "logged in")
            }
            _ => {
                self.login = Login::Anonymous;
                Reply::new(530, "login incorrect")
            }
        }
    }

    /// The passive listener is up at `addr` (what PASV/EPSV advertise).
    pub fn passive_ready(&mut self, addr: SocketAddr, extended: bool) -> Reply {
        if extended {
            self.data = Data::Passive;
            return Reply::new(
                229,
                format!("entering extended passive mode (|||{}|)", addr.port()),
            );
        }
        match addr.ip() {
            IpAddr::V4(v4) => {
                self.data = Data::Passive;
                let o = v4.octets();
                let (p1, p2) = (addr.port() >> 8, addr.port() & 0xff);
                Reply::new(
                    227,
                    format!(
                        "entering passive mode ({},{},{},{},{p1},{p2})",
                        o[0], o[1], o[2], o[3]
                    ),
                )
            }
            // No data channel is set up: the server must not have opened a listener either.
            IpAddr::V6(_) => Reply::new(522, "PASV is IPv4 only; use EPSV"),
        }
    }

    /// Where a data connection must come from, for the server to refuse port stealing.
    pub fn data_peer(&self) -> IpAddr {
        self.peer
    }

    /// The active-mode address to connect to, if PORT/EPRT set one.
    pub fn active_target(&self) -> Option<SocketAddr> {
        match self.data {
            Data::Active(a) => Some(a),
            _ => None,
        }
    }

    /// After a transfer: the data channel setting is used up, as RFC 959 has it.
    pub fn transfer_finished(&mut self) {
        self.data = Data::None;
        self.rest = 0;
    }

    pub fn on_command(&mut self, cmd: Command) -> Vec<Action> {
        use Command as C;
        // RFC 959 section 4.1.3: RNTO must immediately follow RNFR; any other command
        // forgets what RNFR named.
        let rename_from = self.rename_from.take();
        if let C::Rnto(_) = cmd {
            self.rename_from = rename_from;
        }
        // What needs no login.
        match &cmd {
            C::Quit => return vec![Action::Close(Reply::new(221, "goodbye"))],
            C::Noop => return reply(200, "NOOP ok"),
            C::Syst => return reply(215, "UNIX Type: L8"),
            C::Feat => return vec![Action::Reply(self.features())],
            C::Help => {
                return vec![Action::Reply(Reply {
                    code: 214,
                    lines: vec![
                        "commands:".into(),
                        "USER PASS QUIT NOOP SYST FEAT OPTS HELP STAT PWD CWD CDUP TYPE MODE STRU"
                            .into(),
                        "PASV EPSV PORT EPRT LIST NLST MLSD MLST SIZE MDTM STOR APPE REST DELE"
                            .into(),
                        "RNFR RNTO ABOR ALLO MKD RMD AUTH PBSZ PROT".into(),
                        "help ok".into(),
                    ],
                })]
            }
            C::Opts(o) if o.eq_ignore_ascii_case("UTF8 ON") => {
                return reply(200, "UTF8 is always on")
            }
            // RFC 3659 section 7.9: a fact list (possibly empty) selects what MLST/MLSD show;
            // the reply names the facts now in effect.
            C::Opts(o)
                if o.get(..4).is_some_and(|v| v.eq_ignore_ascii_case("MLST"))
                    && o[4..].chars().next().is_none_or(|c| c == ' ') =>
            {
                self.facts = Facts::parse(o[4..].trim());
                return reply(200, format!("MLST OPTS {}", self.facts.selected()));
            }
            C::Opts(o) => return reply(501, format!("OPTS {o} not understood")),
            C::Auth(mech) => return self.auth(mech),
            C::Pbsz(_) if !self.control_tls => return reply(503, "PBSZ needs AUTH TLS first"),
            C::Pbsz(_) => {
                self.pbsz = true;
                return reply(200, "PBSZ=0");
            }
            C::Prot(_) if !self.pbsz => return reply(503, "PROT needs PBSZ first"),
            C::Prot(p) => {
                self.prot_private = *p == 'P';
                return reply(200, format!("protection level {p}"));
            }
            C::User(u) => {
                if self.settings.tls == TlsMode::Required && !self.control_tls {
                    return reply(530, "this server requires AUTH TLS before USER");
                }
                self.login = Login::User(u.clone());
                return reply(331, "password required");
            }
            C::Pass(p) => {
                return match &self.login {
                    Login::User(u) => vec![Action::CheckPassword {
                        user: u.clone(),
                        password: p.clone(),
                    }],
                    Login::In(_) => reply(230, "already logged in"),
                    Login::Anonymous => reply(503, "USER first"),
                };
            }
            C::Unknown(v) => return reply(502, format!("{v} not implemented")),
            _ => {}
        }
        if self.user().is_none() {
            return reply(530, "log in first");
        }
        match cmd {
            C::Stat(Some(arg)) => match self.resolve(&arg) {
                Ok(path) => vec![Action::List {
                    path,
                    kind: ListKind::Stat,
                    private: self.prot_private,
                }],
                Err(e) => reply(550, e),
            },
            C::Stat(None) => reply(
                211,
                format!(
                    "logged in as {}, in {}",
                    self.user().unwrap_or(""),
                    self.cwd
                ),
            ),
            C::Pwd => reply(257, format!("\"{}\" is the current folder", self.cwd)),
            C::Cwd(arg) => match self.resolve(&arg) {
                Ok(p @ (VPath::Root | VPath::Folder(_))) => {
                    self.cwd = p;
                    reply(250, format!("now in {}", self.cwd))
                }
                Ok(p) => reply(550, format!("{p}: not a folder")),
                Err(e) => reply(550, e),
            },
            C::Cdup => {
                self.cwd = VPath::Root;
                reply(250, "now in /")
            }
            C::Type(t) => {
                self.ascii = t == 'A';
                reply(200, format!("type set to {t}"))
            }
            C::Mode(_) => reply(200, "mode S"),
            C::Stru(_) => reply(200, "structure F"),
            C::Allo => reply(202, "ALLO not needed"),
            C::Pasv if self.epsv_all => reply(503, "EPSV ALL was sent; use EPSV"),
            C::Pasv => vec![Action::OpenPassive {
                extended: false,
                net: None,
            }],
            C::Epsv { all: true, .. } => {
                self.epsv_all = true;
                reply(200, "EPSV ALL ok")
            }
            C::Epsv { all: false, net } => vec![Action::OpenPassive {
                extended: true,
                net,
            }],
            C::Port(addr) | C::Eprt(addr) => self.active(addr),
            C::List(arg) => self.list(arg, ListKind::List),
            C::Nlst(arg) => self.list(arg, ListKind::Nlst),
            C::Mlsd(arg) => self.list(arg, ListKind::Mlsd),
            C::Mlst(arg) => match self.resolve(arg.as_deref().unwrap_or("")) {
                Ok(p) => vec![Action::Mlst(p)],
                Err(e) => reply(550, e),
            },
            C::Size(arg) => self
                .file(&arg)
                .map_or_else(|e| reply(550, e), |p| vec![Action::Size(p)]),
            C::Mdtm(arg) => self
                .file(&arg)
                .map_or_else(|e| reply(550, e), |p| vec![Action::Mdtm(p)]),
            C::Rest(n) => {
                self.rest = n;
                reply(350, format!("restarting at {n}; send STOR or APPE"))
            }
            C::Stor(arg) => self.store(&arg, false),
            C::Appe(arg) => self.store(&arg, true),
            C::Dele(arg) => self
                .file(&arg)
                .map_or_else(|e| reply(550, e), |p| vec![Action::Delete(p)]),
            C::Rnfr(arg) => match self.file(&arg) {
                Ok(p) => {
                    self.rename_from = Some(p.clone());
                    vec![Action::RenameFrom(p)]
                }
                Err(e) => reply(550, e),
            },
            C::Rnto(arg) => match (self.rename_from.take(), self.file(&arg)) {
                (None, _) => reply(503, "RNFR first"),
                (Some(_), Err(e)) => reply(553, e),
                (Some(from), Ok(to)) => vec![Action::Rename { from, to }],
            },
            C::Abor => {
                self.transfer_finished();
                vec![Action::Abort]
            }
            // The folders are the sources: they exist already and no others can be made. 550
            // (not 502) lets lftp's `mirror -R` go on to upload into an existing one.
            C::Mkd(arg) => match self.resolve(&arg) {
                Ok(p @ (VPath::Root | VPath::Folder(_))) => reply(550, format!("{p}: exists")),
                _ => reply(550, format!("{arg}: folders cannot be created here")),
            },
            C::Rmd(arg) => reply(550, format!("{arg}: folders cannot be removed")),
            // Handled above.
            C::Quit
            | C::Noop
            | C::Syst
            | C::Feat
            | C::Help
            | C::Opts(_)
            | C::Auth(_)
            | C::Pbsz(_)
            | C::Prot(_) => reply(503, "bad sequence of commands"),
            C::User(_) | C::Pass(_) | C::Unknown(_) => reply(503, "bad sequence of commands"),
        }
    }

    fn features(&self) -> Reply {
        let mut lines = vec!["extensions supported:".to_string()];
        if self.settings.tls != TlsMode::Off && self.settings.tls_ready {
            lines.extend(["AUTH TLS", "PBSZ", "PROT"].map(String::from));
        }
        lines.extend(
            [
                "EPSV",
                "EPRT",
                "MDTM",
                &self.facts.feat(),
                // No "REST STREAM": an interrupted upload is discarded, so STOR after REST
                // is refused (RFC 3659 section 5.5 says to advertise only what works).
                "SIZE",
                "UTF8",
            ]
            .map(String::from),
        );
        lines.push("end".into());
        Reply { code: 211, lines }
    }

    fn auth(&mut self, mech: &str) -> Vec<Action> {
        if self.settings.tls == TlsMode::Off || !self.settings.tls_ready {
            return reply(502, "TLS is not offered here");
        }
        if mech != "TLS" && mech != "TLS-C" && mech != "SSL" {
            return reply(504, format!("AUTH {mech} not supported; use AUTH TLS"));
        }
        if self.control_tls {
            return reply(503, "TLS is already on");
        }
        // RFC 4217 section 4: a successful AUTH resets the session to before USER.
        self.control_tls = true;
        self.login = Login::Anonymous;
        vec![Action::StartTls(Reply::new(
            234,
            "AUTH TLS ok; start the handshake",
        ))]
    }

    fn resolve(&self, arg: &str) -> Result<VPath, String> {
        resolve(&self.cwd, arg, &self.settings.folders)
    }

    fn file(&self, arg: &str) -> Result<VPath, String> {
        match self.resolve(arg)? {
            p @ VPath::File { .. } => Ok(p),
            p => Err(format!("{p}: not a file")),
        }
    }

    /// Data transfers under `tls = required` need PROT P (RFC 4217 section 9).
    fn data_refused(&self) -> Option<Vec<Action>> {
        if self.settings.tls == TlsMode::Required && !self.prot_private {
            return Some(reply(
                521,
                "data connections must be protected: PBSZ 0 and PROT P first",
            ));
        }
        if self.data == Data::None {
            return Some(reply(425, "use PASV, EPSV, PORT or EPRT first"));
        }
        None
    }

    fn active(&mut self, addr: SocketAddr) -> Vec<Action> {
        if !self.settings.active_mode || self.epsv_all {
            return reply(502, "active mode is off here; use EPSV or PASV");
        }
        // Never connect anywhere but back to the client (no FTP bounce).
        if canonical(addr.ip()) != self.peer || addr.port() < 1024 {
            return reply(
                501,
                "PORT/EPRT only to your own address and a port above 1023",
            );
        }
        self.data = Data::Active(addr);
        reply(200, "active mode ok")
    }

    fn list(&mut self, arg: Option<String>, kind: ListKind) -> Vec<Action> {
        if let Some(refused) = self.data_refused() {
            return refused;
        }
        match self.resolve(arg.as_deref().unwrap_or("")) {
            // RFC 3659 section 7.2.1: MLSD of anything but a folder is 501 (MLST is for files).
            Ok(p @ VPath::File { .. }) if kind == ListKind::Mlsd => reply(
                501,
                format!("{p}: not a folder; MLSD lists folders, use MLST"),
            ),
            Ok(path) => vec![Action::List {
                path,
                kind,
                private: self.prot_private,
            }],
            Err(e) => reply(550, e),
        }
    }

    fn store(&mut self, arg: &str, append: bool) -> Vec<Action> {
        if let Some(refused) = self.data_refused() {
            return refused;
        }
        let path = match self.file(arg) {
            Ok(p) => p,
            Err(e) => return reply(553, e),
        };
        let offset = std::mem::take(&mut self.rest);
        vec![Action::Store {
            path,
            append,
            offset,
            private: self.prot_private,
            ascii: self.ascii,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ftp::command::parse;

    fn session(tls: TlsMode) -> Session {
        let settings = Settings {
            tls,
            tls_ready: true,
            active_mode: true,
            folders: vec!["asa".into(), crate::ftp::path::SSL_UPDATE.into()],
        };
        Session::new(settings, "192.0.2.7".parse().unwrap())
    }

    /// Feeds `lines` (server outcomes as `!ok`, `!bad`, `!pasv`) and renders what the
    /// session asked for, one item per line, as `CODE text` or the action's name.
    #[track_caller]
    fn check(tls: TlsMode, lines: &[&str], expected: &[&str]) {
        let mut s = session(tls);
        let mut got = Vec::new();
        for line in lines {
            let actions = match *line {
                "!ok" => vec![Action::Reply(s.login_result(true))],
                "!bad" => vec![Action::Reply(s.login_result(false))],
                "!pasv" => vec![Action::Reply(
                    s.passive_ready("192.0.2.1:20001".parse().unwrap(), false),
                )],
                "!epsv" => vec![Action::Reply(
                    s.passive_ready("192.0.2.1:20001".parse().unwrap(), true),
                )],
                "!done" => {
                    s.transfer_finished();
                    continue;
                }
                l => match parse(l.as_bytes()) {
                    Ok(c) => s.on_command(c),
                    Err(r) => vec![Action::Reply(Reply::new(r.code, r.text))],
                },
            };
            for a in actions {
                got.push(match a {
                    Action::Reply(r) | Action::StartTls(r) | Action::Close(r) => {
                        format!("{} {}", r.code, r.lines.join("|"))
                    }
                    Action::CheckPassword { user, .. } => format!("check {user}"),
                    Action::OpenPassive { extended, .. } => {
                        format!("open passive ext={extended}")
                    }
                    Action::RenameFrom(p) => format!("rename from {p}"),
                    Action::Store {
                        path,
                        append,
                        offset,
                        private,
                        ascii,
                    } => format!(
                        "store {path} append={append} offset={offset} private={private}{}",
                        if ascii { " ascii" } else { "" }
                    ),
                    Action::List {
                        path,
                        kind,
                        private,
                    } => format!("list {path} {kind:?} private={private}"),
                    Action::Mlst(p) => format!("mlst {p}"),
                    Action::Size(p) => format!("size {p}"),
                    Action::Mdtm(p) => format!("mdtm {p}"),
                    Action::Delete(p) => format!("delete {p}"),
                    Action::Rename { from, to } => format!("rename {from} {to}"),
                    Action::Abort => "abort".into(),
                });
            }
        }
        assert_eq!(got, expected);
    }

    use TlsMode::*;

    #[test]
    fn login() {
        check(
            Optional,
            &["USER a", "PASS x", "!ok", "PWD"],
            &[
                "331 password required",
                "check a",
                "230 logged in",
                "257 \"/\" is the current folder",
            ],
        );
        check(
            Optional,
            &["USER a", "PASS x", "!bad", "PWD"],
            &[
                "331 password required",
                "check a",
                "530 login incorrect",
                "530 log in first",
            ],
        );
        check(Optional, &["PASS x"], &["503 USER first"]);
        check(
            Optional,
            &["LIST", "STOR x", "CWD asa"],
            &["530 log in first", "530 log in first", "530 log in first"],
        );
        check(
            Required,
            &["USER a"],
            &["530 this server requires AUTH TLS before USER"],
        );
        check(
            Required,
            &["AUTH TLS", "USER a"],
            &[
                "234 AUTH TLS ok; start the handshake",
                "331 password required",
            ],
        );
        check(Off, &["AUTH TLS"], &["502 TLS is not offered here"]);
        check(
            Optional,
            &["AUTH KERBEROS"],
            &["504 AUTH KERBEROS not supported; use AUTH TLS"],
        );
        check(Optional, &["QUIT"], &["221 goodbye"]);
        check(Optional, &["SITE EXEC x"], &["502 SITE not implemented"]);
    }

    #[test]
    fn protection() {
        let login = ["AUTH TLS", "USER a", "PASS x", "!ok"];
        let mut l: Vec<&str> = login.to_vec();
        l.extend(["EPSV", "!epsv", "STOR asa/x.log"]);
        check(
            Required,
            &l,
            &[
                "234 AUTH TLS ok; start the handshake",
                "331 password required",
                "check a",
                "230 logged in",
                "open passive ext=true",
                "229 entering extended passive mode (|||20001|)",
                "521 data connections must be protected: PBSZ 0 and PROT P first",
            ],
        );
        check(Optional, &["PROT P"], &["503 PROT needs PBSZ first"]);
        check(Optional, &["PBSZ 0"], &["503 PBSZ needs AUTH TLS first"]);
        let mut l: Vec<&str> = login.to_vec();
        l.extend(["PBSZ 0", "PROT P", "PASV", "!pasv", "STOR asa/x.log"]);
        check(
            Required,
            &l,
            &[
                "234 AUTH TLS ok; start the handshake",
                "331 password required",
                "check a",
                "230 logged in",
                "200 PBSZ=0",
                "200 protection level P",
                "open passive ext=false",
                "227 entering passive mode (192,0,2,1,78,33)",
                "store /asa/x.log append=false offset=0 private=true ascii",
            ],
        );
    }

    #[test]
    fn data_and_files() {
        let login = ["USER a", "PASS x", "!ok"];
        let run = |more: &[&str], expected: &[&str]| {
            let mut l: Vec<&str> = login.to_vec();
            l.extend(more);
            let mut e = vec!["331 password required", "check a", "230 logged in"];
            e.extend(expected);
            check(Optional, &l, &e);
        };
        run(&["STOR asa/x"], &["425 use PASV, EPSV, PORT or EPRT first"]);
        run(
            &["PORT 192,0,2,7,78,33", "STOR asa/x"],
            &[
                "200 active mode ok",
                "store /asa/x append=false offset=0 private=false ascii",
            ],
        );
        run(
            &["PORT 10,0,0,1,78,33"],
            &["501 PORT/EPRT only to your own address and a port above 1023"],
        );
        run(
            &["EPRT |1|192.0.2.7|22|"],
            &["501 PORT/EPRT only to your own address and a port above 1023"],
        );
        run(
            &["EPSV ALL", "PASV", "PORT 192,0,2,7,78,33"],
            &[
                "200 EPSV ALL ok",
                "503 EPSV ALL was sent; use EPSV",
                "502 active mode is off here; use EPSV or PASV",
            ],
        );
        run(
            &[
                "PASV",
                "!pasv",
                "REST 10",
                "APPE asa/x",
                "!done",
                "STOR asa/y",
            ],
            &[
                "open passive ext=false",
                "227 entering passive mode (192,0,2,1,78,33)",
                "350 restarting at 10; send STOR or APPE",
                "store /asa/x append=true offset=10 private=false ascii",
                "425 use PASV, EPSV, PORT or EPRT first",
            ],
        );
        run(
            &["PASV", "!pasv", "STOR ../../etc/passwd"],
            &[
                "open passive ext=false",
                "227 entering passive mode (192,0,2,1,78,33)",
                "553 /etc: no such folder",
            ],
        );
        run(
            &["PASV", "!pasv", "STOR asa"],
            &[
                "open passive ext=false",
                "227 entering passive mode (192,0,2,1,78,33)",
                "553 /asa: not a file",
            ],
        );
        run(
            &["CWD asa", "PWD", "CWD ..", "PWD", "CWD nope"],
            &[
                "250 now in /asa",
                "257 \"/asa\" is the current folder",
                "250 now in /",
                "257 \"/\" is the current folder",
                "550 /nope: no such folder",
            ],
        );
        run(
            &[
                "CWD asa",
                "SIZE x.log",
                "MDTM x.log",
                "DELE x.log",
                "SIZE .",
            ],
            &[
                "250 now in /asa",
                "size /asa/x.log",
                "mdtm /asa/x.log",
                "delete /asa/x.log",
                "550 /asa: not a file",
            ],
        );
        run(
            &["RNTO b", "RNFR asa/a", "RNTO asa/b"],
            &[
                "503 RNFR first",
                "rename from /asa/a",
                "rename /asa/a /asa/b",
            ],
        );
        // RNTO only right after RNFR: a refused RNFR, or any command between, leaves it
        // nothing to rename.
        run(
            &[
                "RNFR asa/a",
                "RNFR ../../etc",
                "RNTO asa/b",
                "RNFR asa/a",
                "NOOP",
                "RNTO asa/b",
            ],
            &[
                "rename from /asa/a",
                "550 /etc: no such folder",
                "503 RNFR first",
                "rename from /asa/a",
                "200 NOOP ok",
                "503 RNFR first",
            ],
        );
        run(
            &[
                "PASV", "!pasv", "LIST -la", "!done", "EPSV", "!epsv", "MLSD asa",
            ],
            &[
                "open passive ext=false",
                "227 entering passive mode (192,0,2,1,78,33)",
                "list / List private=false",
                "open passive ext=true",
                "229 entering extended passive mode (|||20001|)",
                "list /asa Mlsd private=false",
            ],
        );
        run(&["MLST ssl_update"], &["mlst /ssl_update"]);
        // TYPE I keeps bytes as they are; TYPE A (the default) turns CRLF into LF.
        run(
            &["PASV", "!pasv", "TYPE I", "STOR asa/x"],
            &[
                "open passive ext=false",
                "227 entering passive mode (192,0,2,1,78,33)",
                "200 type set to I",
                "store /asa/x append=false offset=0 private=false",
            ],
        );
        // STAT with a path lists over the control connection, no data connection needed.
        run(
            &["STAT asa", "STAT asa/x.log", "STAT nope"],
            &[
                "list /asa Stat private=false",
                "list /asa/x.log Stat private=false",
                "550 /nope: no such folder",
            ],
        );
        // MLSD lists folders only (RFC 3659 section 7.2.1).
        run(
            &["EPSV", "!epsv", "MLSD asa/x.log"],
            &[
                "open passive ext=true",
                "229 entering extended passive mode (|||20001|)",
                "501 /asa/x.log: not a folder; MLSD lists folders, use MLST",
            ],
        );
    }

    #[test]
    fn features_and_mlst_facts() {
        check(
            Off,
            &[
                "FEAT",
                "OPTS MLST type;",
                "FEAT",
                "OPTS MLST",
                "OPTS MLST size;bogus;Modify",
            ],
            &[
                "211 extensions supported:|EPSV|EPRT|MDTM|MLST type*;size*;modify*;|SIZE|UTF8|end",
                "200 MLST OPTS type;",
                "211 extensions supported:|EPSV|EPRT|MDTM|MLST type*;size;modify;|SIZE|UTF8|end",
                "200 MLST OPTS ",
                "200 MLST OPTS size;modify;",
            ],
        );
        check(Off, &["OPTS MLSTX"], &["501 OPTS MLSTX not understood"]);
    }

    /// Found by fuzzing (`ftp_session`): a multi-byte character across byte 4 of an OPTS
    /// argument was sliced inside the character, a panic that aborts the instance, before login.
    #[test]
    fn opts_with_a_multibyte_character_at_byte_four_does_not_panic() {
        check(
            Off,
            &["OPTS MLS\u{ff}T"],
            &["501 OPTS MLS\u{ff}T not understood"],
        );
    }

    #[test]
    fn pasv_refused_on_ipv6_sets_up_no_data_channel() {
        let mut s = session(Optional);
        s.login = Login::In("a".into());
        let r = s.passive_ready("[2001:db8::1]:20001".parse().unwrap(), false);
        assert_eq!(r.code, 522);
        assert_eq!(
            s.on_command(Command::Stor("asa/x".into())),
            reply(425, "use PASV, EPSV, PORT or EPRT first")
        );
    }

    #[test]
    fn replies_render() {
        assert_eq!(Reply::new(200, "ok").render(), "200 ok\r\n");
        let r = Reply {
            code: 211,
            lines: vec!["features:".into(), "EPSV".into(), "end".into()],
        };
        assert_eq!(r.render(), "211-features:\r\n EPSV\r\n211 end\r\n");
    }
}
