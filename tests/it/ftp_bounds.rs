//! The FTP server's bounds: what a client that misbehaves on purpose can make lc hold or
//! wait for. Replies a client does not read, failed-login floods beside uploads, and upload
//! bytes written away from the event loop.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};

use crate::ftp::{code, Delivery, Ftp, PASSWORD, USER};

/// lc's resident memory in KiB, from /proc/PID/status.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// Bug 4 of issue 12: `HELP` pipelined before login by a client that never reads took lc
/// from 4 MB to 1.5 GB. lc stops reading such a client (its writes block: TCP flow control),
/// its memory stays where it was, and other clients are served meanwhile.
#[test]
fn pipelined_help_from_a_client_that_never_reads_is_throttled_not_buffered() {
    let ftp = Ftp::start("ftp-help-flood", "", Delivery::Outbox);
    let pid = ftp.lc.pid();
    let before = rss_kib(pid);

    let mut flood = TcpStream::connect(ftp.addr()).unwrap();
    // Small buffers on the client's side, so what lc sends and what it has not read yet
    // pile up in lc rather than in this process's kernel buffers.
    setsockopt(&flood, sockopt::RcvBuf, &4096).unwrap();
    setsockopt(&flood, sockopt::SndBuf, &65536).unwrap();
    // The write timeout tells a blocked sender; it is not what the test waits for.
    flood
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let chunk = "HELP\r\n".repeat(10_000);
    // Far more than lc's socket buffers hold: lc reads it all only if it never stops.
    let cap: usize = 8 << 20;
    let mut written = 0;
    let mut throttled = false;
    while written < cap {
        match flood.write(chunk.as_bytes()) {
            Ok(n) => written += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                throttled = true;
                break;
            }
            Err(e) => panic!("writing HELP after {written} bytes: {e}"),
        }
    }
    let grown = rss_kib(pid).saturating_sub(before);

    // The process serves others meanwhile.
    let mut other = ftp.session();
    assert_eq!(code(&other.cmd("NOOP")), 200);
    assert!(
        throttled,
        "lc read all {written} bytes of HELP without the client reading a reply (grew by {grown} KiB)"
    );
    assert!(
        grown < 32 << 10,
        "lc grew by {grown} KiB while a client pipelined {written} bytes of HELP"
    );
    ftp.wait_ftp("the backlog counted", |f| {
        f["reply_backlog"].as_u64() > Some(0)
    });
    drop(flood);
}

/// Bug 12 of issue 12: one `lc-ftp` thread did argon2 checks and upload commits, so a burst
/// of failing logins delayed every 226 until all of them were checked. Now the 226 comes
/// while the burst is still being checked: lc's log, written before any reply, shows fewer
/// failed logins than were sent when the client reads its 226.
#[test]
fn a_burst_of_failing_logins_does_not_hold_up_an_upload_s_226() {
    const BURST: usize = 8;
    let ftp = Ftp::start(
        "ftp-login-burst",
        "max_login_failures = 1000\nmax_connections = 64\nmax_connections_per_ip = 64",
        Delivery::Outbox,
    );
    let mut uploader = ftp.session();
    uploader.login_ok(USER, PASSWORD);
    // The burst: every connection's PASS is sent at once, none is read yet.
    let mut burst: Vec<_> = (0..BURST)
        .map(|i| {
            let mut s = ftp.session();
            s.send(&format!("USER guesser{i}"));
            s.send("PASS wrong");
            s
        })
        .collect();
    let (first, last) = uploader.store("/squid/during-the-burst.log", b"one line\n");
    assert_eq!((code(&first), code(&last)), (150, 226), "{first} / {last}");
    let checked = ftp.lc.log().matches("failed login as").count();
    assert!(
        checked < BURST,
        "the 226 came after all {BURST} password checks of the burst:\n{}",
        ftp.lc.log()
    );
    // The burst is answered too, each with 331 then 530.
    for s in &mut burst {
        assert_eq!(code(&s.reply()), 331);
        assert_eq!(code(&s.reply()), 530);
    }
}

/// Bytes lc's event loop has written with write(2) and friends: the loop is the main
/// thread, whose counters are /proc/PID/task/PID/io's `wchar`.
fn loop_wchar(pid: u32) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/task/{pid}/io")).unwrap();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no wchar in {io}"))
}

/// Bug 11 of issue 12: the event loop wrote upload bytes to their files itself (up to
/// 4 MiB per connection per iteration), so a slow disk stalled every socket. Now the
/// `lc-ftp-write` thread does: the loop's own writes during a 16 MiB upload are its replies
/// and status files, not the upload.
#[test]
fn upload_bytes_are_written_by_a_thread_not_the_event_loop() {
    let ftp = Ftp::start("ftp-off-loop", "", Delivery::Never);
    let pid = ftp.lc.pid();
    let mut s = ftp.session();
    s.login_ok(USER, PASSWORD);
    let line = "192.0.2.7 TCP_MISS/200 1234 GET http://example.com/ - DIRECT/192.0.2.8 text/html\n";
    let data = line.repeat((16 << 20) / line.len()).into_bytes();
    let before = loop_wchar(pid);
    let (first, last) = s.store("/squid/big.log", &data);
    assert_eq!((code(&first), code(&last)), (150, 226), "{first} / {last}");
    let by_loop = loop_wchar(pid) - before;
    assert!(
        by_loop < 1 << 20,
        "the event loop wrote {by_loop} bytes during a {} byte upload",
        data.len()
    );
    // And the file is whole.
    let size = s.cmd("SIZE /squid/big.log");
    assert_eq!(size, format!("213 {}", data.len()));
}
