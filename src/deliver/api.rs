//! The Cloud Discovery upload protocol, without I/O: what to send for each of the three calls
//! and what an answer means. The HTTP client in `deliver/mod.rs` does the sending.
//!
//! 1. `GET /api/v1/discovery/upload_url/?filename=NAME&source=FORMAT` -> `{"url", "provider"}`
//! 2. `PUT url` with the gzip file; `x-ms-blob-type: BlockBlob` when provider is azure
//! 3. `POST /api/v1/discovery/done_upload/` `{"uploadUrl", "inputStreamName", "uploadAsSnapshot"}`

use std::time::Duration;

use serde_json::{json, Value};

/// Where the file goes, as `upload_url` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadTarget {
    pub url: String,
    pub provider: Provider,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Azure,
    Aws,
}

/// What a failed step means for the next attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying: network trouble, 5xx, 429. `after` is the server's Retry-After.
    Transient {
        reason: String,
        after: Option<Duration>,
    },
    /// Will not succeed until an operator acts (token, data source name); retried slowly.
    Permanent { reason: String },
}

impl Failure {
    pub fn reason(&self) -> &str {
        match self {
            Failure::Transient { reason, .. } | Failure::Permanent { reason } => reason,
        }
    }
}

pub fn upload_url_path(filename: &str, source: &str) -> String {
    format!(
        "/api/v1/discovery/upload_url/?filename={}&source={}",
        percent_encode(filename),
        percent_encode(source)
    )
}

pub const DONE_UPLOAD_PATH: &str = "/api/v1/discovery/done_upload/";
pub const STREAMS_PATH: &str = "/api/discovery/streams/";

pub fn done_upload_body(upload_url: &str, stream: &str) -> String {
    done_upload_body_as(upload_url, stream, false)
}

/// The done_upload body; `snapshot`: a snapshot report named `stream` (`lc upload --snapshot`)
/// rather than a file of the continuous data source `stream`.
pub fn done_upload_body_as(upload_url: &str, stream: &str, snapshot: bool) -> String {
    json!({ "uploadUrl": upload_url, "inputStreamName": stream, "uploadAsSnapshot": snapshot })
        .to_string()
}

pub fn parse_upload_target(body: &str) -> Result<UploadTarget, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("upload_url answer is not JSON: {e}"))?;
    let url = v["url"]
        .as_str()
        .ok_or("upload_url answer has no \"url\"")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "upload_url answered a URL that is not http(s): {:?}",
            truncate(url, 80)
        ));
    }
    let provider = match v["provider"].as_str() {
        Some("azure") => Provider::Azure,
        Some("aws") => Provider::Aws,
        other => return Err(format!("upload_url answered an unknown provider {other:?}")),
    };
    Ok(UploadTarget {
        url: url.to_string(),
        provider,
    })
}

/// Data source names from the streams listing. The listing is not publicly documented, so
/// this accepts a list, or an object holding one under `data`/`streams`, of names or objects
/// with `displayName`/`name`.
pub fn parse_streams(body: &str) -> Result<Vec<String>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("streams answer is not JSON: {e}"))?;
    let list = match &v {
        Value::Array(a) => a,
        Value::Object(o) => match o.get("data").or_else(|| o.get("streams")) {
            Some(Value::Array(a)) => a,
            _ => return Err("streams answer holds no list under \"data\"".into()),
        },
        _ => return Err("streams answer is neither a list nor an object".into()),
    };
    Ok(list
        .iter()
        .filter_map(|s| match s {
            Value::String(name) => Some(name.clone()),
            Value::Object(o) => o
                .get("displayName")
                .or_else(|| o.get("name"))
                .and_then(Value::as_str)
                .map(String::from),
            _ => None,
        })
        .collect())
}

/// Classifies an HTTP error status of step `what` (`upload_url`, `PUT`, `done_upload`).
pub fn classify_status(what: &str, status: u16, retry_after: Option<&str>, body: &str) -> Failure {
    let detail = if body.trim().is_empty() {
        String::new()
    } else {
        // Storage services echo the request's URL, SAS signature included: the body loses
        // its URLs before it is kept in a failure (a log line, last_error).
        format!(
            ": {}",
            truncate(&crate::secret::strip_urls(body.trim()), 200)
        )
    };
    let reason = format!("{what} answered HTTP {status}{detail}");
    let after = retry_after.and_then(parse_retry_after);
    match status {
        401 => Failure::Permanent {
            reason: format!("{reason} (the API token was rejected; run `lc connect`)"),
        },
        403 if what != "PUT" => Failure::Permanent {
            reason: format!("{reason} (the API token lacks permission)"),
        },
        // An unknown data source or a malformed request: retrying the same request won't help.
        400 | 404 if what != "PUT" => Failure::Permanent { reason },
        408 | 429 | 500..=599 => Failure::Transient { reason, after },
        // A PUT refused with 403/404 is most often an expired SAS URL: start over.
        _ => Failure::Transient { reason, after },
    }
}

/// The longest Retry-After lc honours.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After` in seconds, at most `MAX_RETRY_AFTER` (the HTTP-date form is not used by
/// these APIs; ignored).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    v.trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// The id of block `k` of an Azure block blob: base64 of a fixed-length label, as Put Block
/// requires (all ids of a blob the same length).
pub fn block_id(k: usize) -> String {
    base64(format!("lc-part-{k:04}").as_bytes())
}

/// The Put Block List body committing `ids` in order.
pub fn block_list(ids: &[String]) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for id in ids {
        xml.push_str(&format!("<Latest>{id}</Latest>"));
    }
    xml.push_str("</BlockList>");
    xml
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(
            upload_url_path("asa_c1_0000000001-20261126T000000Z.log.gz", "CISCO_ASA_SYSLOG"),
            "/api/v1/discovery/upload_url/?filename=asa_c1_0000000001-20261126T000000Z.log.gz&source=CISCO_ASA_SYSLOG"
        );
        assert_eq!(
            upload_url_path("a b&c", "X"),
            "/api/v1/discovery/upload_url/?filename=a%20b%26c&source=X"
        );
        assert_eq!(
            done_upload_body("https://blob/x?sig=1", "asa"),
            r#"{"inputStreamName":"asa","uploadAsSnapshot":false,"uploadUrl":"https://blob/x?sig=1"}"#
        );
    }

    #[track_caller]
    fn check_target(body: &str, expected: Result<(&str, Provider), &str>) {
        let got = parse_upload_target(body);
        match expected {
            Ok((url, p)) => assert_eq!(
                got,
                Ok(UploadTarget {
                    url: url.into(),
                    provider: p
                })
            ),
            Err(e) => assert_eq!(got.unwrap_err(), e),
        }
    }

    #[test]
    fn upload_targets() {
        check_target(
            r#"{"url": "https://s.blob/x?sv=1", "provider": "azure"}"#,
            Ok(("https://s.blob/x?sv=1", Provider::Azure)),
        );
        check_target(
            r#"{"url": "https://s3/x", "provider": "aws"}"#,
            Ok(("https://s3/x", Provider::Aws)),
        );
        check_target(
            r#"{"provider": "azure"}"#,
            Err("upload_url answer has no \"url\""),
        );
        check_target(
            r#"{"url": "ftp://x", "provider": "azure"}"#,
            Err("upload_url answered a URL that is not http(s): \"ftp://x\""),
        );
        check_target(
            r#"{"url": "https://x", "provider": "gcp"}"#,
            Err("upload_url answered an unknown provider Some(\"gcp\")"),
        );
        check_target(
            "<html>",
            Err("upload_url answer is not JSON: expected value at line 1 column 1"),
        );
    }

    #[test]
    fn blocks() {
        assert_eq!(base64(b"lc-part-0000"), "bGMtcGFydC0wMDAw");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(block_id(7).len(), block_id(9999).len());
        assert_eq!(
            block_list(&["QQ==".into(), "Qg==".into()]),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList><Latest>QQ==</Latest><Latest>Qg==</Latest></BlockList>"
        );
    }

    #[test]
    fn streams() {
        assert_eq!(
            parse_streams(r#"{"data": [{"displayName": "asa"}, {"name": "pan"}]}"#).unwrap(),
            ["asa", "pan"]
        );
        assert_eq!(parse_streams(r#"["a", "b"]"#).unwrap(), ["a", "b"]);
        assert!(parse_streams(r#"{"x": 1}"#).is_err());
    }

    #[track_caller]
    fn check_status(what: &str, status: u16, retry_after: Option<&str>, expected: &str) {
        let got = match classify_status(what, status, retry_after, "") {
            Failure::Transient { after: Some(d), .. } => {
                format!("transient after {}s", d.as_secs())
            }
            Failure::Transient { after: None, .. } => "transient".to_string(),
            Failure::Permanent { .. } => "permanent".to_string(),
        };
        assert_eq!(got, expected, "{what} {status}");
    }

    #[test]
    fn statuses() {
        check_status("upload_url", 401, None, "permanent");
        check_status("upload_url", 403, None, "permanent");
        check_status("done_upload", 400, None, "permanent");
        check_status("upload_url", 429, Some("7"), "transient after 7s");
        check_status("upload_url", 503, Some("x"), "transient");
        check_status("done_upload", 500, None, "transient");
        check_status("PUT", 403, None, "transient");
        check_status("PUT", 404, None, "transient");
    }
}
