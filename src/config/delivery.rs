//! `[delivery]`: where sealed segments go (an outbox folder or a Cloud Discovery console),
//! the token, the proxy and its exceptions, extra roots, and the API's pace and limits.

use std::path::PathBuf;
use std::time::Duration;

use super::ini;
use super::values::{Keys, Validator};

/// Where sealed segments go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Atomic rename into a folder (data diodes, offline transfer, the default).
    Outbox(PathBuf),
    /// A Cloud Discovery console, `https://TENANT.REGION.portal.cloudappsecurity.com`.
    Console(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub target: Target,
    pub token_file: PathBuf,
    /// `http://[user:pass@]host:port` or `https://...`; `None` = from HTTPS_PROXY, or direct.
    /// A secret: it prints with its password as `***`.
    pub proxy: Option<crate::secret::ProxyUrl>,
    /// Hosts reached without the proxy; `None` = from NO_PROXY.
    pub no_proxy: Option<Vec<String>>,
    /// Extra trusted roots (PEM), added to the built-in ones.
    pub ca_file: Option<PathBuf>,
    pub api_calls_per_min: u32,
    /// Delivery failing this long is critical for `lc status --check` and `/health` (before:
    /// a warning).
    pub critical_after: Duration,
    /// Connect, answer and stall timeout of each HTTP step.
    pub timeout: Duration,
    /// Compressed bytes in one PUT: segments are sealed in parts of this size, cut at lines.
    pub max_upload_bytes: u64,
}

impl Delivery {
    pub(super) fn read(v: &mut Validator, s: &ini::Section) -> Delivery {
        let mut k = Keys::new(s);
        let target = match k.get("url") {
            None => Target::Outbox(PathBuf::new()),
            Some(e) if e.value.is_empty() => Target::Outbox(PathBuf::new()),
            Some(e) => {
                if let Some(dir) = e.value.strip_prefix("dir:") {
                    if dir.is_empty() {
                        v.problem(
                            e.line,
                            "url \"dir:\" needs a folder, e.g. dir:/var/lib/lc/outbox".into(),
                        );
                    }
                    Target::Outbox(v.base.join(dir))
                } else if let Some(host) = e.value.strip_prefix("https://") {
                    let host = host.trim_end_matches('/');
                    if host.is_empty() || host.contains('/') || host.contains('@') {
                        v.problem(
                            e.line,
                            format!("url {:?} must be https://HOST[:PORT] with no path", e.value),
                        );
                    }
                    Target::Console(format!("https://{host}"))
                } else {
                    v.problem(
                        e.line,
                        format!("url {:?} must be dir:PATH or https://TENANT.portal.cloudappsecurity.com", e.value),
                    );
                    Target::Outbox(PathBuf::new())
                }
            }
        };
        let token_file = v.path(k.get("token_file"), "/etc/lc/token");
        let proxy = match k.get("proxy") {
            Some(e) if !e.value.is_empty() => {
                if let Err(msg) = check_proxy_url(&e.value) {
                    v.problem(e.line, msg);
                }
                Some(crate::secret::ProxyUrl::new(e.value.clone()))
            }
            _ => None,
        };
        let no_proxy = k.get("no_proxy").filter(|e| !e.value.is_empty()).map(|e| {
            e.value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        });
        let ca_file = k
            .get("ca_file")
            .filter(|e| !e.value.is_empty())
            .map(|e| v.base.join(&e.value));
        let api_calls_per_min = v.number(k.get("api_calls_per_min"), 20, 1, 30) as u32;
        let timeout = v.secs(k.get("timeout_secs"), Duration::from_secs(60), 1);
        let critical_after = v.secs(
            k.get("critical_after_secs"),
            Duration::from_secs(crate::status::FAILING_CRITICAL_SECS),
            0,
        );
        // The API takes one PUT under 64 MB; a part may pass this by one 256 KiB chunk.
        let max_upload_bytes = v.size(k.get("max_upload_bytes"), 56 << 20, 64 << 10, 60 << 20);
        k.finish(v);
        Delivery {
            target,
            token_file,
            proxy,
            no_proxy,
            ca_file,
            api_calls_per_min,
            critical_after,
            timeout,
            max_upload_bytes,
        }
    }
}

/// `http://[user:pass@]host:port` or `https://...`; the error does not repeat the URL, which
/// may hold a password.
pub fn check_proxy_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("proxy must start with http:// or https://")?;
    let host_port = rest.trim_end_matches('/').rsplit('@').next().unwrap_or("");
    // A port that is not a number is most often a password cut short (by ` ;` read as a
    // comment): `http://user:pa ;ss@host` leaves `user:pa` as host and port.
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let port_ok = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').is_some_and(|(_, after)| {
            after.is_empty() || after.strip_prefix(':').is_some_and(digits)
        }),
        None => host_port.rsplit_once(':').is_none_or(|(_, p)| digits(p)),
    };
    if host_port.is_empty() || host_port.contains('/') || !port_ok {
        return Err("proxy must be http(s)://[user:pass@]host:port (a password with ` ;` or ` #` in it needs the value in double quotes)".into());
    }
    Ok(())
}
