//! Slots for sockets, each with a token, and the rule that keeps stale events harmless.
//!
//! One `mio::Poll::poll` returns a batch of events; handling an early one may close a socket
//! whose later event is still in the batch. If the closed slot were reused at once by a socket
//! accepted in the same batch, that stale event would reach the new socket. So a slot freed
//! during a batch becomes reusable only after [`Slab::next_batch`], which the loop calls right
//! after each `poll` returns. Listener slots are never reused at all ([`Reuse::Never`]): their
//! indices name listeners for the life of the process.
//!
//! Each slot also holds a `ready` flag: readiness tracked in userland (sockets are registered
//! once, edge-triggered), so the loop's work list holds a token at most once.

use mio::Token;

/// When a freed slot may hold another value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// From the next event batch on.
    NextBatch,
    /// Never within this process.
    Never,
}

struct Entry<T> {
    value: T,
    ready: bool,
}

pub struct Slab<T> {
    base: usize,
    reuse: Reuse,
    entries: Vec<Option<Entry<T>>>,
    /// Slots free for `insert`.
    free: Vec<usize>,
    /// Slots freed during the current batch; free from the next.
    closed: Vec<usize>,
    len: usize,
}

impl<T> Slab<T> {
    /// Tokens are `base + slot`.
    pub fn new(base: usize, reuse: Reuse) -> Slab<T> {
        Slab {
            base,
            reuse,
            entries: Vec::new(),
            free: Vec::new(),
            closed: Vec::new(),
            len: 0,
        }
    }

    /// The token `insert` will hand out next, so a caller can register a socket under it
    /// before committing the value.
    pub fn next_token(&self) -> Token {
        Token(self.base + self.free.last().copied().unwrap_or(self.entries.len()))
    }

    /// Stores `value` (marked ready: new sockets are looked at once without waiting for an
    /// edge) and returns its token, which is `next_token()`.
    pub fn insert(&mut self, value: T) -> Token {
        let entry = Entry { value, ready: true };
        let slot = match self.free.pop() {
            Some(s) => {
                self.entries[s] = Some(entry);
                s
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.len += 1;
        Token(self.base + slot)
    }

    /// Takes the value out; its slot is reusable after the current batch (or never).
    pub fn remove(&mut self, token: Token) -> Option<T> {
        let slot = self.slot(token)?;
        let entry = self.entries[slot].take()?;
        self.len -= 1;
        if self.reuse == Reuse::NextBatch {
            self.closed.push(slot);
        }
        Some(entry.value)
    }

    /// A new event batch begins: slots freed in the last one become reusable.
    pub fn next_batch(&mut self) {
        self.free.append(&mut self.closed);
    }

    pub fn get(&self, token: Token) -> Option<&T> {
        let slot = self.slot(token)?;
        self.entries[slot].as_ref().map(|e| &e.value)
    }

    pub fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        let slot = self.slot(token)?;
        self.entries[slot].as_mut().map(|e| &mut e.value)
    }

    /// Marks the value ready; true if it was not (the caller puts its token on the work list).
    pub fn wake(&mut self, token: Token) -> bool {
        match self.slot(token).and_then(|s| self.entries[s].as_mut()) {
            Some(e) if !e.ready => {
                e.ready = true;
                true
            }
            _ => false,
        }
    }

    /// The value drained its socket (`WouldBlock`): it waits for the next edge.
    pub fn idle(&mut self, token: Token) {
        if let Some(e) = self.slot(token).and_then(|s| self.entries[s].as_mut()) {
            e.ready = false;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn iter(&self) -> impl Iterator<Item = (Token, &T)> {
        let base = self.base;
        self.entries
            .iter()
            .enumerate()
            .filter_map(move |(s, e)| e.as_ref().map(|e| (Token(base + s), &e.value)))
    }

    pub fn tokens(&self) -> Vec<Token> {
        self.iter().map(|(t, _)| t).collect()
    }

    fn slot(&self, token: Token) -> Option<usize> {
        let slot = token.0.checked_sub(self.base)?;
        (slot < self.entries.len()).then_some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script` on a slab with base 100: `+x` inserts x, `-N` removes token N, `|` starts
    /// a new batch, `wN` wakes N, `iN` idles N. Each `+` and `w` writes what it returned.
    #[track_caller]
    fn check(reuse: Reuse, script: &str, expected: &str) {
        let mut slab = Slab::new(100, reuse);
        let mut out = Vec::new();
        for step in script.split_whitespace() {
            let (op, arg) = step.split_at(1);
            match op {
                "+" => {
                    let next = slab.next_token();
                    let t = slab.insert(arg.to_string());
                    assert_eq!(t, next, "next_token before {step}");
                    out.push(t.0.to_string());
                }
                "-" => {
                    let got = slab.remove(Token(arg.parse().unwrap()));
                    out.push(got.unwrap_or_else(|| "none".into()));
                }
                "|" => slab.next_batch(),
                "w" => out.push(slab.wake(Token(arg.parse().unwrap())).to_string()),
                "i" => slab.idle(Token(arg.parse().unwrap())),
                _ => panic!("bad step {step}"),
            }
        }
        let live: Vec<String> = slab.iter().map(|(t, v)| format!("{}={v}", t.0)).collect();
        let got = format!("{} / {}", out.join(" "), live.join(" "));
        assert_eq!(got, expected, "script {script:?}");
        assert_eq!(slab.len(), slab.iter().count());
    }

    #[test]
    fn slots_and_reuse() {
        check(Reuse::NextBatch, "+a +b", "100 101 / 100=a 101=b");
        // A slot freed in a batch is not handed out in the same batch ...
        check(Reuse::NextBatch, "+a -100 +b", "100 a 101 / 101=b");
        // ... only from the next one.
        check(Reuse::NextBatch, "+a -100 | +b", "100 a 100 / 100=b");
        check(
            Reuse::NextBatch,
            "+a +b -100 -101 | +c +d +e",
            "100 101 a b 101 100 102 / 100=d 101=c 102=e",
        );
        // Removing twice, or what was never there, is nothing.
        check(
            Reuse::NextBatch,
            "+a -100 -100 -105 -7",
            "100 a none none none / ",
        );
        check(
            Reuse::NextBatch,
            "+a -100 -100 | +b +c",
            "100 a none 100 101 / 100=b 101=c",
        );
        // Listeners: a freed index is never handed out again.
        check(Reuse::Never, "+a -100 | +b", "100 a 101 / 101=b");
    }

    #[test]
    fn readiness() {
        // New values are ready: waking them again adds nothing to the work list.
        check(Reuse::NextBatch, "+a w100", "100 false / 100=a");
        check(
            Reuse::NextBatch,
            "+a i100 w100 w100",
            "100 true false / 100=a",
        );
        // An empty or removed slot never wakes.
        check(
            Reuse::NextBatch,
            "w100 +a i100 -100 w100",
            "false 100 a false / ",
        );
        // A reused slot starts ready, whatever the old value's flag was.
        check(
            Reuse::NextBatch,
            "+a i100 -100 | +b w100",
            "100 a 100 false / 100=b",
        );
    }
}
