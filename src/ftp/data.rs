//! A data connection of the FTP server and what it carries: an upload coming in or a listing
//! going out. The server owns the sockets' slots; this is what one of them holds. Also the
//! PROXY protocol header that a connection through a load balancer starts with (control and
//! data connections alike, `[ftp] proxy_protocol = on`), read here before anything else.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::jobs::ConnRef;
use super::stream::{Got, Stream};
use crate::proxy_header::{Header, Pending, Progress};

/// A PROXY protocol header still to come on a connection.
pub struct HeaderWait {
    pub since: Instant,
    /// The socket's peer: the balancer.
    pub from: SocketAddr,
    header: Pending,
}

/// What reading a header found.
pub enum HeaderRead {
    /// Not all of it yet; the next edge brings more.
    Waiting,
    /// The header, and the bytes after it (the stream's first).
    Done(Header, Vec<u8>),
    Invalid(&'static str),
    /// The peer closed or reset first (a balancer's health check does this).
    Closed,
}

impl HeaderWait {
    pub fn new(since: Instant, from: SocketAddr) -> HeaderWait {
        HeaderWait {
            since,
            from,
            header: Pending::default(),
        }
    }

    /// Reads `stream` (in the clear: the header comes before any TLS) until the header is
    /// whole, broken, or the socket has nothing more now.
    pub fn read(&mut self, stream: &mut Stream, buf: &mut [u8]) -> HeaderRead {
        loop {
            match stream.read(buf) {
                Ok(Got::Data(n)) => match self.header.push(&buf[..n]) {
                    Progress::NeedMore => {}
                    Progress::Invalid(why) => return HeaderRead::Invalid(why),
                    Progress::Done { header, rest } => return HeaderRead::Done(header, rest),
                },
                Ok(_) => return HeaderRead::Closed,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return HeaderRead::Waiting,
                Err(_) => return HeaderRead::Closed,
            }
        }
    }
}

/// What a data connection is for.
pub enum Task {
    /// An upload, by its id in `pipeline::Uploads`.
    Upload(u64),
    Send(Vec<u8>),
}

pub struct DataConn {
    pub owner: ConnRef,
    pub stream: Stream,
    /// An active-mode connect still in progress.
    pub connecting: bool,
    pub task: Option<Task>,
    pub last_active: Instant,
    /// A listing is out: close once the socket took it.
    pub closing: bool,
    /// Through a balancer: the header still to come, and the passive listener (its slot) the
    /// connection came in on. Until the header names the session's client, the connection
    /// is no one's data connection and the listener stays open.
    pub header: Option<(HeaderWait, mio::Token)>,
}
