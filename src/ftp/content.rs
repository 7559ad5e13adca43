//! What an upload's bytes are and how they are stored, without I/O.
//!
//! Cloud Discovery takes text, `.gz` and `.zip` files; the vendor's collector (pure-ftpd)
//! delivers each upload as the file it is. [`sniff`] tells compressed files by their magic
//! numbers, never by their names (an appliance names its files as it likes). [`Upload`] turns
//! CRLF into LF for TYPE A uploads of text (RFC 959 section 3.1.1.1: the ASCII type's line
//! end is CRLF on the wire, the server's own, LF, on disk), and keeps compressed files and
//! TYPE I uploads byte for byte.

/// What an upload holds, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Anything else: split at lines and gzipped by the spool.
    Text,
    /// gzip (RFC 1952 section 2.3.1: ID1 ID2 = 1f 8b): delivered as it is.
    Gzip,
    /// A zip archive (local file header `PK\x03\x04`): delivered as it is.
    Zip,
}

impl Kind {
    /// Already compressed: delivered as the file it is, never split or recompressed.
    pub fn precompressed(self) -> bool {
        self != Kind::Text
    }
}

/// The kind of a file starting with `head`, or `None` when more bytes could still change the
/// answer (`end`: no more bytes come).
pub fn sniff(head: &[u8], end: bool) -> Option<Kind> {
    const MAGIC: [(&[u8], Kind); 2] = [(b"\x1f\x8b", Kind::Gzip), (b"PK\x03\x04", Kind::Zip)];
    for (magic, kind) in MAGIC {
        if head.starts_with(magic) {
            return Some(kind);
        }
        if !end && magic.starts_with(head) {
            return None;
        }
    }
    Some(Kind::Text)
}

/// One upload's bytes on their way to its file: held until the kind is known, then passed
/// through, or with CRLF turned into LF for a TYPE A text.
#[derive(Debug)]
pub struct Upload {
    ascii: bool,
    kind: Option<Kind>,
    head: Vec<u8>,
    /// A TYPE A read ended in CR: whether it is a line end depends on the next read.
    pending_cr: bool,
}

impl Upload {
    pub fn new(ascii: bool) -> Upload {
        Upload {
            ascii,
            kind: None,
            head: Vec::new(),
            pending_cr: false,
        }
    }

    /// The kind, once known.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// Received bytes in; what to write to the file appended to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<u8>) {
        match self.kind {
            Some(kind) => self.emit(kind, data, out),
            None => {
                self.head.extend_from_slice(data);
                if let Some(kind) = sniff(&self.head, false) {
                    self.kind = Some(kind);
                    let head = std::mem::take(&mut self.head);
                    self.emit(kind, &head, out);
                }
            }
        }
    }

    /// The transfer ended: what is still held back appended to `out`; the kind.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Kind {
        let kind = match self.kind {
            Some(k) => k,
            None => {
                let k = sniff(&self.head, true).unwrap_or(Kind::Text);
                self.kind = Some(k);
                let head = std::mem::take(&mut self.head);
                self.emit(k, &head, out);
                k
            }
        };
        if std::mem::take(&mut self.pending_cr) {
            out.push(b'\r');
        }
        kind
    }

    fn emit(&mut self, kind: Kind, data: &[u8], out: &mut Vec<u8>) {
        if !self.ascii || kind.precompressed() {
            out.extend_from_slice(data);
            return;
        }
        let mut rest = data;
        if std::mem::take(&mut self.pending_cr) {
            // The CR that ended the previous read: dropped if this one starts with its LF.
            if rest.first() != Some(&b'\n') {
                out.push(b'\r');
            }
        }
        while let Some(i) = memchr::memchr(b'\r', rest) {
            out.extend_from_slice(&rest[..i]);
            match rest.get(i + 1) {
                Some(b'\n') => {
                    rest = &rest[i + 1..];
                }
                Some(_) => {
                    out.push(b'\r');
                    rest = &rest[i + 1..];
                }
                None => {
                    self.pending_cr = true;
                    rest = &[];
                }
            }
        }
        out.extend_from_slice(rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x1f\x8b\x08\x00", false), Some(Kind::Gzip));
        assert_eq!(sniff(b"\x1f", false), None);
        assert_eq!(sniff(b"\x1f", true), Some(Kind::Text));
        assert_eq!(sniff(b"PK\x03\x04rest", false), Some(Kind::Zip));
        assert_eq!(sniff(b"PK\x03", false), None);
        assert_eq!(sniff(b"PK\x05\x06", false), Some(Kind::Text));
        assert_eq!(sniff(b"", false), None);
        assert_eq!(sniff(b"", true), Some(Kind::Text));
        assert_eq!(sniff(b"Jan  1 x", false), Some(Kind::Text));
    }

    /// `reads` pushed one by one with TYPE A (`ascii`) or I: the bytes written and the kind.
    #[track_caller]
    fn check(ascii: bool, reads: &[&[u8]], expected: &[u8], kind: Kind) {
        let mut u = Upload::new(ascii);
        let mut out = Vec::new();
        for r in reads {
            u.push(r, &mut out);
        }
        assert_eq!(u.finish(&mut out), kind);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(expected),
            "{reads:?}"
        );
    }

    #[test]
    fn ascii_turns_crlf_into_lf_across_reads() {
        check(true, &[b"a\r\nb\r\n"], b"a\nb\n", Kind::Text);
        check(true, &[b"a\r", b"\nb\r\n"], b"a\nb\n", Kind::Text);
        check(true, &[b"a\r", b"b"], b"a\rb", Kind::Text);
        check(true, &[b"a\r"], b"a\r", Kind::Text);
        check(true, &[b"a\r", b"\r", b"\n"], b"a\r\n", Kind::Text);
        check(true, &[b"a\r\r\nb"], b"a\r\nb", Kind::Text);
        check(true, &[b"\r", b"\n"], b"\n", Kind::Text);
        check(false, &[b"a\r\nb\r\n"], b"a\r\nb\r\n", Kind::Text);
        check(
            true,
            &[b"P", b"K\x03\x04\r\n"],
            b"PK\x03\x04\r\n",
            Kind::Zip,
        );
        check(true, &[b"\x1f", b"\x8b\r\n"], b"\x1f\x8b\r\n", Kind::Gzip);
        check(true, &[b"P", b"\r\n"], b"P\n", Kind::Text);
        check(true, &[b"\x1f"], b"\x1f", Kind::Text);
        check(true, &[], b"", Kind::Text);
    }
}
