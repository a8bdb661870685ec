//! The `census` admin CLI: argument types, connection to the admin API, and
//! rendering (`render.rs` for inventory, `alerts.rs` for alerts, silences,
//! rules and the outbox, `lifecycle.rs` for agent revocation and backups,
//! `access.rs` for enrollment secrets, tokens, the audit log and exports).
//! `bin/census.rs` only parses arguments and calls `run`.

pub mod access;
pub mod alerts;
pub mod connect;
pub mod lifecycle;
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
    /// Aligned columns for people.
    #[default]
    Table,
    /// The admin API's messages with their proto field names.
    Json,
    /// One header line, then one record per row (listings only).
    Csv,
}

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0   done
  1   the collector refused or failed the request (not found, not possible now, ...)
  64  bad usage: wrong arguments, unreadable file, invalid request (EX_USAGE)
  69  the collector could not be reached or is unavailable (EX_UNAVAILABLE)
  77  authentication failed, or the token's role is too low (EX_NOPERM)

Roles: viewer reads everything and exports the asset register; operator
also acknowledges, silences and retries notifications; admin also changes
rules, revokes agents, takes backups, manages enrollment secrets and admin
tokens, and reads the audit log.";

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
    /// List hosts: all, or those a filter matches (docs/filters.md), sorted
    /// by any field, with extra columns.
    ///
    /// Example: census hosts --filter 'os.id = "debian" and memory.total < 8GiB'
    /// --sort 'fs("/").used_percent' --desc --columns 'fs("/").used_percent,software("openssl")'
    Hosts {
        /// Only hosts matching this filter; a mistake is shown with a caret
        /// under the column that is wrong (exit code 64).
        #[arg(long)]
        filter: Option<String>,
        /// Sort by this field (hosts without a value last); default hostname.
        #[arg(long)]
        sort: Option<String>,
        /// Sort in descending order.
        #[arg(long)]
        desc: bool,
        /// Extra columns: field names, comma-separated.
        #[arg(long, value_delimiter = ',')]
        columns: Vec<String>,
    },
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
    /// List alerts: firing first, then pending, then recently resolved.
    Alerts {
        /// Only alerts in this state.
        #[arg(long, value_parser = ["pending", "firing", "resolved"])]
        state: Option<String>,
    },
    /// Show one alert: values, labels, acknowledgement, silences, tickets.
    Alert {
        /// Fingerprint, or a unique prefix of at least 6 characters (the ID column of `census alerts`).
        id: String,
    },
    /// Acknowledge a pending or firing alert until it resolves (operator role; 77 otherwise).
    Ack {
        /// Fingerprint, or a unique prefix of at least 6 characters.
        id: String,
        /// Why, or who is on it; shown with the alert and sent to the sinks.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// Silences: mute the notifications of matching alerts for a while.
    #[command(subcommand)]
    Silence(SilenceCommand),
    /// Alert rules: list those in force, test a rule file, add or delete API rules.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Agents: revoke one.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Take a consistent backup of the running collector and save it here; it holds the CA's private key, so the file is written 0600 (admin role; 77 otherwise).
    Backup {
        /// The file to write, or a directory to write census-<UTC time>.census-backup into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Enrollment secrets: create one per site, list them with their uses, expire a leaked one (admin role; 77 otherwise).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Admin tokens: create one with a role, list them, revoke one (admin role; 77 otherwise).
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// The audit log: state-changing admin calls, allowed and refused, newest first (admin role; 77 otherwise).
    Audit {
        /// How far back, e.g. 1h, 7d; default: everything kept.
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// Only calls made with this token id (`census tokens list`).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action, e.g. token.revoke, or a family ending in a dot, e.g. silence.
        #[arg(long)]
        action: Option<String>,
        /// At most this many entries (default 100, at most 10000).
        #[arg(long)]
        limit: Option<u32>,
    },
    /// The asset register, one row per host, to stdout: CSV (RFC 4180, with a header) or a JSON array.
    ///
    /// Example: census export --format csv --filter 'os.id = "debian"' > assets.csv
    Export {
        /// csv or json.
        #[arg(long, value_parser = ["csv", "json"])]
        format: String,
        /// Only hosts matching this filter (docs/filters.md).
        #[arg(long)]
        filter: Option<String>,
    },
    /// Notification outbox: what was sent to each sink, what waits, what failed.
    Outbox {
        #[command(subcommand)]
        retry: Option<OutboxCommand>,
        /// Only entries in this state.
        #[arg(long, value_parser = ["pending", "delivered", "dead"])]
        state: Option<String>,
        /// Only entries of this sink (its `name` in the collector config).
        #[arg(long)]
        sink: Option<String>,
        /// At most this many entries, newest first (default 100).
        #[arg(long)]
        limit: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Create an enrollment secret; it is printed once (admin role; 77 otherwise).
    Create {
        /// What it is for, e.g. the site: paris-office.
        #[arg(long)]
        name: String,
        /// Valid for this long, e.g. 30d, 12h.
        #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "expires_at")]
        expires: Option<std::time::Duration>,
        /// Valid until this time, RFC 3339, e.g. 2026-06-30T18:00:00Z.
        #[arg(long, value_parser = parse_rfc3339_ms)]
        expires_at: Option<i64>,
        /// Admit at most this many enrollments.
        #[arg(long)]
        max_uses: Option<u64>,
    },
    /// List enrollment secrets (never the secrets themselves): state, expiry, uses.
    List,
    /// Revoke an enrollment secret now: enrollments with it are refused; enrolled agents keep working.
    Expire {
        /// The secret's id (`census secrets list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an admin token with a role; it is printed once (admin role; 77 otherwise).
    Create {
        /// Who or what it is for, e.g. "on-call rota".
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long, value_parser = ["viewer", "operator", "admin"])]
        role: String,
    },
    /// List admin tokens (never the tokens themselves).
    List,
    /// Revoke a token: every later call with it is refused at once. The last active admin token cannot be revoked.
    Revoke {
        /// The token's id (`census tokens list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Revoke an agent: its next connection or report is refused, durably (admin role; 77 otherwise).
    Revoke {
        /// The agent id, 32 hex characters (`census hosts -o json` shows it); a hostname is not accepted.
        agent_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SilenceCommand {
    /// Silence the alerts all MATCHERs match, from now (operator role; 77 otherwise).
    Add {
        /// label=value, label!=value, label=~glob or label!~glob, e.g. alertname=disk-almost-full host=~web-*
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long, e.g. 2h, 30m, 1d.
        #[arg(long, value_parser = humantime::parse_duration, required_unless_present = "until", conflicts_with = "until")]
        duration: Option<std::time::Duration>,
        /// Until this time, RFC 3339, e.g. 2026-05-01T18:00:00Z or 2026-05-01T20:00:00+02:00.
        #[arg(long, value_parser = parse_rfc3339_ms)]
        until: Option<i64>,
        /// Why (shown in `census silence list`).
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// List silences: active, pending, and expired until they age out.
    List,
    /// End a silence now (operator role; 77 otherwise).
    Expire {
        /// The silence id (`census silence list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// The rules in force with their source (default, file, api), and the rule file's error if it was refused.
    List,
    /// Evaluate the rules of FILE against the fleet now and list the alerts they would raise; nothing is stored or notified.
    Test {
        /// A rule file: [[rule]] tables in TOML.
        file: PathBuf,
    },
    /// Add or replace a rule kept by the collector (admin role; 77 otherwise).
    Add {
        /// TOML holding exactly one [[rule]] table.
        file: PathBuf,
    },
    /// Delete a rule added with `census rules add` (admin role; 77 otherwise).
    Delete {
        /// The rule's name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Make a pending or dead entry due now with a fresh attempt budget (operator role; 77 otherwise).
    Retry {
        /// The entry id (`census outbox`).
        id: u64,
    },
}

impl Cli {
    /// The command line with the exit codes in the help of every command,
    /// not only the top one.
    pub fn command_with_exit_codes() -> clap::Command {
        fn with_codes(cmd: clap::Command) -> clap::Command {
            cmd.after_help(EXIT_CODES_HELP).mut_subcommands(with_codes)
        }
        with_codes(<Cli as clap::CommandFactory>::command())
    }

    /// Parses the process arguments (what `bin/census.rs` calls).
    pub fn parse_args() -> Result<Cli, clap::Error> {
        let matches = Cli::command_with_exit_codes().try_get_matches()?;
        <Cli as clap::FromArgMatches>::from_arg_matches(&matches)
    }
}

/// `--until`: RFC 3339 with any offset, as Unix milliseconds.
fn parse_rfc3339_ms(text: &str) -> Result<i64, String> {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("{text:?} is not an RFC 3339 time such as 2026-05-01T18:00:00Z: {e}"))?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).map_err(|_| format!("{text:?} is out of range"))
}

impl Command {
    /// Whether the command prints a list (the only kind `--output csv` fits).
    fn is_listing(&self) -> bool {
        match self {
            Command::Hosts { .. }
            | Command::Software { .. }
            | Command::Changes { .. }
            | Command::Metrics { .. }
            | Command::Alerts { .. } => true,
            Command::Silence(SilenceCommand::List) | Command::Rules(RulesCommand::List | RulesCommand::Test { .. }) => true,
            Command::Secrets(SecretsCommand::List) | Command::Tokens(TokensCommand::List) | Command::Audit { .. } => true,
            Command::Outbox { retry, .. } => retry.is_none(),
            _ => false,
        }
    }

    /// The rule file a command sends, if any.
    fn rule_file(&self) -> Option<&PathBuf> {
        match self {
            Command::Rules(RulesCommand::Test { file } | RulesCommand::Add { file }) => Some(file),
            _ => None,
        }
    }
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
    /// The name to check the server certificate against, when it is not
    /// the host of `server` (a loopback address the certificate does not
    /// name).
    pub tls_name: Option<String>,
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
        Ok(Target { server, token: crate::secrets::Secret::new(token), ca, tls_name: None })
    }
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("census").join("cli.toml"))
}

/// Rule files are small; the collector refuses more than 512 KiB.
const MAX_RULE_FILE_BYTES: u64 = 512 * 1024;

fn read_rule_file(path: &std::path::Path) -> Result<String, String> {
    let size = std::fs::metadata(path).map_err(|e| format!("reading {}: {e}", path.display()))?.len();
    if size > MAX_RULE_FILE_BYTES {
        return Err(format!("{} is larger than {MAX_RULE_FILE_BYTES} bytes; a rule file is a few [[rule]] tables", path.display()));
    }
    std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Runs one CLI command; returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    if cli.output == Output::Csv && !cli.command.is_listing() {
        eprintln!("census: --output csv is for listings; use --output table or json here");
        return exit::USAGE;
    }
    let rule_text = match cli.command.rule_file().map(|p| read_rule_file(p)).transpose() {
        Ok(text) => text.unwrap_or_default(),
        Err(e) => {
            eprintln!("census: {e}");
            return exit::USAGE;
        }
    };
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
    // The backup's file is created before anything is asked of the
    // collector: an unwritable place is a usage error.
    let backup_file = match &cli.command {
        Command::Backup { out } => {
            let path = crate::backup::output_path(out, std::time::SystemTime::now());
            match crate::backup::create_private(&crate::backup::partial_path(&path)) {
                Ok(file) => Some((path, file)),
                Err(e) => {
                    eprintln!("census: {e}");
                    return exit::USAGE;
                }
            }
        }
        _ => None,
    };
    let result = match &cli.command {
        Command::Hosts { filter, sort, desc, columns } => {
            let query = census_proto::v1::ListHostsRequest {
                filter: filter.clone().unwrap_or_default(),
                sort: sort.clone().unwrap_or_default(),
                descending: *desc,
                columns: columns.clone(),
                ..Default::default()
            };
            render::hosts(&mut client, query, cli.output).await
        }
        Command::Host { id_or_hostname } => render::host(&mut client, id_or_hostname, cli.output).await,
        Command::Software { name, hosts, version } => {
            render::software(&mut client, name, version.as_deref(), *hosts || version.is_some(), cli.output).await
        }
        Command::Changes { host, since } => render::changes(&mut client, host.as_deref(), *since, cli.output).await,
        Command::Metrics { host, metric, since, resolution } => {
            render::metrics(&mut client, host, metric, *since, resolution.as_deref(), cli.output).await
        }
        Command::Alerts { state } => alerts::alerts(&mut client, state.as_deref(), cli.output).await,
        Command::Alert { id } => alerts::alert(&mut client, id, cli.output).await,
        Command::Ack { id, comment } => alerts::ack(&mut client, id, comment, cli.output).await,
        Command::Silence(SilenceCommand::Add { matchers, duration, until, comment }) => {
            let duration_ms = duration.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0);
            alerts::silence_add(&mut client, matchers, duration_ms, until.unwrap_or(0), comment, cli.output).await
        }
        Command::Silence(SilenceCommand::List) => alerts::silences(&mut client, cli.output).await,
        Command::Silence(SilenceCommand::Expire { id }) => alerts::silence_expire(&mut client, id, cli.output).await,
        Command::Rules(RulesCommand::List) => alerts::rules(&mut client, cli.output).await,
        Command::Rules(RulesCommand::Test { .. }) => alerts::rules_test(&mut client, rule_text, cli.output).await,
        Command::Rules(RulesCommand::Add { .. }) => alerts::rule_add(&mut client, rule_text, cli.output).await,
        Command::Rules(RulesCommand::Delete { name }) => alerts::rule_delete(&mut client, name, cli.output).await,
        Command::Agents(AgentsCommand::Revoke { agent_id }) => lifecycle::revoke(&mut client, agent_id, cli.output).await,
        Command::Backup { .. } => {
            let (path, file) = backup_file.expect("created above for Command::Backup");
            lifecycle::backup(&mut client, &path, file, cli.output).await
        }
        Command::Secrets(SecretsCommand::Create { name, expires, expires_at, max_uses }) => {
            let expires_at = match (expires, expires_at) {
                (Some(d), _) => crate::clock::now_ms().saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
                (None, Some(at)) => *at,
                (None, None) => 0,
            };
            access::secret_create(&mut client, name, expires_at, max_uses.unwrap_or(0), cli.output).await
        }
        Command::Secrets(SecretsCommand::List) => access::secrets(&mut client, cli.output).await,
        Command::Secrets(SecretsCommand::Expire { id }) => access::secret_expire(&mut client, id, cli.output).await,
        Command::Tokens(TokensCommand::Create { name, role }) => access::token_create(&mut client, name, role, cli.output).await,
        Command::Tokens(TokensCommand::List) => access::tokens(&mut client, cli.output).await,
        Command::Tokens(TokensCommand::Revoke { id }) => access::token_revoke(&mut client, id, cli.output).await,
        Command::Audit { since, actor, action, limit } => {
            let req = census_proto::v1::ListAuditRequest {
                since_unix_ms: since
                    .map(|d| crate::clock::now_ms().saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
                    .unwrap_or(0),
                actor: actor.clone().unwrap_or_default(),
                action: action.clone().unwrap_or_default(),
                limit: limit.unwrap_or(0),
            };
            access::audit(&mut client, req, cli.output).await
        }
        Command::Export { format, filter } => {
            let format = crate::export::Format::parse(format).expect("clap admits only csv and json");
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            access::export(&mut client, filter.as_deref().unwrap_or(""), format, &mut out).await.map(|_| String::new())
        }
        Command::Outbox { retry: Some(OutboxCommand::Retry { id }), .. } => alerts::outbox_retry(&mut client, *id, cli.output).await,
        Command::Outbox { retry: None, state, sink, limit } => {
            alerts::outbox(&mut client, state.as_deref(), sink.as_deref(), limit.unwrap_or(0), cli.output).await
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("census").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
        let mut cli = Cli::command_with_exit_codes();
        for path in [&["silence", "add"][..], &["ack"], &["hosts"]] {
            let mut cmd = &mut cli;
            for name in path {
                cmd = cmd.find_subcommand_mut(name).expect("subcommand");
            }
            let help = cmd.render_help().to_string();
            assert!(help.contains("77  authentication failed, or the token's role is too low"), "{path:?}: {help}");
        }
    }

    #[test]
    fn a_silence_needs_exactly_one_end() {
        let cli = parse(&["silence", "add", "alertname=disk", "host=~web-*", "--duration", "2h", "--comment", "swap"]).expect("duration");
        match cli.command {
            Command::Silence(SilenceCommand::Add { matchers, duration, until, comment }) => {
                assert_eq!(matchers, ["alertname=disk", "host=~web-*"]);
                assert_eq!((duration, until, comment.as_str()), (Some(std::time::Duration::from_secs(7200)), None, "swap"));
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli = parse(&["silence", "add", "alertname=disk", "--until", "1970-01-01T02:00:01+02:00"]).expect("until");
        assert!(matches!(cli.command, Command::Silence(SilenceCommand::Add { until: Some(1_000), .. })), "{:?}", cli.command);
        assert!(parse(&["silence", "add", "alertname=disk"]).is_err(), "an end is required");
        assert!(parse(&["silence", "add", "alertname=disk", "--duration", "1h", "--until", "2030-01-01T00:00:00Z"]).is_err(), "not both");
        assert!(parse(&["silence", "add", "--duration", "1h"]).is_err(), "a matcher is required");
        let bad = parse(&["silence", "add", "a=b", "--until", "tomorrow"]).expect_err("not RFC 3339").to_string();
        assert!(bad.contains("is not an RFC 3339 time"), "{bad}");
    }

    #[test]
    fn access_commands_parse_and_refuse_contradictions() {
        let cli = parse(&["secrets", "create", "--name", "paris", "--expires", "30d", "--max-uses", "40"]).expect("create");
        assert!(matches!(
            &cli.command,
            Command::Secrets(SecretsCommand::Create { name, expires: Some(d), expires_at: None, max_uses: Some(40) })
                if name == "paris" && d.as_secs() == 30 * 86_400
        ));
        assert!(parse(&["secrets", "create", "--name", "p", "--expires", "1d", "--expires-at", "2030-01-01T00:00:00Z"]).is_err());
        assert!(parse(&["secrets", "create", "--expires", "1d"]).is_err(), "a name is required");
        assert!(parse(&["tokens", "create", "--name", "x", "--role", "root"]).is_err());
        assert!(parse(&["export", "--format", "xml"]).is_err());
        let cli = parse(&["audit", "--since", "1h", "--action", "token.", "-o", "csv"]).expect("audit");
        assert!(cli.command.is_listing());
        for args in [&["secrets", "list"][..], &["tokens", "list"]] {
            assert!(parse(args).expect("parses").command.is_listing(), "{args:?}");
        }
        for args in [&["secrets", "expire", "abc"][..], &["tokens", "revoke", "abc"], &["export", "--format", "csv"]] {
            assert!(!parse(args).expect("parses").command.is_listing(), "{args:?}");
        }
    }

    #[test]
    fn outbox_lists_or_retries() {
        let cli = parse(&["outbox", "--state", "dead", "--sink", "rt", "--limit", "5", "-o", "csv"]).expect("list");
        assert!(cli.command.is_listing());
        assert!(matches!(&cli.command, Command::Outbox { retry: None, state: Some(s), limit: Some(5), .. } if s == "dead"));
        let cli = parse(&["outbox", "retry", "42"]).expect("retry");
        assert!(matches!(cli.command, Command::Outbox { retry: Some(OutboxCommand::Retry { id: 42 }), .. }));
        assert!(!cli.command.is_listing(), "csv does not fit a retry");
        assert!(parse(&["outbox", "--state", "lost"]).is_err());
    }

    #[test]
    fn listings_take_csv_and_details_do_not() {
        for args in
            [&["alerts", "--state", "firing"][..], &["silence", "list"], &["rules", "list"], &["rules", "test", "r.toml"], &["hosts"]]
        {
            assert!(parse(args).expect("parses").command.is_listing(), "{args:?}");
        }
        for args in
            [&["alert", "abcdef"][..], &["ack", "abcdef"], &["silence", "expire", "s1"], &["rules", "add", "r.toml"], &["host", "web"]]
        {
            assert!(!parse(args).expect("parses").command.is_listing(), "{args:?}");
        }
        assert!(parse(&["alerts", "--state", "burning"]).is_err());
    }
}
