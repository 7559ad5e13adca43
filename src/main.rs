//! lc: a log collector for Cloud Discovery. This file maps the command line to the modules
//! and errors to exit codes (0 ok, 1 runtime failure, 2 usage or config error); it does no work
//! of its own. The modules are the library's (`src/lib.rs`); see ARCHITECTURE.md for the map.

use lc::{
    airgap, check, cli, clock, config, connect, deliver, format_check, ftp, logging, prompt,
    server, status, tail, tls, VERSION,
};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use cli::Command;

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = match cli::parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprint!("{}", e.render());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if !matches!(args.command, Command::Run { .. }) {
        // A command's output piped into `head` ends quietly when the pipe closes, as other
        // Unix tools do, instead of panicking in println!. (`lc run` ignores SIGPIPE: a peer
        // that goes away must not kill it.)
        // SAFETY: setting a signal's disposition to the default before any thread exists.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            );
        }
    }
    let config_path = args
        .config
        .or_else(|| std::env::var_os("LC_CONFIG").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(config::DEFAULT_PATH));
    match args.command {
        Command::Help(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("lc {VERSION}");
            ExitCode::SUCCESS
        }
        Command::ConfigCheck { port } => config_check(&config_path, port),
        Command::Run { port } => run(&config_path, port),
        Command::FormatList => {
            print!("{}", format_check::list());
            ExitCode::SUCCESS
        }
        Command::FormatCheck { format, files } => {
            match format_check::check_files(&format, &files) {
                Ok((report, passed)) => {
                    print!("{report}");
                    ExitCode::from(if passed { 0 } else { EXIT_FAILURE })
                }
                Err(e) => {
                    eprintln!("lc: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Command::UploadSnapshot {
            name,
            format,
            force,
            files,
        } => {
            let Some(config) = load_or_report(&config_path) else {
                return ExitCode::from(EXIT_USAGE);
            };
            let request = deliver::snapshot::Request {
                name: &name,
                format: &format,
                files: &files,
                force,
            };
            match deliver::snapshot::run(&config, &request) {
                Ok(report) => {
                    print!("{report}");
                    ExitCode::SUCCESS
                }
                Err(deliver::snapshot::Error::Refused(report)) => {
                    print!("{report}");
                    ExitCode::from(EXIT_FAILURE)
                }
                Err(e) => {
                    eprintln!("lc: {e}");
                    ExitCode::from(e.exit_code())
                }
            }
        }
        Command::SourceCheck { source } => {
            let Some(config) = load_or_report(&config_path) else {
                return ExitCode::from(EXIT_USAGE);
            };
            match format_check::check_source(&config, &source) {
                Ok((report, passed)) => {
                    print!("{report}");
                    ExitCode::from(if passed { 0 } else { EXIT_FAILURE })
                }
                Err(e) => {
                    eprintln!("lc: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
        Command::CertsInit {
            dir,
            days,
            names,
            force,
        } => {
            // With a folder named the config is not needed (a PKI workstation has none).
            let dir = match dir {
                Some(d) => d,
                None => match load_or_report(&config_path) {
                    Some(config) => config.collector.certs_dir,
                    None => return ExitCode::from(EXIT_USAGE),
                },
            };
            match tls::init::init(&dir, &tls::init::Options { days, names, force }) {
                Ok(written) => {
                    for p in written {
                        println!("wrote {}", p.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("lc: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::CertsCheck { dir } => {
            let Some(config) = load_or_report(&config_path) else {
                return ExitCode::from(EXIT_USAGE);
            };
            // Whatever folder is checked, it is checked for what the configured receivers need.
            let (need_tls, ftps) = tls::cmd::needs(&config);
            // A folder named on the command line must exist (a typo must not pass as an
            // empty set); a missing certs_dir is reported file by file as the receivers need.
            if let Some(dir) = dir.as_ref().filter(|d| !d.is_dir()) {
                eprintln!(
                    "lc: {}: {}; `lc certs init` makes a set",
                    dir.display(),
                    if dir.exists() {
                        "not a folder"
                    } else {
                        "the folder does not exist"
                    }
                );
                return ExitCode::from(EXIT_FAILURE);
            }
            let dir = dir.unwrap_or(config.collector.certs_dir);
            let report = tls::cmd::check(&dir, need_tls, ftps);
            for l in &report.lines {
                println!("{l}");
            }
            for w in &report.warnings {
                println!("warning: {w}");
            }
            for p in &report.problems {
                println!("problem: {p}");
            }
            if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_FAILURE)
            }
        }
        Command::CertsReload => {
            let Some(config) = load_or_report(&config_path) else {
                return ExitCode::from(EXIT_USAGE);
            };
            match tls::cmd::reload(&config) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    ExitCode::SUCCESS
                }
                Err(lines) => {
                    for l in lines {
                        eprintln!("lc: {l}");
                    }
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
        Command::Connect {
            token_file,
            tenant,
            name,
        } => match connect::run(&config_path, &token_file, &tenant, name.as_deref()) {
            Ok(problems) if problems.is_empty() => ExitCode::SUCCESS,
            Ok(problems) => {
                for p in problems {
                    eprintln!("lc: {p}");
                }
                ExitCode::from(EXIT_FAILURE)
            }
            Err(e) => {
                eprintln!("lc: {e}");
                ExitCode::from(EXIT_FAILURE)
            }
        },
        Command::UploadFrom { dir } => upload_from(&config_path, &dir),
        Command::Status {
            json,
            verbose,
            check,
        } => status_command(&config_path, json, verbose, check),
        command @ (Command::PasswdSet { .. }
        | Command::PasswdDelete { .. }
        | Command::PasswdList) => {
            let Some(config) = load_or_report(&config_path) else {
                return ExitCode::from(EXIT_USAGE);
            };
            passwd(&config.ftp.passwd_file, command)
        }
        Command::Tail {
            source,
            follow,
            lines,
        } => {
            // A config with errors still says where the spool is: what was received is
            // shown, as `lc status` shows the snapshots.
            let state_dir = match config::load(&config_path) {
                Ok(config) => {
                    if !config.sources.iter().any(|s| s.name == source) {
                        let names: Vec<&str> =
                            config.sources.iter().map(|s| s.name.as_str()).collect();
                        eprintln!(
                            "lc: {}: no source {source:?}; configured: {}",
                            config_path.display(),
                            names.join(", ")
                        );
                        return ExitCode::from(EXIT_USAGE);
                    }
                    config.collector.state_dir
                }
                Err(e) => {
                    let (_, state_dir) = config::folders_leniently(&config_path);
                    eprintln!(
                        "lc: warning: {}: the config has errors ({} problems; `lc config check` lists them); reading {}",
                        config_path.display(),
                        e.problems.len(),
                        state_dir.display()
                    );
                    if !state_dir.join("spool").join(&source).is_dir()
                        && !state_dir.join("backup").join(&source).is_dir()
                    {
                        eprintln!(
                            "lc: {}: no spool or backup of source {source:?}",
                            state_dir.display()
                        );
                        return ExitCode::from(EXIT_USAGE);
                    }
                    state_dir
                }
            };
            match tail::run(&state_dir, &source, lines, follow) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("lc: {e}");
                    ExitCode::from(EXIT_FAILURE)
                }
            }
        }
    }
}

/// `lc status [-v] [--json | --check]`: from the snapshots in run_dir, also when the config
/// does not validate (then from the run_dir it names, or the default, saying so).
fn status_command(
    config_path: &std::path::Path,
    json: bool,
    verbose: bool,
    check: bool,
) -> ExitCode {
    let (run_dir, config_error) = match config::load(config_path) {
        Ok(config) => (config.collector.run_dir, None),
        Err(e) => (
            config::folders_leniently(config_path).0,
            Some(e.to_string()),
        ),
    };
    let now = clock::unix_secs(SystemTime::now());
    let snapshots = match status::read_all(&run_dir) {
        Ok(s) => s,
        Err(e) if check => {
            println!("lc UNKNOWN: {e}");
            return ExitCode::from(status::Level::Unknown as u8);
        }
        Err(e) => {
            eprintln!("lc: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    if let (Some(e), true) = (&config_error, json || check) {
        // The table says it in its first line; the other views keep stdout as it is.
        eprintln!(
            "lc: warning: the config has errors; shown from the snapshots in {}:\n{e}",
            run_dir.display()
        );
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&snapshots).unwrap_or_default()
        );
        return ExitCode::SUCCESS;
    }
    let opts = status::Options {
        verbose,
        config_error,
    };
    if check {
        let (level, line) = status::check(&snapshots, now);
        println!("{line}");
        if verbose {
            print!("{}", status::render(&snapshots, now, &opts));
        }
        return ExitCode::from(level as u8);
    }
    print!("{}", status::render(&snapshots, now, &opts));
    ExitCode::SUCCESS
}

/// `lc config check [--port N]`: errors and warnings on stderr (with journald priorities
/// under ExecStartPre and ExecReload), the verdict on stdout.
fn config_check(config_path: &std::path::Path, port: Option<u16>) -> ExitCode {
    use logging::Severity;
    let out = check::check(config_path, port, true);
    for e in &out.errors {
        logging::report(Severity::Error, e);
    }
    for w in &out.warnings {
        logging::report(Severity::Warning, w);
    }
    match (&out.config, out.errors.is_empty()) {
        (Some(config), true) => {
            let n = config.sources_for(port).len();
            let others = match out.warnings.len() {
                0 => String::new(),
                w => format!(" ({w} warnings above)"),
            };
            match port {
                Some(p) => println!(
                    "{}: ok for lc@{p}: {}{others}",
                    config_path.display(),
                    check::serves(config, port)
                ),
                None => println!("{}: ok, {n} sources{others}", config_path.display()),
            }
            if let config::Target::Console(url) = &config.delivery.target {
                println!(
                    "{}: {url}: at most {} API calls in any 60 s, for every instance on this host together (the tenant takes 30 a minute from all its collectors)",
                    config_path.display(),
                    config.delivery.api_calls_per_min
                );
            }
            ExitCode::SUCCESS
        }
        _ => ExitCode::from(EXIT_USAGE),
    }
}

/// `lc passwd`: the password comes from `prompt`, the file work is `ftp::passwd`'s.
fn passwd(path: &std::path::Path, command: Command) -> ExitCode {
    use ftp::passwd::{self as pw, Change};
    let report = |e: pw::Error| {
        for line in e.to_string().lines() {
            eprintln!("lc: {line}");
        }
        ExitCode::from(if e.is_usage() {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        })
    };
    let user = match &command {
        Command::PasswdSet { user, .. } | Command::PasswdDelete { user } => user.as_str(),
        _ => "",
    };
    if !matches!(command, Command::PasswdList) {
        if let Err(message) = pw::check_name(user) {
            let path = path.to_path_buf();
            return report(pw::Error::Invalid { path, message });
        }
    }
    let p = path.display();
    match command {
        Command::PasswdList
            if std::fs::symlink_metadata(path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
        {
            // Before the first `lc passwd USER`: not an error, and nothing on stdout.
            eprintln!("{p}: no users yet (the file does not exist; `lc passwd USER` adds one)");
            ExitCode::SUCCESS
        }
        Command::PasswdList => match pw::list(path) {
            Ok(users) => {
                let mut out = std::io::stdout().lock();
                for u in users {
                    if writeln!(out, "{u}").is_err() {
                        break;
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => report(e),
        },
        Command::PasswdDelete { user } => match pw::delete(path, &user) {
            Ok(()) => {
                println!("{p}: deleted user {user:?}");
                ExitCode::SUCCESS
            }
            Err(e) => report(e),
        },
        Command::PasswdSet { user, stdin } => {
            // A file that cannot be read or parsed fails before anyone types a password.
            if let Err(e) = pw::load_or_empty(path) {
                return report(e);
            }
            let password = if stdin {
                prompt::stdin_line()
            } else {
                prompt::new_password(&user)
            };
            let password = match password {
                Ok(secret) => secret,
                Err(e) => {
                    eprintln!("lc: {p}: {e}; nothing changed");
                    return ExitCode::from(match e {
                        prompt::Error::Mismatch | prompt::Error::NotUtf8 => EXIT_USAGE,
                        prompt::Error::Cancelled | prompt::Error::Io { .. } => EXIT_FAILURE,
                    });
                }
            };
            match pw::set(path, &user, &password) {
                Ok(Change::Added) => {
                    println!("{p}: added user {user:?}");
                    ExitCode::SUCCESS
                }
                Ok(Change::Replaced) => {
                    println!("{p}: changed the password of {user:?}");
                    ExitCode::SUCCESS
                }
                Err(e) => report(e),
            }
        }
        _ => ExitCode::from(EXIT_USAGE),
    }
}

/// `lc upload --from DIR`: the summary on stdout, each file's fate in the log (stderr).
fn upload_from(config_path: &std::path::Path, dir: &std::path::Path) -> ExitCode {
    let Some(config) = load_or_report(config_path) else {
        return ExitCode::from(EXIT_USAGE);
    };
    logging::init(config.collector.log_level);
    let result = airgap::target(&config)
        .and_then(|target| airgap::run(dir, &target, config.spool.backup_keep));
    match result {
        Ok(report) => {
            println!("{}", report.summary(dir));
            ExitCode::from(if report.ok() { 0 } else { EXIT_FAILURE })
        }
        Err(airgap::Error::Config(e)) => {
            log::error!("{}: {e}", config_path.display());
            ExitCode::from(EXIT_USAGE)
        }
        Err(airgap::Error::Runtime(e)) => {
            log::error!("{e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

fn load_or_report(path: &std::path::Path) -> Option<config::Config> {
    match config::load(path) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

fn run(config_path: &std::path::Path, port: Option<u16>) -> ExitCode {
    // Signals are blocked before any thread exists, so all threads inherit the mask and the
    // loop's signalfd sees every SIGTERM, SIGINT and SIGHUP.
    let mask = match server::block_signals() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("lc: cannot set up signals: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    // The same check as `lc config check --port PORT`, without the other instances'
    // certificates: what would stop this instance is an error (exit 2, which the unit does
    // not restart), problems of other instances' sources are warnings.
    let out = check::check(config_path, port, false);
    let level = out
        .config
        .as_ref()
        .map_or(log::LevelFilter::Info, |c| c.collector.log_level);
    logging::init(level);
    for w in &out.warnings {
        log::warn!("{w}");
    }
    let config = match (out.config, out.errors.is_empty()) {
        (Some(config), true) => config,
        _ => {
            let instance = port.map_or_else(|| "lc run".to_string(), |p| format!("lc@{p}"));
            log::error!("{instance}: cannot start:\n{}", out.errors.join("\n"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let prepared = match server::prepare(&config, port) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{}: {e}", check::serves(&config, port));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if nix::unistd::geteuid().is_root() {
        act_as_state_dir_owner(&config);
    }
    raise_fd_limit();
    let result = server::Server::new(config, port, mask, prepared).and_then(|s| s.run());
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `lc run` as root (a test from a shell, or OPERATIONS' `sudo lc run 21`): the spool
/// folders, segments, pid files and status snapshots it creates must stay usable by the
/// service user that owns state_dir, or a later `lc@PORT` (User=lc) finds root's files and
/// fails. So this process takes state_dir's owner as its file system identity (setfsuid and
/// setfsgid: what it creates gets that owner, and it can open only what that user can; the
/// network privileges stay root's). Must run before any thread exists: the file system ids
/// are per thread, and threads inherit them.
fn act_as_state_dir_owner(config: &config::Config) {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let state = &config.collector.state_dir;
    let run = &config.collector.run_dir;
    let meta = match std::fs::metadata(state) {
        Ok(m) => m,
        Err(_) => {
            log::warn!(
                "{}: running as root, and the folder does not exist: what lc makes there belongs to root, and a service running as another user cannot use it (prefer `systemctl start lc@PORT`, or `chown -R lc:lc` it after)",
                state.display()
            );
            return;
        }
    };
    if meta.uid() == 0 {
        log::warn!(
            "{}: running as root in a folder root owns: what lc makes there belongs to root, and a service running as another user cannot use it (prefer `systemctl start lc@PORT`)",
            state.display()
        );
        return;
    }
    let (uid, gid) = (meta.uid(), meta.gid());
    // /run is root's: a missing run_dir is made here, as root, for the owner (systemd's
    // RuntimeDirectory= does the same for the service).
    if !run.exists() {
        let made = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(run)
            .and_then(|()| {
                nix::unistd::chown(
                    run,
                    Some(nix::unistd::Uid::from_raw(uid)),
                    Some(nix::unistd::Gid::from_raw(gid)),
                )
                .map_err(std::io::Error::from)
            });
        if let Err(e) = made {
            log::warn!("{}: cannot make it for uid {uid}: {e}", run.display());
        }
    }
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(gid));
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(uid));
    log::warn!(
        "{}: running as root; files and folders lc makes under it and {} get its owner (uid {uid}, gid {gid}), as the service makes them (prefer `systemctl start lc@PORT`)",
        state.display(),
        run.display()
    );
}

/// Thousands of connections need more than the usual soft limit of 1024 descriptors.
fn raise_fd_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                log::warn!("cannot raise the open file limit from {soft} to {hard}: {e}");
            }
        }
    }
}
