//! Metrics in Prometheus's text format: what `lc run` writes into `[collector] metrics_dir`,
//! checked by `promtool check metrics` and read by a real node_exporter's textfile collector
//! (Debian's prometheus and prometheus-node-exporter packages, `scripts/deps.sh`).

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use crate::harness::{source, wait_explained, wait_for, Lc};

/// The value of the sample `line` (metric name with its labels) in `text`.
fn sample(text: &str, line: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.strip_prefix(' ')?.parse().ok())
}

/// `promtool check metrics` on `text`: its complaints (empty when clean).
fn promtool(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/deps.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        said
    } else {
        format!("exit {:?}: {said}", out.status.code())
    }
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Issue 13: `metrics_dir` was documented and did nothing.
#[test]
fn metrics_dir_is_read_by_node_exporter_and_promtool_finds_nothing_to_say() {
    let probe = crate::harness::TempDir::new("metrics-probe");
    let metrics = probe.0.join("textfile");
    fs::create_dir(&metrics).unwrap();
    let lc = Lc::start(
        "metrics",
        "rotate_secs = 1",
        &format!("metrics_dir = {}", metrics.display()),
        &(source("asa", "syslog-udp", "") + &source("pa", "syslog-tcp", "")),
    );
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..7 {
        udp.send_to(format!("<13>line {i}").as_bytes(), lc.addr("asa", "udp"))
            .unwrap();
    }
    let file = metrics.join("lc_all.prom");
    let messages = "lc_source_received_messages_total{lc_instance=\"all\",source=\"asa\"}";
    let delivered = "lc_source_delivered_files_total{lc_instance=\"all\",source=\"asa\"}";
    wait_explained(
        20,
        "7 messages and a delivery in the metrics file",
        || {
            let text = fs::read_to_string(&file).unwrap_or_default();
            sample(&text, messages) == Some(7.0) && sample(&text, delivered) >= Some(1.0)
        },
        || fs::read_to_string(&file).unwrap_or_default(),
    );
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(promtool(&text), "", "{text}");
    assert_eq!(
        sample(
            &text,
            &format!(
                "lc_build_info{{lc_instance=\"all\",version=\"{}\"}}",
                lc.status()["version"].as_str().unwrap()
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "lc_disk_full{lc_instance=\"all\"}"),
        Some(0.0)
    );
    // No temp file left for the collector to trip on.
    let names: Vec<String> = fs::read_dir(&metrics)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["lc_all.prom"]);

    // node_exporter's textfile collector reads it; a port that was free a moment ago (it
    // cannot be given port 0 and say which it took).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _exporter = Killed(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(["--collector.disable-defaults", "--collector.textfile"])
            .arg(format!(
                "--collector.textfile.directory={}",
                metrics.display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter (scripts/deps.sh installs it)"),
    );
    let scrape = || {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}/metrics"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    wait_for(20, "node_exporter serving lc's metrics", || {
        sample(&scrape(), messages) == Some(7.0)
    });
    let scraped = scrape();
    assert_eq!(
        sample(&scraped, "node_textfile_scrape_error"),
        Some(0.0),
        "{scraped}"
    );
    assert_eq!(
        sample(
            &scraped,
            "lc_source_dropped_total{lc_instance=\"all\",reason=\"not_allowed\",source=\"pa\"}"
        ),
        Some(0.0),
        "{scraped}"
    );
}

use crate::cloud::free_port;

/// `curl -s` of `url`: the status code and the body.
fn get(url: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A real Prometheus (Debian's package) scraping `target` every second, with its own config
/// and storage in a temp dir, on a free port.
struct Prometheus {
    _child: Killed,
    port: u16,
    dir: crate::harness::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = crate::harness::TempDir::new("prometheus");
        let config = dir.0.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: lc\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.0.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.0.join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus (Debian's prometheus package; scripts/deps.sh installs it)");
        Prometheus {
            _child: Killed(child),
            port,
            dir,
        }
    }

    /// The value of the instant query `expr` (its one series), if there is one.
    fn query(&self, expr: &str) -> Option<f64> {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "5", "-G", "--data-urlencode"])
            .arg(format!("query={expr}"))
            .arg(format!("http://127.0.0.1:{}/api/v1/query", self.port))
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let result = v["data"]["result"].as_array()?;
        match result.as_slice() {
            [one] => one["value"][1].as_str()?.parse().ok(),
            _ => None,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("prometheus.log")).unwrap_or_default()
    }
}

/// Issue 13: `metrics_listen` serves `/metrics` to a real Prometheus and `/health` with the
/// verdict of `lc status --check`, from the instance's own loop, which neither a slowloris
/// client, a flood of connections nor an oversized request disturbs.
#[test]
fn metrics_listen_is_scraped_by_prometheus_and_health_follows_delivery() {
    let mut cloud = crate::cloud::Cloud::start(&["asa"]);
    let dir = crate::harness::TempDir::new("metrics-listen");
    let delivery = cloud.delivery_config(&dir.0, "critical_after_secs = 0\n");
    let config = dir.0.join("lc.ini");
    fs::write(
        &config,
        crate::harness::config_with(
            &dir.0,
            "rotate_secs = 1",
            "metrics_listen = 127.0.0.1:0",
            &delivery,
        ) + &source("asa", "syslog-udp", ""),
    )
    .unwrap();
    let lc = Lc::attach(dir, config);
    // Port 0: the kernel chose, the snapshot says.
    let http = lc.status()["metrics_listen"]["addr"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(lc.status()["metrics_listen"]["serving"], true);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sent = std::cell::Cell::new(0);
    let send = |n: usize| {
        for _ in 0..n {
            udp.send_to(
                format!("<13>line {}", sent.get()).as_bytes(),
                lc.addr("asa", "udp"),
            )
            .unwrap();
            sent.set(sent.get() + 1);
        }
    };
    // The tenant answers the first upload_url with 429; another instance of the host has
    // just been told to wait 2 s (the shared bucket): the calls, the 429 and the wait are
    // counted.
    cloud.faults(r#"{"upload_url": ["429"]}"#);
    let boot_ms = {
        let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap();
        t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000
    };
    fs::write(
        lc.dir.0.join("run/api-bucket"),
        format!("blocked_until {}\ncalls\n", boot_ms + 2000),
    )
    .unwrap();
    send(5);
    wait_explained(
        30,
        "a delivery",
        || lc.source_status("asa")["delivered_files"].as_u64() >= Some(1),
        || lc.log(),
    );
    let api = &lc.status()["api"];
    assert_eq!(api["calls"]["upload_url"]["rate_limited"], 1, "{api}");
    assert!(
        api["calls"]["upload_url"]["ok"].as_u64() >= Some(1),
        "{api}"
    );
    assert!(
        api["calls"]["done_upload"]["ok"].as_u64() >= Some(1),
        "{api}"
    );
    assert!(api["budget_waits"].as_u64() >= Some(1), "{api}");
    assert!(api["budget_wait_seconds"].as_f64() > Some(0.0), "{api}");
    let (_, text, _) = crate::harness::lc_status(&lc.config, &["-v"]);
    assert!(text.contains("  api calls: "), "{text}");
    let (code, body) = get(&format!("http://{http}/health"));
    assert_eq!(
        (code, body.as_str()),
        (200, "lc OK: 1 instances running, 1 sources, delivery ok\n")
    );
    let (code, text) = get(&format!("http://{http}/metrics"));
    assert_eq!(code, 200);
    assert_eq!(promtool(&text), "", "{text}");

    let prometheus = Prometheus::start(&http);
    let messages =
        "lc_source_received_messages_total{job=\"lc\",lc_instance=\"all\",source=\"asa\"}";
    wait_explained(
        60,
        "Prometheus has scraped lc's 5 messages",
        || prometheus.query(messages) == Some(5.0),
        || prometheus.log(),
    );
    assert_eq!(prometheus.query("up{job=\"lc\"}"), Some(1.0));
    assert_eq!(
        prometheus.query("lc_up{lc_instance=\"all\"}"),
        Some(1.0),
        "{}",
        prometheus.log()
    );
    assert_eq!(
        prometheus.query("lc_snapshot_stale{lc_instance=\"all\"}"),
        Some(0.0)
    );
    assert_eq!(
        prometheus.query("lc_api_calls_total{call=\"upload_url\",result=\"rate_limited\"}"),
        Some(1.0)
    );
    assert!(prometheus.query("lc_api_budget_waits_total").unwrap_or(0.0) >= 1.0);

    // A slowloris client holds a connection with half a request; a flood fills the cap.
    use std::io::Read;
    let mut slow = std::net::TcpStream::connect(&http).unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut flood: Vec<_> = (0..lc::httpd::MAX_CONNECTIONS)
        .map(|_| std::net::TcpStream::connect(&http).unwrap())
        .collect();
    wait_for(20, "connections over the cap closed at once", || {
        lc.status()["metrics_listen"]["refused"]["max_connections"].as_u64() >= Some(1)
    });
    // The loop goes on: the source still receives meanwhile.
    send(3);
    wait_for(20, "8 messages received", || {
        lc.source_status("asa")["messages"] == 8
    });
    // Each slow connection is cut at its deadline, and the server answers again.
    let mut rest = Vec::new();
    assert_eq!(slow.read_to_end(&mut rest).unwrap_or(0), 0);
    for c in &mut flood {
        let _ = c.read_to_end(&mut rest);
    }
    drop(flood);
    wait_for(20, "the slow connections cut", || {
        lc.status()["metrics_listen"]["refused"]["timeout"].as_u64() >= Some(1)
    });
    assert_eq!(get(&format!("http://{http}/health")).0, 200);
    // An oversized request head: refused with 431, the loop unhurt.
    let mut big = std::net::TcpStream::connect(&http).unwrap();
    let mut head = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    head.resize(lc::httpd::request::MAX_REQUEST_BYTES + 100, b'a');
    let _ = big.write_all(&head);
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{answer:?}"
    );
    send(2);
    wait_for(20, "10 messages received", || {
        lc.source_status("asa")["messages"] == 10
    });
    wait_explained(
        60,
        "Prometheus has scraped 10 messages",
        || prometheus.query(messages) == Some(10.0),
        || prometheus.log(),
    );

    // The API stops: delivery fails, /health says 503 and why (critical_after_secs = 0).
    cloud.stop_api();
    send(2);
    wait_explained(
        60,
        "delivery failing",
        || lc.source_status("asa")["failing_since"].as_u64() > Some(0),
        || lc.log(),
    );
    let (code, body) = get(&format!("http://{http}/health"));
    assert_eq!(code, 503, "{body}");
    assert!(
        body.starts_with("lc CRITICAL: source asa: delivery failing for "),
        "{body}"
    );
    wait_explained(
        60,
        "Prometheus has scraped the failure",
        || {
            prometheus.query(
                "lc_source_delivery_failing_since_timestamp_seconds{lc_instance=\"all\",source=\"asa\"} > 0",
            )
            .is_some()
        },
        || prometheus.log(),
    );
    let log = lc.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// metrics_listen held by a program that is not lc: the instance keeps receiving and retrying,
/// and its log does not say that another lc instance serves the metrics there (it used to,
/// whoever held the address).
#[test]
fn metrics_listen_held_by_another_program_is_not_called_an_lc_instance() {
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = squatter.local_addr().unwrap();
    let lc = Lc::start(
        "metrics-squatter",
        "",
        &format!("metrics_listen = {addr}"),
        &source("asa", "syslog-udp", ""),
    );
    wait_explained(
        30,
        "the instance says another program holds the address",
        || {
            lc.log().contains(&format!(
                "metrics_listen {addr} is still in use, and no running lc instance in"
            ))
        },
        || lc.log(),
    );
    let log = lc.log();
    assert!(!log.contains("lc instance serves"), "{log}");
    assert!(
        log.contains(&format!("metrics_listen {addr} is in use, and no running lc instance says it serves there (one may be starting)")),
        "{log}"
    );
    assert_eq!(lc.status()["metrics_listen"]["serving"], false);
}

/// Instances of one host share metrics_listen: one serves every instance's metrics from
/// run_dir, and when it stops, another takes the address over.
#[test]
fn metrics_listen_moves_to_a_surviving_instance() {
    let dir = crate::harness::TempDir::new("metrics-takeover");
    let (p1, p2, http) = (free_port(), free_port(), free_port());
    let config = dir.0.join("lc.ini");
    let src = |name: &str, port: u16| {
        format!("[source {name}]\nformat = SQUID\nreceiver = syslog-udp\nport = {port}\n")
    };
    fs::write(
        &config,
        crate::harness::base_config(&dir.0, "", &format!("metrics_listen = 127.0.0.1:{http}"))
            + &src("a", p1)
            + &src("b", p2),
    )
    .unwrap();
    let start = |port: u16| {
        Killed(
            Command::new(crate::harness::LC)
                .args(["run", &port.to_string(), "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(fs::File::create(dir.0.join(format!("{port}.log"))).unwrap())
                .spawn()
                .unwrap(),
        )
    };
    let snapshot = |port: u16| -> serde_json::Value {
        fs::read_to_string(dir.0.join(format!("run/{port}.json")))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    };
    let serving = |port: u16| snapshot(port)["metrics_listen"]["serving"] == true;
    let mut first = start(p1);
    wait_for(20, "the first instance serves", || serving(p1));
    let _second = start(p2);
    let logs = || {
        [p1, p2]
            .map(|p| fs::read_to_string(dir.0.join(format!("{p}.log"))).unwrap_or_default())
            .join("\n")
    };
    wait_explained(
        20,
        "the second instance finds the address in use",
        || snapshot(p2)["metrics_listen"]["serving"] == false,
        logs,
    );
    let url = format!("http://127.0.0.1:{http}/metrics");
    let up = |text: &str, port: u16| sample(text, &format!("lc_up{{lc_instance=\"{port}\"}}"));
    wait_for(20, "both instances in the metrics", || {
        let text = get(&url).1;
        up(&text, p1) == Some(1.0) && up(&text, p2) == Some(1.0)
    });
    assert_eq!(promtool(&get(&url).1), "");
    assert!(
        logs().contains(&format!("metrics_listen 127.0.0.1:{http} is in use by lc instance {p1} (pid {}), which serves every instance's metrics there", first.0.id())),
        "{}",
        logs()
    );

    // The holder stops: the other instance takes over and says the first is down.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(first.0.wait().unwrap().success());
    wait_explained(30, "the second instance serves", || serving(p2), logs);
    wait_for(20, "the metrics from the second", || {
        let text = get(&url).1;
        up(&text, p1) == Some(0.0) && up(&text, p2) == Some(1.0)
    });
    let (code, body) = get(&format!("http://127.0.0.1:{http}/health"));
    assert_eq!(
        (code, body.as_str()),
        (200, "lc OK: 1 instances running, 1 sources, delivery ok\n")
    );
}
