//! Syslog wire formats, without I/O: RFC 6587 stream framing and the spool line encoding.

pub mod escape;
pub mod frame;
