//! Which port a passive listener (PASV, EPSV) takes: the configured range in turn, starting
//! after the last port handed out, so a port just closed is not offered again while others
//! are free (a late packet of the last transfer cannot reach the next one), and at most
//! [`MAX_TRIES`] binds per command. `0` (tests) lets the kernel choose. The binding itself is
//! the caller's function, so the order is table-tested without sockets.

/// Binds tried for one passive command at most, however wide the range.
pub const MAX_TRIES: u32 = 4096;

#[derive(Debug, Default)]
pub struct PassivePorts {
    /// Offset in the range of the next port to try first.
    next: u32,
}

impl PassivePorts {
    /// Tries `bind` on the ports of `range` (inclusive; `(0, 0)` = a kernel-chosen port) in
    /// turn until one succeeds; else the last error (`None` for an empty try).
    pub fn take<T, E>(
        &mut self,
        range: (u16, u16),
        mut bind: impl FnMut(u16) -> Result<T, E>,
    ) -> Result<T, Option<E>> {
        let (first, last) = range;
        if first == 0 {
            return bind(0).map_err(Some);
        }
        let span = u32::from(last.saturating_sub(first)) + 1;
        let mut last_err = None;
        for i in 0..span.min(MAX_TRIES) {
            let offset = (self.next + i) % span;
            match bind(first + offset as u16) {
                Ok(t) => {
                    self.next = (offset + 1) % span;
                    return Ok(t);
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs one `take` per entry of `busy` (the ports that refuse at that time) on `range`:
    /// the ports tried, the one taken (`*`) or `none`.
    #[track_caller]
    fn check(range: (u16, u16), busy: &[&[u16]], expected: &str) {
        let mut p = PassivePorts::default();
        let got: Vec<String> = busy
            .iter()
            .map(|busy| {
                let mut tried = Vec::new();
                let r = p.take(range, |port| {
                    tried.push(port.to_string());
                    if busy.contains(&port) {
                        Err(port)
                    } else {
                        Ok(port)
                    }
                });
                if r.is_ok() {
                    *tried.last_mut().unwrap() += "*";
                } else {
                    tried.push("none".into());
                }
                tried.join(",")
            })
            .collect();
        assert_eq!(got.join(" "), expected, "range {range:?}");
    }

    #[test]
    fn ports_in_turn() {
        check((0, 0), &[&[], &[]], "0* 0*");
        check((0, 0), &[&[0]], "0,none");
        check((100, 102), &[&[], &[], &[], &[]], "100* 101* 102* 100*");
        // A busy port is skipped; the turn goes on after the one taken.
        check((100, 102), &[&[], &[101], &[]], "100* 101,102* 100*");
        check((100, 102), &[&[100, 101, 102]], "100,101,102,none");
        check((100, 100), &[&[], &[]], "100* 100*");
        check((100, 102), &[&[100], &[100], &[]], "100,101* 102* 100*");
    }

    #[test]
    fn a_wide_range_is_tried_at_most_max_tries_times() {
        let mut p = PassivePorts::default();
        let mut tries = 0;
        let r: Result<(), Option<()>> = p.take((1024, 65535), |_| {
            tries += 1;
            Err(())
        });
        assert_eq!((r, tries), (Err(Some(())), MAX_TRIES));
    }
}
