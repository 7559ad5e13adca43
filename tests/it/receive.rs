//! Receivers: real `logger` over UDP and TCP, RFC 6587 edge cases from raw sockets, allow
//! lists, limits, and many connections.

use std::io::Write;
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::process::Command;

use crate::harness::{run, source, wait_for, Lc};

fn logger(args: &[&str]) {
    run(Command::new("logger").args(args));
}

#[test]
fn logger_over_udp_tcp_and_octet_counting() {
    let lc = Lc::start(
        "logger",
        "",
        "",
        &(source("u", "syslog-udp", "") + &source("t", "syslog-tcp", "")),
    );
    let udp = lc.addr("u", "udp");
    let tcp = lc.addr("t", "tcp");
    let (uport, tport) = (udp.port().to_string(), tcp.port().to_string());
    logger(&["-n", "127.0.0.1", "-P", &uport, "-d", "hello udp"]);
    logger(&["-n", "127.0.0.1", "-P", &tport, "-T", "hello tcp"]);
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &tport,
        "-T",
        "--octet-count",
        "hello octet",
    ]);
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &tport,
        "-T",
        "--octet-count",
        "--rfc3164",
        "old format",
    ]);
    wait_for(10, "4 messages", || {
        lc.lines("u").len() + lc.lines("t").len() == 4
    });
    let u = lc.lines("u");
    assert!(
        u[0].starts_with("<13>1 ") && u[0].ends_with(" hello udp"),
        "{u:?}"
    );
    let t = lc.lines("t");
    assert!(
        t[0].ends_with(" hello tcp")
            && t[1].ends_with(" hello octet")
            && t[2].ends_with(" old format"),
        "{t:?}"
    );
}

/// Sends `bytes` on one connection, closes it, and returns the lines lc stored.
fn send_tcp(lc: &Lc, src: &str, bytes: &[u8], expect: usize) -> Vec<String> {
    let mut s = TcpStream::connect(lc.addr(src, "tcp")).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    wait_for(10, &format!("{expect} lines"), || {
        lc.lines(src).len() >= expect
    });
    lc.lines(src)
}

#[test]
fn a_frame_split_byte_by_byte_arrives_whole() {
    let lc = Lc::start("bytewise", "", "", &source("t", "syslog-tcp", ""));
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.set_nodelay(true).unwrap();
    let wire = b"25 <13>octet counted message<13>lf framed\n<13>crlf\r\n<13>nul\x00";
    for b in wire.iter() {
        s.write_all(&[*b]).unwrap();
    }
    wait_for(10, "4 lines", || lc.lines("t").len() == 4);
    assert_eq!(
        lc.lines("t"),
        [
            "<13>octet counted message",
            "<13>lf framed",
            "<13>crlf",
            "<13>nul"
        ]
    );
}

#[test]
fn control_characters_are_escaped_one_message_one_line() {
    let lc = Lc::start(
        "escape",
        "",
        "",
        &(source("t", "syslog-tcp", "") + &source("u", "syslog-udp", "")),
    );
    send_tcp(&lc, "t", b"17 <13>a\nb\tc\rd\x01e", 1);
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"<13>multi\nline\n", lc.addr("u", "udp"))
        .unwrap();
    wait_for(10, "udp line", || lc.lines("u").len() == 1);
    assert_eq!(lc.lines("t"), ["<13>a#012b#011c#015d#001e"]);
    assert_eq!(lc.lines("u"), ["<13>multi#012line"]);
}

#[test]
fn an_over_long_frame_is_truncated_and_counted() {
    let lc = Lc::start(
        "long",
        "",
        "max_message_bytes = 1K",
        &(source("t", "syslog-tcp", "") + &source("u", "syslog-udp", "")),
    );
    let mut wire = vec![b'x'; 5000];
    wire.extend_from_slice(b"\n<13>next\n2000 <13>");
    wire.extend(std::iter::repeat_n(b'y', 1996));
    wire.extend_from_slice(b"<13>after\n");
    let lines = send_tcp(&lc, "t", &wire, 4);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], "x".repeat(1024));
    assert_eq!(lines[1], "<13>next");
    assert_eq!(lines[2], format!("<13>{}", "y".repeat(1020)));
    assert_eq!(lines[3], "<13>after");
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&[b'z'; 3000], lc.addr("u", "udp"))
        .unwrap();
    wait_for(10, "truncation counted", || {
        lc.source_status("t")["truncated"] == 2 && lc.source_status("u")["truncated"] == 1
    });
    assert_eq!(lc.lines("u"), ["z".repeat(1024)]);
}

#[test]
fn a_lying_octet_count_loses_nothing() {
    let lc = Lc::start("lying", "", "", &source("t", "syslog-tcp", ""));
    // Claims 100 bytes, sends 30 and closes: the 30 are kept as one message.
    let lines = send_tcp(&lc, "t", b"100 <13>short one\n<13>second\n", 1);
    assert_eq!(lines, ["<13>short one#012<13>second#012"]);
    // Claims fewer bytes than the message has: the rest becomes the next message.
    let lines = send_tcp(&lc, "t", b"8 <13>abcdefgh\n", 3);
    assert_eq!(&lines[1..], ["<13>abcd", "efgh"]);
    // A number that is no length at all is an ordinary LF-framed message.
    let lines = send_tcp(&lc, "t", b"99999999999 not a length\n", 4);
    assert_eq!(lines[3], "99999999999 not a length");
}

#[test]
fn senders_outside_the_allow_list_are_dropped_and_counted() {
    let allow = "allow = 10.0.0.1, 192.0.2.0/24";
    let lc = Lc::start(
        "allow",
        "",
        "",
        &(source("t", "syslog-tcp", allow)
            + &source("u", "syslog-udp", allow)
            + &source("open", "syslog-udp", "allow = 127.0.0.0/8")),
    );
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..3 {
        udp.send_to(b"<13>denied", lc.addr("u", "udp")).unwrap();
    }
    udp.send_to(b"<13>allowed", lc.addr("open", "udp")).unwrap();
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    let _ = s.write_all(b"<13>denied\n");
    wait_for(10, "drops counted", || {
        lc.source_status("u")["drops"]["not_allowed"] == 3
            && lc.source_status("t")["drops"]["not_allowed"] == 1
    });
    wait_for(10, "allowed line", || lc.lines("open").len() == 1);
    assert!(lc.lines("u").is_empty() && lc.lines("t").is_empty());
    assert!(lc.log().contains("sender not in the allow list"));
}

#[test]
fn a_thousand_concurrent_connections() {
    raise_nofile();
    let lc = Lc::start("thousand", "", "", &source("t", "syslog-tcp", ""));
    let addr = lc.addr("t", "tcp");
    let mut conns: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    for (i, c) in conns.iter_mut().enumerate() {
        c.write_all(format!("<13>conn {i}\n").as_bytes()).unwrap();
    }
    wait_for(30, "1000 open connections", || {
        lc.source_status("t")["connections"] == 1000
    });
    wait_for(30, "1000 lines", || lc.lines("t").len() == 1000);
    drop(conns);
    wait_for(30, "connections closed", || {
        lc.source_status("t")["connections"] == 0
    });
    let mut lines = lc.lines("t");
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 1000);
}

#[test]
fn connection_limits_refuse_and_count() {
    let lc = Lc::start(
        "limits",
        "",
        "max_connections_per_ip = 2",
        &source("t", "syslog-tcp", ""),
    );
    let addr = lc.addr("t", "tcp");
    let _a = TcpStream::connect(addr).unwrap();
    let _b = TcpStream::connect(addr).unwrap();
    let _c = TcpStream::connect(addr).unwrap();
    wait_for(10, "third refused", || {
        lc.source_status("t")["drops"]["max_connections_per_ip"] == 1
    });
    assert_eq!(lc.source_status("t")["connections"], 2);
}

#[test]
fn idle_connections_are_closed() {
    let lc = Lc::start(
        "idle",
        "",
        "idle_timeout_secs = 1",
        &source("t", "syslog-tcp", ""),
    );
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(b"<13>then silence").unwrap();
    wait_for(10, "idle close", || {
        lc.source_status("t")["idle_closed"] == 1
    });
    // The partial last frame was kept when the idle connection was closed.
    assert_eq!(lc.lines("t"), ["<13>then silence"]);
}

#[test]
fn sighup_applies_a_new_config_and_refuses_a_bad_one() {
    let mut lc = Lc::start("reload", "", "", &source("u", "syslog-udp", ""));
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let first = lc.addr("u", "udp");
    udp.send_to(b"<13>before", first).unwrap();
    wait_for(10, "first line", || lc.lines("u").len() == 1);

    // A bad config: logged, the running one stays.
    let good = std::fs::read_to_string(&lc.config).unwrap();
    std::fs::write(
        &lc.config,
        format!("{good}\n[source broken]\nformat = NOPE\n"),
    )
    .unwrap();
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(10, "refusal logged", || {
        lc.log()
            .contains("reload refused, keeping the running config")
    });
    udp.send_to(b"<13>still served", first).unwrap();
    wait_for(10, "second line", || lc.lines("u").len() == 2);

    // A good one: the allow list now refuses us, and a new source starts listening.
    std::fs::write(
        &lc.config,
        format!("{good}allow = 10.0.0.1\n{}", source("t", "syslog-tcp", "")),
    )
    .unwrap();
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(10, "new source listening", || {
        lc.try_status()
            .is_some_and(|s| s["listeners"].as_array().unwrap().len() == 2)
    });
    assert_eq!(
        lc.addr("u", "udp"),
        first,
        "an unchanged source keeps its socket"
    );
    udp.send_to(b"<13>denied now", first).unwrap();
    wait_for(10, "drop counted", || {
        lc.source_status("u")["drops"]["not_allowed"] == 1
    });
    send_and_check_tcp(&lc);
    assert!(lc.stop().success());
}

/// Issue 12, bug 2: a source moved to a port that is busy lost its old listener although the
/// reload was refused; reloading the original config then changed nothing and still did not
/// listen. A refused reload leaves every socket as it was.
#[test]
fn a_refused_reload_keeps_every_listener() {
    let mut lc = Lc::start(
        "reload-busy",
        "",
        "",
        &format!(
            "{}{}",
            source("a", "syslog-tcp", ""),
            source("b", "syslog-udp", "")
        ),
    );
    let old = lc.addr("a", "tcp");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let good = std::fs::read_to_string(&lc.config).unwrap();
    let moved = good.replacen(
        "[source a]\nformat = GENERIC_CEF\nreceiver = syslog-tcp\nport = 0",
        &format!("[source a]\nformat = GENERIC_CEF\nreceiver = syslog-tcp\nport = {busy_port}"),
        1,
    );
    assert_ne!(moved, good);
    for config in [&moved, &good] {
        std::fs::write(&lc.config, config).unwrap();
        let before = lc.status()["reloaded_at"].as_u64().unwrap_or(0);
        lc.signal(nix::sys::signal::Signal::SIGHUP);
        wait_for(10, "reload handled", || {
            lc.try_status()
                .is_some_and(|s| s["reloaded_at"].as_u64().unwrap_or(0) > before)
        });
        assert_eq!(
            lc.status()["listeners"].as_array().unwrap().len(),
            2,
            "{}",
            lc.log()
        );
        assert_eq!(lc.addr("a", "tcp"), old);
    }
    assert!(lc.log().contains("reload refused"), "{}", lc.log());
    let mut s = TcpStream::connect(old).expect("the old listener still accepts");
    s.write_all(b"<13>after the refused reload\n").unwrap();
    wait_for(10, "line stored", || lc.lines("a").len() == 1);
    drop(busy);
    assert!(lc.stop().success());
}

fn send_and_check_tcp(lc: &Lc) {
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(b"<13>via new source\n").unwrap();
    wait_for(10, "line on new source", || lc.lines("t").len() == 1);
}

pub fn raise_nofile() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// Bug 12 of issue 12: incomplete frames had no global bound (max_connections x
/// max_message_bytes, 85 MB seen with 1,000 connections holding 60 KB each). Now they share
/// `max_pending_bytes`; over it, the largest are kept as truncated messages, counted and
/// logged once.
#[test]
fn incomplete_frames_of_all_connections_share_one_budget() {
    let lc = Lc::start(
        "pending",
        "",
        "max_pending_bytes = 256K",
        &source("t", "syslog-tcp", "render = raw"),
    );
    let addr = lc.addr("t", "tcp");
    let body = vec![b'p'; 60 * 1024];
    let mut conns: Vec<TcpStream> = (0..10)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(&body).unwrap();
            s
        })
        .collect();
    wait_for(20, "the budget cuts frames", || {
        lc.source_status("t")["truncated"].as_u64().unwrap_or(0) >= 6
    });
    let status = lc.status();
    assert!(
        status["pending_bytes"].as_u64().unwrap() <= 256 * 1024,
        "{status}"
    );
    assert!(lc.log().contains("over max_pending_bytes"), "{}", lc.log());
    // The rest of a cut frame is discarded up to its end; the next frame is whole.
    for c in &mut conns {
        c.write_all(b"tail\n<13>whole\n").unwrap();
    }
    drop(conns);
    wait_for(20, "every connection closed", || {
        lc.source_status("t")["connections"] == 0
    });
    let lines = lc.lines("t");
    assert_eq!(
        lines.iter().filter(|l| *l == "<13>whole").count(),
        10,
        "{lines:?}"
    );
    // Every frame is there once: cut ones short, the others whole with their tail.
    let long = lines.iter().filter(|l| l.starts_with("ppp")).count();
    assert_eq!(long, 10);
}

/// Bug 11 of issue 12: a reload read its config, token and certificates and recovered spools
/// (with fsync) on the event loop, so a slow file stopped receiving. Here the config is a
/// FIFO nobody writes yet: the reload waits on it, and receiving goes on meanwhile.
#[test]
fn a_reload_waiting_on_its_files_does_not_stop_receiving() {
    let mut lc = Lc::start(
        "reload-slow",
        "",
        "",
        &source("t", "syslog-tcp", "render = raw"),
    );
    let good = std::fs::read_to_string(&lc.config).unwrap();
    std::fs::remove_file(&lc.config).unwrap();
    nix::unistd::mkfifo(&lc.config, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let before = lc.status()["reloaded_at"].as_u64().unwrap_or(0);
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(b"<13>while the reload waits\n").unwrap();
    wait_for(10, "line stored during the reload", || {
        lc.lines("t").len() == 1
    });
    // Now the config arrives (opening the FIFO for writing waits for the reload's reader).
    let fifo = lc.config.clone();
    let writer = std::thread::spawn(move || std::fs::write(fifo, good).unwrap());
    wait_for(10, "reload handled", || {
        lc.try_status()
            .is_some_and(|s| s["reloaded_at"].as_u64().unwrap_or(0) > before)
    });
    writer.join().unwrap();
    assert!(lc.status()["reload_error"].is_null(), "{}", lc.log());
    s.write_all(b"<13>after the reload\n").unwrap();
    wait_for(10, "line after the reload", || lc.lines("t").len() == 2);
    drop(s);
    assert!(lc.stop().success());
}
