//! The FTP server under faults: a disk that fills up during an upload or before one, and a
//! `kill -9` in the middle of an upload. curl is the client; the state folder is a small tmpfs
//! where the disk must fill (needs root, as CI has).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{set_password, wait_for, Lc, TempDir, Tmpfs, LC};

const USER: &str = "uploader";
const PASSWORD: &str = "s3cret-pw";

/// Writes a config with one FTP source `logs` on a kernel-chosen port (`spool`: more keys
/// for `[spool]`), adds the user, and returns the config path.
fn ftp_config(dir: &Path, spool: &str) -> PathBuf {
    let config = dir.join("lc.ini");
    fs::write(
        &config,
        format!(
            "[collector]\nname = it\nstate_dir = {d}/state\nrun_dir = {d}/run\nlisten = 127.0.0.1\n\
             [spool]\nmax_spool_bytes = 64M\n{spool}\n\
             [delivery]\nurl = dir:{d}/outbox\n\
             [ftp]\nport = 0\npassive_ports = 0\ntls = off\npasswd_file = {d}/ftp.passwd\n\
             [source logs]\nformat = SQUID\nreceiver = ftp\n",
            d = dir.display()
        ),
    )
    .unwrap();
    set_password(&config, USER, PASSWORD);
    config
}

fn ftp_url(lc: &Lc, path: &str) -> String {
    let st = lc.status();
    let addr = st["ftp"]["listening"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no FTP listener in {st}"));
    format!("ftp://{USER}:{PASSWORD}@{addr}{path}")
}

/// `curl -T FILE URL`: (exit status, the last FTP reply code).
fn upload(file: &Path, url: &str) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "-w", "%{response_code}", "-T"])
        .arg(file)
        .arg(url)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

fn lines_file(dir: &Path, name: &str, lines: usize) -> PathBuf {
    let path = dir.join(name);
    let mut text = String::new();
    for i in 0..lines {
        text.push_str(&format!(
            "{name} line {i:08} with some padding to look like a log\n"
        ));
    }
    fs::write(&path, text).unwrap();
    path
}

fn entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn an_upload_that_fills_the_disk_is_discarded_and_the_next_one_is_stored() {
    let dir = TempDir::new("ftp-enospc");
    let _tmpfs = Tmpfs::mount(&dir.0.join("state"), "6m");
    let config = ftp_config(&dir.0, "min_free_bytes = 0");
    let big = lines_file(&dir.0, "big.log", 150_000);
    let small = lines_file(&dir.0, "small.log", 100);
    let lc = Lc::attach(dir, config);

    let (code, reply) = upload(&big, &ftp_url(&lc, "/logs/big.log"));
    // curl may see the data connection close before it reads the 452.
    assert_ne!(
        code, 0,
        "an upload larger than the disk must fail ({reply})"
    );
    wait_for(10, "the upload discarded", || {
        lc.log().contains("upload of /logs/big.log discarded")
    });
    wait_for(10, "the partial upload removed", || {
        entries(&lc.state().join("ftp/incoming")).is_empty()
    });
    assert!(
        lc.lines("logs").is_empty(),
        "nothing of it reaches the spool"
    );

    let (code, reply) = upload(&small, &ftp_url(&lc, "/logs/small.log"));
    assert_eq!((code, reply.as_str()), (0, "226"), "{}", lc.log());
    wait_for(20, "the small file delivered", || lc.delivered("logs") == 1);
    assert_eq!(lc.lines("logs").len(), 100);
}

#[test]
fn a_full_disk_refuses_new_uploads_until_there_is_room() {
    let dir = TempDir::new("ftp-full");
    let state = dir.0.join("state");
    let _tmpfs = Tmpfs::mount(&state, "4m");
    let config = ftp_config(&dir.0, "min_free_bytes = 1M");
    let small = lines_file(&dir.0, "small.log", 100);
    let lc = Lc::attach(dir, config);

    // Less free space than min_free_bytes and nothing to evict: lc calls the disk full.
    let filler = state.join("filler");
    let mut f = fs::File::create(&filler).unwrap();
    f.write_all(&vec![0u8; (3 << 20) + (512 << 10)]).unwrap();
    drop(f);
    wait_for(10, "disk full noticed", || {
        lc.status()["disk"]["full"] == true
    });
    let (code, reply) = upload(&small, &ftp_url(&lc, "/logs/first.log"));
    assert_eq!(reply, "452", "curl exit {code}; log:\n{}", lc.log());
    assert!(entries(&state.join("ftp/incoming")).is_empty());

    fs::remove_file(&filler).unwrap();
    wait_for(10, "room again", || lc.status()["disk"]["full"] == false);
    assert_eq!(
        upload(&small, &ftp_url(&lc, "/logs/second.log")),
        (0, "226".to_string()),
        "{}",
        lc.log()
    );
    wait_for(20, "delivered", || lc.delivered("logs") == 1);
    assert_eq!(lc.lines("logs").len(), 100);
}

#[test]
fn kill_9_during_an_upload_keeps_the_stored_files_and_drops_the_partial_one() {
    let dir = TempDir::new("ftp-kill9");
    let config = ftp_config(&dir.0, "min_free_bytes = 0");
    let done = lines_file(&dir.0, "done.log", 1000);
    let mut lc = Lc::attach(dir, config);
    assert_eq!(
        upload(&done, &ftp_url(&lc, "/logs/done.log")),
        (0, "226".to_string())
    );
    let stored = lc.status()["sources"][0]["files"].clone();

    // A slow upload, then lc dies under it.
    let url = ftp_url(&lc, "/logs/partial.log");
    let mut curl = Command::new("curl")
        .args(["-sS", "--limit-rate", "200K", "-T", "-", &url])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = curl.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        for i in 0..200_000 {
            if writeln!(stdin, "partial line {i:08}").is_err() {
                return;
            }
        }
    });
    let incoming = lc.state().join("ftp/incoming");
    wait_for(20, "the upload under way", || {
        entries(&incoming)
            .iter()
            .any(|n| fs::metadata(incoming.join(n)).is_ok_and(|m| m.len() > 100_000))
    });
    lc.kill9();
    let _ = curl.wait();
    writer.join().unwrap();

    lc.spawn();
    assert!(
        entries(&incoming).is_empty(),
        "the partial upload is removed at start"
    );
    wait_for(20, "the stored file delivered", || {
        lc.delivered("logs") >= 1
    });
    let lines = lc.lines("logs");
    assert_eq!(lines.len(), 1000, "only done.log ({stored} file stored)");
    assert!(lines.iter().all(|l| l.starts_with("done.log line")));
}

#[test]
fn certs_reload_refuses_a_pure_ftpd_pem_whose_key_does_not_match_and_changes_nothing() {
    let dir = TempDir::new("ftp-badpem");
    let config = ftp_config(&dir.0, "min_free_bytes = 0");
    // FTPS offered (tls = optional) from a certificate set made by lc.
    let text = fs::read_to_string(&config)
        .unwrap()
        .replace("tls = off", "tls = optional")
        .replace(
            "[spool]",
            &format!("certs_dir = {}/certs\n[spool]", dir.0.display()),
        );
    fs::write(&config, text).unwrap();
    let certs_init = Command::new(LC)
        .args(["certs", "init", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(certs_init.status.success(), "{certs_init:?}");
    let pem = dir.0.join("certs/pure-ftpd.pem");
    let before = fs::read(&pem).unwrap();
    let lc = Lc::attach(dir, config.clone());

    // A key and a certificate that do not belong together.
    let tmp = lc.dir.0.join("mismatch");
    fs::create_dir_all(&tmp).unwrap();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&tmp)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "k1.pem",
        "-out",
        "c1.pem",
        "-days",
        "30",
        "-subj",
        "/CN=one",
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "k2.pem",
    ]);
    let mut bad = fs::read(tmp.join("k2.pem")).unwrap();
    bad.extend(fs::read(tmp.join("c1.pem")).unwrap());
    let update = lc.state().join("ftp/ssl_update");
    fs::write(update.join("pure-ftpd.pem"), bad).unwrap();

    let out = Command::new(LC)
        .args(["certs", "reload", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad set must be refused: {stderr}");
    assert!(
        stderr.contains("does not belong") && stderr.contains("nothing changed"),
        "{stderr}"
    );
    assert_eq!(fs::read(&pem).unwrap(), before, "pure-ftpd.pem unchanged");
    assert!(
        update.join("pure-ftpd.pem").exists(),
        "the bad file stays for the operator"
    );
}
