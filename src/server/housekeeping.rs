//! The loop's periodic decisions about connections, without I/O: which have been idle or
//! handshaking too long, and which partial frames the pending-bytes budget cuts; and
//! `disk_space`, the one measurement the spool's `Space` is given (what eviction takes is
//! `spool/space.rs`'s).
//!
//! The loop gathers the facts (times, sizes), asks these functions, and acts: it closes
//! connections, cuts frames. Each answer is a plain list, table-tested below.

use std::path::Path;
use std::time::{Duration, Instant};

use mio::Token;

/// Why a connection is closed by housekeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// Nothing read for `idle_timeout`.
    Idle,
    /// A TLS handshake not done within `handshake_timeout`.
    Handshake,
}

/// A connection as housekeeping sees it.
pub struct Activity {
    pub token: Token,
    pub last_active: Instant,
    /// When its TLS handshake began, while it is not done.
    pub handshake_since: Option<Instant>,
}

/// The connections to close at `now`, and why (a stalled handshake before idleness).
pub fn stale(
    conns: impl IntoIterator<Item = Activity>,
    now: Instant,
    idle: Duration,
    handshake: Duration,
) -> Vec<(Token, Stale)> {
    conns
        .into_iter()
        .filter_map(|c| {
            if c.handshake_since
                .is_some_and(|t| now.duration_since(t) >= handshake)
            {
                Some((c.token, Stale::Handshake))
            } else if now.duration_since(c.last_active) >= idle {
                Some((c.token, Stale::Idle))
            } else {
                None
            }
        })
        .collect()
}

/// The connections whose partial frames to cut so that the bytes held by all of them,
/// `total`, fall to `budget`: largest first (the senders holding most lose their frame; a
/// busy sender whose read ended mid-line keeps its few bytes).
pub fn cuts(mut held: Vec<(Token, usize)>, total: usize, budget: usize) -> Vec<Token> {
    if total <= budget {
        return Vec::new();
    }
    held.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut left = total;
    held.into_iter()
        .take_while(|&(_, n)| {
            let take = left > budget && n > 0;
            left = left.saturating_sub(n);
            take
        })
        .map(|(t, _)| t)
        .collect()
}

/// (free bytes for unprivileged users, total bytes) of the filesystem holding `dir`.
pub fn disk_space(dir: &Path) -> Option<(u64, u64)> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let frag = st.fragment_size() as u64;
    Some((
        st.blocks_available() as u64 * frag,
        st.blocks() as u64 * frag,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections as (token, seconds since last active, seconds handshaking or -1), closed
    /// after 10 s idle or 3 s of handshake, at a common `now`.
    #[track_caller]
    fn check_stale(conns: &[(usize, u64, i64)], expected: &[(usize, Stale)]) {
        let now = Instant::now() + Duration::from_secs(100);
        let got = stale(
            conns.iter().map(|&(t, idle, hs)| Activity {
                token: Token(t),
                last_active: now - Duration::from_secs(idle),
                handshake_since: (hs >= 0).then(|| now - Duration::from_secs(hs as u64)),
            }),
            now,
            Duration::from_secs(10),
            Duration::from_secs(3),
        );
        let expected: Vec<_> = expected.iter().map(|&(t, s)| (Token(t), s)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn idle_and_stalled_connections() {
        check_stale(&[], &[]);
        check_stale(
            &[(1, 9, -1), (2, 10, -1), (3, 11, -1)],
            &[(2, Stale::Idle), (3, Stale::Idle)],
        );
        check_stale(&[(1, 0, 2), (2, 0, 3)], &[(2, Stale::Handshake)]);
        // A stalled handshake is said as such even when the connection is also idle.
        check_stale(&[(1, 20, 20)], &[(1, Stale::Handshake)]);
        check_stale(&[(1, 20, 1)], &[(1, Stale::Idle)]);
    }

    /// Held partial frames as (token, bytes); the answer as tokens.
    #[track_caller]
    fn check_cuts(held: &[(usize, usize)], budget: usize, expected: &[usize]) {
        let total = held.iter().map(|h| h.1).sum();
        let got = cuts(
            held.iter().map(|&(t, n)| (Token(t), n)).collect(),
            total,
            budget,
        );
        let expected: Vec<Token> = expected.iter().map(|&t| Token(t)).collect();
        assert_eq!(got, expected, "{held:?} under {budget}");
    }

    #[test]
    fn the_largest_partial_frames_are_cut_first() {
        check_cuts(&[], 10, &[]);
        check_cuts(&[(1, 5), (2, 5)], 10, &[]);
        check_cuts(&[(1, 5), (2, 6)], 10, &[2]);
        check_cuts(&[(1, 60), (2, 1), (3, 60), (4, 60)], 100, &[1, 3]);
        check_cuts(&[(1, 60), (2, 1), (3, 60), (4, 60)], 0, &[1, 3, 4, 2]);
        // Empty ones are never cut (there is nothing to cut).
        check_cuts(&[(1, 0), (2, 3)], 0, &[2]);
    }
}
