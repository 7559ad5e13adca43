//! FTP sources deliver the file's own bytes, as the vendor's pure-ftpd-based collector does
//! (issue 10): `.gz` and `.zip` uploads as they are, TYPE A's CRLF as LF, a just-uploaded
//! file still answering SIZE/MDTM/RNFR/RNTO once delivered (WinSCP's `.filepart`), Latin-1
//! names, FTPS uploads without close_notify kept; and the protocol defects an FTP
//! conformance suite found. Real clients: curl, lftp and Python's ftplib
//! (`tests/ftp/commands.py`).

use std::fs;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ftp::{
    check_table_env, code, curl_ok, log_lines, tail, text, Delivery, Ftp, PASSWORD, SOON, SOURCES,
    USER,
};
use crate::harness::wait_for;

/// The outbox files of `source`, by name (`squid_it_SEQ-TIME.log.gz`, `....zip`).
fn outbox_files(ftp: &Ftp, source: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(ftp.lc.outbox())
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with(&format!("{source}_it_")) && !crate::harness::is_manifest(&n)
            })
        })
        .collect();
    files.sort();
    files
}

/// `tests/ftp/commands.py`'s `lines_of`.
fn lines_of(n: usize, tag: &str) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("{tag} line {i:06}\n").into_bytes())
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .unwrap();
    out
}

/// A real zip archive holding `name` (made by Info-ZIP's `zip`).
fn zip_of(dir: &Path, name: &str, data: &[u8]) -> Vec<u8> {
    fs::write(dir.join(name), data).unwrap();
    let out = Command::new("zip")
        .current_dir(dir)
        .args(["-q", "archive.zip", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "zip: {}", text(&out));
    fs::read(dir.join("archive.zip")).unwrap()
}

/// `gzip -t` on a delivered file.
#[track_caller]
fn gzip_ok(path: &Path) {
    let out = Command::new("gzip").arg("-t").arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "gzip -t {}: {}",
        path.display(),
        text(&out)
    );
}

#[test]
fn ftplib_uploads_are_delivered_as_the_files_they_are() {
    let ftp = Ftp::start("ftp-fidelity", "", Delivery::Outbox);
    let fixtures = ftp.dir().join("fixtures");
    fs::create_dir_all(&fixtures).unwrap();
    let plain = log_lines("gz", 500);
    let gz = gzip(&plain);
    let zip = zip_of(&fixtures, "fw.log", &log_lines("zip", 500));
    let crlf: Vec<u8> = String::from_utf8(log_lines("crlf", 200))
        .unwrap()
        .replace('\n', "\r\n")
        .into_bytes();
    fs::write(fixtures.join("fw.log.gz"), &gz).unwrap();
    fs::write(fixtures.join("fw.zip"), &zip).unwrap();
    fs::write(fixtures.join("crlf.log"), &crlf).unwrap();
    let (gz_len, crlf_lf_len) = (gz.len(), crlf.len() - 200);
    let outbox = ftp.lc.outbox();
    fs::create_dir_all(&outbox).unwrap();
    let env: [(&str, &Path); 2] = [("LC_FIXTURES", &fixtures), ("LC_OUTBOX", &outbox)];
    let feat =
        "FEAT -> 211 | AUTH TLS,PBSZ,PROT,EPSV,EPRT,MDTM,MLST type*;size*;modify*;,SIZE,UTF8";
    #[rustfmt::skip]
    let expected = [
        "connect -> 220",
        // No REST STREAM: REST then STOR is refused (RFC 3659 section 5.5).
        feat,
        "USER discovery -> 331",
        "PASS *** -> 230",
        "TYPE I -> 200",
        "PASV -> 227",
        "STOR /squid/fw.log.gz -> 150 226",
        &format!("SIZE /squid/fw.log.gz -> 213 | {gz_len}"),
        "PASV -> 227",
        "STOR /squid/fw.zip -> 150 226",
        "PASV -> 227",
        "STOR /squid/misnamed.txt -> 150 226",
        "TYPE A -> 200",
        "PASV -> 227",
        "STOR /squid/crlf.log -> 150 226",
        &format!("SIZE /squid/crlf.log -> 213 | {crlf_lf_len}"),
        &format!("SIZE /squid/fw.log.gz (delivered) -> 213 | {gz_len}"),
        "MDTM /squid/fw.zip (delivered) -> 213 | 14 digits",
        &format!("MLST /squid/crlf.log -> 250 | type=file;size={crlf_lf_len};modify=*; crlf.log"),
        "STAT /squid/fw.zip -> 213 | fw.zip",
        "STAT /squid -> 212",
        "STAT /nosuch -> 550",
        "EPSV -> 229",
        // A folder lists what is pending: all four were delivered.
        "NLST /squid -> 150 226 | ",
        "TYPE I -> 200",
        "PASV -> 227",
        "STOR /squid/winscp.log.filepart -> 150 226",
        "SIZE /squid/winscp.log.filepart -> 213 | 1900",
        "RNFR /squid/winscp.log.filepart -> 350",
        "RNTO /squid/winscp.log -> 250",
        "SIZE /squid/winscp.log -> 213 | 1900",
        "MDTM /squid/winscp.log -> 213 | 14 digits",
        "SIZE /squid/winscp.log.filepart -> 550",
        "RNFR /squid/never-uploaded.log -> 550",
        "EPSV -> 229",
        "NLST /squid -> 150 226 | ",
        "PASV -> 227",
        "STOR /squid/caf\u{e9}.log -> 150 226",
        "SIZE /squid/caf\u{e9}.log -> 213 | 190",
        "EPSV -> 229",
        "NLST /squid/caf\u{e9}.log -> 150 226 | caf\u{e9}.log",
        "OPTS MLST type; -> 200",
        "MLST /squid/fw.zip -> 250 | type=file; fw.zip",
        "FEAT -> 211 | AUTH TLS,PBSZ,PROT,EPSV,EPRT,MDTM,MLST type*;size;modify;,SIZE,UTF8",
        "OPTS MLST type;size;modify; -> 200",
        "EPSV -> 229",
        "MLSD /squid/fw.zip -> 501",
        "TYPE -> 501",
        "MODE -> 501",
        "STRU -> 501",
        "PROT -> 501",
        "QUIT -> 221",
    ];
    check_table_env(&ftp, ftp.addr(), "fidelity", &env, &expected);

    wait_for(SOON, "six files delivered", || {
        outbox_files(&ftp, "squid").len() == 6
    });
    let files = outbox_files(&ftp, "squid");
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let delivered: Vec<Vec<u8>> = files.iter().map(|p| fs::read(p).unwrap()).collect();
    // In upload order: gz, zip, gz named .txt, CRLF text, WinSCP's, Latin-1's.
    let ends: Vec<&str> = names
        .iter()
        .map(|n| {
            if n.ends_with(".log.gz") {
                ".log.gz"
            } else if n.ends_with(".zip") {
                ".zip"
            } else {
                "?"
            }
        })
        .collect();
    assert_eq!(
        ends,
        [".log.gz", ".zip", ".log.gz", ".log.gz", ".log.gz", ".log.gz"],
        "{names:?}"
    );
    assert!(
        delivered[0] == gz,
        "the .gz upload is delivered byte for byte"
    );
    assert!(
        delivered[1] == zip,
        "the .zip upload is delivered byte for byte"
    );
    assert!(
        delivered[2] == gz,
        "a gzip file is told by its content, not its name"
    );
    for f in &files[..1] {
        gzip_ok(f);
    }
    // Decompressed once, the plain text: no gzip inside gzip.
    assert!(gunzip(&delivered[0]) == plain, "one layer of gzip");
    assert!(
        gunzip(&delivered[3]) == log_lines("crlf", 200),
        "TYPE A turned CRLF into LF"
    );
    assert!(gunzip(&delivered[4]) == lines_of(100, "winscp"));
    assert!(gunzip(&delivered[5]) == lines_of(10, "latin1"));
    let log = ftp.lc.log();
    assert!(
        log.contains("received /squid/caf\\u{e9}.log"),
        "the Latin-1 name is logged escaped:\n{}",
        tail(&log, 30)
    );
}

#[test]
fn curl_and_lftp_gz_and_zip_uploads_arrive_byte_identical() {
    let ftp = Ftp::start("ftp-fidelity-clients", "", Delivery::Outbox);
    let work = ftp.dir().join("client");
    fs::create_dir_all(&work).unwrap();
    let gz = gzip(&log_lines("curl", 2000));
    fs::write(work.join("curl.log.gz"), &gz).unwrap();
    let zip = zip_of(&work, "lftp.log", &log_lines("lftp", 2000));
    let lftp_gz = gzip(&log_lines("lftp-gz", 2000));
    fs::write(work.join("lftp.log.gz"), &lftp_gz).unwrap();
    fs::rename(work.join("archive.zip"), work.join("lftp.zip")).unwrap();
    curl_ok(&[
        "-T",
        &work.join("curl.log.gz").to_string_lossy(),
        &ftp.url("/squid/"),
    ]);
    wait_for(SOON, "curl's file delivered", || {
        outbox_files(&ftp, "squid").len() == 1
    });
    let lftp = Command::new("lftp")
        .args(["-c", &format!(
            "set cmd:fail-exit yes; set ftp:ssl-allow no; open -u {USER},{PASSWORD} -p {} 127.0.0.1; cd squid; put {}; put {}",
            ftp.port,
            work.join("lftp.zip").display(),
            work.join("lftp.log.gz").display(),
        )])
        .output()
        .unwrap();
    assert!(lftp.status.success(), "lftp: {}", text(&lftp));
    wait_for(SOON, "three files delivered", || {
        outbox_files(&ftp, "squid").len() == 3
    });
    let files = outbox_files(&ftp, "squid");
    let delivered: Vec<Vec<u8>> = files.iter().map(|p| fs::read(p).unwrap()).collect();
    assert!(files[0].to_string_lossy().ends_with(".log.gz") && delivered[0] == gz);
    assert!(files[1].to_string_lossy().ends_with(".zip") && delivered[1] == zip);
    assert!(files[2].to_string_lossy().ends_with(".log.gz") && delivered[2] == lftp_gz);
    gzip_ok(&files[0]);
    gzip_ok(&files[2]);
    assert!(
        gunzip(&delivered[0]) == log_lines("curl", 2000),
        "no gzip inside gzip"
    );
}

#[test]
fn a_compressed_upload_larger_than_one_put_is_refused_with_552() {
    let ftp = Ftp::start("ftp-fidelity-big", "", Delivery::OutboxParts("64K"));
    // Incompressible, so the gzip file stays larger than 64 KiB.
    let mut x = 0x9E3779B97F4A7C15u64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut s = ftp.logged_in();
    let (first, last) = s.store("/squid/big.log.gz", &gzip(&noise));
    assert_eq!((code(&first), code(&last)), (150, 552), "{first} / {last}");
    // Text of the same size is split at lines instead.
    let (first, last) = s.store("/squid/big.log", &log_lines("big", 2000));
    assert_eq!((code(&first), code(&last)), (150, 226), "{first} / {last}");
    ftp.wait_ftp("the refusal counted", |f| f["refused_too_large"] == 1);
    assert!(ftp
        .lc
        .log()
        .contains("cannot be delivered in one upload; refused"));
}

#[test]
fn an_ipv6_pasv_refusal_leaves_no_listener_behind() {
    let ftp = Ftp::launch(
        "ftp-ipv6-pasv",
        "",
        SOURCES,
        Delivery::Never,
        "127.0.0.1, ::1",
    );
    let s = ftp.lc.status();
    let v6: SocketAddr = s["ftp"]["listening"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str()?.parse().ok())
        .find(SocketAddr::is_ipv6)
        .unwrap_or_else(|| panic!("no IPv6 FTP listener: {s}"));
    #[rustfmt::skip]
    check_table_env(&ftp, v6, "ipv6-pasv", &[], &[
        "connect -> 220",
        "USER discovery -> 331",
        "PASS *** -> 230",
        "PASV -> 522",
        // At once, not 150 and then 425 after 30 s.
        "STOR /squid/after-pasv.log -> 425",
        "EPSV -> 229",
        "STOR /squid/after-epsv.log -> 150 226",
        "QUIT -> 221",
    ]);
}

#[test]
fn an_upload_that_would_evict_acknowledged_data_is_refused_with_452() {
    let mut ftp = Ftp::start("ftp-fidelity-room", "", Delivery::Never);
    // 1 MiB of spool: the first upload fits, the second would push it out.
    let config = ftp.dir().join("lc.ini");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        text.replacen(
            "min_free_bytes = 0\n",
            "min_free_bytes = 0\nmax_spool_bytes = 1M\nrotate_bytes = 256K\n",
            1,
        ),
    )
    .unwrap();
    ftp.restart();
    // Hex noise, about half its size once gzipped: 650 KB, then 845 KB, overflow 1 MiB
    // whether or not the first is sealed yet (322 KB gzipped). A second upload as large as
    // the first would fit once the first is sealed, and a busy machine seals it before the
    // second arrives (the test failed so in full runs).
    let noise = |seed: u64, lines: usize| -> Vec<u8> {
        let mut x = seed;
        (0..lines)
            .flat_map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                format!(
                    "{x:016x}{:016x}{:016x}{:016x}\n",
                    x.rotate_left(7),
                    x.rotate_left(19),
                    !x
                )
                .into_bytes()
            })
            .collect()
    };
    let first = noise(0x9E3779B97F4A7C15, 10_000);
    assert!(first.len() > 600_000 && first.len() < 1 << 20);
    let mut s = ftp.logged_in();
    let (a, b) = s.store("/squid/first.log", &first);
    assert_eq!((code(&a), code(&b)), (150, 226), "{a} / {b}");
    let (a, b) = s.store("/squid/second.log", &noise(0x1234_5678_9ABC_DEF1, 13_000));
    assert_eq!((code(&a), code(&b)), (150, 452), "{a} / {b}");
    ftp.wait_ftp("the refused upload discarded", |f| f["aborted"] == 1);
    // Nothing acknowledged was evicted: the first file is still there, listed.
    ftp.wait_status("a disk check after the refusal", |st| {
        st["sources"].as_array().into_iter().flatten().any(|src| {
            src["name"] == "squid" && src["drops"]["evicted_segments"].as_u64().unwrap_or(0) == 0
        })
    });
    assert_eq!(s.nlst("/squid").unwrap(), ["first.log"]);
    assert!(!ftp.lc.log().contains("evicted undelivered segment"));
}
