//! Integration tests: the real `lc` binary, real peers (logger, rsyslog, loggen), real sockets
//! on loopback, temp dirs. One test binary; modules by area.

mod harness;

mod airgap;
mod balancer;
mod check;
mod cli;
mod cloud;
mod delivery;
mod ftp;
mod ftp_bounds;
mod ftp_faults;
mod ftp_fidelity;
pub mod install;
mod metrics;
mod passwd;
mod peers;
mod receive;
mod render;
mod security;
mod spool;
mod tls;
