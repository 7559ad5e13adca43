//! Certificates and TLS configuration for the syslog-tls receiver (and later FTPS).
//!
//! The files keep the vendor collector's names, so existing runbooks carry over:
//! `server-cert.pem` (certificate, then any intermediates), `server-key.pem`, `ca.pem` (signs
//! the client certificates; when present, clients must present one) and `pure-ftpd.pem` (key
//! and certificate in one file, for FTPS). This module reads a folder of them, says what each
//! is and what is wrong with it, and builds rustls configs. It holds no sockets; `init.rs`
//! writes new sets and `cmd.rs` is `lc certs`.

pub mod cmd;
pub mod init;

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

pub const SERVER_CERT: &str = "server-cert.pem";
pub const SERVER_KEY: &str = "server-key.pem";
pub const CLIENT_CA: &str = "ca.pem";
pub const FTP_PEM: &str = "pure-ftpd.pem";
/// `lc certs check` warns this long before a certificate expires.
pub const EXPIRY_WARNING_SECS: i64 = 30 * 86400;

/// What lc reads from one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// Common names and DNS/IP subject alternative names: what `allow_cn` matches.
    pub names: Vec<String>,
    pub sans: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub serial: String,
    pub is_ca: bool,
}

impl CertInfo {
    pub fn parse(der: &[u8]) -> Result<CertInfo, String> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let mut names: Vec<String> = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok().map(String::from))
            .collect();
        let mut sans = Vec::new();
        if let Ok(Some(ext)) = cert.subject_alternative_name() {
            for n in &ext.value.general_names {
                use x509_parser::extensions::GeneralName;
                match n {
                    GeneralName::DNSName(d) => sans.push(d.to_string()),
                    GeneralName::IPAddress(b) => {
                        let ip: Option<std::net::IpAddr> = match b.len() {
                            4 => <[u8; 4]>::try_from(*b).ok().map(Into::into),
                            16 => <[u8; 16]>::try_from(*b).ok().map(Into::into),
                            _ => None,
                        };
                        if let Some(ip) = ip {
                            sans.push(ip.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
        names.extend(sans.iter().cloned());
        Ok(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            names,
            sans,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            serial: cert.raw_serial_as_string(),
            is_ca: cert.is_ca(),
        })
    }

    /// A problem if the certificate is not valid at `now`.
    pub fn validity_problem(&self, now: i64) -> Option<String> {
        if now > self.not_after {
            Some(format!(
                "expired {}",
                crate::clock::rfc3339(self.not_after.max(0) as u64)
            ))
        } else if now < self.not_before {
            Some(format!(
                "not valid before {}",
                crate::clock::rfc3339(self.not_before.max(0) as u64)
            ))
        } else {
            None
        }
    }
}

/// The ring provider with TLS 1.2 and 1.3 only (RFC 5425 requires TLS; older versions are
/// refused at the handshake).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Every certificate in a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM file: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no certificate", path.display()));
    }
    Ok(certs)
}

pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{}: holds no private key: {e}", path.display()))
}

/// A server certificate chain and its key, checked: parsable, valid now, key matching.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub info: CertInfo,
}

/// Loads `cert_path` + `key_path` (the same file for `pure-ftpd.pem`); every problem named.
pub fn load_identity(cert_path: &Path, key_path: &Path, now: i64) -> Result<Identity, Vec<String>> {
    let chain = read_certs(cert_path).map_err(|e| vec![e])?;
    let key = read_key(key_path).map_err(|e| vec![e])?;
    let info =
        CertInfo::parse(&chain[0]).map_err(|e| vec![format!("{}: {e}", cert_path.display())])?;
    let mut problems = Vec::new();
    if let Some(p) = info.validity_problem(now) {
        problems.push(format!("{}: {p}", cert_path.display()));
    }
    if let Err(p) = key_matches(&chain, &key, cert_path, key_path) {
        problems.push(p);
    }
    if problems.is_empty() {
        Ok(Identity { chain, key, info })
    } else {
        Err(problems)
    }
}

/// Whether `key` is the private key of `chain`'s first certificate; else says so, naming both.
pub fn key_matches(
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), String> {
    match rustls::sign::CertifiedKey::from_der(chain.to_vec(), key.clone_key(), &provider()) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InconsistentKeys(_)) => Err(format!(
            "{}: the private key does not belong to the certificate in {}",
            key_path.display(),
            cert_path.display()
        )),
        Err(e) => Err(format!("{}: unusable private key: {e}", key_path.display())),
    }
}

/// A handshake failure as an operator reads it: the usual client mistakes in words, the rest
/// as rustls says it.
pub fn explain(e: &rustls::Error) -> String {
    use rustls::{CertificateError as C, Error as E};
    match e {
        E::InvalidCertificate(C::Other(o))
            if format!("{o:?}").contains("UnsupportedCertVersion") =>
        {
            "the client certificate is X.509 v1; only v3 is accepted (sign it with extensions)"
                .into()
        }
        E::InvalidCertificate(C::UnknownIssuer) => {
            "the client certificate is not signed by ca.pem".into()
        }
        E::InvalidCertificate(C::Expired) => "the client certificate has expired".into(),
        E::InvalidCertificate(C::ExpiredContext { not_after, .. }) => format!(
            "the client certificate has expired (not valid after {})",
            crate::clock::rfc3339(not_after.as_secs())
        ),
        E::InvalidCertificate(C::NotValidYet) => "the client certificate is not valid yet".into(),
        E::InvalidCertificate(C::NotValidYetContext { not_before, .. }) => format!(
            "the client certificate is not valid yet (not before {})",
            crate::clock::rfc3339(not_before.as_secs())
        ),
        E::NoCertificatesPresented => {
            "the client sent no certificate (ca.pem makes one required)".into()
        }
        E::PeerIncompatible(_) => {
            format!("{e} (lc speaks TLS 1.2 and 1.3 with current ciphers)")
        }
        _ => e.to_string(),
    }
}

/// What the syslog-tls receiver serves with.
pub struct SyslogTls {
    pub config: Arc<ServerConfig>,
    pub server: CertInfo,
    /// The client CA certificates, when clients must present one.
    pub client_ca: Vec<CertInfo>,
}

/// Builds the syslog-tls config from `dir`: server-cert.pem and server-key.pem, plus ca.pem
/// (then client certificates signed by it are required). Every problem is reported.
pub fn load_syslog(dir: &Path, now: i64) -> Result<SyslogTls, Vec<String>> {
    let identity = load_identity(&dir.join(SERVER_CERT), &dir.join(SERVER_KEY), now);
    let ca_path = dir.join(CLIENT_CA);
    let client_ca = if ca_path.exists() {
        Some(load_client_ca(&ca_path, now))
    } else {
        None
    };
    let mut problems = Vec::new();
    if let Err(p) = &identity {
        problems.extend(p.iter().cloned());
    }
    if let Some(Err(p)) = &client_ca {
        problems.extend(p.iter().cloned());
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let identity = identity.expect("checked");
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| vec![format!("TLS setup: {e}")])?;
    let (builder, ca_infos) = match client_ca {
        Some(Ok((roots, infos))) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| vec![format!("{}: {e}", ca_path.display())])?;
            (builder.with_client_cert_verifier(verifier), infos)
        }
        _ => (builder.with_no_client_auth(), Vec::new()),
    };
    let mut config = builder
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| vec![format!("{}: {e}", dir.join(SERVER_CERT).display())])?;
    // No TLS 1.3 session tickets: syslog senders never read, and a ticket left unread in a
    // sender's socket turns its close into a reset that discards the last data it sent.
    config.send_tls13_tickets = 0;
    Ok(SyslogTls {
        config: Arc::new(config),
        server: identity.info,
        client_ca: ca_infos,
    })
}

/// What the FTP server offers AUTH TLS with: `pure-ftpd.pem` (key and certificate in one
/// file, as the vendor's collector has it).
pub struct FtpTls {
    pub config: Arc<ServerConfig>,
    pub server: CertInfo,
}

pub fn load_ftp(dir: &Path, now: i64) -> Result<FtpTls, Vec<String>> {
    let pem = dir.join(FTP_PEM);
    let identity = load_identity(&pem, &pem, now)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| vec![format!("TLS setup: {e}")])?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| vec![format!("{}: {e}", pem.display())])?;
    // Data connections are short and many; clients resume the control connection's session
    // on them (with TLS 1.2 session IDs, kept in rustls' default in-memory cache). No TLS 1.3
    // tickets, for the same reason as syslog: an uploading client may never read them.
    config.send_tls13_tickets = 0;
    Ok(FtpTls {
        config: Arc::new(config),
        server: identity.info,
    })
}

fn load_client_ca(path: &Path, now: i64) -> Result<(RootCertStore, Vec<CertInfo>), Vec<String>> {
    let certs = read_certs(path).map_err(|e| vec![e])?;
    let mut roots = RootCertStore::empty();
    let mut infos = Vec::new();
    let mut problems = Vec::new();
    for (i, c) in certs.iter().enumerate() {
        match CertInfo::parse(c) {
            Ok(info) => {
                if let Some(p) = info.validity_problem(now) {
                    problems.push(format!("{}: certificate {}: {p}", path.display(), i + 1));
                }
                infos.push(info);
            }
            Err(e) => problems.push(format!("{}: certificate {}: {e}", path.display(), i + 1)),
        }
        if let Err(e) = roots.add(c.clone()) {
            problems.push(format!(
                "{}: certificate {} is not a usable CA: {e}",
                path.display(),
                i + 1
            ));
        }
    }
    if problems.is_empty() {
        Ok((roots, infos))
    } else {
        Err(problems)
    }
}

/// The names of a client certificate (CN and SANs), for `allow_cn`.
pub fn peer_names(der: &[u8]) -> Vec<String> {
    CertInfo::parse(der).map(|i| i.names).unwrap_or_default()
}

/// `allow_cn` matching: exact, case-insensitive; `*.corp` matches one label under corp.
pub fn name_allowed(names: &[String], allow: &[String]) -> bool {
    allow.is_empty()
        || names.iter().any(|n| {
            allow.iter().any(|a| match a.strip_prefix("*.") {
                Some(suffix) => n
                    .to_ascii_lowercase()
                    .strip_suffix(&suffix.to_ascii_lowercase())
                    .and_then(|head| head.strip_suffix('.'))
                    .is_some_and(|label| !label.is_empty() && !label.contains('.')),
                None => n.eq_ignore_ascii_case(a),
            })
        })
}

#[cfg(test)]
mod tests {

    #[test]
    fn handshake_failures_in_words() {
        use rustls::{CertificateError as C, Error as E};
        assert_eq!(
            explain(&E::NoCertificatesPresented),
            "the client sent no certificate (ca.pem makes one required)"
        );
        assert_eq!(
            explain(&E::InvalidCertificate(C::UnknownIssuer)),
            "the client certificate is not signed by ca.pem"
        );
        assert_eq!(
            explain(&E::InvalidCertificate(C::Expired)),
            "the client certificate has expired"
        );
    }

    use super::*;

    #[test]
    fn allow_cn() {
        let names = vec!["fw1.corp".to_string(), "10.0.0.1".to_string()];
        for (allow, expected) in [
            (&[][..], true),
            (&["fw1.corp"][..], true),
            (&["FW1.CORP"][..], true),
            (&["fw2.corp"][..], false),
            (&["*.corp"][..], true),
            (&["*.other"][..], false),
            (&["10.0.0.1"][..], true),
        ] {
            let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
            assert_eq!(name_allowed(&names, &allow), expected, "{allow:?}");
        }
        assert!(!name_allowed(&["a.b.corp".into()], &["*.corp".into()]));
    }
}
