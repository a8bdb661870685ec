//! The ServiceNow sink: incidents through the Table API (API:
//! https://www.servicenow.com/docs/ "Table API", `/api/now/table/{tableName}`).
//!
//! - open: `POST /api/now/table/incident` with `short_description`,
//!   `description`, `urgency` and `impact` by severity, `correlation_id` =
//!   the marker (and `correlation_display` = "census"), optional
//!   `caller_id` and `assignment_group` → 201 `{"result": {"sys_id": ...}}`;
//!   the ticket id Census keeps is the `sys_id`;
//! - find: `GET /api/now/table/incident?sysparm_query=correlation_id=<marker>`
//!   (only `sys_id`, at most one row);
//! - comment: `PATCH /api/now/table/incident/<sys_id>` setting the journal
//!   field `note_field` (`work_notes` by default: internal; `comments` is
//!   visible to the caller);
//! - resolve: nothing if the incident is already Resolved (6), Closed (7)
//!   or Canceled (8); else one `PATCH` with `state` "6", `close_code` and
//!   the note as `close_notes`.
//!
//! Invariants: basic auth `username:password`, the password never logged
//! nor printed by Debug; every request asks for `application/json`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Api, ApiRequest, Auth, Secret, id_text, path_segment, required_id, resolve_once};
use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::rules::Severity;

const INCIDENTS: &str = "/api/now/table/incident";

/// `kind = "servicenow"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceNowConfig {
    /// The instance, `https://example.service-now.com`.
    pub url: String,
    pub username: String,
    pub password_file: PathBuf,
    /// Caller of new incidents (a user's sys_id or user name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// Assignment group of new incidents (a group's sys_id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_group: Option<String>,
    /// The journal field comments go to.
    #[serde(default)]
    pub note_field: NoteField,
    /// `close_code` set on resolution; must be one of the instance's
    /// choices.
    #[serde(default = "default_close_code")]
    pub close_code: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteField {
    /// Internal notes, seen by the service desk only.
    #[default]
    WorkNotes,
    /// Additional comments, visible to the caller.
    Comments,
}

impl NoteField {
    fn as_str(self) -> &'static str {
        match self {
            NoteField::WorkNotes => "work_notes",
            NoteField::Comments => "comments",
        }
    }
}

fn default_close_code() -> String {
    "Solved (Permanently)".into()
}

#[derive(Debug)]
pub struct ServiceNow {
    config: ServiceNowConfig,
    api: Api,
}

impl ServiceNow {
    pub fn new(config: &ServiceNowConfig, http: reqwest::Client) -> Result<ServiceNow, SinkError> {
        let auth = Auth::Basic { username: config.username.clone(), password: Secret::read(&config.password_file)? };
        Ok(ServiceNow { config: config.clone(), api: Api::new(http, &config.url, auth)? })
    }

    pub async fn find(&self, marker: &str) -> Result<Option<String>, SinkError> {
        let answer = self.api.send_json("ServiceNow: searching the incident", &find_request(marker)).await?;
        Ok(answer.pointer("/result/0/sys_id").and_then(id_text))
    }

    pub async fn open(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let what = "ServiceNow: creating an incident";
        let answer = self.api.send_json(what, &open_request(&self.config, draft)).await?;
        required_id(what, &answer, "/result/sys_id")
    }

    pub async fn comment(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        let request = comment_request(self.config.note_field, ticket, note)?;
        self.api.send(&format!("ServiceNow: commenting incident {ticket}"), &request).await.map(drop)
    }

    pub async fn resolve(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        let what = format!("ServiceNow: resolving incident {ticket}");
        resolve_once(&self.api, &what, &state_request(ticket)?, is_resolved, &resolve_request(&self.config.close_code, ticket, note)?).await
    }
}

/// Urgency and impact share the scale 1 (high) – 3 (low); the instance
/// derives the priority from the pair.
fn urgency(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "1",
        Severity::Warning => "2",
        Severity::Info => "3",
    }
}

pub fn open_request(config: &ServiceNowConfig, draft: &TicketDraft) -> ApiRequest {
    let mut body = json!({
        "short_description": draft.subject,
        "description": draft.body,
        "urgency": urgency(draft.severity),
        "impact": urgency(draft.severity),
        "correlation_id": draft.marker,
        "correlation_display": "census",
    });
    if let Some(caller) = &config.caller_id {
        body["caller_id"] = caller.as_str().into();
    }
    if let Some(group) = &config.assignment_group {
        body["assignment_group"] = group.as_str().into();
    }
    ApiRequest::post(INCIDENTS, &body)
}

pub fn find_request(marker: &str) -> ApiRequest {
    ApiRequest::get(INCIDENTS)
        .query("sysparm_query", format!("correlation_id={marker}"))
        .query("sysparm_fields", "sys_id")
        .query("sysparm_limit", "1")
}

fn incident_path(ticket: &str) -> Result<String, SinkError> {
    Ok(format!("{INCIDENTS}/{}", path_segment(ticket)?))
}

pub fn comment_request(field: NoteField, ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::patch(incident_path(ticket)?, &json!({field.as_str(): note.body})))
}

pub fn state_request(ticket: &str) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::get(incident_path(ticket)?).query("sysparm_fields", "state"))
}

/// Resolved (6), Closed (7) or Canceled (8): the incident states of the
/// default incident state model that a resolution must not touch.
pub fn is_resolved(incident: &Value) -> bool {
    incident.pointer("/result/state").and_then(id_text).is_some_and(|s| matches!(s.as_str(), "6" | "7" | "8"))
}

pub fn resolve_request(close_code: &str, ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::patch(incident_path(ticket)?, &json!({"state": "6", "close_code": close_code, "close_notes": note.body})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::fixtures::{MARKER, draft, http, note, secret_file};
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    const SYS_ID: &str = "9d385017c611228701d22104cc95c371";

    fn config(url: &str, password_file: PathBuf) -> ServiceNowConfig {
        ServiceNowConfig {
            url: url.into(),
            username: "census".into(),
            password_file,
            caller_id: None,
            assignment_group: None,
            note_field: NoteField::default(),
            close_code: default_close_code(),
        }
    }

    #[test]
    fn open_request_correlates_the_incident_with_the_marker() {
        let mut config = config("https://sn.test", "p".into());
        config.assignment_group = Some("Service Desk".into());
        let request = open_request(&config, &draft());
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", INCIDENTS));
        assert_eq!(
            request.body_json(),
            json!({
                "short_description": "[FIRING] DiskFull on web1",
                "description": draft().body,
                "urgency": "1",
                "impact": "1",
                "correlation_id": MARKER,
                "correlation_display": "census",
                "assignment_group": "Service Desk",
            })
        );
    }

    #[test]
    fn find_comment_and_resolve_requests() {
        let find = find_request(MARKER);
        assert_eq!(find.path, INCIDENTS);
        let expected =
            [("sysparm_query", format!("correlation_id={MARKER}")), ("sysparm_fields", "sys_id".into()), ("sysparm_limit", "1".into())];
        assert_eq!(find.query, expected.map(|(k, v)| (k.to_string(), v)));

        let comment = comment_request(NoteField::Comments, SYS_ID, &note()).expect("valid id");
        assert_eq!((comment.method.as_str(), comment.path.clone()), ("PATCH", format!("{INCIDENTS}/{SYS_ID}")));
        assert_eq!(comment.body_json(), json!({"comments": "resolved at 16:10"}));

        let resolve = resolve_request("Solved (Permanently)", SYS_ID, &note()).expect("valid id");
        assert_eq!(resolve.method.as_str(), "PATCH");
        assert_eq!(resolve.body_json(), json!({"state": "6", "close_code": "Solved (Permanently)", "close_notes": "resolved at 16:10"}));

        assert!(is_resolved(&json!({"result": {"state": "7"}})));
        assert!(!is_resolved(&json!({"result": {"state": "2"}})));
    }

    #[tokio::test]
    async fn an_incident_lifecycle_against_a_recording_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(vec![
            Reply::json(200, json!({"result": []})),
            Reply::json(201, json!({"result": {"sys_id": SYS_ID, "number": "INC0010001"}})),
            Reply::json(200, json!({"result": {"sys_id": SYS_ID}})),
            Reply::json(200, json!({"result": {"state": "2"}})),
            Reply::json(200, json!({"result": {"sys_id": SYS_ID}})),
            Reply::json(200, json!({"result": {"state": "6"}})),
        ])
        .await;
        let sn = ServiceNow::new(&config(server.url(), secret_file(dir.path(), "sn.password", "sn-pa55")), http()).expect("valid");
        assert!(!format!("{sn:?}").contains("sn-pa55"));

        assert_eq!(sn.find(MARKER).await, Ok(None));
        assert_eq!(sn.open(&draft()).await, Ok(SYS_ID.into()));
        sn.comment(SYS_ID, &note()).await.expect("comment");
        sn.resolve(SYS_ID, &note()).await.expect("resolve");
        sn.resolve(SYS_ID, &note()).await.expect("a resolved incident is left alone");

        let incident = format!("{INCIDENTS}/{SYS_ID}");
        assert_eq!(
            server.lines(),
            [
                format!("GET {INCIDENTS}?sysparm_query=correlation_id%3D{MARKER}&sysparm_fields=sys_id&sysparm_limit=1"),
                format!("POST {INCIDENTS}"),
                format!("PATCH {incident}"),
                format!("GET {incident}?sysparm_fields=state"),
                format!("PATCH {incident}"),
                format!("GET {incident}?sysparm_fields=state"),
            ]
        );
        let requests = server.requests();
        assert_eq!(requests[2].json(), json!({"work_notes": "resolved at 16:10"}));
        assert_eq!(requests[4].json()["state"], "6");
        // "census:sn-pa55" in base64
        assert!(requests.iter().all(|r| r.header("authorization") == Some("Basic Y2Vuc3VzOnNuLXBhNTU=")));
        assert!(requests.iter().all(|r| r.header("accept") == Some("application/json")));
    }

    #[tokio::test]
    async fn errors_are_classified_without_the_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let password = secret_file(dir.path(), "sn.password", "sn-pa55");
        assert_error_classes("sn-pa55", |url| {
            let config = config(&url, password.clone());
            async move { ServiceNow::new(&config, http())?.open(&draft()).await }
        })
        .await;
    }
}
