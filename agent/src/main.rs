//! `census-agent`: parse flags, resolve the config, start the runtime.
//! No business logic here; see the library (`census_agent`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use census_agent::config::{Config, LogFormat};
use census_agent::enroll::EnrollmentSecret;
use census_agent::inventory_source::{ChildCommand, InventorySource};
use census_agent::state::{Enrolled, LastAck};
use census_agent::{Error, collect, render, service};
use clap::{Parser, Subcommand, ValueEnum};

/// Exit code for bad usage or configuration (BSD EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "census-agent", version, about = "Census endpoint agent: inventory and health for the Census collector")]
struct Args {
    /// TOML config file; see docs/config-agent.md.
    #[arg(long, env = "CENSUS_AGENT_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Overrides `state_dir`.
    #[arg(long, env = "CENSUS_STATE_DIR", global = true)]
    state_dir: Option<PathBuf>,
    /// Overrides `log_format` (text or json).
    #[arg(long, env = "CENSUS_LOG_FORMAT", global = true)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Table,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll with a collector: generate a key, send a CSR with the enrollment secret, store the certificate.
    Enroll {
        /// Collector agent API URL, e.g. https://collector.example:7443
        #[arg(long, env = "CENSUS_SERVER")]
        server: String,
        /// The collector's CA certificate (PEM) to pin.
        #[arg(long, env = "CENSUS_CA")]
        ca: PathBuf,
        /// Enrollment secret (prefer the environment variable or --secret-file).
        #[arg(long, env = "CENSUS_ENROLL_SECRET", hide_env_values = true, conflicts_with = "secret_file")]
        secret: Option<String>,
        /// File holding the enrollment secret.
        #[arg(long)]
        secret_file: Option<PathBuf>,
    },
    /// Report to the collector until stopped.
    Run {
        /// Overrides `server`.
        #[arg(long, env = "CENSUS_SERVER")]
        server: Option<String>,
        /// Overrides `heartbeat_interval` (e.g. 30s).
        #[arg(long, env = "CENSUS_HEARTBEAT_INTERVAL", value_parser = humantime::parse_duration)]
        heartbeat_interval: Option<Duration>,
        /// Overrides `backoff_max` (e.g. 10s).
        #[arg(long, env = "CENSUS_BACKOFF_MAX", value_parser = humantime::parse_duration)]
        backoff_max: Option<Duration>,
    },
    /// Register the agent as a service that starts at boot and restarts on failure (systemd, launchd, Windows SCM); enrolls first when given --server, --ca and a secret.
    Install {
        /// Collector agent API URL, to enroll with if not enrolled yet.
        #[arg(long, env = "CENSUS_SERVER", requires = "ca")]
        server: Option<String>,
        /// The collector's CA certificate (PEM), to enroll with.
        #[arg(long, env = "CENSUS_CA", requires = "server")]
        ca: Option<PathBuf>,
        /// Enrollment secret (prefer the environment variable or --secret-file).
        #[arg(long, env = "CENSUS_ENROLL_SECRET", hide_env_values = true, conflicts_with = "secret_file")]
        secret: Option<String>,
        /// File holding the enrollment secret.
        #[arg(long)]
        secret_file: Option<PathBuf>,
        /// Write the service definition under this directory instead of "/" (tests, images).
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Stop and remove the service; the state directory stays unless --purge.
    Uninstall {
        /// Also delete the state directory (key, certificate, spool).
        #[arg(long)]
        purge: bool,
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Is the service installed and running, and when was the last report acknowledged?
    Status {
        #[arg(long, default_value = "/")]
        root: PathBuf,
    },
    /// Internal: collect this host's inventory and write it, protobuf-encoded, to standard output.
    /// `census-agent run` runs it in a child process so that collection memory is never the agent's.
    #[command(hide = true)]
    CollectInventory {
        /// Filesystem root to read inventory from.
        #[arg(long)]
        root: PathBuf,
        /// Extra certificate file or directory to inventory (repeatable).
        #[arg(long = "certificate-path")]
        certificate_paths: Vec<PathBuf>,
    },
    /// Print this host's inventory without any collector.
    Inventory {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also print how long each section took.
        #[arg(long)]
        timings: bool,
    },
}

fn resolve(args: &Args) -> Result<Config, Error> {
    let mut config = match (&args.config, &args.command) {
        // The inventory child of `census-agent run` gets all it needs as
        // flags; the config file may have changed since the agent read it.
        (_, Command::CollectInventory { .. }) | (None, _) => Config::default(),
        (Some(path), _) => Config::from_file(path)?,
    };
    if let Some(d) = &args.state_dir {
        config.state_dir = d.clone();
    }
    if let Some(f) = args.log_format {
        config.log_format = match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    if let Command::Run { server, heartbeat_interval, backoff_max } = &args.command {
        if let Some(s) = server {
            config.server = s.clone();
        }
        if let Some(h) = heartbeat_interval {
            config.heartbeat_interval = *h;
            config.inventory_interval = config.inventory_interval.max(*h);
        }
        if let Some(b) = backoff_max {
            config.backoff_max = *b;
            config.backoff_initial = config.backoff_initial.min(*b);
        }
    }
    config.validate().map_err(Error::Config)?;
    Ok(config)
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    let config = match resolve(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("census-agent: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    init_tracing(config.log_format);
    match execute(args.command, config, args.config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("census-agent: {e}");
            ExitCode::from(match e {
                Error::Config(_) | Error::NotEnrolled(_) => EXIT_USAGE,
                _ => 1,
            })
        }
    }
}

fn execute(command: Command, config: Config, args_config: Option<PathBuf>) -> Result<(), Error> {
    // Expensive answers that rarely change (apt's package lists) are kept
    // in the state directory when there is one.
    if config.state_dir.is_dir() {
        census_agent::collect::updates::apt::remember_answers_in(&config.state_dir);
    }
    match command {
        Command::Inventory { format, timings } => {
            let (inv, t) = collect::inventory(&config.root, &config.certificate_paths);
            let t = timings.then_some(t.as_slice());
            let text = match format {
                Format::Json => render::json(&inv, t),
                Format::Table => render::table_text(&inv, t),
            };
            // A reader that stops early (`| head`) is not an error worth a panic.
            match std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::io("writing", "standard output", e)),
                _ => Ok(()),
            }
        }
        Command::Enroll { server, ca, secret, secret_file } => enroll(&config, &server, &ca, secret, secret_file),
        Command::Install { server, ca, secret, secret_file, root } => {
            match (server, ca, Enrolled::load(&config.state_dir)) {
                (_, _, Ok(state)) => println!("already enrolled as agent {} with {}", state.agent_id, state.server),
                (Some(server), Some(ca), Err(Error::NotEnrolled(_))) => enroll(&config, &server, &ca, secret, secret_file)?,
                (_, _, Err(e)) => return Err(e),
            }
            let binary = std::env::current_exe().map_err(|e| Error::io("locating", "the census-agent binary", e))?;
            let spec = service::ServiceSpec {
                binary,
                state_dir: absolute(&config.state_dir)?,
                config: args_config.as_deref().map(absolute).transpose()?,
            };
            let done = service::install(&root, &spec)?;
            if done.manager_called {
                println!("installed {}; enabled at boot and started", done.definition.display());
            } else {
                println!(
                    "installed {}; the service manager is not running here, so it was not enabled or started",
                    done.definition.display()
                );
            }
            Ok(())
        }
        Command::Uninstall { purge, root } => {
            let done = service::uninstall(&root, &config.state_dir, purge)?;
            let stopped = if done.manager_called { "stopped, disabled and " } else { "" };
            println!("{} {stopped}removed", done.definition.display());
            if purge {
                println!("state directory {} removed", config.state_dir.display());
            } else {
                println!("state directory {} kept (--purge removes it)", config.state_dir.display());
            }
            Ok(())
        }
        Command::Status { root } => {
            let st = service::status(&root);
            println!("service: {} ({})", if st.installed { "installed" } else { "not installed" }, st.definition.display());
            println!(
                "running: {}",
                match st.running {
                    service::Running::Yes => "yes".to_string(),
                    service::Running::No(why) => format!("no: {why}"),
                    service::Running::Unknown(why) => format!("unknown: {why}"),
                }
            );
            match Enrolled::load(&config.state_dir) {
                Ok(e) => println!("enrolled: agent {} with {}", e.agent_id, e.server),
                Err(Error::NotEnrolled(_)) => println!("enrolled: no"),
                Err(e) => println!("enrolled: unreadable: {e}"),
            }
            match LastAck::load(&config.state_dir) {
                Some(a) => println!("last acknowledged report: seq {} at {}", a.seq, census_agent::rfc3339(a.at_unix_ms)),
                None => println!("last acknowledged report: none yet"),
            }
            Ok(())
        }
        Command::Run { .. } => {
            let source = InventorySource::ChildProcess(ChildCommand::collect_inventory(this_binary()?, &config));
            let rt = runtime()?;
            rt.block_on(census_agent::run(config, source, shutdown_signal()))
        }
        Command::CollectInventory { root, certificate_paths } => {
            census_agent::inventory_source::write_inventory(&root, &certificate_paths, &mut std::io::stdout().lock())
        }
    }
}

fn enroll(config: &Config, server: &str, ca: &std::path::Path, secret: Option<String>, secret_file: Option<PathBuf>) -> Result<(), Error> {
    let secret = match (secret, secret_file) {
        (Some(s), _) => s,
        (None, Some(path)) => std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?.trim().to_string(),
        (None, None) => {
            return Err(Error::Config("an enrollment secret is needed: --secret, CENSUS_ENROLL_SECRET or --secret-file".into()));
        }
    };
    let ca_pem = std::fs::read_to_string(ca).map_err(|e| Error::io("reading CA certificate", ca, e))?;
    let rt = runtime()?;
    let state = rt.block_on(census_agent::enroll::enroll(
        server,
        &ca_pem,
        &EnrollmentSecret(secret),
        &config.root,
        &config.state_dir,
        config.request_timeout,
    ))?;
    println!("enrolled as agent {} with {}; state in {}", state.agent_id, state.server, config.state_dir.display());
    Ok(())
}

/// A service starts elsewhere than here: its paths must not be relative.
fn absolute(path: &std::path::Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| Error::io("resolving", path, e))
}

/// This very binary, for the inventory child. On Linux `/proc/self/exe`
/// names the running binary even after a package upgrade replaced the
/// file, so the child always speaks the parent's version of the wire.
fn this_binary() -> Result<PathBuf, Error> {
    #[cfg(target_os = "linux")]
    {
        let exe = PathBuf::from("/proc/self/exe");
        if exe.exists() {
            return Ok(exe);
        }
    }
    std::env::current_exe().map_err(|e| Error::io("locating", "the census-agent binary", e))
}

/// One small runtime: the agent does little at a time, and every thread costs memory.
fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(2)
        .build()
        .map_err(|e| Error::Collector(format!("cannot start the async runtime: {e}")))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
