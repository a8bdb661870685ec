//! The Request Tracker sink (RT 5, REST 2 under `<url>/REST/2.0`; API:
//! https://docs.bestpractical.com/rt/5.0.3/RT/REST2.html).
//!
//! - open: `POST /ticket` with the queue, subject `"<subject> [<marker>]"`,
//!   the body as `text/plain` content and a priority by severity → 201
//!   `{"id": "7"}`;
//! - find: `GET /tickets?query=Queue = '<queue>' AND Subject LIKE '<marker>'`
//!   (TicketSQL) → the first item's id;
//! - comment: `POST /ticket/<id>/comment` (a private comment, not a mail to
//!   the requestor);
//! - resolve: the comment, then `PUT /ticket/<id>` `{"Status": "resolved"}`;
//!   RT answers 200 `[]` when the ticket is already resolved.
//!
//! Checked against RT 5.0.3: ids come back as strings, GET answers are
//! pretty-printed JSON, a missing JSON content type is a 415, an unknown
//! queue a 403.
//!
//! Invariants: the token travels only in `Authorization: token <t>`, is
//! never logged nor printed by Debug; values put into TicketSQL are quoted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Api, ApiRequest, Auth, Secret, SecretHeader, id_text, path_segment, required_id};
use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::rules::Severity;

/// `kind = "rt"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtConfig {
    /// RT's base URL (`https://rt.example`); the API is `<url>/REST/2.0`.
    pub url: String,
    /// The queue tickets are created in.
    pub queue: String,
    /// An RT auth token (Settings → Auth Tokens).
    pub token_file: PathBuf,
    /// Requestor of new tickets (an email address); RT mails its
    /// auto-reply there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requestor: Option<String>,
}

#[derive(Debug)]
pub struct Rt {
    config: RtConfig,
    api: Api,
}

impl Rt {
    pub fn new(config: &RtConfig, http: reqwest::Client) -> Result<Rt, SinkError> {
        let token = SecretHeader::new("Authorization", "token ", Secret::read(&config.token_file)?);
        let api = Api::new(http, &format!("{}/REST/2.0", config.url.trim_end_matches('/')), Auth::Headers(vec![token]))?;
        Ok(Rt { config: config.clone(), api })
    }

    pub async fn find(&self, marker: &str) -> Result<Option<String>, SinkError> {
        let answer = self.api.send_json("RT: searching the ticket", &find_request(&self.config, marker)).await?;
        Ok(found_id(&answer))
    }

    pub async fn open(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let what = format!("RT: creating a ticket in queue {}", self.config.queue);
        let answer = self.api.send_json(&what, &open_request(&self.config, draft)).await?;
        required_id(&what, &answer, "/id")
    }

    pub async fn comment(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        self.api.send(&format!("RT: commenting ticket {ticket}"), &comment_request(ticket, note)?).await.map(drop)
    }

    pub async fn resolve(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        self.comment(ticket, note).await?;
        self.api.send(&format!("RT: resolving ticket {ticket}"), &resolve_request(ticket)?).await.map(drop)
    }
}

/// RT's default priority scale is 0–99.
fn priority(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 90,
        Severity::Warning => 50,
        Severity::Info => 10,
    }
}

pub fn open_request(config: &RtConfig, draft: &TicketDraft) -> ApiRequest {
    let mut body = json!({
        "Queue": config.queue,
        "Subject": draft.subject_with_marker(),
        "Content": draft.body,
        "ContentType": "text/plain",
        "Priority": priority(draft.severity),
    });
    if let Some(requestor) = &config.requestor {
        body["Requestor"] = requestor.as_str().into();
    }
    ApiRequest::post("/ticket", &body)
}

pub fn find_request(config: &RtConfig, marker: &str) -> ApiRequest {
    let query = format!("Queue = {} AND Subject LIKE {}", ticket_sql_string(&config.queue), ticket_sql_string(marker));
    ApiRequest::get("/tickets").query("query", query).query("per_page", "1")
}

/// The first ticket of a search answer (`{"items": [{"id": "7"}, ...]}`).
pub fn found_id(answer: &Value) -> Option<String> {
    answer.pointer("/items/0/id").and_then(id_text)
}

pub fn comment_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    let path = format!("/ticket/{}/comment", path_segment(ticket)?);
    Ok(ApiRequest::post(path, &json!({"Content": note.body, "ContentType": "text/plain"})))
}

pub fn resolve_request(ticket: &str) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::put(format!("/ticket/{}", path_segment(ticket)?), &json!({"Status": "resolved"})))
}

/// A TicketSQL string literal: single quotes, with `\` and `'` escaped.
fn ticket_sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::fixtures::{MARKER, draft, http, note, secret_file};
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    fn config(url: &str, token_file: PathBuf) -> RtConfig {
        RtConfig { url: url.into(), queue: "General".into(), token_file, requestor: None }
    }

    #[test]
    fn open_request_carries_queue_subject_marker_and_priority() {
        let mut config = config("http://rt.test", "t".into());
        config.requestor = Some("collector@example".into());
        let request = open_request(&config, &draft());
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/ticket"));
        assert_eq!(
            request.body_json(),
            json!({
                "Queue": "General",
                "Subject": format!("[FIRING] DiskFull on web1 [{MARKER}]"),
                "Content": draft().body,
                "ContentType": "text/plain",
                "Priority": 90,
                "Requestor": "collector@example",
            })
        );
    }

    #[test]
    fn find_request_quotes_ticket_sql() {
        let mut config = config("http://rt.test", "t".into());
        config.queue = "Ops 'night'".into();
        let request = find_request(&config, MARKER);
        assert_eq!(request.path, "/tickets");
        let query = format!("Queue = 'Ops \\'night\\'' AND Subject LIKE '{MARKER}'");
        assert_eq!(request.query, vec![("query".to_string(), query), ("per_page".to_string(), "1".to_string())]);
        assert_eq!(found_id(&json!({"items": [{"id": "7"}, {"id": "9"}]})), Some("7".into()));
        assert_eq!(found_id(&json!({"items": [{"id": 7}]})), Some("7".into()));
        assert_eq!(found_id(&json!({"items": [], "total": 0})), None);
    }

    #[test]
    fn comment_and_resolve_requests() {
        let comment = comment_request("7", &note()).expect("valid id");
        assert_eq!((comment.method.as_str(), comment.path.as_str()), ("POST", "/ticket/7/comment"));
        assert_eq!(comment.body_json(), json!({"Content": "resolved at 16:10", "ContentType": "text/plain"}));
        let resolve = resolve_request("7").expect("valid id");
        assert_eq!((resolve.method.as_str(), resolve.path.as_str()), ("PUT", "/ticket/7"));
        assert_eq!(resolve.body_json(), json!({"Status": "resolved"}));
        assert!(comment_request("7/../8", &note()).is_err());
    }

    #[tokio::test]
    async fn a_ticket_lifecycle_against_a_recording_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(vec![
            Reply::json(200, json!({"items": [], "total": 0})),
            Reply::json(201, json!({"id": "7", "type": "ticket"})),
            Reply::json(200, json!({"items": [{"id": "7"}], "total": 1})),
            Reply::json(201, json!(["Comments added"])),
            Reply::json(201, json!(["Comments added"])),
            Reply::json(200, json!([])),
        ])
        .await;
        let rt =
            Rt::new(&config(&format!("{}/", server.url()), secret_file(dir.path(), "rt.token", "1-14-s3cret")), http()).expect("valid");
        assert!(!format!("{rt:?}").contains("s3cret"));

        assert_eq!(rt.find(MARKER).await, Ok(None));
        assert_eq!(rt.open(&draft()).await, Ok("7".into()));
        assert_eq!(rt.find(MARKER).await, Ok(Some("7".into())));
        rt.comment("7", &note()).await.expect("comment");
        rt.resolve("7", &note()).await.expect("resolve");

        let lines = server.lines();
        assert_eq!(lines[1], "POST /REST/2.0/ticket");
        assert!(lines[0].starts_with("GET /REST/2.0/tickets?query=Queue+%3D+%27General%27+AND+Subject+LIKE+%27census-"), "{}", lines[0]);
        assert_eq!(&lines[3..], ["POST /REST/2.0/ticket/7/comment", "POST /REST/2.0/ticket/7/comment", "PUT /REST/2.0/ticket/7"]);
        for seen in server.requests() {
            assert_eq!(seen.header("authorization"), Some("token 1-14-s3cret"));
        }
        assert_eq!(server.requests()[1].header("content-type"), Some("application/json"));
    }

    #[tokio::test]
    async fn errors_are_classified_without_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = secret_file(dir.path(), "rt.token", "1-14-s3cret");
        assert_error_classes("1-14-s3cret", |url| {
            let config = config(&url, token.clone());
            async move { Rt::new(&config, http())?.open(&draft()).await }
        })
        .await;
        let server = TestServer::start(vec![Reply::json(201, json!({"type": "ticket"}))]).await;
        let err = Rt::new(&config(server.url(), token), http()).expect("valid").open(&draft()).await.expect_err("no id");
        assert!(!err.retryable, "{err}");
    }
}
