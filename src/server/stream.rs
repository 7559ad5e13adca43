//! The syslog stream receiver: one TCP or TLS connection read into its source's spool.
//!
//! `read_plain` and `read_tls` read a connection within `READ_BUDGET` and feed the bytes to
//! its `Framing`, which runs the pure RFC 6587 decoder (`syslog::frame`) and keeps the bytes
//! of an incomplete frame between reads. They return what happened (`ReadOutcome`); the loop
//! decides what that means for the connection (close it, count a TLS failure, wait for the
//! next edge). Nothing here knows about other connections, listeners or the disk.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use mio::net::TcpStream;

use super::source::SourceState;
use crate::clock;
use crate::config::Source;
use crate::proxy_header::{Header, Pending, Progress};
use crate::reactor::READ_BUDGET;
use crate::syslog::frame::{Decoded, Decoder, Ends};
use crate::syslog::render::{Origin, Render};

/// A pending buffer larger than this is let go once it is empty again.
const KEEP_BUFFER: usize = 64 * 1024;

pub struct Conn {
    pub stream: TcpStream,
    /// The sender: the socket's peer, or the client a PROXY protocol header named.
    pub peer: SocketAddr,
    pub source: usize,
    pub framing: Framing,
    pub last_active: Instant,
    /// The TLS session of a syslog-tls connection.
    pub tls: Option<Box<TlsState>>,
    /// Set while a `proxy_protocol = on` connection has not yet sent its whole header.
    pub proxy: Option<ProxyWait>,
    /// Bytes that came after the PROXY header in the same read: the stream's first bytes,
    /// read before the socket.
    pub early: Vec<u8>,
    /// The balancer's own connection (a health check): its close or reset is not news.
    pub balancer_check: bool,
}

/// A PROXY protocol header being read.
pub struct ProxyWait {
    pub since: Instant,
    header: Pending,
}

impl ProxyWait {
    pub fn new() -> ProxyWait {
        ProxyWait {
            since: Instant::now(),
            header: Pending::default(),
        }
    }
}

pub enum ProxyRead {
    /// Not all of it yet; wait for the next edge.
    Waiting,
    Done(Header),
    Invalid(&'static str),
    /// The peer closed or reset the connection first.
    Closed,
}

/// Reads the PROXY protocol header of `conn` (HAProxy's specification, v1 or v2). The bytes
/// after it stay in `conn.early` for the stream's reader.
pub fn read_proxy(conn: &mut Conn, scratch: &mut [u8]) -> ProxyRead {
    let wait = conn
        .proxy
        .as_mut()
        .expect("read_proxy is for connections awaiting a header");
    loop {
        match conn.stream.read(scratch) {
            Ok(0) => return ProxyRead::Closed,
            Ok(n) => match wait.header.push(&scratch[..n]) {
                Progress::NeedMore => {}
                Progress::Invalid(why) => return ProxyRead::Invalid(why),
                Progress::Done { header, rest } => {
                    conn.early = rest;
                    conn.proxy = None;
                    return ProxyRead::Done(header);
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ProxyRead::Waiting,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return ProxyRead::Closed,
        }
    }
}

/// The stream as its readers see it: `early` first, then the socket.
struct Input<'a> {
    early: &'a mut Vec<u8>,
    stream: &'a mut TcpStream,
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.early.is_empty() {
            return self.stream.read(buf);
        }
        let n = buf.len().min(self.early.len());
        buf[..n].copy_from_slice(&self.early[..n]);
        self.early.drain(..n);
        if self.early.is_empty() {
            *self.early = Vec::new();
        }
        Ok(n)
    }
}

/// RFC 6587 decoding state of one stream.
pub struct Framing {
    decoder: Decoder,
    /// The sender and the time of the current read, for the rendering.
    origin: Origin,
    /// Bytes of an incomplete frame, kept between reads.
    pending: Vec<u8>,
}

pub struct TlsState {
    pub session: rustls::ServerConnection,
    /// Set until the handshake completes; the handshake timeout counts from here.
    pub handshake_since: Option<Instant>,
    /// The client sent something: a close before the handshake is done is then a failed
    /// handshake, where a connection closed without a byte is a probe (a load balancer's
    /// TCP check).
    pub spoke: bool,
}

pub enum ReadOutcome {
    More,
    Drained,
    Closed(Option<io::Error>),
    /// The TLS handshake or a record failed (no or a wrong client certificate, old TLS).
    TlsFailed(rustls::Error),
    /// The client certificate's names are not in `allow_cn`.
    NameRefused(Vec<String>),
}

/// Reads a plain TCP connection up to the budget; returns the outcome and bytes read.
pub fn read_plain(
    conn: &mut Conn,
    src: &mut SourceState,
    scratch: &mut [u8],
) -> (ReadOutcome, usize) {
    let mut total = 0;
    loop {
        if total >= READ_BUDGET {
            return (ReadOutcome::More, total);
        }
        let mut input = Input {
            early: &mut conn.early,
            stream: &mut conn.stream,
        };
        match input.read(scratch) {
            Ok(0) => return (ReadOutcome::Closed(None), total),
            Ok(n) => {
                total += n;
                conn.framing.feed(src, &scratch[..n]);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return (ReadOutcome::Drained, total)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (ReadOutcome::Closed(Some(e)), total),
        }
    }
}

/// Reads a TLS connection up to the budget: sends what rustls has queued (handshake records,
/// alerts), feeds it records, checks `allow_cn` once the handshake is done, and decodes the
/// plaintext. RFC 5425: the syslog frames inside TLS are the same as on TCP.
pub fn read_tls(
    conn: &mut Conn,
    src: &mut SourceState,
    scratch: &mut [u8],
) -> (ReadOutcome, usize) {
    let Conn {
        stream,
        framing,
        tls,
        early,
        ..
    } = conn;
    let tls = tls.as_mut().expect("read_tls is for TLS connections");
    let mut total = 0;
    loop {
        while tls.session.wants_write() {
            match tls.session.write_tls(stream) {
                Ok(_) => {}
                // The socket is full: its WRITABLE event brings us back.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return (ReadOutcome::Closed(Some(e)), total),
            }
        }
        if total >= READ_BUDGET {
            return (ReadOutcome::More, total);
        }
        let (eof, drained) = match tls.session.read_tls(&mut Input { early, stream }) {
            Ok(0) => (true, false),
            Ok(n) => {
                total += n;
                (false, false)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => (false, true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return (ReadOutcome::Closed(Some(e)), total),
        };
        if let Err(e) = tls.session.process_new_packets() {
            // Tell the peer why (the alert rustls queued), as far as the socket takes it.
            let _ = tls.session.write_tls(stream);
            return (ReadOutcome::TlsFailed(e), total);
        }
        if tls.handshake_since.is_some() && !tls.session.is_handshaking() {
            tls.handshake_since = None;
            let names = tls
                .session
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| crate::tls::peer_names(c))
                .unwrap_or_default();
            if !crate::tls::name_allowed(&names, &src.cfg.allow_cn) {
                return (ReadOutcome::NameRefused(names), total);
            }
        }
        loop {
            match tls.session.reader().read(scratch) {
                // close_notify: the peer ended the session cleanly.
                Ok(0) => return (ReadOutcome::Closed(None), total),
                Ok(n) => framing.feed(src, &scratch[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return (ReadOutcome::Closed(None), total)
                }
                Err(e) => return (ReadOutcome::Closed(Some(e)), total),
            }
        }
        if eof {
            return (ReadOutcome::Closed(None), total);
        }
        if drained {
            return (ReadOutcome::Drained, total);
        }
    }
}

/// Decodes `data` read from `conn` into the source's spool, keeping any incomplete frame.
impl Framing {
    /// The sender a PROXY protocol header named, for the rendering.
    pub fn set_peer(&mut self, peer: IpAddr) {
        self.origin.set_peer(peer);
    }

    pub fn new(max: usize, cfg: &Source, peer: IpAddr) -> Framing {
        let mut origin = Origin::new();
        origin.set_peer(peer);
        // The vendor rendering frames as the vendor's rsyslog does, so its lines match
        // byte for byte; raw keeps the common terminators (NUL, CRLF) as framing.
        let ends = match cfg.render {
            Render::Vendor => Ends::Lf,
            Render::Raw => Ends::Any,
        };
        Framing {
            decoder: Decoder::new(max, cfg.framing, ends),
            origin,
            pending: Vec::new(),
        }
    }

    /// Decodes `data` into the source's spool, keeping any incomplete frame.
    pub fn feed(&mut self, src: &mut SourceState, data: &[u8]) {
        self.origin.set_time(clock::unix_secs(SystemTime::now()));
        // Common case: no partial frame waiting, decode straight from the read buffer.
        if self.pending.is_empty() {
            let used = decode_all(&mut self.decoder, src, data, &self.origin);
            self.pending.extend_from_slice(&data[used..]);
        } else {
            self.pending.extend_from_slice(data);
            let pending = std::mem::take(&mut self.pending);
            let used = decode_all(&mut self.decoder, src, &pending, &self.origin);
            self.pending = pending;
            self.pending.drain(..used);
        }
        // Don't hold on to a large buffer after a large frame has gone through.
        if self.pending.is_empty() && self.pending.capacity() > KEEP_BUFFER {
            self.pending = Vec::new();
        }
    }

    /// Bytes of an incomplete frame held between reads.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Ends the incomplete frame held now as a truncated message (the budget for partial
    /// frames of all connections ran out); the rest of that frame is discarded as it arrives.
    /// Returns the bytes let go (0 when they were only the start of an octet count).
    pub fn cut(&mut self, src: &mut SourceState) -> usize {
        let held = self.pending.len();
        let Some(msg) = self.decoder.cut(&self.pending) else {
            return 0;
        };
        self.origin.set_time(clock::unix_secs(SystemTime::now()));
        src.store(msg, &self.origin);
        src.counters.truncated += 1;
        self.pending = Vec::new();
        held
    }

    /// The stream ended: what the sender sent of a last frame is kept as a message.
    pub fn finish(&mut self, src: &mut SourceState) {
        let pending = std::mem::take(&mut self.pending);
        if let Some(msg) = self.decoder.finish(&pending) {
            self.origin.set_time(clock::unix_secs(SystemTime::now()));
            src.store(msg, &self.origin);
        }
    }
}

fn decode_all(decoder: &mut Decoder, src: &mut SourceState, buf: &[u8], origin: &Origin) -> usize {
    let mut at = 0;
    while let Some((what, used)) = decoder.decode(&buf[at..]) {
        at += used;
        if let Decoded::Message { msg, truncated } = what {
            src.store(msg, origin);
            src.counters.truncated += u64::from(truncated);
        }
    }
    at
}
