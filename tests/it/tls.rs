//! syslog-tls: certificate sets from `lc certs init` and the openssl CLI, `lc certs check`,
//! openssl s_client, rsyslog (gtls and ossl stream drivers) and syslog-ng as TLS clients, mutual
//! TLS and allow_cn refusals, the handshake timeout, and `lc certs reload` with good and bad sets
//! while a stream is open.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::harness::{
    base_config, output_with_input, peer, run, source, wait_explained, wait_for, Lc, TempDir, LC,
};

/// Validity of the expired certificates, in `openssl ca`'s notation.
pub const LONG_AGO: (&str, &str) = ("20200101000000Z", "20200201000000Z");

/// A path as one word of a command line given as a string: the temp dirs have no spaces.
fn word(path: &Path) -> &str {
    let s = path.to_str().unwrap();
    assert!(
        !s.contains(char::is_whitespace),
        "{s}: whitespace in a temp path"
    );
    s
}

/// `dir/lc.ini`: the harness's base config with `certs_dir = dir/certs` and `collector` keys,
/// then `sources`.
fn write_config(dir: &Path, collector: &str, sources: &str) -> PathBuf {
    let config = dir.join("lc.ini");
    let collector = format!("certs_dir = {}\n{collector}", certs(dir).display());
    let text = format!("{}{sources}", base_config(dir, "", &collector));
    fs::write(&config, text).unwrap();
    config
}

fn certs(dir: &Path) -> PathBuf {
    dir.join("certs")
}

/// Where `lc certs reload` takes new files from: STATE_DIR/ftp/ssl_update.
fn ssl_update(dir: &Path) -> PathBuf {
    let d = dir.join("state/ftp/ssl_update");
    fs::create_dir_all(&d).unwrap();
    d
}

/// `lc certs ARGS --config CONFIG`, whatever its outcome.
fn lc_certs(config: &Path, args: &str) -> Output {
    Command::new(LC)
        .arg("certs")
        .args(args.split_whitespace())
        .arg("--config")
        .arg(config)
        .output()
        .unwrap()
}

/// stdout and stderr of a command, for assertions and failure messages.
fn text(out: &Output) -> String {
    let (o, e) = (&out.stdout, &out.stderr);
    format!(
        "{}{}",
        String::from_utf8_lossy(o),
        String::from_utf8_lossy(e)
    )
}

/// A temp dir holding `lc certs init`'s set (default names) in `dir/certs`, and a config with
/// `collector` keys and `sources` whose certs_dir it is.
fn initialised(tag: &str, collector: &str, sources: &str) -> (TempDir, PathBuf) {
    let dir = TempDir::new(tag);
    let config = write_config(&dir.0, collector, sources);
    let out = lc_certs(&config, "init");
    assert!(out.status.success(), "lc certs init: {}", text(&out));
    (dir, config)
}

/// The openssl CLI in `dir` with the words of `args`; must succeed.
fn openssl(dir: &Path, args: &str) -> String {
    run(Command::new("openssl")
        .current_dir(dir)
        .args(args.split_whitespace()))
}

/// A new P-256 key at `path`.
fn new_key(path: &Path) {
    let args = format!(
        "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {}",
        word(path)
    );
    openssl(path.parent().unwrap(), &args);
}

/// A key and the certificate a CA signed for it, as a TLS client presents them.
struct Client {
    cert: PathBuf,
    key: PathBuf,
}

impl Client {
    /// s_client's options to present this certificate.
    fn args(&self) -> String {
        format!("-cert {} -key {}", word(&self.cert), word(&self.key))
    }
}

/// A client certificate with common name `cn` (and subject alternative names `san` in
/// openssl's syntax) signed by the CA in `ca_dir`, laid out as `lc certs init` writes it:
/// `ca.pem` and `private/ca-key.pem`.
fn client_cert(ca_dir: &Path, out: &Path, name: &str, cn: &str, san: Option<&str>) -> Client {
    fs::create_dir_all(out).unwrap();
    let file = |ext: &str| out.join(format!("{name}{ext}"));
    let (key, cert, csr, ext) = (
        file("-key.pem"),
        file("-cert.pem"),
        file(".csr"),
        file(".ext"),
    );
    new_key(&key);
    let mut extensions = "basicConstraints=critical,CA:FALSE\n\
                          keyUsage=critical,digitalSignature\n\
                          extendedKeyUsage=clientAuth\n"
        .to_string();
    if let Some(san) = san {
        extensions += &format!("subjectAltName={san}\n");
    }
    fs::write(&ext, extensions).unwrap();
    openssl(
        out,
        &format!(
            "req -new -key {} -subj /CN={cn} -out {}",
            word(&key),
            word(&csr)
        ),
    );
    openssl(
        out,
        &format!(
            "x509 -req -in {} -CA {} -CAkey {} -days 30 -extfile {} -out {}",
            word(&csr),
            word(&ca_dir.join("ca.pem")),
            word(&ca_dir.join("private/ca-key.pem")),
            word(&ext),
            word(&cert)
        ),
    );
    Client { cert, key }
}

/// A CA made by openssl alone, laid out like `lc certs init`'s.
fn openssl_ca(dir: &Path, cn: &str) {
    fs::create_dir_all(dir.join("private")).unwrap();
    openssl(
        dir,
        &format!(
            "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
             -keyout private/ca-key.pem -out ca.pem -subj /CN={cn} -days 30"
        ),
    );
}

/// A certificate for the key at `key` valid only from `start` to `end`, with extensions `ext`
/// (lines of an openssl extfile), signed by the CA in `ca_dir` or self-signed. OpenSSL 3.0's
/// `req` and `x509` take no validity in the past; `openssl ca` takes any dates but wants a
/// database, made afresh in `work`.
pub fn cert_with_dates(
    work: &Path,
    ca_dir: Option<&Path>,
    key: &Path,
    subj: &str,
    ext: &[&str],
    (start, end): (&str, &str),
    out: &Path,
) {
    let db = work.join("ca-db");
    let _ = fs::remove_dir_all(&db);
    fs::create_dir_all(&db).unwrap();
    fs::write(db.join("index.txt"), "").unwrap();
    fs::write(
        db.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = test\n[test]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\n\
             rand_serial = yes\ndefault_md = sha256\npolicy = any\nunique_subject = no\n\
             [any]\ncommonName = supplied\n",
            d = word(&db)
        ),
    )
    .unwrap();
    fs::write(db.join("ext"), ext.join("\n") + "\n").unwrap();
    let csr = db.join("req.csr");
    openssl(
        work,
        &format!(
            "req -new -key {} -subj {subj} -out {}",
            word(key),
            word(&csr)
        ),
    );
    let signer = match ca_dir {
        Some(ca) => format!(
            "-cert {} -keyfile {}",
            word(&ca.join("ca.pem")),
            word(&ca.join("private/ca-key.pem"))
        ),
        None => format!("-selfsign -keyfile {}", word(key)),
    };
    openssl(
        work,
        &format!(
            "ca -batch -notext -config {d}/ca.cnf -in {} -out {} -startdate {start} \
             -enddate {end} -extfile {d}/ext {signer}",
            word(&csr),
            word(out),
            d = word(&db)
        ),
    );
}

/// A certificate's serial as lowercase hex without separators or leading zeros, from the
/// snapshot's `aa:bb:..` or openssl's `serial=AABB..`.
fn serial_hex(s: &str) -> String {
    let s = s.trim().trim_start_matches("serial=").replace(':', "");
    s.to_ascii_lowercase().trim_start_matches('0').to_string()
}

fn serial_of(cert: &Path) -> String {
    let dir = cert.parent().unwrap();
    serial_hex(&openssl(
        dir,
        &format!("x509 -noout -serial -in {}", word(cert)),
    ))
}

/// Every file under `dir` with its bytes, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// The names in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn hostname() -> String {
    nix::unistd::gethostname().unwrap().into_string().unwrap()
}

fn drops(lc: &Lc, src: &str, why: &str) -> u64 {
    let st = lc.source_status(src);
    st["drops"][why]
        .as_u64()
        .unwrap_or_else(|| panic!("no drops.{why} in {st}"))
}

/// `openssl s_client` to `addr` with the words of `args`, sending `input` and closing at its
/// end. Its exit status is no verdict: with TLS 1.3 a client has finished its handshake before
/// the server judges its certificate, so refusals are read from lc's counters.
fn s_client(addr: SocketAddr, args: &str, input: &str) -> Output {
    output_with_input(
        Command::new("timeout")
            .args([
                "20",
                "openssl",
                "s_client",
                "-quiet",
                "-no_ign_eof",
                "-connect",
            ])
            .arg(addr.to_string())
            .args(args.split_whitespace()),
        input,
    )
}

/// What lc is to do with a client's connection.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// The line is stored.
    Stored,
    /// The connection is closed and counted under this `drops` key; the line is not stored.
    Refused(&'static str),
}
use Expect::{Refused, Stored};

/// Connects to `src` with s_client `args`, sends `<13>LINE`, and checks what lc did: the line
/// stored, or the connection refused and counted under one key and no other.
#[track_caller]
fn check_client(lc: &Lc, src: &str, args: &str, line: &str, expect: Expect) {
    let kinds = ["tls_handshake", "not_allowed_cn"];
    let counts = || -> Vec<u64> { kinds.iter().map(|k| drops(lc, src, k)).collect() };
    let mut want = counts();
    let line = format!("<13>{line}");
    let out = s_client(lc.addr(src, "tcp"), args, &format!("{line}\n"));
    match expect {
        Stored => wait_for(10, &format!("{line:?} stored\n{}", text(&out)), || {
            lc.lines(src).contains(&line)
        }),
        Refused(why) => {
            let i = kinds.iter().position(|k| *k == why).unwrap();
            want[i] += 1;
            wait_for(10, &format!("{line:?} refused as {why}"), || {
                drops(lc, src, why) == want[i]
            });
            assert!(!lc.lines(src).contains(&line), "{line} stored");
        }
    }
    assert_eq!(counts(), want, "{line}: drops {kinds:?}\n{}", text(&out));
}

/// Reads what lc sent on `s` (with its read timeout) and says whether lc has closed it; a
/// `trickle` peer sends another byte when nothing came.
fn closed_by_lc(s: &mut TcpStream, trickle: bool) -> bool {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Ok(0) => true,
        // An alert, then the end.
        Ok(_) => false,
        Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => {
            trickle && s.write_all(&[0]).is_err()
        }
        Err(_) => true,
    }
}

/// A peer process of the test's own, killed on drop.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Appends events `range` (`firewall event seq=NNNNN action=allow`) to `input`.
fn append_events(input: &Path, range: std::ops::Range<usize>) {
    let text: String = range
        .map(|i| format!("firewall event seq={i:05} action=allow\n"))
        .collect();
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(input)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Asserts that `lines` are events 0..n with a syslog header, each once, in order.
#[track_caller]
fn assert_events(lines: &[String], n: usize) {
    assert_eq!(lines.len(), n, "each message exactly once");
    for (i, l) in lines.iter().enumerate() {
        let tail = format!(" firewall event seq={i:05} action=allow");
        assert!(l.starts_with('<') && l.ends_with(&tail), "line {i}: {l}");
    }
}

/// The last lines of lc's log and of a peer's stderr.
fn logs(lc: &Lc, peer_log: &Path) -> String {
    let tail = |s: String| {
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    let peer = fs::read_to_string(peer_log).unwrap_or_default();
    format!(
        "lc log:\n{}\n{}:\n{}",
        tail(lc.log()),
        peer_log.display(),
        tail(peer)
    )
}

/// An rsyslogd forwarding `input` (imfile) over TLS to 127.0.0.1:`port`, octet-counted, with
/// stream driver `driver` ("gtls" or "ossl"), presenting `client` and requiring a server
/// certificate for localhost signed by `ca`. Its stderr goes to `dir/rsyslog.err`.
fn rsyslog_tls(
    dir: &Path,
    input: &Path,
    port: u16,
    driver: &str,
    client: &Client,
    ca: &Path,
) -> Peer {
    let work = dir.join("rsyslog-work");
    fs::create_dir_all(&work).unwrap();
    let conf = dir.join("rsyslog.conf");
    fs::write(
        &conf,
        format!(
            r#"global(workDirectory="{work}"
       defaultNetstreamDriverCAFile="{ca}"
       defaultNetstreamDriverCertFile="{cert}"
       defaultNetstreamDriverKeyFile="{key}")
module(load="imfile")
input(type="imfile" file="{input}" tag="fw:" ruleset="fwd")
ruleset(name="fwd") {{
  action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp"
         TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format"
         StreamDriver="{driver}" StreamDriverMode="1"
         StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost")
}}
"#,
            work = work.display(),
            ca = ca.display(),
            cert = client.cert.display(),
            key = client.key.display(),
            input = input.display(),
        ),
    )
    .unwrap();
    let child = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdout(Stdio::null())
        .stderr(fs::File::create(dir.join("rsyslog.err")).unwrap())
        .spawn()
        .expect("rsyslogd (scripts/deps.sh installs rsyslog, rsyslog-gnutls, rsyslog-openssl)");
    Peer(child)
}

#[test]
fn certs_init_writes_a_working_set_and_refuses_to_overwrite() {
    let dir = TempDir::new("certs-init");
    let config = write_config(&dir.0, "", &source("s", "syslog-tls", ""));
    let certs = certs(&dir.0);

    let out = lc_certs(&config, "init");
    assert!(out.status.success(), "{}", text(&out));
    // (file, mode; None: any not writable by others)
    for (file, want) in [
        ("ca.pem", None),
        ("server-cert.pem", None),
        ("server-key.pem", Some(0o600)),
        ("pure-ftpd.pem", Some(0o600)),
        ("private", Some(0o700)),
        ("private/ca-key.pem", Some(0o600)),
    ] {
        let path = certs.join(file);
        assert!(path.exists(), "{file} missing: {}", text(&out));
        let m = mode(&path);
        match want {
            Some(want) => assert_eq!(m, want, "{file}: mode {m:o}"),
            None => assert_eq!(m & 0o022, 0, "{file}: mode {m:o} writable by others"),
        }
    }
    // openssl agrees: the server certificate is signed by ca.pem, names this host, localhost
    // and both loopback addresses, and its key is in server-key.pem and in pure-ftpd.pem.
    let verified = openssl(&certs, "verify -CAfile ca.pem server-cert.pem");
    assert!(verified.contains(": OK"), "{verified}");
    let sans = openssl(
        &certs,
        "x509 -noout -ext subjectAltName -in server-cert.pem",
    );
    let host = hostname();
    for name in [
        &format!("DNS:{host}"),
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
    ] {
        assert!(sans.contains(name), "{name} not in {sans}");
    }
    let cert_pub = openssl(&certs, "x509 -noout -pubkey -in server-cert.pem");
    for key_file in ["server-key.pem", "pure-ftpd.pem"] {
        let key_pub = openssl(&certs, &format!("pkey -pubout -in {key_file}"));
        assert_eq!(
            key_pub, cert_pub,
            "{key_file}: not the server certificate's key"
        );
    }
    let ftp = fs::read_to_string(certs.join("pure-ftpd.pem")).unwrap();
    assert!(ftp.contains("PRIVATE KEY-----") && ftp.contains("BEGIN CERTIFICATE-----"));
    // The CA's key signs client certificates that verify against ca.pem.
    let client = client_cert(&certs, &dir.0.join("clients"), "fw1", "fw1.corp", None);
    let verified = openssl(
        &certs,
        &format!(
            "verify -CAfile ca.pem -purpose sslclient {}",
            word(&client.cert)
        ),
    );
    assert!(verified.contains(": OK"), "{verified}");

    let check = lc_certs(&config, "check");
    assert!(check.status.success(), "{}", text(&check));
    assert!(!text(&check).contains("problem:"), "{}", text(&check));

    // A second init refuses and writes nothing; so it does when only one of the files is left.
    let first = snapshot(&certs);
    let again = lc_certs(&config, "init");
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    assert_eq!(snapshot(&certs), first, "a refused init changed files");
    for f in [
        "ca.pem",
        "server-cert.pem",
        "server-key.pem",
        "private/ca-key.pem",
    ] {
        fs::remove_file(certs.join(f)).unwrap();
    }
    let lone = snapshot(&certs);
    let again = lc_certs(&config, "init");
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(text(&again).contains("pure-ftpd.pem"), "{}", text(&again));
    assert_eq!(
        snapshot(&certs),
        lone,
        "an init refused for one file wrote others"
    );

    // --force replaces everything, with the names and lifetime asked for.
    let forced = lc_certs(
        &config,
        "init --force --days 10 --name fw.example --name 10.1.2.3",
    );
    assert!(forced.status.success(), "{}", text(&forced));
    let replaced = snapshot(&certs);
    assert_eq!(
        replaced.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>()
    );
    for (file, bytes) in &first {
        assert_ne!(&replaced[file], bytes, "{file} not replaced");
    }
    // Valid for 10 days: still in 9, gone in 11.
    for (days, valid) in [(9, true), (11, false)] {
        let status = Command::new("openssl")
            .current_dir(&certs)
            .args(["x509", "-noout", "-in", "server-cert.pem", "-checkend"])
            .arg((days * 86400).to_string())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.success(), valid, "--days 10: valid in {days} days?");
    }
    let sans = openssl(
        &certs,
        "x509 -noout -ext subjectAltName -in server-cert.pem",
    );
    assert!(
        sans.contains("DNS:fw.example")
            && sans.contains("IP Address:10.1.2.3")
            && !sans.contains("localhost"),
        "{sans}"
    );
    let check = lc_certs(&config, "check");
    let t = text(&check);
    assert!(check.status.success(), "{t}");
    assert!(
        t.lines()
            .any(|l| l.starts_with("warning:") && l.contains("server-cert.pem")),
        "a certificate expiring in 10 days is not warned about:\n{t}"
    );
}

/// (what is done to the set, config, arguments, exit code, what the output says)
type CheckCase<'a> = (&'a str, &'a dyn Fn(), &'a Path, &'a str, i32, &'a str);

#[test]
fn certs_check_fails_on_a_set_the_tls_receiver_cannot_use() {
    let (dir, config) = initialised("certs-check", "", &source("s", "syslog-tls", ""));
    let certs = certs(&dir.0);
    let work = dir.0.join("work");
    fs::create_dir_all(&work).unwrap();
    let other_key = work.join("other-key.pem");
    new_key(&other_key);
    let expired = work.join("expired.pem");
    cert_with_dates(
        &work,
        Some(&certs),
        &certs.join("server-key.pem"),
        "/CN=localhost",
        &[
            "subjectAltName=DNS:localhost",
            "extendedKeyUsage=serverAuth",
        ],
        LONG_AGO,
        &expired,
    );
    let good = snapshot(&certs);
    let restore = || {
        let _ = fs::remove_dir_all(&certs);
        for (f, bytes) in &good {
            let p = certs.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, bytes).unwrap();
        }
    };
    let put = |from: &Path, to: &str| {
        fs::copy(from, certs.join(to)).unwrap();
    };
    let garbage = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
    let key_of_another = || put(&other_key, "server-key.pem");
    // The same certs_dir for a config whose only receiver is plain TCP: nothing needs the set.
    let tcp_only = dir.0.join("tcp.ini");
    let text_of = fs::read_to_string(&config).unwrap();
    fs::write(&tcp_only, text_of.replace("syslog-tls", "syslog-tcp")).unwrap();
    let explicit = format!("check {}", word(&certs));

    let cases: [CheckCase; 9] = [
        (
            "as init wrote it",
            &|| {},
            &config,
            "check",
            0,
            "key:     matches",
        ),
        (
            "key of another cert",
            &key_of_another,
            &config,
            "check",
            1,
            "server-key.pem",
        ),
        (
            "key of another cert, DIR given",
            &key_of_another,
            &config,
            &explicit,
            1,
            "server-key.pem",
        ),
        (
            "key of another cert, no TLS source",
            &key_of_another,
            &tcp_only,
            "check",
            0,
            "warning: ",
        ),
        (
            "expired server cert",
            &|| put(&expired, "server-cert.pem"),
            &config,
            "check",
            1,
            "expired",
        ),
        (
            "expired client CA",
            &|| put(&expired, "ca.pem"),
            &config,
            "check",
            1,
            "ca.pem",
        ),
        (
            "unparsable server cert",
            &|| fs::write(certs.join("server-cert.pem"), garbage).unwrap(),
            &config,
            "check",
            1,
            "server-cert.pem",
        ),
        (
            "no files",
            &|| fs::remove_dir_all(&certs).unwrap(),
            &config,
            "check",
            1,
            "server-cert.pem",
        ),
        (
            "no files, no TLS source",
            &|| fs::remove_dir_all(&certs).unwrap(),
            &tcp_only,
            "check",
            0,
            "",
        ),
    ];
    // Every case runs; the failures are listed together.
    let mut failed = Vec::new();
    for (what, break_it, config, args, code, says) in cases {
        restore();
        break_it();
        let out = lc_certs(config, args);
        let t = text(&out);
        let (got, problems) = (out.status.code(), t.contains("problem: "));
        if got != Some(code) || !t.contains(says) || problems != (code == 1) {
            failed.push(format!(
                "{what}: want exit {code}, {says:?}, problem lines: {}; got exit {got:?}:\n{t}",
                code == 1
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn mutual_tls_refuses_and_counts_bad_clients_and_stalled_handshakes() {
    let (dir, config) = initialised(
        "tls-clients",
        "handshake_timeout_secs = 1",
        &(source("t", "syslog-tls", "")
            + &source(
                "cn",
                "syslog-tls",
                "allow_cn = fw1.corp, *.dc.corp, 10.0.0.9",
            )),
    );
    let certs = certs(&dir.0);
    let clients = dir.0.join("clients");
    let good = client_cert(&certs, &clients, "good", "fw1.corp", None);
    let other = dir.0.join("other-ca");
    openssl_ca(&other, "unrelated-CA");
    let stranger = client_cert(&other, &clients, "stranger", "fw1.corp", None);
    let expired = clients.join("expired-cert.pem");
    cert_with_dates(
        &dir.0,
        Some(&certs),
        &good.key,
        "/CN=fw1.corp",
        &["extendedKeyUsage=clientAuth"],
        LONG_AGO,
        &expired,
    );
    let expired = format!("-cert {} -key {}", word(&expired), word(&good.key));
    let lc = Lc::attach(dir, config);

    let verify_lc = format!(
        "-CAfile {} -verify_return_error",
        word(&certs.join("ca.pem"))
    );
    let good = good.args();
    let stranger = stranger.args();
    // SECLEVEL=0 lets openssl 3 offer TLS 1.1 at all.
    let tls11 = "-tls1_1 -cipher DEFAULT@SECLEVEL=0";
    // One line per case on source t, in order; the refused ones are not stored.
    let cases: [(&str, String, Expect); 9] = [
        ("signed by ca.pem", format!("{good} {verify_lc}"), Stored),
        (
            "signed by ca.pem, TLS 1.2",
            format!("{good} {verify_lc} -tls1_2"),
            Stored,
        ),
        ("no certificate", String::new(), Refused("tls_handshake")),
        (
            "no certificate, TLS 1.2",
            "-tls1_2".into(),
            Refused("tls_handshake"),
        ),
        (
            "signed by another CA",
            stranger.clone(),
            Refused("tls_handshake"),
        ),
        (
            "another CA, TLS 1.2",
            format!("{stranger} -tls1_2"),
            Refused("tls_handshake"),
        ),
        ("expired", expired, Refused("tls_handshake")),
        (
            "TLS 1.1",
            format!("{good} {tls11}"),
            Refused("tls_handshake"),
        ),
        ("signed by ca.pem again", good.clone(), Stored),
    ];
    for (what, args, expect) in &cases {
        check_client(&lc, "t", args, &format!("case {what}"), *expect);
    }
    let stored: Vec<String> = cases
        .iter()
        .filter(|c| c.2 == Stored)
        .map(|c| format!("<13>case {}", c.0))
        .collect();
    assert_eq!(lc.lines("t"), stored);
    // Each distinct reason from the same peer is named in the log, not only the first of the
    // minute (issue 13: a second firewall's TLS problem was never said).
    let log = lc.log();
    for reason in [
        "the client certificate is not signed by ca.pem",
        "the client certificate has expired",
        "lc speaks TLS 1.2 and 1.3",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("source t: 127.0.0.1:") && l.contains(reason)),
            "{reason:?} not logged:\n{log}"
        );
    }
    // A message longer than a TLS record (16 KiB) arrives whole.
    let big = format!("big {}", "x".repeat(40_000));
    check_client(&lc, "t", &good, &big, Stored);

    // allow_cn matches the CN or a DNS/IP SAN: exact, case-insensitive, `*.` is one label.
    let cn_cases: [(&str, &str, Option<&str>, Expect); 8] = [
        ("exact", "fw1.corp", None, Stored),
        ("upper", "FW1.CORP", None, Stored),
        ("dns-san", "somebox", Some("DNS:fw1.corp"), Stored),
        ("ip-san", "somebox", Some("IP:10.0.0.9"), Stored),
        ("wildcard", "edge.dc.corp", None, Stored),
        (
            "two-labels",
            "a.edge.dc.corp",
            None,
            Refused("not_allowed_cn"),
        ),
        (
            "other",
            "fw2.corp",
            Some("DNS:fw2.corp,IP:10.0.0.2"),
            Refused("not_allowed_cn"),
        ),
        ("suffix", "xfw1.corp", None, Refused("not_allowed_cn")),
    ];
    for (name, cn, san, expect) in cn_cases {
        let c = client_cert(&certs, &clients, name, cn, san);
        check_client(&lc, "cn", &c.args(), &format!("cn {name}"), expect);
    }
    // A certificate from another CA fails the handshake before allow_cn is asked.
    check_client(
        &lc,
        "cn",
        &stranger,
        "cn stranger",
        Refused("tls_handshake"),
    );

    // A client that finished its handshake keeps its connection while peers that never finish
    // theirs are closed after handshake_timeout_secs.
    let mut held = Command::new("openssl")
        .args(["s_client", "-quiet", "-no_ign_eof", "-connect"])
        .arg(lc.addr("t", "tcp").to_string())
        .args(good.split_whitespace())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut held_in = held.stdin.take().unwrap();
    let _held = Peer(held);
    held_in.write_all(b"<13>held first\n").unwrap();
    wait_for(10, "first line of the held connection", || {
        lc.lines("t").iter().any(|l| l == "<13>held first")
    });
    let before = drops(&lc, "t", "tls_handshake");
    let connect = |first: &[u8]| {
        let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
        s.write_all(first).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        s
    };
    // A TLS record header announcing a 16 KiB handshake message, and its first byte.
    let hello = [0x16, 0x03, 0x01, 0x40, 0x00, 0x01];
    // (peer, stream, whether it sends a byte of its hello whenever lc is quiet for 50 ms)
    let mut open = vec![
        ("silent peer", connect(&[]), false),
        ("partial ClientHello", connect(&hello), false),
        ("ClientHello trickled", connect(&hello), true),
    ];
    let deadline = Instant::now() + Duration::from_secs(15);
    while !open.is_empty() && Instant::now() < deadline {
        open.retain_mut(|(_, s, trickle)| !closed_by_lc(s, *trickle));
    }
    let open: Vec<&str> = open.iter().map(|p| p.0).collect();
    assert!(open.is_empty(), "not closed by lc within 15s: {open:?}");
    wait_for(10, "stalled handshakes counted", || {
        drops(&lc, "t", "tls_handshake") == before + 3
    });
    held_in.write_all(b"<13>held after the timeouts\n").unwrap();
    wait_for(10, "second line of the held connection", || {
        lc.lines("t")
            .iter()
            .any(|l| l == "<13>held after the timeouts")
    });

    // The snapshot says what lc serves and whom it trusts.
    let st = lc.status();
    let tls = &st["tls"];
    let serial = serial_hex(tls["serial"].as_str().unwrap());
    assert_eq!(serial, serial_of(&certs.join("server-cert.pem")), "{st}");
    assert_eq!(tls["subject"], format!("CN={}", hostname()), "{st}");
    assert_eq!(
        tls["client_ca"],
        json!([format!("CN=lc local CA {}", hostname())])
    );
    let now = now_ms() as i64 / 1000;
    assert!(tls["not_after"].as_i64().unwrap() > now, "{st}");
    assert!(tls["client_ca_not_after"].as_i64().unwrap() > now, "{st}");
}

#[test]
fn without_ca_pem_any_client_is_accepted() {
    let (dir, config) = initialised("tls-open", "", &source("t", "syslog-tls", ""));
    let certs = certs(&dir.0);
    let ca = dir.0.join("client-ca");
    fs::create_dir_all(&ca).unwrap();
    fs::rename(certs.join("ca.pem"), ca.join("ca.pem")).unwrap();
    fs::rename(certs.join("private"), ca.join("private")).unwrap();
    let client = client_cert(&ca, &dir.0.join("clients"), "c", "anything", None);
    let lc = Lc::attach(dir, config);
    assert_eq!(lc.status()["tls"]["client_ca"], json!([]));
    for (what, args, expect) in [
        ("no certificate", String::new(), Stored),
        ("some certificate", client.args(), Stored),
        ("TLS 1.2", "-tls1_2".into(), Stored),
        (
            "TLS 1.1",
            "-tls1_1 -cipher DEFAULT@SECLEVEL=0".into(),
            Refused("tls_handshake"),
        ),
    ] {
        check_client(&lc, "t", &args, what, expect);
    }
}

fn check_rsyslog_tls(driver: &str) {
    let (dir, config) = initialised(
        &format!("rsyslog-{driver}"),
        "",
        &source("fw", "syslog-tls", ""),
    );
    let certs = certs(&dir.0);
    let peer_dir = TempDir::new("rsyslog-tls");
    let client = client_cert(&certs, &peer_dir.0, "fw", "fw.corp", None);
    let lc = Lc::attach(dir, config);
    let input = peer_dir.0.join("input.log");
    let n = 3000;
    append_events(&input, 0..n);
    let port = lc.addr("fw", "tcp").port();
    let ca = certs.join("ca.pem");
    let _rsyslog = rsyslog_tls(&peer_dir.0, &input, port, driver, &client, &ca);
    wait_explained(
        60,
        &format!("{n} lines from rsyslog over {driver}"),
        || lc.lines("fw").len() >= n,
        || logs(&lc, &peer_dir.0.join("rsyslog.err")),
    );
    assert_events(&lc.lines("fw"), n);
    assert_eq!(drops(&lc, "fw", "tls_handshake"), 0);
}

#[test]
fn rsyslog_forwards_over_tls_with_gnutls() {
    check_rsyslog_tls("gtls");
}

#[test]
fn syslog_ng_forwards_over_tls() {
    let (dir, config) = initialised("syslog-ng-tls", "", &source("ng", "syslog-tls", ""));
    let certs = certs(&dir.0);
    let ng = TempDir::new("syslog-ng-tls");
    let client = client_cert(&certs, &ng.0, "ng", "ng.corp", Some("DNS:ng.corp"));
    let lc = Lc::attach(dir, config);
    let n = 300;
    let input = ng.0.join("input.log");
    append_events(&input, 0..n);
    // network() frames with LF; syslog-ng checks that the server certificate names 127.0.0.1.
    let conf = ng.0.join("syslog-ng.conf");
    fs::write(
        &conf,
        format!(
            r#"@version: 3.38
source s_file {{ file("{input}" flags(no-parse) follow-freq(0.1)); }};
destination d_lc {{
  network("127.0.0.1" port({port}) transport("tls")
          tls(key-file("{key}") cert-file("{cert}") ca-file("{ca}") peer-verify(required-trusted)));
}};
log {{ source(s_file); destination(d_lc); }};
"#,
            input = input.display(),
            port = lc.addr("ng", "tcp").port(),
            key = client.key.display(),
            cert = client.cert.display(),
            ca = certs.join("ca.pem").display(),
        ),
    )
    .unwrap();
    let log = ng.0.join("syslog-ng.err");
    let _ng = Peer(
        Command::new(peer("syslog-ng"))
            .arg("-F")
            .arg("-f")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_explained(
        30,
        &format!("{n} lines from syslog-ng"),
        || lc.lines("ng").len() >= n,
        || logs(&lc, &log),
    );
    assert_events(&lc.lines("ng"), n);
    assert_eq!(drops(&lc, "ng", "tls_handshake"), 0);
}

#[test]
fn certs_reload_swaps_the_set_while_an_rsyslog_stream_goes_on() {
    let (dir, config) = initialised("tls-reload", "", &source("fw", "syslog-tls", ""));
    let certs = certs(&dir.0);
    let prev = dir.0.join("certs.prev");
    let update = ssl_update(&dir.0);
    // The next set: another CA and a server certificate it signed.
    let next = dir.0.join("next");
    let out = lc_certs(
        &config,
        &format!("init {} --name localhost --name 127.0.0.1", word(&next)),
    );
    assert!(out.status.success(), "{}", text(&out));
    let clients = dir.0.join("clients");
    let old_client = client_cert(&certs, &clients, "old", "fw.corp", None);
    let new_client = client_cert(&next, &clients, "new", "fw.corp", None);
    let old_set = snapshot(&certs);
    let peer_dir = TempDir::new("rsyslog-reload");
    // rsyslog trusts only the old CA: were its connection dropped, it could not come back.
    let old_ca = peer_dir.0.join("old-ca.pem");
    fs::copy(certs.join("ca.pem"), &old_ca).unwrap();
    let lc = Lc::attach(dir, config);
    let input = peer_dir.0.join("input.log");
    let port = lc.addr("fw", "tcp").port();
    let _rsyslog = rsyslog_tls(&peer_dir.0, &input, port, "ossl", &old_client, &old_ca);
    let rsyslog_log = peer_dir.0.join("rsyslog.err");
    let explain = || logs(&lc, &rsyslog_log);
    append_events(&input, 0..1000);
    let lc_ref = &lc;
    let arrived = |n: usize| move || lc_ref.lines("fw").len() >= n;
    wait_explained(30, "1000 lines before the reload", arrived(1000), explain);
    wait_for(10, "rsyslog's connection in the snapshot", || {
        lc.status()["connections"] == 1
    });

    // As an FTP upload leaves them: readable by all.
    for f in ["ca.pem", "server-cert.pem", "server-key.pem"] {
        fs::copy(next.join(f), update.join(f)).unwrap();
        fs::set_permissions(update.join(f), fs::Permissions::from_mode(0o644)).unwrap();
    }
    let asked = now_ms();
    // Lines in flight while the set is swapped, and after.
    append_events(&input, 1000..2000);
    let out = lc_certs(&lc.config, "reload");
    assert!(
        out.status.success(),
        "lc certs reload: {}\n{}",
        text(&out),
        explain()
    );
    append_events(&input, 2000..3000);

    assert_eq!(snapshot(&prev), old_set, "certs.prev is not the old set");
    let installed = snapshot(&certs);
    for (file, from) in [
        ("ca.pem", &next),
        ("server-cert.pem", &next),
        ("server-key.pem", &next),
        ("pure-ftpd.pem", &prev),
        ("private/ca-key.pem", &prev),
    ] {
        let want = fs::read(from.join(file)).unwrap();
        assert_eq!(
            installed.get(file),
            Some(&want),
            "{file} in the new certs dir"
        );
    }
    assert_eq!(installed.len(), old_set.len(), "{:?}", installed.keys());
    assert_eq!(
        listing(&update),
        Vec::<String>::new(),
        "ssl_update/ not emptied"
    );
    let st = lc.status();
    assert!(st["reloaded_at"].as_u64().unwrap() >= asked, "{st}");
    assert!(st["reload_error"].is_null(), "{st}");
    let serial = serial_hex(st["tls"]["serial"].as_str().unwrap());
    assert_eq!(serial, serial_of(&next.join("server-cert.pem")), "{st}");
    assert_eq!(st["tls"]["client_ca"], json!(["CN=lc local CA localhost"]));

    // The open stream lost nothing and was never re-established.
    wait_explained(30, "3000 lines across the reload", arrived(3000), explain);
    assert_events(&lc.lines("fw"), 3000);
    assert_eq!(drops(&lc, "fw", "tls_handshake"), 0, "rsyslog reconnected");
    assert_eq!(lc.status()["connections"], 1);

    // New handshakes: the old CA's client is refused; the new CA's is accepted and is served
    // the new server certificate.
    check_client(
        &lc,
        "fw",
        &old_client.args(),
        "old client",
        Refused("tls_handshake"),
    );
    let verify_new = format!(
        "-CAfile {} -verify_return_error",
        word(&next.join("ca.pem"))
    );
    let args = format!("{} {verify_new}", new_client.args());
    check_client(&lc, "fw", &args, "new client", Stored);
    // The old connection still carries lines after those handshakes.
    append_events(&input, 3000..3001);
    wait_explained(
        30,
        "a line on the old stream after the new handshakes",
        || {
            lc.lines("fw")
                .iter()
                .any(|l| l.ends_with(" seq=03000 action=allow"))
        },
        explain,
    );

    // Private keys stay private, whatever mode they were uploaded with.
    let want = [
        ("server-key.pem", "600"),
        ("pure-ftpd.pem", "600"),
        ("private", "700"),
        ("private/ca-key.pem", "600"),
    ];
    let modes: Vec<(&str, String)> = want
        .iter()
        .map(|(f, _)| (*f, format!("{:o}", mode(&certs.join(f)))))
        .collect();
    let want: Vec<(&str, String)> = want.iter().map(|(f, m)| (*f, m.to_string())).collect();
    assert_eq!(modes, want, "modes in the certs dir after the reload");
}

/// Files by name, as put into ssl_update/.
type Files = Vec<(&'static str, Vec<u8>)>;

#[test]
fn invalid_sets_in_ssl_update_change_nothing() {
    let (dir, config) = initialised("tls-invalid", "", &source("t", "syslog-tls", ""));
    let certs = certs(&dir.0);
    let update = ssl_update(&dir.0);
    let work = dir.0.join("work");
    fs::create_dir_all(&work).unwrap();
    let client = client_cert(&certs, &dir.0.join("clients"), "c", "fw.corp", None).args();

    // A valid pair other than the installed one, for the cases that mix good and bad files.
    let next = dir.0.join("next");
    let out = lc_certs(&config, &format!("init {} --name localhost", word(&next)));
    assert!(out.status.success(), "{}", text(&out));
    let read = |p: &Path| fs::read(p).unwrap();
    let next_cert = read(&next.join("server-cert.pem"));
    let next_key = read(&next.join("server-key.pem"));
    let other_key = work.join("other-key.pem");
    new_key(&other_key);
    let other_key = read(&other_key);
    let expired = work.join("expired.pem");
    cert_with_dates(
        &work,
        Some(&certs),
        &certs.join("server-key.pem"),
        "/CN=localhost",
        &[
            "subjectAltName=DNS:localhost",
            "extendedKeyUsage=serverAuth",
        ],
        LONG_AGO,
        &expired,
    );
    let expired_ca = work.join("expired-ca.pem");
    cert_with_dates(
        &work,
        None,
        &certs.join("private/ca-key.pem"),
        "/CN=expired-CA",
        &[
            "basicConstraints=critical,CA:TRUE",
            "keyUsage=critical,keyCertSign",
        ],
        LONG_AGO,
        &expired_ca,
    );
    let bad_base64 = b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n";
    let not_x509 = b"-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n";

    let lc = Lc::attach(dir, config);
    check_client(&lc, "t", &client, "before", Stored);
    let parent = certs.parent().unwrap().to_path_buf();
    let installed = snapshot(&certs);
    let siblings = listing(&parent);
    let serial = lc.status()["tls"]["serial"].clone();
    let reloaded_at = lc.status()["reloaded_at"].clone();

    // (what, files put into ssl_update/, a file the refusal names)
    let cases: Vec<(&str, Files, &str)> = vec![
        (
            "key of another cert",
            vec![("server-key.pem", other_key.clone())],
            "server-key.pem",
        ),
        (
            "new cert, key not its own",
            vec![
                ("server-cert.pem", next_cert.clone()),
                ("server-key.pem", other_key),
            ],
            "server-key.pem",
        ),
        (
            "unparsable PEM",
            vec![("server-cert.pem", bad_base64.to_vec())],
            "server-cert.pem",
        ),
        (
            "PEM but no X.509",
            vec![("server-cert.pem", not_x509.to_vec())],
            "server-cert.pem",
        ),
        (
            "unparsable CA",
            vec![("ca.pem", bad_base64.to_vec())],
            "ca.pem",
        ),
        ("CA no X.509", vec![("ca.pem", not_x509.to_vec())], "ca.pem"),
        (
            "expired server cert",
            vec![("server-cert.pem", read(&expired))],
            "server-cert.pem",
        ),
        ("expired CA", vec![("ca.pem", read(&expired_ca))], "ca.pem"),
        (
            "new cert, no key",
            vec![("server-cert.pem", next_cert.clone())],
            "server-cert.pem",
        ),
        (
            "good pair, unknown file",
            vec![
                ("server-cert.pem", next_cert),
                ("server-key.pem", next_key),
                ("server.crt", read(&certs.join("server-cert.pem"))),
            ],
            "server.crt",
        ),
    ];
    for (what, files, names) in cases {
        for (f, bytes) in &files {
            fs::write(update.join(f), bytes).unwrap();
        }
        let queued = snapshot(&update);
        let out = lc_certs(&lc.config, "reload");
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{what}: exit code\n{t}");
        assert!(t.contains(names), "{what}: {names} not named in\n{t}");
        assert_eq!(
            snapshot(&certs),
            installed,
            "{what}: certs dir changed\n{t}"
        );
        assert_eq!(
            listing(&parent),
            siblings,
            "{what}: beside the certs dir\n{t}"
        );
        assert_eq!(
            snapshot(&update),
            queued,
            "{what}: ssl_update/ changed\n{t}"
        );
        let st = lc.status();
        assert_eq!(
            st["tls"]["serial"], serial,
            "{what}: served certificate changed"
        );
        assert_eq!(
            st["reloaded_at"], reloaded_at,
            "{what}: instance was signalled"
        );
        check_client(&lc, "t", &client, &format!("after {what}"), Stored);
        for (f, _) in &files {
            fs::remove_file(update.join(f)).unwrap();
        }
    }

    // With ssl_update/ empty, reload has the instance re-read certs/ as it is.
    let asked = now_ms();
    let out = lc_certs(&lc.config, "reload");
    assert!(out.status.success(), "{}", text(&out));
    let st = lc.status();
    assert!(st["reloaded_at"].as_u64().unwrap() >= asked, "{st}");
    assert!(st["reload_error"].is_null(), "{st}");
    assert_eq!(st["tls"]["serial"], serial);
    assert_eq!(snapshot(&certs), installed);
    check_client(&lc, "t", &client, "after an empty reload", Stored);

    // An instance that refuses to reload fails the command, which says why: here the config
    // now moves state_dir, which a running instance cannot do.
    let good = fs::read_to_string(&lc.config).unwrap();
    let moved = good.replace("/state\n", "/state-moved\n");
    assert_ne!(moved, good);
    fs::write(&lc.config, moved).unwrap();
    let out = lc_certs(&lc.config, "reload");
    fs::write(&lc.config, good).unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let st = lc.status();
    let why = st["reload_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{st}"));
    assert!(
        t.contains(why.lines().next().unwrap()),
        "{why:?} not in\n{t}"
    );
    check_client(&lc, "t", &client, "after a refused reload", Stored);
}

#[test]
fn certs_reload_signals_no_process_but_lc() {
    let (dir, config) = initialised("tls-stale-pid", "", &source("t", "syslog-tls", ""));
    let mut lc = Lc::attach(dir, config);
    // Killed, lc leaves its pid file behind, and the pid goes to another program.
    lc.kill9();
    let pid_file = lc.dir.0.join("run/all.pid");
    assert!(pid_file.exists(), "{}", pid_file.display());
    let mut other = Peer(Command::new("sleep").arg("60").spawn().unwrap());
    fs::write(&pid_file, format!("{}\n", other.0.id())).unwrap();
    let out = lc_certs(&lc.config, "reload");
    let t = text(&out);
    let status = other.0.try_wait().unwrap();
    assert_eq!(
        status,
        None,
        "lc certs reload signalled `sleep` (pid {}):\n{t}",
        other.0.id()
    );
    assert_eq!(out.status.code(), Some(0), "no instance is running:\n{t}");
}

/// Regression: rustls used to send TLS 1.3 session tickets that a sender which never reads
/// left unread; closing a socket with unread data makes Linux send a reset, and the reset
/// discarded the last data lc had not read yet (loggen lost its last 217 messages).
#[test]
fn a_tls_sender_that_never_reads_loses_nothing_when_it_closes() {
    use std::io::Write;
    use std::sync::Arc;
    let (dir, config) = initialised("tls-noread", "", &source("t", "syslog-tls", ""));
    let ca_pem = fs::read(certs(&dir.0).join("ca.pem")).unwrap();
    fs::remove_file(certs(&dir.0).join("ca.pem")).unwrap();
    let lc = Lc::attach(dir, config);
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(&ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut tls =
        rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap()).unwrap();
    let mut sock = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut sock).unwrap();
    }
    // From here on the client only writes, as syslog senders do.
    let n = 100_000;
    for i in 0..n {
        tls.writer()
            .write_all(format!("<13>never reads {i:06}\n").as_bytes())
            .unwrap();
        while tls.wants_write() {
            tls.write_tls(&mut sock).unwrap();
        }
    }
    drop(sock);
    wait_for(30, "every line of the closed stream", || {
        lc.source_status("t")["messages"] == n
    });
    let lines = lc.lines("t");
    assert_eq!(lines.len(), n as usize);
    assert_eq!(
        lines[n as usize - 1],
        format!("<13>never reads {:06}", n - 1)
    );
}

#[test]
fn certs_check_warns_when_the_local_ca_key_is_not_the_installed_cas() {
    let (dir, config) = initialised("certs-ca-key", "", &source("s", "syslog-tls", ""));
    let certs = certs(&dir.0);
    let check = lc_certs(&config, "check");
    assert!(!text(&check).contains("ca-key.pem"), "{}", text(&check));
    // The operator installs a CA of their own; lc's CA key stays behind.
    let other_key = dir.0.join("other-ca-key.pem");
    new_key(&other_key);
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-days",
            "30",
            "-subj",
            "/CN=corp CA",
            "-key",
        ])
        .arg(&other_key)
        .args(["-addext", "basicConstraints=critical,CA:TRUE", "-out"])
        .arg(certs.join("ca.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let check = lc_certs(&config, "check");
    let t = text(&check);
    assert!(
        t.lines()
            .any(|l| l.starts_with("warning:") && l.contains("private/ca-key.pem: not the key of")),
        "{t}"
    );
}

#[test]
fn certs_init_into_a_named_folder_needs_no_config() {
    let dir = TempDir::new("certs-noconfig");
    let target = dir.0.join("pki");
    let out = Command::new(LC)
        .args(["certs", "init", "--config"])
        .arg(dir.0.join("no-such.ini"))
        .arg(&target)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for f in [
        "ca.pem",
        "server-cert.pem",
        "server-key.pem",
        "pure-ftpd.pem",
    ] {
        assert!(target.join(f).exists(), "{f} missing: {}", text(&out));
    }
}

/// Issue 12, bug 13: a client that closes or resets the connection in the middle of its
/// handshake was not counted as a failed handshake. A connection closed without a byte (a load
/// balancer's TCP check) is not a handshake and is not counted.
#[test]
fn a_handshake_cut_short_is_counted_and_a_silent_probe_is_not() {
    let (dir, config) = initialised("tls-cut", "", &source("t", "syslog-tls", ""));
    let lc = Lc::attach(dir, config);
    let addr = lc.addr("t", "tcp");
    let handshakes = || lc.source_status("t")["drops"]["tls_handshake"].clone();
    // A probe: connect, close.
    drop(TcpStream::connect(addr).unwrap());
    wait_for(10, "probe accepted and closed", || {
        let t = lc.source_status("t");
        t["accepted"] == 1 && t["connections"] == 0
    });
    assert_eq!(handshakes(), 0);
    // The start of a ClientHello record, then a clean close.
    let hello_start = [
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&hello_start).unwrap();
    drop(s);
    wait_for(10, "closed mid-handshake counted", || handshakes() == 1);
    // The same, then a reset (SO_LINGER 0).
    let s = TcpStream::connect(addr).unwrap();
    (&s).write_all(&hello_start).unwrap();
    nix::sys::socket::setsockopt(
        &s,
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    )
    .unwrap();
    drop(s);
    wait_for(10, "reset mid-handshake counted", || handshakes() == 2);
    assert!(lc.log().contains("before it finished"), "{}", lc.log());
}
