//! The appliance: `packaging/install.sh` and `uninstall.sh` run against `--root` temp trees
//! with the freshly built binary in a release layout, the systemd units checked by
//! `systemd-analyze` (verify, offline security score), and the files root's `lc` commands
//! write checked for the service user's access (owner.rs's rule) with a real uid switch.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::{output_with_input, TempDir, LC};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const SYSTEMD_ANALYZE: &str = "/usr/bin/systemd-analyze";

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A temp dir holding an unpacked release (`rel/`, as scripts/release.sh lays it out) and a
/// tree to stage into (`root/`, with an /etc/passwd and /etc/group that know only root).
pub struct Setup {
    pub dir: TempDir,
}

impl Setup {
    pub fn new(tag: &str) -> Setup {
        let dir = TempDir::new(tag);
        let s = Setup { dir };
        s.release("rel", Path::new(LC));
        let etc = s.root().join("etc");
        fs::create_dir_all(&etc).unwrap();
        fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(etc.join("group"), "root:x:0:\n").unwrap();
        s
    }

    pub fn root(&self) -> PathBuf {
        self.dir.0.join("root")
    }

    /// Lays out a release in `name/` with `binary` as bin/lc.
    fn release(&self, name: &str, binary: &Path) -> PathBuf {
        let rel = self.dir.0.join(name);
        fs::create_dir_all(rel.join("bin")).unwrap();
        fs::create_dir_all(rel.join("systemd")).unwrap();
        fs::copy(binary, rel.join("bin/lc")).unwrap();
        let repo = Path::new(REPO);
        for (from, to) in [
            ("systemd/lc@.service", "systemd/lc@.service"),
            ("systemd/lc.target", "systemd/lc.target"),
            ("systemd/lc-upload.service", "systemd/lc-upload.service"),
            ("systemd/lc-upload.timer", "systemd/lc-upload.timer"),
            ("packaging/install.sh", "install.sh"),
            ("packaging/uninstall.sh", "uninstall.sh"),
            ("packaging/lc.ini.example", "lc.ini.example"),
            ("README.md", "README.md"),
            ("docs/OPERATIONS.md", "OPERATIONS.md"),
            ("docs/lc.8", "lc.8"),
            ("LICENSE", "LICENSE"),
        ] {
            fs::copy(repo.join(from), rel.join(to)).unwrap();
        }
        rel
    }

    /// `sh REL/install.sh --root ROOT ARGS`; panics unless it succeeds.
    pub fn install(&self, rel: &str, args: &[&str]) -> String {
        let script = self.dir.0.join(rel).join("install.sh");
        ok(sh(
            &script,
            &[&["--root", self.root().to_str().unwrap()], args].concat(),
        ))
    }

    /// The staged uninstall.sh (from PREFIX/lib/lc, as an operator runs it).
    fn uninstall(&self, args: &[&str]) -> String {
        self.uninstall_from("usr/local", args)
    }

    fn uninstall_from(&self, prefix: &str, args: &[&str]) -> String {
        let script = self.root().join(prefix).join("lib/lc/uninstall.sh");
        ok(sh(
            &script,
            &[&["--root", self.root().to_str().unwrap()], args].concat(),
        ))
    }

    /// The uid and gid install.sh gave `lc` in the staged /etc/passwd.
    fn lc_ids(&self) -> (u32, u32) {
        let passwd = fs::read_to_string(self.root().join("etc/passwd")).unwrap();
        let line = passwd
            .lines()
            .find(|l| l.starts_with("lc:"))
            .expect("an lc user");
        let f: Vec<&str> = line.split(':').collect();
        (f[2].parse().unwrap(), f[3].parse().unwrap())
    }

    /// `check_tree`'s owner names: root, lc, or the number.
    fn name(&self, id: u32) -> String {
        let (uid, gid) = self.lc_ids();
        match id {
            0 => "root".into(),
            i if i == uid || i == gid => "lc".into(),
            i => i.to_string(),
        }
    }

    /// Asserts each `(path, "KIND MODE OWNER:GROUP")` under the staged root; the owner part
    /// only when running as root (otherwise the files are the test user's).
    #[track_caller]
    fn check_tree(&self, expected: &[(&str, &str)]) {
        let mut got = Vec::new();
        let mut want = Vec::new();
        for (path, spec) in expected {
            let m = fs::symlink_metadata(self.root().join(path));
            let line = match m {
                Err(_) => "missing".to_string(),
                Ok(m) => {
                    let kind = if m.is_dir() { "d" } else { "f" };
                    let owner = format!("{}:{}", self.name(m.uid()), self.name(m.gid()));
                    format!("{kind} {:o} {owner}", m.mode() & 0o7777)
                }
            };
            let spec = spec.to_string();
            if is_root() || spec == "missing" {
                got.push(format!("{path}: {line}"));
                want.push(format!("{path}: {spec}"));
            } else {
                let strip = |s: &str| s.rsplit_once(' ').map(|p| p.0.to_string()).unwrap();
                got.push(format!("{path}: {}", strip(&line)));
                want.push(format!("{path}: {}", strip(&spec)));
            }
        }
        assert_eq!(got.join("\n"), want.join("\n"));
    }

    /// Every path under the staged root with its kind, mode, owner, mtime and content.
    fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        let mut out = BTreeMap::new();
        walk(&self.root(), &self.root(), &mut out);
        out
    }
}

fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, String>) {
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let m = fs::symlink_metadata(&path).unwrap();
        let mut line = format!(
            "{:o} {}:{} mtime {}.{}",
            m.mode(),
            m.uid(),
            m.gid(),
            m.mtime(),
            m.mtime_nsec()
        );
        if m.is_file() {
            line.push_str(&format!(" {} bytes, sum {}", m.len(), checksum(&path)));
        }
        out.insert(path.strip_prefix(base).unwrap().to_path_buf(), line);
        if m.is_dir() {
            walk(base, &path, out);
        }
    }
}

/// FNV-1a of a file: enough to see that content changed.
fn checksum(path: &Path) -> u64 {
    fs::read(path)
        .unwrap()
        .iter()
        .fold(0xcbf29ce484222325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        })
}

pub fn sh(script: &Path, args: &[&str]) -> Output {
    Command::new("sh")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[track_caller]
fn ok(out: Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "failed ({}):\n{text}", out.status);
    text
}

/// What a fresh install stages (modes, owners).
const FRESH: &[(&str, &str)] = &[
    ("etc/lc", "d 750 root:lc"),
    ("etc/lc/certs", "d 750 root:lc"),
    ("etc/lc/lc.ini", "f 640 root:lc"),
    ("var/lib/lc", "d 750 lc:lc"),
    ("var/lib/lc/ftp", "d 750 lc:lc"),
    ("var/lib/lc/ftp/ssl_update", "d 750 lc:lc"),
    ("usr/local/bin/lc", "f 755 root:root"),
    ("usr/local/lib/lc/uninstall.sh", "f 755 root:root"),
    ("usr/local/share/doc/lc/README.md", "f 644 root:root"),
    ("usr/local/share/doc/lc/OPERATIONS.md", "f 644 root:root"),
    ("usr/local/share/man/man8/lc.8", "f 644 root:root"),
    ("usr/local/share/doc/lc/LICENSE", "f 644 root:root"),
    ("usr/local/share/doc/lc/lc.ini.example", "f 644 root:root"),
    ("etc/systemd/system/lc@.service", "f 644 root:root"),
    ("etc/systemd/system/lc.target", "f 644 root:root"),
    ("etc/systemd/system/lc-upload.service", "f 644 root:root"),
    ("etc/systemd/system/lc-upload.timer", "f 644 root:root"),
];

#[test]
fn fresh_install_stages_every_file_with_its_owner_and_mode() {
    let s = Setup::new("install-fresh");
    let out = s.install("rel", &[]);
    s.check_tree(FRESH);
    let (uid, gid) = s.lc_ids();
    assert!((100..1000).contains(&uid) && uid == gid, "{uid}:{gid}");
    let passwd = fs::read_to_string(s.root().join("etc/passwd")).unwrap();
    assert!(
        passwd.contains(&format!(
            "lc:x:{uid}:{gid}:lc log collector:/var/lib/lc:/usr/sbin/nologin"
        )),
        "{passwd}"
    );
    assert_eq!(
        fs::read_to_string(s.root().join("etc/lc/lc.ini")).unwrap(),
        fs::read_to_string(Path::new(REPO).join("packaging/lc.ini.example")).unwrap()
    );
    let unit = fs::read_to_string(s.root().join("etc/systemd/system/lc@.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/usr/local/bin/lc run %i\n"),
        "{unit}"
    );
    // No keys baked into a staged tree; the next steps are for a live install only.
    assert!(
        out.contains("no certificates made in a staged tree"),
        "{out}"
    );
    assert_eq!(
        fs::read_dir(s.root().join("etc/lc/certs")).unwrap().count(),
        0
    );
    assert!(out.contains("staged lc "), "{out}");
    // The staged example passes the staged binary's own check.
    let check = Command::new(s.root().join("usr/local/bin/lc"))
        .args(["config", "check", "--config"])
        .arg(s.root().join("etc/lc/lc.ini"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn reinstall_changes_nothing() {
    let s = Setup::new("install-again");
    s.install("rel", &[]);
    let before = s.snapshot();
    let out = s.install("rel", &[]);
    assert_eq!(s.snapshot(), before);
    assert!(!out.contains("installed /"), "{out}");
    assert!(out.contains("kept /etc/lc/lc.ini"), "{out}");
    // Not "upgraded X to X" and the next steps again: it says so and stops.
    assert!(
        out.contains(&format!(
            "is already installed in {}, nothing changed",
            s.root().display()
        )),
        "{out}"
    );
    assert!(
        !out.contains("upgraded") && !out.contains("staged lc"),
        "{out}"
    );
    assert_eq!(
        fs::read_to_string(s.root().join("etc/passwd"))
            .unwrap()
            .matches("\nlc:")
            .count(),
        1
    );
}

#[test]
fn upgrade_replaces_the_binary_and_keeps_a_modified_config() {
    let s = Setup::new("install-upgrade");
    s.install("rel", &[]);
    let ini = s.root().join("etc/lc/lc.ini");
    let mut text = fs::read_to_string(&ini).unwrap();
    text = text.replace("name = LogCollector1", "name = Edited");
    fs::write(&ini, &text).unwrap();
    // A "newer" binary: the same one with bytes appended (it still runs).
    let newer = s.dir.0.join("lc-newer");
    let mut bytes = fs::read(LC).unwrap();
    bytes.extend_from_slice(b"\0newer build\0");
    fs::write(&newer, &bytes).unwrap();
    fs::set_permissions(&newer, fs::Permissions::from_mode(0o755)).unwrap();
    s.release("rel2", &newer);
    let out = s.install("rel2", &[]);
    assert!(out.contains("installed /usr/local/bin/lc"), "{out}");
    assert!(!out.contains("installed /etc/lc/lc.ini"), "{out}");
    assert_eq!(fs::read(s.root().join("usr/local/bin/lc")).unwrap(), bytes);
    assert_eq!(fs::read_to_string(&ini).unwrap(), text);
    s.check_tree(FRESH);
}

#[test]
fn custom_prefix_goes_into_the_units() {
    let s = Setup::new("install-prefix");
    s.install("rel", &["--prefix", "/opt/lc"]);
    let unit = fs::read_to_string(s.root().join("etc/systemd/system/lc@.service")).unwrap();
    assert!(
        unit.contains("\nExecStart=/opt/lc/bin/lc run %i\n"),
        "{unit}"
    );
    assert!(
        unit.contains("\nExecReload=/opt/lc/bin/lc config check --port %i\n"),
        "{unit}"
    );
    assert!(!unit.contains("/usr/local"), "{unit}");
    s.check_tree(&[
        ("opt/lc/bin/lc", "f 755 root:root"),
        ("opt/lc/lib/lc/uninstall.sh", "f 755 root:root"),
        ("usr/local", "missing"),
    ]);
    // uninstall.sh finds the prefix from its own place.
    s.uninstall_from("opt/lc", &[]);
    s.check_tree(&[("opt/lc/bin/lc", "missing"), ("opt/lc/lib/lc", "missing")]);
}

#[test]
fn uninstall_keeps_config_data_and_user() {
    let s = Setup::new("install-remove");
    s.install("rel", &[]);
    // What `systemctl enable lc@514` makes, given WantedBy=multi-user.target lc.target.
    for wants in ["multi-user.target.wants", "lc.target.wants"] {
        let wants = s.root().join("etc/systemd/system").join(wants);
        fs::create_dir_all(&wants).unwrap();
        std::os::unix::fs::symlink("../lc@.service", wants.join("lc@514.service")).unwrap();
    }
    fs::write(s.root().join("var/lib/lc/kept"), "data").unwrap();
    let out = s.uninstall(&[]);
    assert!(out.contains("removed the links of lc@514.service"), "{out}");
    s.check_tree(&[
        ("usr/local/bin/lc", "missing"),
        ("usr/local/lib/lc", "missing"),
        ("usr/local/share/doc/lc", "missing"),
        ("etc/systemd/system/lc@.service", "missing"),
        ("etc/systemd/system/lc.target", "missing"),
        ("etc/systemd/system/lc-upload.service", "missing"),
        ("etc/systemd/system/lc-upload.timer", "missing"),
        ("etc/systemd/system/multi-user.target.wants", "missing"),
        ("etc/systemd/system/lc.target.wants", "missing"),
        ("etc/lc/lc.ini", "f 640 root:lc"),
        ("var/lib/lc/ftp", "d 750 lc:lc"),
    ]);
    assert_eq!(
        fs::read_to_string(s.root().join("var/lib/lc/kept")).unwrap(),
        "data"
    );
    assert!(fs::read_to_string(s.root().join("etc/passwd"))
        .unwrap()
        .contains("\nlc:"));
    // Installing again brings it back with the kept config.
    s.install("rel", &[]);
    s.check_tree(FRESH);
}

#[test]
fn purge_leaves_only_what_was_there_before() {
    let s = Setup::new("install-purge");
    let before = s.snapshot();
    let passwd = fs::read_to_string(s.root().join("etc/passwd")).unwrap();
    let group = fs::read_to_string(s.root().join("etc/group")).unwrap();
    s.install("rel", &[]);
    fs::write(s.root().join("var/lib/lc/spooled"), "data").unwrap();
    let out = s.uninstall(&["--purge"]);
    assert!(out.contains("removed /etc/lc"), "{out}");
    assert_eq!(
        fs::read_to_string(s.root().join("etc/passwd")).unwrap(),
        passwd
    );
    assert_eq!(
        fs::read_to_string(s.root().join("etc/group")).unwrap(),
        group
    );
    // Only the empty folders install.sh made on the way (usr/local/bin, var/lib, ...) remain.
    let after = s.snapshot();
    let files: Vec<_> = after
        .iter()
        .filter(|(p, l)| !l.starts_with("40") && !before.contains_key(*p))
        .collect();
    assert!(files.is_empty(), "{files:?}");
    s.check_tree(&[
        ("etc/lc", "missing"),
        ("var/lib/lc", "missing"),
        ("usr/local/bin/lc", "missing"),
    ]);
}

/// `uninstall.sh --purge` deleted undelivered spool without a word: it refuses, says how
/// much and where, and changes nothing; `--force` purges.
#[test]
fn purge_refuses_while_undelivered_data_remains() {
    let s = Setup::new("install-purge-spool");
    s.install("rel", &[]);
    let segment = s
        .root()
        .join("var/lib/lc/spool/asa/0000000001-20261127T025644Z.log");
    fs::create_dir_all(segment.parent().unwrap()).unwrap();
    fs::write(&segment, "Nov 27 02:49:55 fw asa a line\n").unwrap();
    let before = s.snapshot();
    let script = s.root().join("usr/local/lib/lc/uninstall.sh");
    let out = sh(&script, &["--root", s.root().to_str().unwrap(), "--purge"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--purge would delete data not delivered yet:")
            && err.contains("/var/lib/lc/spool: 1 files, ")
            && err.contains("--force; nothing was changed"),
        "{err}"
    );
    assert_eq!(s.snapshot(), before);
    let out = s.uninstall(&["--purge", "--force"]);
    assert!(out.contains("removed /var/lib/lc"), "{out}");
    s.check_tree(&[
        ("var/lib/lc", "missing"),
        ("usr/local/share/man/man8/lc.8", "missing"),
    ]);
}

/// The man page renders without a warning and names every command of `lc --help`.
#[test]
fn man_page_renders_and_names_every_command() {
    let page = Path::new(REPO).join("docs/lc.8");
    if Path::new("/usr/bin/groff").exists() {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(&page)
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    }
    let text = fs::read_to_string(&page).unwrap().replace("\\-", "-");
    let help = Command::new(LC).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let commands = help
        .split("commands:")
        .nth(1)
        .and_then(|c| c.split("options:").next())
        .unwrap();
    for line in commands
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let command = match words.as_slice() {
            ["config", "check", ..] => "config check".to_string(),
            [first, ..] => first.split('|').next().unwrap().to_string(),
            [] => continue,
        };
        assert!(
            text.contains(&format!(".B lc {command}"))
                || text.contains(&format!(".B lc\n.I {command}")),
            "lc.8 has no synopsis line for {command:?}"
        );
    }
    for option in ["--config", "--help", "--version", "--port"] {
        assert!(text.contains(option), "lc.8 does not name {option}");
    }
}

#[test]
fn staged_tree_without_passwd_says_no_user_was_added() {
    let s = Setup::new("install-nopasswd");
    fs::remove_file(s.root().join("etc/passwd")).unwrap();
    let out = s.install("rel", &[]);
    assert!(
        out.contains("etc/passwd is missing: no lc user was added") || !is_root(),
        "{out}"
    );
    assert!(s.root().join("usr/local/bin/lc").exists());
}

#[test]
fn refuses_to_install_onto_the_system_without_root() {
    let s = Setup::new("install-nonroot");
    let script = s.dir.0.join("rel/install.sh");
    let uninstall = s.dir.0.join("rel/uninstall.sh");
    for script in [&script, &uninstall] {
        let out = if is_root() {
            // nobody, as setpriv (util-linux) switches to it without a login.
            Command::new("setpriv")
                .args(["--reuid=65534", "--regid=65534", "--clear-groups", "sh"])
                .arg(script)
                .output()
                .unwrap()
        } else {
            sh(script, &[])
        };
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("must run as root"), "{err}");
        assert!(err.contains("--root DIR"), "{err}");
    }
    // And a staged install of nothing leaves nothing behind.
    assert!(!s.root().join("usr").exists());
}

/// The restart rules of issue 13's reboot loop: a config error ends the unit `failed` (exit
/// status 2 of the main process, which RestartPreventExitStatus covers and an ExecStartPre's
/// would not), repeated failures hit a start limit that RestartSec lets them reach, and the
/// service cannot write /run/lock or /dev/shm (both writable under ProtectSystem=strict and
/// PrivateDevices=; scripts/vm/guest.sh probes them in the service's namespace).
#[test]
fn unit_ends_failed_instead_of_looping_and_cannot_write_run_lock_or_dev_shm() {
    let unit = fs::read_to_string(Path::new(REPO).join("systemd/lc@.service")).unwrap();
    let values = |key: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(String::from)
            .collect()
    };
    let secs = |v: &str| -> u64 {
        match v.strip_suffix("min") {
            Some(m) => m.parse::<u64>().unwrap() * 60,
            None => v.trim_end_matches('s').parse().unwrap(),
        }
    };
    assert!(values("ExecStartPre").is_empty(), "{unit}");
    assert_eq!(values("ExecStart"), ["/usr/local/bin/lc run %i"]);
    assert_eq!(
        values("ExecReload")[0],
        "/usr/local/bin/lc config check --port %i"
    );
    assert_eq!(values("RestartPreventExitStatus"), ["2"]);
    assert_eq!(values("Restart"), ["on-failure"]);
    let burst: u64 = values("StartLimitBurst")[0].parse().unwrap();
    let interval = secs(&values("StartLimitIntervalSec")[0]);
    let restart = secs(&values("RestartSec")[0]);
    assert!(
        (2..=10).contains(&burst) && interval >= burst * restart * 2,
        "a crash loop must reach the start limit: {burst} starts in {interval} s, every {restart} s"
    );
    // The start limit is a [Unit] setting: in [Service] systemd ignores it (with a warning).
    let unit_section = unit.split("[Service]").next().unwrap();
    assert!(unit_section.contains("\nStartLimitBurst="), "{unit}");
    for path in ["-/run/lock", "-/dev/shm"] {
        assert!(
            values("InaccessiblePaths").contains(&path.to_string()),
            "{path}: {unit}"
        );
    }
}

/// `systemd-analyze verify` on the units as install.sh stages them, with ExecStart pointing at
/// the staged binary (verify needs it to exist and be executable): no warning at all.
#[test]
fn units_pass_systemd_analyze_verify() {
    if !Path::new(SYSTEMD_ANALYZE).exists() {
        eprintln!("skipped: {SYSTEMD_ANALYZE} is not installed (Debian: systemd)");
        return;
    }
    let s = Setup::new("install-verify");
    s.install("rel", &[]);
    let units = s.dir.0.join("units");
    fs::create_dir_all(&units).unwrap();
    let staged = s.root().join("etc/systemd/system");
    let bin = s.root().join("usr/local/bin/lc");
    for name in [
        "lc@.service",
        "lc.target",
        "lc-upload.service",
        "lc-upload.timer",
    ] {
        let text = fs::read_to_string(staged.join(name)).unwrap();
        let text = text.replace("/usr/local/bin/lc", bin.to_str().unwrap());
        fs::write(units.join(name), text).unwrap();
    }
    let out = Command::new(SYSTEMD_ANALYZE)
        .args(["verify", "--man=no"])
        .arg(units.join("lc@514.service"))
        .arg(units.join("lc.target"))
        .arg(units.join("lc-upload.service"))
        .arg(units.join("lc-upload.timer"))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.trim().is_empty(), "{text}");
}

/// The offline security score of an instance: "Overall exposure level for lc@514.service:
/// 1.4 OK" must stay at or under 2.0.
#[test]
fn unit_security_exposure_is_at_most_2() {
    if !Path::new(SYSTEMD_ANALYZE).exists() {
        eprintln!("skipped: {SYSTEMD_ANALYZE} is not installed (Debian: systemd)");
        return;
    }
    let dir = TempDir::new("install-security");
    fs::copy(
        Path::new(REPO).join("systemd/lc@.service"),
        dir.0.join("lc@.service"),
    )
    .unwrap();
    let out = Command::new(SYSTEMD_ANALYZE)
        .args(["security", "--offline=true", "--no-pager"])
        .arg(dir.0.join("lc@514.service"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for lc@514.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{text}{:?}", out.stderr));
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{text}");
}

/// After install.sh, the files `lc certs init`, `lc certs reload` and `lc passwd` write as root
/// are readable by the service (uid and gid lc, no other groups) and by no other user.
#[test]
fn files_root_commands_write_are_readable_by_the_service_only() {
    if !is_root() {
        eprintln!("skipped: needs root to switch users");
        return;
    }
    let s = Setup::new("install-owners");
    s.install("rel", &[]);
    let root = s.root();
    let lc = root.join("usr/local/bin/lc");
    let config = s.dir.0.join("lc.ini");
    fs::write(
        &config,
        format!(
            "[collector]\nstate_dir = {r}/var/lib/lc\nrun_dir = {r}/run/lc\ncerts_dir = {r}/etc/lc/certs\n\
             [ftp]\npasswd_file = {r}/etc/lc/ftp.passwd\n\
             [source tls]\nformat = SQUID\nreceiver = syslog-tls\nport = 6514\n",
            r = root.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str], input: &str| {
        ok(output_with_input(
            Command::new(&lc).args(args).arg("--config").arg(&config),
            input,
        ))
    };
    run(&["certs", "init"], "");
    run(&["passwd", "--stdin", "discovery"], "secret\n");
    let first = [
        ("etc/lc/certs/server-key.pem", "f 640 root:lc"),
        ("etc/lc/certs/pure-ftpd.pem", "f 640 root:lc"),
        ("etc/lc/certs/server-cert.pem", "f 644 root:lc"),
        ("etc/lc/certs/ca.pem", "f 644 root:lc"),
        ("etc/lc/certs/private", "d 700 root:root"),
        ("etc/lc/certs/private/ca-key.pem", "f 600 root:root"),
        ("etc/lc/ftp.passwd", "f 640 root:lc"),
    ];
    s.check_tree(&first);

    // A new set through ssl_update/, as an FTP upload (owned by lc) leaves it.
    let other = s.dir.0.join("other");
    ok(Command::new(&lc)
        .args(["certs", "init"])
        .arg(&other)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap());
    let update = root.join("var/lib/lc/ftp/ssl_update");
    let (uid, gid) = s.lc_ids();
    for f in ["server-cert.pem", "server-key.pem", "ca.pem"] {
        fs::copy(other.join(f), update.join(f)).unwrap();
        std::os::unix::fs::chown(update.join(f), Some(uid), Some(gid)).unwrap();
    }
    run(&["certs", "reload"], "");
    assert_eq!(
        fs::read(root.join("etc/lc/certs/server-key.pem")).unwrap(),
        fs::read(other.join("server-key.pem")).unwrap()
    );
    s.check_tree(&[
        ("etc/lc/certs", "d 750 root:lc"),
        ("etc/lc/certs.prev", "d 750 root:lc"),
    ]);
    s.check_tree(&first);

    // Read as the service would (uid and gid lc, no supplementary groups), then as nobody.
    let read_as = |ids: (u32, u32), path: &str| {
        Command::new("setpriv")
            .arg(format!("--reuid={}", ids.0))
            .arg(format!("--regid={}", ids.1))
            .args(["--clear-groups", "cat"])
            .arg(root.join(path))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    for path in [
        "etc/lc/lc.ini",
        "etc/lc/ftp.passwd",
        "etc/lc/certs/server-key.pem",
        "etc/lc/certs/server-cert.pem",
        "etc/lc/certs/ca.pem",
        "etc/lc/certs/pure-ftpd.pem",
    ] {
        assert!(read_as((uid, gid), path), "lc cannot read {path}");
        assert!(!read_as((65534, 65534), path), "nobody can read {path}");
    }
    assert!(!read_as((uid, gid), "etc/lc/certs/private/ca-key.pem"));
}
