//! `lc check --format TYPE FILE...` and `lc check --list` on the real binary, with lines from
//! `tests/corpus/formats/`.

use std::process::Command;

use crate::harness::{TempDir, LC};

fn corpus(name: &str) -> String {
    format!("{}/tests/corpus/formats/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_asa_type_on_fortigate_lines_exits_1_naming_fortigate() {
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO_ASA_SYSLOG"])
        .arg(corpus("FORTIGATE.log"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("0 of 6 lines (0 %) look like CISCO_ASA_SYSLOG"),
        "{stdout}"
    );
    assert!(
        stdout.contains("best guess: FortiGate (FORTIGATE,"),
        "{stdout}"
    );
    assert!(stdout.contains("FORTIGATE.log:1: <189>date="), "{stdout}");
}

#[test]
fn check_asa_type_on_asa_lines_exits_0() {
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO_ASA_SYSLOG"])
        .arg(corpus("CISCO_ASA_SYSLOG.log"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("best guess: Cisco ASA"), "{stdout}");
}

#[test]
fn check_reads_gzip_lists_types_and_refuses_unknown_ones() {
    let dir = TempDir::new("check");
    let gz = dir.0.join("asa.log.gz");
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            corpus("CISCO_ASA_SYSLOG.log"),
            gz.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO_ASA"])
        .arg(&gz)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = Command::new(LC)
        .args(["check", "--format", "CISCO", "x.log"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown format \"CISCO\""));
    let out = Command::new(LC).args(["check", "--list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CISCO_ASA, CISCO_ASA_SYSLOG\n"));
}
