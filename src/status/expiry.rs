//! Certificate expiry: the stages at which an expiring certificate is warned about (30, 7
//! and 1 days before), for the status table, the log and `lc status --check`. Pure.

use serde_json::Value;

use crate::clock;

/// Certificates are warned about this long before they expire (status, log, `--check`).
pub const EXPIRY_WARN_DAYS: [u64; 3] = [30, 7, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Expired,
    /// Within `EXPIRY_WARN_DAYS[0]` days: the seconds left.
    Within(u64),
    Fine,
}

/// Whether a certificate valid until `not_after` (unix seconds) expires soon.
pub fn expiry(not_after: i64, now: u64) -> Expiry {
    let now = now as i64;
    if not_after <= now {
        Expiry::Expired
    } else if (not_after - now) as u64 <= EXPIRY_WARN_DAYS[0] * 86400 {
        Expiry::Within((not_after - now) as u64)
    } else {
        Expiry::Fine
    }
}

/// The smallest of `EXPIRY_WARN_DAYS` that `not_after` is within (0 = expired), for the log's
/// warnings at 30, 7 and 1 days.
pub fn expiry_stage(not_after: i64, now: u64) -> Option<u64> {
    let left = not_after - now as i64;
    if left <= 0 {
        return Some(0);
    }
    EXPIRY_WARN_DAYS
        .iter()
        .rev()
        .find(|d| left as u64 <= *d * 86400)
        .copied()
}

/// The certificates an instance's snapshot names: (what, notAfter).
pub fn certificates(s: &Value) -> Vec<(&'static str, i64)> {
    [
        ("syslog-tls certificate", &s["tls"]["not_after"]),
        ("syslog-tls client CA", &s["tls"]["client_ca_not_after"]),
        ("FTPS certificate", &s["ftp"]["tls"]["not_after"]),
    ]
    .into_iter()
    .filter_map(|(what, v)| Some((what, v.as_i64()?)))
    .collect()
}

/// The log lines due for certificates expiring at 30, 7 and 1 days (and expired): each stage
/// of each certificate once; `said` remembers (notAfter, stage) per certificate, so a new
/// certificate (another notAfter) starts over.
pub fn expiry_warnings(
    snapshot: &Value,
    said: &mut std::collections::HashMap<&'static str, (i64, u64)>,
    now: u64,
) -> Vec<String> {
    let mut out = Vec::new();
    for (what, not_after) in certificates(snapshot) {
        let Some(stage) = expiry_stage(not_after, now) else {
            said.remove(what);
            continue;
        };
        if said.get(what) == Some(&(not_after, stage)) {
            continue;
        }
        said.insert(what, (not_after, stage));
        let at = clock::rfc3339(not_after.max(0) as u64);
        out.push(if stage == 0 {
            format!("{what}: expired {at}; replace it (lc certs reload)")
        } else {
            format!(
                "{what}: expires {at}, in {}; replace it (lc certs reload)",
                clock::human_age((not_after - now as i64).max(0) as u64)
            )
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::NOW;
    use super::*;
    use serde_json::json;

    #[test]
    fn certificates_expire_in_stages() {
        let day = 86400;
        // (seconds left, stage, expiry)
        let cases: [(i64, Option<u64>, Expiry); 7] = [
            (-5, Some(0), Expiry::Expired),
            (0, Some(0), Expiry::Expired),
            (3600, Some(1), Expiry::Within(3600)),
            (2 * day, Some(7), Expiry::Within(2 * day as u64)),
            (7 * day, Some(7), Expiry::Within(7 * day as u64)),
            (29 * day, Some(30), Expiry::Within(29 * day as u64)),
            (31 * day, None, Expiry::Fine),
        ];
        for (left, stage, exp) in cases {
            let at = NOW as i64 + left;
            assert_eq!(expiry_stage(at, NOW), stage, "{left}");
            assert_eq!(expiry(at, NOW), exp, "{left}");
        }
    }

    #[test]
    fn certificate_expiry_is_said_at_30_7_and_1_days() {
        let day = 86400;
        let mut said = std::collections::HashMap::new();
        let snap = |not_after: u64| json!({ "tls": { "not_after": not_after } });
        let na = NOW + 40 * day;
        // (days before notAfter, lines said)
        for (before, n) in [
            (40, 0),
            (30, 1),
            (29, 0),
            (8, 0),
            (7, 1),
            (6, 0),
            (1, 1),
            (0, 1),
            (0, 0),
        ] {
            let lines = expiry_warnings(&snap(na), &mut said, na - before * day);
            assert_eq!(lines.len(), n, "{before} days before: {lines:?}");
        }
        // A new certificate starts over.
        let lines = expiry_warnings(&snap(NOW + 20 * day), &mut said, NOW);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("syslog-tls certificate: expires "),
            "{lines:?}"
        );
    }
}
