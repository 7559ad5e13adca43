//! The HTTP client for delivery: ureq agents with lc's trust, proxy and timeouts.
//!
//! Trust is the built-in Mozilla roots plus `ca_file`, added, never replacing. The proxy comes
//! from `[delivery] proxy`, else from HTTPS_PROXY/https_proxy; hosts matching `no_proxy` (else
//! NO_PROXY/no_proxy) go direct. Every step has a timeout, so a stalled server or proxy turns
//! into a retryable failure instead of a hung delivery thread.

use std::time::Duration;

use ureq::tls::{Certificate, RootCerts, TlsConfig};
use ureq::{Agent, Proxy};

use crate::config::Delivery;
use crate::secret::ProxyUrl;

/// Connecting takes at most this, or `[delivery] timeout_secs` if shorter.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Http {
    proxied: Agent,
    direct: Agent,
    no_proxy: Vec<String>,
    /// The proxy in use, with any password replaced by `***`, for messages.
    pub proxy_shown: Option<String>,
}

impl Http {
    pub fn new(cfg: &Delivery) -> Result<Http, String> {
        let mut roots: Vec<Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        if let Some(ca) = &cfg.ca_file {
            roots.extend(
                crate::tls::read_certs(ca)?
                    .iter()
                    .map(|c| Certificate::from_der(c.as_ref()).to_owned()),
            );
        }
        // ureq is built without a provider or roots of its own (Cargo.toml): lc's ring
        // provider, and the roots above.
        let tls = TlsConfig::builder()
            .unversioned_rustls_crypto_provider(crate::tls::provider())
            .root_certs(RootCerts::new_with_certs(&roots))
            .build();
        let env = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        // The environment's proxy is as secret as the config's, scheme or not.
        let proxy_url = cfg
            .proxy
            .clone()
            .or_else(|| env(&["HTTPS_PROXY", "https_proxy"]).map(ProxyUrl::new));
        let no_proxy = cfg.no_proxy.clone().unwrap_or_else(|| {
            env(&["NO_PROXY", "no_proxy"])
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        });
        let proxy =
            match &proxy_url {
                Some(url) => Some(Proxy::new(&url.for_client()).map_err(|e| {
                    format!("proxy {url}: {}", crate::secret::scrub(&e.to_string()))
                })?),
                None => None,
            };
        let build = |proxy: Option<Proxy>| -> Agent {
            Agent::config_builder()
                .tls_config(tls.clone())
                .proxy(proxy)
                .http_status_as_error(false)
                .timeout_connect(Some(CONNECT_TIMEOUT.min(cfg.timeout)))
                // Waiting for an answer, and any read or write that moves no byte, time out.
                .timeout_recv_response(Some(cfg.timeout))
                .timeout_per_read(Some(cfg.timeout))
                .timeout_per_write(Some(cfg.timeout))
                .user_agent(format!("lc/{}", crate::VERSION))
                .build()
                .into()
        };
        Ok(Http {
            proxied: build(proxy),
            direct: build(None),
            no_proxy,
            proxy_shown: proxy_url.as_ref().map(ProxyUrl::to_string),
        })
    }

    /// The agent for `url`: direct when its host matches `no_proxy`.
    pub fn agent_for(&self, url: &str) -> &Agent {
        if self
            .no_proxy
            .iter()
            .any(|p| no_proxy_matches(host_of(url), p))
        {
            &self.direct
        } else {
            &self.proxied
        }
    }
}

/// The host of an http(s) URL, without port or brackets.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    host_port.split(':').next().unwrap_or("")
}

/// curl's NO_PROXY rules: `*` matches all, `.corp` and `corp` match `corp` and its subdomains,
/// an IP matches itself.
pub fn no_proxy_matches(host: &str, pattern: &str) -> bool {
    let pattern = pattern.trim().trim_start_matches("*.");
    if pattern == "*" {
        return true;
    }
    let pattern = pattern.trim_start_matches('.');
    let (host, pattern) = (host.to_ascii_lowercase(), pattern.to_ascii_lowercase());
    host == pattern || host.ends_with(&format!(".{pattern}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_no_proxy() {
        assert_eq!(
            host_of("https://t.us2.portal.cloudappsecurity.com/api/x?y=1"),
            "t.us2.portal.cloudappsecurity.com"
        );
        assert_eq!(
            host_of("http://127.0.0.1:10000/devstoreaccount1/c/b?sv=x"),
            "127.0.0.1"
        );
        assert_eq!(host_of("https://[::1]:8443/x"), "::1");
        assert_eq!(host_of("http://u:p@h:1/"), "h");
        for (host, pattern, expected) in [
            ("blob.corp.internal", ".corp.internal", true),
            ("corp.internal", ".corp.internal", true),
            ("notcorp.internal", "corp.internal", false),
            ("a.b.c", "*.b.c", true),
            ("x", "*", true),
            ("127.0.0.1", "127.0.0.1", true),
            ("HOST.Example", "host.example", true),
        ] {
            assert_eq!(
                no_proxy_matches(host, pattern),
                expected,
                "{host} vs {pattern}"
            );
        }
    }
}
