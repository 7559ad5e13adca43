//! What rsyslog's parsers take from a message header, as positions in the sanitized message:
//! the result type shared by `rfc5424.rs` and `rfc3164.rs`, which `render.rs` turns into
//! `%TIMESTAMP% %HOSTNAME% %syslogtag%` and `%msg%`. No I/O.

use std::ops::Range;

use super::stamp::Stamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The message's own timestamp; `None` means rsyslog's receive time.
    pub stamp: Option<Stamp>,
    /// The message's HOSTNAME; `None` means the sender's address (rsyslog's `fromhost`).
    pub host: Option<Range<usize>>,
    pub tag: Tag,
    /// Where MSG starts. May be one past the end of the message (then MSG is empty).
    pub msg: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tag {
    Empty,
    /// RFC 3164 TAG as rsyslog cut it, colon included. `end` may be one past the end of the
    /// message: rsyslog then copied the NUL terminator into the tag, and writes it.
    Bytes(Range<usize>),
    /// RFC 5424: rsyslog emulates the tag as `APP-NAME[PROCID]`, or `APP-NAME` when PROCID
    /// is `-` (`runtime/msg.c`, `tryEmulateTAG`); an empty APP-NAME reads as `-`.
    App {
        app: Range<usize>,
        procid: Range<usize>,
    },
}

impl Header {
    /// No header at all: receive time, sender's address, no tag, MSG from `msg`.
    pub fn bare(msg: usize) -> Header {
        Header {
            stamp: None,
            host: None,
            tag: Tag::Empty,
            msg,
        }
    }
}
