//! What the API calls of this process came to: calls per endpoint and outcome (answered, 429,
//! failed otherwise) and the waits for the host's call budget (`pacer.rs`).
//!
//! One tally per process, in atomics: `lc run` is one instance, its delivery thread counts
//! (`Console::api_call` is the one place calls are made) and its loop reads them into the
//! status snapshot (`json`), whence `lc status --json` and the metrics. A reload builds a new
//! `Console` but keeps the tally, so the counters only grow.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde_json::{json, Value};

/// The API endpoints lc calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    UploadUrl,
    DoneUpload,
    Streams,
}

impl Call {
    pub const ALL: [Call; 3] = [Call::UploadUrl, Call::DoneUpload, Call::Streams];

    pub fn name(self) -> &'static str {
        match self {
            Call::UploadUrl => "upload_url",
            Call::DoneUpload => "done_upload",
            Call::Streams => "streams",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Ok,
    /// 429 Too Many Requests.
    RateLimited,
    /// No answer, or another status.
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Ok, Outcome::RateLimited, Outcome::Failed];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::RateLimited => "rate_limited",
            Outcome::Failed => "failed",
        }
    }
}

pub struct Tally {
    calls: [[AtomicU64; 3]; 3],
    budget_waits: AtomicU64,
    budget_wait_ms: AtomicU64,
}

const fn zeros() -> [AtomicU64; 3] {
    [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]
}

/// This process's tally.
pub static API: Tally = Tally::new();

impl Tally {
    pub const fn new() -> Tally {
        Tally {
            calls: [zeros(), zeros(), zeros()],
            budget_waits: AtomicU64::new(0),
            budget_wait_ms: AtomicU64::new(0),
        }
    }

    pub fn call(&self, call: Call, outcome: Outcome) {
        self.calls[call as usize][outcome as usize].fetch_add(1, Relaxed);
    }

    /// A call waited `d` for the host's budget (a full window, or a 429's Retry-After).
    pub fn waited(&self, d: Duration) {
        if !d.is_zero() {
            self.budget_waits.fetch_add(1, Relaxed);
            self.budget_wait_ms
                .fetch_add(d.as_millis().min(u64::MAX as u128) as u64, Relaxed);
        }
    }

    /// The snapshot's `api` object: `calls.ENDPOINT.OUTCOME`, `budget_waits`,
    /// `budget_wait_seconds`.
    pub fn json(&self) -> Value {
        let mut calls = serde_json::Map::new();
        for c in Call::ALL {
            let mut by = serde_json::Map::new();
            for o in Outcome::ALL {
                by.insert(
                    o.name().into(),
                    json!(self.calls[c as usize][o as usize].load(Relaxed)),
                );
            }
            calls.insert(c.name().into(), Value::Object(by));
        }
        json!({
            "calls": calls,
            "budget_waits": self.budget_waits.load(Relaxed),
            "budget_wait_seconds": self.budget_wait_ms.load(Relaxed) as f64 / 1000.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_as_json() {
        let t = Tally::new();
        t.call(Call::UploadUrl, Outcome::Ok);
        t.call(Call::UploadUrl, Outcome::RateLimited);
        t.call(Call::DoneUpload, Outcome::Failed);
        t.waited(Duration::ZERO);
        t.waited(Duration::from_millis(1500));
        let j = t.json();
        assert_eq!(
            j["calls"]["upload_url"],
            json!({ "ok": 1, "rate_limited": 1, "failed": 0 })
        );
        assert_eq!(
            j["calls"]["done_upload"],
            json!({ "ok": 0, "rate_limited": 0, "failed": 1 })
        );
        assert_eq!(j["budget_waits"], 1);
        assert_eq!(j["budget_wait_seconds"], 1.5);
    }
}
