//! Wiring of a running collector: open the store, load the PKI, bind the
//! three listeners, serve until the shutdown signal, then stop accepting and let
//! in-flight requests finish (their acks only go out after durable writes).
//! TLS is `tls.rs`'s, so a rotated server certificate is picked up while
//! serving.
//!
//! Contract lines on stdout, read by the e2e harness and the demo:
//! `agent api listening on <addr>`, `admin api listening on <addr>`,
//! `http api listening on <addr>`, `ready`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use census_proto::v1::admin_service_server::AdminServiceServer;
use census_proto::v1::agent_service_server::AgentServiceServer;
use tokio::sync::watch;
use tonic::transport::Server;
use tracing::info;

use crate::admin_api::{self, AdminApi};
use crate::admin_calls::AdminCalls;
use crate::agent_api::AgentApi;
use crate::alerting::{Alerting, AlertingConfig};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::http_api::{self, HttpState};
use crate::notify::{self, dispatch, dispatch::Wakeup};
use crate::pki::Pki;
use crate::self_metrics::SelfMetrics;
use crate::store::Store;
use crate::store::sled::SledStore;
use crate::tls::{self, ServerCertificate};

/// A collector whose sockets are bound but not yet serving.
pub struct Collector {
    config: Config,
    store: Arc<dyn Store>,
    alerting: Arc<Alerting>,
    /// Each shared by its delivery task and, for Alertmanager, its refresh task.
    sinks: BTreeMap<String, Arc<notify::Client>>,
    pki: Arc<Pki>,
    certificate: Arc<ServerCertificate>,
    agent_listener: std::net::TcpListener,
    admin_listener: std::net::TcpListener,
    http_listener: std::net::TcpListener,
    agent_addr: SocketAddr,
    admin_addr: SocketAddr,
    http_addr: SocketAddr,
}

impl Collector {
    /// Opens the data directory and binds the configured addresses.
    pub fn bind(config: Config) -> Result<Collector> {
        let pki_dir = config.pki_dir();
        if !Pki::ca_path(&pki_dir).exists() {
            return Err(Error::NotInitialised(config.data_dir.clone()));
        }
        let pki = Arc::new(Pki::load(&pki_dir)?);
        let certificate = ServerCertificate::load(&pki_dir)?;
        // Two seconds: long enough for the lock of a store this process
        // just closed (the demo initialises, then serves), short for the
        // error when another collector holds it.
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open_after_close(&SledStore::path_in(&config.data_dir), std::time::Duration::from_secs(2))?);
        let alerting = Arc::new(Alerting::open(Arc::clone(&store), AlertingConfig::from_config(&config))?);
        // Sinks are built (secret files read, TLS set up) now, so a broken
        // sink stops the start with its name, not the first alert.
        let mut sinks = BTreeMap::new();
        for sink in &config.sinks {
            let client = notify::Client::from_config(sink).map_err(|e| Error::Config(format!("sink {:?}: {}", sink.name, e.message)))?;
            sinks.insert(sink.name.clone(), Arc::new(client));
        }
        let (agent_listener, agent_addr) = tls::bind(config.agent_api.listen, "agent api")?;
        let (admin_listener, admin_addr) = tls::bind(config.admin_api.listen, "admin api")?;
        let (http_listener, http_addr) = tls::bind(config.http_api.listen, "http api")?;
        Ok(Collector {
            config,
            store,
            alerting,
            sinks,
            pki,
            certificate,
            agent_listener,
            admin_listener,
            http_listener,
            agent_addr,
            admin_addr,
            http_addr,
        })
    }

    pub fn agent_addr(&self) -> SocketAddr {
        self.agent_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves the three APIs until `shutdown` resolves.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
        let Collector {
            config,
            store,
            alerting,
            sinks,
            pki,
            certificate,
            agent_listener,
            admin_listener,
            http_listener,
            agent_addr,
            admin_addr,
            http_addr,
        } = self;
        // Client certificates are optional at the TLS layer only so that
        // Enroll can be called before the agent has one; when one is
        // presented it must chain to our CA, and every call but Enroll
        // refuses a connection without one. All three listeners serve the
        // one reloadable server certificate.
        let agent_tls = tls::server_config(Arc::clone(&certificate), Some(&pki.ca_cert_pem))?;
        let admin_tls = tls::server_config(Arc::clone(&certificate), None)?;
        let agent_incoming = tls::incoming(agent_listener, agent_tls, "agent api")?;
        let admin_incoming = tls::incoming(admin_listener, admin_tls, "admin api")?;

        let limits = config.limits.clone();
        let self_metrics = Arc::new(SelfMetrics::default());
        let disk = crate::disk_space::DiskGuard::new(config.data_dir.clone(), limits.min_free_disk_bytes);
        let agent_api = AgentApi::new(Arc::clone(&store), Arc::clone(&pki), limits.clone(), config.agents.clone())
            .with_self_metrics(Arc::clone(&self_metrics))
            .with_disk_guard(disk.clone());
        let agent_service = AgentServiceServer::new(agent_api).max_decoding_message_size(limits.max_message_bytes);
        // One set of admin calls behind both the gRPC and the HTTP API.
        let calls = Arc::new(
            AdminCalls::new(Arc::clone(&store), config.agents.clone(), config.metrics.clone(), Arc::clone(&alerting))
                .with_data_dir(config.data_dir.clone())
                .with_disk_guard(disk.clone()),
        );
        let admin_service = tonic::service::interceptor::InterceptedService::new(
            AdminServiceServer::new(AdminApi::over(Arc::clone(&calls))).max_decoding_message_size(1024 * 1024),
            admin_api::authenticate(Arc::clone(&store)),
        );
        let http_tls = http_api::tls_acceptor(Arc::clone(&certificate))?;
        let http_listener =
            tokio::net::TcpListener::from_std(http_listener).map_err(|e| Error::io("serving the http api on", http_addr.to_string(), e))?;
        let http_state = Arc::new(HttpState {
            calls,
            self_metrics: Arc::clone(&self_metrics),
            metrics_require_token: config.http_api.metrics_require_token,
        });

        let (stop_tx, stop_rx) = watch::channel(false);
        let signal = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };

        let agent_server =
            Server::builder().add_service(agent_service).serve_with_incoming_shutdown(agent_incoming, signal(stop_rx.clone()));
        let admin_server =
            Server::builder().add_service(admin_service).serve_with_incoming_shutdown(admin_incoming, signal(stop_rx.clone()));
        let http_server = http_api::serve(http_listener, http_tls, http_state, stop_rx);

        println!("agent api listening on {agent_addr}");
        println!("admin api listening on {admin_addr}");
        println!("http api listening on {http_addr}");
        info!(%agent_addr, %admin_addr, %http_addr, data_dir = %config.data_dir.display(), "collector ready");
        println!("ready");

        let agent_task = tokio::spawn(agent_server);
        let admin_task = tokio::spawn(admin_server);
        let http_task = tokio::spawn(http_server);
        let compactor = tokio::spawn(compact_metrics_forever(Arc::clone(&store), config.metrics.clone(), disk.clone()));
        let wakeup = Arc::new(Wakeup::default());
        let evaluator = tokio::spawn(evaluate_forever(
            Arc::clone(&alerting),
            Arc::clone(&wakeup),
            config.alerts.clone(),
            Arc::clone(&self_metrics),
            disk.clone(),
        ));
        let mut background = dispatch::spawn(
            Arc::clone(&store),
            &sinks,
            config.notify.retry_policy(),
            Arc::clone(&wakeup),
            Arc::clone(&self_metrics),
            &disk,
        );
        for sink in &config.sinks {
            if let (notify::SinkKind::Alertmanager(am), Some(client)) = (&sink.kind, sinks.get(&sink.name)) {
                let client = Arc::clone(client);
                background.push(tokio::spawn(refresh_forever(Arc::clone(&alerting), sink.name.clone(), client, am.refresh_interval)));
            }
        }
        background.push(tokio::spawn(tls::watch(certificate)));
        background.push(tokio::spawn(purge_outbox_forever(Arc::clone(&store), config.notify.delivered_retention)));
        background.push(tokio::spawn(prune_audit_forever(Arc::clone(&store), config.audit.retention)));
        shutdown.await;
        info!("shutting down: finishing in-flight requests");
        compactor.abort();
        // Aborting mid-delivery is safe: the entry stays pending and is
        // delivered again at the next start (same idempotency key).
        evaluator.abort();
        for task in background {
            task.abort();
        }
        let _ = stop_tx.send(true);
        for task in [agent_task, admin_task] {
            task.await
                .map_err(|e| Error::Store(format!("server task failed: {e}")))?
                .map_err(|e| Error::Store(format!("server stopped with an error: {e}")))?;
        }
        http_task.await.map_err(|e| Error::Store(format!("http api task failed: {e}")))?;
        Ok(())
    }
}

/// Rolls metrics up and expires old data every `compaction_interval`, on a
/// blocking thread: ingest never waits for it (sled serves both at once).
/// A failed round is logged and retried next interval. Aborting this task
/// mid-round is safe: compaction only rewrites what it can recompute.
async fn compact_metrics_forever(store: Arc<dyn Store>, retention: crate::config::Metrics, disk: crate::disk_space::DiskGuard) {
    let mut every = tokio::time::interval(retention.compaction_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if !disk.allows("metrics compaction") {
            continue;
        }
        let (store, retention) = (Arc::clone(&store), retention.clone());
        let round = tokio::task::spawn_blocking(move || store.compact_metrics(crate::clock::now_ms(), &retention)).await;
        match round {
            Ok(Ok(done)) if done != crate::store::Compaction::default() => {
                tracing::debug!(
                    agents = done.agents_rolled_up,
                    buckets = done.buckets_written,
                    expired = done.expired,
                    "metrics compacted"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics compaction failed; retrying next interval"),
            Err(e) => tracing::warn!(error = %e, "metrics compaction task failed"),
        }
    }
}

/// Evaluates the rules every `evaluation_interval` (and at once when an
/// operator acknowledged or silenced something), reloads the rule file
/// when it changes, and wakes the sink tasks when entries were enqueued.
/// Evaluation reads the store, so it runs on a blocking thread.
async fn evaluate_forever(
    alerting: Arc<Alerting>,
    wakeup: Arc<Wakeup>,
    alerts: crate::config::Alerts,
    metrics: Arc<SelfMetrics>,
    disk: crate::disk_space::DiskGuard,
) {
    let mut evaluate = tokio::time::interval(alerts.evaluation_interval);
    evaluate.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut reload = tokio::time::interval(alerts.reload_interval);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = reload.tick() => {
                let alerting = Arc::clone(&alerting);
                let reloaded = tokio::task::spawn_blocking(move || alerting.reload_rules_if_changed()).await.unwrap_or(false);
                if !reloaded {
                    continue;
                }
            }
            _ = evaluate.tick() => {}
            _ = alerting.evaluation_requested() => {}
        }
        // An evaluation commits alert changes and outbox entries.
        if !disk.allows("alert evaluation") {
            continue;
        }
        let started = std::time::Instant::now();
        let round = {
            let alerting = Arc::clone(&alerting);
            tokio::task::spawn_blocking(move || alerting.evaluate_once(crate::clock::now_ms())).await
        };
        metrics.evaluated(started.elapsed(), matches!(round, Ok(Ok(_))));
        match round {
            Ok(Ok(summary)) => {
                if summary.enqueued > 0 {
                    tracing::info!(
                        notifications = summary.notifications,
                        enqueued = summary.enqueued,
                        firing = summary.firing,
                        "alert notifications enqueued"
                    );
                    wakeup.wake();
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "alert evaluation failed; retrying next interval"),
            Err(e) => tracing::error!(error = %e, "alert evaluation task failed"),
        }
    }
}

/// Re-sends the still-firing alerts routed to a sink every `interval`
/// (Alertmanager ends alerts it is not reminded of). Best effort, outside
/// the outbox: a failed refresh is logged and the next one repairs it.
async fn refresh_forever(alerting: Arc<Alerting>, sink: String, client: Arc<notify::Client>, interval: std::time::Duration) {
    let notify::Client::Push(client) = client.as_ref() else { return };
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await; // the first tick is immediate: the outbox just sent the transitions
    loop {
        every.tick().await;
        for n in alerting.still_firing(&sink) {
            if let Err(e) = client.push(&n).await {
                tracing::warn!(sink = %sink, rule = %n.rule, error = %e.message, "refreshing firing alerts failed; next try in one interval");
            }
        }
    }
}

/// Deletes delivered outbox entries past their retention, hourly.
async fn purge_outbox_forever(store: Arc<dyn Store>, retention: std::time::Duration) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3_600));
    loop {
        every.tick().await;
        let store = Arc::clone(&store);
        let cutoff = crate::clock::now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        match tokio::task::spawn_blocking(move || store.purge_outbox(cutoff)).await {
            Ok(Ok(n)) if n > 0 => tracing::debug!(purged = n, "delivered outbox entries purged"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "purging the outbox failed"),
            Err(e) => tracing::warn!(error = %e, "outbox purge task failed"),
        }
    }
}

/// Deletes audit log entries past their retention, hourly (the first run
/// at start).
async fn prune_audit_forever(store: Arc<dyn Store>, retention: std::time::Duration) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3_600));
    loop {
        every.tick().await;
        let store = Arc::clone(&store);
        let cutoff = crate::clock::now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
        match tokio::task::spawn_blocking(move || store.prune_audit(cutoff)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!(pruned = n, "audit log entries past audit.retention pruned"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "pruning the audit log failed"),
            Err(e) => tracing::warn!(error = %e, "audit prune task failed"),
        }
    }
}

/// Binds and serves `config` until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl std::future::Future<Output = ()> + Send + 'static) -> Result<()> {
    Collector::bind(config)?.serve(shutdown).await
}
