//! The command line: usage errors, `config check`, `status` and `tail` against a real instance.

use std::process::Command;

use crate::harness::{lc_status, source, Lc, TempDir, LC};

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
        &["help"],
        &["run", "--help"],
        &["help", "run"],
        &["status", "-h"],
        &["tail", "--help"],
        &["config", "--help"],
        &["config", "check", "--help"],
        &["certs", "init", "--help"],
        &["certs", "check", "--help"],
        &["certs", "reload", "--help"],
        &["help", "certs"],
        &["passwd", "--help"],
        &["connect", "--help"],
        &["version", "--help"],
    ] {
        let out = Command::new(LC).args(cmd).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{cmd:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.starts_with("usage: lc") || text.starts_with("lc: log collector"),
            "{cmd:?}: {text}"
        );
    }
    for flag in ["-V", "--version", "version"] {
        let out = Command::new(LC).arg(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with("lc 0."),
            "{flag}"
        );
    }
}

/// A usage error says what is wrong and the command's usage lines, not 25 lines of help.
#[test]
fn usage_errors_are_short_and_point_at_the_help() {
    for (cmd, expected) in [
        (&["certs", "frob"][..], "try `lc certs --help`"),
        (&["run", "x"], "try `lc run --help`"),
        (&["frobnicate"], "try `lc --help`"),
        (&[], "try `lc --help`"),
    ] {
        let out = Command::new(LC).args(cmd).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("lc: "), "{cmd:?}: {err}");
        assert!(err.trim_end().ends_with(expected), "{cmd:?}: {err}");
        assert!(err.lines().count() <= 5, "{cmd:?}: {err}");
        assert!(out.stdout.is_empty(), "{cmd:?}");
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
    let out = crate::harness::lc_with_config(&path, &["config", "check"]);
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
    // A config error (exit 2, which lc@.service does not restart), not a runtime failure.
    for args in [&["run", "9"][..], &["config", "check", "--port", "9"]] {
        let out = Command::new(LC)
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "{}: no source listens on port 9; the configured instances are: lc@0",
                path.display()
            )),
            "{args:?}: {err}"
        );
    }
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
    // (As root, a warning about that comes first.)
    let first = log
        .lines()
        .find(|l| !l.contains("running as root"))
        .unwrap_or_default()
        .to_string();
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
    let out = crate::harness::lc_with_config(&config, &["config", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(&format!("{}: cannot read the API token", token.display())));
}

/// The reboot loop of issue 13: one expired certificate of a syslog-tls source on 6514 kept
/// `lc@514` and `lc@21` from starting, since ExecStartPre checked the whole file. Each
/// instance's check now fails only on what that instance serves; the rest is a warning.
#[test]
fn an_expired_certificate_on_another_port_does_not_stop_an_instance() {
    let dir = TempDir::new("expired-elsewhere");
    let d = dir.0.display();
    let certs = dir.0.join("certs");
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        format!(
            "[collector]\nstate_dir = {d}/state\nrun_dir = {d}/run\ncerts_dir = {d}/certs\n\
             [source asa]\nformat = CISCO_ASA_SYSLOG\nreceiver = syslog-udp\nport = 514\n\
             [source squid]\nformat = SQUID\nreceiver = ftp\n\
             [source pa]\nformat = PALO_ALTO_SYSLOG\nreceiver = syslog-tls\nport = 6514\n"
        ),
    )
    .unwrap();
    let init = Command::new(LC)
        .args(["certs", "init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let work = dir.0.join("work");
    std::fs::create_dir_all(&work).unwrap();
    crate::tls::cert_with_dates(
        &work,
        Some(&certs),
        &certs.join("server-key.pem"),
        "/CN=localhost",
        &[
            "subjectAltName=DNS:localhost",
            "extendedKeyUsage=serverAuth",
        ],
        crate::tls::LONG_AGO,
        &certs.join("server-cert.pem"),
    );
    let check = |args: &[&str], journal: bool| {
        let mut cmd = Command::new(LC);
        cmd.args(["config", "check"])
            .args(args)
            .arg("--config")
            .arg(&config);
        if journal {
            cmd.env("JOURNAL_STREAM", "8:12345");
        } else {
            cmd.env_remove("JOURNAL_STREAM");
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let cert = certs.join("server-cert.pem");
    for port in ["514", "21"] {
        let (code, out, err) = check(&["--port", port], false);
        assert_eq!(code, Some(0), "--port {port}: {out}{err}");
        assert!(out.contains(&format!("ok for lc@{port}")), "{out}");
        assert!(
            err.starts_with("warning: port 6514 (source pa syslog-tls): ")
                && err.contains(&cert.display().to_string())
                && err.contains("lc@6514 will not start"),
            "--port {port}: {err}"
        );
    }
    // The instance that serves the source fails, and says which source on which port.
    let (code, _, err) = check(&["--port", "6514"], false);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("port 6514 (source pa syslog-tls): "),
        "{err}"
    );
    assert!(err.contains(&cert.display().to_string()), "{err}");
    let (code, _, err) = check(&[], false);
    assert_eq!(code, Some(2), "{err}");
    // Under systemd (ExecStartPre, ExecReload) every line carries its journald priority.
    let (code, _, err) = check(&["--port", "6514"], true);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.lines().all(|l| l.starts_with("<3>")), "{err}");
    let (code, _, err) = check(&["--port", "514"], true);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !err.is_empty() && err.lines().all(|l| l.starts_with("<4>")),
        "{err}"
    );
    // `lc run 6514` refuses to start the same way, at error priority on every line.
    let out = Command::new(LC)
        .args(["run", "6514", "--config"])
        .arg(&config)
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.starts_with("<3>lc@6514: cannot start:\n<3>port 6514 (source pa syslog-tls): "),
        "{err}"
    );
    assert!(err.lines().all(|l| l.starts_with("<3>")), "{err}");
}

/// A config error in another instance's source section is a warning for this instance's
/// check and start; its own instance's check fails on it.
#[test]
fn a_broken_source_on_another_port_is_a_warning() {
    let dir = TempDir::new("broken-elsewhere");
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        crate::harness::base_config(&dir.0, "", "")
            + &source("a", "syslog-udp", "")
            + "[source b]\nformat = CISCO\nreceiver = syslog-tcp\nport = 601\n",
    )
    .unwrap();
    let check =
        |port: &str| crate::harness::lc_with_config(&config, &["config", "check", "--port", port]);
    let out = check("0");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: unknown format \"CISCO\"") && err.contains("source b is lc@601's"),
        "{err}"
    );
    let out = check("601");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":21: unknown format \"CISCO\"") && err.contains("(source b, port 601)"),
        "{err}"
    );
}

/// Multi-line messages (a refused config lists every problem) keep their priority on every
/// line under journald.
#[test]
fn under_journald_every_line_of_a_message_has_its_priority() {
    let dir = TempDir::new("journal-lines");
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        "[collector]\nnmae = x\n[spool]\nrotate_bytes = lots\n",
    )
    .unwrap();
    let out = Command::new(LC)
        .args(["run", "--config"])
        .arg(&config)
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.lines().count() >= 3, "{err}");
    assert!(err.lines().all(|l| l.starts_with("<3>")), "{err}");
    assert!(
        err.contains(":2: unknown key") && err.contains(":4: rotate_bytes"),
        "{err}"
    );
}

/// `sudo lc run` (as OPERATIONS once suggested) left root-owned spool folders, and the
/// service (User=lc) then failed on them. As root, lc warns and creates what it creates in
/// state_dir and run_dir with state_dir's owner.
#[test]
fn run_as_root_creates_files_owned_by_the_state_dirs_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let dir = TempDir::new("as-root");
    std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let state = dir.0.join("state");
    std::fs::create_dir(&state).unwrap();
    let nobody = 65534;
    nix::unistd::chown(
        &state,
        Some(nix::unistd::Uid::from_raw(nobody)),
        Some(nix::unistd::Gid::from_raw(nobody)),
    )
    .unwrap();
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        crate::harness::config_with(
            &dir.0,
            "",
            "",
            &format!("url = dir:{}/outbox", state.display()),
        ) + &source("a", "syslog-udp", ""),
    )
    .unwrap();
    let mut lc = Lc::attach(dir, config);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<13>hello", lc.addr("a", "udp")).unwrap();
    crate::harness::wait_for(10, "the message counted", || {
        lc.source_status("a")["messages"] == 1
    });
    assert!(lc.stop().success());
    assert!(lc.log().contains("running as root"), "{}", lc.log());
    let owner = |p: &std::path::Path| std::fs::metadata(p).map(|m| (m.uid(), m.gid())).unwrap();
    for p in [
        state.join("spool"),
        state.join("spool/a"),
        lc.dir.0.join("run"),
        lc.dir.0.join("run/all.json"),
    ] {
        assert_eq!(owner(&p), (nobody, nobody), "{}", p.display());
    }
    for entry in std::fs::read_dir(state.join("spool/a")).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(owner(&p), (nobody, nobody), "{}", p.display());
    }
}

/// A reload: a broken source of another port does not refuse it (a warning), and one that
/// moves every source off this instance is logged as an error, not at info.
#[test]
fn reload_warns_about_other_ports_and_errs_when_nothing_is_left() {
    let p1 = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p2 = p1.wrapping_add(1).max(1024);
    let dir = TempDir::new("reload-empty");
    let path = dir.0.join("lc.ini");
    let write = |sources: &str| {
        std::fs::write(
            &path,
            format!(
                "[collector]\nstate_dir = {d}/s\nrun_dir = {d}/r\nlisten = 127.0.0.1\n[spool]\nmin_free_bytes = 0\n{sources}",
                d = dir.0.display()
            ),
        )
        .unwrap()
    };
    let a =
        |port: u16| format!("[source a]\nformat = SQUID\nreceiver = syslog-udp\nport = {port}\n");
    write(&a(p1));
    let log = dir.0.join("stderr.log");
    let mut child = Command::new(LC)
        .args(["run", &p1.to_string(), "--config"])
        .arg(&path)
        .env("JOURNAL_STREAM", "8:12345")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    crate::harness::wait_for(10, "the instance started", || {
        read_log().contains("instance ") && read_log().contains(" started")
    });
    let hup = || {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap()
    };
    write(&format!(
        "{}[source b]\nformat = CISCO\nreceiver = syslog-tcp\nport = {p2}\n",
        a(p1)
    ));
    hup();
    crate::harness::wait_for(10, "the reload", || read_log().contains("config reloaded"));
    let text = read_log();
    assert!(
        text.contains("<4>")
            && text.contains("unknown format \"CISCO\"")
            && !text.contains("reload refused"),
        "{text}"
    );
    write(&a(p2));
    hup();
    let expected = format!(
        "<3>{}: no source listens on port {p1} any more",
        path.display()
    );
    crate::harness::wait_for(10, "the error about an empty instance", || {
        read_log().contains(&expected)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
}

/// First-run messages: `lc passwd --list` before any user, `lc certs check` of a folder that
/// is not there.
#[test]
fn first_run_messages_say_what_is_missing() {
    let dir = TempDir::new("first-run");
    let config = dir.0.join("lc.ini");
    let passwd = dir.0.join("ftp.passwd");
    std::fs::write(
        &config,
        format!(
            "{}[ftp]\npasswd_file = {}\n{}",
            crate::harness::base_config(&dir.0, "", ""),
            passwd.display(),
            source("a", "syslog-udp", "")
        ),
    )
    .unwrap();
    let lc = |args: &[&str]| {
        Command::new(LC)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = lc(&["passwd", "--list"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{}: no users yet (the file does not exist; `lc passwd USER` adds one)\n",
            passwd.display()
        )
    );
    let out = lc(&["certs", "check", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "lc: /nonexistent: the folder does not exist; `lc certs init` makes a set\n"
    );
}

/// `lc certs reload` with only a new server-cert.pem (which does not match the installed key)
/// blamed `ssl_update/server-key.pem`, a file that does not exist: the key at fault is the
/// installed one.
#[test]
fn certs_reload_blames_the_installed_key_for_a_new_certificate() {
    let dir = TempDir::new("reload-blame");
    let certs = dir.0.join("certs");
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        crate::harness::base_config(&dir.0, "", &format!("certs_dir = {}", certs.display()))
            + &source("t", "syslog-tls", ""),
    )
    .unwrap();
    let lc = |args: &[&str]| {
        Command::new(LC)
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let other = dir.0.join("other");
    for args in [
        &["certs", "init"][..],
        &["certs", "init", other.to_str().unwrap()],
    ] {
        let out = lc(args);
        assert!(out.status.success(), "{out:?}");
    }
    let update = dir.0.join("state/ftp/ssl_update");
    std::fs::create_dir_all(&update).unwrap();
    std::fs::copy(
        other.join("server-cert.pem"),
        update.join("server-cert.pem"),
    )
    .unwrap();
    let out = lc(&["certs", "reload"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "lc: {}: the private key does not belong to the certificate in {}",
            certs.join("server-key.pem").display(),
            update.join("server-cert.pem").display()
        )),
        "{err}"
    );
    assert!(!err.contains("ssl_update/server-key.pem"), "{err}");
}

/// Issue 13: STATE stayed `Connected` while delivery failed, LAST ERROR stayed after recovery
/// without a time, `lc status` exited 0 whatever happened and exited 2 when lc.ini had an
/// error; `lc tail` too.
#[test]
fn status_tells_the_truth_while_delivery_fails_and_after() {
    let mut lc = Lc::start(
        "status-truth",
        "rotate_secs = 1",
        "",
        &source("asa", "syslog-udp", ""),
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let send = |tag: &str| {
        for i in 0..5 {
            udp.send_to(format!("<13>{tag} {i}").as_bytes(), lc.addr("asa", "udp"))
                .unwrap();
        }
    };
    send("first");
    crate::harness::wait_for(20, "first delivery", || {
        lc.source_status("asa")["delivered_files"].as_u64() >= Some(1)
    });
    let (code, text, _) = lc_status(&lc.config, &["--check"]);
    assert_eq!(
        (code, text.as_str()),
        (0, "lc OK: 1 instances running, 1 sources, delivery ok\n")
    );

    // The outbox becomes a file: delivery fails.
    std::fs::remove_dir_all(lc.outbox()).unwrap();
    std::fs::write(lc.outbox(), b"").unwrap();
    send("second");
    crate::harness::wait_for(20, "delivery failing", || {
        lc.source_status("asa")["failing_since"].as_u64() > Some(0)
    });
    let (code, text, _) = lc_status(&lc.config, &[]);
    assert_eq!(code, 0, "{text}");
    let row = text.lines().find(|l| l.starts_with("  asa ")).unwrap();
    assert!(
        row.contains("Healthy") && row.contains("failing "),
        "{text}"
    );
    assert!(text.contains("      delivery failing since "), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 120), "{text}");
    let (code, text, _) = lc_status(&lc.config, &["--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.starts_with("lc WARNING: source asa: delivery failing for "),
        "{text}"
    );

    // Back: delivered, the error is history (with its time, under -v only).
    std::fs::remove_file(lc.outbox()).unwrap();
    std::fs::create_dir(lc.outbox()).unwrap();
    crate::harness::wait_for(30, "delivery recovered", || {
        let st = lc.source_status("asa");
        st["failing_since"] == 0 && st["backlog"]["files"] == 0 && st["state"] == "Connected"
    });
    let (_, text, _) = lc_status(&lc.config, &[]);
    let row = text.lines().find(|l| l.starts_with("  asa ")).unwrap();
    assert!(row.contains("Connected") && row.contains(" ok "), "{text}");
    assert!(!text.contains("error"), "{text}");
    let (_, text, _) = lc_status(&lc.config, &["-v"]);
    assert!(text.contains("(delivered since, "), "{text}");
    assert_eq!(lc_status(&lc.config, &["--check"]).0, 0);
    assert!(
        lc.log().contains("source asa: delivery works again after "),
        "{}",
        lc.log()
    );

    // A broken lc.ini: status and tail still show what is there, and say so.
    let mut ini = std::fs::read_to_string(&lc.config).unwrap();
    ini.push_str("[bogus]\n");
    std::fs::write(&lc.config, ini).unwrap();
    let (code, text, err) = lc_status(&lc.config, &[]);
    assert_eq!(code, 0, "{text}{err}");
    assert!(
        text.starts_with("config has errors; shown from the snapshots"),
        "{text}"
    );
    assert!(text.contains("instance all: running"), "{text}");
    let (code, text, err) = lc_status(&lc.config, &["--check"]);
    assert_eq!(code, 0, "{text}");
    assert!(err.contains("unknown section"), "{err}");
    let out = Command::new(LC)
        .args(["tail", "asa", "-n", "1", "--config"])
        .arg(&lc.config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // With a `dir:` outbox a delivered segment keeps a second name there; it is the
    // service's own file, so `lc tail` reads it.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "<13>second 4\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("refused"), "{err}");

    // Killed: critical. No snapshot at all: unknown.
    lc.kill9();
    let (code, text, _) = lc_status(&lc.config, &["--check"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.starts_with("lc CRITICAL: instance all died (pid file not held"),
        "{text}"
    );
    let (code, text, _) = lc_status(&lc.config, &[]);
    assert_eq!(code, 0);
    assert!(text.contains("instance all: DIED"), "{text}");
    std::fs::remove_dir_all(lc.dir.0.join("run")).unwrap();
    let (code, text, _) = lc_status(&lc.config, &["--check"]);
    assert_eq!(
        (code, text.as_str()),
        (
            3,
            "lc UNKNOWN: no lc instance has written a status snapshot here\n"
        )
    );
}
