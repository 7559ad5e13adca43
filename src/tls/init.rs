//! `lc certs init`: a local CA and the certificates it signs, for a first install.
//!
//! Some firewalls refuse a self-signed server certificate, so the server certificate is signed
//! by a CA made here (`ca.pem`; its key is kept aside in `private/ca-key.pem`, mode 0600, to sign
//! client certificates later). Keys are ECDSA P-256; who may read them is `owner.rs`'s rule
//! (the service's group reads the server keys, only root the CA's). Nothing existing is
//! overwritten without `force`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::{Duration, OffsetDateTime};

use super::{CLIENT_CA, FTP_PEM, SERVER_CERT, SERVER_KEY};

pub const CA_KEY: &str = "private/ca-key.pem";
/// The CA outlives the certificates it signs, so renewing them needs no new CA on the senders.
const CA_DAYS: i64 = 3650;

pub struct Options {
    pub days: u32,
    /// DNS names and IP addresses for the server certificate; empty = this host's name,
    /// localhost, 127.0.0.1 and ::1.
    pub names: Vec<String>,
    pub force: bool,
}

/// Writes the set into `dir`; returns the files written.
pub fn init(dir: &Path, opts: &Options) -> Result<Vec<PathBuf>, String> {
    let files = [CLIENT_CA, CA_KEY, SERVER_CERT, SERVER_KEY, FTP_PEM];
    if !opts.force {
        let existing: Vec<String> = files
            .iter()
            .map(|f| dir.join(f))
            .filter(|p| p.exists())
            .map(|p| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(format!(
                "{} already exist; nothing written (--force replaces them)",
                existing.join(", ")
            ));
        }
    }
    let names = if opts.names.is_empty() {
        default_names()
    } else {
        opts.names.clone()
    };
    let err = |e: rcgen::Error| format!("generating certificates: {e}");
    let now = OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name = dn(&format!("lc local CA {}", names[0]));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - Duration::hours(1);
    ca.not_after = now + Duration::days(CA_DAYS);
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate().map_err(err)?;
    let mut server = CertificateParams::new(names.clone()).map_err(|e| format!("--name: {e}"))?;
    server.distinguished_name = dn(&names[0]);
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = now - Duration::hours(1);
    server.not_after = now + Duration::days(i64::from(opts.days));
    server.use_authority_key_identifier_extension = true;
    let server_cert = server.signed_by(&server_key, &issuer).map_err(err)?;

    let private = dir.join("private");
    fs::create_dir_all(&private).map_err(|e| format!("{}: {e}", dir.display()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&private, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("{}: {e}", private.display()))?;
    }
    let chain = format!("{}{}", server_cert.pem(), ca_cert.pem());
    let written = vec![
        write(dir, CLIENT_CA, &ca_cert.pem(), false)?,
        write(dir, CA_KEY, &issuer_key_pem(&issuer), true)?,
        write(dir, SERVER_CERT, &chain, false)?,
        write(dir, SERVER_KEY, &server_key.serialize_pem(), true)?,
        write(
            dir,
            FTP_PEM,
            &format!("{}{chain}", server_key.serialize_pem()),
            true,
        )?,
    ];
    Ok(written)
}

fn issuer_key_pem(issuer: &Issuer<'_, KeyPair>) -> String {
    issuer.key().serialize_pem()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

fn default_names() -> Vec<String> {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty());
    let mut names: Vec<String> = host.into_iter().collect();
    names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
    names
}

/// Writes one file atomically: a certificate 0644, a key (`secret`) 0600, or 0640 with the
/// folder's group when root writes it for the service (`owner.rs`).
fn write(dir: &Path, name: &str, text: &str, secret: bool) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let tmp = path.with_extension("tmp");
    let owner = crate::owner::for_path(&path);
    let mode = if secret { owner.secret_mode() } else { 0o644 };
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The mode above is filtered by the umask and ignored for a stale temp file.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        owner.apply(&f)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })();
    result.map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}
