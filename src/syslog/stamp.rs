//! The timestamps rsyslog 8.2302 recognises in a message header (`runtime/datetime.c`:
//! `ParseTIMESTAMP3339` and `ParseTIMESTAMP3164`, as its RFC 3164 and RFC 5424 parsers call
//! them) and how `%TIMESTAMP%` renders one (`Mmm dd hh:mm:ss`, RFC 3164 section 4.1.2, the day
//! padded with a space). Only what is rendered is kept: month, day and time of day, as written
//! by the sender (no time zone conversion, no year). Pure functions over a [`Cursor`].

use super::cursor::Cursor;

/// The rendered fields of a timestamp found in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

pub const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

impl Stamp {
    /// `Mmm dd hh:mm:ss`, the tens of the day a space when zero (rsyslog's
    /// `formatTimestamp3164` without the "buggy day" option).
    pub fn render(&self) -> [u8; 15] {
        let mut out = [b' '; 15];
        out[..3].copy_from_slice(MONTHS[(self.month as usize + 11) % 12]);
        let tens = self.day / 10 % 10;
        if tens > 0 {
            out[4] = b'0' + tens;
        }
        out[5] = b'0' + self.day % 10;
        for (i, v) in [(7, self.hour), (10, self.minute), (13, self.second)] {
            out[i] = b'0' + v / 10 % 10;
            out[i + 1] = b'0' + v % 10;
        }
        out[9] = b':';
        out[12] = b':';
        out
    }
}

/// Reads `sep` where rsyslog writes `if(lenStr == 0 || *p++ != sep) fail; --lenStr;`.
fn expect(c: &mut Cursor, sep: u8) -> Option<()> {
    if c.left == 0 || c.at(0) != sep {
        return None;
    }
    c.bump(1);
    Some(())
}

/// `int` within `lo..=hi`, as every field check of both parsers.
fn ranged(c: &mut Cursor, lo: i32, hi: i32) -> Option<u8> {
    let v = c.int();
    (lo..=hi).contains(&v).then_some(v as u8)
}

/// `HH:MM:SS` with rsyslog's leniency: any number of digits, none meaning 0; second 60 allowed.
fn time_of_day(c: &mut Cursor, hour: i32) -> Option<(u8, u8, u8)> {
    if !(0..=23).contains(&hour) {
        return None;
    }
    expect(c, b':')?;
    let minute = ranged(c, 0, 59)?;
    expect(c, b':')?;
    let second = ranged(c, 0, 60)?;
    Some((hour as u8, minute, second))
}

/// Skips `.digits` after the seconds (RFC 5424 TIME-SECFRAC, or Cisco's sub-seconds in 3164).
fn secfrac(c: &mut Cursor) {
    if c.left > 0 && c.at(0) == b'.' {
        c.bump(1);
        c.int();
    }
}

/// An RFC 3339 timestamp (RFC 5424 section 6.2.3), leniently: `Y-M-DTh:m:s[.f](Z|±h:m)`,
/// any digit counts, year below 2100, then a space or the end (the space is eaten). On success
/// the cursor moves past it; on failure it stays where it was.
pub fn rfc3339(c: &mut Cursor) -> Option<Stamp> {
    let mut t = *c;
    let year = t.int();
    if t.left == 0 || t.at(0) != b'-' || year >= 2100 {
        return None;
    }
    t.bump(1);
    let month = ranged(&mut t, 1, 12)?;
    expect(&mut t, b'-')?;
    let day = ranged(&mut t, 1, 31)?;
    expect(&mut t, b'T')?;
    let hour = t.int();
    let (hour, minute, second) = time_of_day(&mut t, hour)?;
    secfrac(&mut t);
    // The offset is required; its value is parsed but not applied (rsyslog renders the
    // sender's wall clock time).
    match t.at(0) {
        _ if t.left == 0 => return None,
        b'Z' => t.bump(1),
        b'+' | b'-' => {
            t.bump(1);
            ranged(&mut t, 0, 23)?;
            if t.left == 0 || t.at(0) != b':' {
                return None;
            }
            t.bump(1);
            ranged(&mut t, 0, 59)?;
        }
        _ => return None,
    }
    end_of_stamp(&mut t)?;
    *c = t;
    Some(Stamp {
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// An RFC 3164 timestamp (section 4.1.2) with rsyslog's extensions: `[YYYY ]Mmm [d]d
/// [YYYY ]hh:mm:ss[.f][:]`, month names in any case, then a space or the end. On success the
/// cursor moves past it; on failure it stays where it was.
pub fn rfc3164(c: &mut Cursor) -> Option<Stamp> {
    if c.left < 3 {
        return None;
    }
    let mut t = *c;
    let mut year = 0;
    if t.at(0).is_ascii_digit() {
        // A year before the date (Brocade, FortiGate's bare lines). rsyslog steps over the
        // space after it without counting it, so from here on `left` is one too many: the end
        // of the message then reads as a NUL (see `rfc3164.rs`).
        year = t.int();
        if !(1970..=2100).contains(&year) || t.at(0) != b' ' {
            return None;
        }
        t.pos += 1;
    }
    let name = [t.at(0), t.at(1), t.at(2)].map(|b| b.to_ascii_lowercase());
    let month = MONTHS
        .iter()
        .position(|m| m.map(|b| b.to_ascii_lowercase()) == name)? as u8
        + 1;
    t.bump(3);
    expect(&mut t, b' ')?;
    // "Apr  9" and "Apr 9" both: one more space is allowed before a one-digit day.
    if t.at(0) == b' ' {
        t.bump(1);
    }
    let day = ranged(&mut t, 1, 31)?;
    expect(&mut t, b' ')?;
    let mut hour = t.int();
    if year == 0 && hour > 1970 && hour < 2100 {
        // Cisco's "Apr 9 2018 16:03:37": a year in place of the hour, then the hour.
        expect(&mut t, b' ')?;
        hour = t.int();
    }
    let (hour, minute, second) = time_of_day(&mut t, hour)?;
    secfrac(&mut t);
    // A colon right after the time (Cisco) is accepted and dropped.
    if t.left > 0 && t.at(0) == b':' {
        t.bump(1);
    }
    end_of_stamp(&mut t)?;
    *c = t;
    Some(Stamp {
        month,
        day,
        hour,
        minute,
        second,
    })
}

/// After a timestamp comes a space (eaten) or, as far as rsyslog's length says, the end.
fn end_of_stamp(t: &mut Cursor) -> Option<()> {
    if t.left > 0 {
        if t.at(0) != b' ' {
            return None;
        }
        t.bump(1);
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `expected`: the rendered stamp and the rest after it, or "-" for "not a timestamp".
    #[track_caller]
    fn check(parse: fn(&mut Cursor) -> Option<Stamp>, input: &str, expected: &str) {
        let mut c = Cursor::new(input.as_bytes(), 0);
        let got = match parse(&mut c) {
            Some(s) => format!(
                "{}|{}|{}",
                String::from_utf8_lossy(&s.render()),
                String::from_utf8_lossy(&input.as_bytes()[c.pos.min(input.len())..]),
                c.left
            ),
            None => {
                assert_eq!(c.pos, 0, "a failed parse leaves the cursor");
                "-".to_string()
            }
        };
        assert_eq!(got, expected, "input {input:?}");
    }

    #[test]
    fn rfc3339_table() {
        let p = rfc3339;
        check(p, "2019-01-01T10:00:00Z x", "Jan  1 10:00:00|x|1");
        check(
            p,
            "2019-12-31T23:59:60.123456+02:00 x",
            "Dec 31 23:59:60|x|1",
        );
        check(p, "2019-01-01T10:00:00Z", "Jan  1 10:00:00||0");
        check(p, "2019-1-1T1:0:0-1:5 h", "Jan  1 01:00:00|h|1");
        check(p, "0-1-1T0:0:0Z x", "Jan  1 00:00:00|x|1");
        check(p, "-01-01T00:00:00Z x", "Jan  1 00:00:00|x|1");
        check(p, "2019-02-31T::Z x", "Feb 31 00:00:00|x|1");
        // Ten fraction digits fit rsyslog's integer, eleven do not.
        check(
            p,
            "2019-01-01T10:00:00.1234567890Z x",
            "Jan  1 10:00:00|x|1",
        );
        check(p, "2019-01-01T10:00:00.12345678901Z x", "-");
        check(p, "2019-01-01T10:00:00.9999999999Z x", "-");
        check(p, "2100-01-01T10:00:00Z x", "-");
        check(p, "2019-01-01T10:00:00 x", "-");
        check(p, "2019-01-01T10:00:00", "-");
        check(p, "2019-01-01T10:00:00Zx", "-");
        check(p, "2019-01-01T24:00:00Z", "-");
        check(p, "2019-13-01T10:00:00Z", "-");
        check(p, "2019-01-00T10:00:00Z", "-");
        check(p, "2019-01-01 10:00:00Z", "-");
        check(p, "2019-01-01T10:00:00+24:00", "-");
        check(p, "2019-01-01T10:00:00+01", "-");
        check(p, "Apr  9 16:03:37 x", "-");
    }

    #[test]
    fn rfc3164_table() {
        let p = rfc3164;
        check(p, "Apr  9 16:03:37 host", "Apr  9 16:03:37|host|4");
        check(p, "Apr 09 16:03:37 host", "Apr  9 16:03:37|host|4");
        check(p, "Apr 9 16:03:37 host", "Apr  9 16:03:37|host|4");
        check(p, "apr  9 16:03:37 h", "Apr  9 16:03:37|h|1");
        check(p, "DEC 31 23:59:60 h", "Dec 31 23:59:60|h|1");
        check(p, "Apr  9 16:03:37", "Apr  9 16:03:37||0");
        check(p, "Apr  9 16:03:37.123 h", "Apr  9 16:03:37|h|1");
        check(p, "Apr  9 16:03:37: h", "Apr  9 16:03:37|h|1");
        check(p, "Apr  9 2018 16:03:37 h", "Apr  9 16:03:37|h|1");
        check(p, "Apr  9 16:3:7 h", "Apr  9 16:03:07|h|1");
        check(p, "Apr  9 :: h", "Apr  9 00:00:00|h|1");
        // A year first: the space after it is not counted, `left` stays one too many.
        check(p, "2018 Apr 09 16:03:37 fgt x", "Apr  9 16:03:37|fgt x|6");
        check(p, "2018 Apr 09 16:03:37 ", "Apr  9 16:03:37||1");
        check(p, "2018 Apr 09 16:03:37", "-");
        check(p, "1969 Apr 09 16:03:37 h", "-");
        check(p, "2018  Apr 09 16:03:37 h", "-");
        check(p, "Apr 31 25:03:37 h", "-");
        check(p, "Apr  0 16:03:37 h", "-");
        check(p, "Apr 32 16:03:37 h", "-");
        check(p, "Apr   9 16:03:37 h", "-");
        check(p, "Apr  9 16:03:37x", "-");
        check(p, "Apr  9 16:60:37 h", "-");
        check(p, "Apl  9 16:03:37 h", "-");
        check(p, "Ap", "-");
        check(p, " Apr  9 16:03:37 h", "-");
    }
}
