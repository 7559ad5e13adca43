//! Behind an L4 load balancer: the PROXY protocol (v1 and v2) on syslog-tcp and syslog-tls,
//! first from raw sockets (every refusal), then through a real HAProxy in front of two lc
//! instances; and on the FTP server's control and passive data connections, from raw sockets
//! and through HAProxy. Allow lists, per-IP limits, lockouts, logs and the rendering see the
//! client the header names, never the balancer.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};

use crate::cloud::free_port;
use crate::ftp::{
    code, connect_from, curl, curl_ok, delivered_contents, log_lines, Delivery, Ftp, Session,
    PASSWORD, USER,
};
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

/// A burst of connections through one balancer (all firewalls reconnect after the balancer
/// restarts) opens them before any header is read: each counts only in the total until its
/// header names its client, and the per-IP limit applies to the client then.
#[test]
fn a_burst_through_the_balancer_is_not_held_to_its_per_ip_limit() {
    let lc = Lc::start(
        "proxy-burst",
        "",
        "max_connections_per_ip = 2",
        &source(
            "t",
            "syslog-tcp",
            "render = raw\nproxy_protocol = on\ntrusted_proxies = 127.0.0.1",
        ),
    );
    let status = |key: &str| {
        let s = lc.source_status("t");
        s[key]
            .as_u64()
            .or_else(|| s["drops"][key].as_u64())
            .unwrap_or(0)
    };
    // Ten connections open, none has sent its header yet.
    let mut burst: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(lc.addr("t", "tcp")).unwrap())
        .collect();
    wait_for(10, "ten connections admitted or refused", || {
        status("connections") + status("max_connections_per_ip") == 10
    });
    assert_eq!(status("max_connections_per_ip"), 0, "{}", lc.log());
    for (i, s) in burst.iter_mut().enumerate() {
        s.write_all(
            format!("PROXY TCP4 192.0.2.{i} 127.0.0.1 4000{i} 514\r\n<13>burst {i}\n").as_bytes(),
        )
        .unwrap();
    }
    wait_for(10, "ten lines stored", || lc.lines("t").len() == 10);
    // Three connections whose headers name one client: two are its limit.
    let _same: Vec<TcpStream> = (0..3)
        .map(|i| {
            let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
            s.write_all(
                format!("PROXY TCP4 192.0.2.100 127.0.0.1 4100{i} 514\r\n<13>same {i}\n")
                    .as_bytes(),
            )
            .unwrap();
            s
        })
        .collect();
    wait_for(10, "the third refused", || {
        status("max_connections_per_ip") == 1 && lc.lines("t").len() == 12
    });
    assert_eq!(status("connections"), 12);
    assert!(
        lc.log().contains("192.0.2.100:4100"),
        "the refusal names the client: {}",
        lc.log()
    );
}

/// A real HAProxy in TCP mode; killed on drop.
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
    /// In front of `backends` (address, `send-proxy` or `send-proxy-v2`), connecting to them
    /// from 127.0.0.3 and checking them every 200 ms.
    fn start(backends: &[(SocketAddr, &str)]) -> Haproxy {
        // HAProxy cannot report a kernel-chosen port: a free one is taken and handed over.
        let port = free_port();
        let servers: String = backends
            .iter()
            .enumerate()
            .map(|(i, (addr, proxy))| {
                format!("    server lc{i} {addr} {proxy} check inter 200ms fall 1 rise 1\n")
            })
            .collect();
        Haproxy::run(
            &format!(
                "frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
                 backend be\n    balance roundrobin\n    source 127.0.0.3\n{servers}"
            ),
            SocketAddr::from(([127, 0, 0, 1], port)),
        )
    }

    /// With `sections` (frontends and backends) after the defaults; ready once `front`
    /// takes connections.
    fn run(sections: &str, front: SocketAddr) -> Haproxy {
        let dir = crate::harness::TempDir::new("haproxy");
        let cfg = dir.0.join("haproxy.cfg");
        std::fs::write(
            &cfg,
            format!(
                "global\n    maxconn 200\n\
                 defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 30s\n    timeout server 30s\n    retries 3\n    option redispatch\n\
                 {sections}"
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
        let h = Haproxy {
            child,
            port: front.port(),
            dir,
        };
        wait_for(10, "haproxy listening", || {
            TcpStream::connect(front).is_ok()
        });
        h
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("haproxy.log")).unwrap_or_default()
    }
}

/// A TCP connection to HAProxy's 127.0.0.1:`port` from the address `from`.
fn to_haproxy(from: Ipv4Addr, port: u16) -> TcpStream {
    connect_from(from.into(), SocketAddr::from(([127, 0, 0, 1], port))).unwrap()
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
    let client: Ipv4Addr = [127, 0, 0, 2].into();
    let send = |i: usize| {
        let mut s = to_haproxy(client, h.port);
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
    let mut s = to_haproxy([127, 0, 0, 4].into(), h.port);
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

// FTP

/// One FTP source that takes clients from 192.0.2.0/24 (the balancer, 127.0.0.1, is not one).
const FTP_CLIENTS: &str = "[source squid]\nformat = SQUID\nreceiver = ftp\nallow = 192.0.2.0/24\n";

/// A control connection to `ftp` that sends `first` at once.
fn ftp_through(ftp: &Ftp, first: &[u8]) -> Session {
    let mut s = Session::new(TcpStream::connect(ftp.addr()).unwrap());
    s.stream().write_all(first).unwrap();
    s
}

/// A v1 header for `client`:`port` that connected to 127.0.0.1:21.
fn v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 {port} 21\r\n").into_bytes()
}

#[test]
fn ftp_proxy_headers_name_the_client_and_every_refusal_is_counted() {
    let ftp = Ftp::start_with(
        "ftp-proxy-raw",
        "proxy_protocol = on\ntrusted_proxies = 127.0.0.1\nmax_connections_per_ip = 2\n\
         max_login_failures = 2\nlockout_secs = 60",
        FTP_CLIENTS,
        Delivery::Outbox,
    );
    // A balancer connection that never sends its header: closed after handshake_timeout_secs.
    let mut silent = Session::new(TcpStream::connect(ftp.addr()).unwrap());
    // The header, then a command in the same write: the session reads the command.
    let mut s = ftp_through(
        &ftp,
        b"PROXY TCP4 192.0.2.10 192.0.2.99 40000 21\r\nUSER discovery\r\n",
    );
    assert_eq!(code(&s.reply()), 220);
    assert_eq!(code(&s.reply()), 331);
    assert_eq!(code(&s.cmd(&format!("PASS {PASSWORD}"))), 230);
    // PASV names the address the client connected to: the balancer's, from the header.
    let data = s.pasv();
    assert_eq!(data.ip(), IpAddr::from([192, 0, 2, 99]));
    let passive = SocketAddr::from(([127, 0, 0, 1], data.port()));
    // Another client through the same balancer races the client to its data port.
    let mut thief = TcpStream::connect(passive).unwrap();
    thief.write_all(&v2([192, 0, 2, 11], 40001)).unwrap();
    ftp.wait_ftp("port stealing counted", |f| {
        f["refused"]["port_stealing"] == 1
    });
    // The client's data connection: its header and the whole file in one write, before STOR.
    let bytes = log_lines("proxied", 300);
    let mut conn = TcpStream::connect(passive).unwrap();
    conn.write_all(&[v2([192, 0, 2, 10], 40002), bytes.clone()].concat())
        .unwrap();
    drop(conn);
    let first = s.cmd("STOR /squid/through.log");
    assert_eq!(code(&first), 150, "{first}");
    let last = s.reply();
    assert_eq!(code(&last), 226, "{last}");
    wait_for(20, "the upload delivered", || {
        ftp.lc.delivered("squid") == 1
    });
    assert_eq!(delivered_contents(&ftp.lc, "squid"), [bytes]);
    let log = ftp.lc.log();
    assert!(
        log.contains("ftp: 192.0.2.10:40000: received /squid/through.log"),
        "the client in the log: {log}"
    );
    // Failed logins lock the client out, not the balancer: another client through it logs in.
    for port in [41000, 41001] {
        let mut s = ftp_through(&ftp, &v1("192.0.2.10", port));
        assert_eq!(code(&s.reply()), 220);
        assert_eq!(code(&s.login(USER, "wrong")), 530);
    }
    ftp.wait_ftp("a lockout", |f| f["lockouts"] == 1);
    let mut locked = ftp_through(&ftp, &v1("192.0.2.10", 41002));
    let r = locked.reply();
    assert_eq!(code(&r), 421, "{r}");
    assert!(locked.closed());
    let mut other = ftp_through(&ftp, &v1("192.0.2.12", 41003));
    assert_eq!(code(&other.reply()), 220);
    other.login_ok(USER, PASSWORD);
    // The allow list and the per-IP limit apply to the client.
    let mut refused = ftp_through(&ftp, &v1("198.51.100.7", 41004));
    assert_eq!(code(&refused.reply()), 421);
    let mut held: Vec<Session> = (0..2)
        .map(|i| {
            let mut s = ftp_through(&ftp, &v1("192.0.2.13", 41010 + i));
            assert_eq!(code(&s.reply()), 220);
            s
        })
        .collect();
    let mut third = ftp_through(&ftp, &v1("192.0.2.13", 41012));
    assert_eq!(code(&third.reply()), 421);
    // No header, a broken one, and a header from an address not in trusted_proxies: closed.
    for first in [&b"USER discovery\r\n"[..], b"PROXY TCP4 1.2.3.4\r\n"] {
        let mut s = ftp_through(&ftp, first);
        assert!(s.closed(), "{first:?}");
    }
    let mut untrusted =
        Session::new(connect_from(Ipv4Addr::new(127, 0, 0, 2).into(), ftp.addr()).unwrap());
    untrusted
        .stream()
        .write_all(&v1("192.0.2.14", 41020))
        .unwrap();
    assert!(untrusted.closed());
    // The balancer's health checks: a connect and close, a v2 LOCAL header. Not counted.
    drop(TcpStream::connect(ftp.addr()).unwrap());
    let mut local = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0, 0]);
    assert!(ftp_through(&ftp, &local).closed());
    assert!(silent.closed(), "no header in time");
    ftp.wait_ftp("every refusal counted", |f| {
        let r = &f["refused"];
        r["proxy_header"] == 3
            && r["proxy_untrusted"] == 1
            && r["not_allowed"] == 1
            && r["locked_out"] == 1
            && r["max_connections_per_ip"] == 1
            && r["port_stealing"] == 1
    });
    let log = ftp.lc.log();
    for line in [
        "ftp: 198.51.100.7:41004 (through 127.0.0.1:",
        "no PROXY protocol header; connection closed",
        "not in trusted_proxies",
        "no PROXY header in 10s; closed",
    ] {
        assert!(log.contains(line), "{line:?} in the log:\n{log}");
    }
    held.clear();
}

/// FTP through a real HAProxy sending `proxy` headers (`send-proxy` or `send-proxy-v2`): the
/// control port and the passive port are frontends on 127.0.0.5, lc listens on 127.0.0.1,
/// HAProxy connects from 127.0.0.3 and the clients from 127.0.0.2, .4 and .6.
fn ftp_through_haproxy(tag: &str, proxy: &str) {
    let passive = free_port();
    let ftp = Ftp::start_with(
        tag,
        &format!(
            "proxy_protocol = on\ntrusted_proxies = 127.0.0.3\npassive_ports = {passive}-{passive}\n\
             max_login_failures = 2\nlockout_secs = 60"
        ),
        "[source squid]\nformat = SQUID\nreceiver = ftp\nallow = 127.0.0.2, 127.0.0.6\n",
        Delivery::Outbox,
    );
    let control = free_port();
    // The passive frontend's server has no port: HAProxy connects to the port the client
    // connected to, so one frontend serves a whole range.
    let h = Haproxy::run(
        &format!(
            "frontend ftp\n    bind 127.0.0.5:{control}\n    default_backend ftp\n\
             backend ftp\n    source 127.0.0.3\n    server lc {} {proxy} check inter 200ms\n\
             frontend ftp_data\n    bind 127.0.0.5:{passive}\n    default_backend ftp_data\n\
             backend ftp_data\n    source 127.0.0.3\n    server lc 127.0.0.1 {proxy}\n",
            ftp.addr()
        ),
        SocketAddr::from(([127, 0, 0, 5], control)),
    );
    let url = |path: &str| format!("ftp://{USER}:{PASSWORD}@127.0.0.5:{control}{path}");
    let explain = || format!("lc log:\n{}\nhaproxy:\n{}", ftp.lc.log(), h.log());
    // Uploads from 127.0.0.2 over PASV (whose address curl uses) and EPSV.
    let a = log_lines("pasv", 2000);
    let b = log_lines("epsv", 3000);
    let (pa, pb) = (ftp.dir().join("a.log"), ftp.dir().join("b.log"));
    std::fs::write(&pa, &a).unwrap();
    std::fs::write(&pb, &b).unwrap();
    let client = ["--interface", "127.0.0.2"];
    for args in [
        vec!["--disable-epsv", "-T", pa.to_str().unwrap()],
        vec!["-T", pb.to_str().unwrap()],
    ] {
        let out = curl(&[&client[..], &args, &[&url("/squid/")]].concat());
        assert!(
            out.status.success(),
            "curl {args:?}: {}\n{}",
            crate::ftp::text(&out),
            explain()
        );
    }
    wait_for(20, "both uploads delivered", || {
        ftp.lc.delivered("squid") == 2
    });
    let mut got = delivered_contents(&ftp.lc, "squid");
    got.sort_by_key(Vec::len);
    assert!(got == [a, b], "the uploads arrive whole\n{}", explain());
    let log = ftp.lc.log();
    assert!(log.contains("received /squid/a.log"), "{log}");
    assert!(
        log.lines()
            .filter(|l| l.contains("received /squid/"))
            .all(|l| l.contains("ftp: 127.0.0.2:")),
        "the client's address in the log: {log}"
    );
    // The allow list: 127.0.0.4 is refused, through the same balancer.
    let out = curl(&["--interface", "127.0.0.4", "--list-only", &url("/squid/")]);
    assert!(!out.status.success(), "127.0.0.4 is not allowed");
    // Two failed logins lock 127.0.0.6 out; 127.0.0.2 still logs in through the balancer.
    let wrong = format!("ftp://{USER}:wrong@127.0.0.5:{control}/squid/");
    for _ in 0..2 {
        assert!(!curl(&["--interface", "127.0.0.6", "--list-only", &wrong])
            .status
            .success());
    }
    ftp.wait_ftp("a lockout", |f| f["lockouts"] == 1);
    let out = curl(&["--interface", "127.0.0.6", "--list-only", &url("/squid/")]);
    assert!(!out.status.success(), "127.0.0.6 is locked out");
    curl_ok(&["--interface", "127.0.0.2", "--list-only", &url("/squid/")]);
    // (HAProxy may try a refused connection again, so it may be counted more than once.)
    ftp.wait_ftp("the refusals counted", |f| {
        let r = &f["refused"];
        r["not_allowed"].as_u64() >= Some(1) && r["locked_out"].as_u64() >= Some(1)
    });
    assert_eq!(ftp.lc.status()["ftp"]["refused"]["port_stealing"], 0);
    // HAProxy's health checks (connect, close) are neither counted nor logged.
    let f = &ftp.lc.status()["ftp"]["refused"];
    assert_eq!(
        (f["proxy_header"].as_u64(), f["proxy_untrusted"].as_u64()),
        (Some(0), Some(0)),
        "{}",
        explain()
    );
    // Around the balancer: no header from the balancer's address, and a header from an
    // address that is not a balancer.
    let mut s = Session::new(connect_from(Ipv4Addr::new(127, 0, 0, 3).into(), ftp.addr()).unwrap());
    s.stream().write_all(b"USER discovery\r\n").unwrap();
    assert!(s.closed());
    let mut s = Session::new(connect_from(Ipv4Addr::new(127, 0, 0, 2).into(), ftp.addr()).unwrap());
    s.stream().write_all(&v1("127.0.0.2", 40000)).unwrap();
    assert!(s.closed());
    ftp.wait_ftp("both refused", |f| {
        f["refused"]["proxy_header"] == 1 && f["refused"]["proxy_untrusted"] == 1
    });
}

#[test]
fn ftp_through_haproxy_with_proxy_v1() {
    ftp_through_haproxy("ftp-haproxy-v1", "send-proxy");
}

#[test]
fn ftp_through_haproxy_with_proxy_v2() {
    ftp_through_haproxy("ftp-haproxy-v2", "send-proxy-v2");
}
