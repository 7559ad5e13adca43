//! What the metrics server answers, as bytes: pure functions of the request, the snapshots of
//! run_dir and `now`.
//!
//! `/metrics` is every instance's metrics (`metrics::render_all`), `/health` the verdict and
//! one line of reasons of `lc status --check` (`status::check`): 200 for OK and WARNING, 503
//! for CRITICAL and UNKNOWN, so a plain HTTP probe alarms on what a Nagios check would call
//! critical. Every answer closes the connection.

use serde_json::Value;

use super::request::{Method, Refusal, Request};
use crate::status::{self, Level};

/// The paths served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Metrics,
    Health,
    Index,
    NotFound,
}

impl Page {
    pub fn of(path: &str) -> Page {
        match path {
            "/metrics" => Page::Metrics,
            "/health" => Page::Health,
            "/" => Page::Index,
            _ => Page::NotFound,
        }
    }

    /// Whether the answer is made from the snapshots in run_dir.
    pub fn reads_snapshots(self) -> bool {
        matches!(self, Page::Metrics | Page::Health)
    }
}

/// An answer before it is written out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";
/// The Prometheus text exposition format, version 0.0.4.
const METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Answer {
    fn text(status: u16, body: String) -> Answer {
        Answer {
            status,
            content_type: TEXT,
            body,
        }
    }

    /// The answer to a refused request.
    pub fn refused(r: Refusal) -> Answer {
        Answer::text(r.status(), format!("{}\n", r.reason()))
    }

    /// `page` from `snapshots` (as `status::read_all` returns them, or why run_dir could not
    /// be read) at `now`.
    pub fn page(page: Page, snapshots: Result<&[Value], &str>, now: u64) -> Answer {
        match (page, snapshots) {
            (Page::Metrics, Ok(s)) => Answer {
                status: 200,
                content_type: METRICS,
                body: crate::metrics::render_all(s, now),
            },
            (Page::Health, Ok(s)) => {
                let (level, line) = status::check(s, now);
                let code = if level <= Level::Warning { 200 } else { 503 };
                Answer::text(code, line + "\n")
            }
            (Page::Health, Err(e)) => Answer::text(503, format!("lc UNKNOWN: {e}\n")),
            (Page::Metrics, Err(e)) => Answer::text(503, format!("{e}\n")),
            (Page::Index, _) => Answer::text(
                200,
                "lc: /metrics (Prometheus text format, every instance on this host), /health (lc status --check: 200 OK or WARNING, 503 CRITICAL or UNKNOWN)\n".into(),
            ),
            (Page::NotFound, _) => Answer::text(404, "not found: try /metrics or /health\n".into()),
        }
    }

    /// The whole response; `HEAD` gets the head alone (with the body's length).
    pub fn bytes(&self, method: Method) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        if method == Method::Get {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

/// The request's answer when it needs no snapshots, or `None` when it does.
pub fn without_snapshots(req: &Result<Request, Refusal>) -> Option<Answer> {
    match req {
        Err(r) => Some(Answer::refused(*r)),
        Ok(r) => {
            let page = Page::of(&r.path);
            (!page.reads_snapshots()).then(|| Answer::page(page, Ok(&[]), 0))
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_800_000_000;

    fn snapshot(failing_since: u64) -> Value {
        json!({
            "instance": "514", "alive": true, "running": true, "updated": NOW,
            "sources": [{ "name": "asa", "failing_since": failing_since,
                          "backlog": { "files": 2 }, "last_error": { "permanent": false } }],
        })
    }

    /// The status line and body of `page` over `snapshots`.
    #[track_caller]
    fn check(page: Page, snapshots: Result<&[Value], &str>, expected: &str) {
        let a = Answer::page(page, snapshots, NOW);
        let got = format!("{} {}", a.status, a.body.lines().next().unwrap_or(""));
        assert_eq!(got, expected);
    }

    #[test]
    fn pages() {
        let ok = [snapshot(0)];
        let failing = [snapshot(NOW - 20 * 60)];
        check(
            Page::Health,
            Ok(&ok),
            "200 lc OK: 1 instances running, 1 sources, delivery ok",
        );
        check(
            Page::Health,
            Ok(&[snapshot(NOW - 60)]),
            "200 lc WARNING: source asa: delivery failing for 1m0s, 2 files waiting",
        );
        check(
            Page::Health,
            Ok(&failing),
            "503 lc CRITICAL: source asa: delivery failing for 20m0s, 2 files waiting",
        );
        check(
            Page::Health,
            Ok(&[]),
            "503 lc UNKNOWN: no lc instance has written a status snapshot here",
        );
        check(
            Page::Health,
            Err("/run/lc: Permission denied"),
            "503 lc UNKNOWN: /run/lc: Permission denied",
        );
        check(
            Page::Metrics,
            Ok(&ok),
            "200 # HELP lc_build_info The lc build serving this instance (always 1).",
        );
        check(
            Page::NotFound,
            Ok(&ok),
            "404 not found: try /metrics or /health",
        );
        assert_eq!(Page::of("/metrics/"), Page::NotFound);
    }

    #[test]
    fn responses() {
        let a = Answer::page(Page::Health, Ok(&[snapshot(0)]), NOW);
        let get = String::from_utf8(a.bytes(Method::Get)).unwrap();
        assert_eq!(
            get,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 51\r\nCache-Control: no-store\r\nConnection: close\r\n\r\nlc OK: 1 instances running, 1 sources, delivery ok\n"
        );
        let head = String::from_utf8(a.bytes(Method::Head)).unwrap();
        assert!(
            head.ends_with(
                "Content-Length: 51\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
            ),
            "{head}"
        );
        let m = Answer::page(Page::Metrics, Ok(&[snapshot(0)]), NOW);
        assert!(String::from_utf8(m.bytes(Method::Get))
            .unwrap()
            .contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
        let refused = without_snapshots(&Err(Refusal::Method)).unwrap();
        let r = String::from_utf8(refused.bytes(Method::Get)).unwrap();
        assert!(
            r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n")
                && r.contains("Allow: GET, HEAD\r\n"),
            "{r}"
        );
        let index = Ok(Request {
            method: Method::Get,
            path: "/".into(),
        });
        assert_eq!(without_snapshots(&index).unwrap().status, 200);
        let metrics = Ok(Request {
            method: Method::Get,
            path: "/metrics".into(),
        });
        assert_eq!(without_snapshots(&metrics), None);
    }
}
