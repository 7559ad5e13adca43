//! Syslog wire formats, without I/O: RFC 6587 stream framing, the vendor rendering of a
//! message (rsyslog's parsers and traditional file format) and the spool line encoding.

mod cursor;
pub mod escape;
pub mod frame;
mod header;
pub mod render;
mod rfc3164;
mod rfc5424;
mod stamp;
