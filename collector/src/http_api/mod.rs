//! The HTTP listener: the JSON API under `/api/v1/` (the admin calls of
//! `admin_calls.rs`, with the admin API's bearer tokens and roles), its
//! OpenAPI document, `/metrics` for Prometheus, and the web dashboard at
//! `/`. docs/http-api.md, docs/web-ui.md.
//!
//! TLS with the collector's server certificate (the one the admin API
//! presents), HTTP/1.1. The accept loop is mini-redis shaped: one task per
//! connection, at most `MAX_CONNECTIONS` at once (a connection past that
//! waits in the kernel's backlog), a TLS handshake deadline and a request
//! header deadline so an idle client cannot hold a slot, and on shutdown
//! each connection finishes its in-flight request and closes.
//!
//! - `routes.rs`: the route table and the translation of each route to its
//!   call; `error.rs`: the JSON error answer; `openapi.rs`: the document;
//!   `web.rs`: the web dashboard (`collector/web/`) and the headers of
//!   every answer.

pub mod error;
pub mod openapi;
pub mod routes;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

use crate::admin_calls::AdminCalls;
use crate::alert::AlertState;
use crate::error::Result;
use crate::self_metrics::{SelfMetrics, Snapshot};

/// Connections served at once.
const MAX_CONNECTIONS: usize = 256;
/// A client must finish its TLS handshake within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// ... and send each request's headers within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The address of the client a request came from.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// What the handlers share.
pub struct HttpState {
    pub calls: Arc<AdminCalls>,
    pub self_metrics: Arc<SelfMetrics>,
    pub metrics_require_token: bool,
}

/// A message as the API's JSON: proto field names, as `census --output json`.
pub(crate) fn json_body<T: serde::Serialize>(message: &T) -> Vec<u8> {
    serde_json::to_vec(message).expect("census.v1 messages and serde_json values always serialise")
}

/// The TLS configuration of the listener: the server certificate, no
/// client certificates (callers authenticate with a bearer token).
pub fn tls_acceptor(certificate: Arc<crate::tls::ServerCertificate>) -> Result<TlsAcceptor> {
    // The same reloadable server certificate as the gRPC listeners (a
    // rotation reaches this listener too), speaking HTTP/1.1.
    let mut config = (*crate::tls::server_config(certificate, None)?).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `state` on `listener` until `stop` turns true, then lets each
/// connection finish its in-flight request.
pub async fn serve(listener: TcpListener, tls: TlsAcceptor, state: Arc<HttpState>, mut stop: watch::Receiver<bool>) {
    let app = web::with_ui(routes::router(state));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = stopped(&mut stop) => break,
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the connection semaphore is never closed"),
        };
        let (tcp, peer) = tokio::select! {
            () = stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "http api: accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (tls, app, stop) = (tls.clone(), app.clone(), stop.clone());
        connections.spawn(async move {
            connection(tcp, peer, tls, app, stop).await;
            drop(permit);
        });
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
    while connections.join_next().await.is_some() {}
}

/// One connection: the TLS handshake, then HTTP/1.1 requests until the
/// client leaves or the collector stops.
async fn connection(tcp: tokio::net::TcpStream, peer: SocketAddr, tls: TlsAcceptor, app: axum::Router, mut stop: watch::Receiver<bool>) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "http api: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "http api: TLS handshake timed out");
            return;
        }
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    // Each request carries its connection's peer address, for the audit log.
    let app = app.layer(axum::Extension(Peer(peer)));
    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(conn);
    let outcome = tokio::select! {
        outcome = conn.as_mut() => outcome,
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = outcome {
        tracing::debug!(%peer, error = %e, "http api: connection ended with an error");
    }
}

/// Resolves once the collector stops.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The /metrics text: counters, plus fleet gauges read now.
async fn scrape(state: &HttpState) -> Result<String> {
    let calls = &state.calls;
    let (agents, store_size_bytes, outbox_pending) = calls.with_store(|s| Ok((s.agents()?, s.size_on_disk()?, s.outbox_depth()?))).await?;
    let alerts = calls.with_alerting(|a| Ok(a.alerts())).await?;
    let now = crate::clock::now_ms();
    let mut snapshot = Snapshot {
        store_size_bytes,
        outbox_pending,
        hosts: agents.len(),
        hosts_online: agents.iter().filter(|a| calls.online(a, now)).count(),
        ..Snapshot::default()
    };
    for a in &alerts {
        match a.state {
            AlertState::Firing => *snapshot.alerts_firing.entry(a.severity.as_str()).or_insert(0) += 1,
            AlertState::Pending => snapshot.alerts_pending += 1,
            AlertState::Resolved => {}
        }
    }
    Ok(state.self_metrics.render(&snapshot))
}
