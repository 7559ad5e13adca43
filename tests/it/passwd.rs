//! `lc passwd`: the FTP password file as the real binary writes it, from standard input and
//! from a terminal (util-linux `script` provides the pseudo-terminal).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use crate::harness::{output_with_input, wait_for, TempDir, LC};

/// A temp dir with a config whose `[ftp] passwd_file` is `etc/ftp.passwd`, relative to it.
struct Setup {
    _dir: TempDir,
    config: PathBuf,
    passwd: PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let dir = TempDir::new(tag);
        let config = dir.0.join("lc.ini");
        fs::write(&config, "[ftp]\npasswd_file = etc/ftp.passwd\n").unwrap();
        let passwd = dir.0.join("etc/ftp.passwd");
        Setup {
            _dir: dir,
            config,
            passwd,
        }
    }

    /// Runs `lc passwd ARGS` with `input` on standard input.
    fn run(&self, args: &[&str], input: &str) -> Output {
        output_with_input(
            Command::new(LC)
                .arg("passwd")
                .args(args)
                .env("LC_CONFIG", &self.config),
            input,
        )
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.passwd).unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Whether every line is a comment, blank, or `user:` and a PHC string as `lc passwd` makes.
fn well_formed(text: &str) -> bool {
    text.lines().all(|l| {
        if l.is_empty() || l.starts_with('#') {
            return true;
        }
        let Some((user, phc)) = l.split_once(':') else {
            return false;
        };
        let parts: Vec<&str> = phc.split('$').collect();
        let b64 = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        };
        !user.is_empty()
            && parts.len() == 6
            && parts[..4] == ["", "argon2id", "v=19", "m=19456,t=2,p=1"]
            && b64(parts[4], 22)
            && b64(parts[5], 43)
    }) && (text.is_empty() || text.ends_with('\n'))
}

#[test]
fn stdin_creates_the_file_0600_with_an_argon2id_line() {
    let s = Setup::new("passwd-create");
    let out = s.run(&["--stdin", "discovery"], "s3cret pass\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}: added user \"discovery\"\n", s.passwd.display())
    );
    let mode = fs::metadata(&s.passwd).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = s.text();
    assert!(text.starts_with("discovery:$argon2id$v=19$"), "{text}");
    assert_eq!(text.lines().count(), 1);
    assert!(well_formed(&text), "{text}");
    assert!(!text.contains("s3cret"));
    // Input without a final newline is the whole password too.
    let out = s.run(&["--stdin", "fw"], "no-newline");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(s.text().lines().count(), 2);
}

#[test]
fn changing_a_password_replaces_its_line_and_keeps_the_rest() {
    let s = Setup::new("passwd-change");
    for user in ["alice", "bob"] {
        assert_eq!(s.run(&["--stdin", user], "one\n").status.code(), Some(0));
    }
    // An operator's comments and blank lines stay where they are.
    let before = format!("# FTP users of lc\n\n{}# end\n", s.text());
    fs::write(&s.passwd, &before).unwrap();
    let out = s.run(&["--stdin", "alice"], "two\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("changed the password of \"alice\""));
    let after = s.text();
    let (old, new): (Vec<&str>, Vec<&str>) = (before.lines().collect(), after.lines().collect());
    assert_eq!(old.len(), new.len(), "{after}");
    for (i, (o, n)) in old.iter().zip(&new).enumerate() {
        if i == 2 {
            assert!(n.starts_with("alice:$argon2id$") && o != n, "{after}");
        } else {
            assert_eq!(o, n);
        }
    }
    assert!(well_formed(&after), "{after}");
    assert_eq!(
        fs::metadata(&s.passwd).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn delete_and_list() {
    let s = Setup::new("passwd-delete");
    for user in ["alice", "bob", "carol"] {
        assert_eq!(s.run(&["--stdin", user], "pw\n").status.code(), Some(0));
    }
    let out = s.run(&["--list"], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "alice\nbob\ncarol\n");
    let out = s.run(&["--delete", "bob"], "");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&s.run(&["--list"], "").stdout),
        "alice\ncarol\n"
    );
    // Deleting a user that is not there is a runtime failure that names the file.
    let out = s.run(&["--delete", "bob"], "");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!("lc: {}: no user \"bob\"\n", s.passwd.display())
    );
    let text = s.text();
    assert!(well_formed(&text) && text.lines().count() == 2, "{text}");
}

#[test]
fn list_or_delete_without_a_file_names_it() {
    let s = Setup::new("passwd-nofile");
    let out = s.run(&["--delete", "bob"], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("lc: {}: cannot read: ", s.passwd.display())),
        "{}",
        stderr(&out)
    );
    // Listing before the first user is not a failure (issue 13).
    let out = s.run(&["--list"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).starts_with(&format!("{}: no users yet", s.passwd.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_names_are_refused_with_exit_2() {
    let s = Setup::new("passwd-names");
    let long = "a".repeat(65);
    for (name, why) in [
        ("a:b", "must not contain ':'"),
        ("a b", "must not contain ' '"),
        ("a/b", "must not contain '/'"),
        ("a\tb", "must not contain '\\t'"),
        ("", "user name is empty"),
        (long.as_str(), "is longer than 64 bytes"),
    ] {
        for args in [&["--stdin", name][..], &["--delete", name]] {
            let out = s.run(args, "pw\n");
            assert_eq!(out.status.code(), Some(2), "{args:?}");
            let err = stderr(&out);
            assert!(
                err.starts_with(&format!("lc: {}: ", s.passwd.display())) && err.contains(why),
                "{args:?}: {err}"
            );
        }
    }
    assert!(!s.passwd.exists());
}

#[test]
fn empty_or_overlong_passwords_are_refused_with_exit_2() {
    let s = Setup::new("passwd-empty");
    assert_eq!(
        s.run(&["--stdin", "alice"], "first\n").status.code(),
        Some(0)
    );
    let before = s.text();
    let long = format!("{}\n", "x".repeat(1025));
    for (input, why) in [
        ("\n", "the password is empty"),
        ("", "the password is empty"),
        ("\r\n", "the password is empty"),
        (long.as_str(), "the password is longer than 1024 bytes"),
    ] {
        let out = s.run(&["--stdin", "alice"], input);
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        assert_eq!(stderr(&out), format!("lc: {}: {why}\n", s.passwd.display()));
        assert_eq!(s.text(), before);
    }
    // 1024 bytes is allowed.
    let max = format!("{}\n", "x".repeat(1024));
    assert_eq!(s.run(&["--stdin", "alice"], &max).status.code(), Some(0));
}

#[test]
fn a_bad_line_is_reported_with_its_line_and_nothing_changes() {
    let s = Setup::new("passwd-bad");
    assert_eq!(s.run(&["--stdin", "alice"], "pw\n").status.code(), Some(0));
    let text = format!("{}bob:plaintext\n", s.text());
    fs::write(&s.passwd, &text).unwrap();
    for args in [
        &["--stdin", "carol"][..],
        &["--delete", "alice"],
        &["--list"],
    ] {
        let out = s.run(args, "pw\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).starts_with(&format!(
                "lc: {}:2: user \"bob\": not an argon2id hash",
                s.passwd.display()
            )),
            "{}",
            stderr(&out)
        );
        assert_eq!(s.text(), text);
    }
}

#[test]
fn concurrent_changes_all_land_and_the_file_is_never_half_written() {
    let s = Setup::new("passwd-concurrent");
    assert_eq!(s.run(&["--stdin", "seed"], "pw\n").status.code(), Some(0));
    let users: Vec<String> = (0..8).map(|i| format!("user{i}")).collect();
    let children: Vec<_> = users
        .iter()
        .chain(users.iter())
        .map(|u| {
            let mut c = Command::new(LC)
                .args(["passwd", "--stdin", u])
                .env("LC_CONFIG", &s.config)
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            c.stdin.take().unwrap().write_all(b"pw\n").unwrap();
            c
        })
        .collect();
    // While they run, every read sees a whole file: the old one or a new one.
    let mut reads = 0;
    let mut children = children;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let text = s.text();
        assert!(well_formed(&text), "half-written file:\n{text}");
        reads += 1;
        std::thread::yield_now();
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    assert!(reads > 0);
    // The folder lock serialises the updates, so none undoes another.
    let out = s.run(&["--list"], "");
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    listed.sort();
    let mut expected = users.clone();
    expected.push("seed".into());
    expected.sort();
    assert_eq!(listed, expected);
    // No temp files are left beside it.
    let names: Vec<_> = fs::read_dir(s.passwd.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["ftp.passwd"]);
}

/// `lc passwd USER` under a pseudo-terminal (`script`), typing each of `keys` once the
/// output shows the matching prompt count; returns the exit code and all the terminal showed.
/// `after` runs in the same terminal once lc exits (`stty -a` to see its state).
fn on_terminal(s: &Setup, user: &str, before: &str, keys: &[&str], after: &str) -> (i32, String) {
    let cmd = format!(
        "{before} {lc} passwd {user}; echo \"rc=$?\"; {after}",
        lc = LC
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("LC_CONFIG", &s.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script (util-linux) runs");
    let shown = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let reader = {
        let shown = shown.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                shown
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let prompts = ["New FTP password for", "Retype it: "];
    for (i, k) in keys.iter().enumerate() {
        if let Some(p) = prompts.get(i) {
            wait_for(10, p, || shown.lock().unwrap().contains(p));
        }
        stdin.write_all(k.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    wait_for(20, "lc to exit", || shown.lock().unwrap().contains("rc="));
    drop(stdin);
    child.wait().unwrap();
    reader.join().unwrap();
    let shown = shown.lock().unwrap().replace('\r', "");
    let rc = shown
        .split("rc=")
        .nth(1)
        .and_then(|r| r.lines().next())
        .and_then(|r| r.parse().ok())
        .unwrap_or(-1);
    (rc, shown)
}

#[test]
fn terminal_prompts_twice_without_echo() {
    let s = Setup::new("passwd-tty");
    let (rc, shown) = on_terminal(&s, "alice", "", &["hunter2\r", "hunter2\r"], "");
    assert_eq!(rc, 0, "{shown}");
    assert!(!shown.contains("hunter2"), "echoed: {shown}");
    assert!(
        shown.contains(&format!("{}: added user \"alice\"", s.passwd.display())),
        "{shown}"
    );
    assert!(well_formed(&s.text()));
    // Erase and kill keys edit the line as they would in a normal terminal.
    let (rc, shown) = on_terminal(&s, "alice", "", &["x\x7fnew\r", "wrong\x15new\r"], "");
    assert_eq!(rc, 0, "{shown}");
    assert!(
        shown.contains("changed the password of \"alice\""),
        "{shown}"
    );
}

#[test]
fn terminal_refuses_mismatches_and_empty_passwords() {
    let s = Setup::new("passwd-tty-refuse");
    let (rc, shown) = on_terminal(&s, "alice", "", &["one\r", "two\r"], "");
    assert_eq!(rc, 2, "{shown}");
    assert!(
        shown.contains(&format!(
            "lc: {}: the passwords do not match; nothing changed",
            s.passwd.display()
        )),
        "{shown}"
    );
    let (rc, shown) = on_terminal(&s, "alice", "", &["\r"], "");
    assert_eq!(rc, 2, "{shown}");
    assert!(shown.contains("the password is empty"), "{shown}");
    assert!(!s.passwd.exists());
}

#[test]
fn ctrl_c_at_the_prompt_restores_the_terminal() {
    let s = Setup::new("passwd-tty-ctrl-c");
    let stty = "stty -a | grep -o ' -*echo ' | head -1";
    let (rc, shown) = on_terminal(&s, "alice", "", &["abc\x03"], stty);
    assert_eq!(rc, 1, "{shown}");
    assert!(shown.contains("cancelled; nothing changed"), "{shown}");
    assert!(shown.contains(" echo \n"), "echo left off: {shown}");
    // Restored means as it was, not echo forced on.
    let (rc, shown) = on_terminal(&s, "alice", "stty -echo;", &["abc\x03"], stty);
    assert_eq!(rc, 1, "{shown}");
    assert!(shown.contains(" -echo \n"), "{shown}");
    assert!(!s.passwd.exists());
}

#[test]
fn help_describes_the_file_and_the_options() {
    let out = Command::new(LC)
        .args(["passwd", "--help"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["--stdin", "--delete", "--list", "passwd_file", "0600"] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
