//! A read position over a sanitized message, with rsyslog's parsers' two quirks built in: a
//! remaining-length counter kept apart from the position (so it can disagree with the bytes left,
//! as it does after a year before an RFC 3164 date), and a NUL read past the end (rsyslog's
//! buffers are NUL-terminated, so its parsers peek one byte beyond the message). Used by
//! `stamp.rs`, `rfc5424.rs` and `rfc3164.rs`; no I/O.

#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    pub buf: &'a [u8],
    /// The position in `buf`; may pass its end by one, where the NUL terminator would be.
    pub pos: usize,
    /// What rsyslog believes is left (`lenMsg`/`lenStr`); normally `buf.len() - pos`.
    pub left: isize,
}

impl<'a> Cursor<'a> {
    pub fn new(buf: &'a [u8], pos: usize) -> Cursor<'a> {
        Cursor {
            buf,
            pos,
            left: buf.len() as isize - pos as isize,
        }
    }

    /// The byte `k` after the position, or NUL past the end.
    #[inline]
    pub fn at(&self, k: usize) -> u8 {
        self.buf.get(self.pos + k).copied().unwrap_or(0)
    }

    #[inline]
    pub fn bump(&mut self, n: usize) {
        self.pos += n;
        self.left -= n as isize;
    }

    /// rsyslog's `srSLMGParseInt32`: decimal digits while there is length left, stopping before
    /// the value could overflow; no digits is 0.
    pub fn int(&mut self) -> i32 {
        let mut i: i32 = 0;
        while self.left > 0 && self.at(0).is_ascii_digit() && i < i32::MAX / 10 - 1 {
            i = i * 10 + (self.at(0) - b'0') as i32;
            self.bump(1);
        }
        i
    }
}
