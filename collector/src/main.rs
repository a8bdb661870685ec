//! `census-collector`: parse flags, resolve the config, start the runtime.
//! No business logic here; see the library (`census_collector`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use census_collector::config::{Config, LogFormat};
use census_collector::secrets::Role;
use census_collector::{Error, init, telemetry};
use clap::{Parser, Subcommand};

/// Exit code for bad usage or configuration (BSD EX_USAGE).
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(name = "census-collector", version, about = "Census collector: ingest, store and serve the fleet inventory")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a data directory: CA, server certificate, first admin token and enrollment secret.
    Init {
        /// Data directory to create.
        #[arg(long, env = "CENSUS_DATA_DIR")]
        data_dir: PathBuf,
        /// DNS name or IP address agents use to reach this collector (repeatable).
        #[arg(long = "san", required = true)]
        sans: Vec<String>,
        /// Print the result as JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Serve the agent API, the admin API and the HTTP API.
    Serve(ServeArgs),
    /// Admin tokens for the `census` CLI.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The server certificate.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Back up the collector's data directory (key material included: the file is 0600).
    ///
    /// Stopped: read directly. Serving (its store is locked): asked of the
    /// running collector over its admin API on `admin_api.listen` (from
    /// --config), with an admin token from --token or CENSUS_TOKEN.
    /// Exit codes: 0 done, 1 failed, 64 bad usage, 69 the running collector
    /// is unreachable, 77 the token was refused.
    Backup {
        /// Data directory of the collector.
        #[arg(long, env = "CENSUS_DATA_DIR")]
        data_dir: PathBuf,
        /// The collector's config file, for `admin_api.listen` when it is running.
        #[arg(long, env = "CENSUS_CONFIG")]
        config: Option<PathBuf>,
        /// An admin token, needed only when the collector is running (prefer CENSUS_TOKEN).
        #[arg(long, env = "CENSUS_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The backup file, or a directory to write census-<time>.census-backup into.
        #[arg(long)]
        out: PathBuf,
        /// Print the result as JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into a new (absent or empty) data directory; then start the collector on it.
    Restore {
        /// Data directory to create.
        #[arg(long, env = "CENSUS_DATA_DIR")]
        data_dir: PathBuf,
        /// The backup file (`census backup` or `census-collector backup`).
        #[arg(long)]
        from: PathBuf,
        /// Print the result as JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Issue a new server key and certificate from the same CA; a running collector picks them up within seconds.
    Rotate {
        /// Data directory of the collector (only its pki/ is touched, so the collector may be running).
        #[arg(long, env = "CENSUS_DATA_DIR")]
        data_dir: PathBuf,
        /// DNS name or IP address agents use to reach this collector (repeatable); default: those of the current certificate.
        #[arg(long = "san")]
        sans: Vec<String>,
        /// Print the result as JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token with a role, offline: stop the collector first (its store admits one process); while it runs, use `census tokens create`.
    Create {
        /// Data directory of the collector.
        #[arg(long, env = "CENSUS_DATA_DIR")]
        data_dir: PathBuf,
        /// Who or what the token is for, e.g. "on-call rota".
        #[arg(long)]
        name: String,
        /// viewer (read everything), operator (also acknowledge, silence, retry notifications) or admin (also rules).
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
        /// Print the result as JSON (for scripts) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML config file; see docs/config-collector.md.
    #[arg(long, env = "CENSUS_CONFIG")]
    config: Option<PathBuf>,
    /// Overrides `data_dir`.
    #[arg(long, env = "CENSUS_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Overrides `agent_api.listen`.
    #[arg(long, env = "CENSUS_AGENT_LISTEN")]
    agent_listen: Option<SocketAddr>,
    /// Overrides `admin_api.listen`.
    #[arg(long, env = "CENSUS_ADMIN_LISTEN")]
    admin_listen: Option<SocketAddr>,
    /// Overrides `http_api.listen`.
    #[arg(long, env = "CENSUS_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// Overrides `log_format` ("text" or "json").
    #[arg(long, env = "CENSUS_LOG_FORMAT", value_parser = parse_log_format)]
    log_format: Option<LogFormat>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not a log format; use text or json")),
    }
}

impl ServeArgs {
    /// defaults < file < env/flags (clap merges env and flags).
    fn resolve(&self) -> Result<Config, Error> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(a) = self.agent_listen {
            config.agent_api.listen = a;
        }
        if let Some(a) = self.admin_listen {
            config.admin_api.listen = a;
        }
        if let Some(a) = self.http_listen {
            config.http_api.listen = a;
        }
        if let Some(f) = self.log_format {
            config.log_format = f;
        }
        config.validate().map_err(Error::Config)?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match args.command {
        Command::Init { data_dir, sans, json } => match init::init(&data_dir, &sans) {
            Ok(done) => {
                print_init(&data_dir, &done, json);
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
        Command::Token(TokenCommand::Create { data_dir, name, role, json }) => {
            let role = Role::parse(&role).expect("clap only admits the role names Role::parse knows");
            match init::create_token_offline(&data_dir, &name, role) {
                Ok(token) => {
                    // The id is what acknowledgements, silences and logs name the token by.
                    let id = token.public_id();
                    if json {
                        println!("{}", serde_json::json!({ "token": token.expose(), "id": id, "role": role.as_str(), "name": name }));
                    } else {
                        println!("{} token {id} for {name:?}: {}", role.as_str(), token.expose());
                        println!("It is shown only now; the collector keeps only its hash.");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => failed(&e),
            }
        }
        Command::Cert(CertCommand::Rotate { data_dir, sans, json }) => {
            let pki_dir = data_dir.join("pki");
            if !census_collector::pki::Pki::ca_path(&pki_dir).exists() {
                return failed(&Error::NotInitialised(data_dir));
            }
            match census_collector::pki::rotate_server_certificate(&pki_dir, &sans, std::time::SystemTime::now()) {
                Ok(done) => {
                    let expires = census_collector::clock::rfc3339_seconds(done.not_after_unix_ms);
                    if json {
                        println!("{}", serde_json::json!({ "sans": done.sans, "not_after": expires, "sha256": done.sha256 }));
                    } else {
                        println!("New server certificate for {} (sha256 {}), valid until {expires}.", done.sans.join(", "), done.sha256);
                        println!(
                            "A running collector serves it to new connections within {}s; agents keep trusting the same CA.",
                            census_collector::tls::RELOAD_EVERY.as_secs()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => failed(&e),
            }
        }
        Command::Backup { data_dir, out, json, config, token } => {
            match census_collector::backup::backup_offline(&data_dir, &out, std::time::SystemTime::now()) {
                Ok((path, summary)) => {
                    print_backup(&path, &summary, json);
                    ExitCode::SUCCESS
                }
                // The store is locked: the collector is serving it.
                Err(Error::FailedPrecondition(why)) => backup_running(&data_dir, &out, json, config, token, &why),
                Err(e) => failed(&e),
            }
        }
        Command::Restore { data_dir, from, json } => match census_collector::backup::restore(&from, &data_dir) {
            Ok(summary) => {
                if json {
                    println!(
                        "{}",
                        serde_json::json!({ "data_dir": data_dir, "agents": summary.agents, "entries": summary.entries, "taken_at": census_collector::clock::rfc3339_seconds(summary.created_at_unix_ms) })
                    );
                } else {
                    println!(
                        "Restored {} into {}: {} host(s), {} record(s), as of {}.",
                        from.display(),
                        data_dir.display(),
                        summary.agents,
                        summary.entries,
                        census_collector::clock::rfc3339_seconds(summary.created_at_unix_ms)
                    );
                    println!("Start the collector on it (census-collector serve); agents reconnect by themselves.");
                }
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        },
        Command::Serve(serve) => {
            let config = match serve.resolve() {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("census-collector: {e}");
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            telemetry::init_tracing(config.log_format);
            match serve_until_signal(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("census-collector: {e:#}");
                    let usage = e.downcast_ref::<Error>().is_some_and(|e| matches!(e, Error::Config(_) | Error::NotInitialised(_)));
                    ExitCode::from(if usage { EXIT_USAGE } else { 1 })
                }
            }
        }
    }
}

/// Reports a failed offline command: 64 when calling differently fixes it
/// (bad arguments, wrong or already used data directory, not a usable
/// backup), else 1.
fn failed(e: &Error) -> ExitCode {
    eprintln!("census-collector: {e}");
    let usage = matches!(e, Error::Config(_) | Error::AlreadyInitialised(_) | Error::NotInitialised(_) | Error::InvalidArgument(_));
    ExitCode::from(if usage { EXIT_USAGE } else { 1 })
}

/// `backup` of a data directory a running collector holds: through its admin API.
fn backup_running(
    data_dir: &std::path::Path,
    out: &std::path::Path,
    json: bool,
    config: Option<PathBuf>,
    token: Option<String>,
    locked: &str,
) -> ExitCode {
    let Some(token) = token else {
        eprintln!("census-collector: {locked}");
        eprintln!("census-collector: pass an admin token (--token or CENSUS_TOKEN) to take the backup through the running collector");
        return ExitCode::from(EXIT_USAGE);
    };
    let config = match config.as_deref().map(Config::from_file).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            eprintln!("census-collector: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("census-collector: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let secret = census_collector::secrets::Secret::new(token);
    match runtime.block_on(census_collector::cli::lifecycle::backup_through_running(data_dir, out, secret, config.admin_api.listen)) {
        Ok((path, summary)) => {
            print_backup(&path, &summary, json);
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("census-collector: backup through the running collector: {message}");
            ExitCode::from(code)
        }
    }
}

fn serve_until_signal(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        let collector = census_collector::Collector::bind(config)?;
        collector.serve(shutdown_signal()).await?;
        Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn print_init(data_dir: &std::path::Path, done: &init::Initialised, json: bool) {
    if json {
        let value = serde_json::json!({
            "data_dir": data_dir,
            "ca_certificate": done.ca_path,
            "admin_token": done.admin_token.expose(),
            "enrollment_secret": done.enrollment_secret.expose(),
        });
        println!("{value}");
        return;
    }
    println!("Initialised {}", data_dir.display());
    println!("  CA certificate     {}   (give it to agents and admins)", done.ca_path.display());
    println!("  admin token        {}", done.admin_token.expose());
    println!("  enrollment secret  {}", done.enrollment_secret.expose());
    println!("The token and the secret are shown only now; the collector keeps only their hashes.");
}

fn print_backup(path: &std::path::Path, summary: &census_collector::backup::Summary, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "file": path, "agents": summary.agents, "entries": summary.entries, "bytes": summary.bytes, "sha256": summary.sha256 })
        );
        return;
    }
    println!(
        "Backup written to {}: {} host(s), {} record(s), {} bytes, sha256 {}.",
        path.display(),
        summary.agents,
        summary.entries,
        summary.bytes,
        summary.sha256
    );
    println!("It holds the CA's private key: keep it as secret as the data directory (mode 0600).");
}
