//! The recognizers against `tests/corpus/formats/TYPE.log` (one file per family, named by its
//! first source type name, or by the family for those without one): each file's lines, as they
//! are (an uploaded file), as lc stores them with `render = raw` (`<PRI>` in front) and with
//! `render = vendor`. Every file must be recognised as its own family at >= 95 % of its lines
//! in each form, as any other family at <= 5 % unless [`super::COVERS`] says why, and be
//! [`super::guess`]ed right at >= 95 %. The sparse confusion matrix is printed
//! (`cargo test corpus -- --nocapture`), and BENCHMARKS.md shows it.

use std::path::Path;

use super::{guess, overlap, Family, Line, KINDS};
use crate::syslog::render::{push, Origin, Render};

const FORMS: [&str; 3] = ["file", "raw", "vendor"];

fn corpus_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/formats"))
}

/// The family a corpus file is for: its first type name, or its family's name in capitals.
fn family_of_file(stem: &str) -> Option<Family> {
    Family::of(stem).or_else(|| {
        KINDS
            .iter()
            .find(|k| format!("{:?}", k.family).to_uppercase() == stem)
            .map(|k| k.family)
    })
}

/// The line as stored in `form`: itself, or the syslog message (`<134>` in front unless it has
/// a PRI) rendered by lc.
fn rendered(line: &str, form: &str) -> Vec<u8> {
    if form == "file" {
        return line.as_bytes().to_vec();
    }
    let msg = if line.starts_with('<') {
        line.to_string()
    } else {
        format!("<134>{line}")
    };
    let mut origin = Origin::new();
    origin.set_peer("10.1.2.3".parse().unwrap());
    origin.set_time(1_700_000_000);
    let render = if form == "raw" {
        Render::Raw
    } else {
        Render::Vendor
    };
    let mut out = Vec::new();
    assert!(push(&mut out, render, msg.as_bytes(), &origin), "{line}");
    out.pop();
    out
}

/// Per family, how many of the lines it recognises; and how many were guessed right.
struct Counts {
    lines: usize,
    hits: Vec<usize>,
    guessed: usize,
}

fn count(own: Family, lines: &[Vec<u8>]) -> Counts {
    let mut c = Counts {
        lines: lines.len(),
        hits: vec![0; KINDS.len()],
        guessed: 0,
    };
    for l in lines {
        let view = Line::new(l);
        for k in KINDS {
            if k.family.recognizes(&view) {
                c.hits[k.family as usize] += 1;
            }
        }
        c.guessed += usize::from(guess(&view) == Some(own));
    }
    c
}

fn pct(n: usize, of: usize) -> f64 {
    100.0 * n as f64 / of.max(1) as f64
}

#[test]
fn corpus_confusion_matrix() {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut covered = Vec::new();
    let mut failures = Vec::new();
    println!("| corpus | lines | own % (file/raw/vendor) | best guess % | other families matched (% of lines, max over forms) |");
    println!("|---|---|---|---|---|");
    for path in &files {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let Some(own) = family_of_file(stem) else {
            failures.push(format!("{}: no family is named {stem}", path.display()));
            continue;
        };
        covered.push(own);
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        if lines.len() < 3 {
            failures.push(format!("{}: fewer than 3 lines", path.display()));
        }
        let mut own_rates = Vec::new();
        let mut guess_min = 100.0f64;
        let mut others = vec![0.0f64; KINDS.len()];
        for form in FORMS {
            let forms: Vec<Vec<u8>> = lines.iter().map(|l| rendered(l, form)).collect();
            let c = count(own, &forms);
            let rate = pct(c.hits[own as usize], c.lines);
            own_rates.push(rate);
            if rate < 95.0 {
                let missed: Vec<String> = forms
                    .iter()
                    .filter(|l| !own.recognizes(&Line::new(l)))
                    .map(|l| String::from_utf8_lossy(l).chars().take(100).collect())
                    .collect();
                failures.push(format!(
                    "{}: {form}: {rate:.0} % recognised as {own:?}; missed: {missed:#?}",
                    path.display()
                ));
            }
            let g = pct(c.guessed, c.lines);
            guess_min = guess_min.min(g);
            if g < 95.0 {
                failures.push(format!(
                    "{}: {form}: best guess right for {g:.0} % of lines",
                    path.display()
                ));
            }
            for k in KINDS {
                let f = k.family;
                if f == own {
                    continue;
                }
                let r = pct(c.hits[f as usize], c.lines);
                others[f as usize] = others[f as usize].max(r);
                if r > 5.0 && overlap(own, f).is_none() {
                    failures.push(format!(
                        "{}: {form}: {r:.0} % of lines also recognised as {f:?}",
                        path.display()
                    ));
                }
            }
        }
        let others: Vec<String> = KINDS
            .iter()
            .filter(|k| others[k.family as usize] > 0.0)
            .map(|k| {
                let why = match overlap(own, k.family) {
                    Some(_) => " (covers)",
                    None => "",
                };
                format!("{} {:.0}{why}", k.name, others[k.family as usize])
            })
            .collect();
        println!(
            "| {stem} | {} | {:.0}/{:.0}/{:.0} | {guess_min:.0} | {} |",
            lines.len(),
            own_rates[0],
            own_rates[1],
            own_rates[2],
            if others.is_empty() {
                "-".to_string()
            } else {
                others.join(", ")
            }
        );
    }
    for k in KINDS {
        if !covered.contains(&k.family) {
            failures.push(format!("{:?} has no corpus file", k.family));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
