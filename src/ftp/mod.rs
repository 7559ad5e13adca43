//! The built-in FTP/FTPS server (DESIGN.md "FTP server").
//!
//! Work in progress: the protocol pieces here (command parsing, the confined namespace, the
//! session state machine) are complete and table-tested, and the password file serves
//! `lc passwd`; the event-loop side (control and data connections, FTPS, listings, uploads
//! into the spool) comes next, and until then the server does not call them.
#![allow(dead_code)]

pub mod command;
pub mod listing;
pub mod passwd;
pub mod path;
pub mod session;
