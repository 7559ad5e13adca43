//! Root against the service user: attacks an `lc` account could plant for a root command
//! (`lc connect`, `lc certs reload`, `lc status`, `lc tail`, install.sh) to trip on, and the
//! secrets (proxy passwords, SAS signatures) that must never reach an output.
//!
//! These tests run as root, as CI does. The service user is played by uid 65534 (`nobody`):
//! the folders it owns are chowned to it, and the planted files are its or hard links to root's.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{base_config, TempDir, LC};

/// The service user in these tests.
const SERVICE: u32 = 65534;
/// A user that is neither root nor the service.
const STRANGER: u32 = 12345;
/// A file over every limit of careful reads, sparse so it costs no disk.
const HUGE: u64 = 64 << 20;

/// What the attacker leaves where root will look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plant {
    /// A symbolic link to a root-only file.
    Symlink,
    /// A FIFO: a reader that opens it blocking waits forever.
    Fifo,
    /// A hard link to a root-only file.
    HardLink,
    /// A sparse file of `HUGE` bytes owned by the service.
    Huge,
    /// A small file of another user.
    Stranger,
}

pub const PLANTS: [Plant; 5] = [
    Plant::Symlink,
    Plant::Fifo,
    Plant::HardLink,
    Plant::Huge,
    Plant::Stranger,
];

/// Owner, mode, kind and content (or size, for big files) of a path, not following links.
#[derive(Debug, Clone, PartialEq)]
pub struct Print {
    uid: u32,
    gid: u32,
    mode: u32,
    size: u64,
    bytes: Option<Vec<u8>>,
}

pub fn print(path: &Path) -> Print {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let bytes = (m.file_type().is_file() && m.len() < 1 << 20).then(|| fs::read(path).unwrap());
    Print {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode(),
        size: m.len(),
        bytes,
    }
}

pub fn chown(path: &Path, uid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(uid)).unwrap();
}

/// A root-only file, the attack's target: `root:root 0600`.
pub fn root_secret(dir: &Path) -> PathBuf {
    let p = dir.join("root-only");
    fs::write(&p, b"root's secret\n").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Plants `how` at `at`; returns the paths whose print must not change (the target and what
/// was planted).
pub fn plant(how: Plant, at: &Path, secret: &Path) -> Vec<PathBuf> {
    match how {
        Plant::Symlink => std::os::unix::fs::symlink(secret, at).unwrap(),
        Plant::Fifo => {
            nix::unistd::mkfifo(at, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
            chown(at, SERVICE);
        }
        Plant::HardLink => fs::hard_link(secret, at).unwrap(),
        Plant::Huge => {
            let f = fs::File::create(at).unwrap();
            f.set_len(HUGE).unwrap();
            chown(at, SERVICE);
        }
        Plant::Stranger => {
            fs::write(at, b"a stranger's file\n").unwrap();
            chown(at, STRANGER);
        }
    }
    vec![secret.to_path_buf(), at.to_path_buf()]
}

/// Runs `cmd`, killing it after `secs` (a FIFO can hang a careless reader). Its output is
/// drained as it comes, so a command that writes much does not block on a full pipe.
pub fn output_within(cmd: &mut Command, secs: u64) -> (Output, bool) {
    use std::io::Read;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = r.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut hung = false;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            hung = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let out = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    (out, hung)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A config in `dir` whose run and state folders belong to the service user.
fn service_config(dir: &Path, extra: &str) -> PathBuf {
    let config = dir.join("lc.ini");
    let collector = format!("certs_dir = {}/certs", dir.display());
    fs::write(
        &config,
        format!("{}{extra}", base_config(dir, "", &collector)),
    )
    .unwrap();
    for d in ["run", "state", "state/ftp", "state/ftp/ssl_update"] {
        fs::create_dir_all(dir.join(d)).unwrap();
        chown(&dir.join(d), SERVICE);
    }
    config
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn lc_connect_leaves_a_planted_api_bucket_alone() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    for how in PLANTS {
        let dir = TempDir::new("bucket");
        let config = service_config(&dir.0, "");
        let secret = root_secret(&dir.0);
        let watched = plant(how, &dir.0.join("run/api-bucket"), &secret);
        let before: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        let token = dir.0.join("token.txt");
        fs::write(&token, "t0ken\n").unwrap();
        let (out, hung) = output_within(
            Command::new(LC)
                .args(["connect", "--config"])
                .arg(&config)
                .arg("--token-file")
                .arg(&token)
                .arg(format!("127.0.0.1:{}", closed_port())),
            20,
        );
        let said = text(&out);
        assert!(!hung, "{how:?}: lc connect hung");
        let after: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        assert_eq!(before, after, "{how:?}: {said}");
        assert!(
            said.contains(&format!("{}/run/api-bucket: refused: ", dir.0.display())),
            "{how:?}: {said}"
        );
        assert_eq!(out.status.code(), Some(1), "{how:?}: {said}");
    }
}

/// The files of a certificate set, as `lc certs reload` takes them from ssl_update/.
const CERT_FILES: [&str; 4] = [
    "server-cert.pem",
    "server-key.pem",
    "ca.pem",
    "pure-ftpd.pem",
];

#[test]
fn lc_certs_reload_refuses_a_planted_file_in_ssl_update() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    for name in CERT_FILES {
        for how in PLANTS {
            let dir = TempDir::new("ssl-update");
            let config = service_config(&dir.0, "");
            let certs = dir.0.join("certs");
            fs::create_dir_all(&certs).unwrap();
            let secret = root_secret(&dir.0);
            let update = dir.0.join("state/ftp/ssl_update");
            let watched = plant(how, &update.join(name), &secret);
            let before: Vec<Print> = watched.iter().map(|p| print(p)).collect();
            let (out, hung) = output_within(
                Command::new(LC)
                    .args(["certs", "reload", "--config"])
                    .arg(&config),
                20,
            );
            let said = text(&out);
            assert!(!hung, "{name} {how:?}: lc certs reload hung");
            let after: Vec<Print> = watched.iter().map(|p| print(p)).collect();
            assert_eq!(before, after, "{name} {how:?}: {said}");
            assert!(
                !certs.join(name).exists(),
                "{name} {how:?}: installed into {}: {said}",
                certs.display()
            );
            assert!(
                said.contains(&format!("{}: refused: ", update.join(name).display())),
                "{name} {how:?}: {said}"
            );
            assert_ne!(out.status.code(), Some(0), "{name} {how:?}: {said}");
        }
    }
}

/// The folders install.sh sets up under /var/lib/lc, which the service can write. These are all
/// it touches there: install.sh places files (`put`: the binary, units, docs, lc.ini) only in
/// root's folders (/usr/local, /etc/systemd/system, /etc/lc), never under a folder the service
/// can write, so a planted hard link or huge file has no file of install.sh's to stand in for;
/// where a folder is expected, each plant (a hard link, a huge file included) is refused below.
const STATE_FOLDERS: [&str; 2] = ["var/lib/lc/ftp", "var/lib/lc/ftp/ssl_update"];

#[test]
fn install_sh_follows_no_link_the_service_planted() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    for at in STATE_FOLDERS {
        for how in PLANTS {
            let setup = crate::install::Setup::new("install-plant");
            setup.install("rel", &[]);
            // The target: a folder root keeps to itself (think /etc/sudoers.d) and a file in it.
            let target = setup.dir.0.join("sudoers.d");
            fs::create_dir_all(&target).unwrap();
            fs::set_permissions(&target, fs::Permissions::from_mode(0o700)).unwrap();
            let secret = root_secret(&target);
            let path = setup.root().join(at);
            fs::remove_dir_all(&path).unwrap();
            let watched = match how {
                Plant::Symlink => {
                    std::os::unix::fs::symlink(&target, &path).unwrap();
                    vec![target.clone(), secret.clone(), path.clone()]
                }
                _ => plant(how, &path, &secret),
            };
            let before: Vec<Print> = watched.iter().map(|p| print(p)).collect();
            let out = crate::install::sh(
                &setup.dir.0.join("rel/install.sh"),
                &["--root", setup.root().to_str().unwrap()],
            );
            let said = text(&out);
            let after: Vec<Print> = watched.iter().map(|p| print(p)).collect();
            assert_eq!(before, after, "{at} {how:?}: {said}");
            let why = if how == Plant::Symlink {
                "a symbolic link where a folder is expected"
            } else {
                "not a folder"
            };
            assert!(
                said.contains(&format!("{}: {why}", path.display())),
                "{at} {how:?}: {said}"
            );
            assert_ne!(out.status.code(), Some(0), "{at} {how:?}: {said}");
        }
    }
}

/// A proxy that refuses every CONNECT with 407, on a free port; runs until the test binary ends.
fn refusing_proxy() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let mut reader = BufReader::new(&conn);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = (&conn).write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// The proxy password of these tests, in two halves: neither may show anywhere.
const PW_HALVES: [&str; 2] = ["Pr0xyPa55", "w0rdXyz"];

/// One way of giving lc a proxy: the [delivery] line, and the environment.
struct ProxyForm {
    what: &'static str,
    config: String,
    env: Vec<(&'static str, String)>,
}

fn proxy_forms(port: u16) -> Vec<ProxyForm> {
    let [a, b] = PW_HALVES;
    let env = |name: &'static str, scheme: &str| ProxyForm {
        what: name,
        config: String::new(),
        env: vec![(name, format!("{scheme}lcuser:{a}{b}@127.0.0.1:{port}"))],
    };
    vec![
        ProxyForm {
            what: "config",
            config: format!("proxy = http://lcuser:{a}{b}@127.0.0.1:{port}"),
            env: vec![],
        },
        ProxyForm {
            what: "config, quoted with ` ;`",
            config: format!("proxy = \"http://lcuser:{a} ;{b}@127.0.0.1:{port}\" ; quoted"),
            env: vec![],
        },
        env("HTTPS_PROXY", "http://"),
        env("HTTPS_PROXY", ""),
        env("https_proxy", "http://"),
        env("https_proxy", ""),
    ]
}

#[track_caller]
fn assert_no_password(what: &str, text: &str) {
    for half in PW_HALVES {
        assert!(
            !text.contains(half),
            "{what}: the proxy password shows:\n{text}"
        );
    }
}

/// Starts `lc run` delivering through `form` at `level`, sends a line, waits for the failed
/// delivery to be in the status, and checks every output for the password.
fn run_with_proxy(form: &ProxyForm, level: &str, journal: bool) {
    let what = format!(
        "{} at {level}{}",
        form.what,
        if journal { " (journal)" } else { "" }
    );
    let dir = TempDir::new("proxy-secret");
    let token = dir.0.join("token");
    fs::write(&token, "t0ken-for-tests\n").unwrap();
    // The console is never reached: the proxy refuses first.
    let delivery = format!(
        "url = https://127.0.0.1:{}\ntoken_file = {}\nno_proxy = nothing.invalid\n{}",
        closed_port(),
        token.display(),
        form.config
    );
    let config = dir.0.join("lc.ini");
    fs::write(
        &config,
        crate::harness::config_with(&dir.0, "rotate_secs = 1", "", &delivery)
            .replace("log_level = debug", &format!("log_level = {level}"))
            + &crate::harness::source("asa", "syslog-udp", ""),
    )
    .unwrap();
    let mut env: Vec<(&str, &str)> = form.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    if journal {
        env.push(("JOURNAL_STREAM", "8:12345"));
    }
    let lc = crate::harness::Lc::attach_with_env(dir, config, &env);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<134>fw asa event 1", lc.addr("asa", "udp"))
        .unwrap();
    crate::harness::wait_for(30, "a failed delivery in the status", || {
        !lc.source_status("asa")["last_error"].is_null()
    });
    let status = Command::new(LC)
        .args(["status", "--json", "--config"])
        .arg(&lc.config)
        .output()
        .unwrap();
    assert_no_password(&what, &text(&status));
    assert_no_password(
        &what,
        &fs::read_to_string(lc.dir.0.join("run/all.json")).unwrap(),
    );
    let log = lc.log();
    assert_no_password(&what, &log);
    if level == "trace" {
        // Trace shows ureq's own lines: the test saw what it means to check.
        assert!(
            log.contains("via proxy lcuser:***@") || log.contains("via proxy http://lcuser:***@"),
            "{what}: {log}"
        );
    }
    // lc connect says which proxy it tried, password hidden.
    let given = lc.dir.0.join("token.txt");
    fs::write(&given, "t0ken-for-tests\n").unwrap();
    let mut connect = Command::new(LC);
    connect
        .args(["connect", "--config"])
        .arg(&lc.config)
        .arg("--token-file")
        .arg(&given)
        .arg(format!("127.0.0.1:{}", closed_port()));
    for (k, v) in &form.env {
        connect.env(k, v);
    }
    let out = connect.output().unwrap();
    let said = text(&out);
    assert!(said.contains("via proxy"), "{what}: {said}");
    assert_no_password(&what, &said);
}

#[test]
fn a_proxy_password_never_shows_in_any_form_at_any_level() {
    let port = refusing_proxy();
    for form in proxy_forms(port) {
        run_with_proxy(&form, "trace", true);
    }
    let forms = proxy_forms(port);
    for level in ["error", "warn", "info", "debug", "trace"] {
        run_with_proxy(&forms[1], level, false);
    }
}

#[test]
fn config_check_says_when_a_value_looks_cut() {
    let dir = TempDir::new("cut");
    let [a, b] = PW_HALVES;
    let config = dir.0.join("lc.ini");
    fs::write(
        &config,
        base_config(&dir.0, "", "") + &format!("proxy = http://lcuser:{a} ;{b}@127.0.0.1:3128\n"),
    )
    .unwrap();
    let out = crate::harness::lc_with_config(&config, &["config", "check"]);
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "{}:14: warning: the value of \"proxy\" ends where ` ;` or ` #` starts a comment",
            config.display()
        )),
        "{said}"
    );
    assert_no_password("config check", &said);
}

/// Regression (issue 11): a pid file of the service's, locked, with the pid of a root process
/// in it made `lc certs reload` (and `lc connect`) send that process SIGHUP. Only a process that
/// is an `lc run` of the pid file's owner is signalled; the rest is refused and named.
#[test]
fn lc_certs_reload_signals_no_process_a_planted_pid_file_names() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    let dir = TempDir::new("pid-plant");
    let config = service_config(&dir.0, "");
    // The victim: a root process that SIGHUP would end.
    let mut victim = Command::new("sleep").arg("300").spawn().unwrap();
    let pid_file = dir.0.join("run/evil.pid");
    fs::write(&pid_file, format!("{}\n", victim.id())).unwrap();
    chown(&pid_file, SERVICE);
    // The service holds the lock, as a running instance does.
    let mut holder = Command::new("flock")
        .arg(&pid_file)
        .args(["sleep", "300"])
        .spawn()
        .unwrap();
    crate::harness::wait_for(10, "the pid file locked", || {
        let f = fs::File::open(&pid_file).unwrap();
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockSharedNonblock).is_err()
    });
    let (out, hung) = output_within(
        Command::new(LC)
            .args(["certs", "reload", "--config"])
            .arg(&config),
        20,
    );
    let said = text(&out);
    let victim_alive = victim.try_wait().unwrap().is_none();
    let _ = victim.kill();
    let _ = holder.kill();
    let _ = victim.wait();
    let _ = holder.wait();
    assert!(!hung, "lc certs reload hung: {said}");
    assert!(victim_alive, "the planted pid was signalled: {said}");
    assert!(
        said.contains(&format!(
            "{}: pid {} is not an lc instance",
            pid_file.display(),
            victim.id()
        )),
        "{said}"
    );
    assert_ne!(out.status.code(), Some(0), "{said}");
}

/// `lc status` as root reads the snapshots in run_dir: a planted one is refused, named and
/// skipped, and the other instances are still shown.
#[test]
fn lc_status_skips_a_planted_snapshot() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    for how in PLANTS {
        let dir = TempDir::new("status-plant");
        let config = service_config(&dir.0, "");
        let secret = root_secret(&dir.0);
        let run = dir.0.join("run");
        fs::write(
            run.join("good.json"),
            r#"{"instance": "good", "running": false, "updated": 1, "sources": []}"#,
        )
        .unwrap();
        chown(&run.join("good.json"), SERVICE);
        let at = run.join("planted.json");
        let watched = plant(how, &at, &secret);
        let before: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        for json in [false, true] {
            let mut cmd = Command::new(LC);
            cmd.arg("status")
                .args(json.then_some("--json"))
                .arg("--config")
                .arg(&config);
            let (out, hung) = output_within(&mut cmd, 20);
            let said = text(&out);
            assert!(!hung, "{how:?}: lc status hung");
            assert_eq!(out.status.code(), Some(0), "{how:?}: {said}");
            assert!(said.contains("good"), "{how:?}: {said}");
            assert!(!said.contains("root's secret"), "{how:?}: {said}");
            assert!(
                String::from_utf8_lossy(&out.stderr)
                    .contains(&format!("{}: refused: ", at.display())),
                "{how:?}: {said}"
            );
        }
        let after: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        assert_eq!(before, after, "{how:?}");
    }
}

/// `lc tail` as root reads the service's spool and backup: a planted segment is refused, named
/// and skipped; a huge one (a service's file like any segment) is read with bounded memory.
#[test]
fn lc_tail_skips_a_planted_segment() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    for how in PLANTS {
        let dir = TempDir::new("tail-plant");
        let config = service_config(&dir.0, &crate::harness::source("asa", "syslog-udp", ""));
        let secret = root_secret(&dir.0);
        let backup = dir.0.join("state/backup/asa");
        fs::create_dir_all(&backup).unwrap();
        chown(&dir.0.join("state/backup"), SERVICE);
        chown(&backup, SERVICE);
        let good = backup.join("0000000001-20260101T000000Z.log");
        fs::write(&good, "a good line\n").unwrap();
        chown(&good, SERVICE);
        let at = backup.join("0000000002-20260101T000100Z.log");
        let watched = plant(how, &at, &secret);
        let before: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        let (out, hung) = output_within(
            Command::new(LC)
                .args(["tail", "asa", "--config"])
                .arg(&config),
            30,
        );
        let said = text(&out);
        assert!(!hung, "{how:?}: lc tail hung");
        assert_eq!(out.status.code(), Some(0), "{how:?}: {said}");
        assert!(!said.contains("root's secret"), "{how:?}: {said}");
        if how == Plant::Huge {
            assert!(
                out.stdout.len() <= (1 << 20) + 100,
                "{how:?}: {} bytes",
                out.stdout.len()
            );
        } else {
            assert!(said.contains("a good line"), "{how:?}: {said}");
            assert!(
                said.contains(&format!("{}: refused: ", at.display())),
                "{how:?}: {said}"
            );
        }
        let after: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        assert_eq!(before, after, "{how:?}");
    }
}

/// `lc passwd` as root with passwd_file in a folder the service can write: a planted file is
/// refused and named, never read through, replaced or waited on.
#[test]
fn lc_passwd_refuses_a_planted_passwd_file() {
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    for how in PLANTS {
        let dir = TempDir::new("passwd-plant");
        let at = dir.0.join("state/ftp/ftp.passwd");
        let config = service_config(&dir.0, &format!("[ftp]\npasswd_file = {}\n", at.display()));
        let secret = root_secret(&dir.0);
        let watched = plant(how, &at, &secret);
        let before: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        for args in [
            &["passwd", "--list"][..],
            &["passwd", "--stdin", "discovery"],
        ] {
            let mut cmd = Command::new(LC);
            cmd.args(args).arg("--config").arg(&config);
            let (out, hung) = output_within(&mut cmd, 30);
            let said = text(&out);
            assert!(!hung, "{how:?} {args:?}: lc passwd hung");
            assert_ne!(out.status.code(), Some(0), "{how:?} {args:?}: {said}");
            assert!(
                said.contains(&format!("{}: cannot read: refused: ", at.display())),
                "{how:?} {args:?}: {said}"
            );
        }
        let after: Vec<Print> = watched.iter().map(|p| print(p)).collect();
        assert_eq!(before, after, "{how:?}");
    }
}

/// The query parameter `name` of `url`, as it is written there (percent-encoded).
fn query_param(url: &str, name: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in {url}"))
        .to_string()
}

/// A portal whose error body echoes the request (a done_upload's uploadUrl, SAS signature
/// included): the signature never reaches stderr, `lc status --json` or the status file.
#[test]
fn a_sas_signature_echoed_in_an_error_body_never_shows() {
    let cloud = crate::cloud::Cloud::start(&["asa"]);
    cloud.faults(r#"{"done_upload": ["echo:500"]}"#);
    let dir = TempDir::new("sas-echo");
    let delivery = cloud.delivery_config(&dir.0, "");
    let config = dir.0.join("lc.ini");
    fs::write(
        &config,
        crate::harness::config_with(&dir.0, "rotate_secs = 1", "", &delivery)
            .replace("log_level = debug", "log_level = trace")
            + &crate::harness::source("asa", "syslog-udp", ""),
    )
    .unwrap();
    let lc = crate::harness::Lc::attach(dir, config);
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"<134>fw asa event 1", lc.addr("asa", "udp"))
        .unwrap();
    // What lc showed while the echoed error was its last one.
    let mut seen = Vec::new();
    crate::harness::wait_for(60, "the echoed error in the status", || {
        let e = lc.source_status("asa")["last_error"]["error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if !e.contains("cannot use this request") {
            return false;
        }
        let status = Command::new(LC)
            .args(["status", "--json", "--config"])
            .arg(&lc.config)
            .output()
            .unwrap();
        seen.push(text(&status));
        seen.push(fs::read_to_string(lc.dir.0.join("run/all.json")).unwrap());
        true
    });
    // The retry with the same URL is accepted: now the test knows the signature.
    crate::harness::wait_for(60, "the file delivered", || !cloud.uploads().is_empty());
    let url = cloud.uploads()[0]["uploadUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let sig = query_param(&url, "sig");
    let decoded = sig
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    assert!(sig.len() > 20, "{url}");
    seen.push(lc.log());
    for text in &seen {
        assert!(
            !text.contains(&sig) && !text.contains(&decoded),
            "the SAS signature {sig} shows:\n{text}"
        );
    }
    assert!(seen[0].contains("cannot use this request"), "{}", seen[0]);
}

/// Root running `lc run` (as these tests do) lists FTP uploads from their `.name` sidecars in
/// the spool, which the service can write: a planted sidecar is not followed, waited on or read
/// whole, the instance starts and lists the rest, and says which sidecar it skipped.
#[test]
fn planted_name_sidecars_in_the_spool_are_skipped_by_a_running_lc() {
    use crate::ftp::{Delivery, Ftp};
    assert!(nix::unistd::geteuid().is_root(), "this test needs root");
    let mut ftp = Ftp::start("sidecar-plant", "", Delivery::Never);
    let (first, last) = ftp.logged_in().store("/squid/kept.log", b"a line\n");
    assert!(last.starts_with("226"), "{first} / {last}");
    let spool = ftp.lc.state().join("spool/squid");
    let sidecar = fs::read_dir(&spool)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "name"))
        .expect("a .name sidecar in the spool");
    let original = fs::read(&sidecar).unwrap();
    let secret = root_secret(&ftp.lc.dir.0);
    // The secret, were it a sidecar, would list a file named after its first line.
    fs::write(&secret, b"root-secret.log\n7\n").unwrap();
    let quarantined = spool.join("quarantine").join(sidecar.file_name().unwrap());
    for how in PLANTS {
        fs::remove_file(&sidecar).unwrap();
        plant(how, &sidecar, &secret);
        let (target, planted) = (print(&secret), print(&sidecar));
        // Started with that spool.
        ftp.restart();
        let listed = ftp.logged_in().nlst("/squid");
        let log = ftp.lc.log();
        assert_eq!(print(&secret), target, "{how:?}: {log}");
        // At start a link, FIFO or hard link named like a segment is moved to quarantine/
        // untouched (spool/recover.rs); a regular file is refused when the folder is listed.
        let (moved, said) = if quarantined.symlink_metadata().is_ok() {
            (&quarantined, "not lc's own segment; moved to")
        } else {
            (&sidecar, "refused: ")
        };
        assert_eq!(print(moved), planted, "{how:?}: {log}");
        assert!(
            log.contains(&format!("{}: ", sidecar.display())) && log.contains(said),
            "{how:?}: {log}"
        );
        let listed = listed.unwrap_or_else(|e| panic!("{how:?}: NLST: {e}"));
        assert!(listed.is_empty(), "{how:?}: listed {listed:?}");
        fs::remove_file(moved).unwrap();
        fs::write(&sidecar, &original).unwrap();
    }
    // Put back, the sidecar lists its upload again.
    ftp.restart();
    assert_eq!(ftp.logged_in().nlst("/squid").unwrap(), ["kept.log"]);
}
