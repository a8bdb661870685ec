//! The Zammad sink: tickets through REST API v1 (API:
//! https://docs.zammad.org/en/latest/api/ticket/index.html and
//! .../api/ticket/articles.html).
//!
//! - open: `POST /api/v1/tickets` `{title, group, customer, priority,
//!   article: {subject, body, type: "note", internal: false}}` → 201
//!   `{"id": 3}`; the title is `"<subject> [<marker>]"`;
//! - find: `GET /api/v1/tickets/search?query=<marker>&expand=true` and the
//!   first ticket whose title holds the marker. The full-text search
//!   (Elasticsearch, or Zammad's database fallback) may return near misses,
//!   hence the title check; without Elasticsearch a ticket is found only
//!   once Zammad's own indexing has run, and with it only after the index
//!   refresh (about a second), so a lost creation answer followed by an
//!   immediate retry can open a second ticket;
//! - comment: `POST /api/v1/ticket_articles` with an internal note;
//! - resolve: nothing if the ticket's state is already `closed`; else one
//!   `PUT /api/v1/tickets/<id>` setting `state: "closed"` with the note as
//!   an internal article.
//!
//! Invariants: `Authorization: Token token=<t>`; the token is never logged
//! nor printed by Debug.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Api, ApiRequest, Auth, Secret, SecretHeader, id_text, numeric_id, path_segment, required_id, resolve_once};
use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::rules::Severity;

/// `kind = "zammad"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZammadConfig {
    /// `https://zammad.example`.
    pub url: String,
    /// A personal access token with the `ticket.agent` permission.
    pub token_file: PathBuf,
    /// The group (name) new tickets go to.
    pub group: String,
    /// The customer of new tickets: an existing user's email or login.
    pub customer: String,
}

#[derive(Debug)]
pub struct Zammad {
    config: ZammadConfig,
    api: Api,
}

impl Zammad {
    pub fn new(config: &ZammadConfig, http: reqwest::Client) -> Result<Zammad, SinkError> {
        let token = SecretHeader::new("Authorization", "Token token=", Secret::read(&config.token_file)?);
        Ok(Zammad { config: config.clone(), api: Api::new(http, &config.url, Auth::Headers(vec![token]))? })
    }

    pub async fn find(&self, marker: &str) -> Result<Option<String>, SinkError> {
        let answer = self.api.send_json("Zammad: searching the ticket", &find_request(marker)).await?;
        Ok(found_id(&answer, marker))
    }

    pub async fn open(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let what = format!("Zammad: creating a ticket in group {}", self.config.group);
        let answer = self.api.send_json(&what, &open_request(&self.config, draft)).await?;
        required_id(&what, &answer, "/id")
    }

    pub async fn comment(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        self.api.send(&format!("Zammad: commenting ticket {ticket}"), &comment_request(ticket, note)?).await.map(drop)
    }

    pub async fn resolve(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        let what = format!("Zammad: closing ticket {ticket}");
        resolve_once(&self.api, &what, &show_request(ticket)?, is_closed, &close_request(ticket, note)?).await
    }
}

/// Zammad's default priorities, by name.
fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "3 high",
        Severity::Warning => "2 normal",
        Severity::Info => "1 low",
    }
}

pub fn open_request(config: &ZammadConfig, draft: &TicketDraft) -> ApiRequest {
    let body = json!({
        "title": draft.subject_with_marker(),
        "group": config.group,
        "customer": config.customer,
        "priority": priority(draft.severity),
        "article": {"subject": draft.subject, "body": draft.body, "content_type": "text/plain", "type": "note", "internal": false},
    });
    ApiRequest::post("/api/v1/tickets", &body)
}

pub fn find_request(marker: &str) -> ApiRequest {
    ApiRequest::get("/api/v1/tickets/search").query("query", marker).query("expand", "true").query("limit", "10")
}

/// With `expand=true` the answer is an array of tickets; older versions
/// answer `{"tickets": [ids], "assets": {"Ticket": {id: ticket}}}`.
pub fn found_id(answer: &Value, marker: &str) -> Option<String> {
    let titled = |t: &&Value| t.get("title").and_then(Value::as_str).is_some_and(|title| title.contains(marker));
    let ticket = match answer {
        Value::Array(tickets) => tickets.iter().find(titled)?,
        _ => answer.pointer("/assets/Ticket")?.as_object()?.values().find(titled)?,
    };
    ticket.get("id").and_then(id_text)
}

/// Notes are internal: customers of alert tickets are service accounts.
fn internal_note(note: &TicketNote) -> Value {
    json!({"body": note.body, "content_type": "text/plain", "type": "note", "internal": true})
}

pub fn comment_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    let mut article = internal_note(note);
    article["ticket_id"] = numeric_id("Zammad", ticket)?.into();
    Ok(ApiRequest::post("/api/v1/ticket_articles", &article))
}

pub fn show_request(ticket: &str) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::get(format!("/api/v1/tickets/{}", path_segment(ticket)?)).query("expand", "true"))
}

pub fn is_closed(ticket: &Value) -> bool {
    ticket.get("state").and_then(Value::as_str) == Some("closed")
}

pub fn close_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    let path = format!("/api/v1/tickets/{}", path_segment(ticket)?);
    Ok(ApiRequest::put(path, &json!({"state": "closed", "article": internal_note(note)})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::fixtures::{MARKER, draft, http, note, secret_file};
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    fn config(url: &str, token_file: PathBuf) -> ZammadConfig {
        ZammadConfig { url: url.into(), token_file, group: "Users".into(), customer: "census@example.com".into() }
    }

    #[test]
    fn open_request_titles_the_ticket_with_the_marker() {
        let request = open_request(&config("https://zammad.test", "t".into()), &draft());
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/api/v1/tickets"));
        assert_eq!(
            request.body_json(),
            json!({
                "title": format!("[FIRING] DiskFull on web1 [{MARKER}]"),
                "group": "Users",
                "customer": "census@example.com",
                "priority": "3 high",
                "article": {
                    "subject": "[FIRING] DiskFull on web1",
                    "body": draft().body,
                    "content_type": "text/plain",
                    "type": "note",
                    "internal": false,
                },
            })
        );
    }

    #[test]
    fn search_answers_are_checked_against_the_title() {
        let expanded = json!([{"id": 2, "title": "other census-0123"}, {"id": 3, "title": format!("x [{MARKER}]")}]);
        assert_eq!(found_id(&expanded, MARKER), Some("3".into()));
        let assets = json!({"tickets": [3], "assets": {"Ticket": {"3": {"id": 3, "title": format!("x [{MARKER}]")}}}});
        assert_eq!(found_id(&assets, MARKER), Some("3".into()));
        assert_eq!(found_id(&json!([]), MARKER), None);
        assert_eq!(found_id(&json!({"tickets": [], "tickets_count": 0}), MARKER), None);
    }

    #[test]
    fn comment_and_close_requests() {
        let comment = comment_request("3", &note()).expect("numeric id");
        assert_eq!((comment.method.as_str(), comment.path.as_str()), ("POST", "/api/v1/ticket_articles"));
        assert_eq!(
            comment.body_json(),
            json!({"ticket_id": 3, "body": "resolved at 16:10", "content_type": "text/plain", "type": "note", "internal": true})
        );
        let close = close_request("3", &note()).expect("valid id");
        assert_eq!((close.method.as_str(), close.path.as_str()), ("PUT", "/api/v1/tickets/3"));
        assert_eq!(close.body_json()["state"], "closed");
        assert!(comment_request("x", &note()).is_err());
    }

    #[tokio::test]
    async fn a_ticket_lifecycle_against_a_recording_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(vec![
            Reply::json(200, json!([])),
            Reply::json(201, json!({"id": 3, "number": "31001"})),
            Reply::json(201, json!({"id": 7, "ticket_id": 3})),
            Reply::json(200, json!({"id": 3, "state": "open"})),
            Reply::json(200, json!({"id": 3, "state": "closed"})),
            Reply::json(200, json!({"id": 3, "state": "closed"})),
        ])
        .await;
        let zammad = Zammad::new(&config(server.url(), secret_file(dir.path(), "zammad.token", "zm-s3cret")), http()).expect("valid");
        assert!(!format!("{zammad:?}").contains("zm-s3cret"));

        assert_eq!(zammad.find(MARKER).await, Ok(None));
        assert_eq!(zammad.open(&draft()).await, Ok("3".into()));
        zammad.comment("3", &note()).await.expect("comment");
        zammad.resolve("3", &note()).await.expect("close");
        zammad.resolve("3", &note()).await.expect("a closed ticket is left alone");

        assert_eq!(
            server.lines(),
            [
                format!("GET /api/v1/tickets/search?query={MARKER}&expand=true&limit=10"),
                "POST /api/v1/tickets".into(),
                "POST /api/v1/ticket_articles".into(),
                "GET /api/v1/tickets/3?expand=true".into(),
                "PUT /api/v1/tickets/3".into(),
                "GET /api/v1/tickets/3?expand=true".into(),
            ]
        );
        assert!(server.requests().iter().all(|r| r.header("authorization") == Some("Token token=zm-s3cret")));
    }

    #[tokio::test]
    async fn errors_are_classified_without_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = secret_file(dir.path(), "zammad.token", "zm-s3cret");
        assert_error_classes("zm-s3cret", |url| {
            let config = config(&url, token.clone());
            async move { Zammad::new(&config, http())?.resolve("3", &note()).await }
        })
        .await;
    }
}
