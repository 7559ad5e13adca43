//! The command line: usage errors, `config check`, `status` and `tail` against a real instance.

use std::process::Command;

use crate::harness::{source, Lc, TempDir, LC};

#[test]
fn unknown_command_prints_usage_and_exits_2() {
    let out = Command::new(LC).arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown command \"frobnicate\"") && err.contains("usage: lc"),
        "{err}"
    );
    let out = Command::new(LC).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_for_each_command_exits_0() {
    for cmd in [
        &["--help"][..],
        &["run", "--help"],
        &["status", "-h"],
        &["tail", "--help"],
        &["config", "--help"],
    ] {
        let out = Command::new(LC).args(cmd).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{cmd:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("usage: lc") || cmd == ["--help"],
            "{cmd:?}"
        );
    }
}

#[test]
fn config_check_reports_every_problem_with_file_and_line() {
    let dir = TempDir::new("check");
    let path = dir.0.join("lc.ini");
    std::fs::write(
        &path,
        "[collector]\nnmae = x\n[source asa]\nformat = CISCO\nreceiver = syslog-udp\nport = 514\n\
         [source b]\nformat = SQUID\nreceiver = syslog-udp\nport = 514\nallow = 10.0.0.0/33\n",
    )
    .unwrap();
    let out = Command::new(LC)
        .args(["config", "check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for expected in [
        format!("{p}:2: unknown key \"nmae\" in [collector]"),
        format!("{p}:4: unknown format \"CISCO\"; expected one of: BARRACUDA,"),
        format!("{p}:7: source \"b\" claims UDP port 514 already used by source \"asa\" (line 3)"),
        format!("{p}:11: allow: \"10.0.0.0/33\" has a prefix length outside 0..=32"),
    ] {
        assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    }
    // `lc run` refuses the same config with the same messages and exit code.
    let out = Command::new(LC)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(":4: unknown format"));
}

#[test]
fn config_check_accepts_the_example_and_lc_config_env() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/lc.ini");
    let out = Command::new(LC)
        .args(["config", "check"])
        .env("LC_CONFIG", example)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn missing_config_file_is_named() {
    let out = Command::new(LC)
        .args(["config", "check", "--config", "/nonexistent/lc.ini"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("/nonexistent/lc.ini: cannot read"));
}

#[test]
fn run_on_a_port_without_sources_is_an_error() {
    let dir = TempDir::new("noport");
    let path = dir.0.join("lc.ini");
    std::fs::write(
        &path,
        format!(
            "[collector]\nstate_dir = {0}/s\nrun_dir = {0}/r\n{1}",
            dir.0.display(),
            source("a", "syslog-udp", "")
        ),
    )
    .unwrap();
    let out = Command::new(LC)
        .args(["run", "9", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source listens on port 9"));
}

#[test]
fn status_and_tail_show_a_running_instance() {
    let lc = Lc::start("status", "", "", &source("asa", "syslog-udp", ""));
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..15 {
        udp.send_to(format!("<13>line {i}").as_bytes(), lc.addr("asa", "udp"))
            .unwrap();
    }
    crate::harness::wait_for(10, "15 messages counted", || {
        lc.source_status("asa")["messages"] == 15
    });
    let out = Command::new(LC)
        .args(["status", "--config"])
        .arg(&lc.config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.contains("instance all: running") && text.contains("asa") && text.contains("Healthy"),
        "{text}"
    );
    let out = Command::new(LC)
        .args(["status", "--json", "--config"])
        .arg(&lc.config)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["sources"][0]["messages"], 15);
    assert_eq!(v[0]["alive"], true);
    let out = Command::new(LC)
        .args(["tail", "asa", "-n", "3", "--config"])
        .arg(&lc.config)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<13>line 12\n<13>line 13\n<13>line 14\n"
    );
    let out = Command::new(LC)
        .args(["tail", "nope", "--config"])
        .arg(&lc.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no source \"nope\"; configured: asa"));
}

#[test]
fn run_port_serves_only_that_ports_sources() {
    // Ask the kernel for two free port numbers, then let lc bind them.
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (p1, p2) = (free(), free());
    let dir = TempDir::new("runport");
    let path = dir.0.join("lc.ini");
    let src = |name: &str, recv: &str, port: u16| {
        format!("[source {name}]\nformat = SQUID\nreceiver = {recv}\nport = {port}\n")
    };
    std::fs::write(
        &path,
        format!(
            "[collector]\nstate_dir = {d}/s\nrun_dir = {d}/r\nlisten = 127.0.0.1\n[spool]\nmin_free_bytes = 0\n{}{}{}",
            src("a-udp", "syslog-udp", p1),
            src("a-tcp", "syslog-tcp", p1),
            src("b", "syslog-udp", p2),
            d = dir.0.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(LC)
        .args(["run", &p1.to_string(), "--config"])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let snapshot = dir.0.join(format!("r/{p1}.json"));
    crate::harness::wait_for(10, "status of instance p1", || snapshot.exists());
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&snapshot).unwrap()).unwrap();
    let names: Vec<&str> = v["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a-udp", "a-tcp"]);
    assert_eq!(v["instance"], p1.to_string());
    assert!(dir.0.join(format!("r/{p1}.pid")).exists());
    // A second instance on the same port fails with a message naming the address.
    let out = Command::new(LC)
        .args(["run", &p1.to_string(), "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "cannot bind UDP 127.0.0.1:{p1}: Address already in use"
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn under_journald_log_lines_carry_priorities_and_no_timestamps() {
    let dir = TempDir::new("journal");
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        crate::harness::base_config(&dir.0, "", "")
            .replace("log_level = debug", "log_level = info")
            + &source("a", "syslog-udp", ""),
    )
    .unwrap();
    let lc = crate::harness::Lc::attach_with_env(dir, config, &[("JOURNAL_STREAM", "8:12345")]);
    let log = lc.log();
    let first = log.lines().next().unwrap_or_default().to_string();
    assert!(
        first.starts_with("<6>source a: listening on UDP 127.0.0.1:"),
        "{log}"
    );
    assert!(log.lines().all(|l| l.starts_with('<')), "{log}");
}

#[test]
fn a_bad_ca_file_or_missing_token_is_a_config_error_naming_the_file() {
    let dir = TempDir::new("badca");
    let config = dir.0.join("lc.ini");
    let bad = dir.0.join("proxy-ca.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let token = dir.0.join("token");
    std::fs::write(&token, "t0ken\n").unwrap();
    let delivery = format!(
        "url = https://tenant.example\ntoken_file = {}\nca_file = {}",
        token.display(),
        bad.display()
    );
    std::fs::write(
        &config,
        crate::harness::config_with(&dir.0, "", "", &delivery) + &source("a", "syslog-udp", ""),
    )
    .unwrap();
    for args in [&["config", "check"][..], &["run"]] {
        let out = Command::new(LC)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}: holds no certificate", bad.display())),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_file(&token).unwrap();
    std::fs::write(
        &bad,
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/harness.rs")).unwrap(),
    )
    .unwrap();
    let out = Command::new(LC)
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("{}: cannot read the API token", token.display())));
}
