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
