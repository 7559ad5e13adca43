//! systemd's notify protocol (sd_notify(3)) without libsystemd: one datagram to the socket
//! named by `NOTIFY_SOCKET`. Outside systemd these calls do nothing.

use std::os::unix::net::UnixDatagram;

fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = UnixDatagram::unbound() else {
        return;
    };
    let bytes = path.as_encoded_bytes();
    let result = if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket: the leading '@' stands for a NUL byte.
        use std::os::linux::net::SocketAddrExt;
        std::os::unix::net::SocketAddr::from_abstract_name(name)
            .and_then(|a| sock.send_to_addr(state.as_bytes(), &a))
    } else {
        sock.send_to(state.as_bytes(), &path)
    };
    if let Err(e) = result {
        log::debug!("NOTIFY_SOCKET: {e}");
    }
}

pub fn ready() {
    send("READY=1\nSTATUS=receiving");
}

pub fn reloading() {
    let usec = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    send(&format!(
        "RELOADING=1\nMONOTONIC_USEC={}",
        monotonic_usec().unwrap_or(usec)
    ));
}

pub fn stopping() {
    send("STOPPING=1");
}

fn monotonic_usec() -> Option<u128> {
    let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    Some(ts.tv_sec() as u128 * 1_000_000 + ts.tv_nsec() as u128 / 1000)
}
