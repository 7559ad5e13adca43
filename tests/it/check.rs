//! `lc check --format TYPE FILE...` and `lc check --list` on the real binary, with lines from
//! `tests/corpus/formats/`; the live format check of a running source (status, log, reload,
//! `lc check SOURCE`); `lc upload --snapshot` against the Cloud Discovery stand-in.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use serde_json::json;

use crate::cloud::Cloud;
use crate::harness::{base_config, config_with, lc_with_config, wait_for, Lc, TempDir, LC};

fn corpus(name: &str) -> String {
    format!("{}/tests/corpus/formats/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_asa_type_on_fortigate_lines_exits_1_naming_fortigate() {
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO_ASA_SYSLOG"])
        .arg(corpus("FORTIGATE.log"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("0 of 6 lines (0 %) look like CISCO_ASA_SYSLOG"),
        "{stdout}"
    );
    assert!(
        stdout.contains("best guess: FortiGate (FORTIGATE,"),
        "{stdout}"
    );
    assert!(stdout.contains("FORTIGATE.log:1: <189>date="), "{stdout}");
}

#[test]
fn check_asa_type_on_asa_lines_exits_0() {
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO_ASA_SYSLOG"])
        .arg(corpus("CISCO_ASA_SYSLOG.log"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("best guess: Cisco ASA"), "{stdout}");
}

#[test]
fn check_reads_gzip_lists_types_and_refuses_unknown_ones() {
    let dir = TempDir::new("check");
    let gz = dir.0.join("asa.log.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            corpus("CISCO_ASA_SYSLOG.log"),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO_ASA"])
        .arg(&gz)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO", "x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format \"CISCO\""));
    let out = Command::new(LC).args(["check", "--list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CISCO_ASA, CISCO_ASA_SYSLOG\n"));
}

/// The corpus file's lines, repeated to `n` lines, LF-terminated.
fn corpus_lines(name: &str, n: usize) -> String {
    let text = std::fs::read_to_string(corpus(name)).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    (0..n)
        .map(|i| format!("{}\n", lines[i % lines.len()]))
        .collect()
}

fn send_tcp(lc: &Lc, source: &str, text: &str) {
    let mut s = TcpStream::connect(lc.addr(source, "tcp")).unwrap();
    s.write_all(text.as_bytes()).unwrap();
}

/// `lc check SOURCE` against `lc`'s config: exit code, and stdout then stderr.
fn check_source(lc: &Lc, source: &str) -> (Option<i32>, String) {
    let out = lc_with_config(&lc.config, &["check", source]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// The value of `name` for source asa-hq in the instance's metrics file, if written yet.
fn metric(dir: &std::path::Path, name: &str) -> Option<f64> {
    let prefix = format!("{name}{{");
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".prom"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| text.lines().map(String::from).collect::<Vec<_>>())
        .find(|l| l.starts_with(&prefix) && l.contains("source=\"asa-hq\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn asa_hq(format: &str) -> String {
    format!(
        "[source asa-hq]\nformat = {format}\nreceiver = syslog-tcp\nport = 0\nrender = vendor\n"
    )
}

/// The proof: a source configured as CISCO_ASA_SYSLOG that receives FortiGate lines
/// warns once, naming FortiGate, and `lc check asa-hq` says so (exit 1); after a reload with
/// the right type the warning clears and the check passes.
#[test]
fn asa_source_receiving_fortigate_lines_warns_once_until_reloaded_with_the_right_type() {
    let dir = TempDir::new("check-live");
    let metrics = dir.0.join("metrics");
    std::fs::create_dir(&metrics).unwrap();
    let collector = format!("metrics_dir = {}", metrics.display());
    let root = dir.0.clone();
    let config = |format: &str| base_config(&root, "", &collector) + &asa_hq(format);
    let lc_ini = dir.0.join("lc.ini");
    std::fs::write(&lc_ini, config("CISCO_ASA_SYSLOG")).unwrap();
    let mut lc = Lc::attach(dir, lc_ini);
    send_tcp(&lc, "asa-hq", &corpus_lines("FORTIGATE.log", 150));
    wait_for(20, "the format warning", || {
        lc.source_status("asa-hq")["format_check"]["state"] == "warning"
    });
    // A burst of more than the 125 lines a tick checks is sampled: at least 100 are checked.
    let f = lc.source_status("asa-hq")["format_check"].clone();
    let checked = f["lines"].as_u64().unwrap();
    assert!((100..=150).contains(&checked), "{f}");
    assert_eq!(
        (&f["match_pct"], &f["looks_like"], &f["looks_like_pct"]),
        (&json!(0), &json!("FortiGate"), &json!(100)),
        "{f}"
    );
    // More of the same does not log again.
    send_tcp(&lc, "asa-hq", &corpus_lines("FORTIGATE.log", 50));
    wait_for(20, "more lines checked", || {
        lc.source_status("asa-hq")["format_check"]["lines"].as_u64() > Some(checked)
    });
    let warning = "source asa-hq: 100 % of recent lines look like FortiGate, not CISCO_ASA_SYSLOG";
    assert_eq!(lc.log().matches(warning).count(), 1, "{}", lc.log());
    let status = lc_with_config(&lc.config, &["status"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("format warning: 0 % of the last ")
            && status.contains(
                " lines look like CISCO_ASA_SYSLOG (90 % needed); 100 % look like FortiGate"
            ),
        "{status}"
    );

    // The metric says so too.
    wait_for(20, "the format warning metric", || {
        metric(&metrics, "lc_source_format_warning") == Some(1.0)
    });
    assert_eq!(metric(&metrics, "lc_source_format_match_ratio"), Some(0.0));

    // `lc check SOURCE` reads the same lines back from the spool.
    let (code, out) = check_source(&lc, "asa-hq");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("source asa-hq (its last 200 stored lines): 0 of 200 lines (0 %) look like CISCO_ASA_SYSLOG (Cisco ASA); 90 % needed"),
        "{out}"
    );
    assert!(out.contains("best guess: FortiGate (FORTIGATE,"), "{out}");
    assert!(out.contains("line 1 of 200: "), "{out}");
    let (code, out) = check_source(&lc, "nope");
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("no source \"nope\"; configured: asa-hq"),
        "{out}"
    );

    // The right type: the check starts over, and passes with the next lines.
    let reloads = lc.status()["reloaded_at"].clone();
    std::fs::write(&lc.config, config("FORTIGATE_SYSLOG")).unwrap();
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(20, "the reload", || lc.status()["reloaded_at"] != reloads);
    let f = lc.source_status("asa-hq")["format_check"].clone();
    assert_eq!(
        (&f["state"], &f["lines"]),
        (&json!("learning"), &json!(0)),
        "{f}"
    );
    assert!(lc.log().contains("source asa-hq: format is now FORTIGATE_SYSLOG (was CISCO_ASA_SYSLOG); the format check starts over"), "{}", lc.log());
    send_tcp(&lc, "asa-hq", &corpus_lines("FORTIGATE.log", 150));
    wait_for(20, "the format check passing", || {
        lc.source_status("asa-hq")["format_check"]["state"] == "ok"
    });
    assert_eq!(lc.source_status("asa-hq")["format_check"]["match_pct"], 100);
    wait_for(20, "the metric cleared", || {
        metric(&metrics, "lc_source_format_warning") == Some(0.0)
    });
    assert_eq!(lc.log().matches(warning).count(), 1, "{}", lc.log());
    let status = lc_with_config(&lc.config, &["status", "-v"]);
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.contains("format ok: 100 % of the last ")
            && status.contains(" lines look like FORTIGATE_SYSLOG")
            && !status.contains("format warning"),
        "{status}"
    );
    let (code, out) = check_source(&lc, "asa-hq");
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("350 of 350 lines (100 %) look like FORTIGATE_SYSLOG"),
        "{out}"
    );
    lc.stop();
}

/// `lc upload --snapshot`: a config delivering to the stand-in, and the command's outcome.
fn upload(cloud: &Cloud, dir: &TempDir, args: &[&str]) -> (Option<i32>, String) {
    let config = dir.0.join("lc.ini");
    let delivery = cloud.delivery_config(&dir.0, "");
    std::fs::write(&config, config_with(&dir.0, "", "", &delivery)).unwrap();
    let out = lc_with_config(&config, &[&["upload"], args].concat());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn a_snapshot_upload_reaches_the_tenant_as_a_snapshot_and_mismatched_files_need_force() {
    let cloud = Cloud::start(&["q3-review"]);
    let dir = TempDir::new("snapshot");
    let asa = corpus("CISCO_ASA_SYSLOG.log");
    let forti = corpus("FORTIGATE.log");
    let args = |file: &str, force: bool| {
        let mut a = vec!["--snapshot", "q3-review", "--format", "CISCO_ASA_SYSLOG"];
        if force {
            a.push("--force");
        }
        a.push(file);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |file: &str, force: bool| {
        let a = args(file, force);
        upload(
            &cloud,
            &dir,
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };

    // FortiGate lines as Cisco ASA: refused, nothing sent.
    let (code, out) = run(&forti, false);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("best guess: FortiGate"), "{out}");
    assert!(
        out.contains("not sent: the files do not look like CISCO_ASA_SYSLOG"),
        "{out}"
    );
    assert!(cloud.uploads().is_empty());

    // ASA lines: one snapshot upload, the file's lines in the blob.
    let (code, out) = run(&asa, false);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("as snapshot report \"q3-review\" of type CISCO_ASA_SYSLOG"),
        "{out}"
    );
    let uploads = cloud.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let u = &uploads[0];
    assert_eq!(u["uploadAsSnapshot"], true, "{u}");
    assert_eq!(u["inputStreamName"], "q3-review", "{u}");
    assert_eq!(u["source"], "CISCO_ASA_SYSLOG", "{u}");
    let gz = cloud.blob(u["blob"].as_str().unwrap());
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, std::fs::read_to_string(&asa).unwrap());

    // --force sends what the check refused.
    let (code, out) = run(&forti, true);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("--force: sent although"), "{out}");
    assert_eq!(cloud.uploads().len(), 2);

    // A dir: outbox is no tenant.
    let outbox = TempDir::new("snapshot-outbox");
    let config = outbox.0.join("lc.ini");
    std::fs::write(&config, base_config(&outbox.0, "", "")).unwrap();
    let args = [
        "upload",
        "--snapshot",
        "x",
        "--format",
        "CISCO_ASA_SYSLOG",
        &asa,
    ];
    let out = lc_with_config(&config, &args);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("a snapshot report needs a console"));
}

/// An FTP source's uploads are checked too, by their first lines: FortiGate lines uploaded
/// to a CISCO_ASA_SYSLOG folder turn it to the warning state, and it is logged once.
#[test]
fn an_ftp_source_receiving_fortigate_files_warns() {
    use crate::ftp::{curl_ok, Delivery, Ftp};
    let ftp = Ftp::start_with(
        "check-ftp",
        "",
        "[source asa-ftp]\nformat = CISCO_ASA_SYSLOG\nreceiver = ftp\n",
        Delivery::Outbox,
    );
    let file = ftp.lc.dir.0.join("fortigate.log");
    std::fs::write(&file, corpus_lines("FORTIGATE.log", 150)).unwrap();
    curl_ok(&["-T", &file.display().to_string(), &ftp.url("/asa-ftp/")]);
    wait_for(20, "the FTP source warns", || {
        ftp.lc.source_status("asa-ftp")["format_check"]["state"] == "warning"
    });
    let f = ftp.lc.source_status("asa-ftp")["format_check"].clone();
    assert_eq!(f["looks_like"], "FortiGate", "{f}");
    assert_eq!(ftp.lc.log().matches("look like FortiGate").count(), 1);
}
