//! The Zendesk sink: Support tickets (API:
//! https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/).
//!
//! - open: `POST /api/v2/tickets.json` `{"ticket": {subject, comment: {body},
//!   priority, external_id: <marker>, tags}}` → 201 `{"ticket": {"id": 35436}}`;
//! - find: `GET /api/v2/tickets.json?external_id=<marker>` → the first
//!   ticket's id;
//! - comment: `PUT /api/v2/tickets/<id>.json` with a private comment;
//! - resolve: nothing if the ticket is already `solved` or `closed`
//!   (Zendesk refuses any update of a closed ticket); else one `PUT` setting
//!   `status: "solved"` with the note as a private comment.
//!
//! Invariants: basic auth `<email>/token:<api_token>`, the token never
//! logged nor printed by Debug.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Api, ApiRequest, Auth, Secret, id_text, path_segment, required_id, resolve_once};
use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::rules::Severity;

/// `kind = "zendesk"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZendeskConfig {
    /// `https://example.zendesk.com`.
    pub url: String,
    /// The agent the API token belongs to.
    pub email: String,
    pub api_token_file: PathBuf,
}

#[derive(Debug)]
pub struct Zendesk {
    api: Api,
}

impl Zendesk {
    pub fn new(config: &ZendeskConfig, http: reqwest::Client) -> Result<Zendesk, SinkError> {
        // Zendesk's API-token form of basic auth: the user is "<email>/token".
        let auth = Auth::Basic { username: format!("{}/token", config.email), password: Secret::read(&config.api_token_file)? };
        Ok(Zendesk { api: Api::new(http, &config.url, auth)? })
    }

    pub async fn find(&self, marker: &str) -> Result<Option<String>, SinkError> {
        let answer = self.api.send_json("Zendesk: searching the ticket", &find_request(marker)).await?;
        Ok(answer.pointer("/tickets/0/id").and_then(id_text))
    }

    pub async fn open(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let what = "Zendesk: creating a ticket";
        let answer = self.api.send_json(what, &open_request(draft)).await?;
        required_id(what, &answer, "/ticket/id")
    }

    pub async fn comment(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        self.api.send(&format!("Zendesk: commenting ticket {ticket}"), &comment_request(ticket, note)?).await.map(drop)
    }

    pub async fn resolve(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        let what = format!("Zendesk: resolving ticket {ticket}");
        resolve_once(&self.api, &what, &show_request(ticket)?, is_solved, &resolve_request(ticket, note)?).await
    }
}

fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "urgent",
        Severity::Warning => "high",
        Severity::Info => "normal",
    }
}

pub fn open_request(draft: &TicketDraft) -> ApiRequest {
    let ticket = json!({
        "subject": draft.subject,
        "comment": {"body": draft.body},
        "priority": priority(draft.severity),
        "external_id": draft.marker,
        "tags": ["census", format!("census_{}", draft.severity.as_str())],
    });
    ApiRequest::post("/api/v2/tickets.json", &json!({"ticket": ticket}))
}

pub fn find_request(marker: &str) -> ApiRequest {
    ApiRequest::get("/api/v2/tickets.json").query("external_id", marker)
}

fn ticket_path(ticket: &str) -> Result<String, SinkError> {
    Ok(format!("/api/v2/tickets/{}.json", path_segment(ticket)?))
}

pub fn comment_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::put(ticket_path(ticket)?, &json!({"ticket": {"comment": private(note)}})))
}

pub fn show_request(ticket: &str) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::get(ticket_path(ticket)?))
}

pub fn is_solved(answer: &Value) -> bool {
    matches!(answer.pointer("/ticket/status").and_then(Value::as_str), Some("solved" | "closed"))
}

pub fn resolve_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::put(ticket_path(ticket)?, &json!({"ticket": {"status": "solved", "comment": private(note)}})))
}

/// Notes are for agents: the requester of an alert ticket is the API user.
fn private(note: &TicketNote) -> Value {
    json!({"body": note.body, "public": false})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::fixtures::{MARKER, draft, http, note, secret_file};
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    fn config(url: &str, api_token_file: PathBuf) -> ZendeskConfig {
        ZendeskConfig { url: url.into(), email: "bot@example.com".into(), api_token_file }
    }

    #[test]
    fn open_request_sets_the_external_id() {
        let request = open_request(&draft());
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/api/v2/tickets.json"));
        assert_eq!(
            request.body_json(),
            json!({"ticket": {
                "subject": "[FIRING] DiskFull on web1",
                "comment": {"body": draft().body},
                "priority": "urgent",
                "external_id": MARKER,
                "tags": ["census", "census_critical"],
            }})
        );
    }

    #[test]
    fn find_comment_and_resolve_requests() {
        assert_eq!(find_request(MARKER).query, [("external_id".to_string(), MARKER.to_string())]);
        let comment = comment_request("35436", &note()).expect("valid id");
        assert_eq!((comment.method.as_str(), comment.path.as_str()), ("PUT", "/api/v2/tickets/35436.json"));
        assert_eq!(comment.body_json(), json!({"ticket": {"comment": {"body": "resolved at 16:10", "public": false}}}));
        let resolve = resolve_request("35436", &note()).expect("valid id");
        assert_eq!(resolve.body_json(), json!({"ticket": {"status": "solved", "comment": {"body": "resolved at 16:10", "public": false}}}));
        assert!(is_solved(&json!({"ticket": {"status": "closed"}})));
        assert!(!is_solved(&json!({"ticket": {"status": "open"}})));
    }

    #[tokio::test]
    async fn a_ticket_lifecycle_against_a_recording_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(vec![
            Reply::json(200, json!({"tickets": [], "count": 0})),
            Reply::json(201, json!({"ticket": {"id": 35436, "status": "new"}})),
            Reply::json(200, json!({"tickets": [{"id": 35436}], "count": 1})),
            Reply::json(200, json!({"ticket": {"id": 35436}})),
            Reply::json(200, json!({"ticket": {"id": 35436, "status": "open"}})),
            Reply::json(200, json!({"ticket": {"id": 35436, "status": "solved"}})),
            Reply::json(200, json!({"ticket": {"id": 35436, "status": "solved"}})),
        ])
        .await;
        let zd = Zendesk::new(&config(server.url(), secret_file(dir.path(), "zd.token", "zd-s3cret")), http()).expect("valid");
        assert!(!format!("{zd:?}").contains("zd-s3cret"));

        assert_eq!(zd.find(MARKER).await, Ok(None));
        assert_eq!(zd.open(&draft()).await, Ok("35436".into()));
        assert_eq!(zd.find(MARKER).await, Ok(Some("35436".into())));
        zd.comment("35436", &note()).await.expect("comment");
        zd.resolve("35436", &note()).await.expect("resolve");
        zd.resolve("35436", &note()).await.expect("a solved ticket is left alone");

        assert_eq!(
            server.lines(),
            [
                format!("GET /api/v2/tickets.json?external_id={MARKER}"),
                "POST /api/v2/tickets.json".into(),
                format!("GET /api/v2/tickets.json?external_id={MARKER}"),
                "PUT /api/v2/tickets/35436.json".into(),
                "GET /api/v2/tickets/35436.json".into(),
                "PUT /api/v2/tickets/35436.json".into(),
                "GET /api/v2/tickets/35436.json".into(),
            ]
        );
        assert_eq!(server.requests()[5].json()["ticket"]["status"], "solved");
        // "bot@example.com/token:zd-s3cret" in base64
        assert_eq!(server.requests()[0].header("authorization"), Some("Basic Ym90QGV4YW1wbGUuY29tL3Rva2VuOnpkLXMzY3JldA=="));
    }

    #[tokio::test]
    async fn errors_are_classified_without_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = secret_file(dir.path(), "zd.token", "zd-s3cret");
        assert_error_classes("zd-s3cret", |url| {
            let config = config(&url, token.clone());
            async move { Zendesk::new(&config, http())?.comment("35436", &note()).await }
        })
        .await;
    }
}
