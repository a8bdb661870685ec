//! Delivering alert notifications to the service desk (SPEC §5): routing,
//! the durable outbox, and one client per sink kind.
//!
//! - `route.rs` (pure): which sinks a notification goes to, by its common
//!   labels and severity.
//! - `render.rs` (pure): the ticket texts (subject, body, notes) every
//!   ticketing client shares, and the stable marker a ticket carries so a
//!   retried creation finds the ticket it already opened.
//! - `outbox.rs` (pure): `OutboxEntry`, its states, the backoff schedule.
//! - `dispatch.rs` (I/O): the loop that takes due entries from the store,
//!   delivers them in order per sink and records the outcome durably.
//! - one module per sink kind (adapters): `webhook`, `alertmanager`,
//!   `email`, `rt`, `jira`, `servicenow`, `zendesk`, `glpi`, `zammad`;
//!   each HTTP one builds its requests with pure functions and sends them
//!   through `http.rs` (client, credentials, error classification,
//!   redaction). `test_server.rs` is the recording HTTP server their tests
//!   run against. The sinks' configuration is documented, and its examples
//!   tested, in `docs/notifications.md`.
//!
//! A sink is either a *push* sink (webhook, Alertmanager, email: every
//! notification is one request) or a *ticketing* sink (RT, Jira, ...: a
//! firing notification opens a ticket, later ones comment on it and resolve
//! it). Ticketing clients only know four primitive calls (`find`, `open`,
//! `comment`, `resolve`); which ticket an alert belongs to is the
//! dispatcher's business, kept in the store's ticket ledger.
//!
//! Invariants: clients never retry on their own (the outbox does, with
//! backoff) and never log secrets; every error says whether a retry can
//! help (`SinkError::retryable`).

pub mod alertmanager;
pub mod dispatch;
pub mod email;
pub mod glpi;
pub mod http;
pub mod jira;
pub mod outbox;
pub mod render;
pub mod route;
pub mod rt;
pub mod servicenow;
#[cfg(test)]
mod test_server;
pub mod webhook;
pub mod zammad;
pub mod zendesk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::engine::Notification;
use crate::alert::rules::Severity;

/// Why a delivery failed, and whether trying again later can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    /// Network errors, timeouts, 5xx and 429 are retryable; other 4xx (bad
    /// credentials, unknown queue, a payload refused) are not: the entry
    /// goes to the dead letters at once, where an operator can retry it
    /// after fixing the configuration.
    pub retryable: bool,
    pub message: String,
}

impl SinkError {
    pub fn retryable(message: impl Into<String>) -> SinkError {
        SinkError { retryable: true, message: message.into() }
    }

    pub fn permanent(message: impl Into<String>) -> SinkError {
        SinkError { retryable: false, message: message.into() }
    }
}

/// A ticket to open, rendered by `render::ticket_draft`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketDraft {
    /// Stable for the notification (derived from its idempotency key) and
    /// short (`census-` + 12 hex digits); clients store it where the
    /// system can search it (RT subject, Zendesk `external_id`, ServiceNow
    /// `correlation_id`, a Jira label, ...) so `find` can recognise a ticket
    /// opened by an attempt whose answer was lost.
    pub marker: String,
    pub subject: String,
    /// Plain text: hosts, values, rule, runbook.
    pub body: String,
    pub severity: Severity,
    /// Labels common to every alert of the notification.
    pub labels: BTreeMap<String, String>,
}

impl TicketDraft {
    /// `"<subject> [<marker>]"`: the title for systems that find tickets by
    /// searching their title (RT, GLPI, Zammad).
    pub fn subject_with_marker(&self) -> String {
        format!("{} [{}]", self.subject, self.marker)
    }
}

/// A comment or resolution note on an existing ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketNote {
    pub body: String,
}

/// One configured sink: `[[sink]]` in the collector's config.
///
/// No `deny_unknown_fields` here: serde does not support it together with
/// `flatten` (it refused even `kind`). Unknown keys are still refused, by
/// the kind's own config struct, which receives every key this struct does
/// not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SinkConfig {
    /// Unique; routes and `census outbox` name sinks by it.
    pub name: String,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "crate::config::humantime_serde")]
    pub timeout: Duration,
    /// Extra CA certificates (PEM) trusted for this sink's HTTPS or SMTP
    /// TLS, besides the system's roots: for on-premises systems behind an
    /// internal CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(flatten)]
    pub kind: SinkKind,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The sink kind and its own settings (`kind = "rt"`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SinkKind {
    Webhook(webhook::WebhookConfig),
    Alertmanager(alertmanager::AlertmanagerConfig),
    Email(email::EmailConfig),
    Rt(rt::RtConfig),
    Jira(jira::JiraConfig),
    #[serde(rename = "servicenow")]
    ServiceNow(servicenow::ServiceNowConfig),
    Zendesk(zendesk::ZendeskConfig),
    Glpi(glpi::GlpiConfig),
    Zammad(zammad::ZammadConfig),
}

impl SinkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::Webhook(_) => "webhook",
            SinkKind::Alertmanager(_) => "alertmanager",
            SinkKind::Email(_) => "email",
            SinkKind::Rt(_) => "rt",
            SinkKind::Jira(_) => "jira",
            SinkKind::ServiceNow(_) => "servicenow",
            SinkKind::Zendesk(_) => "zendesk",
            SinkKind::Glpi(_) => "glpi",
            SinkKind::Zammad(_) => "zammad",
        }
    }
}

/// Reads a secret (token, password, HMAC key) from a file: trailing
/// whitespace is dropped, an empty file is an error. The error names the
/// file, never its content.
pub fn read_secret_file(path: &Path) -> Result<String, SinkError> {
    let text = std::fs::read_to_string(path).map_err(|e| SinkError::permanent(format!("reading secret file {}: {e}", path.display())))?;
    let secret = text.trim_end().to_string();
    if secret.is_empty() {
        return Err(SinkError::permanent(format!("secret file {} is empty", path.display())));
    }
    Ok(secret)
}

/// A ready client for one configured sink.
pub enum Client {
    Push(PushClient),
    Ticket(TicketClient),
}

pub enum PushClient {
    Webhook(webhook::Webhook),
    Alertmanager(alertmanager::Alertmanager),
    Email(email::Email),
}

pub enum TicketClient {
    Rt(rt::Rt),
    Jira(jira::Jira),
    ServiceNow(servicenow::ServiceNow),
    Zendesk(zendesk::Zendesk),
    Glpi(glpi::Glpi),
    Zammad(zammad::Zammad),
}

impl Client {
    /// Builds the client a sink's config describes (reading its secret
    /// files): called at start and on every config reload, so a bad sink is
    /// reported then, not at the first alert.
    pub fn from_config(config: &SinkConfig) -> Result<Client, SinkError> {
        let http = || http::client(config.timeout, config.ca_file.as_deref());
        Ok(match &config.kind {
            SinkKind::Webhook(c) => Client::Push(PushClient::Webhook(webhook::Webhook::new(c, http()?)?)),
            SinkKind::Alertmanager(c) => Client::Push(PushClient::Alertmanager(alertmanager::Alertmanager::new(c, http()?)?)),
            SinkKind::Email(c) => Client::Push(PushClient::Email(email::Email::new(c, config.timeout, config.ca_file.as_deref())?)),
            SinkKind::Rt(c) => Client::Ticket(TicketClient::Rt(rt::Rt::new(c, http()?)?)),
            SinkKind::Jira(c) => Client::Ticket(TicketClient::Jira(jira::Jira::new(c, http()?)?)),
            SinkKind::ServiceNow(c) => Client::Ticket(TicketClient::ServiceNow(servicenow::ServiceNow::new(c, http()?)?)),
            SinkKind::Zendesk(c) => Client::Ticket(TicketClient::Zendesk(zendesk::Zendesk::new(c, http()?)?)),
            SinkKind::Glpi(c) => Client::Ticket(TicketClient::Glpi(glpi::Glpi::new(c, http()?)?)),
            SinkKind::Zammad(c) => Client::Ticket(TicketClient::Zammad(zammad::Zammad::new(c, http()?)?)),
        })
    }
}

impl PushClient {
    /// Sends one notification. `idempotency_key` is the outbox entry's
    /// (unique per notification and sink; the same on every retry).
    pub async fn push(&self, n: &Notification) -> Result<(), SinkError> {
        match self {
            PushClient::Webhook(c) => c.push(n).await,
            PushClient::Alertmanager(c) => c.push(n).await,
            PushClient::Email(c) => c.push(n).await,
        }
    }
}

impl TicketClient {
    /// The ticket carrying `marker`, if the system has one (open or not).
    pub async fn find(&self, marker: &str) -> Result<Option<String>, SinkError> {
        match self {
            TicketClient::Rt(c) => c.find(marker).await,
            TicketClient::Jira(c) => c.find(marker).await,
            TicketClient::ServiceNow(c) => c.find(marker).await,
            TicketClient::Zendesk(c) => c.find(marker).await,
            TicketClient::Glpi(c) => c.find(marker).await,
            TicketClient::Zammad(c) => c.find(marker).await,
        }
    }

    /// Opens a ticket; returns its id in the system.
    pub async fn open(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        match self {
            TicketClient::Rt(c) => c.open(draft).await,
            TicketClient::Jira(c) => c.open(draft).await,
            TicketClient::ServiceNow(c) => c.open(draft).await,
            TicketClient::Zendesk(c) => c.open(draft).await,
            TicketClient::Glpi(c) => c.open(draft).await,
            TicketClient::Zammad(c) => c.open(draft).await,
        }
    }

    pub async fn comment(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        match self {
            TicketClient::Rt(c) => c.comment(ticket, note).await,
            TicketClient::Jira(c) => c.comment(ticket, note).await,
            TicketClient::ServiceNow(c) => c.comment(ticket, note).await,
            TicketClient::Zendesk(c) => c.comment(ticket, note).await,
            TicketClient::Glpi(c) => c.comment(ticket, note).await,
            TicketClient::Zammad(c) => c.comment(ticket, note).await,
        }
    }

    /// Adds `note` and moves the ticket to the system's resolved state.
    /// Resolving a ticket that is already resolved is not an error.
    pub async fn resolve(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        match self {
            TicketClient::Rt(c) => c.resolve(ticket, note).await,
            TicketClient::Jira(c) => c.resolve(ticket, note).await,
            TicketClient::ServiceNow(c) => c.resolve(ticket, note).await,
            TicketClient::Zendesk(c) => c.resolve(ticket, note).await,
            TicketClient::Glpi(c) => c.resolve(ticket, note).await,
            TicketClient::Zammad(c) => c.resolve(ticket, note).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Sinks {
        sink: Vec<SinkConfig>,
    }

    /// The ```toml blocks of docs/notifications.md.
    fn documented_examples() -> Vec<String> {
        let doc = include_str!("../../../docs/notifications.md");
        doc.split("```toml\n").skip(1).map(|rest| rest.split("```").next().unwrap_or_default().to_string()).collect()
    }

    #[test]
    fn every_documented_sink_example_parses() {
        let examples = documented_examples();
        let mut kinds = Vec::new();
        for example in &examples {
            let sinks: Sinks = toml::from_str(example).unwrap_or_else(|e| panic!("{e}\nin\n{example}"));
            kinds.extend(sinks.sink.iter().map(|s| s.kind.as_str()));
        }
        assert_eq!(kinds, ["webhook", "alertmanager", "rt", "jira", "servicenow", "zendesk", "glpi", "zammad", "email"]);
    }

    #[test]
    fn unknown_sink_keys_are_refused() {
        for example in documented_examples() {
            let typo = format!("{example}tiemout = \"5s\"\n");
            let err = toml::from_str::<Sinks>(&typo).err().unwrap_or_else(|| panic!("accepted an unknown key in\n{typo}"));
            assert!(err.to_string().contains("unknown field `tiemout`"), "{err}");
        }
    }
}
