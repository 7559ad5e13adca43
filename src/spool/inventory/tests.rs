//! The inventory's script tables: events in, actions and states out.

use super::*;

/// Runs a script against an inventory whose `next_seq` is 1 and that holds `sealed`
/// (`SEQ` or `SEQ.PARTS` words, 10 bytes a file). One line is one event, optionally after
/// `@SECS` (the time since the start; else the last one):
///
/// `raw SEQ` (100 bytes), `sealed SEQ PARTS`, `gz SEQ` (an FTP gzip kept as it came),
/// `sealfail SEQ`, `gone SEQ`, `ok` (the batch delivered), `fail transient|after=S|permanent
/// nothing|stored|acked` (spread 0.5), `defer SECS` (the batch given back for the API
/// budget), `quarantine SEQ`, `tick`, `reload`, `stop`,
/// `reserve`, `evict SEQ[.PART]` (says whether eviction may take it, and takes it if so),
/// `outbox`, `start`; and `?`, which shows each segment's
/// state (`3:sealed 4:sending`), `settled` and the retry time.
///
/// Expected: what each event answered, one line per action (`seal 3`, `reseal 3`,
/// `deliver 3 3-p1 4`), per retry (`retry in 1.5s`), per reserved number (`seq 5`).
#[track_caller]
fn check(sealed: &str, script: &[&str], expected: &[&str]) {
    let t0 = Instant::now();
    let mut now = t0;
    let files = sealed.split_whitespace().flat_map(|w| {
        let (seq, parts) = w.split_once('.').unwrap_or((w, "1"));
        let seq: u64 = seq.parse().unwrap();
        (0..parts.parse::<u32>().unwrap()).map(move |k| file(seq, k))
    });
    let mut inv = Inventory::new(1, files.collect());
    let mut got = Vec::new();
    for line in script {
        let line = match line.strip_prefix('@') {
            Some(rest) => {
                let (secs, rest) = rest.split_once(' ').unwrap_or((rest, ""));
                now = t0 + Duration::from_secs_f64(secs.parse().unwrap());
                rest
            }
            None => line,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| -> u64 { words[i].parse().unwrap() };
        let actions = match words[..] {
            ["raw", _] => vec![inv.raw(num(1), raw_path(num(1)), 100)],
            ["sealed", _, _] => {
                let parts = (0..num(2) as u32).map(|k| file(num(1), k)).collect();
                inv.sealed(num(1), parts, now)
            }
            ["gz", _] => {
                let f = Sealed {
                    alone: true,
                    ..file(num(1), 0)
                };
                inv.adopted_sealed(f, now)
            }
            ["sealfail", _] => {
                if !inv.seal_failed(num(1), now) {
                    got.push("not retried".to_string());
                }
                vec![]
            }
            ["gone", _] => {
                inv.raw_gone(num(1));
                vec![]
            }
            ["ok"] => {
                let files = inv.batch.as_ref().map(|b| b.files.clone());
                inv.delivered(&files.unwrap_or_default(), now)
            }
            ["fail", how, kept] => {
                let failure = match how {
                    "permanent" => Failure::Permanent { reason: "x".into() },
                    _ => Failure::Transient {
                        reason: "x".into(),
                        after: how
                            .strip_prefix("after=")
                            .map(|s| Duration::from_secs(s.parse().unwrap())),
                    },
                };
                let kept = match kept {
                    "nothing" => Kept::Nothing,
                    "stored" => Kept::Stored,
                    _ => Kept::Acked,
                };
                let wait = inv.delivery_failed(kept, &failure, 0.5, now);
                got.push(format!("retry in {}s", wait.as_secs_f64()));
                vec![]
            }
            ["defer", _] => {
                inv.deferred(Duration::from_secs(num(1)), now);
                vec![]
            }
            ["quarantine", _] => {
                let paths: Vec<PathBuf> = inv
                    .sealed
                    .iter()
                    .filter(|s| s.seq == num(1))
                    .map(|s| s.path.clone())
                    .collect();
                inv.quarantined(&paths, now)
            }
            ["tick"] => inv.tick(now),
            ["reload"] => inv.retry_now(now),
            ["stop"] => {
                inv.stop();
                vec![]
            }
            ["start"] => inv.start(now),
            ["outbox"] => {
                inv.set_limits(Limits::OUTBOX);
                vec![]
            }
            ["reserve"] => {
                got.push(format!("seq {}", inv.reserve()));
                vec![]
            }
            ["evict", what] => {
                let name = match what.split_once('.') {
                    Some((seq, part)) => file(seq.parse().unwrap(), part.parse().unwrap()).path,
                    None => file(what.parse().unwrap(), 0).path,
                };
                let path = if inv.sealing.iter().any(|r| r.seq.to_string() == *what) {
                    raw_path(what.parse().unwrap())
                } else {
                    name
                };
                let evictable = inv.evictable().any(|s| s.path == path)
                    || inv.unsealable().any(|r| r.path == path);
                got.push(format!("evictable {evictable}"));
                if evictable {
                    inv.evict(&path);
                }
                vec![]
            }
            ["?"] => {
                got.push(show(&inv, t0));
                vec![]
            }
            _ => panic!("bad script line {line:?}"),
        };
        got.extend(actions.iter().map(render));
    }
    assert_eq!(got, expected, "{script:#?}");
}

fn raw_path(seq: u64) -> PathBuf {
    PathBuf::from(format!("{seq}.log"))
}

/// Part `k` of segment `seq`, 10 bytes, sealed at `seq` seconds.
fn file(seq: u64, k: u32) -> Sealed {
    let name = match k {
        0 => format!("{seq}"),
        k => format!("{seq}-p{k}"),
    };
    Sealed {
        seq,
        part: k,
        path: PathBuf::from(name),
        bytes: 10,
        sealed_at: seq,
        alone: false,
    }
}

fn render(a: &Action) -> String {
    match a {
        Action::Seal { seq, raw } => {
            assert_eq!(*raw, raw_path(*seq));
            format!("seal {seq}")
        }
        Action::Reseal { seq, .. } => format!("reseal {seq}"),
        Action::Deliver(files) => {
            let names: Vec<_> = files.iter().map(|p| p.display().to_string()).collect();
            format!("deliver {}", names.join(" "))
        }
    }
}

fn show(inv: &Inventory, t0: Instant) -> String {
    let mut seqs: Vec<u64> = inv.sealing.iter().map(|r| r.seq).collect();
    seqs.extend(inv.sealed.iter().map(|s| s.seq));
    seqs.sort();
    seqs.dedup();
    let mut words: Vec<String> = seqs
        .iter()
        .map(|&seq| {
            let state = match inv.state(seq).unwrap() {
                State::Sealing => "sealing",
                State::SealFailed => "sealfailed",
                State::Sealed => "sealed",
                State::Batch(Flight::Sending) => "sending",
                State::Batch(Flight::Stored) => "stored",
                State::Batch(Flight::Acked) => "acked",
            };
            format!("{seq}:{state}")
        })
        .collect();
    if inv.settled() {
        words.push("settled".into());
    }
    if let Some(t) = inv.retry_at() {
        words.push(format!("retry@{}", t.duration_since(t0).as_secs_f64()));
    }
    words.join(" ")
}

#[test]
fn segments_go_from_raw_to_sealed_to_one_batch_at_a_time() {
    check("", &["?"], &["settled"]);
    check(
        "",
        &[
            "raw 1",
            "?",
            "sealed 1 1",
            "?",
            "raw 2",
            "sealed 2 1",
            "?",
            "ok",
            "?",
        ],
        &[
            "seal 1",
            "1:sealing",
            "deliver 1",
            "1:sending",
            "seal 2",
            // One batch with the delivery thread at a time: 2 waits for it.
            "1:sending 2:sealed",
            "deliver 2",
            "2:sending",
        ],
    );
    // A backlog leaves as one batch; a segment in parts goes whole, in order.
    check(
        "1 2.2 3",
        &["start", "?"],
        &["deliver 1 2 2-p1 3", "1:sending 2:sending 3:sending"],
    );
    // An FTP gzip goes alone; the outbox takes one segment at a time.
    check("1 2", &["gz 3", "ok", "ok"], &["deliver 1 2", "deliver 3"]);
    check(
        "1 2",
        &["outbox", "start", "ok"],
        &["deliver 1", "deliver 2"],
    );
    // Sealing out of order still delivers oldest first.
    check(
        "",
        &["raw 1", "raw 2", "sealed 2 1", "ok", "sealed 1 1"],
        &["seal 1", "seal 2", "deliver 2", "deliver 1"],
    );
    // An empty segment seals to nothing.
    check("", &["raw 1", "sealed 1 0", "?"], &["seal 1", "settled"]);
    // Recovered raw segments are sealed at start.
    check("5", &["raw 6", "start"], &["seal 6", "seal 6", "deliver 5"]);
}

#[test]
fn failed_deliveries_wait_and_back_off() {
    check(
        "1",
        &[
            "start",
            "fail transient nothing",
            "?",
            "@0.7 tick",
            "@0.75 tick",
            "fail transient nothing",
            "@2.25 tick",
            "fail after=30 nothing",
            "@32.2 tick",
            "@32.25 tick",
            "fail transient nothing",
            "fail permanent nothing",
            "@400 tick",
            "ok",
            "raw 2",
            "sealed 2 1",
            "fail transient nothing",
        ],
        &[
            "deliver 1",
            // Between half and all of 1 s (spread 0.5), then doubling.
            "retry in 0.75s",
            "1:sealed settled retry@0.75",
            "deliver 1",
            "retry in 1.5s",
            "deliver 1",
            // Retry-After wins; the backoff still grows.
            "retry in 30s",
            "deliver 1",
            "retry in 6s",
            "retry in 300s",
            "deliver 1",
            "seal 2",
            "deliver 2",
            // Delivered: the backoff starts over.
            "retry in 0.75s",
        ],
    );
    // Backoff stops at a minute; a reload retries at once.
    let mut script = vec!["start"];
    script.extend(["fail transient nothing"; 8]);
    script.push("reload");
    script.push("fail transient nothing");
    check(
        "1",
        &script,
        &[
            "deliver 1",
            "retry in 0.75s",
            "retry in 1.5s",
            "retry in 3s",
            "retry in 6s",
            "retry in 12s",
            "retry in 24s",
            "retry in 45s",
            "retry in 45s",
            "deliver 1",
            "retry in 0.75s",
        ],
    );
}

/// A batch given back because the API budget is spent waits without backing off, then goes
/// with everything sealed during the wait.
#[test]
fn a_deferred_batch_is_chosen_again_with_what_sealed_meanwhile() {
    check(
        "1",
        &[
            "start",
            "defer 20",
            "?",
            "raw 2",
            "sealed 2 1",
            "@10 tick",
            "raw 3",
            "sealed 3 1",
            "@20 tick",
            "fail transient nothing",
        ],
        &[
            "deliver 1",
            "1:sealed settled retry@20",
            "seal 2",
            "seal 3",
            "deliver 1 2 3",
            // Not a failure: the backoff did not grow.
            "retry in 0.75s",
        ],
    );
}

/// A batch that failed before anything was stored is chosen again, with what came since;
/// one whose parts are stored goes again with the same files.
#[test]
fn a_held_batch_is_retried_with_the_same_files() {
    check(
        "1",
        &["start", "fail transient nothing", "sealed 2 1", "@1 tick"],
        &["deliver 1", "retry in 0.75s", "deliver 1 2"],
    );
    check(
        "1",
        &[
            "start",
            "fail transient stored",
            "sealed 2 1",
            "?",
            "@1 tick",
            "ok",
        ],
        &[
            "deliver 1",
            "retry in 0.75s",
            "1:stored 2:sealed settled retry@0.75",
            "deliver 1",
            "deliver 2",
        ],
    );
    // Eviction may take part of a stored batch: the retry sends the rest.
    check(
        "1 2",
        &["start", "fail transient stored", "evict 1", "@1 tick"],
        &[
            "deliver 1 2",
            "retry in 0.75s",
            "evictable true",
            "deliver 2",
        ],
    );
    // A quarantined segment leaves; the rest of its batch is chosen again.
    check(
        "1 2 3",
        &["start", "fail transient stored", "quarantine 2", "@1 tick"],
        &["deliver 1 2 3", "retry in 0.75s", "deliver 1 3"],
    );
}

/// Issue 12, bug 3: upload progress was forgotten before the move to backup, so a failing
/// move uploaded the segment again and again. `done_upload` succeeded, backup pending, is
/// a state of its own: retried with the same files (the delivery thread only moves them),
/// never evicted, never joined by newer segments; a later delivery goes on.
#[test]
fn acknowledged_but_not_moved_is_a_state_of_its_own() {
    check(
        "1 2",
        &[
            "start",
            "fail transient acked",
            "?",
            "sealed 3 1",
            "evict 1",
            "?",
            "@1 tick",
            "fail transient acked",
            "@3 tick",
            "ok",
            "?",
        ],
        &[
            "deliver 1 2",
            "retry in 0.75s",
            "1:acked 2:acked settled retry@0.75",
            "evictable false",
            "1:acked 2:acked 3:sealed settled retry@0.75",
            "deliver 1 2",
            "retry in 1.5s",
            "deliver 1 2",
            "deliver 3",
            "3:sending",
        ],
    );
    // In flight, nothing of the batch is evictable; the rest is.
    check(
        "1 2",
        &["outbox", "start", "evict 1", "evict 2"],
        &["deliver 1", "evictable false", "evictable true"],
    );
}

/// Issue 12, bug 6: a raw segment whose seal fails (its compressed copy does not fit)
/// stays evictable, so eviction always has a way forward; failed seals are retried after
/// `SEAL_RETRY`, one send each, and a raw segment that is gone is forgotten.
#[test]
fn failed_seals_are_retried_and_evictable() {
    check(
        "",
        &[
            "raw 1",
            "raw 2",
            "sealfail 1",
            "?",
            "@9 tick",
            "@10 tick",
            "?",
            "sealfail 1",
            "@20 tick",
            "evict 1",
            "?",
        ],
        &[
            "seal 1",
            "seal 2",
            "1:sealfailed 2:sealing",
            "reseal 1",
            "1:sealing 2:sealing",
            "reseal 1",
            // With the sealer again: not evictable while it works.
            "evictable false",
            "1:sealing 2:sealing",
        ],
    );
    check(
        "",
        &["raw 1", "sealfail 1", "evict 1", "?"],
        &["seal 1", "evictable true", "settled"],
    );
    check(
        "",
        &["raw 1", "sealfail 1", "@10 tick", "gone 1", "?"],
        &["seal 1", "reseal 1", "settled"],
    );
    // A seal failure does not hold delivery up.
    check(
        "1",
        &["raw 2", "sealfail 2", "start"],
        &["seal 2", "deliver 1"],
    );
}

/// A stop sends no new batch and waits only for what the workers hold; a seal that fails
/// then is left to the next start.
#[test]
fn a_stop_waits_for_the_workers_only() {
    check(
        "1",
        &["start", "raw 2", "stop", "?", "sealed 2 1", "?", "ok", "?"],
        &[
            "deliver 1",
            "seal 2",
            "1:sending 2:sealing",
            "1:sending 2:sealed",
            "2:sealed settled",
        ],
    );
    check(
        "",
        &["raw 1", "stop", "sealfail 1", "?"],
        &["seal 1", "not retried", "settled"],
    );
    check(
        "",
        &["raw 1", "sealfail 1", "stop", "?"],
        &["seal 1", "1:sealfailed settled"],
    );
}

/// Issue 12, bug 8: sequence numbers never go back, whatever leaves the spool; what the
/// inventory learns (recovered, sealed, adopted) only raises them.
#[test]
fn sequence_numbers_never_go_back() {
    check(
        "",
        &["reserve", "reserve", "raw 1", "sealed 1 1", "ok", "reserve"],
        &["seq 1", "seq 2", "seal 1", "deliver 1", "seq 3"],
    );
    check("7", &["reserve"], &["seq 8"]);
    check(
        "",
        &["raw 41", "sealed 41 1", "ok", "reserve"],
        &["seal 41", "deliver 41", "seq 42"],
    );
    check(
        "",
        &["gz 9999999999", "reserve"],
        &["deliver 9999999999", "seq 10000000000"],
    );
    let mut inv = Inventory::new(50, vec![file(3, 0)]);
    inv.recovered(vec![(4, raw_path(4), 1)]);
    assert_eq!(inv.reserve(), 50);
    let mut inv = Inventory::new(1, vec![file(3, 0)]);
    inv.recovered(vec![(4, raw_path(4), 1)]);
    assert_eq!(inv.reserve(), 5);
}
