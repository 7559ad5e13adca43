//! The air gap (issue 14, point 3): one lc delivers to a `dir:` outbox; its files are copied
//! to another folder, some of them half-way or damaged, and `lc upload --from` delivers the
//! complete ones to the stand-in API and Azurite, exactly once, across a kill -9.

use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::cloud::Cloud;
use crate::harness::{config_with, source, wait_for, Lc, TempDir, LC};

/// The data files of the outbox whose manifest is written, oldest first.
fn complete_files(outbox: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(outbox)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".manifest").map(String::from)
        })
        .collect();
    names.sort();
    names
}

/// `lc upload --from inbox` with the connected side's config.
fn upload(config: &Path, inbox: &Path) -> Command {
    let mut c = Command::new(LC);
    c.arg("--config")
        .arg(config)
        .args(["upload", "--from"])
        .arg(inbox);
    c
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    v
}

#[test]
fn upload_from_delivers_complete_files_once_leaves_partial_ones_and_names_corrupt_ones() {
    // The disconnected side: five segments in its outbox, each with its manifest.
    let lc = Lc::start(
        "airgap-out",
        "rotate_secs = 1",
        "",
        &source("asa", "syslog-tcp", ""),
    );
    for batch in 0..5 {
        let mut s = TcpStream::connect(lc.addr("asa", "tcp")).unwrap();
        for i in 0..200 {
            writeln!(s, "<134>fw asa batch {batch} event {i:04}").unwrap();
        }
        drop(s);
        wait_for(30, "the batch's segment and manifest in the outbox", || {
            complete_files(&lc.outbox()).len() > batch
        });
    }
    let files = complete_files(&lc.outbox());
    assert!(files.len() >= 5, "{files:?}");
    let f: Vec<&str> = files.iter().map(String::as_str).take(5).collect();
    let original = |name: &str| fs::read(lc.outbox().join(name)).unwrap();

    // The transfer: f0, f1 complete; f2 damaged in place (same size, another digest); f3 half
    // copied with its manifest already there; f4 copied without its manifest yet.
    let dir = TempDir::new("airgap-in");
    let inbox = dir.0.join("inbox");
    fs::create_dir_all(&inbox).unwrap();
    let copy = |name: &str| fs::copy(lc.outbox().join(name), inbox.join(name)).unwrap();
    for name in &f {
        copy(name);
    }
    for name in &f[..4] {
        copy(&format!("{name}.manifest"));
    }
    let mut damaged = original(f[2]);
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x55;
    fs::write(inbox.join(f[2]), damaged).unwrap();
    let whole3 = original(f[3]);
    fs::write(inbox.join(f[3]), &whole3[..whole3.len() / 2]).unwrap();

    // The connected side: its own config, delivering to the tenant.
    let cloud = Cloud::start(&["asa"]);
    let config = dir.0.join("lc.ini");
    fs::write(
        &config,
        config_with(
            &dir.0,
            "backup_keep = 3",
            "",
            &cloud.delivery_config(&dir.0, ""),
        ),
    )
    .unwrap();

    // Run 1 is killed while it asks for the second file's upload URL.
    cloud.faults(r#"{"upload_url": ["hang:0", "hang:30"]}"#);
    let stderr1 = dir.0.join("run1.log");
    let mut run1 = upload(&config, &inbox)
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr1).unwrap())
        .spawn()
        .unwrap();
    wait_for(60, "the second upload_url call", || {
        cloud.calls()["upload_url"]["calls"].as_u64() == Some(2)
    });
    run1.kill().unwrap();
    run1.wait().unwrap();
    let log1 = fs::read_to_string(&stderr1).unwrap();
    assert!(
        log1.contains(f[2]) && log1.contains("corrupt") && log1.contains("sha256"),
        "the corrupt file is named:\n{log1}"
    );
    assert!(inbox.join("quarantine").join(f[2]).exists(), "{log1}");
    assert_eq!(cloud.uploads().len(), 1, "{log1}");
    cloud.reset();

    // Run 2: the killed run's file again, and a file that matches its manifest but is not gzip.
    let bogus = "asa_it_0000000099-20000101T000000Z.log.gz";
    fs::write(inbox.join(bogus), b"not gzip at all\n").unwrap();
    fs::write(
        inbox.join(format!("{bogus}.manifest")),
        format!(
            "{{\"file\":\"{bogus}\",\"size\":16,\"sha256\":\"{}\",\"source\":\"asa\",\"format\":\"GENERIC_CEF\",\"collector\":\"it\"}}\n",
            sha256(&inbox.join(bogus))
        ),
    )
    .unwrap();
    let out = upload(&config, &inbox).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains(bogus) && t.contains("gzip"), "{t}");
    assert!(
        t.contains("delivered 1, waiting 2, corrupt 1, failed 0"),
        "{t}"
    );
    assert!(
        t.contains(f[3]) && t.contains(f[4]),
        "the waiting files are named: {t}"
    );
    assert!(inbox.join("quarantine").join(bogus).exists());

    // The transfer completes; run 3 delivers the rest.
    fs::write(inbox.join(f[3]), &whole3).unwrap();
    copy(&format!("{}.manifest", f[4]));
    let out = upload(&config, &inbox).output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("delivered 2, waiting 0, corrupt 0"), "{t}");

    // Every complete file exactly once, byte for byte, under its own name and source.
    let uploads = cloud.uploads();
    let mut got: Vec<String> = uploads
        .iter()
        .map(|u| u["filename"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    assert_eq!(got, [f[0], f[1], f[3], f[4]], "{uploads:?}");
    for u in &uploads {
        assert_eq!(u["inputStreamName"], "asa");
        assert_eq!(u["source"], "GENERIC_CEF");
        let name = u["filename"].as_str().unwrap();
        assert_eq!(
            cloud.blob(u["blob"].as_str().unwrap()),
            original(name),
            "{name}"
        );
    }
    // Nothing delivered is left in the inbox; backup keeps the newest three.
    let left: Vec<String> = names_in(&inbox);
    assert!(left.is_empty(), "{left:?}");
    let backup: PathBuf = inbox.join("backup/asa");
    assert_eq!(names_in(&backup), [f[1], f[3], f[4]]);
    let mut quarantined = names_in(&inbox.join("quarantine"));
    quarantined.sort();
    let mut expected = vec![
        bogus.to_string(),
        format!("{bogus}.manifest"),
        f[2].to_string(),
        format!("{}.manifest", f[2]),
    ];
    expected.sort();
    assert_eq!(quarantined, expected);
}

#[test]
fn upload_from_refuses_an_outbox_config_and_needs_from() {
    let dir = TempDir::new("airgap-cfg");
    let config = dir.0.join("lc.ini");
    fs::write(
        &config,
        config_with(&dir.0, "", "", &format!("url = dir:{}/o", dir.0.display())),
    )
    .unwrap();
    fs::create_dir_all(dir.0.join("in")).unwrap();
    let out = upload(&config, &dir.0.join("in")).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("url = https://"), "{}", text(&out));
    let out = Command::new(LC).args(["upload"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--from DIR"), "{}", text(&out));
}
