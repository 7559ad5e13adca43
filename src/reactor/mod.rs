//! The reactor's parts that do not know what a connection carries: the token space of one
//! instance's `mio::Poll`, slots that are never reused while a stale event could name them
//! (`slab.rs`), and connection admission with its per-IP counts (`guard.rs`), with the two
//! composed into the syslog server's connection table (`table.rs`).
//!
//! Nothing here reads or writes a socket or registers one: the loop (`server/`) and the FTP
//! server own their sockets and ask these types for tokens, slots and admission. Each type
//! keeps one invariant and is table-tested beside it.

pub mod guard;
pub mod slab;
pub mod table;

use mio::Token;

/// The waker the worker threads use to report (channel + `mio::Waker`).
pub const WAKER: Token = Token(0);
/// The signalfd (SIGTERM, SIGINT, SIGHUP).
pub const SIGNALS: Token = Token(1);
/// Listener `i` of the syslog server is `LISTENER_BASE + i`; indices are never reused.
pub const LISTENER_BASE: usize = 16;
/// Syslog stream connection in slot `s` is `CONN_BASE + s`.
pub const CONN_BASE: usize = 1 << 32;
/// The metrics HTTP server's (`httpd`) listener is `HTTP_BASE`, its connection in slot `s`
/// is `HTTP_BASE + 1 + s`.
pub const HTTP_BASE: usize = 1 << 36;
/// Socket of the FTP server in slot `s` is `FTP_BASE + s` (`ftp::server::TOKEN_BASE`).
pub const FTP_BASE: usize = 1 << 40;

/// Bytes read from one connection per loop iteration, so one busy sender cannot starve the
/// rest.
pub const READ_BUDGET: usize = 256 * 1024;
/// Datagrams received from one UDP socket per loop iteration.
pub const UDP_BUDGET: usize = 2048;
/// Connections accepted per listener per iteration.
pub const ACCEPT_BUDGET: usize = 256;

/// Who a token of the loop belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Waker,
    Signals,
    /// A syslog listener, by index.
    Listener(usize),
    /// A syslog stream connection (the token, for the connection table).
    Conn(Token),
    /// A socket of the metrics HTTP server (the token, for it to decode).
    Http(Token),
    /// A socket of the FTP server (the token, for it to decode).
    Ftp(Token),
    /// Between the fixed tokens and the listeners: never handed out.
    Unknown,
}

/// Sorts a token into its range.
pub fn owner(token: Token) -> Owner {
    match token.0 {
        0 => Owner::Waker,
        1 => Owner::Signals,
        t if t >= FTP_BASE => Owner::Ftp(token),
        t if t >= HTTP_BASE => Owner::Http(token),
        t if t >= CONN_BASE => Owner::Conn(token),
        t if t >= LISTENER_BASE => Owner::Listener(t - LISTENER_BASE),
        _ => Owner::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(token: usize, expected: Owner) {
        assert_eq!(owner(Token(token)), expected, "token {token}");
    }

    #[test]
    fn token_ranges() {
        check(0, Owner::Waker);
        check(1, Owner::Signals);
        check(2, Owner::Unknown);
        check(15, Owner::Unknown);
        check(16, Owner::Listener(0));
        check(17, Owner::Listener(1));
        check(CONN_BASE - 1, Owner::Listener(CONN_BASE - 1 - 16));
        check(CONN_BASE, Owner::Conn(Token(CONN_BASE)));
        check(HTTP_BASE - 1, Owner::Conn(Token(HTTP_BASE - 1)));
        check(HTTP_BASE, Owner::Http(Token(HTTP_BASE)));
        check(FTP_BASE - 1, Owner::Http(Token(FTP_BASE - 1)));
        check(FTP_BASE, Owner::Ftp(Token(FTP_BASE)));
        check(FTP_BASE + 7, Owner::Ftp(Token(FTP_BASE + 7)));
    }
}
