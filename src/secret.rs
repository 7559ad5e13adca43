//! Secrets (the API token, passwords, the proxy URL) in types that never print them: `Debug`
//! and `Display` show `***` (a proxy URL shows itself with the password as `***`), so a secret
//! cannot reach a log line or an error message by accident.
//!
//! Text that comes from elsewhere (ureq's own log lines, an HTTP error body, a transport
//! error) can still carry one, so `scrub` is the last filter before a log line or a status
//! field: it cuts SAS query strings, URL passwords (with or without a scheme) and the text of
//! every secret this process has held. `strip_urls` removes URLs from an HTTP error body
//! before it is kept anywhere.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;

/// The text of every secret made in this process, for `scrub`.
static KNOWN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Shorter secrets would cut ordinary words out of log lines; no token or sane password is.
const MIN_REMEMBERED: usize = 4;

fn remember(s: &str) {
    if s.len() >= MIN_REMEMBERED {
        if let Ok(mut known) = KNOWN.lock() {
            known.insert(s.to_string());
            let decoded = percent_decode(s);
            if decoded != s && decoded.len() >= MIN_REMEMBERED {
                known.insert(decoded);
            }
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        let s = s.into();
        remember(&s);
        Secret(s)
    }

    /// A secret a peer sent (an FTP client's password): kept out of `scrub`'s set. lc never
    /// logs it and no third party echoes it back, while remembering every one would let
    /// failed logins grow memory, and every log line's scrub, without bound.
    pub fn from_peer(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A proxy URL: `http://user:pass@host:port`, `https://...`, or the scheme-less
/// `user:pass@host:port` that environments (and ureq) accept. It prints with the password as
/// `***`; only `for_client` gives the URL, to the HTTP client.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl(String);

impl ProxyUrl {
    pub fn new(url: impl Into<String>) -> ProxyUrl {
        let url = url.into();
        if let Some(password) = password_of(&url) {
            remember(password);
        }
        ProxyUrl(url)
    }

    /// The URL for the HTTP client: a password written as is (`pa ;ss`, quoted in lc.ini) is
    /// percent-encoded where a URL cannot hold it; ureq decodes it once, so an already
    /// encoded one (`%`) is kept.
    pub fn for_client(&self) -> String {
        match split_userinfo(&self.0) {
            Some((scheme, userinfo, rest)) => {
                let encoded = match userinfo.split_once(':') {
                    Some((u, p)) => format!("{}:{}", encode_userinfo(u), encode_userinfo(p)),
                    None => encode_userinfo(userinfo),
                };
                format!("{scheme}{encoded}@{rest}")
            }
            None => self.0.clone(),
        }
    }
}

/// RFC 3986 section 3.2.1: a userinfo holds unreserved characters, sub-delims and `%`
/// escapes; everything else is encoded.
fn encode_userinfo(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// (`scheme://` or "", userinfo, the rest) of a URL with a userinfo, with or without scheme.
fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let start = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((&url[..start], &rest[..at], &rest[at + 1..]))
}

fn password_of(url: &str) -> Option<&str> {
    let (_, userinfo, _) = split_userinfo(url)?;
    Some(userinfo.split_once(':').map_or(userinfo, |(_, p)| p))
}

/// `http://user:secret@host:3128` -> `http://user:***@host:3128`; `user:secret@host:3128` ->
/// `user:***@host:3128`; a userinfo without a colon is all secret: `***@host`.
pub fn redact_url(url: &str) -> String {
    match split_userinfo(url) {
        Some((scheme, userinfo, rest)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}{user}:***@{rest}"),
            None => format!("{scheme}***@{rest}"),
        },
        None => url.to_string(),
    }
}

/// What ends a token in free text: URLs and query strings never contain these unescaped.
fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '<' | '>' | '(' | ')' | '[' | ']' | '{' | '}' | '`' | ','
        )
}

/// Query parameters that make a query string a pre-signed (SAS or S3) one.
const SIGNED: [&str; 4] = ["sig=", "signature=", "sv=", "x-amz-"];

fn scrub_token(token: &str) -> Cow<'_, str> {
    let lower = token.to_ascii_lowercase();
    let mut out = Cow::Borrowed(token);
    // A pre-signed query string goes whole: `...blob?sv=...&sig=...` -> `...blob?***`.
    if let Some(q) = lower.find('?') {
        if SIGNED.iter().any(|m| lower[q..].contains(m)) {
            out = Cow::Owned(format!("{}?***", &token[..q]));
        }
    } else if let Some(i) = SIGNED.iter().filter_map(|m| lower.find(m)).min() {
        // A bare `sig=...` (a query logged without its path): from there on.
        let eq = i + lower[i..].find('=').unwrap_or(0) + 1;
        out = Cow::Owned(format!("{}***", &token[..eq]));
    }
    if let Some((scheme, userinfo, rest)) = split_userinfo(&out) {
        // Only `user:password@`: an address like `lc@host` has no password.
        if let Some((user, _)) = userinfo.split_once(':') {
            if !user.contains(['/', '=']) && !rest.is_empty() {
                return Cow::Owned(format!("{scheme}{user}:***@{rest}"));
            }
        }
    }
    out
}

/// Text fit for a log line or a status field: pre-signed query strings, URL passwords and
/// every secret this process has held replaced by `***`.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find(is_delimiter).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        let clean = scrub_token(token);
        changed |= matches!(clean, Cow::Owned(_));
        out.push_str(&clean);
        let d = tail.chars().next().map_or(0, char::len_utf8);
        out.push_str(&tail[..d]);
        rest = &tail[d..];
    }
    if let Ok(known) = KNOWN.lock() {
        for s in known.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "***");
                changed = true;
            }
        }
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

/// An HTTP error body fit to keep: every URL in it (storage services echo the request's,
/// signature included) replaced by `<url>`, then `scrub`bed.
pub fn strip_urls(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        let end = rest.find(is_delimiter).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        let lower = token.to_ascii_lowercase();
        // JSON may escape the slashes: `https:\/\/host\/...`.
        match ["http://", "https://", "http:\\/\\/", "https:\\/\\/"]
            .iter()
            .filter_map(|m| lower.find(m))
            .min()
        {
            Some(i) => {
                out.push_str(&token[..i]);
                out.push_str("<url>");
            }
            None => out.push_str(token),
        }
        let d = tail.chars().next().map_or(0, char::len_utf8);
        out.push_str(&tail[..d]);
        rest = &tail[d..];
    }
    scrub(&out).into_owned()
}

/// `%XX` decoded (a password in a URL may be percent-encoded); invalid escapes kept.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            // `get`, not indexing: the two bytes may cut a UTF-8 character (not an escape).
            if let Some(Ok(v)) = s.get(i + 1..i + 3).map(|h| u8::from_str_radix(h, 16)) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An FTP client's passwords are not remembered for `scrub`: a flood of failed logins
    /// must not grow memory (found by reading the code behind the fuzzer).
    #[test]
    fn secrets_from_peers_are_not_remembered() {
        let before = KNOWN.lock().unwrap().len();
        for i in 0..1000 {
            let _ = Secret::from_peer(format!("guess-{i}-from-a-peer"));
        }
        assert!(!KNOWN.lock().unwrap().contains("guess-7-from-a-peer"));
        // The FTP command parser makes its PASS argument such a secret.
        let _ = crate::ftp::command::parse(b"PASS a-password-an-ftp-client-sent");
        assert!(!KNOWN
            .lock()
            .unwrap()
            .contains("a-password-an-ftp-client-sent"));
        assert!(KNOWN.lock().unwrap().len() < before + 1000);
        assert_eq!(
            scrub("user typed guess-7-from-a-peer"),
            "user typed guess-7-from-a-peer"
        );
    }

    #[track_caller]
    fn check(input: &str, expected: &str) {
        assert_eq!(scrub(input), expected);
    }

    #[test]
    fn scrubbed() {
        check("nothing here", "nothing here");
        check("mail lc@host.example", "mail lc@host.example");
        check(
            "PUT https://a.blob.core.windows.net/c/b.gz?sv=2021&se=x&sig=AbC%2F=",
            "PUT https://a.blob.core.windows.net/c/b.gz?***",
        );
        check("GET /c/b.gz?SV=1&Sig=abc done", "GET /c/b.gz?*** done");
        check(
            "https://s3/x?X-Amz-Signature=abc&X-Amz-Date=1",
            "https://s3/x?***",
        );
        check("query sv=2021&sig=abc", "query sv=***");
        check(
            "\"url\":\"https:\\/\\/h\\/b?sv=1\\u0026sig=x\"",
            "\"url\":\"https:\\/\\/h\\/b?***\"",
        );
        check(
            "GET /api/v1/x?filename=a.gz&source=SQUID",
            "GET /api/v1/x?filename=a.gz&source=SQUID",
        );
        check(
            "via proxy http://u:pw@p:3128 ok",
            "via proxy http://u:***@p:3128 ok",
        );
        check("via proxy u:pw@p:3128", "via proxy u:***@p:3128");
        check("(https://u:p%40w@p:1/)", "(https://u:***@p:1/)");
    }

    #[test]
    fn proxy_urls() {
        for (url, shown) in [
            (
                "http://user:s3cret@proxy:3128",
                "http://user:***@proxy:3128",
            ),
            ("user:s3cret@proxy:3128", "user:***@proxy:3128"),
            ("https://tok@proxy:3128/", "https://***@proxy:3128/"),
            ("http://proxy:3128", "http://proxy:3128"),
            ("proxy:3128", "proxy:3128"),
        ] {
            let p = ProxyUrl::new(url);
            assert_eq!(format!("{p}"), shown);
            assert_eq!(format!("{p:?}"), shown);
            assert_eq!(p.for_client(), url);
        }
        assert_eq!(
            ProxyUrl::new("http://u:a ;b@c@p:1").for_client(),
            "http://u:a%20;b%40c@p:1"
        );
        assert_eq!(ProxyUrl::new("u:a%20b@p:1").for_client(), "u:a%20b@p:1");
        // A password that got out some other way is still cut from a log line.
        ProxyUrl::new("http://u:Xq9 ;zz@p:1");
        check("proxy said Xq9 ;zz no", "proxy said *** no");
    }

    #[test]
    fn bodies_lose_their_urls() {
        assert_eq!(
            strip_urls("<Error><Url>https://a.blob/c?sv=1&sig=x</Url> bad</Error>"),
            "<Error><Url><url></Url> bad</Error>"
        );
        assert_eq!(
            strip_urls("{\"e\":\"bad https:\\/\\/h\\/x\"}"),
            "{\"e\":\"bad <url>\"}"
        );
        assert_eq!(strip_urls("plain words"), "plain words");
    }

    #[test]
    fn never_printed() {
        let s = super::Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    /// Found by fuzzing (`ftp_command`): `PASS secre%aÿ` from any FTP client, before login,
    /// sliced the password inside a UTF-8 character and panicked, which aborts the instance.
    #[test]
    fn a_percent_before_a_multibyte_character_does_not_panic() {
        let s = super::Secret::new("secre%a\u{ff}word");
        assert_eq!(s.expose(), "secre%a\u{ff}word");
        assert_eq!(super::percent_decode("a%b\u{e9}%41%4"), "a%b\u{e9}A%4");
        assert!(crate::ftp::command::parse("PASS secre%a\u{ff}P".as_bytes()).is_ok());
    }
}
