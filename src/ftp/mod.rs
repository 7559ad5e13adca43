//! The built-in FTP/FTPS server (DESIGN.md "FTP server").
//!
//! Protocol pieces without I/O: `command` (lines and parsing), `path` (the confined
//! namespace), `session` (the state machine per control connection), `listing` (LIST, NLST,
//! MLSD lines), `content` (what an upload is: text, gzip, zip; TYPE A's CRLF to LF),
//! `recent` (uploads answered with 226 lately, known after delivery), and the seams the
//! server carries out: `pipeline` (an upload from its first byte to received), `gate`
//! (logins and lockouts), `files` (the namespace and file actions as plans), `counts` (the
//! counters and the status snapshot). I/O: `stream` (a connection in the clear or under TLS), `server` (every FTP
//! socket, driven by the instance's event loop) and `jobs` (the `lc-ftp` thread for password
//! checks, commits and file operations). `passwd` is the user file, shared with `lc passwd`.

pub mod command;
pub mod content;
pub mod control;
pub mod counts;
pub mod data;
pub mod expiry;
pub mod files;
pub mod gate;
pub mod jobs;
pub mod listing;
pub mod lockout;
pub mod login;
pub mod passive;
pub mod passwd;
pub mod path;
pub mod pipeline;
pub mod recent;
pub mod room;
pub mod server;
pub mod session;
pub mod stream;
pub mod upload;
