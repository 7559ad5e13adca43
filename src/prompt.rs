//! Reading a new password for `lc passwd`: twice from the terminal without echo, or one line
//! from standard input for scripts. What makes a password acceptable, and the file it goes
//! to, are `ftp/passwd.rs`'s business.
//!
//! The terminal is put in non-canonical mode with echo and signal keys off, and this module
//! edits the line itself (a pure [`Editor`]): Ctrl-C then arrives as a byte and cancels, so the
//! terminal is always restored before the process exits. A SIGTERM or SIGHUP sent from
//! elsewhere while the prompt waits still ends the process with echo off (`stty sane` repairs
//! that); catching them would need a signal handler for a rare case.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Read, Write};

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices as Cc, Termios};

use crate::ftp::passwd::MAX_PASSWORD_BYTES;
use crate::secret::Secret;

#[derive(Debug)]
pub enum Error {
    /// Ctrl-C, Ctrl-\ or end of input at the prompt.
    Cancelled,
    Mismatch,
    NotUtf8,
    Io {
        what: &'static str,
        error: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Cancelled => f.write_str("cancelled"),
            Error::Mismatch => f.write_str("the passwords do not match"),
            Error::NotUtf8 => f.write_str("the password is not UTF-8"),
            Error::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

/// Asks for `user`'s new password twice on /dev/tty, without echo.
pub fn new_password(user: &str) -> Result<Secret, Error> {
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(|error| Error::Io {
            what: "/dev/tty: cannot open the terminal (use --stdin in scripts)",
            error,
        })?;
    let first = read_hidden(&tty, &format!("New FTP password for {user}: "))?;
    if first.expose().is_empty() {
        // Refused by the caller's check; no point asking again.
        return Ok(first);
    }
    let second = read_hidden(&tty, "Retype it: ")?;
    if first.expose() != second.expose() {
        return Err(Error::Mismatch);
    }
    Ok(first)
}

/// One line of standard input without its line ending; at most one byte more than a password
/// may have is read, so an over-long line is reported as such without reading all of it.
pub fn stdin_line() -> Result<Secret, Error> {
    let mut buf = Vec::new();
    io::stdin()
        .lock()
        .take(MAX_PASSWORD_BYTES as u64 + 2)
        .read_until(b'\n', &mut buf)
        .map_err(|error| Error::Io {
            what: "cannot read standard input",
            error,
        })?;
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
    String::from_utf8(buf)
        .map(Secret::new)
        .map_err(|_| Error::NotUtf8)
}

/// Puts the terminal back as it was when dropped, on every path out of `read_hidden`.
struct Restore<'a> {
    tty: &'a File,
    saved: Termios,
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, SetArg::TCSAFLUSH, &self.saved);
    }
}

fn read_hidden(mut tty: &File, prompt: &str) -> Result<Secret, Error> {
    let io = |what| move |error| Error::Io { what, error };
    let term = |what| {
        move |e: nix::errno::Errno| Error::Io {
            what,
            error: e.into(),
        }
    };
    let saved = termios::tcgetattr(tty).map_err(term("/dev/tty: cannot read the settings"))?;
    let keys = Keys::from(&saved);
    let mut raw = saved.clone();
    raw.local_flags
        .remove(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG | LocalFlags::IEXTEN);
    raw.control_chars[Cc::VMIN as usize] = 1;
    raw.control_chars[Cc::VTIME as usize] = 0;
    let restore = Restore { tty, saved };
    termios::tcsetattr(tty, SetArg::TCSAFLUSH, &raw)
        .map_err(term("/dev/tty: cannot turn echo off"))?;
    // The prompt comes after the switch, whose flush would otherwise eat what a quick typist
    // (or a test) sends once it appears.
    tty.write_all(prompt.as_bytes())
        .map_err(io("/dev/tty: cannot write"))?;
    let mut editor = Editor::new(keys);
    let mut byte = [0u8];
    let step = loop {
        match tty.read(&mut byte) {
            Ok(0) => break Step::Cancel,
            Ok(_) => match editor.feed(byte[0]) {
                Step::More => {}
                done => break done,
            },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("/dev/tty: cannot read")(e)),
        }
    };
    drop(restore);
    // The Enter the user typed was not echoed.
    let _ = tty.write_all(b"\n");
    match step {
        Step::Cancel => Err(Error::Cancelled),
        _ => String::from_utf8(editor.buf)
            .map(Secret::new)
            .map_err(|_| Error::NotUtf8),
    }
}

/// The terminal's editing keys (as `stty` set them); 0 means unset.
#[derive(Debug, Clone, Copy)]
struct Keys {
    intr: u8,
    quit: u8,
    erase: u8,
    kill: u8,
    eof: u8,
    susp: u8,
}

impl From<&Termios> for Keys {
    fn from(t: &Termios) -> Keys {
        let c = |i: Cc| t.control_chars[i as usize];
        Keys {
            intr: c(Cc::VINTR),
            quit: c(Cc::VQUIT),
            erase: c(Cc::VERASE),
            kill: c(Cc::VKILL),
            eof: c(Cc::VEOF),
            susp: c(Cc::VSUSP),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    More,
    Enter,
    Cancel,
}

/// What the terminal's line discipline would do with the keys, done by hand because the
/// signal keys are off: erase a character, kill the line, cancel, finish.
struct Editor {
    keys: Keys,
    buf: Vec<u8>,
}

impl Editor {
    fn new(keys: Keys) -> Editor {
        Editor {
            keys,
            buf: Vec::new(),
        }
    }

    fn feed(&mut self, b: u8) -> Step {
        let k = self.keys;
        let is = |key: u8| key != 0 && b == key;
        if b == b'\r' || b == b'\n' {
            Step::Enter
        } else if is(k.intr) || is(k.quit) || (is(k.eof) && self.buf.is_empty()) {
            Step::Cancel
        } else if is(k.erase) || b == 0x7f || b == 0x08 {
            // One character, not one byte: drop UTF-8 continuation bytes with their lead.
            while let Some(last) = self.buf.pop() {
                if last & 0xc0 != 0x80 {
                    break;
                }
            }
            Step::More
        } else if is(k.kill) {
            self.buf.clear();
            Step::More
        } else if is(k.eof) || is(k.susp) {
            Step::More
        } else {
            // Past the limit, keep one byte more than allowed so the length check still fails,
            // but no more: a stuck key cannot grow the buffer without end.
            if self.buf.len() <= MAX_PASSWORD_BYTES {
                self.buf.push(b);
            }
            Step::More
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `stty sane`'s keys.
    const KEYS: Keys = Keys {
        intr: 0x03,
        quit: 0x1c,
        erase: 0x7f,
        kill: 0x15,
        eof: 0x04,
        susp: 0x1a,
    };

    /// Feeds `input` to an editor with the usual keys; renders the line or how it ended.
    #[track_caller]
    fn check(input: &[u8], expected: &str) {
        let mut e = Editor::new(KEYS);
        let mut step = Step::More;
        for &b in input {
            step = e.feed(b);
            if step != Step::More {
                break;
            }
        }
        let got = match step {
            Step::Enter => format!("{:?}", String::from_utf8_lossy(&e.buf)),
            other => format!("{other:?}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn editing() {
        check(b"s3cret\r", "\"s3cret\"");
        check(b"s3cret\n", "\"s3cret\"");
        check(b"\r", "\"\"");
        check(b"ab\x7fc\r", "\"ac\"");
        check(b"ab\x08c\r", "\"ac\"");
        check(b"\x7f\x7fa\r", "\"a\"");
        check("pé\x7f\r".as_bytes(), "\"p\"");
        check("p€\x7fe\r".as_bytes(), "\"pe\"");
        check(b"wrong\x15right\r", "\"right\"");
        check(b"with space\ttab\r", "\"with space\\ttab\"");
        check(b"ab\x03cd\r", "Cancel");
        check(b"ab\x1c", "Cancel");
        check(b"\x04", "Cancel");
        check(b"a\x04b\r", "\"ab\"");
        check(b"a\x1ab\r", "\"ab\"");
        check(b"abc", "More");
    }

    #[test]
    fn a_stuck_key_stops_one_byte_past_the_limit() {
        let mut e = Editor::new(KEYS);
        for _ in 0..5000 {
            e.feed(b'x');
        }
        assert_eq!(e.buf.len(), MAX_PASSWORD_BYTES + 1);
    }
}
