//! The loop's work list: the listeners and stream connections that may have more to accept
//! or read, and the connections parked while the disk is full.
//!
//! A stream connection read while the disk is full reads nothing and says it has more; kept
//! on the list it would spin the loop. So while the disk is full, [`Work::keep`] parks
//! connections (listeners stay: they accept, and admission is not the disk's business), and
//! [`Work::resume`] puts them back once the disk has room. Which tokens are ready is the
//! slots' ready flags (`reactor::slab`); this type only holds the list. It never touches a
//! socket.

use mio::Token;

use crate::reactor::{self, Owner};

#[derive(Debug, Default)]
pub struct Work {
    /// Tokens to service in the next round.
    ready: Vec<Token>,
    /// Connections with data waiting while the disk is full.
    parked: Vec<Token>,
}

impl Work {
    pub fn push(&mut self, token: Token) {
        self.ready.push(token);
    }

    pub fn extend(&mut self, tokens: impl IntoIterator<Item = Token>) {
        self.ready.extend(tokens);
    }

    /// Nothing to service now (the loop may wait for events).
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }

    /// The tokens to service this round; give back those with more to do to `keep`.
    pub fn take(&mut self) -> Vec<Token> {
        std::mem::take(&mut self.ready)
    }

    /// Tokens serviced this round that have more to do. While the disk is `full`, the
    /// connections among them are parked until `resume`.
    pub fn keep(&mut self, more: Vec<Token>, full: bool) {
        for token in more {
            if full && matches!(reactor::owner(token), Owner::Conn(_)) {
                self.parked.push(token);
            } else {
                self.ready.push(token);
            }
        }
    }

    /// The disk has room again: parked connections are serviced next round.
    pub fn resume(&mut self) {
        self.ready.append(&mut self.parked);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::{CONN_BASE, LISTENER_BASE};

    fn token(name: &str) -> Token {
        let (kind, n) = name.split_at(1);
        let n: usize = n.parse().unwrap();
        match kind {
            "l" => Token(LISTENER_BASE + n),
            "c" => Token(CONN_BASE + n),
            _ => panic!("bad token {name}"),
        }
    }

    fn name(t: &Token) -> String {
        match reactor::owner(*t) {
            Owner::Listener(n) => format!("l{n}"),
            Owner::Conn(t) => format!("c{}", t.0 - CONN_BASE),
            other => panic!("{other:?} on the work list"),
        }
    }

    fn names(tokens: &[Token]) -> String {
        tokens.iter().map(name).collect::<Vec<_>>().join(" ")
    }

    /// Runs `script`: `+T` pushes token `T` (`l0` a listener, `c0` a connection), `k` takes
    /// the list and keeps every token (each has more), `K` the same while the disk is full,
    /// `d` takes it and keeps none (all drained), `r` resumes. The end shows the list and
    /// the parked connections.
    #[track_caller]
    fn check(script: &str, expected: &str) {
        let mut w = Work::default();
        for step in script.split_whitespace() {
            match step {
                "k" | "K" => {
                    let more = w.take();
                    w.keep(more, step == "K");
                }
                "d" => drop(w.take()),
                "r" => w.resume(),
                _ => w.push(token(step.strip_prefix('+').expect("+TOKEN"))),
            }
        }
        let got = format!("[{}] parked [{}]", names(&w.ready), names(&w.parked));
        assert_eq!(got, expected, "script {script:?}");
        assert_eq!(w.is_empty(), w.ready.is_empty());
    }

    #[test]
    fn parked_while_full() {
        check("+l0 +c1", "[l0 c1] parked []");
        check("+l0 +c1 k", "[l0 c1] parked []");
        check("+l0 +c1 d", "[] parked []");
        // A full disk parks connections, never listeners.
        check("+l0 +c1 +c2 K", "[l0] parked [c1 c2]");
        check("+l0 +c1 K K", "[l0] parked [c1]");
        // A connection woken while full is parked after its (empty) read.
        check("+c1 K +c2 K", "[] parked [c1 c2]");
        // Room again: the parked are serviced next.
        check("+l0 +c1 K r", "[l0 c1] parked []");
        check("+c1 K r k", "[c1] parked []");
        check("r", "[] parked []");
    }
}
