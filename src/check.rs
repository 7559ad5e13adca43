//! `lc config check [--port N]` and the same check at the start of `lc run [PORT]`: the config
//! and the files an instance reads when it starts (API token, `ca_file`, the certificates and
//! keys of its TLS receivers). With a port, only what that instance serves must be valid;
//! problems of other instances' sources and certificates are warnings, so one expired
//! certificate of a TLS source on 6514 does not keep `lc@514` and `lc@21` from starting.
//! Parsing is `config`'s, reading certificates `server::prepare`'s; this file only decides
//! whose problem each one is and says so.

use std::path::Path;

use crate::config::{self, Config, Problem, Site};

/// What a check found: errors fail it (exit 2), warnings do not.
#[derive(Debug, Default)]
pub struct Outcome {
    pub config: Option<Config>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Checks the config at `path` for the instance on `port` (`None`: every instance); with
/// `others`, the other instances' certificates too, as warnings.
pub fn check(path: &Path, port: Option<u16>, others: bool) -> Outcome {
    let mut out = Outcome::default();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    out.warnings.extend(config::cut_values(&text, path));
    let (config, foreign_problems) = match config::load_for(path, port) {
        Ok(c) => c,
        Err(e) => {
            // Each problem of a source's section names the source and where it listens.
            for p in &e.problems {
                let at = match p.line {
                    0 => format!("{}", path.display()),
                    n => format!("{}:{n}", path.display()),
                };
                let whose = match &p.source {
                    Some((name, Site::Port(q))) => format!(" (source {name}, port {q})"),
                    Some((name, Site::Ftp)) => format!(" (source {name}, FTP)"),
                    Some((name, Site::Unknown)) => format!(" (source {name})"),
                    None => String::new(),
                };
                out.errors.push(format!("{at}: {}{whose}", p.message));
            }
            return out;
        }
    };
    for p in &foreign_problems {
        out.warnings.push(foreign(path, p, config.ftp.port));
    }
    // The delivery target (token, ca_file) is every instance's.
    if let Err(e) = crate::deliver::Target::from_config(&config) {
        out.errors.push(e);
        out.config = Some(config);
        return out;
    }
    if let (Some(p), true) = (port, config.sources_for(port).is_empty()) {
        let ports: Vec<String> = instance_ports(&config)
            .iter()
            .map(|q| format!("lc@{q}"))
            .collect();
        out.errors.push(format!(
            "{}: no source listens on port {p}; the configured instances are: {}",
            path.display(),
            if ports.is_empty() {
                "none (no [source] sections)".to_string()
            } else {
                ports.join(", ")
            }
        ));
        out.config = Some(config);
        return out;
    }
    let instances: Vec<Option<u16>> = match port {
        Some(p) if others => std::iter::once(Some(p))
            .chain(
                instance_ports(&config)
                    .into_iter()
                    .filter(|q| *q != p)
                    .map(Some),
            )
            .collect(),
        _ => vec![port],
    };
    for (i, instance) in instances.into_iter().enumerate() {
        if let Err(e) = crate::server::prepare(&config, instance) {
            let text = format!("{}: {e}", serves(&config, instance));
            if i == 0 {
                out.errors.push(text);
            } else {
                out.warnings.push(format!(
                    "warning: {text} (another instance's; lc@{} will not start until this is fixed)",
                    instance.unwrap_or_default()
                ));
            }
        }
    }
    out.config = Some(config);
    out
}

/// The ports of the instances the config has: each syslog source's, and the FTP port when
/// there are FTP sources.
pub fn instance_ports(config: &Config) -> Vec<u16> {
    let mut ports: Vec<u16> = config
        .sources
        .iter()
        .map(|s| {
            if s.receiver.is_syslog() {
                s.port
            } else {
                config.ftp.port
            }
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// `port 6514 (sources paloalto-dc1 syslog-tls)`: what an instance's problem is about.
pub fn serves(config: &Config, port: Option<u16>) -> String {
    let names: Vec<String> = config
        .sources_for(port)
        .iter()
        .map(|s| format!("{} {}", s.name, s.receiver.as_str()))
        .collect();
    let what = match port {
        Some(p) => format!("port {p}"),
        None => "every port".to_string(),
    };
    match names.len() {
        0 => format!("{what} (no sources)"),
        1 => format!("{what} (source {})", names[0]),
        _ => format!("{what} (sources {})", names.join(", ")),
    }
}

/// A problem of another instance's source, as a warning line.
fn foreign(path: &Path, p: &Problem, ftp_port: u16) -> String {
    let whose = match &p.source {
        Some((name, Site::Port(q))) => {
            format!("source {name} is lc@{q}'s, which will not serve it until this is fixed")
        }
        Some((name, Site::Ftp)) => format!(
            "source {name} is lc@{ftp_port}'s (FTP), which will not serve it until this is fixed"
        ),
        Some((name, Site::Unknown)) => {
            format!("source {name} has no valid port: no instance serves it until this is fixed")
        }
        None => "another instance's".to_string(),
    };
    format!(
        "{}:{}: warning: {} ({whose})",
        path.display(),
        p.line,
        p.message
    )
}
