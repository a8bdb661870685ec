//! The GLPI sink: tickets through the legacy REST API `apirest.php` of GLPI
//! 9.5 and 10 (API: `apirest.md` in the GLPI sources, served by every
//! instance at `<url>/apirest.php/`).
//!
//! GLPI works in sessions: every operation starts with `GET /initSession`
//! (headers `Authorization: user_token <t>` and the optional `App-Token`)
//! → `{"session_token": ...}`, sends its requests with `Session-Token` (and
//! `App-Token`), and ends with a best-effort `GET /killSession`. A session
//! per operation costs two requests but leaves no session to expire under
//! a long-lived client.
//!
//! - open: `POST /Ticket` `{"input": {name, content, urgency, type: 1
//!   (incident), entities_id?}}` → 201 `{"id": 15}`; the name is
//!   `"<subject> [<marker>]"`;
//! - find: `GET /search/Ticket` with the criterion "name (field 1) contains
//!   the marker" and field 2 (id) displayed → the first row's id;
//! - comment: `POST /Ticket/<id>/ITILFollowup`;
//! - resolve: nothing if the ticket is already solved (5) or closed (6);
//!   else `POST /Ticket/<id>/ITILSolution` with the note, which moves the
//!   ticket to solved.
//!
//! GLPI renders ticket texts as HTML, so bodies are escaped and their line
//! breaks become `<br>`.
//!
//! Invariants: the user token, app token and session tokens are never
//! logged nor printed by Debug, and are cut out of error messages.

use std::future::Future;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Api, ApiRequest, Auth, Secret, SecretHeader, id_text, numeric_id, path_segment, required_id, resolve_once};
use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::rules::Severity;

/// `kind = "glpi"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlpiConfig {
    /// The API's URL, ending in `apirest.php`: `https://glpi.example/apirest.php`.
    pub url: String,
    /// The API user's "remote access key" (user preferences).
    pub user_token_file: PathBuf,
    /// The API client's app token, when the GLPI API configuration asks
    /// for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token_file: Option<PathBuf>,
    /// Entity of new tickets (the user's default entity otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<u64>,
}

#[derive(Debug)]
pub struct Glpi {
    config: GlpiConfig,
    /// Authenticates `initSession` only.
    login: Api,
    app_token: Option<Secret>,
}

/// GLPI's ticket statuses from "solved" on.
const SOLVED: u64 = 5;

impl Glpi {
    pub fn new(config: &GlpiConfig, http: reqwest::Client) -> Result<Glpi, SinkError> {
        let app_token = config.app_token_file.as_deref().map(Secret::read).transpose()?;
        let mut headers = vec![SecretHeader::new("Authorization", "user_token ", Secret::read(&config.user_token_file)?)];
        headers.extend(app_token.iter().map(|t| SecretHeader::new("App-Token", "", t.clone())));
        Ok(Glpi { config: config.clone(), login: Api::new(http, &config.url, Auth::Headers(headers))?, app_token })
    }

    pub async fn find(&self, marker: &str) -> Result<Option<String>, SinkError> {
        self.in_session(|api| async move { Ok(found_id(&api.send_json("GLPI: searching the ticket", &find_request(marker)).await?)) }).await
    }

    pub async fn open(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let what = "GLPI: creating a ticket";
        let request = open_request(&self.config, draft);
        self.in_session(|api| async move { required_id(what, &api.send_json(what, &request).await?, "/id") }).await
    }

    pub async fn comment(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        let request = followup_request(ticket, note)?;
        let what = format!("GLPI: commenting ticket {ticket}");
        self.in_session(|api| async move { api.send(&what, &request).await.map(drop) }).await
    }

    pub async fn resolve(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        let (show, solve) = (show_request(ticket)?, solution_request(ticket, note)?);
        let what = format!("GLPI: resolving ticket {ticket}");
        self.in_session(|api| async move { resolve_once(&api, &what, &show, is_solved, &solve).await }).await
    }

    /// Runs `work` with an endpoint authenticated by a fresh session, then
    /// ends the session whatever `work` returned.
    async fn in_session<T, F, Fut>(&self, work: F) -> Result<T, SinkError>
    where
        F: FnOnce(Api) -> Fut,
        Fut: Future<Output = Result<T, SinkError>>,
    {
        let answer = self.login.send_json("GLPI: opening a session", &glpi_get("/initSession")).await?;
        let token = answer
            .get("session_token")
            .and_then(Value::as_str)
            .ok_or_else(|| SinkError::permanent("GLPI: opening a session: the answer has no session_token"))?;
        let mut headers = vec![SecretHeader::new("Session-Token", "", Secret::new(token.to_string()))];
        headers.extend(self.app_token.iter().map(|t| SecretHeader::new("App-Token", "", t.clone())));
        let session = self.login.with_auth(Auth::Headers(headers));
        let result = work(session.clone()).await;
        // Best effort: GLPI also expires idle sessions on its own.
        let _ = session.send("GLPI: closing the session", &glpi_get("/killSession")).await;
        result
    }
}

/// GLPI wants a JSON content type on every call, GETs included.
fn glpi_get(path: impl Into<String>) -> ApiRequest {
    ApiRequest::get(path).header("Content-Type", "application/json")
}

/// GLPI's urgency scale: 1 (very low) – 5 (very high).
fn urgency(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 5,
        Severity::Warning => 4,
        Severity::Info => 3,
    }
}

pub fn open_request(config: &GlpiConfig, draft: &TicketDraft) -> ApiRequest {
    let mut input = json!({
        "name": draft.subject_with_marker(),
        "content": html(&draft.body),
        "urgency": urgency(draft.severity),
        "type": 1,
    });
    if let Some(entity) = config.entity_id {
        input["entities_id"] = entity.into();
    }
    ApiRequest::post("/Ticket", &json!({"input": input}))
}

pub fn find_request(marker: &str) -> ApiRequest {
    glpi_get("/search/Ticket")
        .query("criteria[0][field]", "1")
        .query("criteria[0][searchtype]", "contains")
        .query("criteria[0][value]", marker)
        .query("forcedisplay[0]", "2")
        .query("range", "0-0")
}

/// Rows are an array (`"data": [{"2": 15, ...}]`), or an object keyed by
/// id when the instance indexes them; no `data` at all when nothing matched.
pub fn found_id(answer: &Value) -> Option<String> {
    let first = match answer.get("data")? {
        Value::Array(rows) => rows.first()?,
        Value::Object(rows) => rows.values().next()?,
        _ => return None,
    };
    first.get("2").and_then(id_text)
}

pub fn followup_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    let path = format!("/Ticket/{}/ITILFollowup", path_segment(ticket)?);
    Ok(ApiRequest::post(
        path,
        &json!({"input": {"itemtype": "Ticket", "items_id": numeric_id("GLPI", ticket)?, "content": html(&note.body)}}),
    ))
}

pub fn show_request(ticket: &str) -> Result<ApiRequest, SinkError> {
    Ok(glpi_get(format!("/Ticket/{}", path_segment(ticket)?)))
}

pub fn is_solved(ticket: &Value) -> bool {
    ticket.get("status").and_then(id_text).and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= SOLVED)
}

pub fn solution_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    let path = format!("/Ticket/{}/ITILSolution", path_segment(ticket)?);
    Ok(ApiRequest::post(
        path,
        &json!({"input": {"itemtype": "Ticket", "items_id": numeric_id("GLPI", ticket)?, "content": html(&note.body)}}),
    ))
}

/// Plain text as GLPI's rich-text fields show it.
fn html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\n', "<br>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::fixtures::{MARKER, draft, http, note, secret_file};
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    fn config(url: &str, user_token_file: PathBuf) -> GlpiConfig {
        GlpiConfig { url: url.into(), user_token_file, app_token_file: None, entity_id: None }
    }

    #[test]
    fn open_request_names_the_ticket_with_the_marker() {
        let mut config = config("https://glpi.test/apirest.php", "t".into());
        config.entity_id = Some(3);
        let request = open_request(&config, &draft());
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/Ticket"));
        assert_eq!(
            request.body_json(),
            json!({"input": {
                "name": format!("[FIRING] DiskFull on web1 [{MARKER}]"),
                "content": "/var is 97% full<br>runbook: https://runbooks.example/disk",
                "urgency": 5,
                "type": 1,
                "entities_id": 3,
            }})
        );
        assert_eq!(html("a < b & c\nd"), "a &lt; b &amp; c<br>d");
    }

    #[test]
    fn find_followup_and_solution_requests() {
        let find = find_request(MARKER);
        assert_eq!(find.path, "/search/Ticket");
        assert_eq!(find.query[2], ("criteria[0][value]".to_string(), MARKER.to_string()));
        assert_eq!(found_id(&json!({"totalcount": 1, "data": [{"1": "x", "2": 15}]})), Some("15".into()));
        assert_eq!(found_id(&json!({"totalcount": 1, "data": {"15": {"1": "x", "2": 15}}})), Some("15".into()));
        assert_eq!(found_id(&json!({"totalcount": 0})), None);

        let followup = followup_request("15", &note()).expect("numeric id");
        assert_eq!((followup.method.as_str(), followup.path.as_str()), ("POST", "/Ticket/15/ITILFollowup"));
        assert_eq!(followup.body_json(), json!({"input": {"itemtype": "Ticket", "items_id": 15, "content": "resolved at 16:10"}}));
        let solution = solution_request("15", &note()).expect("numeric id");
        assert_eq!(solution.path, "/Ticket/15/ITILSolution");
        assert!(followup_request("OPS-1", &note()).is_err());

        assert!(is_solved(&json!({"id": 15, "status": 6})));
        assert!(!is_solved(&json!({"id": 15, "status": 2})));
    }

    #[tokio::test]
    async fn every_operation_runs_in_its_own_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let session = |token: &str| Reply::json(200, json!({"session_token": token}));
        let server = TestServer::start(vec![
            session("sess-1"),
            Reply::json(200, json!({"totalcount": 0, "count": 0})),
            Reply::json(200, json!([])),
            session("sess-2"),
            Reply::json(201, json!({"id": 15, "message": ""})),
            Reply::json(200, json!([])),
            session("sess-3"),
            Reply::json(201, json!({"id": 4, "message": ""})),
            Reply::json(200, json!([])),
            session("sess-4"),
            Reply::json(200, json!({"id": 15, "status": 2})),
            Reply::json(201, json!({"id": 5, "message": ""})),
            Reply::json(200, json!([])),
        ])
        .await;
        let mut config = config(&format!("{}/apirest.php", server.url()), secret_file(dir.path(), "user.token", "glpi-user-s3cret"));
        config.app_token_file = Some(secret_file(dir.path(), "app.token", "glpi-app-s3cret"));
        let glpi = Glpi::new(&config, http()).expect("valid");
        assert!(!format!("{glpi:?}").contains("s3cret"));

        assert_eq!(glpi.find(MARKER).await, Ok(None));
        assert_eq!(glpi.open(&draft()).await, Ok("15".into()));
        glpi.comment("15", &note()).await.expect("comment");
        glpi.resolve("15", &note()).await.expect("resolve");

        let paths: Vec<String> = server.requests().iter().map(|r| format!("{} {}", r.method, r.path())).collect();
        let session_of = |work: &[&str]| {
            let mut lines = vec!["GET /apirest.php/initSession".to_string()];
            lines.extend(work.iter().map(|w| w.to_string()));
            lines.push("GET /apirest.php/killSession".into());
            lines
        };
        let expected: Vec<String> = [
            session_of(&["GET /apirest.php/search/Ticket"]),
            session_of(&["POST /apirest.php/Ticket"]),
            session_of(&["POST /apirest.php/Ticket/15/ITILFollowup"]),
            session_of(&["GET /apirest.php/Ticket/15", "POST /apirest.php/Ticket/15/ITILSolution"]),
        ]
        .concat();
        assert_eq!(paths, expected);

        let requests = server.requests();
        assert_eq!(requests[0].header("authorization"), Some("user_token glpi-user-s3cret"));
        assert_eq!(requests[0].header("app-token"), Some("glpi-app-s3cret"));
        assert_eq!(requests[1].header("session-token"), Some("sess-1"));
        assert_eq!(requests[1].header("authorization"), None, "the user token only opens sessions");
        assert_eq!(requests[1].header("content-type"), Some("application/json"));
        assert_eq!(requests[2].header("session-token"), Some("sess-1"), "killSession ends the session it opened");
        assert_eq!(requests[4].header("session-token"), Some("sess-2"));
        assert_eq!(requests[11].json()["input"]["items_id"], 15);
    }

    #[tokio::test]
    async fn a_solved_ticket_is_left_alone_and_sessions_end_after_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(vec![
            Reply::json(200, json!({"session_token": "sess-1"})),
            Reply::json(200, json!({"id": 15, "status": 5})),
            Reply::json(200, json!([])),
            Reply::json(200, json!({"session_token": "sess-2"})),
            Reply::json(400, json!(["ERROR_GLPI_ADD", "refused"])),
            Reply::json(200, json!([])),
        ])
        .await;
        let glpi = Glpi::new(&config(server.url(), secret_file(dir.path(), "user.token", "glpi-user-s3cret")), http()).expect("valid");
        glpi.resolve("15", &note()).await.expect("already solved");
        let err = glpi.comment("15", &note()).await.expect_err("400");
        assert!(!err.retryable && err.message.contains("ERROR_GLPI_ADD"), "{err}");
        assert_eq!(server.lines().iter().filter(|l| l.ends_with("/killSession")).count(), 2);
    }

    #[tokio::test]
    async fn errors_are_classified_without_the_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = secret_file(dir.path(), "user.token", "glpi-user-s3cret");
        assert_error_classes("glpi-user-s3cret", |url| {
            let config = config(&url, token.clone());
            async move { Glpi::new(&config, http())?.find(MARKER).await }
        })
        .await;
        // A session token echoed by a failing call is cut out too.
        let server = TestServer::start(vec![
            Reply::json(200, json!({"session_token": "sess-s3cret"})),
            Reply::text(401, "ERROR_SESSION_TOKEN_INVALID sess-s3cret glpi-user-s3cret"),
        ])
        .await;
        let err = Glpi::new(&config(server.url(), token), http()).expect("valid").find(MARKER).await.expect_err("401");
        assert!(!err.retryable && !err.message.contains("s3cret"), "{err}");
    }
}
