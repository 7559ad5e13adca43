//! Binding receiver sockets: dual-stack `*`, explicit addresses, large UDP receive buffers.
//!
//! Sockets are made with nix so options that must precede `bind` (IPV6_V6ONLY, SO_REUSEADDR)
//! can be set, then handed to mio. A `Listener` is one bound socket with its source; the loop
//! registers it and reads from it. Nothing here reads or writes data.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    self, sockopt, AddressFamily, Backlog, SockFlag, SockType, SockaddrStorage,
};

use mio::net::{TcpListener, UdpSocket};

use crate::config::{Listen, Source};

/// Pending connections the kernel queues before `accept`.
const LISTEN_BACKLOG: i32 = 4096;

/// The socket addresses to bind for `listen` and `port`, each with whether it is a dual-stack
/// IPv6 socket (accepting IPv4 too).
pub fn addresses(listen: &Listen, port: u16) -> Vec<(SocketAddr, bool)> {
    match listen {
        Listen::Any => vec![(
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
            true,
        )],
        Listen::Addrs(addrs) => addrs
            .iter()
            .map(|a| (SocketAddr::new(*a, port), false))
            .collect(),
    }
}

fn socket_for(
    addr: SocketAddr,
    dual_stack: bool,
    ty: SockType,
) -> io::Result<(OwnedFd, SocketAddr)> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    match socket::socket(family, ty, flags, None) {
        Ok(fd) => {
            if addr.is_ipv6() {
                socket::setsockopt(&fd, sockopt::Ipv6V6Only, &!dual_stack)?;
            }
            Ok((fd, addr))
        }
        // A host without IPv6: `*` falls back to every IPv4 address.
        Err(Errno::EAFNOSUPPORT) if dual_stack => {
            let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), addr.port());
            Ok((socket::socket(AddressFamily::Inet, ty, flags, None)?, v4))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn tcp(addr: SocketAddr, dual_stack: bool) -> io::Result<mio::net::TcpListener> {
    let (fd, addr) = socket_for(addr, dual_stack, SockType::Stream)?;
    socket::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))
        .map_err(|e| bind_error(addr, "TCP", e))?;
    socket::listen(
        &fd,
        Backlog::new(LISTEN_BACKLOG).unwrap_or(Backlog::MAXCONN),
    )?;
    Ok(mio::net::TcpListener::from_std(
        std::net::TcpListener::from(fd),
    ))
}

/// Binds a UDP socket and asks for `rcvbuf` bytes of receive buffer. Returns the socket and,
/// when the kernel gave less, a warning to log.
pub fn udp(
    addr: SocketAddr,
    dual_stack: bool,
    rcvbuf: usize,
) -> io::Result<(mio::net::UdpSocket, Option<String>)> {
    let (fd, addr) = socket_for(addr, dual_stack, SockType::Datagram)?;
    // SO_RCVBUFFORCE passes net.core.rmem_max when lc may (CAP_NET_ADMIN); else plain SO_RCVBUF.
    if socket::setsockopt(&fd, sockopt::RcvBufForce, &rcvbuf).is_err() {
        let _ = socket::setsockopt(&fd, sockopt::RcvBuf, &rcvbuf);
    }
    // Linux reports twice the usable size (it counts bookkeeping overhead).
    let got = socket::getsockopt(&fd, sockopt::RcvBuf).unwrap_or(0) / 2;
    let warning = (got < rcvbuf).then(|| {
        format!(
            "UDP {addr}: the kernel capped the receive buffer at {got} bytes of the {rcvbuf} asked; \
             raise net.core.rmem_max to avoid drops under bursts"
        )
    });
    socket::bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))
        .map_err(|e| bind_error(addr, "UDP", e))?;
    Ok((
        mio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd)),
        warning,
    ))
}

fn bind_error(addr: SocketAddr, proto: &str, e: Errno) -> io::Error {
    let hint = match e {
        Errno::EADDRINUSE => "; another process (or lc instance) already listens there",
        Errno::EACCES => "; ports below 1024 need CAP_NET_BIND_SERVICE",
        Errno::EADDRNOTAVAIL => "; no interface has this address",
        _ => "",
    };
    io::Error::new(
        io::Error::from(e).kind(),
        format!("cannot bind {proto} {addr}: {}{hint}", e.desc()),
    )
}

/// A bound receiver socket of the syslog server.
pub enum Socket {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

pub struct Listener {
    pub socket: Socket,
    /// The index of its source in the loop's list, set when it starts serving
    /// (`Listeners::serve`).
    pub source: usize,
    /// Its source's name, for log lines and the status snapshot.
    pub name: String,
    pub addr: SocketAddr,
    /// Bound as one dual-stack IPv6 socket (`listen = *`); kept to bind the same again.
    pub dual: bool,
}

impl Listener {
    pub fn proto(&self) -> &'static str {
        match self.socket {
            Socket::Udp(_) => "UDP",
            Socket::Tcp(_) => "TCP",
        }
    }

    /// The socket, to register with or deregister from the poll.
    pub fn event_source(&mut self) -> &mut dyn mio::event::Source {
        match &mut self.socket {
            Socket::Udp(u) => u,
            Socket::Tcp(t) => t,
        }
    }
}

/// The addresses `s` listens on.
pub fn addresses_of(s: &Source) -> Vec<(SocketAddr, bool)> {
    addresses(s.listen.as_ref().unwrap_or(&Listen::Any), s.port)
}

/// Binds source `name`'s sockets (UDP when `udp`, else TCP) on exactly `addrs` (address,
/// dual-stack): all of them, or none (what was bound is closed when one fails).
pub fn bind(
    name: &str,
    udp: bool,
    addrs: &[(SocketAddr, bool)],
    udp_rcvbuf: usize,
) -> Result<Vec<Listener>, String> {
    let err = |e: io::Error| format!("source {name}: {e}");
    let mut out = Vec::new();
    for &(addr, dual) in addrs {
        let socket = if udp {
            let (sock, warning) = self::udp(addr, dual, udp_rcvbuf).map_err(err)?;
            if let Some(w) = warning {
                log::warn!("source {name}: {w}");
            }
            Socket::Udp(sock)
        } else {
            Socket::Tcp(tcp(addr, dual).map_err(err)?)
        };
        let local = match &socket {
            Socket::Udp(u) => u.local_addr(),
            Socket::Tcp(t) => t.local_addr(),
        }
        .map_err(err)?;
        out.push(Listener {
            socket,
            source: usize::MAX,
            name: name.to_string(),
            addr: local,
            dual,
        });
    }
    Ok(out)
}
