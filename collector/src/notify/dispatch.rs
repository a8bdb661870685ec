//! The outbox dispatcher: one task per sink takes the sink's oldest
//! pending entry when it is due, delivers it, and records the outcome
//! durably before looking at the next one.
//!
//! Invariants:
//! - per sink, entries are attempted strictly in enqueue order; a failing
//!   head waits for its backoff and holds the entries behind it, so one
//!   alert's firing, update and resolution reach the sink in that order;
//!   sinks do not wait for each other;
//! - an entry is marked delivered only after the sink accepted it; a crash
//!   in between means it is delivered again (at least once), with the same
//!   idempotency key;
//! - for ticketing sinks the ticket ledger is written after each remote
//!   step that created or closed something, so a retried delivery resumes:
//!   a firing opens a ticket only for alerts without one (and first asks
//!   the system for a ticket carrying the notification's marker, in case
//!   the previous attempt's answer was lost), and a resolution closes a
//!   ticket only when none of its alerts still fires.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::{Instrument, info, info_span, warn};

use super::outbox::{DeliveryState, OutboxEntry, RetryPolicy};
use super::{Client, SinkError, TicketClient, render};
use crate::alert::engine::{Notification, Transition};
use crate::clock;
use crate::disk_space::DiskGuard;
use crate::self_metrics::SelfMetrics;
use crate::store::Store;

/// How long an idle sink task waits before looking at the store again
/// when nobody woke it (a safety net: enqueues and retries wake it).
const IDLE_POLL: Duration = Duration::from_secs(5);

/// How often a sink task paused by a short disk looks again.
const DISK_FULL_POLL: Duration = Duration::from_secs(5);

/// Wakes the sink tasks: after an evaluation enqueued entries, or an
/// operator retried one.
#[derive(Debug, Default)]
pub struct Wakeup {
    notify: Notify,
}

impl Wakeup {
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    async fn wait(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, self.notify.notified()).await;
    }
}

/// Runs one delivery task per sink until the returned handles are aborted;
/// each attempt's outcome is counted in `metrics`.
pub fn spawn(
    store: Arc<dyn Store>,
    clients: &BTreeMap<String, Arc<Client>>,
    policy: RetryPolicy,
    wakeup: Arc<Wakeup>,
    metrics: Arc<SelfMetrics>,
    disk: &DiskGuard,
) -> Vec<tokio::task::JoinHandle<()>> {
    clients
        .iter()
        .map(|(sink, client)| {
            metrics.sink_configured(sink);
            let span = info_span!("sink", sink = %sink);
            let task = run_sink(
                Arc::clone(&store),
                sink.clone(),
                Arc::clone(client),
                policy,
                Arc::clone(&wakeup),
                Arc::clone(&metrics),
                disk.clone(),
            );
            tokio::spawn(task.instrument(span))
        })
        .collect()
}

async fn run_sink(
    store: Arc<dyn Store>,
    sink: String,
    client: Arc<Client>,
    policy: RetryPolicy,
    wakeup: Arc<Wakeup>,
    metrics: Arc<SelfMetrics>,
    disk: DiskGuard,
) {
    loop {
        let head = {
            let (store, sink) = (Arc::clone(&store), sink.clone());
            tokio::task::spawn_blocking(move || store.outbox_head(&sink)).await
        };
        let mut entry = match head {
            Ok(Ok(Some(entry))) => entry,
            Ok(Ok(None)) => {
                wakeup.wait(IDLE_POLL).await;
                continue;
            }
            Ok(Err(e)) => {
                warn!(error = %e, "reading the outbox failed; retrying");
                wakeup.wait(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => {
                warn!(error = %e, "outbox read task failed");
                wakeup.wait(Duration::from_secs(1)).await;
                continue;
            }
        };
        let now = clock::now_ms();
        if entry.next_attempt_unix_ms > now {
            let wait = Duration::from_millis(u64::try_from(entry.next_attempt_unix_ms - now).unwrap_or(0));
            // An operator's retry of an older entry wakes us early.
            wakeup.wait(wait.min(IDLE_POLL)).await;
            continue;
        }

        // A delivery whose outcome could not be recorded would be sent
        // again: wait for room first.
        if !disk.allows("notification delivery") {
            wakeup.wait(DISK_FULL_POLL).await;
            continue;
        }
        let outcome = deliver(store.as_ref(), &sink, &client, &entry.notification)
            .instrument(info_span!("delivery", entry = entry.id, key = %entry.idempotency_key))
            .await;
        let now = clock::now_ms();
        match &outcome {
            Ok(()) => {
                metrics.delivered(&sink);
                entry.record_success(now);
                info!(entry = entry.id, transition = entry.notification.transition.as_str(), rule = %entry.notification.rule, "delivered");
            }
            Err(e) => {
                metrics.delivery_failed(&sink);
                entry.record_failure(e, now, &policy, rand::random::<f64>());
                if entry.state == DeliveryState::Dead {
                    warn!(entry = entry.id, attempts = entry.attempts, error = %e.message, "delivery failed for good; entry moved to the dead letters");
                } else {
                    warn!(entry = entry.id, attempts = entry.attempts, error = %e.message, "delivery failed; will retry");
                }
            }
        }
        if let Err(e) = record(&store, entry).await {
            // The sink may have the notification now while the store says
            // pending: it will be delivered again (same idempotency key).
            warn!(error = %e, "recording a delivery outcome failed");
            wakeup.wait(Duration::from_secs(1)).await;
        }
    }
}

async fn record(store: &Arc<dyn Store>, entry: OutboxEntry) -> crate::error::Result<()> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || store.update_outbox_entry(&entry))
        .await
        .map_err(|e| crate::error::Error::Store(format!("outbox write task failed: {e}")))?
}

/// One delivery attempt of a notification to one sink.
pub async fn deliver(store: &dyn Store, sink: &str, client: &Client, n: &Notification) -> Result<(), SinkError> {
    match client {
        Client::Push(push) => push.push(n).await,
        Client::Ticket(tickets) => deliver_to_tickets(store, sink, tickets, n).await,
    }
}

fn store_error(e: crate::error::Error) -> SinkError {
    SinkError::retryable(format!("ticket ledger: {e}"))
}

async fn deliver_to_tickets(store: &dyn Store, sink: &str, client: &TicketClient, n: &Notification) -> Result<(), SinkError> {
    // Which ticket (if any) holds each alert of the notification.
    let mut by_ticket: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut untracked = Vec::new();
    for a in &n.alerts {
        match store.ticket_of(sink, a.fingerprint.as_str()).map_err(store_error)? {
            Some(ticket) => by_ticket.entry(ticket).or_default().push(a.fingerprint.to_string()),
            None => untracked.push(a.fingerprint.to_string()),
        }
    }
    match n.transition {
        Transition::Firing => {
            if untracked.is_empty() {
                return Ok(()); // every alert already has its ticket: a retry after the ledger write
            }
            let draft = render::ticket_draft(n);
            let ticket = match client.find(&draft.marker).await? {
                Some(existing) => existing,
                None => client.open(&draft).await?,
            };
            store.link_ticket(sink, &ticket, &untracked).map_err(store_error)?;
            info!(ticket = %ticket, alerts = untracked.len(), "ticket opened");
        }
        Transition::Updated => {
            for ticket in by_ticket.keys() {
                client.comment(ticket, &render::acknowledged_note(n)).await?;
            }
        }
        Transition::Resolved => {
            for (ticket, resolved) in &by_ticket {
                let members = store.ticket_members(sink, ticket).map_err(store_error)?;
                let still_firing = members.iter().filter(|m| !resolved.contains(m)).count();
                let part = only_alerts(n, resolved);
                if still_firing == 0 {
                    client.resolve(ticket, &render::resolved_note(&part, 0)).await?;
                    info!(ticket = %ticket, "ticket resolved");
                } else {
                    client.comment(ticket, &render::resolved_note(&part, still_firing)).await?;
                }
                store.unlink_ticket(sink, ticket, resolved).map_err(store_error)?;
            }
        }
    }
    Ok(())
}

/// The notification restricted to the given alerts (one ticket's share).
fn only_alerts(n: &Notification, fingerprints: &[String]) -> Notification {
    let mut part = n.clone();
    part.alerts.retain(|a| fingerprints.iter().any(|f| f == a.fingerprint.as_str()));
    part
}
