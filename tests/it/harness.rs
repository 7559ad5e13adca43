//! Starting the real `lc` binary on free ports in a temp dir, and polling for conditions.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const LC: &str = env!("CARGO_BIN_EXE_lc");

/// Polls `cond` every 20 ms until it holds or `secs` pass; panics with `what` on timeout.
#[track_caller]
pub fn wait_for(secs: u64, what: &str, cond: impl FnMut() -> bool) {
    wait_explained(secs, what, cond, String::new);
}

/// Polls `cond` like `wait_for`; on timeout the panic message has `context()` (logs, the last
/// status). The one poll-until-deadline loop of the tests: every wait goes through it.
#[track_caller]
pub fn wait_explained(
    secs: u64,
    what: &str,
    mut cond: impl FnMut() -> bool,
    context: impl Fn() -> String,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        if Instant::now() >= deadline {
            panic!("timed out after {secs}s waiting for: {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("lc-it-{}-{tag}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One running `lc run` with its own state, run and outbox folders.
pub struct Lc {
    pub dir: TempDir,
    pub config: PathBuf,
    child: Option<Child>,
    pub stderr: PathBuf,
    /// Environment for `lc run` beyond the test's own (proxy variables).
    pub env: Vec<(String, String)>,
}

/// The `[collector]`, `[spool]` and `[delivery]` sections every test starts from; `extra` is
/// appended (sources, overrides of spool keys go in `spool`).
pub fn base_config(dir: &Path, spool: &str, collector: &str) -> String {
    config_with(
        dir,
        spool,
        collector,
        &format!("url = dir:{}/outbox", dir.display()),
    )
}

/// Like `base_config` with the `[delivery]` section's body given.
pub fn config_with(dir: &Path, spool: &str, collector: &str, delivery: &str) -> String {
    format!(
        "[collector]\nname = it\nstate_dir = {d}/state\nrun_dir = {d}/run\nlisten = 127.0.0.1\nlog_level = debug\n{collector}\n\
         [spool]\nsync_secs = 1\nmin_free_bytes = 0\n{spool}\n\
         [delivery]\n{delivery}\n",
        d = dir.display()
    )
}

/// A syslog source on a kernel-chosen port that stores messages as received (`render = raw`),
/// so tests of transport, spool and delivery compare exactly the bytes they sent. The vendor
/// rendering (the default) has its own tests (`render.rs`, `receive.rs`).
pub fn source(name: &str, receiver: &str, extra: &str) -> String {
    let render = if extra.contains("render =") {
        ""
    } else {
        "render = raw\n"
    };
    format!(
        "[source {name}]\nformat = GENERIC_CEF\nreceiver = {receiver}\nport = 0\n{render}{extra}\n"
    )
}

impl Lc {
    /// Writes the config (base + `sources`) and starts `lc run`; waits for its status snapshot.
    pub fn start(tag: &str, spool: &str, collector: &str, sources: &str) -> Lc {
        let dir = TempDir::new(tag);
        let config = dir.0.join("lc.ini");
        fs::write(
            &config,
            format!("{}{sources}", base_config(&dir.0, spool, collector)),
        )
        .unwrap();
        Lc::attach(dir, config)
    }

    /// Starts `lc run` on a config the test wrote itself inside `dir`.
    pub fn attach(dir: TempDir, config: PathBuf) -> Lc {
        Lc::attach_with_env(dir, config, &[])
    }

    /// `attach` with extra environment variables for lc.
    pub fn attach_with_env(dir: TempDir, config: PathBuf, env: &[(&str, &str)]) -> Lc {
        let mut lc = Lc {
            stderr: dir.0.join("stderr.log"),
            dir,
            config,
            child: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        lc.spawn();
        lc
    }

    pub fn spawn(&mut self) {
        let _ = fs::remove_file(self.status_path());
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let child = Command::new(LC)
            .args(["run", "--config"])
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for(20, "the status snapshot", || {
            self.try_status()
                .is_some_and(|s| s["running"] == true && s["pid"] == self.pid())
        });
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn state(&self) -> PathBuf {
        self.dir.0.join("state")
    }

    pub fn outbox(&self) -> PathBuf {
        self.dir.0.join("outbox")
    }

    fn status_path(&self) -> PathBuf {
        self.dir.0.join("run/all.json")
    }

    pub fn try_status(&self) -> Option<Value> {
        serde_json::from_str(&fs::read_to_string(self.status_path()).ok()?).ok()
    }

    #[track_caller]
    pub fn status(&self) -> Value {
        self.try_status().expect("status snapshot")
    }

    /// The snapshot's entry for `name`.
    #[track_caller]
    pub fn source_status(&self, name: &str) -> Value {
        let s = self.status();
        s["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .expect("source in status")
    }

    /// The address a source listens on, by protocol ("udp" or "tcp").
    #[track_caller]
    pub fn addr(&self, source: &str, proto: &str) -> SocketAddr {
        let s = self.status();
        let l = s["listeners"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["source"] == source && l["proto"] == proto)
            .unwrap_or_else(|| panic!("no {proto} listener for {source} in {s}"));
        l["addr"].as_str().unwrap().parse().unwrap()
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid() as i32), sig).unwrap();
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.signal(nix::sys::signal::Signal::SIGTERM);
        self.wait()
    }

    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("lc did not exit within 20s; stderr:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Every line of `source` that lc holds: delivered (outbox), sealed and open segments,
    /// in segment order.
    pub fn lines(&self, source: &str) -> Vec<String> {
        let mut segs: BTreeMap<u64, PathBuf> = BTreeMap::new();
        let prefix = format!("{source}_it_");
        for e in fs::read_dir(self.outbox()).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_manifest(&name) {
                continue;
            }
            if let Some(rest) = name.strip_prefix(&prefix) {
                segs.insert(seq_of(rest), e.path());
            }
        }
        for e in fs::read_dir(self.state().join("spool").join(source))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".log") || name.ends_with(".log.gz") {
                segs.entry(seq_of(&name)).or_insert(e.path());
            }
        }
        let mut out = Vec::new();
        for path in segs.values() {
            out.extend(read_segment(path));
        }
        out
    }

    /// The files delivered to the outbox for `source`, in order: by segment, then by part
    /// (`SEQ-TIME.log.gz` is part 0, `SEQ-TIME-pN.log.gz` part N).
    pub fn delivered_files(&self, source: &str) -> Vec<PathBuf> {
        let prefix = format!("{source}_it_");
        let mut files: Vec<((u64, u64), PathBuf)> = fs::read_dir(self.outbox())
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix(&prefix)?.strip_suffix(".log.gz")?;
                let part = match rest.rsplit_once("-p") {
                    Some((_, n)) => n.parse().ok()?,
                    None => 0,
                };
                Some(((seq_of(rest), part), e.path()))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| p).collect()
    }

    /// Files delivered to the outbox for `source`.
    pub fn delivered(&self, source: &str) -> usize {
        let prefix = format!("{source}_it_");
        fs::read_dir(self.outbox())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with(&prefix) && !is_manifest(&name)
            })
            .count()
    }
}

impl Drop for Lc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An outbox file's manifest (`NAME.manifest`), which lc writes beside each delivered file.
pub fn is_manifest(name: &str) -> bool {
    name.ends_with(".manifest")
}

fn seq_of(name: &str) -> u64 {
    name[..10].parse().unwrap()
}

/// The lines of a raw (`.log`) or sealed (`.gz`) segment. Fails the test on a torn last line.
#[track_caller]
pub fn read_segment(path: &Path) -> Vec<String> {
    let Ok(file) = fs::File::open(path) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::MultiGzDecoder::new(file)
            .read_to_end(&mut bytes)
            .unwrap();
    } else {
        BufReader::new(file).read_to_end(&mut bytes).unwrap();
    }
    if !bytes.is_empty() && path.extension().is_none_or(|e| e != "log") {
        assert_eq!(
            bytes.last(),
            Some(&b'\n'),
            "{}: sealed segment ends mid-line",
            path.display()
        );
    }
    bytes.lines().map(|l| l.unwrap()).collect()
}

/// Runs a command to completion; panics with its output if it fails.
#[track_caller]
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Where the test peers unpacked by scripts/deps.sh live.
pub fn peer(name: &str) -> PathBuf {
    let p = PathBuf::from("/opt/lc-peers/bin").join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/deps.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// A tmpfs mounted for one test (needs root, as CI has), unmounted on drop: a disk that fills.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(path).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .unwrap();
        assert!(st.success(), "this test mounts a tmpfs and needs root");
        Tmpfs(path.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Runs `cmd` with `input` on its stdin; returns its output.
pub fn output_with_input(cmd: &mut Command, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    // The program may exit before reading (a refused client, a bad argument): a broken pipe
    // here is not the test's verdict; the output is.
    let _ = child.stdin.take().unwrap().write_all(input.as_bytes());
    child.wait_with_output().unwrap()
}

/// `echo PW | lc passwd --stdin --config CONFIG USER`.
#[track_caller]
pub fn set_password(config: &Path, user: &str, password: &str) {
    let out = output_with_input(
        Command::new(LC)
            .args(["passwd", "--stdin", "--config"])
            .arg(config)
            .arg(user),
        &format!("{password}\n"),
    );
    assert!(
        out.status.success(),
        "lc passwd: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `lc --config CONFIG ARGS`, run to its end.
pub fn lc_with_config(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(LC)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// `lc status ARGS` against `config`: (exit code, stdout, stderr).
pub fn lc_status(config: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let out = lc_with_config(config, &[&["status"], args].concat());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
