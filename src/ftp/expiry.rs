//! Which FTP connections a housekeeping tick ends, and why: a PROXY header that never came,
//! a failed login's held-back reply now due, a transfer whose data connection never came, an
//! idle session, a stalled or unused data connection. Pure: the times of one connection in,
//! what is due out; the server carries it out (replies, closes, counters).

use std::time::{Duration, Instant};

/// A client must connect to its passive port (or accept our active connect) within this.
pub const DATA_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// `[ftp] idle_timeout_secs`.
    pub idle: Duration,
    /// `[collector] handshake_timeout_secs`, for PROXY headers.
    pub header: Duration,
}

/// The times of one connection that a tick looks at.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Control {
        /// Waiting for its PROXY header since.
        header_since: Option<Instant>,
        /// A failed login's reply is held back until.
        reply_at: Option<Instant>,
        /// A transfer command waits for its data connection since.
        waiting_since: Option<Instant>,
        /// A job or a transfer is under way: not idle, however quiet.
        working: bool,
        last_active: Instant,
    },
    Data {
        header_since: Option<Instant>,
        /// Carrying an upload or a listing.
        has_task: bool,
        last_active: Instant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// A failed login's held-back reply goes out now.
    Reply,
    NoHeader,
    NoDataConnection,
    Idle,
    /// A data connection with a task that moved nothing for the idle time (30 s at least).
    Stalled,
    /// A data connection that never got a task: no command waits for a reply about it.
    Unused,
}

/// What is due for a connection at `now`, if anything.
pub fn due(clock: Clock, now: Instant, t: Timeouts) -> Option<Due> {
    let past = |since: Instant, limit: Duration| now.saturating_duration_since(since) >= limit;
    match clock {
        Clock::Control {
            header_since: Some(since),
            ..
        }
        | Clock::Data {
            header_since: Some(since),
            ..
        } => past(since, t.header).then_some(Due::NoHeader),
        Clock::Control {
            reply_at,
            waiting_since,
            working,
            last_active,
            ..
        } => {
            if reply_at.is_some_and(|at| at <= now) {
                Some(Due::Reply)
            } else if waiting_since.is_some_and(|w| past(w, DATA_CONNECT_TIMEOUT)) {
                Some(Due::NoDataConnection)
            } else if !working && past(last_active, t.idle) {
                Some(Due::Idle)
            } else {
                None
            }
        }
        Clock::Data {
            has_task,
            last_active,
            ..
        } => past(last_active, t.idle.max(DATA_CONNECT_TIMEOUT)).then_some(if has_task {
            Due::Stalled
        } else {
            Due::Unused
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        idle: Duration::from_secs(60),
        header: Duration::from_secs(10),
    };

    /// `clock` built from times in seconds after a start, looked at `now` seconds after it.
    #[track_caller]
    fn check(clock: impl Fn(&dyn Fn(u64) -> Instant) -> Clock, now: u64, expected: Option<Due>) {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(due(clock(&at), at(now), T), expected, "at {now} s");
    }

    fn control(
        header: Option<u64>,
        reply: Option<u64>,
        waiting: Option<u64>,
        working: bool,
        last: u64,
    ) -> impl Fn(&dyn Fn(u64) -> Instant) -> Clock {
        move |at| Clock::Control {
            header_since: header.map(at),
            reply_at: reply.map(at),
            waiting_since: waiting.map(at),
            working,
            last_active: at(last),
        }
    }

    fn data(
        header: Option<u64>,
        has_task: bool,
        last: u64,
    ) -> impl Fn(&dyn Fn(u64) -> Instant) -> Clock {
        move |at| Clock::Data {
            header_since: header.map(at),
            has_task,
            last_active: at(last),
        }
    }

    #[test]
    fn control_connections() {
        check(control(None, None, None, false, 0), 59, None);
        check(control(None, None, None, false, 0), 60, Some(Due::Idle));
        // A job or transfer under way is not idleness.
        check(control(None, None, None, true, 0), 600, None);
        // A PROXY header late, whatever else: the session has not begun.
        check(control(Some(0), None, None, false, 0), 9, None);
        check(
            control(Some(0), None, None, false, 0),
            10,
            Some(Due::NoHeader),
        );
        check(
            control(Some(0), None, None, false, 0),
            600,
            Some(Due::NoHeader),
        );
        // A held-back reply first, then the data connection, then idleness.
        check(control(None, Some(5), None, true, 0), 4, None);
        check(
            control(None, Some(5), Some(0), true, 0),
            40,
            Some(Due::Reply),
        );
        check(control(None, None, Some(0), true, 0), 29, None);
        check(
            control(None, None, Some(0), true, 0),
            30,
            Some(Due::NoDataConnection),
        );
        check(
            control(None, None, Some(0), false, 0),
            90,
            Some(Due::NoDataConnection),
        );
    }

    #[test]
    fn data_connections() {
        check(data(None, true, 0), 59, None);
        check(data(None, true, 0), 60, Some(Due::Stalled));
        check(data(None, false, 0), 60, Some(Due::Unused));
        check(data(Some(0), false, 0), 10, Some(Due::NoHeader));
        check(data(Some(0), false, 0), 9, None);
        // Never before DATA_CONNECT_TIMEOUT, even with a shorter idle time.
        let short = Timeouts {
            idle: Duration::from_secs(5),
            ..T
        };
        let t0 = Instant::now();
        let clock = Clock::Data {
            header_since: None,
            has_task: true,
            last_active: t0,
        };
        assert_eq!(due(clock, t0 + Duration::from_secs(29), short), None);
        assert_eq!(
            due(clock, t0 + Duration::from_secs(30), short),
            Some(Due::Stalled)
        );
    }
}
