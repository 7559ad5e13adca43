//! Behind an L4 load balancer: the PROXY protocol (v1 and v2) on syslog-tcp and syslog-tls,
//! first from raw sockets (every refusal), then through a real HAProxy in front of two lc
//! instances. Allow lists, per-IP limits, logs and the rendering see the client the header
//! names, never the balancer.

use std::io::Write;
use std::net::TcpStream;

use crate::harness::{source, wait_for, Lc};

/// A v2 header for a TCP/IPv4 client (HAProxy's `send-proxy-v2`).
fn v2(client: [u8; 4], port: u16) -> Vec<u8> {
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v.extend_from_slice(&client);
    v.extend_from_slice(&[127, 0, 0, 1]);
    v.extend_from_slice(&port.to_be_bytes());
    v.extend_from_slice(&514u16.to_be_bytes());
    v
}

fn send(lc: &Lc, bytes: &[u8]) {
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(bytes).unwrap();
}

#[test]
fn proxy_headers_name_the_sender_and_every_refusal_is_counted() {
    let lc = Lc::start(
        "proxy-raw",
        "",
        "",
        &source(
            "t",
            "syslog-tcp",
            "render = vendor\nproxy_protocol = on\ntrusted_proxies = 127.0.0.1\nallow = 192.0.2.0/24",
        ),
    );
    // v1 and v2 from the trusted balancer: stored, the client's address as the hostname
    // rsyslog would fill in for a message without one.
    send(
        &lc,
        b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 514\r\n<13>%ASA-6-1: one via v1\n",
    );
    send(
        &lc,
        &[
            v2([192, 0, 2, 11], 40001),
            b"<13>%ASA-6-2: two via v2\n".to_vec(),
        ]
        .concat(),
    );
    // The balancer's own health check (v2 LOCAL): its own address stands, and it is not in
    // the allow list of clients, so nothing it sends is stored (it sends nothing).
    let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    send(&lc, &local);
    // HAProxy's v1 health checks name the balancer itself as the client: the same.
    send(&lc, b"PROXY TCP4 127.0.0.1 127.0.0.1 40100 514\r\n");
    wait_for(10, "two lines", || lc.lines("t").len() == 2);
    let mut lines = lc.lines("t");
    lines.sort();
    assert!(
        lines[0].ends_with(" 192.0.2.10 %ASA-6-1: one via v1"),
        "{lines:?}"
    );
    assert!(
        lines[1].ends_with(" 192.0.2.11 %ASA-6-2: two via v2"),
        "{lines:?}"
    );
    // A client outside the allow list, though the balancer is trusted.
    send(
        &lc,
        b"PROXY TCP4 198.51.100.7 127.0.0.1 40002 514\r\n<13>refused\n",
    );
    // No header at all, and a broken one.
    send(&lc, b"<13>no header\n");
    send(&lc, b"PROXY TCP4 1.2.3.4\r\n<13>broken\n");
    wait_for(10, "refusals counted", || {
        let d = &lc.source_status("t")["drops"];
        d["not_allowed"] == 1 && d["proxy_header"] == 2
    });
    assert_eq!(lc.lines("t").len(), 2);
    let log = lc.log();
    assert!(
        log.contains("198.51.100.7:40002 (through 127.0.0.1:"),
        "the refusal names the client and the balancer: {log}"
    );
    assert!(log.contains("no PROXY protocol header"), "{log}");
}

#[test]
fn a_header_from_an_untrusted_address_is_refused() {
    let lc = Lc::start(
        "proxy-untrusted",
        "",
        "",
        &source(
            "t",
            "syslog-tcp",
            "proxy_protocol = on\ntrusted_proxies = 10.9.9.9",
        ),
    );
    send(
        &lc,
        b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 514\r\n<13>spoofed\n",
    );
    wait_for(10, "untrusted counted", || {
        lc.source_status("t")["drops"]["proxy_untrusted"] == 1
    });
    assert!(lc.lines("t").is_empty());
    assert!(lc.log().contains("not in trusted_proxies"), "{}", lc.log());
}

#[test]
fn per_ip_limits_count_the_client_not_the_balancer() {
    let lc = Lc::start(
        "proxy-perip",
        "",
        "max_connections_per_ip = 1",
        &source(
            "t",
            "syslog-tcp",
            "render = raw\nproxy_protocol = on\ntrusted_proxies = 127.0.0.1",
        ),
    );
    // Three clients through one balancer address: all admitted.
    let mut held = Vec::new();
    for (i, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
        let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
        s.write_all(format!("PROXY TCP4 {ip} 127.0.0.1 4000{i} 514\r\n<13>from {ip}\n").as_bytes())
            .unwrap();
        held.push(s);
        wait_for(10, "line stored", || lc.lines("t").len() == i + 1);
    }
    // A second connection of one client: over its limit.
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 40009 514\r\n<13>second\n")
        .unwrap();
    wait_for(10, "per-IP refusal", || {
        lc.source_status("t")["drops"]["max_connections_per_ip"] == 1
    });
    assert_eq!(lc.lines("t").len(), 3);
}

/// A real HAProxy in TCP mode, in front of `backends` (address, `send-proxy` or
/// `send-proxy-v2`), connecting to them from 127.0.0.3 and checking them every 200 ms;
/// killed on drop.
struct Haproxy {
    child: std::process::Child,
    port: u16,
    dir: crate::harness::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    fn start(backends: &[(std::net::SocketAddr, &str)]) -> Haproxy {
        let dir = crate::harness::TempDir::new("haproxy");
        // HAProxy cannot report a kernel-chosen port: take a free one and hand it over.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, (addr, proxy))| {
                format!("    server lc{i} {addr} {proxy} check inter 200ms fall 1 rise 1\n")
            })
            .collect();
        let cfg = dir.0.join("haproxy.cfg");
        std::fs::write(
            &cfg,
            format!(
                "global\n    maxconn 200\n\
                 defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    retries 3\n    option redispatch\n\
                 frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
                 backend be\n    balance roundrobin\n    source 127.0.0.3\n{servers}"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.0.join("haproxy.log")).unwrap();
        let child = std::process::Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("haproxy (scripts/deps.sh installs it)");
        let h = Haproxy { child, port, dir };
        wait_for(10, "haproxy listening", || {
            TcpStream::connect(("127.0.0.1", h.port)).is_ok()
        });
        h
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("haproxy.log")).unwrap_or_default()
    }
}

/// A TCP connection to 127.0.0.1:`port` from the address `from` (another loopback address).
fn connect_from(from: std::net::Ipv4Addr, port: u16) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )?;
    connect(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new([127, 0, 0, 1].into(), port)),
    )?;
    Ok(TcpStream::from(fd))
}

/// Lines of source `t` of every instance, as `(instance, line)`.
fn all_lines(lcs: &[&Lc]) -> Vec<(usize, String)> {
    lcs.iter()
        .enumerate()
        .flat_map(|(i, lc)| lc.lines("t").into_iter().map(move |l| (i, l)))
        .collect()
}

#[test]
fn haproxy_fronts_two_instances_with_proxy_v1_and_v2() {
    let sources = source(
        "t",
        "syslog-tcp",
        "render = vendor\nproxy_protocol = on\ntrusted_proxies = 127.0.0.3\nallow = 127.0.0.2",
    );
    let mut lc1 = Lc::start("haproxy-lc1", "", "", &sources);
    let lc2 = Lc::start("haproxy-lc2", "", "", &sources);
    let h = Haproxy::start(&[
        (lc1.addr("t", "tcp"), "send-proxy-v2"),
        (lc2.addr("t", "tcp"), "send-proxy"),
    ]);
    let client: std::net::Ipv4Addr = [127, 0, 0, 2].into();
    let send = |i: usize| {
        let mut s = connect_from(client, h.port).unwrap();
        s.write_all(format!("<13>%ASA-6-1: message {i:02}\n").as_bytes())
            .unwrap();
    };
    for i in 0..10 {
        send(i);
    }
    wait_for(20, "ten lines through haproxy", || {
        all_lines(&[&lc1, &lc2]).len() == 10
    });
    let lines = all_lines(&[&lc1, &lc2]);
    assert!(
        lines.iter().any(|(i, _)| *i == 0) && lines.iter().any(|(i, _)| *i == 1),
        "both instances served: {lines:?}"
    );
    for (_, l) in &lines {
        assert!(
            l.contains(" 127.0.0.2 %ASA-6-1: message "),
            "the client's address: {l}"
        );
    }
    // A client outside the allow list: refused by whichever instance HAProxy chose (HAProxy
    // may try again when lc closes on it, so it can be refused more than once).
    let mut s = connect_from([127, 0, 0, 4].into(), h.port).unwrap();
    s.write_all(b"<13>%ASA-6-1: not allowed\n").unwrap();
    let refused = |lc: &Lc| {
        lc.source_status("t")["drops"]["not_allowed"]
            .as_u64()
            .unwrap_or(0)
    };
    crate::harness::wait_explained(
        20,
        "refusal counted",
        || refused(&lc1) + refused(&lc2) >= 1,
        || {
            format!(
                "lc1 {}\nlc2 {}\nlc1 log:\n{}\nlc2 log:\n{}\nhaproxy:\n{}",
                lc1.source_status("t")["drops"],
                lc2.source_status("t")["drops"],
                lc1.log(),
                lc2.log(),
                h.log()
            )
        },
    );
    // HAProxy's health checks are plain connects: neither instance counts them as refusals.
    for lc in [&lc1, &lc2] {
        assert_eq!(
            lc.source_status("t")["drops"]["proxy_header"],
            0,
            "{}",
            lc.log()
        );
    }
    // One instance stops: HAProxy's checks take it out and every later message reaches the
    // other; nothing HAProxy accepted is lost.
    assert!(lc1.stop().success());
    for i in 10..20 {
        send(i);
    }
    wait_for(30, "twenty lines in all", || {
        all_lines(&[&lc1, &lc2]).len() == 20
    });
    let mut got: Vec<String> = all_lines(&[&lc1, &lc2])
        .into_iter()
        .map(|(_, l)| l.rsplit(' ').next().unwrap().to_string())
        .collect();
    got.sort();
    let want: Vec<String> = (0..20).map(|i| format!("{i:02}")).collect();
    assert_eq!(got, want, "haproxy log:\n{}", h.log());
}
