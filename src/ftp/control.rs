//! A control connection of the FTP server: its socket, the line reader, the session state
//! machine (`session.rs`) and the replies queued for the client, with the rule that keeps
//! them bounded: no command is read while more than [`REPLY_BACKLOG`] bytes of replies wait
//! for the socket. A client that pipelines commands and never reads its replies is paused
//! by TCP flow control, as any sender whose reader is slower; the process is not.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::command::{to_latin1, LineReader};
use super::data::{HeaderWait, Task};
use super::session::{Reply, Session};
use super::stream::Stream;
use crate::allow::canonical;
use crate::reactor::guard::Ticket;
use mio::Token;

/// Bytes of queued replies above which a control connection reads no further command until
/// the socket takes them. A few replies' worth: even STAT's and HELP's multi-line ones fit.
pub const REPLY_BACKLOG: usize = 16 * 1024;

pub struct Control {
    pub id: u64,
    pub stream: Stream,
    /// The client: the socket's peer, or the client a PROXY protocol header named.
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The load balancer the session came through (its socket's peer), if any.
    pub balancer: Option<SocketAddr>,
    /// What PASV and EPSV name when `public_address` is not set: the address the client
    /// connected to (on the balancer, as its header says, or here).
    pub advertise: IpAddr,
    /// `[ftp] proxy_protocol = on`: the header still to come; no greeting before it.
    pub header: Option<HeaderWait>,
    /// This connection's place in the connection counts.
    pub ticket: Ticket,
    pub session: Session,
    pub lines: LineReader,
    pub last_active: Instant,
    /// Waiting for the job thread (login, commit, listing, stat): no command is read.
    pub busy: bool,
    /// A failed login's reply, held back until the instant.
    pub delayed: Option<(Instant, Reply)>,
    /// AUTH TLS was answered: switch to TLS once the reply is out.
    pub tls_after_flush: bool,
    pub close_after_flush: bool,
    /// The passive listener or data connection of this session.
    pub data: Option<Token>,
    /// What the next data connection is for, while it is not connected yet.
    pub task: Option<Task>,
    /// When the transfer command was accepted and no data connection is there yet.
    pub waiting_since: Option<Instant>,
    /// A transfer is running or waiting (ABOR has something to abort).
    pub transferring: bool,
    /// RNFR's existence check is out.
    pub rnfr_pending: bool,
    /// The client sent a line that is not UTF-8: replies and listings go out in Latin-1, so
    /// it reads its file names back as the bytes it sent.
    pub latin1: bool,
}

/// Whether a control connection may take its next command now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Read and act on the next command.
    Command,
    /// Waiting for a job, a held-back reply, a TLS switch or a close.
    Busy,
    /// The client does not read its replies: no command until the socket takes them
    /// (WRITABLE brings the connection back).
    Backlog,
}

impl Control {
    pub fn new(
        id: u64,
        stream: Stream,
        peer: SocketAddr,
        local: SocketAddr,
        session: Session,
        ticket: Ticket,
    ) -> Control {
        Control {
            id,
            stream,
            peer,
            local,
            balancer: None,
            advertise: canonical(local.ip()),
            header: None,
            ticket,
            session,
            lines: LineReader::default(),
            last_active: Instant::now(),
            busy: false,
            delayed: None,
            tls_after_flush: false,
            close_after_flush: false,
            data: None,
            task: None,
            waiting_since: None,
            transferring: false,
            rnfr_pending: false,
            latin1: false,
        }
    }

    /// The answer to a file action came (from the server at once or from a job): if it was
    /// RNFR's and not 350, RNTO has nothing to rename.
    pub fn file_action_answered(&mut self, code: u16) {
        if std::mem::take(&mut self.rnfr_pending) && code != 350 {
            self.session.rename_refused();
        }
    }

    /// Queues a reply; the next service of the connection sends it.
    pub fn reply(&mut self, reply: Reply) {
        let text = reply.render();
        if self.latin1 {
            self.stream.queue(&to_latin1(&text));
        } else {
            self.stream.queue(text.as_bytes());
        }
    }

    /// Whether the next command may be read; sends queued replies first when they are many.
    pub fn may_read(&mut self) -> io::Result<Next> {
        if self.header.is_some() || self.busy || self.tls_after_flush || self.close_after_flush {
            return Ok(Next::Busy);
        }
        if self.stream.queued() > REPLY_BACKLOG {
            self.stream.flush()?;
            if self.stream.queued() > REPLY_BACKLOG {
                return Ok(Next::Backlog);
            }
        }
        Ok(Next::Command)
    }
}
