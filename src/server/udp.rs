//! The syslog UDP receiver: one datagram is one message (RFC 5426).
//!
//! `receive` takes datagrams from one socket within `UDP_BUDGET`, applies the source's allow
//! list, truncates at `max_message_bytes` and stores them. While the disk is full datagrams
//! are counted as dropped (a datagram cannot wait). The socket and the source are the loop's;
//! this reads and stores, nothing else.

use std::io;
use std::net::SocketAddr;
use std::time::SystemTime;

use mio::net::UdpSocket;

use super::source::SourceState;
use crate::clock;
use crate::logging::{LimitKey, LimitLog};
use crate::reactor::UDP_BUDGET;
use crate::status::Drop;
use crate::syslog::frame;
use crate::syslog::render::Render;

/// Receives from `sock` (bound at `addr`) into source `index`; returns whether it may have
/// more. `scratch` is larger than `max` by at least one byte, so truncation shows.
#[allow(clippy::too_many_arguments)]
pub fn receive(
    sock: &UdpSocket,
    addr: SocketAddr,
    index: usize,
    src: &mut SourceState,
    scratch: &mut [u8],
    max: usize,
    disk_full: bool,
    limit_log: &mut LimitLog,
) -> bool {
    let mut received = 0;
    let mut more = true;
    let mut origin = std::mem::take(&mut src.udp_origin);
    origin.set_time(clock::unix_secs(SystemTime::now()));
    for _ in 0..UDP_BUDGET {
        let (n, peer) = match sock.recv_from(scratch) {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                more = false;
                break;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                log::warn!("source {}: UDP {}: {e}", src.cfg.name, addr);
                more = false;
                break;
            }
        };
        if !src.cfg.allow.allows(peer.ip()) {
            src.counters.drop(Drop::NotAllowed, 1);
            let name = &src.cfg.name;
            let key = LimitKey::new(index, "allow").with(peer.ip(), "");
            limit_log.hit_key(key, || {
                format!("source {name}: {peer}: sender not in the allow list; dropped")
            });
            continue;
        }
        if disk_full {
            src.counters.drop(Drop::DiskFull, 1);
            continue;
        }
        // `render = vendor` drops a trailing NUL and LF itself, as rsyslog does (a CR
        // before the LF stays, a datagram of just LF is written).
        let mut msg = match src.cfg.render {
            Render::Vendor => &scratch[..n],
            Render::Raw => frame::trim_trailing_newline(&scratch[..n]),
        };
        if msg.len() > max {
            msg = &msg[..max];
            src.counters.truncated += 1;
        }
        origin.set_peer(peer.ip());
        src.store(msg, &origin);
        received += 1;
    }
    src.udp_origin = origin;
    if received > 0 {
        src.counters.last_received = clock::unix_secs(SystemTime::now());
    }
    more
}
