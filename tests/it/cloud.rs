//! The peers of cloud delivery tests: a test CA made with openssl, Azurite (a real Azure Blob
//! Storage emulator), the Cloud Discovery stand-in (`tests/standin/cloud_discovery.py`), and two
//! real proxies, tinyproxy (CONNECT with basic auth) and mitmproxy (TLS inspection with its own
//! CA). Each runs as a process of the test's own on 127.0.0.1, with its own temp dir, and is
//! killed on drop. What lc does with them is left to the delivery tests; the tests at the bottom
//! prove the peers themselves, with curl as the client.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::harness::{peer, run, wait_for, TempDir};

/// The stand-in's interpreter: the venv scripts/deps.sh makes, which has azure-storage-blob.
const VENV_PYTHON: &str = "/opt/lc-peers/venv/bin/python";
const STANDIN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/standin/cloud_discovery.py"
);

/// How long a peer gets to start before the test fails.
const START_SECS: u64 = 30;

/// A port that was free a moment ago, for programs that cannot be given port 0 (tinyproxy).
/// Callers retry on the rare bind failure.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// 32 random bytes as hex, for tokens.
fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    use std::io::Read;
    fs::File::open("/dev/urandom")
        .unwrap()
        .read_exact(&mut bytes)
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Panics with `log` if `child` has exited.
#[track_caller]
fn assert_running(child: &mut Child, what: &str, log: &Path) {
    if let Some(st) = child.try_wait().unwrap() {
        panic!("{what} exited with {st}; its log:\n{}", read_lossy(log));
    }
}

/// SIGTERM, up to `grace` for it to exit, then SIGKILL.
fn terminate(mut child: Child, grace: Duration) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn kill_now(child: Option<Child>) {
    if let Some(mut c) = child {
        let _ = c.kill();
        let _ = c.wait();
    }
}

// -- certificates ---------------------------------------------------------------------------------

/// A CA and one server certificate it signed, for `127.0.0.1` and `localhost` (SANs), both
/// P-256, valid for two days; files in the caller's dir.
pub struct TestCa {
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        let p = |name: &str| dir.join(name);
        let ca = TestCa {
            ca_pem: p("ca.pem"),
            cert: p("server.pem"),
            key: p("server.key"),
        };
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec"])
            .args([
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
            ])
            .args(["-subj", "/CN=lc test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            .arg("-keyout")
            .arg(p("ca.key"))
            .arg("-out")
            .arg(&ca.ca_pem)
            .stderr(Stdio::null()));
        run(Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec"])
            .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
            .args(["-subj", "/CN=127.0.0.1"])
            .arg("-keyout")
            .arg(&ca.key)
            .arg("-out")
            .arg(p("server.csr"))
            .stderr(Stdio::null()));
        // webpki wants a v3 end-entity certificate with SANs, not a CA, for serverAuth.
        fs::write(
            p("server.ext"),
            "subjectAltName = IP:127.0.0.1, DNS:localhost\n\
             basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-set_serial", "2"])
            .arg("-in")
            .arg(p("server.csr"))
            .arg("-CA")
            .arg(&ca.ca_pem)
            .arg("-CAkey")
            .arg(p("ca.key"))
            .arg("-extfile")
            .arg(p("server.ext"))
            .arg("-out")
            .arg(&ca.cert)
            .stderr(Stdio::null()));
        ca
    }
}

// -- Azurite ---------------------------------------------------------------------------------------

/// Azurite's blob service with its own data dir. Its account is `devstoreaccount1` with the
/// well-known key; URLs are path-style: `{url}/devstoreaccount1/CONTAINER/BLOB`.
pub struct Azurite {
    dir: TempDir,
    tls: Option<(PathBuf, PathBuf)>,
    port: u16,
    child: Option<Child>,
}

impl Azurite {
    /// Plain HTTP.
    pub fn start() -> Azurite {
        Azurite::launch(None)
    }

    /// HTTPS with `ca`'s server certificate.
    pub fn start_tls(ca: &TestCa) -> Azurite {
        Azurite::launch(Some((ca.cert.clone(), ca.key.clone())))
    }

    fn launch(tls: Option<(PathBuf, PathBuf)>) -> Azurite {
        let mut a = Azurite {
            dir: TempDir::new("azurite"),
            tls,
            port: 0,
            child: None,
        };
        a.spawn();
        a
    }

    fn log_path(&self) -> PathBuf {
        self.dir.0.join("azurite.log")
    }

    /// Starts Azurite on `self.port` (0 the first time: Azurite takes it and prints the port).
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "azurite already running");
        const READY: &str = "successfully listens on ";
        let seen = read_lossy(&self.log_path()).matches(READY).count();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut cmd = Command::new(peer("azurite-blob"));
        cmd.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &self.port.to_string(),
        ])
        .arg("--location")
        .arg(self.dir.0.join("data"))
        // --skipApiVersionCheck: azure-storage-blob (the stand-in) and SAS tokens name a
        // newer x-ms-version / sv than this Azurite knows, which it refuses otherwise.
        // --loose: ignore headers Azurite does not implement rather than fail on them.
        .args([
            "--silent",
            "--loose",
            "--skipApiVersionCheck",
            "--disableTelemetry",
        ]);
        if let Some((cert, key)) = &self.tls {
            cmd.arg("--cert").arg(cert).arg("--key").arg(key);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let log_path = self.log_path();
        wait_for(START_SECS, "azurite listening", || {
            assert_running(&mut child, "azurite", &log_path);
            read_lossy(&log_path).matches(READY).count() > seen
        });
        if self.port == 0 {
            let text = read_lossy(&log_path);
            let line = text.lines().rfind(|l| l.contains(READY)).unwrap();
            self.port = line.rsplit(':').next().unwrap().trim().parse().unwrap();
        }
        self.child = Some(child);
    }

    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGTERM and wait: Azurite saves its metadata on the way out, so blobs survive a restart.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            terminate(c, Duration::from_secs(10));
        }
    }

    /// Stops it if it runs, then starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub fn log(&self) -> String {
        read_lossy(&self.log_path())
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        kill_now(self.child.take());
    }
}

// -- the Cloud Discovery stand-in ----------------------------------------------------------------

/// The Cloud Discovery API as lc meets it: the stand-in on HTTPS with a test CA's certificate,
/// and an Azurite behind the SAS URLs it hands out, also on HTTPS with the same certificate, so
/// `ca_pem()` is all a client needs to trust. Or (`start_aws`) the stand-in answering
/// `provider: "aws"` with presigned PUT URLs to an S3 receiver of its own, on its own port. See
/// tests/standin/cloud_discovery.py for what it enforces.
pub struct Cloud {
    pub ca: TestCa,
    /// None with `provider: "aws"`: the stand-in is its own storage then.
    azurite: Option<Azurite>,
    dir: TempDir,
    child: Option<Child>,
    port: u16,
    token: String,
    record: PathBuf,
    stderr: PathBuf,
}

impl Cloud {
    /// Data sources `streams`, the tenant's 30 calls a minute, SAS URLs valid for an hour.
    pub fn start(streams: &[&str]) -> Cloud {
        Cloud::start_with(streams, 30, 3600)
    }

    pub fn start_with(streams: &[&str], calls_per_min: u32, sas_ttl_secs: u64) -> Cloud {
        Cloud::launch(streams, calls_per_min, sas_ttl_secs, false)
    }

    /// Like `start`, but upload_url answers `provider: "aws"`: presigned PUT URLs to the
    /// stand-in's own S3 receiver (`blob()` reads its objects, `calls()["puts"]` lists each
    /// PUT's Content-Length and headers); no Azurite.
    pub fn start_aws(streams: &[&str]) -> Cloud {
        Cloud::launch(streams, 30, 3600, true)
    }

    fn launch(streams: &[&str], calls_per_min: u32, sas_ttl_secs: u64, aws: bool) -> Cloud {
        assert!(
            Path::new(VENV_PYTHON).exists(),
            "{VENV_PYTHON} is missing: run scripts/deps.sh (scripts/test.sh does)"
        );
        let dir = TempDir::new("cloud");
        let ca = TestCa::new(&dir.0);
        let azurite = (!aws).then(|| Azurite::start_tls(&ca));
        let token = random_hex();
        let record = dir.0.join("uploads.jsonl");
        let stderr = dir.0.join("standin.log");
        let mut cmd = Command::new(VENV_PYTHON);
        cmd.arg(STANDIN)
            .args([
                "--port",
                "0",
                "--token",
                &token,
                "--streams",
                &streams.join(","),
            ])
            .arg("--cert")
            .arg(&ca.cert)
            .arg("--key")
            .arg(&ca.key);
        match &azurite {
            Some(azurite) => cmd
                .args(["--azurite", &azurite.url()])
                .arg("--azurite-ca")
                .arg(&ca.ca_pem),
            None => cmd.args(["--provider", "aws"]),
        };
        let mut child = cmd
            .arg("--record")
            .arg(&record)
            .args(["--calls-per-min", &calls_per_min.to_string()])
            .args(["--sas-ttl", &sas_ttl_secs.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        // The first stdout line is `listening PORT`; read on a thread so that a stand-in that
        // hangs fails the test at the deadline instead of blocking it.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(START_SECS))
            .ok()
            .flatten();
        let port = match line.as_deref().and_then(|l| l.strip_prefix("listening ")) {
            Some(p) => p.trim().parse().unwrap(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the stand-in did not start (first line {line:?}); its log:\n{}",
                    read_lossy(&stderr)
                );
            }
        };
        Cloud {
            ca,
            azurite,
            dir,
            child: Some(child),
            port,
            token,
            record,
            stderr,
        }
    }

    /// `https://127.0.0.1:PORT`: lc's console URL.
    pub fn api_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA of both the API's and Azurite's certificate.
    pub fn ca_pem(&self) -> &Path {
        &self.ca.ca_pem
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// A dir for the test's own files, removed with the Cloud.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// Every successful done_upload so far, as the stand-in recorded it: `uploadUrl`, `blob`,
    /// `filename`, `source`, `inputStreamName`, `uploadAsSnapshot`, `size`, `url_at` (when
    /// upload_url handed its URL out), `at`, `duplicate`.
    pub fn uploads(&self) -> Vec<Value> {
        read_lossy(&self.record)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The bytes of blob `name` (an upload's `blob`: `UUID/FILENAME`) as Azurite stores them.
    #[track_caller]
    pub fn blob(&self, name: &str) -> Vec<u8> {
        let url = format!(
            "{}/_admin/blob?name={}",
            self.api_url(),
            percent_encode(name)
        );
        self.admin(self.curl().arg("-f").arg(url))
    }

    /// Queues faults, e.g. `{"upload_url": ["503", "reset"], "done_upload": ["hang:5"]}`.
    #[track_caller]
    pub fn faults(&self, json: &str) {
        let url = format!("{}/_admin/faults", self.api_url());
        self.admin(self.curl().args(["-f", "--data-binary", json]).arg(url));
    }

    /// Calls, statuses and answer times per endpoint (`upload_url`, `done_upload`, `streams`,
    /// and the S3 receiver's `put`: `{"calls": N, "statuses": [200, 429, "reset", ...], "at":
    /// [UNIX_SECS, ...]}`), `puts` (each PUT's `key`, `content_length`, `stored`, `status`,
    /// `headers`), `handed_out`, queued `faults` and `uploads`.
    #[track_caller]
    pub fn calls(&self) -> Value {
        let url = format!("{}/_admin/calls", self.api_url());
        serde_json::from_slice(&self.admin(self.curl().arg("-f").arg(url))).unwrap()
    }

    /// Clears faults, counters and the rate window (not the uploads or handed-out URLs).
    #[track_caller]
    pub fn reset(&self) {
        let url = format!("{}/_admin/reset", self.api_url());
        self.admin(self.curl().args(["-f", "-X", "POST"]).arg(url));
    }

    #[track_caller]
    pub fn azurite(&self) -> &Azurite {
        self.azurite.as_ref().expect("an aws cloud has no Azurite")
    }

    /// For `stop()` and `restart()`.
    #[track_caller]
    pub fn azurite_mut(&mut self) -> &mut Azurite {
        self.azurite.as_mut().expect("an aws cloud has no Azurite")
    }

    /// The `[delivery]` section's body for lc to deliver here, plus `extra` lines; the token
    /// is written into `dir`.
    pub fn delivery_config(&self, dir: &Path, extra: &str) -> String {
        self.delivery_config_at(&self.api_url(), dir, extra)
    }

    /// `delivery_config` with the console at `url` (a proxy's view of it, a wrong port).
    pub fn delivery_config_at(&self, url: &str, dir: &Path, extra: &str) -> String {
        let token = dir.join("token");
        fs::write(&token, format!("{}\n", self.token)).unwrap();
        format!(
            "url = {url}\ntoken_file = {}\nca_file = {}\n{extra}",
            token.display(),
            self.ca.ca_pem.display()
        )
    }

    /// The stand-in's request log.
    pub fn log(&self) -> String {
        read_lossy(&self.stderr)
    }

    /// Stops the API stand-in (Azurite stays): calls are refused from now on.
    pub fn stop_api(&mut self) {
        kill_now(self.child.take());
    }

    /// `curl -sS --cacert CA --max-time 20`: a client that trusts this cloud.
    pub fn curl(&self) -> Command {
        let mut c = Command::new("curl");
        c.args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&self.ca.ca_pem);
        c
    }

    #[track_caller]
    fn admin(&self, cmd: &mut Command) -> Vec<u8> {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?} failed: {}; stand-in log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        out.stdout
    }
}

impl Drop for Cloud {
    fn drop(&mut self) {
        kill_now(self.child.take());
    }
}

/// Percent-encodes all but RFC 3986 unreserved characters and `/`.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// -- proxies -------------------------------------------------------------------------------------

/// A tinyproxy of the test's own: 127.0.0.1 only, every CONNECT port allowed (no `ConnectPort`
/// line), optional basic auth, logging each request at level Info into its temp dir.
pub struct Tinyproxy {
    dir: TempDir,
    port: u16,
    user: Option<(String, String)>,
    child: Option<Child>,
}

impl Tinyproxy {
    /// `user` is (name, password) for `BasicAuth`; neither may contain spaces.
    pub fn start(user: Option<(&str, &str)>) -> Tinyproxy {
        let dir = TempDir::new("tinyproxy");
        let user = user.map(|(u, p)| (u.to_string(), p.to_string()));
        let log = dir.0.join("tinyproxy.log");
        // tinyproxy cannot be given port 0; a port taken between free_port and its bind makes
        // it exit, and another is tried.
        for _ in 0..5 {
            let port = free_port();
            let conf = dir.0.join("tinyproxy.conf");
            let auth = user
                .as_ref()
                .map(|(u, p)| format!("BasicAuth {u} {p}\n"))
                .unwrap_or_default();
            fs::write(
                &conf,
                format!(
                    "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 64\n\
                     LogFile \"{log}\"\nLogLevel Info\nPidFile \"{pid}\"\n\
                     Allow 127.0.0.1\nDisableViaHeader Yes\n{auth}",
                    log = log.display(),
                    pid = dir.0.join("tinyproxy.pid").display(),
                ),
            )
            .unwrap();
            let _ = fs::remove_file(&log);
            // -d: stay in the foreground, so the child is tinyproxy itself.
            let mut child = Command::new("tinyproxy")
                .arg("-d")
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tinyproxy (apt-get install tinyproxy; scripts/deps.sh does)");
            let mut exited = false;
            wait_for(START_SECS, "tinyproxy accepting connections", || {
                exited = child.try_wait().unwrap().is_some();
                exited || read_lossy(&log).contains("Accepting connections")
            });
            if !exited {
                return Tinyproxy {
                    dir,
                    port,
                    user,
                    child: Some(child),
                };
            }
        }
        panic!(
            "tinyproxy did not start in 5 tries; its last log:\n{}",
            read_lossy(&log)
        );
    }

    /// `http://[user:pass@]127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match &self.user {
            Some((u, p)) => format!("http://{u}:{p}@127.0.0.1:{}", self.port),
            None => self.url_without_auth(),
        }
    }

    pub fn url_without_auth(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The targets (`host:port`) of the CONNECT requests it logged, in order, including those
    /// it refused with 407.
    pub fn connects(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split("): CONNECT ").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    pub fn log(&self) -> String {
        read_lossy(&self.dir.0.join("tinyproxy.log"))
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        kill_now(self.child.take());
    }
}

/// Records what passes through mitmproxy as JSON lines in the file named by option `lc_events`:
/// one `{"event": "response", "method", "url", "status"}` per answered request,
/// `{"event": "tls_failed_client", "error"}` per client that refused its certificate, and
/// `{"event": "error", "url", "error"}` per request that got no answer from upstream.
const MITM_ADDON: &str = r#"
import json
import threading

from mitmproxy import ctx

_lock = threading.Lock()


def _write(event):
    with _lock, open(ctx.options.lc_events, "a", encoding="utf-8") as f:
        f.write(json.dumps(event) + "\n")


def load(loader):
    loader.add_option("lc_events", str, "", "file to append one JSON line per event to")


def response(flow):
    _write({"event": "response", "method": flow.request.method,
            "url": flow.request.pretty_url, "status": flow.response.status_code})


def error(flow):
    _write({"event": "error", "url": flow.request.pretty_url, "error": str(flow.error)})


def tls_failed_client(data):
    _write({"event": "tls_failed_client", "error": str(data.conn.error)})
"#;

/// mitmdump as an explicit (CONNECT) proxy on 127.0.0.1 that inspects TLS: clients must trust
/// `ca_pem()`. It trusts any upstream certificate (`ssl_insecure`), the stand-in's included.
pub struct Mitmproxy {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
}

impl Mitmproxy {
    pub fn start() -> Mitmproxy {
        let dir = TempDir::new("mitmproxy");
        let addon = dir.0.join("lc_events.py");
        fs::write(&addon, MITM_ADDON).unwrap();
        let log = dir.0.join("mitmdump.log");
        let out = fs::File::create(&log).unwrap();
        let mut child = Command::new(peer("mitmdump"))
            .args(["--listen-host", "127.0.0.1", "--listen-port", "0"])
            .args(["--set", "ssl_insecure=true"])
            .arg("--set")
            .arg(format!("confdir={}", dir.0.display()))
            .arg("-s")
            .arg(&addon)
            .arg("--set")
            .arg(format!(
                "lc_events={}",
                dir.0.join("events.jsonl").display()
            ))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        // It prints `HTTP(S) proxy listening at 127.0.0.1:PORT.` once bound; the CA it makes on
        // first start is written before that.
        const READY: &str = "proxy listening at 127.0.0.1:";
        let ca = dir.0.join("mitmproxy-ca-cert.pem");
        wait_for(START_SECS, "mitmdump listening with its CA", || {
            assert_running(&mut child, "mitmdump", &log);
            read_lossy(&log).contains(READY) && ca.exists()
        });
        let text = read_lossy(&log);
        let rest = text.split(READY).nth(1).unwrap();
        let port = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Mitmproxy {
            dir,
            port,
            child: Some(child),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The CA that signs the certificates it shows clients.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.0.join("mitmproxy-ca-cert.pem")
    }

    /// Every event the addon recorded (see `MITM_ADDON`).
    pub fn events(&self) -> Vec<Value> {
        read_lossy(&self.dir.0.join("events.jsonl"))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The requests it intercepted and answered: `{"method", "url", "status"}`.
    pub fn flows(&self) -> Vec<Value> {
        self.of_kind("response")
    }

    /// Clients that refused its certificate.
    pub fn tls_failures(&self) -> Vec<Value> {
        self.of_kind("tls_failed_client")
    }

    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == kind)
            .collect()
    }

    pub fn log(&self) -> String {
        read_lossy(&self.dir.0.join("mitmdump.log"))
    }
}

impl Drop for Mitmproxy {
    fn drop(&mut self) {
        kill_now(self.child.take());
    }
}

// -- the peers proven with curl -------------------------------------------------------------------

/// Runs `cmd` (a curl) with `extra` arguments; returns (exit code, HTTP status, Retry-After,
/// body).
fn curl_call(cmd: &mut Command, extra: &[&str]) -> (i32, u16, String, String) {
    let out: Output = cmd
        .args(extra)
        .args(["-w", "\n%{http_code} %header{retry-after}"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap_or(("", &text));
    let mut tail = tail.split(' ');
    let status = tail.next().unwrap_or("0").parse().unwrap_or(0);
    let retry_after = tail.next().unwrap_or("").to_string();
    (
        out.status.code().unwrap_or(-1),
        status,
        retry_after,
        body.to_string(),
    )
}

/// What a client sends for one file, as Microsoft documents it, done with curl through `via`
/// (extra curl arguments: a proxy, a CA). Returns the upload URL.
#[track_caller]
fn upload_with_curl(
    cloud: &Cloud,
    via: &[&str],
    filename: &str,
    stream: &str,
    body: &[u8],
) -> String {
    let auth = format!("Authorization: Token {}", cloud.token());
    let api = cloud.api_url();
    let (rc, status, _, answer) = curl_call(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(via),
        &[
            "-H",
            &auth,
            &format!("{api}/api/v1/discovery/upload_url/?filename={filename}&source=GENERIC_CEF"),
        ],
    );
    assert_eq!(
        (rc, status),
        (0, 200),
        "upload_url: {answer}\n{}",
        cloud.log()
    );
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["provider"], "azure");
    let url = answer["url"].as_str().unwrap().to_string();

    let file = cloud.dir().join(filename);
    fs::write(&file, body).unwrap();
    let (rc, status, _, answer) = curl_call(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(via),
        &[
            "-T",
            file.to_str().unwrap(),
            "-H",
            "x-ms-blob-type: BlockBlob",
            &url,
        ],
    );
    assert_eq!(
        (rc, status),
        (0, 201),
        "PUT {url}: {answer}\n{}",
        cloud.azurite().log()
    );

    let done =
        serde_json::json!({"uploadUrl": url, "inputStreamName": stream, "uploadAsSnapshot": false});
    let (rc, status, _, answer) = curl_call(
        Command::new("curl")
            .args(["-sS", "--max-time", "20"])
            .args(via),
        &[
            "-H",
            &auth,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &done.to_string(),
            &format!("{api}/api/v1/discovery/done_upload/"),
        ],
    );
    assert_eq!(
        (rc, status),
        (0, 200),
        "done_upload: {answer}\n{}",
        cloud.log()
    );
    assert_eq!(answer, r#"{"success": true}"#);
    url
}

#[test]
fn standin_records_a_curl_upload_and_azurite_holds_the_bytes() {
    let cloud = Cloud::start(&["asa", "pan"]);
    let ca = cloud.ca_pem().to_str().unwrap().to_string();
    let body: Vec<u8> = (0..100_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let url = upload_with_curl(
        &cloud,
        &["--cacert", &ca],
        "asa_0000000001.log.gz",
        "asa",
        &body,
    );

    // A SAS for one blob, allowing create and write only, with an expiry.
    let prefix = format!("{}/devstoreaccount1/discovery/", cloud.azurite().url());
    assert!(url.starts_with(&prefix), "{url}");
    for part in ["sr=b", "sp=cw", "se=", "sv=", "sig="] {
        assert!(url.contains(part), "{part} in {url}");
    }

    let ups = cloud.uploads();
    assert_eq!(ups.len(), 1, "{ups:?}");
    let up = &ups[0];
    assert_eq!(up["uploadUrl"], url.as_str());
    assert_eq!(up["filename"], "asa_0000000001.log.gz");
    assert_eq!(up["source"], "GENERIC_CEF");
    assert_eq!(up["inputStreamName"], "asa");
    assert_eq!(up["uploadAsSnapshot"], false);
    assert_eq!(up["size"], body.len());
    assert_eq!(up["duplicate"], false);
    let blob = up["blob"].as_str().unwrap();
    assert!(blob.ends_with("/asa_0000000001.log.gz"), "{blob}");
    assert!(cloud.blob(blob) == body, "blob read back differs");

    // The streams listing names the data sources.
    let streams = run(cloud
        .curl()
        .args([
            "-f",
            "-H",
            &format!("Authorization: Token {}", cloud.token()),
        ])
        .arg(format!("{}/api/discovery/streams/", cloud.api_url())));
    let streams: Value = serde_json::from_str(&streams).unwrap();
    let names: Vec<&str> = streams["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["asa", "pan"]);

    // A second done_upload for the same URL is accepted and marked.
    let done =
        serde_json::json!({"uploadUrl": url, "inputStreamName": "asa", "uploadAsSnapshot": false});
    run(cloud
        .curl()
        .args([
            "-f",
            "-H",
            &format!("Authorization: Token {}", cloud.token()),
        ])
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(done.to_string())
        .arg(format!("{}/api/v1/discovery/done_upload/", cloud.api_url())));
    let ups = cloud.uploads();
    assert_eq!(ups.len(), 2);
    assert_eq!(ups[1]["duplicate"], true);

    let calls = cloud.calls();
    assert_eq!(calls["upload_url"]["statuses"], serde_json::json!([200]));
    assert_eq!(
        calls["done_upload"]["statuses"],
        serde_json::json!([200, 200])
    );
    assert_eq!(calls["streams"]["calls"], 1);
    assert_eq!(calls["uploads"].as_array().unwrap().len(), 2);
}

/// One call with `headers` (empty ones left out) and, when given, a POST `body`; asserts the
/// status and that the JSON error contains `error`.
#[track_caller]
fn check(
    cloud: &Cloud,
    headers: &[&str],
    path: &str,
    body: Option<&str>,
    status: u16,
    error: &str,
) {
    let mut cmd = cloud.curl();
    for h in headers.iter().filter(|h| !h.is_empty()) {
        cmd.args(["-H", h]);
    }
    if let Some(b) = body {
        cmd.args(["--data-binary", b]);
    }
    let (rc, got, _, answer) = curl_call(&mut cmd, &[&format!("{}{path}", cloud.api_url())]);
    assert_eq!(
        (rc, got),
        (0, status),
        "{headers:?} {path} {body:?}: {answer}"
    );
    let answer: Value = serde_json::from_str(&answer).unwrap();
    let msg = answer["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains(error),
        "{path} {body:?}: {msg:?} lacks {error:?}"
    );
}

#[test]
fn standin_refuses_what_the_api_refuses() {
    const UPLOAD: &str = "/api/v1/discovery/upload_url/?filename=f.gz&source=GENERIC_CEF";
    const NO_SOURCE: &str = "/api/v1/discovery/upload_url/?filename=f.gz";
    const NO_SLASH: &str = "/api/v1/discovery/upload_url?filename=f.gz&source=GENERIC_CEF";
    const DONE: &str = "/api/v1/discovery/done_upload/";
    const STREAMS: &str = "/api/discovery/streams/";
    const JSON: &str = "Content-Type: application/json";
    let cloud = Cloud::start(&["asa"]);
    let ok = &format!("Authorization: Token {}", cloud.token());
    let get = |auth: &str, path: &str, status: u16, error: &str| {
        check(&cloud, &[auth], path, None, status, error)
    };
    let done = |ctype: &str, body: &str, error: &str| {
        check(&cloud, &[ok, ctype], DONE, Some(body), 400, error)
    };

    get("", UPLOAD, 401, "Invalid token");
    get("Authorization: Token nope", UPLOAD, 401, "Invalid token");
    get("Authorization: Bearer x", STREAMS, 401, "Invalid token");
    get(ok, NO_SOURCE, 400, "filename and source are required");
    get(ok, NO_SLASH, 404, "no such endpoint");
    check(&cloud, &[ok], STREAMS, Some("{}"), 405, "takes GET");

    let handed = run(cloud
        .curl()
        .args(["-f", "-H", ok])
        .arg(cloud.api_url() + UPLOAD));
    let handed: Value = serde_json::from_str(&handed).unwrap();
    let url = handed["url"].as_str().unwrap();
    let body = |stream: Value, snapshot: Value, extra: Option<&str>| {
        let mut b = serde_json::json!({"uploadUrl": url, "inputStreamName": stream});
        if !snapshot.is_null() {
            b["uploadAsSnapshot"] = snapshot;
        }
        if let Some(k) = extra {
            b[k] = Value::from(1);
        }
        b.to_string()
    };
    let (asa, no) = (Value::from("asa"), Value::from(false));
    let good = body(asa.clone(), no.clone(), None);
    let elsewhere = good.replace(url, "https://x/y");
    done(
        JSON,
        &body("pan".into(), no.clone(), None),
        "unknown data source pan",
    );
    done(JSON, &elsewhere, "not handed out");
    // Handed out, but nothing was PUT there.
    done(JSON, &good, "no uploaded file");
    done(
        JSON,
        &body(asa.clone(), no.clone(), Some("x")),
        "unexpected ['x']",
    );
    done(
        JSON,
        &body(asa.clone(), Value::Null, None),
        "missing ['uploadAsSnapshot']",
    );
    done(
        JSON,
        &body(asa, "false".into(), None),
        "uploadAsSnapshot must be a bool",
    );
    done(
        JSON,
        &body(1.into(), no, None),
        "inputStreamName must be a str",
    );
    done(JSON, "[1", "not JSON");
    done("", &good, "Content-Type must be application/json");
    assert!(cloud.uploads().is_empty());
}

#[test]
fn standin_answers_429_with_retry_after_past_the_rate() {
    let cloud = Cloud::start_with(&["asa"], 3, 3600);
    let streams = format!("{}/api/discovery/streams/", cloud.api_url());
    let auth = format!("Authorization: Token {}", cloud.token());
    for _ in 0..3 {
        let (rc, status, _, _) = curl_call(&mut cloud.curl(), &["-H", &auth, &streams]);
        assert_eq!((rc, status), (0, 200));
    }
    let (rc, status, retry_after, body) = curl_call(&mut cloud.curl(), &["-H", &auth, &streams]);
    assert_eq!((rc, status), (0, 429), "{body}");
    let secs: u64 = retry_after.parse().unwrap();
    assert!((1..=60).contains(&secs), "Retry-After {retry_after}");
    assert_eq!(
        cloud.calls()["streams"]["statuses"],
        serde_json::json!([200, 200, 200, 429])
    );
    // Unauthenticated calls are refused before the budget is consulted.
    let (_, status, _, _) = curl_call(&mut cloud.curl(), &[&streams]);
    assert_eq!(status, 401);
    cloud.reset();
    let (_, status, _, _) = curl_call(&mut cloud.curl(), &["-H", &auth, &streams]);
    assert_eq!(status, 200, "reset empties the window");
}

#[test]
fn standin_fault_queue_answers_in_order() {
    let cloud = Cloud::start(&["asa"]);
    let auth = format!("Authorization: Token {}", cloud.token());
    let upload_url = format!(
        "{}/api/v1/discovery/upload_url/?filename=f.gz&source=GENERIC_CEF",
        cloud.api_url()
    );
    let streams = format!("{}/api/discovery/streams/", cloud.api_url());
    cloud.faults(r#"{"upload_url": ["503", "reset", "429"], "streams": ["hang:3"]}"#);

    let (rc, status, retry_after, body) = curl_call(&mut cloud.curl(), &["-H", &auth, &upload_url]);
    assert_eq!((rc, status, retry_after.as_str()), (0, 503, "1"), "{body}");
    assert!(body.contains("injected fault 503"), "{body}");
    // curl's 56: failure receiving data (connection reset by peer).
    let (rc, status, _, _) = curl_call(&mut cloud.curl(), &["-H", &auth, &upload_url]);
    assert_eq!((rc, status), (56, 0));
    let (_, status, retry_after, _) = curl_call(&mut cloud.curl(), &["-H", &auth, &upload_url]);
    assert_eq!((status, retry_after.as_str()), (429, "1"));
    let (rc, status, _, _) = curl_call(&mut cloud.curl(), &["-H", &auth, &upload_url]);
    assert_eq!((rc, status), (0, 200), "the queue is used up");

    // curl's 28: its own timeout, while the stand-in holds the answer back.
    let (rc, _, _, _) = curl_call(
        &mut cloud.curl(),
        &["--max-time", "0.5", "-H", &auth, &streams],
    );
    assert_eq!(rc, 28);
    let calls = cloud.calls();
    assert_eq!(
        calls["upload_url"]["statuses"],
        serde_json::json!([503, "reset", 429, 200])
    );
    assert_eq!(calls["streams"]["calls"], 1);
    assert_eq!(calls["faults"]["streams"], serde_json::json!([]));
}

#[test]
fn azurite_keeps_blobs_across_a_restart_and_refuses_while_stopped() {
    let mut cloud = Cloud::start(&["asa"]);
    let ca = cloud.ca_pem().to_str().unwrap().to_string();
    upload_with_curl(&cloud, &["--cacert", &ca], "a.gz", "asa", b"first\n");
    let blob = cloud.uploads()[0]["blob"].as_str().unwrap().to_string();

    cloud.azurite_mut().stop();
    assert!(!cloud.azurite().is_running());
    let put = cloud.dir().join("b.gz");
    fs::write(&put, b"second\n").unwrap();
    // curl's 7: connection refused.
    let (rc, _, _, _) = curl_call(
        &mut cloud.curl(),
        &[
            "-T",
            put.to_str().unwrap(),
            &format!("{}/devstoreaccount1/discovery/x", cloud.azurite().url()),
        ],
    );
    assert_eq!(rc, 7);

    cloud.azurite_mut().restart();
    assert_eq!(cloud.blob(&blob), b"first\n");
    upload_with_curl(&cloud, &["--cacert", &ca], "b.gz", "asa", b"second\n");
    assert_eq!(cloud.uploads().len(), 2);
}

#[test]
fn tinyproxy_tunnels_an_upload_with_basic_auth_and_refuses_without() {
    let cloud = Cloud::start(&["asa"]);
    let proxy = Tinyproxy::start(Some(("lc", "s3cret")));
    let ca = cloud.ca_pem().to_str().unwrap().to_string();
    let proxy_url = proxy.url();
    upload_with_curl(
        &cloud,
        &["--cacert", &ca, "-x", &proxy_url],
        "p.gz",
        "asa",
        b"via proxy\n",
    );
    let api = format!("127.0.0.1:{}", cloud.port());
    let blob = format!("127.0.0.1:{}", cloud.azurite().port());
    assert_eq!(proxy.connects(), [api.clone(), blob, api]);

    // curl's 56: the proxy answered CONNECT with an error, here 407.
    let out = cloud
        .curl()
        .args([
            "-o",
            "/dev/null",
            "-w",
            "%{http_connect}",
            "-x",
            &proxy.url_without_auth(),
        ])
        .arg(format!("{}/api/discovery/streams/", cloud.api_url()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(56));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "407");
    assert_eq!(proxy.connects().len(), 4, "a refused CONNECT is logged too");
    assert_eq!(
        cloud.calls()["streams"]["calls"],
        0,
        "nothing reached the API"
    );
}

#[test]
fn mitmproxy_intercepts_tls_for_clients_that_trust_its_ca() {
    let cloud = Cloud::start(&["asa"]);
    let mitm = Mitmproxy::start();
    let streams = format!("{}/api/discovery/streams/", cloud.api_url());
    let auth = format!("Authorization: Token {}", cloud.token());

    // Trusting only the cloud's CA, curl sees mitmproxy's certificate and refuses it (60).
    let (rc, _, _, _) = curl_call(
        &mut cloud.curl(),
        &["-x", &mitm.url(), "-H", &auth, &streams],
    );
    assert_eq!(rc, 60);
    wait_for(10, "mitmproxy to log the refused handshake", || {
        !mitm.tls_failures().is_empty()
    });
    assert_eq!(cloud.calls()["streams"]["calls"], 0);

    let mitm_ca = mitm.ca_pem().to_str().unwrap().to_string();
    let url = upload_with_curl(
        &cloud,
        &["--cacert", &mitm_ca, "-x", &mitm.url()],
        "m.gz",
        "asa",
        b"inspected\n",
    );
    let seen: Vec<(String, String, u64)> = mitm
        .flows()
        .iter()
        .map(|f| {
            (
                f["method"].as_str().unwrap().to_string(),
                f["url"].as_str().unwrap().to_string(),
                f["status"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 3, "{seen:?}\n{}", mitm.log());
    assert_eq!(seen[0].0, "GET");
    assert_eq!(seen[1], ("PUT".to_string(), url, 201));
    assert_eq!(seen[2].0, "POST");
    assert_eq!(cloud.uploads().len(), 1);
}

#[test]
fn azurite_serves_plain_http_too() {
    let azurite = Azurite::start();
    assert!(azurite.url().starts_with("http://127.0.0.1:"));
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %header{server}",
        ])
        .arg(format!("{}/devstoreaccount1?comp=list", azurite.url()))
        .output()
        .unwrap();
    // Listing containers needs the account key: refused, by Azurite.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("403 Azurite-Blob/"), "{text}");
}

/// The S3 receiver behind `provider: "aws"` answers a presigned PUT as S3 does: stored only
/// when signed for this method, path and Host, unexpired, with a Content-Length and no
/// chunked body or unsigned x-amz-* header; a body cut short stores nothing.
#[test]
fn standin_s3_receiver_takes_a_presigned_put_as_s3_does() {
    let cloud = Cloud::start_aws(&["asa"]);
    let auth = format!("Authorization: Token {}", cloud.token());
    let answer = run(cloud.curl().args(["-f", "-H", &auth]).arg(format!(
        "{}/api/v1/discovery/upload_url/?filename=f.gz&source=GENERIC_CEF",
        cloud.api_url()
    )));
    let answer: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["provider"], "aws");
    let url = answer["url"].as_str().unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let body = b"\x1f\x8b not really gzip";
    fs::write(cloud.dir().join("f.gz"), body).unwrap();
    // curl run in the cloud's dir, so `f.gz` is that file.
    let put = |args: &[&str], url: &str| {
        let mut cmd = cloud.curl();
        cmd.current_dir(cloud.dir()).args(args);
        curl_call(&mut cmd, &[url])
    };
    let tampered = url.replace("/f.gz?", "/g.gz?");
    let refused: [(&[&str], &str, u16, &str); 5] = [
        (
            &[
                "-X",
                "PUT",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                "@f.gz",
            ],
            url,
            501,
            "NotImplemented",
        ),
        (
            &["-H", "x-amz-acl: public-read", "-T", "f.gz"],
            url,
            403,
            "AccessDenied",
        ),
        (
            &["--data-binary", "@f.gz"],
            url,
            403,
            "SignatureDoesNotMatch",
        ),
        (
            &["-H", "Host: elsewhere", "-T", "f.gz"],
            url,
            403,
            "SignatureDoesNotMatch",
        ),
        (&["-T", "f.gz"], &tampered, 403, "SignatureDoesNotMatch"),
    ];
    for (args, url, status, code) in refused {
        let (rc, got, _, answer) = put(args, url);
        assert_eq!((rc, got), (0, status), "{args:?}: {answer}");
        assert!(answer.contains(&format!("<Code>{code}</Code>")), "{answer}");
    }
    // A PUT that breaks off after 5 bytes stores nothing; a whole one is stored.
    cloud.faults(r#"{"put": ["cut:5"]}"#);
    assert_ne!(
        put(&["-T", "f.gz"], url).0,
        0,
        "a reset PUT is a transport error"
    );
    let key = url.split_once("/discovery-uploads/").unwrap().1;
    let key = key.split('?').next().unwrap();
    let calls = cloud.calls();
    assert_eq!(calls["puts"][5]["status"], "reset", "{calls}");
    assert_eq!(calls["puts"][5]["read"], 5, "{calls}");
    assert!(!cloud
        .dir()
        .join("s3")
        .join(key.replace('/', "%2F"))
        .exists());
    assert_eq!(put(&["-T", "f.gz"], url).1, 200);
    assert_eq!(cloud.blob(key), body);
    let calls = cloud.calls();
    assert_eq!(calls["put"]["calls"], 7, "{calls}");
    assert_eq!(
        calls["upload_url"]["calls"], 1,
        "PUTs are not API calls: {calls}"
    );
}
