//! The rule that an FTP upload never makes the spool evict data a client already got its 226
//! for (DESIGN: never a silent loss): what the spool can take without eviction, as of the
//! loop's last free-space check, less what uploads have brought since. An upload that would
//! pass that line is refused (452) while it arrives, and none starts while nothing is left.
//! Pure bookkeeping; the server calls it as bytes arrive, and as uploads end or are dropped.

/// Bytes the spool can still take for uploads.
#[derive(Debug)]
pub struct Room {
    /// What the spool could take without eviction at the last check (`max_spool_bytes`,
    /// `min_free_bytes`).
    room: u64,
    /// Free space is below `min_free_bytes`: no upload starts.
    no_space: bool,
    /// Bytes of uploads completed since that check (the check's backlog did not count them).
    received_since: u64,
    /// Bytes of the uploads under way.
    receiving: u64,
}

impl Default for Room {
    /// Unbounded until the first check.
    fn default() -> Room {
        Room {
            room: u64::MAX,
            no_space: false,
            received_since: 0,
            receiving: 0,
        }
    }
}

impl Room {
    /// The loop's free-space check: what the spool can take now, its backlog counting every
    /// upload completed so far.
    pub fn set_disk(&mut self, no_space: bool, room: u64) {
        self.no_space = no_space;
        self.room = room;
        self.received_since = 0;
    }

    /// Whether a new upload may start.
    pub fn may_start(&self) -> bool {
        !self.no_space
            && self
                .room
                .saturating_sub(self.receiving + self.received_since)
                > 0
    }

    /// `n` more bytes of an upload arrived; false when they pass the line (refuse it, then
    /// `dropped` its bytes).
    #[must_use]
    pub fn arrived(&mut self, n: u64) -> bool {
        self.receiving += n;
        self.receiving + self.received_since <= self.room
    }

    /// An upload of `bytes` is complete: it is the spool's until the next check counts it.
    pub fn completed(&mut self, bytes: u64) {
        self.receiving = self.receiving.saturating_sub(bytes);
        self.received_since += bytes;
    }

    /// An upload of `bytes` so far was discarded.
    pub fn dropped(&mut self, bytes: u64) {
        self.receiving = self.receiving.saturating_sub(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `script`: `=R` a check with room R, `!R` one with no space, `?` may an upload
    /// start, `+N` N bytes arrive, `cN` an upload of N completes, `dN` one of N is dropped.
    /// `?` and `+` write what they answered.
    #[track_caller]
    fn check(script: &str, expected: &str) {
        let mut r = Room::default();
        let mut out = Vec::new();
        for step in script.split_whitespace() {
            let (op, arg) = step.split_at(1);
            let n = || arg.parse::<u64>().unwrap();
            match op {
                "=" => r.set_disk(false, n()),
                "!" => r.set_disk(true, n()),
                "?" => out.push(if r.may_start() { "start" } else { "no" }),
                "+" => out.push(if r.arrived(n()) { "ok" } else { "over" }),
                "c" => r.completed(n()),
                "d" => r.dropped(n()),
                _ => panic!("bad step {step}"),
            }
        }
        assert_eq!(out.join(" "), expected, "script {script:?}");
    }

    #[test]
    fn uploads_stay_within_the_room() {
        // Before any check, nothing is refused.
        check("? +1000000", "start ok");
        check("=100 ? +60 +40 +1", "start ok ok over");
        // A completed upload keeps its bytes until the next check counts them in the backlog.
        check("=100 +60 c60 ? +41", "ok start over");
        check("=100 +60 c60 =100 ? +100", "ok start ok");
        // A dropped upload gives its bytes back at once.
        check("=100 +60 d60 ? +100", "ok start ok");
        // Uploads under way share the room.
        check("=100 +50 +50 ? +1", "ok ok no over");
        // Nothing left, or no free space: no upload starts.
        check("=0 ?", "no");
        check("!1000 ?", "no");
        check("!1000 =1000 ?", "start");
    }
}
