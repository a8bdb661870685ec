//! `cargo run --release -p census-demo`: the product in one command.
//!
//! Creates a throwaway data directory, initialises a collector (CA, server
//! certificate, admin token, enrollment secret), serves it on loopback
//! ports, enrolls an agent for this machine through the real mutual-TLS
//! path, shows the host as `census` shows it, prints the commands to try
//! next, and runs until Ctrl-C. The agent and collector are the same
//! libraries the real binaries wrap; only the process is shared.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use census_collector::cli::{Target, connect, render};
use census_collector::config::Config as CollectorConfig;
use census_collector::{Collector, init, telemetry};
use tokio::sync::watch;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_tracing(census_collector::config::LogFormat::Text);
    let dir = tempfile::Builder::new().prefix("census-demo-").tempdir().context("creating the demo directory")?;
    let data_dir = dir.path().join("collector");
    let done = init::init(&data_dir, &["127.0.0.1".to_string(), "localhost".to_string()]).context("initialising the collector")?;

    let mut config = CollectorConfig { data_dir: data_dir.clone(), ..CollectorConfig::default() };
    config.agent_api.listen = "127.0.0.1:0".parse()?;
    config.admin_api.listen = "127.0.0.1:0".parse()?;
    config.http_api.listen = "127.0.0.1:0".parse()?;
    config.agents.heartbeat_interval = Duration::from_secs(10);
    config.agents.inventory_interval = Duration::from_secs(300);
    let collector = Collector::bind(config).context("starting the collector")?;
    let (agent_addr, admin_addr) = (collector.agent_addr(), collector.admin_addr());
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let collector_task = tokio::spawn(collector.serve(stopped(stop_rx.clone())));

    // Enroll this machine exactly as `census-agent enroll` would.
    let agent_state = dir.path().join("agent");
    let ca_pem = std::fs::read_to_string(&done.ca_path)?;
    let server = format!("https://{agent_addr}");
    let secret = census_agent::enroll::EnrollmentSecret(done.enrollment_secret.expose().to_string());
    let enrolled =
        census_agent::enroll::enroll(&server, &ca_pem, &secret, std::path::Path::new("/"), &agent_state, Duration::from_secs(30))
            .await
            .context("enrolling this machine")?;
    let agent_config = census_agent::Config { state_dir: agent_state.clone(), ..census_agent::Config::default() };
    // In-process collection: the demo is one process by design.
    let agent_task = tokio::spawn(census_agent::run(agent_config, census_agent::InventorySource::InProcess, stopped(stop_rx)));

    // Show the host the way the CLI shows it, once its inventory is in.
    let cli_config = dir.path().join("cli.toml");
    std::fs::write(
        &cli_config,
        format!(
            "server = \"https://{admin_addr}\"\ntoken = \"{}\"\nca = {:?}\n",
            done.admin_token.expose(),
            done.ca_path.display().to_string()
        ),
    )?;
    let target =
        Target { server: format!("https://{admin_addr}"), token: done.admin_token.clone(), ca: done.ca_path.clone(), tls_name: None };
    let mut client = connect::admin_client(&target).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hosts = render::all_hosts(&mut client, Default::default()).await?;
        if hosts.iter().any(|h| h.memory_total_bytes > 0) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the agent's first inventory did not arrive within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("\n$ census hosts\n{}", render::hosts(&mut client, Default::default(), census_collector::cli::Output::Table).await?);
    println!(
        "$ census host {}\n{}",
        enrolled.agent_id,
        render::host(&mut client, &enrolled.agent_id, census_collector::cli::Output::Table).await?
    );

    println!("Census demo is running (data in {}).", dir.path().display());
    println!("  agent API  https://{agent_addr}   (mutual TLS)");
    println!("  admin API  https://{admin_addr}   (TLS + token)");
    println!("\nTry, in another terminal:");
    println!("  export CENSUS_CLI_CONFIG={}", cli_config.display());
    println!("  cargo run --release --bin census -- hosts");
    println!("  cargo run --release --bin census -- host {} --output json", enrolled.agent_id);
    println!("  cargo run --release --bin census-agent -- inventory --format table");
    println!("\nPress Ctrl-C to stop; the demo directory is deleted on exit.");

    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    let _ = stop_tx.send(true);
    agent_task.await??;
    collector_task.await??;
    println!("stopped; removed {}", dir.path().display());
    Ok(())
}
