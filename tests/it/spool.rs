//! The spool: rotation, sealing, outbox delivery and backup, eviction, clean stops, and
//! recovery after `kill -9`.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{read_segment, source, wait_for, Lc, Tmpfs};

fn segments_in(dir: &std::path::Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

#[test]
fn segments_rotate_by_size_and_age_then_reach_the_outbox_and_backup() {
    let lc = Lc::start(
        "rotate",
        "rotate_bytes = 4K\nrotate_secs = 1\nbackup_keep = 2",
        "",
        &source("t", "syslog-tcp", ""),
    );
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    for i in 0..500 {
        s.write_all(
            format!("<13>message number {i:04} with some padding to fill segments\n").as_bytes(),
        )
        .unwrap();
    }
    // ~30 KB in 4 KB segments: several sealed by size, the tail sealed by age.
    wait_for(20, "everything delivered", || {
        lc.delivered("t") >= 5
            && lc.lines("t").len() == 500
            && segments_in(&lc.state().join("spool/t"), ".log").is_empty()
    });
    let lines = lc.lines("t");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(
            l,
            &format!("<13>message number {i:04} with some padding to fill segments")
        );
    }
    let backups = segments_in(&lc.state().join("backup/t"), ".log.gz");
    assert_eq!(backups.len(), 2, "backup_keep = 2");
    wait_for(10, "status shows the deliveries", || {
        lc.source_status("t")["state"] == "Connected"
    });
    let st = lc.source_status("t");
    assert!(st["delivered_files"].as_u64().unwrap() >= 5);
    assert_eq!(st["backlog"]["files"], 0);
}

#[test]
fn sigterm_flushes_seals_and_exits_0() {
    let mut lc = Lc::start("sigterm", "", "", &source("t", "syslog-tcp", ""));
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    for i in 0..1000 {
        s.write_all(format!("<13>m{i}\n").as_bytes()).unwrap();
    }
    s.write_all(b"<13>last without newline").unwrap();
    wait_for(10, "all received", || {
        lc.source_status("t")["messages"] == 1000
    });
    let started = Instant::now();
    assert!(lc.stop().success(), "{}", lc.log());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing is left open: one sealed segment (delivered or still in the spool).
    assert!(segments_in(&lc.state().join("spool/t"), ".log").is_empty());
    let lines = lc.lines("t");
    assert_eq!(lines.len(), 1001);
    assert_eq!(lines[1000], "<13>last without newline");
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lc.dir.0.join("run/all.json")).unwrap())
            .unwrap();
    assert_eq!(st["running"], false);
    assert!(!lc.dir.0.join("run/all.pid").exists());
}

#[test]
fn kill_9_mid_stream_loses_no_written_line_and_tears_none() {
    let mut lc = Lc::start(
        "kill9",
        "rotate_bytes = 1M",
        "",
        &source("t", "syslog-tcp", ""),
    );
    let addr = lc.addr("t", "tcp");
    let total = 100_000;
    let sender = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let mut sent = 0;
        for i in 0..total {
            let line = format!("<13>seq={i:06} {}\n", "p".repeat(80));
            if s.write_all(line.as_bytes()).is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    wait_for(30, "a third of the stream on disk", || {
        lc.source_status("t")["messages"].as_u64().unwrap_or(0) > total / 3
    });
    lc.kill9();
    let sent = sender.join().unwrap();
    let before: Vec<String> = lc.lines("t");
    lc.spawn();
    // After the restart the open segment is recovered, sealed and delivered.
    wait_for(30, "recovered segments delivered", || {
        segments_in(&lc.state().join("spool/t"), ".log").is_empty()
            && segments_in(&lc.state().join("spool/t"), ".gz").is_empty()
    });
    let after = lc.lines("t");
    assert_eq!(
        after, before,
        "every line written before the kill survives, in order"
    );
    assert!(after.len() as u64 > total / 3 && after.len() <= sent);
    for (i, l) in after.iter().enumerate() {
        assert_eq!(
            l,
            &format!("<13>seq={i:06} {}", "p".repeat(80)),
            "line {i} torn or out of order"
        );
    }
    for path in segments_in(&lc.outbox(), ".gz") {
        read_segment(&path);
    }
    assert!(lc.log().contains("recovered"), "{}", lc.log());
}

#[test]
fn a_full_spool_evicts_the_oldest_sealed_segments_and_counts_them() {
    // The outbox path is a file, so delivery fails and segments pile up.
    let lc = Lc::start(
        "evict",
        "rotate_bytes = 64K\nmax_spool_bytes = 1M",
        "",
        &source("t", "syslog-tcp", ""),
    );
    std::fs::write(lc.outbox(), b"not a folder").unwrap();
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    let line = format!("<13>{}\n", "e".repeat(1000));
    // 4 MB of highly compressible lines: sealed segments are small, so send enough to exceed.
    let mut random = 0x2545F4914F6CDD1Du64;
    for _ in 0..6000 {
        // Incompressible filler so sealed segments stay near their raw size.
        let mut l = Vec::with_capacity(1100);
        l.extend_from_slice(b"<13>");
        for _ in 0..128 {
            random ^= random << 13;
            random ^= random >> 7;
            random ^= random << 17;
            l.extend_from_slice(format!("{:02x}", random as u8).as_bytes());
            l.extend_from_slice(
                &random.to_le_bytes()[..6]
                    .iter()
                    .map(|b| b'a' + b % 26)
                    .collect::<Vec<_>>(),
            );
        }
        l.push(b'\n');
        s.write_all(&l).unwrap();
    }
    let _ = line;
    wait_for(30, "eviction", || {
        lc.source_status("t")["drops"]["evicted_segments"]
            .as_u64()
            .unwrap_or(0)
            > 0
    });
    wait_for(10, "spool under its cap", || {
        lc.status()["disk"]["spool_bytes"].as_u64().unwrap() <= 1 << 20
    });
    let st = lc.source_status("t");
    assert!(
        st["last_error"]["error"]
            .as_str()
            .unwrap()
            .contains("delivery"),
        "{st}"
    );
    assert!(st["failing_since"].as_u64().unwrap() > 0);
    assert!(lc.log().contains("evicted undelivered segment"));
}

/// Fills the filesystem of `dir` until ENOSPC; returns the filler file.
fn fill(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![0u8; 64 * 1024];
    while f.write_all(&block).is_ok() {}
    let one = [0u8; 1];
    while f.write_all(&one).is_ok() {}
    path
}

/// lc with its state_dir on a 4 MiB tmpfs (fields drop in order: lc stops before the unmount).
struct SmallDisk {
    lc: Lc,
    state: std::path::PathBuf,
    _tmpfs: Tmpfs,
}

impl SmallDisk {
    fn start(tag: &str, sources: &str) -> SmallDisk {
        let dir = crate::harness::TempDir::new(tag);
        let state = dir.0.join("state");
        let tmpfs = Tmpfs::mount(&state, "4m");
        let config = dir.0.join("lc.ini");
        std::fs::write(
            &config,
            format!(
                "[collector]\nname = it\nstate_dir = {d}/state\nrun_dir = {d}/run\nlisten = 127.0.0.1\n\
                 [spool]\nmin_free_bytes = 0\nrotate_bytes = 8M\nmax_spool_bytes = 64M\n[delivery]\nurl = dir:{d}/outbox\n{sources}",
                d = dir.0.display()
            ),
        )
        .unwrap();
        SmallDisk {
            lc: Lc::attach(dir, config),
            state,
            _tmpfs: tmpfs,
        }
    }
}

#[test]
fn a_full_disk_pauses_tcp_counts_udp_and_resumes_without_loss() {
    let disk = SmallDisk::start(
        "diskfull",
        &(source("t", "syslog-tcp", "") + &source("u", "syslog-udp", "")),
    );
    let lc = &disk.lc;
    let filler = fill(&disk.state);
    // The first write after the disk filled up fails with ENOSPC: lc pauses.
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(b"<13>first\n").unwrap();
    wait_for(10, "disk full noticed", || {
        lc.status()["disk"]["full"] == true
    });
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        udp.send_to(b"<13>while full", lc.addr("u", "udp")).unwrap();
    }
    wait_for(10, "UDP drops counted", || {
        lc.source_status("u")["drops"]["disk_full"] == 5
    });
    let sender = std::thread::spawn(move || {
        for i in 0..20_000 {
            s.write_all(format!("<13>queued {i:05}\n").as_bytes())
                .unwrap();
        }
    });
    assert!(
        lc.log().contains("disk full; pausing stream receivers"),
        "{}",
        lc.log()
    );
    std::fs::remove_file(filler).unwrap();
    sender.join().unwrap();
    wait_for(
        20,
        "all queued lines written after the disk has room",
        || lc.lines("t").len() == 20_001,
    );
    let lines = lc.lines("t");
    assert_eq!(lines[0], "<13>first");
    for (i, l) in lines[1..].iter().enumerate() {
        assert_eq!(l, &format!("<13>queued {i:05}"));
    }
    wait_for(10, "resumed", || lc.status()["disk"]["full"] == false);
    assert!(lc.log().contains("receivers resumed"));
}

/// Issue 12, bug 1: a SIGTERM while the disk was full read what the senders had queued, could
/// not write it and exited 0 with the messages gone and no counter. Every message lc read must
/// be on disk or counted (and logged) as lost.
#[test]
fn a_stop_while_the_disk_is_full_never_reads_what_it_cannot_store() {
    let mut disk = SmallDisk::start("stopfull", &source("t", "syslog-tcp", ""));
    let _filler = fill(&disk.state);
    let lc = &mut disk.lc;
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(b"<13>first\n").unwrap();
    wait_for(10, "disk full noticed", || {
        lc.status()["disk"]["full"] == true
    });
    // Queue what the kernel takes while lc is paused, then stop lc with it unread.
    s.set_nonblocking(true).unwrap();
    let mut queued = 0;
    let line = format!("<13>queued {}\n", "x".repeat(80));
    while queued < 50_000 && s.write_all(line.as_bytes()).is_ok() {
        queued += 1;
    }
    assert!(queued > 100, "the kernel took only {queued} lines");
    lc.stop();
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lc.dir.0.join("run/all.json")).unwrap())
            .unwrap();
    let t = st["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "t")
        .unwrap();
    let read = t["messages"].as_u64().unwrap();
    let lost = t["drops"]["disk_full"].as_u64().unwrap();
    let stored = lc.lines("t").len() as u64;
    assert_eq!(
        read,
        stored + lost,
        "read {read}, stored {stored}, counted lost {lost}\n{}",
        lc.log()
    );
    if lost > 0 {
        assert!(lc.log().contains("could not be written before the stop"));
    }
}

/// A read-only bind mount, undone on drop.
struct ReadOnly(std::path::PathBuf);

impl ReadOnly {
    fn mount(path: &std::path::Path) -> ReadOnly {
        let sh = |args: &[&str]| {
            let st = std::process::Command::new("mount")
                .args(args)
                .arg(path)
                .arg(path)
                .status()
                .unwrap();
            assert!(st.success(), "mount {args:?} (needs root)");
        };
        sh(&["--bind"]);
        let guard = ReadOnly(path.to_path_buf());
        sh(&["-o", "remount,bind,ro"]);
        guard
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_state_dir_that_cannot_be_written_stops_the_start_with_the_folder_named() {
    // As under systemd's ProtectSystem=strict when state_dir moved without ReadWritePaths:
    // the folders exist, writing fails. lc must refuse to start, not take lines it cannot keep.
    let mut lc = Lc::start("readonly", "", "", &source("t", "syslog-tcp", ""));
    lc.stop();
    let state = lc.state();
    let _ro = ReadOnly::mount(&state);
    let out = std::process::Command::new(crate::harness::LC)
        .args(["run", "--config"])
        .arg(&lc.config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: cannot write here",
            state.join("spool/t").display()
        )) && stderr.contains("Read-only file system"),
        "{stderr}"
    );
}

/// Issue 12, bug 3: a backup prune that failed made the delivery fail after its segment had
/// left the spool, so the retry never found it and no later segment was ever delivered.
#[test]
fn a_backup_prune_that_fails_does_not_stop_delivery() {
    let lc = Lc::start(
        "prune-fails",
        "rotate_bytes = 4K\nrotate_secs = 1\nbackup_keep = 0",
        "",
        &source("t", "syslog-tcp", ""),
    );
    // A folder named like a segment: prune cannot remove it.
    std::fs::create_dir_all(lc.state().join("backup/t/0000000000-x.log.gz/x")).unwrap();
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    for i in 0..300 {
        s.write_all(format!("<13>message {i:04} padded to fill segments quickly\n").as_bytes())
            .unwrap();
    }
    wait_for(20, "every segment delivered", || {
        let spool = lc.state().join("spool/t");
        lc.lines("t").len() == 300
            && segments_in(&spool, ".log").is_empty()
            && segments_in(&spool, ".gz").is_empty()
    });
    assert!(lc.delivered("t") >= 3);
    assert!(lc.log().contains("pruning backup"), "{}", lc.log());
}

/// Issue 12, bug 6: a raw segment whose compressed copy did not fit the free space could not
/// be sealed, and left nothing sealed to evict: lc stayed paused for good. It is evicted
/// (counted) when nothing else frees space, and lc goes on.
#[test]
fn a_segment_too_big_to_seal_on_a_full_disk_is_evicted_and_lc_goes_on() {
    let dir = crate::harness::TempDir::new("unsealable");
    let state = dir.0.join("state");
    let _tmpfs = Tmpfs::mount(&state, "8m");
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        format!(
            "[collector]\nname = it\nstate_dir = {d}/state\nrun_dir = {d}/run\nlisten = 127.0.0.1\n\
             [spool]\nmin_free_bytes = 1M\nrotate_bytes = 5M\nmax_spool_bytes = 64M\n[delivery]\nurl = dir:{d}/outbox\n{}",
            source("t", "syslog-tcp", ""),
            d = dir.0.display()
        ),
    )
    .unwrap();
    let lc = Lc::attach(dir, config);
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    // Lines that hardly compress: the sealed copy of a 5 MB segment needs about 4 MB, more
    // than the tmpfs has left beside it.
    let sender = std::thread::spawn(move || {
        let mut x = 0x9E3779B97F4A7C15u64;
        for i in 0..80_000 {
            let mut line = format!("<13>noise {i:06} ");
            for _ in 0..80 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                line.push((b'!' + (x % 94) as u8) as char);
            }
            line.push('\n');
            s.write_all(line.as_bytes()).unwrap();
        }
        s.write_all(b"<13>the last line\n").unwrap();
    });
    wait_for(60, "the unsealable segment evicted", || {
        lc.source_status("t")["drops"]["evicted_segments"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    });
    sender.join().unwrap();
    wait_for(30, "the last line stored and receivers resumed", || {
        lc.lines("t")
            .last()
            .is_some_and(|l| l == "<13>the last line")
            && lc.status()["disk"]["full"] == false
    });
    assert!(
        lc.log().contains("compressed copy did not fit"),
        "{}",
        lc.log()
    );
}

/// Issue 12, bug 9: at start lc followed a link named like a raw segment (truncating and
/// delivering its target outside state_dir), delivered a truncated `.gz` without a word, and
/// let a second instance serve the same spool folder.
#[test]
fn planted_and_damaged_segments_are_quarantined_and_a_second_instance_is_refused() {
    let dir = crate::harness::TempDir::new("planted");
    let spool = dir.0.join("state/spool/t");
    std::fs::create_dir_all(&spool).unwrap();
    let outside = dir.0.join("outside.txt");
    std::fs::write(&outside, b"not lc's\ntorn tail").unwrap();
    std::os::unix::fs::symlink(&outside, spool.join("0000000005-20260101T000000Z.log")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"<13>a line that never arrives whole\n")
        .unwrap();
    let gz = gz.finish().unwrap();
    std::fs::write(
        spool.join("0000000006-20260101T000000Z.log.gz"),
        &gz[..gz.len() - 6],
    )
    .unwrap();
    let config = dir.0.join("lc.ini");
    std::fs::write(
        &config,
        format!(
            "{}{}",
            crate::harness::base_config(&dir.0, "rotate_secs = 1", ""),
            source("t", "syslog-tcp", "")
        ),
    )
    .unwrap();
    let lc = Lc::attach(dir, config);
    let mut s = TcpStream::connect(lc.addr("t", "tcp")).unwrap();
    s.write_all(b"<13>after\n").unwrap();
    wait_for(20, "both quarantined and the new line delivered", || {
        lc.source_status("t")["drops"]["quarantined_segments"] == 2 && lc.delivered("t") == 1
    });
    assert_eq!(std::fs::read(&outside).unwrap(), b"not lc's\ntorn tail");
    assert_eq!(lc.lines("t"), ["<13>after"]);
    let q = spool.join("quarantine");
    assert!(q
        .join("0000000005-20260101T000000Z.log")
        .symlink_metadata()
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(q.join("0000000006-20260101T000000Z.log.gz").exists());
    let log = lc.log();
    assert!(log.contains("not lc's own segment"), "{log}");
    assert!(log.contains("not an intact gzip file"), "{log}");

    // A second instance with the same state_dir (a source moved to another port).
    let other = lc.dir.0.join("other.ini");
    let mut text = crate::harness::base_config(&lc.dir.0, "", "");
    text = text.replace("/run", "/run2");
    std::fs::write(&other, text + &source("t", "syslog-udp", "")).unwrap();
    let mut second = std::process::Command::new(crate::harness::LC)
        .args(["run", "--config"])
        .arg(&other)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    wait_for(20, "the second instance to refuse", || {
        status = second.try_wait().unwrap();
        status.is_some()
    });
    assert!(!status.unwrap().success());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains("in use by another lc instance"), "{err}");
    assert!(err.contains(&format!("(pid {})", lc.pid())), "{err}");
}
