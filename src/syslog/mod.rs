//! Syslog wire formats, without I/O: RFC 6587 stream framing, the vendor rendering of a
//! message (rsyslog's parsers and traditional file format) and the spool line encoding.

pub mod escape;
pub mod frame;
pub mod render;
