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
