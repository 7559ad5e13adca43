//! Wall-clock formatting without a date crate: UTC only, which is all lc writes (file names,
//! status snapshots). Civil-from-days follows Howard Hinnant's public-domain algorithm.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch, saturating at 0 for clocks set before 1970.
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Year, month, day, hour, minute, second of `secs` since the epoch, UTC.
pub fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem / 60 % 60) as u32,
        (rem % 60) as u32,
    )
}

/// Milliseconds since the epoch, now.
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `20261126T234500Z`: sortable, and safe in file names.
pub fn compact(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// `2026-11-26T23:45:00Z` (RFC 3339).
pub fn rfc3339(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `Nov 27 01:23` for times within six months of `now`, `Nov 27  2025` otherwise: the date
/// column of `ls -l`, which FTP clients parse in LIST output.
pub fn ls_date(secs: u64, now: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, _) = civil(secs);
    let month = MONTHS[(mo - 1) as usize];
    if now.abs_diff(secs) < 180 * 86400 {
        format!("{month} {d:>2} {h:02}:{mi:02}")
    } else {
        format!("{month} {d:>2}  {y}")
    }
}

/// `3d4h`, `12m5s`, `40s`: for ages in `lc status`.
pub fn human_age(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{}s", secs / 60, secs % 60),
        3600..=86399 => format!("{}h{}m", secs / 3600, secs / 60 % 60),
        _ => format!("{}d{}h", secs / 86400, secs / 3600 % 24),
    }
}

/// A delay between half and all of `d`, so collectors that failed together don't retry
/// together.
pub fn jitter(d: std::time::Duration) -> std::time::Duration {
    d / 2 + d.mul_f64(spread() / 2.0)
}

/// A number in [0, 1) that differs between processes and calls: xorshift over the clock's
/// nanoseconds (no need for better randomness to spread retries).
pub fn spread() -> f64 {
    let mut x = SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |t| t.subsec_nanos() as u64 | 1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    (x % 1000) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(compact(951_782_400), "20000229T000000Z");
        assert_eq!(rfc3339(1_795_737_900), "2026-11-27T00:05:00Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(ls_date(1_795_737_900, 1_795_737_900), "Nov 27 00:05");
        assert_eq!(ls_date(951_782_400, 1_795_737_900), "Feb 29  2000");
        assert_eq!(human_age(59), "59s");
        assert_eq!(human_age(3600 * 25), "1d1h");
    }
}
