//! Delivery of sealed segments, on the delivery thread: to an outbox folder or to the Cloud
//! Discovery API (`upload_url`, PUT, `done_upload`), then into `backup/SOURCE/`.
//!
//! The loop sends one job per batch (a segment, or consecutive segments of a backlog as one
//! upload: `batch.rs`) and at most one per source at a time, oldest first; the thread
//! (`worker.rs`) follows each batch's upload plan (`plan.rs`: check, upload_url, PUT,
//! done_upload, move to backup) and says how it went. A batch moves to backup only after
//! `done_upload` succeeded, so a crash at any step delivers at most the one batch in flight
//! again (at-least-once); between attempts the plan remembers how far a batch got, so a retry
//! never uploads a file twice for a failure after its PUT. This file is the target and the
//! HTTP calls; the protocol itself is in `api.rs`, pacing in `pacer.rs`, the HTTP client in
//! `http.rs`, the outbox in `outbox.rs`. `snapshot.rs` is `lc upload --snapshot`, a manual
//! snapshot report through the same client and pacing.

pub mod api;
pub mod batch;
pub mod http;
pub mod outbox;
pub mod pacer;
pub mod plan;
pub mod snapshot;
pub mod tally;
pub mod worker;

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{self, Config};
use crate::fsx::annotate;
use crate::secret::Secret;
use api::{Failure, Provider, UploadTarget};

/// What a failure to take a token from the host's bucket starts with.
pub const PACING: &str = "API pacing";
/// API answers are small JSON; anything larger is an error, not a reason to buffer more.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

/// One batch to deliver: its sealed files, oldest first (a segment's parts, or consecutive
/// segments).
pub struct DeliverJob {
    pub source: String,
    /// The MDCA source type, sent as `source=` to upload_url.
    pub format: String,
    pub parts: Vec<PathBuf>,
    /// The collector's name (`[collector] name`), for an outbox file's manifest.
    pub collector: String,
    /// Put before a part's file name to name it at its destination: `SOURCE_COLLECTOR_`.
    pub prefix: String,
    pub backup_dir: PathBuf,
    pub backup_keep: usize,
}

impl DeliverJob {
    /// `asa_LogCollector1_0000000042-20261127T000000Z.log.gz`: source, host and sequence,
    /// unique across restarts.
    pub fn name_of(&self, part: &std::path::Path) -> String {
        let file = part
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}{file}", self.prefix)
    }
}

/// Where segments go, ready to use: built from the config by the loop, used by the thread.
pub enum Target {
    Outbox(PathBuf),
    Console(Box<Console>),
}

pub struct Console {
    base: String,
    token: Secret,
    http: http::Http,
    pacer: pacer::Pacer,
}

/// Reads the token file: one line, surrounding whitespace ignored.
pub fn read_token(path: &std::path::Path) -> Result<Secret, String> {
    let text = fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read the API token: {e}", path.display()))?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(format!(
            "{}: expected the API token alone on one line",
            path.display()
        ));
    }
    Ok(Secret::new(token))
}

impl Target {
    /// Builds the target of `config`: reads the token and `ca_file`, sets up the proxy.
    pub fn from_config(config: &Config) -> Result<Target, String> {
        match &config.delivery.target {
            config::Target::Outbox(dir) => Ok(Target::Outbox(dir.clone())),
            config::Target::Console(base) => {
                Ok(Target::Console(Box::new(Console::new(config, base)?)))
            }
        }
    }

    /// Where segments go, for the log: `outbox /x`, `https://t... via proxy http://u:***@p:3128`.
    pub fn describe(&self) -> String {
        match self {
            Target::Outbox(dir) => format!("outbox {}", dir.display()),
            Target::Console(c) => match c.proxy_shown() {
                Some(p) => format!("{} via proxy {p}", c.base),
                None => format!("{} (no proxy)", c.base),
            },
        }
    }
}

impl Console {
    pub fn new(config: &Config, base: &str) -> Result<Console, String> {
        let token = read_token(&config.delivery.token_file)?;
        Console::with_token(config, base, token)
    }

    /// A console client with `token`, using `config`'s proxy, trust and pacing.
    pub fn with_token(config: &Config, base: &str, token: Secret) -> Result<Console, String> {
        let http = http::Http::new(&config.delivery)?;
        Ok(Console {
            base: base.to_string(),
            token,
            http,
            pacer: pacer::Pacer::new(&config.collector.run_dir, config.delivery.api_calls_per_min),
        })
    }

    /// One upload unit. One file: a plain PUT. Several: on Azure Put Block each, then Put
    /// Block List; elsewhere one PUT of their concatenation (`batch::unit_end` keeps it under
    /// the single-PUT limit). The files are gzip members, and concatenated members are one
    /// gzip file (RFC 1952 section 2.2), so a segment sealed in parts, or a batch of segments,
    /// is one blob and one done_upload.
    fn put_parts(&self, target: &UploadTarget, parts: &[PathBuf]) -> Result<(), Failure> {
        if let [one] = parts {
            let mut headers = Vec::new();
            if target.provider == Provider::Azure {
                headers.push(("x-ms-blob-type", "BlockBlob"));
            }
            return self.put(&target.url, &headers, Body::File(one));
        }
        if target.provider != Provider::Azure {
            return self.put(&target.url, &[], Body::Files(parts));
        }
        let ids: Vec<String> = (0..parts.len()).map(api::block_id).collect();
        for (part, id) in parts.iter().zip(&ids) {
            let url = format!(
                "{}&comp=block&blockid={}",
                target.url,
                api::percent_encode(id)
            );
            self.put(&url, &[], Body::File(part))?;
        }
        let url = format!("{}&comp=blocklist", target.url);
        let list = api::block_list(&ids);
        self.put(
            &url,
            &[("Content-Type", "application/xml")],
            Body::Text(&list),
        )
    }

    /// How long until the host's API budget allows a call, if it does not now; a wait is
    /// counted in `tally::API` as one the call would have made. A bucket that cannot be read
    /// says nothing here: the call itself reports it.
    pub fn budget_wait(&self) -> Option<Duration> {
        let wait = self.pacer.wait().ok().flatten();
        if let Some(d) = wait {
            tally::API.waited(d);
        }
        wait
    }

    fn upload_url(&self, filename: &str, format: &str) -> Result<UploadTarget, Failure> {
        let body = self.get(
            tally::Call::UploadUrl,
            &api::upload_url_path(filename, format),
        )?;
        api::parse_upload_target(&body).map_err(|reason| Failure::Transient {
            reason,
            after: None,
        })
    }

    /// A paced, authenticated GET of an API path; the answer's body.
    fn get(&self, what: tally::Call, path: &str) -> Result<String, Failure> {
        let url = format!("{}{path}", self.base);
        self.api_call(what, || {
            self.http
                .agent_for(&url)
                .get(&url)
                .header("Authorization", self.auth())
                .call()
        })
    }

    fn put(&self, url: &str, headers: &[(&str, &str)], body: Body<'_>) -> Result<(), Failure> {
        let transient = |reason: String| Failure::Transient {
            reason,
            after: None,
        };
        let mut req = self.http.agent_for(url).put(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let host = http::host_of(url);
        let sent = match body {
            Body::File(path) => {
                let file =
                    File::open(path).map_err(|e| transient(annotate(path, e).to_string()))?;
                req.send(file)
            }
            Body::Text(text) => req.send(text),
            Body::Files(paths) => {
                // One reader over every file; the length is announced, since a presigned PUT
                // takes no chunked body.
                let mut len = 0;
                let mut reader: Box<dyn io::Read + Send> = Box::new(io::empty());
                for path in paths {
                    let file =
                        File::open(path).map_err(|e| transient(annotate(path, e).to_string()))?;
                    len += file
                        .metadata()
                        .map_err(|e| transient(annotate(path, e).to_string()))?
                        .len();
                    reader = Box::new(reader.chain(file));
                }
                req.header("Content-Length", len.to_string())
                    .send(ureq::SendBody::from_owned_reader(reader))
            }
        };
        let mut resp = sent.map_err(|e| transient(format!("PUT to {host}: {}", describe(&e))))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let retry_after = header(&resp, "retry-after");
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .unwrap_or_default();
        Err(api::classify_status(
            "PUT",
            status,
            retry_after.as_deref(),
            &body,
        ))
    }

    fn done_upload(&self, upload_url: &str, stream: &str) -> Result<(), Failure> {
        self.done_upload_as(upload_url, stream, false)
    }

    /// done_upload of a data source's file, or (`snapshot`) of a snapshot report's.
    fn done_upload_as(
        &self,
        upload_url: &str,
        stream: &str,
        snapshot: bool,
    ) -> Result<(), Failure> {
        let url = format!("{}{}", self.base, api::DONE_UPLOAD_PATH);
        let body = api::done_upload_body_as(upload_url, stream, snapshot);
        self.api_call(tally::Call::DoneUpload, || {
            self.http
                .agent_for(&url)
                .post(&url)
                .header("Authorization", self.auth())
                .header("Content-Type", "application/json")
                .send(body.as_str())
        })
        .map(|_| ())
    }

    /// The data source names the tenant has (for `lc connect`).
    pub fn streams(&self) -> Result<Vec<String>, Failure> {
        let body = self.get(tally::Call::Streams, api::STREAMS_PATH)?;
        api::parse_streams(&body).map_err(|reason| Failure::Transient {
            reason,
            after: None,
        })
    }

    fn auth(&self) -> String {
        format!("Token {}", self.token.expose())
    }

    /// One paced API call: waits for the host's bucket, sends, and turns the answer into the
    /// body (2xx) or a classified failure. A 429 blocks the bucket for every instance. Each
    /// call and budget wait is counted in `tally::API`.
    fn api_call(
        &self,
        call: tally::Call,
        send: impl FnOnce() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, Failure> {
        let waited = self.pacer.acquire().map_err(|e| Failure::Transient {
            reason: format!("{PACING}: {e}"),
            after: None,
        })?;
        tally::API.waited(waited);
        let what = call.name();
        let host = http::host_of(&self.base);
        let mut resp = send().map_err(|e| {
            tally::API.call(call, tally::Outcome::Failed);
            Failure::Transient {
                reason: format!("{what} at {host}: {}", describe(&e)),
                after: None,
            }
        })?;
        let status = resp.status().as_u16();
        tally::API.call(
            call,
            match status {
                200..=299 => tally::Outcome::Ok,
                429 => tally::Outcome::RateLimited,
                _ => tally::Outcome::Failed,
            },
        );
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string();
        if (200..300).contains(&status) {
            return body.map_err(|e| Failure::Transient {
                reason: format!("{what} at {host}: reading the answer: {e}"),
                after: None,
            });
        }
        let retry_after = header(&resp, "retry-after");
        let failure = api::classify_status(
            what,
            status,
            retry_after.as_deref(),
            &body.unwrap_or_default(),
        );
        if status == 429 {
            let wait = api::parse_retry_after(retry_after.as_deref().unwrap_or(""))
                .unwrap_or(Duration::from_secs(60));
            if let Err(e) = self.pacer.block_for(wait) {
                log::warn!("API pacing: {e}");
            }
        }
        Err(failure)
    }

    /// The proxy in use, password hidden, for `lc connect`'s messages.
    pub fn proxy_shown(&self) -> Option<&str> {
        self.http.proxy_shown.as_deref()
    }
}

/// A transport error in words, with the fix for the one operators meet most: a TLS-inspecting
/// proxy whose CA lc does not trust.
fn describe(e: &ureq::Error) -> String {
    // A transport error can name the URL or the proxy it was about.
    let text = crate::secret::scrub(&e.to_string()).into_owned();
    if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        format!("{text} (the server's certificate is not trusted; if a proxy inspects TLS, add its CA to [delivery] ca_file)")
    } else {
        text
    }
}

/// What a PUT sends.
enum Body<'a> {
    File(&'a std::path::Path),
    Text(&'a str),
    /// Files one after the other.
    Files(&'a [PathBuf]),
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}
