//! Delivery to the Cloud Discovery API: the real lc against the stand-in API with Azurite
//! behind it, directly and through tinyproxy and mitmproxy, with faults injected.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde_json::Value;

use crate::cloud::{Cloud, Mitmproxy, Tinyproxy};
use crate::harness::{config_with, run, source, wait_for, Lc, TempDir};

/// Starts lc delivering to `cloud` with `extra` lines in [delivery]; sources `asa` (TCP).
fn lc_for(cloud: &Cloud, tag: &str, extra: &str) -> Lc {
    lc_for_env(cloud, tag, extra, &[])
}

fn lc_for_env(cloud: &Cloud, tag: &str, extra: &str, env: &[(&str, &str)]) -> Lc {
    lc_at(cloud, &cloud.api_url(), tag, extra, env)
}

/// `lc_for` with the console at `url` (the token and CA are `cloud`'s).
fn lc_at(cloud: &Cloud, url: &str, tag: &str, extra: &str, env: &[(&str, &str)]) -> Lc {
    let dir = TempDir::new(tag);
    let delivery = cloud.delivery_config_at(url, &dir.0, extra);
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        config_with(&dir.0, "rotate_secs = 1", "", &delivery) + &source("asa", "syslog-tcp", ""),
    )
    .unwrap();
    Lc::attach_with_env(dir, config, env)
}

fn send_lines(lc: &Lc, from: usize, n: usize) -> Vec<String> {
    let lines: Vec<String> = (from..from + n)
        .map(|i| format!("<134>fw asa event {i:06}"))
        .collect();
    let mut s = TcpStream::connect(lc.addr("asa", "tcp")).unwrap();
    for l in &lines {
        s.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
    lines
}

/// The lines of every upload the stand-in accepted, in upload order, gunzipped from Azurite.
fn uploaded_lines(cloud: &Cloud, uploads: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for u in uploads {
        let gz = cloud.blob(u["blob"].as_str().unwrap());
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .unwrap();
        out.extend(text.lines().map(String::from));
    }
    out
}

fn delivered_all(cloud: &Cloud, n: usize) -> bool {
    uploaded_lines(cloud, &cloud.uploads()).len() >= n
}

#[test]
fn lines_arrive_in_azurite_exactly_once_with_the_stream_name() {
    let cloud = Cloud::start(&["asa"]);
    let lc = lc_for(&cloud, "deliver", "");
    let mut sent = send_lines(&lc, 0, 500);
    wait_for(30, "first batch uploaded", || delivered_all(&cloud, 500));
    sent.extend(send_lines(&lc, 500, 500));
    wait_for(30, "second batch uploaded", || delivered_all(&cloud, 1000));
    let uploads = cloud.uploads();
    assert_eq!(
        uploaded_lines(&cloud, &uploads),
        sent,
        "byte-identical, in order, once"
    );
    for u in &uploads {
        assert_eq!(u["inputStreamName"], "asa");
        assert_eq!(u["source"], "GENERIC_CEF");
        assert_eq!(u["uploadAsSnapshot"], false);
        assert_ne!(u["duplicate"], true);
        let name = u["filename"].as_str().unwrap();
        assert!(
            name.starts_with("asa_it_") && name.ends_with(".log.gz"),
            "{name}"
        );
    }
    wait_for(10, "status Connected", || {
        let st = lc.source_status("asa");
        st["state"] == "Connected"
            && st["delivered_files"].as_u64().unwrap() as usize == uploads.len()
    });
    // Delivered segments are in backup, none left in the spool.
    wait_for(10, "spool empty", || {
        lc.source_status("asa")["backlog"]["files"] == 0
    });
    assert!(
        !lc.log().contains(cloud.token()),
        "the token is never logged"
    );
}

#[test]
fn a_segment_sealed_in_parts_is_one_blob_of_blocks() {
    let cloud = Cloud::start(&["asa"]);
    // Parts of 64 KiB compressed: incompressible lines make a segment of many parts.
    let lc = lc_for(&cloud, "blocks", "max_upload_bytes = 64K");
    let mut x = 0x2545F4914F6CDD1Du64;
    let sent: Vec<String> = (0..3000)
        .map(|i| {
            let noise: String = (0..12)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{:08x}", x as u32)
                })
                .collect();
            format!("<134>fw asa event {i:06} {noise}")
        })
        .collect();
    let mut s = TcpStream::connect(lc.addr("asa", "tcp")).unwrap();
    for l in &sent {
        s.write_all(format!("{l}\n").as_bytes()).unwrap();
    }
    wait_for(60, "all lines uploaded", || {
        delivered_all(&cloud, sent.len())
    });
    let uploads = cloud.uploads();
    assert_eq!(uploaded_lines(&cloud, &uploads), sent);
    // ~330 KB of noise in 64 KiB parts: fewer uploads than parts, two API calls per upload.
    assert!(uploads.len() < 4, "{} uploads", uploads.len());
    assert!(
        uploads
            .iter()
            .any(|u| u["size"].as_u64().unwrap() > 64 * 1024),
        "a blob made of several parts"
    );
}

#[test]
fn through_tinyproxy_with_basic_auth() {
    let cloud = Cloud::start(&["asa"]);
    let proxy = Tinyproxy::start(Some(("lcuser", "s3cret")));
    let lc = lc_for(&cloud, "tinyproxy", &format!("proxy = {}", proxy.url()));
    let sent = send_lines(&lc, 0, 100);
    wait_for(30, "uploaded through the proxy", || {
        delivered_all(&cloud, 100)
    });
    assert_eq!(uploaded_lines(&cloud, &cloud.uploads()), sent);
    assert!(
        !proxy.connects().is_empty(),
        "lc went through tinyproxy:\n{}",
        proxy.log()
    );
    assert!(
        !lc.log().contains("s3cret"),
        "the proxy password is never logged"
    );
}

#[test]
fn https_proxy_from_the_environment_and_no_proxy_from_the_config() {
    let cloud = Cloud::start(&["asa"]);
    let proxy = Tinyproxy::start(None);
    // No proxy in the config: HTTPS_PROXY from the environment is used.
    let lc = lc_for_env(&cloud, "envproxy", "", &[("HTTPS_PROXY", &proxy.url())]);
    send_lines(&lc, 0, 10);
    wait_for(30, "uploaded via the environment's proxy", || {
        delivered_all(&cloud, 10)
    });
    assert!(
        !proxy.connects().is_empty(),
        "{}\n---\n{}",
        proxy.log(),
        lc.log()
    );
    drop(lc);
    // A dead proxy, but the API's host is in no_proxy: direct, delivered.
    let cloud = Cloud::start(&["asa"]);
    let lc = lc_for(
        &cloud,
        "noproxy",
        "proxy = http://127.0.0.1:9\nno_proxy = localhost, 127.0.0.1",
    );
    send_lines(&lc, 0, 10);
    wait_for(30, "uploaded directly", || delivered_all(&cloud, 10));
}

#[test]
fn a_tls_inspecting_proxy_needs_its_ca_in_ca_file() {
    let cloud = Cloud::start(&["asa"]);
    let mitm = Mitmproxy::start();
    let mut lc = lc_for(&cloud, "mitm", &format!("proxy = {}", mitm.url()));
    send_lines(&lc, 0, 50);
    wait_for(30, "a trust error in status", || {
        lc.source_status("asa")["last_error"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not trusted"))
    });
    assert!(cloud.uploads().is_empty());
    // The proxy's CA added to ca_file (beside the built-in roots and the test CA): delivered.
    let bundle = lc.dir.0.join("ca-bundle.pem");
    let both = std::fs::read_to_string(cloud.ca_pem()).unwrap()
        + &std::fs::read_to_string(mitm.ca_pem()).unwrap();
    std::fs::write(&bundle, both).unwrap();
    let text = std::fs::read_to_string(&lc.config).unwrap();
    let text = text.replace(
        &format!("ca_file = {}", cloud.ca_pem().display()),
        &format!("ca_file = {}", bundle.display()),
    );
    std::fs::write(&lc.config, text).unwrap();
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(30, "uploaded through mitmproxy", || {
        delivered_all(&cloud, 50)
    });
    assert!(!mitm.flows().is_empty(), "mitmproxy saw the calls");
    assert!(lc.stop().success());
}

#[test]
fn server_errors_rate_limits_and_resets_are_retried_without_loss() {
    let cloud = Cloud::start(&["asa"]);
    cloud.faults(
        r#"{"upload_url": ["500", "429", "reset", "503"], "done_upload": ["500", "reset"]}"#,
    );
    let lc = lc_for(&cloud, "faults", "");
    let sent = send_lines(&lc, 0, 300);
    wait_for(90, "delivered despite the faults", || {
        delivered_all(&cloud, 300)
    });
    let uploads = cloud.uploads();
    let lines = uploaded_lines(&cloud, &uploads);
    // A reset done_upload may have been processed (at-least-once): duplicates only there.
    let mut unique = lines.clone();
    unique.dedup();
    assert_eq!(unique, sent);
    assert!(uploads.iter().filter(|u| u["duplicate"] == true).count() <= 1);
    let calls = cloud.calls();
    assert!(
        calls["upload_url"]["calls"].as_u64().unwrap() >= 5,
        "{calls}"
    );
}

#[test]
fn a_hung_api_times_out_and_is_retried() {
    let cloud = Cloud::start(&["asa"]);
    cloud.faults(r#"{"upload_url": ["hang:5"]}"#);
    let lc = lc_for(&cloud, "hang", "timeout_secs = 1");
    let sent = send_lines(&lc, 0, 20);
    wait_for(60, "delivered after the timeout", || {
        delivered_all(&cloud, 20)
    });
    assert_eq!(uploaded_lines(&cloud, &cloud.uploads()), sent);
    assert!(lc.log().contains("upload_url at 127.0.0.1"), "{}", lc.log());
}

#[test]
fn blob_storage_down_then_back_loses_nothing() {
    let mut cloud = Cloud::start(&["asa"]);
    cloud.azurite_mut().stop();
    let lc = lc_for(&cloud, "azurite-down", "");
    let sent = send_lines(&lc, 0, 200);
    wait_for(30, "PUT failing", || {
        lc.source_status("asa")["last_error"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("PUT to 127.0.0.1"))
    });
    cloud.azurite_mut().restart();
    wait_for(90, "delivered after Azurite came back", || {
        delivered_all(&cloud, 200)
    });
    assert_eq!(uploaded_lines(&cloud, &cloud.uploads()), sent);
}

#[test]
fn a_stop_that_leaves_a_delivery_in_flight_says_so() {
    let cloud = Cloud::start(&["asa"]);
    // done_upload hangs past the stop's deadline.
    cloud.faults(r#"{"done_upload": ["hang:40"]}"#);
    let mut lc = lc_for(&cloud, "stop-in-flight", "timeout_secs = 60");
    send_lines(&lc, 0, 10);
    wait_for(30, "inside done_upload", || {
        cloud.calls()["done_upload"]["calls"].as_u64().unwrap_or(0) >= 1
    });
    assert!(lc.stop().success());
    assert!(
        lc.log().contains("did not finish"),
        "no word of the delivery left in flight:\n{}",
        lc.log()
    );
}

#[test]
fn kill_9_between_put_and_done_upload_redelivers_at_most_that_segment() {
    let cloud = Cloud::start(&["asa"]);
    // done_upload hangs, so lc is inside it when killed.
    cloud.faults(r#"{"done_upload": ["hang:3"]}"#);
    let mut lc = lc_for(&cloud, "kill-put", "");
    let sent = send_lines(&lc, 0, 100);
    wait_for(30, "inside done_upload", || {
        cloud.calls()["done_upload"]["calls"].as_u64().unwrap_or(0) >= 1
    });
    lc.kill9();
    lc.spawn();
    wait_for(60, "delivered after the restart", || {
        delivered_all(&cloud, 100) && lc.source_status("asa")["backlog"]["files"] == 0
    });
    let lines = uploaded_lines(&cloud, &cloud.uploads());
    // The hung call may still have completed on the server: then that segment came twice.
    let once: Vec<String> = {
        let mut seen = std::collections::BTreeSet::new();
        lines
            .iter()
            .filter(|l| seen.insert((*l).clone()))
            .cloned()
            .collect()
    };
    assert_eq!(once, sent);
    assert!(lines.len() <= 2 * sent.len());
}

#[test]
fn a_rejected_token_is_permanent_until_fixed_and_the_data_stays_spooled() {
    let cloud = Cloud::start(&["asa"]);
    let mut lc = lc_for(&cloud, "badtoken", "");
    let token_file = lc.dir.0.join("token");
    std::fs::write(&token_file, "wrong-token\n").unwrap();
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(10, "reloaded", || lc.log().contains("config reloaded"));
    let sent = send_lines(&lc, 0, 40);
    wait_for(30, "permanent error in status", || {
        lc.source_status("asa")["last_error"]["permanent"] == true
    });
    let st = lc.source_status("asa");
    assert!(
        st["last_error"]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 401"),
        "{st}"
    );
    assert!(st["backlog"]["files"].as_u64().unwrap() >= 1);
    std::fs::write(&token_file, format!("{}\n", cloud.token())).unwrap();
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for(30, "delivered after the fix", || delivered_all(&cloud, 40));
    assert_eq!(uploaded_lines(&cloud, &cloud.uploads()), sent);
    assert!(lc.stop().success());
}

#[test]
fn an_unknown_data_source_is_reported_as_such() {
    let cloud = Cloud::start(&["other"]);
    let lc = lc_for(&cloud, "nostream", "");
    send_lines(&lc, 0, 10);
    wait_for(30, "permanent error", || {
        lc.source_status("asa")["last_error"]["permanent"] == true
    });
    let err = lc.source_status("asa")["last_error"]["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        err.contains("done_upload answered HTTP 400") && err.contains("unknown data source"),
        "{err}"
    );
}

#[test]
fn lc_connect_checks_the_token_stores_it_and_reports_missing_sources() {
    let cloud = Cloud::start(&["asa"]);
    let dir = TempDir::new("connect");
    let stored = dir.0.join("etc/token");
    let config = dir.0.join("lc.ini");
    let delivery = format!(
        "token_file = {}\nca_file = {}\n; a comment that must survive",
        stored.display(),
        cloud.ca_pem().display()
    );
    std::fs::write(
        &config,
        config_with(&dir.0, "", "", &delivery)
            + &source("asa", "syslog-udp", "")
            + &source("pan", "syslog-tcp", ""),
    )
    .unwrap();
    let given = dir.0.join("token.txt");
    let tenant = cloud.api_url().trim_start_matches("https://").to_string();

    // A wrong token: refused, nothing changed.
    std::fs::write(&given, "nope\n").unwrap();
    let out = std::process::Command::new(crate::harness::LC)
        .args(["connect", "--config"])
        .arg(&config)
        .arg("--token-file")
        .arg(&given)
        .arg(&tenant)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 401"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stored.exists());

    // The right one: stored 0600, url and name written, the missing source named.
    std::fs::write(&given, format!("{}\n", cloud.token())).unwrap();
    let out = std::process::Command::new(crate::harness::LC)
        .args(["connect", "--config"])
        .arg(&config)
        .arg("--token-file")
        .arg(&given)
        .arg(&tenant)
        .arg("Collector7")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("source pan:") && err.contains("no data source named \"pan\""),
        "{err}"
    );
    assert!(!err.contains("source asa:"));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&stored).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap().trim(),
        cloud.token()
    );
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains(&format!("url = {}", cloud.api_url())) && text.contains("name = Collector7"),
        "{text}"
    );
    assert!(text.contains("; a comment that must survive"));
    let out = std::process::Command::new(crate::harness::LC)
        .args(["config", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 12, bug 3: the upload's progress was forgotten before the move to backup, so while
/// that move failed every retry uploaded the segment again (6 uploads and 6 done_upload calls
/// of one segment in 25 s, forever). Delivered-but-not-moved is a state of its own: retries
/// only retry the move.
#[test]
fn a_failing_move_to_backup_never_uploads_the_segment_again() {
    let cloud = Cloud::start(&["asa"]);
    let lc = lc_for(&cloud, "backup-move", "");
    // backup/asa is a file: the move to backup fails until it is a folder again.
    let backup = lc.state().join("backup/asa");
    std::fs::remove_dir_all(&backup).unwrap();
    std::fs::write(&backup, b"").unwrap();
    let sent = send_lines(&lc, 0, 50);
    wait_for(30, "the move to backup failing", || {
        lc.source_status("asa")["last_error"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("backup/asa"))
    });
    // Several retries of the move (1 s, then about 2 s, 4 s apart).
    wait_for(30, "retries of the move", || {
        let st = lc.source_status("asa");
        st["last_error"]["at"].as_u64().unwrap_or(0)
            >= st["failing_since"].as_u64().unwrap_or(u64::MAX) + 3
    });
    let calls = cloud.calls();
    assert_eq!(calls["done_upload"]["calls"], 1, "{calls}");
    assert_eq!(calls["upload_url"]["calls"], 1, "{calls}");
    std::fs::remove_file(&backup).unwrap();
    std::fs::create_dir(&backup).unwrap();
    wait_for(30, "moved to backup", || {
        lc.source_status("asa")["backlog"]["files"] == 0
            && std::fs::read_dir(&backup).unwrap().count() == 1
    });
    assert_eq!(cloud.uploads().len(), 1);
    assert_eq!(cloud.calls()["done_upload"]["calls"], 1);
    assert_eq!(uploaded_lines(&cloud, &cloud.uploads()), sent);
}

/// A console URL where nothing listens: every call is refused at once, none reaches a stand-in.
fn dead_console() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("https://127.0.0.1:{}", l.local_addr().unwrap().port())
}

/// lc with its delivery refused while `bursts` segments of 50 lines pile up in its spool (each
/// burst sealed before the next is sent); then reloaded onto `cloud`. Returns lc and the lines.
fn backlog_then_cloud(cloud: &Cloud, tag: &str, bursts: usize) -> (Lc, Vec<String>) {
    let dead = dead_console();
    let lc = lc_at(cloud, &dead, tag, "", &[]);
    let mut sent = Vec::new();
    for b in 0..bursts {
        sent.extend(send_lines(&lc, b * 50, 50));
        let spool = lc.state().join("spool/asa");
        wait_for(30, "the burst sealed", || {
            std::fs::read_dir(&spool)
                .unwrap()
                .filter(|e| {
                    let name = e.as_ref().unwrap().file_name();
                    name.to_string_lossy().ends_with(".log.gz")
                })
                .count()
                == b + 1
        });
    }
    assert!(cloud.calls()["upload_url"]["calls"].as_u64().unwrap_or(0) == 0);
    let ini = lc.config.clone();
    let text = std::fs::read_to_string(&ini).unwrap();
    std::fs::write(&ini, text.replace(&dead, &cloud.api_url())).unwrap();
    lc.signal(nix::sys::signal::Signal::SIGHUP);
    (lc, sent)
}

/// The lines of a gzip file as `gzip -dc`, Python's `gzip` and Java's `GZIPInputStream` read
/// it, after `gzip -t` passed; each must read every member.
fn read_by_every_reader(gz: &std::path::Path) -> Vec<Vec<String>> {
    run(std::process::Command::new("gzip").arg("-t").arg(gz));
    let lines = |text: String| text.lines().map(String::from).collect::<Vec<_>>();
    let gunzip = run(std::process::Command::new("gzip").arg("-dc").arg(gz));
    let python = run(std::process::Command::new("python3")
        .args([
            "-c",
            "import gzip, sys; sys.stdout.write(gzip.open(sys.argv[1], 'rt').read())",
        ])
        .arg(gz));
    let dir = gz.parent().unwrap().join("java");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Reader.java"),
        r#"import java.io.*;
import java.util.zip.GZIPInputStream;

public class Reader {
    public static void main(String[] args) throws IOException {
        try (InputStream in = new GZIPInputStream(new FileInputStream(args[0]))) {
            in.transferTo(System.out);
        }
        System.out.flush();
    }
}
"#,
    )
    .unwrap();
    run(std::process::Command::new("javac")
        .arg("-d")
        .arg(&dir)
        .arg(dir.join("Reader.java")));
    let java = run(std::process::Command::new("java")
        .arg("-cp")
        .arg(&dir)
        .arg("Reader")
        .arg(gz));
    vec![lines(gunzip), lines(python), lines(java)]
}

/// A backlog of four segments delivered (`backlog_then_cloud`) as one upload named after its
/// first segment, for one upload_url and one done_upload. Returns lc, the lines, the upload,
/// the stand-in's calls and the segments' bytes one after the other.
fn one_upload_for_four_segments(
    cloud: &Cloud,
    tag: &str,
) -> (Lc, Vec<String>, Value, Value, Vec<u8>) {
    let (lc, sent) = backlog_then_cloud(cloud, tag, 4);
    wait_for(60, "the backlog delivered", || {
        delivered_all(cloud, sent.len()) && lc.source_status("asa")["backlog"]["files"] == 0
    });
    let uploads = cloud.uploads();
    assert_eq!(uploads.len(), 1, "one upload: {uploads:?}");
    let calls = cloud.calls();
    assert_eq!(calls["upload_url"]["calls"], 1, "{calls}");
    assert_eq!(calls["done_upload"]["calls"], 1, "{calls}");
    let (first, concatenated) = delivered_segments(&lc, 4);
    assert_eq!(uploads[0]["filename"], format!("asa_it_{first}"));
    (lc, sent, uploads[0].clone(), calls, concatenated)
}

#[test]
fn a_backlog_is_one_blob_for_two_api_calls_and_every_gzip_reader_reads_it_whole() {
    let cloud = Cloud::start(&["asa"]);
    let (_lc, sent, upload, _, concatenated) = one_upload_for_four_segments(&cloud, "batch");
    // The blob is the segments one after the other.
    let blob = cloud.blob(upload["blob"].as_str().unwrap());
    assert!(
        blob == concatenated,
        "the blob is the concatenation of the segments"
    );
    let path = cloud.dir().join("batch.log.gz");
    std::fs::write(&path, &blob).unwrap();
    for (reader, lines) in ["gzip -dc", "python gzip", "java GZIPInputStream"]
        .iter()
        .zip(read_by_every_reader(&path))
    {
        assert!(
            lines == sent,
            "{reader} reads {} of {} lines",
            lines.len(),
            sent.len()
        );
    }
}

/// The name of the first of the `n` segments in lc's backup of `asa`, and their bytes one
/// after the other.
#[track_caller]
fn delivered_segments(lc: &Lc, n: usize) -> (String, Vec<u8>) {
    let mut backups: Vec<_> = std::fs::read_dir(lc.state().join("backup/asa"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    backups.sort();
    assert_eq!(backups.len(), n, "{backups:?}");
    let first = backups[0].file_name().unwrap().to_string_lossy();
    let bytes = backups.iter().flat_map(|p| std::fs::read(p).unwrap());
    (first.into_owned(), bytes.collect())
}

/// The stored object `blob` passes `gzip -t`; its lines as `gzip -dc` reads them.
fn gunzipped_object(cloud: &Cloud, blob: &[u8]) -> Vec<String> {
    let path = cloud.dir().join("object.log.gz");
    std::fs::write(&path, blob).unwrap();
    run(std::process::Command::new("gzip").arg("-t").arg(&path));
    let text = run(std::process::Command::new("gzip").arg("-dc").arg(&path));
    text.lines().map(String::from).collect()
}

/// With provider `aws` there are no blocks: a backlog goes as one PUT of the segments one after
/// the other, with its length announced (a presigned S3 PUT takes no chunked body), and costs
/// two API calls, not two per segment.
#[test]
fn on_aws_a_backlog_is_one_put_of_the_concatenation_for_two_api_calls() {
    let cloud = Cloud::start_aws(&["asa"]);
    let (_lc, sent, upload, calls, concatenated) =
        one_upload_for_four_segments(&cloud, "aws-batch");
    // One PUT, the whole batch, its length announced, no Azure header.
    let puts = calls["puts"].as_array().unwrap();
    assert_eq!(puts.len(), 1, "{calls}");
    assert_eq!(puts[0]["status"], 200, "{calls}");
    assert_eq!(
        puts[0]["content_length"],
        concatenated.len().to_string(),
        "{calls}"
    );
    let headers: Vec<String> = puts[0]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap().to_ascii_lowercase())
        .collect();
    for absent in ["transfer-encoding", "x-ms-blob-type"] {
        assert!(!headers.iter().any(|h| h == absent), "{headers:?}");
    }
    let blob = cloud.blob(upload["blob"].as_str().unwrap());
    assert!(blob == concatenated, "the object is the segments in order");
    assert_eq!(gunzipped_object(&cloud, &blob), sent);
}

/// A PUT that breaks off mid-way stores nothing; the batch is PUT again whole, under a fresh
/// URL, and the object the tenant is told about holds every line once.
#[test]
fn on_aws_a_put_cut_mid_way_is_retried_as_the_whole_batch_without_duplicates() {
    let cloud = Cloud::start_aws(&["asa"]);
    cloud.faults(r#"{"put": ["cut:300"]}"#);
    let (lc, sent) = backlog_then_cloud(&cloud, "aws-cut", 3);
    wait_for(60, "the backlog delivered", || {
        delivered_all(&cloud, sent.len()) && lc.source_status("asa")["backlog"]["files"] == 0
    });
    let calls = cloud.calls();
    let puts = calls["puts"].as_array().unwrap();
    assert_eq!(puts.len(), 2, "{calls}");
    let (_, concatenated) = delivered_segments(&lc, 3);
    let whole = concatenated.len().to_string();
    assert_eq!(puts[0]["status"], "reset", "{calls}");
    assert!(puts[0]["read"].as_u64().unwrap() < concatenated.len() as u64);
    assert_eq!(puts[1]["status"], 200, "{calls}");
    for put in puts {
        assert_eq!(put["content_length"], whole, "every PUT is the whole batch");
    }
    assert_eq!(calls["done_upload"]["calls"], 1, "{calls}");
    let uploads = cloud.uploads();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
    let blob = cloud.blob(uploads[0]["blob"].as_str().unwrap());
    assert_eq!(gunzipped_object(&cloud, &blob), sent);
    // The broken PUT left no object behind.
    let objects: Vec<_> = std::fs::read_dir(cloud.dir().join("s3"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "tmp")
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
}

#[test]
fn a_batch_whose_done_upload_fails_is_retried_whole_and_uploaded_once() {
    let cloud = Cloud::start(&["asa"]);
    cloud.faults(r#"{"done_upload": ["503"]}"#);
    let (lc, mut sent) = backlog_then_cloud(&cloud, "batch-retry", 3);
    wait_for(30, "done_upload failed once", || {
        cloud.calls()["done_upload"]["statuses"]
            .as_array()
            .is_some_and(|s| !s.is_empty())
    });
    // Segments sealed during the retry do not join the stored batch: they come after it.
    sent.extend(send_lines(&lc, 1000, 50));
    wait_for(60, "everything delivered", || {
        delivered_all(&cloud, sent.len()) && lc.source_status("asa")["backlog"]["files"] == 0
    });
    let uploads = cloud.uploads();
    assert_eq!(uploads_lines_once(&cloud, &uploads), sent);
    // The batch was stored once and acknowledged on the second done_upload: one PUT, one URL.
    let first = &uploads[0];
    assert_eq!(
        uploaded_lines(&cloud, std::slice::from_ref(first)),
        sent[..150].to_vec(),
        "the retried batch is the three segments, no more"
    );
    let calls = cloud.calls();
    assert_eq!(calls["done_upload"]["statuses"][0], 503, "{calls}");
    assert!(
        uploads.iter().all(|u| u["duplicate"] != true),
        "{uploads:?}"
    );
}

/// Every line of `uploads`, checking none came twice.
fn uploads_lines_once(cloud: &Cloud, uploads: &[Value]) -> Vec<String> {
    let lines = uploaded_lines(cloud, uploads);
    let mut seen = std::collections::BTreeSet::new();
    assert!(
        lines.iter().all(|l| seen.insert(l.clone())),
        "a line came twice"
    );
    lines
}

/// The host's API budget as `deliver/pacer.rs` keeps it: `count` calls made `ago_ms` before
/// now (`CLOCK_BOOTTIME`, which `/proc/uptime` reads), written into lc's run_dir.
fn spend_budget(lc: &Lc, count: usize, ago_ms: u64) {
    let uptime = std::fs::read_to_string("/proc/uptime").unwrap();
    let secs: f64 = uptime.split_whitespace().next().unwrap().parse().unwrap();
    let at = (secs * 1000.0) as u64 - ago_ms;
    let calls = vec![at.to_string(); count].join(" ");
    let bucket = lc.dir.0.join("run/api-bucket");
    std::fs::write(bucket, format!("blocked_until 0\ncalls {calls}\n")).unwrap();
}

/// A batch that waited for the API budget was the one chosen before the wait: the segments
/// sealed meanwhile went in the next upload, two more calls, and the backlog at the end of a
/// busy minute took two uploads. A job that finds the budget spent before anything of it cost a
/// call now goes back to the loop, which chooses the batch again when the budget allows.
#[test]
fn segments_sealed_while_the_budget_is_spent_join_the_waiting_batch() {
    let cloud = Cloud::start(&["asa"]);
    let lc = lc_for(&cloud, "budget-wait", "api_calls_per_min = 2");
    // The host spent its two calls 41 s ago: the next may go in about 20 s.
    spend_budget(&lc, 2, 41_000);
    let spool = lc.state().join("spool/asa");
    let sealed = || {
        std::fs::read_dir(&spool)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".log.gz")
            })
            .count()
    };
    let mut sent = send_lines(&lc, 0, 50);
    wait_for(30, "the first segment sealed", || sealed() == 1);
    sent.extend(send_lines(&lc, 50, 50));
    wait_for(30, "the second segment sealed", || sealed() == 2);
    assert_eq!(
        cloud.calls()["upload_url"]["calls"],
        0,
        "the budget was spent while both segments sealed"
    );
    wait_for(60, "an upload", || !cloud.uploads().is_empty());
    let uploads = cloud.uploads();
    assert_eq!(
        uploaded_lines(&cloud, &uploads[..1]),
        sent,
        "the first upload carries both segments"
    );
    // Waiting for the budget is not a failure; it is counted as a wait.
    let st = lc.source_status("asa");
    assert_eq!(st["delivery"]["failures"]["transient"], 0, "{st}");
    assert_eq!(st["last_error"], Value::Null, "{st}");
    let api = &lc.status()["api"];
    assert!(api["budget_waits"].as_u64() >= Some(1), "{api}");
}
