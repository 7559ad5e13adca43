//! A non-blocking FTP connection, control or data, in the clear or under TLS.
//!
//! Reads hand out plaintext; writes queue plaintext and [`Stream::flush`] pushes what the
//! socket takes, so the loop registers for WRITABLE only as long as something is queued.
//! TLS is rustls' `ServerConnection` driven by hand: records in with `read_tls`, out with
//! `write_tls`, never blocking.

use std::io::{self, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::{ServerConfig, ServerConnection};

pub struct Stream {
    pub sock: TcpStream,
    tls: Option<Box<ServerConnection>>,
    /// Plaintext waiting to be sent (for TLS: not yet taken by the TLS writer).
    out: Vec<u8>,
    /// The peer closed its side of the TCP connection.
    eof: bool,
    /// Send a TLS close_notify once everything queued is out.
    notify: bool,
    /// TLS records read from the socket, not yet given to rustls (which takes 4 KiB per
    /// `read_tls`: reading the socket in larger chunks saves most of the syscalls); or
    /// bytes `unread` gave back, before any TLS.
    raw: Vec<u8>,
    raw_pos: usize,
    /// What ended the last read after it had data: returned by the next one.
    deferred: Option<io::Result<Got>>,
}

/// How much is read from a TLS socket at a time.
const RAW_BYTES: usize = 64 * 1024;

/// What one read found.
pub enum Got {
    Data(usize),
    Eof,
    /// The peer closed without a TLS close_notify: the data may be cut short.
    Truncated,
}

impl Stream {
    pub fn new(sock: TcpStream) -> Stream {
        Stream {
            sock,
            tls: None,
            out: Vec::new(),
            eof: false,
            notify: false,
            raw: Vec::new(),
            raw_pos: 0,
            deferred: None,
        }
    }

    /// Switches to TLS as the server. `early` is what the client sent past the command that
    /// asked for it (the start of its handshake).
    pub fn start_tls(&mut self, config: &Arc<ServerConfig>, early: &[u8]) -> io::Result<()> {
        let mut tls = ServerConnection::new(Arc::clone(config)).map_err(io::Error::other)?;
        if !early.is_empty() {
            let mut rest = early;
            while !rest.is_empty() {
                tls.read_tls(&mut rest)?;
                tls.process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            }
        }
        self.tls = Some(Box::new(tls));
        Ok(())
    }

    /// Bytes that were read from the socket with something before them (a PROXY protocol
    /// header) and belong to this stream: the next reads return them first, or TLS takes
    /// them as its first records. Only before any other read.
    pub fn unread(&mut self, bytes: Vec<u8>) {
        debug_assert!(self.raw_pos == self.raw.len(), "unread before any read");
        self.raw = bytes;
        self.raw_pos = 0;
    }

    pub fn handshaking(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.is_handshaking())
    }

    /// Reads plaintext into `buf`. `Err(WouldBlock)` when nothing more is there for now.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Got> {
        if self.tls.is_none() {
            if self.raw_pos < self.raw.len() {
                let n = buf.len().min(self.raw.len() - self.raw_pos);
                buf[..n].copy_from_slice(&self.raw[self.raw_pos..self.raw_pos + n]);
                self.raw_pos += n;
                return Ok(Got::Data(n));
            }
            return loop {
                match self.sock.read(buf) {
                    Ok(0) => break Ok(Got::Eof),
                    Ok(n) => break Ok(Got::Data(n)),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => break Err(e),
                }
            };
        }
        // Fill `buf` from as many records as are there (one is 16 KiB at most), so an upload
        // is written to its file in large pieces. What ends the filling (the end, an error)
        // waits for the next call when data came before it.
        let mut total = 0;
        while total < buf.len() {
            let got = match self.deferred.take() {
                Some(d) => d,
                None => self.read_record(&mut buf[total..]),
            };
            match got {
                Ok(Got::Data(n)) => total += n,
                other if total == 0 => return other,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                other => {
                    self.deferred = Some(other);
                    break;
                }
            }
        }
        Ok(Got::Data(total))
    }

    /// The plaintext of what rustls holds, else of the next records it can decrypt.
    fn read_record(&mut self, buf: &mut [u8]) -> io::Result<Got> {
        let Stream {
            sock,
            tls,
            raw,
            raw_pos,
            eof,
            ..
        } = self;
        let tls = tls.as_mut().expect("a TLS stream");
        loop {
            match tls.reader().read(buf) {
                Ok(0) => return Ok(Got::Eof),
                Ok(n) => return Ok(Got::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Got::Truncated),
                Err(e) => return Err(e),
            }
            if *raw_pos == raw.len() {
                if *eof {
                    return Ok(Got::Truncated);
                }
                raw.resize(RAW_BYTES, 0);
                *raw_pos = 0;
                match sock.read(raw) {
                    Ok(n) => raw.truncate(n),
                    Err(e) => {
                        raw.clear();
                        if e.kind() == io::ErrorKind::Interrupted {
                            continue;
                        }
                        return Err(e);
                    }
                }
                if raw.is_empty() {
                    // End of stream: rustls learns it from an empty read.
                    *eof = true;
                    tls.read_tls(&mut io::empty())?;
                }
            }
            let mut rest = &raw[*raw_pos..];
            *raw_pos += tls.read_tls(&mut rest)?;
            if let Err(e) = tls.process_new_packets() {
                // Tell the peer why (the alert is queued), then give up on the connection.
                let _ = tls.write_tls(sock);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            if tls.wants_write() {
                // Handshake records: send what the socket takes; the rest goes on WRITABLE.
                match tls.write_tls(sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    /// Plaintext queued and not yet taken by the socket (or the TLS writer).
    pub fn queued(&self) -> usize {
        self.out.len()
    }

    /// Queues plaintext to send.
    pub fn queue(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
    }

    /// Sends what the socket takes; Ok(true) when everything queued is out.
    pub fn flush(&mut self) -> io::Result<bool> {
        let Some(tls) = &mut self.tls else {
            while !self.out.is_empty() {
                match self.sock.write(&self.out) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => drop(self.out.drain(..n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            return Ok(true);
        };
        loop {
            let mut took = 0;
            if !self.out.is_empty() {
                took = tls.writer().write(&self.out)?;
                self.out.drain(..took);
            }
            while tls.wants_write() {
                match tls.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.out.is_empty() {
                if std::mem::take(&mut self.notify) {
                    tls.send_close_notify();
                    continue;
                }
                return Ok(true);
            }
            if took == 0 {
                // The TLS writer takes nothing until the handshake moves on.
                return Ok(false);
            }
        }
    }

    /// Ends the TLS session cleanly: a close_notify follows what is queued. The caller
    /// flushes, then closes.
    pub fn close_notify(&mut self) {
        self.notify = self.tls.is_some();
    }
}
