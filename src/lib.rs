//! lc's modules, as a library: the `lc` binary (`main.rs`) is a thin command line over it, and
//! the fuzz harnesses (`fuzz/`, `fuzzing.rs`) reach the pure protocol code through it. Nothing
//! here is a stable API; the library exists so that one copy of each module is compiled.
//! So the lints about the shape of a public API (which the binary alone never triggered) are
//! off: `pub` here means "for main.rs and the harnesses", not "for the world".
#![allow(
    clippy::len_without_is_empty,
    clippy::new_without_default,
    clippy::result_unit_err,
    clippy::missing_safety_doc,
    private_interfaces,
    private_bounds
)]

pub mod airgap;
pub mod allow;
pub mod careful;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connect;
pub mod deliver;
pub mod format_check;
pub mod fsx;
pub mod ftp;
pub mod fuzzing;
pub mod httpd;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod owner;
pub mod pidfile;
pub mod prompt;
pub mod proxy_header;
pub mod reactor;
pub mod secret;
pub mod segment;
pub mod server;
pub mod spool;
pub mod status;
pub mod syslog;
pub mod tail;
#[cfg(test)]
pub mod testing;
pub mod tls;

/// The version: Cargo.toml's, or the release's (`0.1.0+g1234abcd`) when scripts/release.sh
/// builds it (LC_VERSION at build time).
pub const VERSION: &str = match option_env!("LC_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};
