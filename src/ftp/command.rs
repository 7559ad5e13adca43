//! FTP control-channel commands, without I/O: bytes in, [`Command`]s out.
//!
//! RFC 959 for the base commands, RFC 2228 (AUTH, PBSZ, PROT), RFC 2428 (EPSV, EPRT), RFC 2389
//! (FEAT, OPTS) and RFC 3659 (SIZE, MDTM, MLSD, MLST). Lines end in CRLF (a bare LF is
//! accepted, as most servers do) and are capped at [`MAX_LINE`] bytes. The session decides
//! what a command means in its state; this module only says what was asked.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::secret::Secret;

/// The longest control line accepted, CRLF included.
pub const MAX_LINE: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(Secret),
    Quit,
    Noop,
    Syst,
    Feat,
    Opts(String),
    Help,
    /// `STAT` (the session's status) or `STAT path` (a listing over the control connection,
    /// RFC 959 section 4.1.3).
    Stat(Option<String>),
    Pwd,
    Cwd(String),
    Cdup,
    Type(char),
    Mode(char),
    Stru(char),
    Pasv,
    /// `EPSV`, `EPSV 1|2` (the network protocol asked for) or `EPSV ALL` (RFC 2428 section 4).
    Epsv {
        all: bool,
        net: Option<u8>,
    },
    Port(SocketAddr),
    Eprt(SocketAddr),
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Size(String),
    Mdtm(String),
    Stor(String),
    Appe(String),
    Rest(u64),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    Abor,
    Allo,
    /// MKD/XMKD: folders cannot be made, but clients (lftp's mirror) ask.
    Mkd(String),
    /// RMD/XRMD.
    Rmd(String),
    Auth(String),
    Pbsz(u64),
    Prot(char),
    /// A verb this server does not implement (answered 502).
    Unknown(String),
}

/// A line that is not a well-formed command: the reply code and text to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub text: String,
}

fn refuse(code: u16, text: impl Into<String>) -> Refusal {
    Refusal {
        code,
        text: text.into(),
    }
}

/// Splits the control stream into lines. `Ok(None)` means "need more bytes".
#[derive(Debug, Default)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Set after an over-long line: its rest is skipped up to the next LF.
    skipping: bool,
}

impl LineReader {
    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete line without its line ending, or a refusal for an over-long one.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, Refusal> {
        match memchr::memchr(b'\n', &self.buf) {
            Some(i) => {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if std::mem::take(&mut self.skipping) {
                    return self.next_line();
                }
                if line.len() + 2 > MAX_LINE {
                    return Err(refuse(500, "line too long"));
                }
                Ok(Some(line))
            }
            None if self.buf.len() >= MAX_LINE => {
                self.buf.clear();
                if std::mem::replace(&mut self.skipping, true) {
                    return Ok(None);
                }
                Err(refuse(500, "line too long"))
            }
            None => Ok(None),
        }
    }

    /// Takes what was received past the last line read: after AUTH TLS these are the start of
    /// the client's handshake, not commands.
    pub fn take_rest(&mut self) -> Vec<u8> {
        self.skipping = false;
        std::mem::take(&mut self.buf)
    }
}

/// Drops the Telnet "interrupt process" and "synch" signals (IAC IP, IAC DM, or a lone DM
/// left by urgent data) that clients send before ABOR (RFC 959 section 4.1.3).
fn strip_telnet(mut line: &[u8]) -> &[u8] {
    loop {
        line = match line {
            [0xff, 0xf4 | 0xf2, rest @ ..] | [0xf2, rest @ ..] => rest,
            _ => return line,
        }
    }
}

/// Parses one control line (without its line ending).
pub fn parse(line: &[u8]) -> Result<Command, Refusal> {
    let line = strip_telnet(line);
    if line.contains(&0) {
        return Err(refuse(501, "NUL in command"));
    }
    let decoded;
    let line = match std::str::from_utf8(line) {
        Ok(text) => text,
        Err(_) => {
            decoded = latin1(line);
            &decoded
        }
    };
    let (verb, arg) = match line.split_once(' ') {
        Some((v, a)) => (v, a),
        None => (line, ""),
    };
    if verb.is_empty() || !verb.bytes().all(|b| b.is_ascii_alphabetic()) || verb.len() > 8 {
        return Err(refuse(500, "syntax error, command unrecognized"));
    }
    let verb = verb.to_ascii_uppercase();
    let need = |what: &str| -> Result<String, Refusal> {
        if arg.is_empty() {
            Err(refuse(501, format!("{verb} needs {what}")))
        } else {
            Ok(arg.to_string())
        }
    };
    let optional = || (!arg.is_empty()).then(|| list_arg(arg)).flatten();
    let letter = |allowed: &str| -> Result<char, Refusal> {
        let c = arg.split(' ').next().unwrap_or("").to_ascii_uppercase();
        if c.is_empty() {
            // A missing parameter is a syntax error (501), not an unimplemented one (504):
            // RFC 959 section 4.2.
            return Err(refuse(501, format!("{verb} needs one of {allowed}")));
        }
        match c.chars().next() {
            Some(ch) if c.len() == 1 && allowed.contains(ch) => Ok(ch),
            _ => Err(refuse(
                504,
                format!("{verb} {arg} not implemented; use one of {allowed}"),
            )),
        }
    };
    Ok(match verb.as_str() {
        "USER" => Command::User(need("a user name")?),
        "PASS" => Command::Pass(Secret::from_peer(arg)),
        "QUIT" => Command::Quit,
        "NOOP" => Command::Noop,
        "SYST" => Command::Syst,
        "FEAT" => Command::Feat,
        "OPTS" => Command::Opts(need("an option")?),
        "HELP" => Command::Help,
        "STAT" => Command::Stat(optional()),
        "PWD" | "XPWD" => Command::Pwd,
        "CWD" | "XCWD" => Command::Cwd(need("a folder")?),
        "CDUP" | "XCUP" => Command::Cdup,
        "TYPE" => Command::Type(letter("AIL")?),
        "MODE" => Command::Mode(letter("S")?),
        "STRU" => Command::Stru(letter("F")?),
        "PASV" => Command::Pasv,
        "EPSV" => match arg.to_ascii_uppercase().as_str() {
            "" => Command::Epsv {
                all: false,
                net: None,
            },
            "1" | "2" => Command::Epsv {
                all: false,
                net: arg.parse().ok(),
            },
            "ALL" => Command::Epsv {
                all: true,
                net: None,
            },
            _ => return Err(refuse(522, "network protocol not supported, use (1,2)")),
        },
        "PORT" => Command::Port(parse_port(arg)?),
        "EPRT" => Command::Eprt(parse_eprt(arg)?),
        "LIST" => Command::List(optional()),
        "NLST" => Command::Nlst(optional()),
        "MLSD" => Command::Mlsd(optional()),
        "MLST" => Command::Mlst(optional()),
        "SIZE" => Command::Size(need("a file name")?),
        "MDTM" => Command::Mdtm(need("a file name")?),
        "STOR" => Command::Stor(need("a file name")?),
        "APPE" => Command::Appe(need("a file name")?),
        "REST" => Command::Rest(
            arg.parse()
                .map_err(|_| refuse(501, "REST needs a byte offset"))?,
        ),
        "DELE" => Command::Dele(need("a file name")?),
        "RNFR" => Command::Rnfr(need("a file name")?),
        "RNTO" => Command::Rnto(need("a file name")?),
        "ABOR" => Command::Abor,
        "MKD" | "XMKD" => Command::Mkd(need("a folder")?),
        "RMD" | "XRMD" => Command::Rmd(need("a folder")?),
        "ALLO" => Command::Allo,
        "AUTH" => Command::Auth(need("a mechanism")?.to_ascii_uppercase()),
        "PBSZ" => Command::Pbsz(
            arg.parse()
                .map_err(|_| refuse(501, "PBSZ needs a number"))?,
        ),
        "PROT" => Command::Prot(letter("CP")?),
        _ => Command::Unknown(verb),
    })
}

/// Whether a control line is not UTF-8: its client names files in Latin-1 (or another 8-bit
/// code page), and the session answers in kind.
pub fn is_latin1(line: &[u8]) -> bool {
    std::str::from_utf8(line).is_err()
}

/// A line that is not UTF-8, read as Latin-1: every byte one char (U+0000 to U+00FF), so no
/// byte is lost and [`to_latin1`] gives the client's bytes back. pure-ftpd takes such names
/// as the bytes they are (RFC 959 predates UTF-8; RFC 2640 section 3.1 asks servers to cope).
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Text for a Latin-1 client: chars above U+00FF (names a UTF-8 client uploaded) as `?`.
pub fn to_latin1(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect()
}

/// LIST and NLST arguments may carry ls options (`-la`), which clients send and servers
/// ignore; what is left is the path.
fn list_arg(arg: &str) -> Option<String> {
    let path: Vec<&str> = arg
        .split(' ')
        .filter(|w| !w.starts_with('-') && !w.is_empty())
        .collect();
    (!path.is_empty()).then(|| path.join(" "))
}

/// `PORT h1,h2,h3,h4,p1,p2` (RFC 959 section 4.1.2).
fn parse_port(arg: &str) -> Result<SocketAddr, Refusal> {
    let bad = || refuse(501, "PORT needs h1,h2,h3,h4,p1,p2");
    let n: Vec<u8> = arg
        .split(',')
        .map(|p| p.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if n.len() != 6 {
        return Err(bad());
    }
    let ip = Ipv4Addr::new(n[0], n[1], n[2], n[3]);
    Ok(SocketAddr::new(
        IpAddr::V4(ip),
        u16::from(n[4]) << 8 | u16::from(n[5]),
    ))
}

/// `EPRT |1|132.235.1.2|6275|` or `EPRT |2|::1|6275|` (RFC 2428 section 2).
fn parse_eprt(arg: &str) -> Result<SocketAddr, Refusal> {
    let bad = || refuse(501, "EPRT needs |proto|address|port|");
    let delim = arg.chars().next().ok_or_else(bad)?;
    let parts: Vec<&str> = arg.split(delim).collect();
    if parts.len() != 5 || !parts[0].is_empty() || !parts[4].is_empty() {
        return Err(bad());
    }
    let ip: IpAddr = parts[2].parse().map_err(|_| bad())?;
    match (parts[1], ip) {
        ("1", IpAddr::V4(_)) | ("2", IpAddr::V6(_)) => {}
        _ => return Err(refuse(522, "network protocol not supported, use (1,2)")),
    }
    let port: u16 = parts[3].parse().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, port))
}

/// A file name as log lines show it: ASCII as it is, anything else escaped (`caf\u{e9}`),
/// so a Latin-1 name (read byte by byte, [`latin1`]) or a control character cannot garble
/// the log.
pub fn escaped(name: &str) -> String {
    name.escape_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(line: &str, expected: &str) {
        let got = match parse(line.as_bytes()) {
            Ok(c) => format!("{c:?}"),
            Err(r) => format!("{} {}", r.code, r.text),
        };
        assert_eq!(got, expected, "{line:?}");
    }

    #[test]
    fn table() {
        check("USER discovery", "User(\"discovery\")");
        check("user discovery", "User(\"discovery\")");
        check("USER", "501 USER needs a user name");
        check("PASS s3cret", "Pass(***)");
        check("PASS", "Pass(***)");
        check("CWD /asa hq", "Cwd(\"/asa hq\")");
        check("XPWD", "Pwd");
        check("TYPE I", "Type('I')");
        check("TYPE A N", "Type('A')");
        check("TYPE E", "504 TYPE E not implemented; use one of AIL");
        check("MODE B", "504 MODE B not implemented; use one of S");
        check("PASV", "Pasv");
        check("MKD squid", "Mkd(\"squid\")");
        check("XRMD /a", "Rmd(\"/a\")");
        assert_eq!(parse(b"\xff\xf4\xff\xf2ABOR"), Ok(Command::Abor));
        assert_eq!(parse(b"\xf2ABOR"), Ok(Command::Abor));
        check("EPSV", "Epsv { all: false, net: None }");
        check("EPSV 2", "Epsv { all: false, net: Some(2) }");
        check("EPSV ALL", "Epsv { all: true, net: None }");
        check("EPSV 3", "522 network protocol not supported, use (1,2)");
        check("PORT 127,0,0,1,4,1", "Port(127.0.0.1:1025)");
        check("PORT 127,0,0,1,4", "501 PORT needs h1,h2,h3,h4,p1,p2");
        check("PORT 300,0,0,1,4,1", "501 PORT needs h1,h2,h3,h4,p1,p2");
        check("EPRT |1|127.0.0.1|6275|", "Eprt(127.0.0.1:6275)");
        check("EPRT |2|::1|6275|", "Eprt([::1]:6275)");
        check(
            "EPRT |1|::1|6275|",
            "522 network protocol not supported, use (1,2)",
        );
        check(
            "EPRT |1|127.0.0.1|x|",
            "501 EPRT needs |proto|address|port|",
        );
        check("LIST", "List(None)");
        check("LIST -la", "List(None)");
        check("LIST -la /asa", "List(Some(\"/asa\"))");
        check("REST 100", "Rest(100)");
        check("REST -1", "501 REST needs a byte offset");
        check("AUTH tls", "Auth(\"TLS\")");
        check("PBSZ 0", "Pbsz(0)");
        check("PROT P", "Prot('P')");
        check("PROT S", "504 PROT S not implemented; use one of CP");
        check("TYPE", "501 TYPE needs one of AIL");
        check("MODE", "501 MODE needs one of S");
        check("STRU", "501 STRU needs one of F");
        check("PROT", "501 PROT needs one of CP");
        check("STAT", "Stat(None)");
        check("STAT /squid", "Stat(Some(\"/squid\"))");
        check("SITE CHMOD 777 x", "Unknown(\"SITE\")");
        check("", "500 syntax error, command unrecognized");
        check("R3TR x", "500 syntax error, command unrecognized");
        check("STOR a\0b", "501 NUL in command");
        assert_eq!(
            parse(b"STOR /squid/caf\xe9.log"),
            Ok(Command::Stor("/squid/caf\u{e9}.log".into()))
        );
        assert!(is_latin1(b"caf\xe9") && !is_latin1("café".as_bytes()));
        assert_eq!(to_latin1(&latin1(b"caf\xe9 \x82")), b"caf\xe9 \x82");
        assert_eq!(to_latin1("a€b"), b"a?b");
    }

    #[test]
    fn lines() {
        let mut r = LineReader::default();
        r.push(b"USER a\r\nPA");
        assert_eq!(r.next_line().unwrap(), Some(b"USER a".to_vec()));
        assert_eq!(r.next_line().unwrap(), None);
        r.push(b"SS b\n");
        assert_eq!(r.next_line().unwrap(), Some(b"PASS b".to_vec()));
        r.push(&[b'x'; 600]);
        assert_eq!(r.next_line().unwrap_err().code, 500);
        r.push(b"xxx\r\nNOOP\r\n");
        assert_eq!(r.next_line().unwrap(), Some(b"NOOP".to_vec()));
        assert!(r.buf.is_empty());
    }
}
