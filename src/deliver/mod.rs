//! Delivery of sealed segments, on the delivery thread: to an outbox folder or to the Cloud
//! Discovery API (`upload_url`, PUT, `done_upload`), then into `backup/SOURCE/`.
//!
//! The loop sends one job per segment and at most one per source at a time, oldest first; this
//! module does the blocking work and says how it went. A segment moves to backup only after
//! `done_upload` succeeded, so a crash at any step delivers at most the one segment in flight
//! again (at-least-once). Between attempts the thread remembers how far a segment got (an
//! upload URL still fresh, a PUT already done), so a retry after a failed `done_upload` does
//! not upload the file twice. The protocol itself is in `api.rs`, pacing in `pacer.rs`, the
//! HTTP client in `http.rs`.

pub mod api;
pub mod http;
pub mod outbox;
pub mod pacer;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::{self, Config};
use crate::secret::Secret;
use crate::spool::annotate;
use api::{Failure, Provider, UploadTarget};

/// An upload URL is reused for a retry while younger than this (SAS URLs live longer).
const SAS_REUSE: Duration = Duration::from_secs(10 * 60);
/// API answers are small JSON; anything larger is an error, not a reason to buffer more.
const MAX_ANSWER_BYTES: u64 = 1 << 20;

pub struct DeliverJob {
    pub source: String,
    /// The MDCA source type, sent as `source=` to upload_url.
    pub format: String,
    pub path: PathBuf,
    /// The name the file gets at its destination.
    pub name: String,
    pub backup_dir: PathBuf,
    pub backup_keep: usize,
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

    /// Delivers one segment and moves it to backup; returns the bytes sent.
    pub fn deliver(&self, job: &DeliverJob, progress: &mut Progress) -> Result<u64, Failure> {
        let bytes = fs::metadata(&job.path)
            .map_err(|e| Failure::Transient {
                reason: annotate(&job.path, e).to_string(),
                after: None,
            })?
            .len();
        match self {
            Target::Outbox(dir) => {
                outbox::deliver(&job.path, dir, &job.name).map_err(|e| Failure::Transient {
                    reason: e.to_string(),
                    after: None,
                })?
            }
            Target::Console(c) => c.deliver(job, progress)?,
        }
        to_backup(job).map_err(|e| Failure::Transient {
            reason: e.to_string(),
            after: None,
        })?;
        Ok(bytes)
    }
}

/// How far each sealed file got, kept between attempts.
#[derive(Default)]
pub struct Progress(HashMap<PathBuf, Step>);

#[derive(Clone)]
struct Step {
    target: UploadTarget,
    got_at: Instant,
    uploaded: bool,
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

    fn deliver(&self, job: &DeliverJob, progress: &mut Progress) -> Result<(), Failure> {
        let key = job.path.clone();
        let step = match progress.0.get(&key) {
            Some(s) if s.got_at.elapsed() < SAS_REUSE => s.clone(),
            _ => {
                let target = self.upload_url(&job.name, &job.format)?;
                Step {
                    target,
                    got_at: Instant::now(),
                    uploaded: false,
                }
            }
        };
        progress.0.insert(key.clone(), step.clone());
        if !step.uploaded {
            if let Err(f) = self.put(&step.target, &job.path) {
                // The next attempt asks for a fresh URL: this one may have expired.
                progress.0.remove(&key);
                return Err(f);
            }
            if let Some(s) = progress.0.get_mut(&key) {
                s.uploaded = true;
            }
        }
        match self.done_upload(&step.target.url, &job.source) {
            Ok(()) => {
                progress.0.remove(&key);
                Ok(())
            }
            Err(f) => {
                if matches!(f, Failure::Permanent { .. }) {
                    progress.0.remove(&key);
                }
                Err(f)
            }
        }
    }

    fn upload_url(&self, filename: &str, format: &str) -> Result<UploadTarget, Failure> {
        let url = format!("{}{}", self.base, api::upload_url_path(filename, format));
        let body = self.api_call("upload_url", || {
            self.http
                .agent_for(&url)
                .get(&url)
                .header("Authorization", self.auth())
                .call()
        })?;
        api::parse_upload_target(&body).map_err(|reason| Failure::Transient {
            reason,
            after: None,
        })
    }

    fn put(&self, target: &UploadTarget, path: &std::path::Path) -> Result<(), Failure> {
        let transient = |reason: String| Failure::Transient {
            reason,
            after: None,
        };
        let file = File::open(path).map_err(|e| transient(annotate(path, e).to_string()))?;
        let agent = self.http.agent_for(&target.url);
        let mut req = agent.put(&target.url);
        if target.provider == Provider::Azure {
            req = req.header("x-ms-blob-type", "BlockBlob");
        }
        let host = http::host_of(&target.url);
        let mut resp = req
            .send(file)
            .map_err(|e| transient(format!("PUT to {host}: {}", describe(&e))))?;
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
        let url = format!("{}{}", self.base, api::DONE_UPLOAD_PATH);
        let body = api::done_upload_body(upload_url, stream);
        self.api_call("done_upload", || {
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
        let url = format!("{}{}", self.base, api::STREAMS_PATH);
        let body = self.api_call("streams", || {
            self.http
                .agent_for(&url)
                .get(&url)
                .header("Authorization", self.auth())
                .call()
        })?;
        api::parse_streams(&body).map_err(|reason| Failure::Transient {
            reason,
            after: None,
        })
    }

    fn auth(&self) -> String {
        format!("Token {}", self.token.expose())
    }

    /// One paced API call: waits for the host's bucket, sends, and turns the answer into the
    /// body (2xx) or a classified failure. A 429 blocks the bucket for every instance.
    fn api_call(
        &self,
        what: &str,
        send: impl FnOnce() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, Failure> {
        self.pacer.acquire().map_err(|e| Failure::Transient {
            reason: format!("API pacing: {e}"),
            after: None,
        })?;
        let host = http::host_of(&self.base);
        let mut resp = send().map_err(|e| Failure::Transient {
            reason: format!("{what} at {host}: {}", describe(&e)),
            after: None,
        })?;
        let status = resp.status().as_u16();
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
    let text = e.to_string();
    if text.contains("UnknownIssuer") || text.contains("invalid peer certificate") {
        format!("{text} (the server's certificate is not trusted; if a proxy inspects TLS, add its CA to [delivery] ca_file)")
    } else {
        text
    }
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

/// Moves a delivered segment into backup and keeps the newest `backup_keep` there.
fn to_backup(job: &DeliverJob) -> io::Result<()> {
    fs::create_dir_all(&job.backup_dir).map_err(|e| annotate(&job.backup_dir, e))?;
    let file_name = job
        .path
        .file_name()
        .expect("segment paths have a file name");
    let backup = job.backup_dir.join(file_name);
    fs::rename(&job.path, &backup).map_err(|e| annotate(&backup, e))?;
    crate::spool::worker::prune_backup(&job.backup_dir, job.backup_keep)
}
