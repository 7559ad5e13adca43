//! `lc connect --token-file FILE TENANT [NAME]`: points lc at a Cloud Discovery tenant.
//!
//! Checks the token against the tenant (listing its data sources) before changing anything;
//! then stores the token in `token_file` (0600, or 0640 for the service's group; atomically), sets `[delivery] url` (and
//! `[collector] name`) in lc.ini keeping the rest of the file as it was, reports configured
//! sources the tenant does not know, and tells running instances to reload (SIGHUP).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::config::{self, ini, Config};
use crate::deliver::api::Failure;
use crate::deliver::{read_token, Console};

/// What `lc connect` found; `Ok(problems)` after the token was stored, where each problem is a
/// line for the operator, `Err` when nothing was changed.
pub fn run(
    config_path: &Path,
    token_file: &Path,
    tenant: &str,
    name: Option<&str>,
) -> Result<Vec<String>, String> {
    let config = config::load(config_path).map_err(|e| e.to_string())?;
    if let Some(n) = name {
        if !config::valid_name(n) {
            return Err(format!(
                "collector name {n:?} must match [A-Za-z0-9_-]{{1,64}}"
            ));
        }
    }
    let host = tenant
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(format!(
            "{tenant:?} is not a tenant host such as tenant.us2.portal.cloudappsecurity.com"
        ));
    }
    let base = format!("https://{host}");
    let token = read_token(token_file)?;
    let console = Console::with_token(&config, &base, token.clone())?;
    let via = console
        .proxy_shown()
        .map(|p| format!(" via proxy {p}"))
        .unwrap_or_default();
    let streams = console.streams().map_err(|f| match f {
        Failure::Permanent { reason } => format!("{host}: {reason}; nothing was changed"),
        // The host-wide bucket in run_dir was refused (`pacer.rs`): the tenant was not asked.
        Failure::Transient { reason, .. } if reason.starts_with(crate::deliver::PACING) => {
            format!("{reason}; {host} was not asked and nothing was changed")
        }
        Failure::Transient { reason, .. } => {
            format!("cannot reach {host}{via}: {reason}; nothing was changed")
        }
    })?;
    write_secret(&config.delivery.token_file, token.expose())?;
    let mut text =
        fs::read_to_string(config_path).map_err(|e| format!("{}: {e}", config_path.display()))?;
    text = ini::set_key(&text, "delivery", "url", &base);
    if let Some(n) = name {
        text = ini::set_key(&text, "collector", "name", n);
    }
    // The edited file must still be valid before it replaces the old one.
    config::parse_str(&text, config_path)
        .map_err(|e| format!("the edited config would be invalid:\n{e}"))?;
    replace_file(config_path, text.as_bytes(), false)?;
    let mut problems = Vec::new();
    for s in &config.sources {
        if !streams.contains(&s.name) {
            problems.push(format!(
                "source {}: {host} has no data source named {:?}; add it in the portal \
                 (Settings > Cloud Discovery > Automatic log upload > Data sources) with format {}",
                s.name, s.name, s.format
            ));
        }
    }
    let (reloaded, refused) = signal_instances(&config);
    problems.extend(refused);
    println!(
        "{}: connected to {host}{via}; token stored in {}; {} data sources there; {reloaded} running instances told to reload",
        config_path.display(),
        config.delivery.token_file.display(),
        streams.len()
    );
    Ok(problems)
}

/// Writes a secret file with mode 0600 (0640 for the service's group, `owner.rs`), atomically.
fn write_secret(path: &Path, secret: &str) -> Result<(), String> {
    replace_file(path, format!("{secret}\n").as_bytes(), true)
}

/// Replaces `path` with `bytes` via a temp file and rename. A secret gets `owner.rs`'s secret
/// mode; anything else keeps the old file's mode (0640 when new). Owner and group follow
/// `owner.rs`, so a root `lc connect` leaves lc.ini and the token readable by the service.
fn replace_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), String> {
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(err)?;
    }
    let owner = crate::owner::for_path(path);
    let mode = if secret {
        owner.secret_mode()
    } else {
        fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o640)
    };
    let tmp = path.with_extension("lc-tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    owner.apply(&f).map_err(err)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(err)?;
    fs::rename(&tmp, path).map_err(err)
}

/// Sends SIGHUP to every live instance with a pid file in run_dir; returns how many, and a
/// line for each pid file or process that was refused (`pidfile`).
fn signal_instances(config: &Config) -> (usize, Vec<String>) {
    let (live, mut refused) = crate::pidfile::live_instances(&config.collector.run_dir);
    let mut signalled = 0;
    for c in live {
        match crate::pidfile::signal(&c, nix::sys::signal::Signal::SIGHUP) {
            Ok(()) => signalled += 1,
            Err(e) => refused.push(e),
        }
    }
    (signalled, refused)
}
