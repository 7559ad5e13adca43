//! Real senders: rsyslog forwarding a file over TCP (both RFC 6587 framings), and syslog-ng's
//! loggen at load over TCP and UDP.

use std::process::{Child, Command, Stdio};

use crate::harness::{peer, run, source, wait_for, Lc, TempDir};

/// An rsyslogd of the test's own (own config, work dir and pid file), killed on drop.
struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rsyslog_forwarding(dir: &TempDir, input: &std::path::Path, port: u16, framing: &str) -> Rsyslog {
    let work = dir.0.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let conf = dir.0.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}")
module(load="imfile")
input(type="imfile" file="{input}" tag="fw:" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" tcp_framing="{framing}"
         template="RSYSLOG_SyslogProtocol23Format")
}}
"#,
            work = work.display(),
            input = input.display(),
        ),
    )
    .unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.0.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd (apt-get install rsyslog; scripts/deps.sh does)");
    Rsyslog(child)
}

fn check_rsyslog(framing: &str) {
    let lc = Lc::start(
        &format!("rsyslog-{framing}"),
        "",
        "",
        &source("fw", "syslog-tcp", ""),
    );
    let dir = TempDir::new("rsyslog");
    let input = dir.0.join("input.log");
    let n = 3000;
    let text: String = (0..n)
        .map(|i| format!("firewall event seq={i:05} action=allow\n"))
        .collect();
    std::fs::write(&input, text).unwrap();
    let _rsyslog = rsyslog_forwarding(&dir, &input, lc.addr("fw", "tcp").port(), framing);
    wait_for(60, &format!("{n} lines from rsyslog"), || {
        lc.lines("fw").len() >= n
    });
    let lines = lc.lines("fw");
    assert_eq!(lines.len(), n, "each message exactly once");
    for (i, l) in lines.iter().enumerate() {
        // Framing removed (no length prefix left before the PRI), the message whole.
        let tail = format!(" firewall event seq={i:05} action=allow");
        assert!(l.starts_with('<') && l.ends_with(&tail), "line {i}: {l}");
    }
}

#[test]
fn rsyslog_forwards_with_octet_counting() {
    check_rsyslog("octet-counted");
}

#[test]
fn rsyslog_forwards_with_lf_framing() {
    check_rsyslog("traditional");
}

#[test]
fn loggen_at_load_over_tcp_and_udp() {
    let lc = Lc::start(
        "loggen",
        "",
        "",
        &(source("t", "syslog-tcp", "") + &source("u", "syslog-udp", "")),
    );
    let n = 200_000;
    let tcp = lc.addr("t", "tcp").port().to_string();
    // loggen's -n counts per connection; -r is its rate cap per connection, -I its time cap.
    let per_conn = (n / 4).to_string();
    run(Command::new(peer("loggen")).args([
        "-i",
        "-S",
        "-Q",
        "-s",
        "300",
        "-r",
        "10000000",
        "-I",
        "120",
        "--active-connections",
        "4",
        "-n",
        &per_conn,
        "127.0.0.1",
        &tcp,
    ]));
    wait_for(60, "all TCP messages on disk", || {
        lc.source_status("t")["messages"] == n
    });
    let lines = lc.lines("t");
    assert_eq!(lines.len(), n as usize);
    assert!(
        lines.iter().all(|l| l.len() >= 250 && l.starts_with('<')),
        "framing intact"
    );

    // UDP at a modest rate: whatever is not on disk must be counted as a kernel drop.
    let u = 20_000u64;
    let udp = lc.addr("u", "udp").port().to_string();
    run(Command::new(peer("loggen")).args([
        "-i",
        "-D",
        "-Q",
        "-s",
        "300",
        "-r",
        "20000",
        "-I",
        "60",
        "-n",
        &u.to_string(),
        "127.0.0.1",
        &udp,
    ]));
    wait_for(30, "every datagram stored or counted", || {
        let st = lc.source_status("u");
        st["messages"].as_u64().unwrap() + st["drops"]["udp_kernel"].as_u64().unwrap() >= u
    });
    assert!(lc.source_status("u")["messages"].as_u64().unwrap() >= u * 99 / 100);
}
