//! The `census` admin CLI: argument types, connection to the admin API, and
//! rendering. `bin/census.rs` only parses arguments and calls `run`.

pub mod connect;
pub mod render;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use serde::Deserialize;

/// Exit codes scripts can rely on.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The collector answered with an error (not found, refused, ...).
    pub const FAILURE: u8 = 1;
    /// Bad usage or configuration (BSD EX_USAGE).
    pub const USAGE: u8 = 64;
    /// The collector could not be reached (BSD EX_UNAVAILABLE).
    pub const UNAVAILABLE: u8 = 69;
    /// Authentication or permission refused (BSD EX_NOPERM).
    pub const NOPERM: u8 = 77;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    #[default]
    Table,
    Json,
}

/// Census admin command line.
#[derive(Debug, Parser)]
#[command(name = "census", version, about = "Ask a Census collector about the fleet")]
pub struct Cli {
    /// Admin API address, e.g. https://collector.example:7444
    #[arg(long, env = "CENSUS_SERVER", global = true)]
    pub server: Option<String>,
    /// Admin token (prefer the environment variable to keep it out of shell history).
    #[arg(long, env = "CENSUS_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// CA certificate of the collector (PEM).
    #[arg(long, env = "CENSUS_CA", global = true)]
    pub ca: Option<PathBuf>,
    /// CLI config file with `server`, `token`, `ca` keys.
    #[arg(long, env = "CENSUS_CLI_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List hosts.
    Hosts,
    /// Show one host with its full inventory.
    Host {
        /// Agent id or hostname.
        id_or_hostname: String,
    },
    /// One package across the fleet: versions (newest first) and host counts.
    Software {
        /// Exact package name, e.g. openssl.
        name: String,
        /// List the hosts behind each version (or only this version's hosts with --version).
        #[arg(long)]
        hosts: bool,
        /// Only this exact version.
        #[arg(long)]
        version: Option<String>,
    },
    /// Change history (software, hardware, network, OS) of one host or the fleet.
    Changes {
        /// Agent id or hostname; every host when absent.
        host: Option<String>,
        /// How far back, e.g. 7d, 24h, 30m.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
    },
    /// One health metric of one host as a series, with a small chart.
    Metrics {
        /// Agent id or hostname.
        host: String,
        /// Metric name, e.g. cpu, load1, mem.used_percent, fs./.used_percent, custom.queue_depth (docs/custom-metrics.md).
        metric: String,
        /// How far back, e.g. 24h, 7d.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        since: std::time::Duration,
        /// raw, 5m or 1h; default: the finest kept that far back.
        #[arg(long)]
        resolution: Option<String>,
    },
}

/// Settings from the CLI config file (all optional; flags and env win).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CliFile {
    pub server: Option<String>,
    pub token: Option<String>,
    pub ca: Option<PathBuf>,
}

/// Connection settings after merging file < env < flags.
#[derive(Debug)]
pub struct Target {
    pub server: String,
    pub token: crate::secrets::Secret,
    pub ca: PathBuf,
}

impl Cli {
    /// Resolves where and how to connect. Errors are usage errors.
    pub fn target(&self) -> Result<Target, String> {
        let path = self.config.clone().or_else(default_config_path);
        let file = match path {
            Some(p) if p.exists() => {
                let text = std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
                toml::from_str::<CliFile>(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            Some(p) if self.config.is_some() => return Err(format!("config file {} does not exist", p.display())),
            _ => CliFile::default(),
        };
        let server = self.server.clone().or(file.server).ok_or("no collector address: pass --server or set CENSUS_SERVER")?;
        let token = self.token.clone().or(file.token).ok_or("no admin token: pass --token or set CENSUS_TOKEN")?;
        let ca = self.ca.clone().or(file.ca).ok_or("no CA certificate: pass --ca or set CENSUS_CA")?;
        Ok(Target { server, token: crate::secrets::Secret::new(token), ca })
    }
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("census").join("cli.toml"))
}

/// Runs one CLI command; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    let target = match cli.target() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("census: {e}");
            return exit::USAGE;
        }
    };
    let mut client = match connect::admin_client(&target).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("census: {e:#}");
            return exit::UNAVAILABLE;
        }
    };
    let result = match &cli.command {
        Command::Hosts => render::hosts(&mut client, cli.output).await,
        Command::Host { id_or_hostname } => render::host(&mut client, id_or_hostname, cli.output).await,
        Command::Software { name, hosts, version } => {
            render::software(&mut client, name, version.as_deref(), *hosts || version.is_some(), cli.output).await
        }
        Command::Changes { host, since } => render::changes(&mut client, host.as_deref(), *since, cli.output).await,
        Command::Metrics { host, metric, since, resolution } => {
            render::metrics(&mut client, host, metric, *since, resolution.as_deref(), cli.output).await
        }
    };
    match result {
        Ok(text) => {
            print!("{text}");
            exit::OK
        }
        Err(status) => {
            eprintln!("census: {}", connect::describe(&status));
            connect::exit_code(&status)
        }
    }
}
