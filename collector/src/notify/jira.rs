//! The Jira sink (REST API v2, the shape Jira Cloud and Jira Server / Data
//! Center share; API: https://developer.atlassian.com/cloud/jira/platform/rest/v2/
//! and https://developer.atlassian.com/server/jira/platform/rest/).
//!
//! - open: `POST /rest/api/2/issue` with the project key, summary,
//!   plain-text description, issue type, labels `[<marker>, "census"]` and,
//!   when mapped, a priority → 201 `{"key": "OPS-12"}`;
//! - find: the JQL `labels = "<marker>"` through `GET /rest/api/2/search/jql`
//!   on Cloud (the older `/rest/api/2/search` answers 410 there since
//!   2025) or `GET /rest/api/2/search` on Server / Data Center;
//! - comment: `POST /rest/api/2/issue/<key>/comment` `{"body": ...}`;
//! - resolve: nothing if the issue's status category is already "done";
//!   else the transition named `resolve_transition` (default "Done") is
//!   looked up first (a missing one is a permanent error naming the
//!   available ones), then the note is added as a comment and the
//!   transition made. Comment before transition: if the transition fails,
//!   a retry may repeat the comment, but never loses it.
//!
//! Cloud's new search is eventually consistent: an issue created seconds
//! ago may not be found yet, so a lost creation answer followed by a quick
//! retry can open a second issue.
//!
//! Invariants: authentication is basic `email:api_token`; the token is
//! never logged nor printed by Debug; values put into JQL are quoted.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::http::{Api, ApiRequest, Auth, Secret, id_text, path_segment, required_id};
use super::{SinkError, TicketDraft, TicketNote};
use crate::alert::rules::Severity;

/// `kind = "jira"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraConfig {
    /// `https://example.atlassian.net`, or a Server's base URL with its
    /// context path.
    pub url: String,
    /// Which search endpoint exists: `cloud` (default) or `server` (Server
    /// and Data Center).
    #[serde(default)]
    pub edition: JiraEdition,
    /// Project key (`OPS`).
    pub project: String,
    /// Issue type name.
    #[serde(default = "default_issue_type")]
    pub issue_type: String,
    /// The account's email (Cloud) or user name (Server).
    pub email: String,
    /// An API token (Cloud) or the password (Server).
    pub api_token_file: PathBuf,
    /// The workflow transition that resolves an issue.
    #[serde(default = "default_resolve_transition")]
    pub resolve_transition: String,
    /// Priority names per severity; unset severities (and the whole table
    /// by default) send no priority, leaving the project's default.
    #[serde(default)]
    pub priorities: JiraPriorities,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JiraEdition {
    #[default]
    Cloud,
    Server,
}

/// `priorities = { critical = "Highest", warning = "High" }`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JiraPriorities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<String>,
}

impl JiraPriorities {
    fn name(&self, severity: Severity) -> Option<&str> {
        match severity {
            Severity::Info => self.info.as_deref(),
            Severity::Warning => self.warning.as_deref(),
            Severity::Critical => self.critical.as_deref(),
        }
    }
}

fn default_issue_type() -> String {
    "Task".into()
}

fn default_resolve_transition() -> String {
    "Done".into()
}

#[derive(Debug)]
pub struct Jira {
    config: JiraConfig,
    api: Api,
}

impl Jira {
    pub fn new(config: &JiraConfig, http: reqwest::Client) -> Result<Jira, SinkError> {
        let auth = Auth::Basic { username: config.email.clone(), password: Secret::read(&config.api_token_file)? };
        Ok(Jira { config: config.clone(), api: Api::new(http, &config.url, auth)? })
    }

    pub async fn find(&self, marker: &str) -> Result<Option<String>, SinkError> {
        let answer = self.api.send_json("Jira: searching the issue", &find_request(self.config.edition, marker)).await?;
        Ok(found_key(&answer))
    }

    pub async fn open(&self, draft: &TicketDraft) -> Result<String, SinkError> {
        let what = format!("Jira: creating an issue in project {}", self.config.project);
        let answer = self.api.send_json(&what, &open_request(&self.config, draft)).await?;
        required_id(&what, &answer, "/key")
    }

    pub async fn comment(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        self.api.send(&format!("Jira: commenting issue {ticket}"), &comment_request(ticket, note)?).await.map(drop)
    }

    pub async fn resolve(&self, ticket: &str, note: &TicketNote) -> Result<(), SinkError> {
        let issue = self.api.send_json(&format!("Jira: reading issue {ticket}"), &status_request(ticket)?).await?;
        if is_done(&issue) {
            return Ok(());
        }
        let what = format!("Jira: resolving issue {ticket}");
        let transitions = self.api.send_json(&what, &transitions_request(ticket)?).await?;
        let id = transition_id(&transitions, &self.config.resolve_transition).map_err(|e| SinkError::permanent(format!("{what}: {e}")))?;
        self.comment(ticket, note).await?;
        self.api.send(&what, &transition_request(ticket, &id)?).await.map(drop)
    }
}

pub fn open_request(config: &JiraConfig, draft: &TicketDraft) -> ApiRequest {
    let mut fields = json!({
        "project": {"key": config.project},
        "summary": draft.subject,
        "description": draft.body,
        "issuetype": {"name": config.issue_type},
        "labels": [draft.marker, "census"],
    });
    if let Some(priority) = config.priorities.name(draft.severity) {
        fields["priority"] = json!({"name": priority});
    }
    ApiRequest::post("/rest/api/2/issue", &json!({"fields": fields}))
}

pub fn find_request(edition: JiraEdition, marker: &str) -> ApiRequest {
    let path = match edition {
        JiraEdition::Cloud => "/rest/api/2/search/jql",
        JiraEdition::Server => "/rest/api/2/search",
    };
    let jql = format!("labels = {}", jql_string(marker));
    ApiRequest::get(path).query("jql", jql).query("fields", "summary").query("maxResults", "1")
}

/// The first issue's key; Cloud's search may give only ids, which the API
/// takes wherever it takes a key.
pub fn found_key(answer: &Value) -> Option<String> {
    let issue = answer.pointer("/issues/0")?;
    issue.get("key").and_then(id_text).or_else(|| issue.get("id").and_then(id_text))
}

pub fn comment_request(ticket: &str, note: &TicketNote) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::post(format!("/rest/api/2/issue/{}/comment", path_segment(ticket)?), &json!({"body": note.body})))
}

pub fn status_request(ticket: &str) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::get(format!("/rest/api/2/issue/{}", path_segment(ticket)?)).query("fields", "status"))
}

/// Whatever the workflow calls its final statuses, their category is "done".
pub fn is_done(issue: &Value) -> bool {
    issue.pointer("/fields/status/statusCategory/key").and_then(Value::as_str) == Some("done")
}

pub fn transitions_request(ticket: &str) -> Result<ApiRequest, SinkError> {
    Ok(ApiRequest::get(format!("/rest/api/2/issue/{}/transitions", path_segment(ticket)?)))
}

/// The id of the transition called `name` (case-insensitive), or the
/// reason there is none.
pub fn transition_id(answer: &Value, name: &str) -> Result<String, String> {
    let transitions = answer.get("transitions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let named = |t: &&Value| t.get("name").and_then(Value::as_str).is_some_and(|n| n.eq_ignore_ascii_case(name));
    if let Some(id) = transitions.iter().find(named).and_then(|t| t.get("id")).and_then(id_text) {
        return Ok(id);
    }
    let available: Vec<&str> = transitions.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).collect();
    Err(format!("no transition named {name:?} from the issue's status (available: {})", available.join(", ")))
}

pub fn transition_request(ticket: &str, transition_id: &str) -> Result<ApiRequest, SinkError> {
    let path = format!("/rest/api/2/issue/{}/transitions", path_segment(ticket)?);
    Ok(ApiRequest::post(path, &json!({"transition": {"id": transition_id}})))
}

/// A JQL string literal: double quotes, with `\` and `"` escaped.
fn jql_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::test_server::fixtures::{MARKER, draft, http, note, secret_file};
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    fn config(url: &str, api_token_file: PathBuf) -> JiraConfig {
        JiraConfig {
            url: url.into(),
            edition: JiraEdition::Cloud,
            project: "OPS".into(),
            issue_type: default_issue_type(),
            email: "bot@example.com".into(),
            api_token_file,
            resolve_transition: default_resolve_transition(),
            priorities: JiraPriorities::default(),
        }
    }

    #[test]
    fn open_request_labels_the_issue_with_the_marker() {
        let mut config = config("https://jira.test", "t".into());
        let request = open_request(&config, &draft());
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/rest/api/2/issue"));
        assert_eq!(
            request.body_json(),
            json!({"fields": {
                "project": {"key": "OPS"},
                "summary": "[FIRING] DiskFull on web1",
                "description": draft().body,
                "issuetype": {"name": "Task"},
                "labels": [MARKER, "census"],
            }})
        );
        config.priorities.critical = Some("Highest".into());
        assert_eq!(open_request(&config, &draft()).body_json()["fields"]["priority"], json!({"name": "Highest"}));
    }

    #[test]
    fn find_request_uses_the_edition_search_endpoint() {
        let cloud = find_request(JiraEdition::Cloud, MARKER);
        assert_eq!(cloud.path, "/rest/api/2/search/jql");
        assert_eq!(cloud.query[0], ("jql".to_string(), format!("labels = \"{MARKER}\"")));
        assert_eq!(find_request(JiraEdition::Server, MARKER).path, "/rest/api/2/search");
        assert_eq!(jql_string(r#"a"b\"#), r#""a\"b\\""#);
        assert_eq!(found_key(&json!({"issues": [{"id": "10001", "key": "OPS-3"}]})), Some("OPS-3".into()));
        assert_eq!(found_key(&json!({"issues": [{"id": "10001"}]})), Some("10001".into()));
        assert_eq!(found_key(&json!({"issues": []})), None);
    }

    #[test]
    fn transitions_are_picked_by_name() {
        let answer = json!({"transitions": [{"id": "11", "name": "In Progress"}, {"id": "31", "name": "Done"}]});
        assert_eq!(transition_id(&answer, "done"), Ok("31".into()));
        let err = transition_id(&answer, "Resolve").unwrap_err();
        assert!(err.contains("In Progress, Done"), "{err}");
        let request = transition_request("OPS-3", "31").expect("valid key");
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/rest/api/2/issue/OPS-3/transitions"));
        assert_eq!(request.body_json(), json!({"transition": {"id": "31"}}));
        assert!(is_done(&json!({"fields": {"status": {"name": "Closed", "statusCategory": {"key": "done"}}}})));
        assert!(!is_done(&json!({"fields": {"status": {"statusCategory": {"key": "indeterminate"}}}})));
    }

    #[tokio::test]
    async fn an_issue_lifecycle_against_a_recording_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open_status = json!({"fields": {"status": {"statusCategory": {"key": "new"}}}});
        let server = TestServer::start(vec![
            Reply::json(200, json!({"issues": []})),
            Reply::json(201, json!({"id": "10001", "key": "OPS-3"})),
            Reply::json(201, json!({"id": "1"})),
            Reply::json(200, open_status),
            Reply::json(200, json!({"transitions": [{"id": "31", "name": "Done"}]})),
            Reply::json(201, json!({"id": "2"})),
            Reply::empty(204),
            Reply::json(200, json!({"fields": {"status": {"statusCategory": {"key": "done"}}}})),
        ])
        .await;
        let jira = Jira::new(&config(server.url(), secret_file(dir.path(), "jira.token", "jira-s3cret")), http()).expect("valid");
        assert!(!format!("{jira:?}").contains("jira-s3cret"));

        assert_eq!(jira.find(MARKER).await, Ok(None));
        assert_eq!(jira.open(&draft()).await, Ok("OPS-3".into()));
        jira.comment("OPS-3", &note()).await.expect("comment");
        jira.resolve("OPS-3", &note()).await.expect("resolve");
        jira.resolve("OPS-3", &note()).await.expect("an issue already done is left alone");

        let lines = server.lines();
        assert!(lines[0].starts_with("GET /rest/api/2/search/jql?jql=labels+%3D+%22census-0123456789ab%22"), "{}", lines[0]);
        assert_eq!(
            &lines[1..],
            [
                "POST /rest/api/2/issue",
                "POST /rest/api/2/issue/OPS-3/comment",
                "GET /rest/api/2/issue/OPS-3?fields=status",
                "GET /rest/api/2/issue/OPS-3/transitions",
                "POST /rest/api/2/issue/OPS-3/comment",
                "POST /rest/api/2/issue/OPS-3/transitions",
                "GET /rest/api/2/issue/OPS-3?fields=status",
            ]
        );
        // "bot@example.com:jira-s3cret" in base64
        assert_eq!(server.requests()[0].header("authorization"), Some("Basic Ym90QGV4YW1wbGUuY29tOmppcmEtczNjcmV0"));
        assert_eq!(server.requests()[5].json(), json!({"body": "resolved at 16:10"}));
    }

    #[tokio::test]
    async fn a_missing_transition_is_permanent_and_comments_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start(vec![
            Reply::json(200, json!({"fields": {"status": {"statusCategory": {"key": "new"}}}})),
            Reply::json(200, json!({"transitions": [{"id": "11", "name": "Start"}]})),
        ])
        .await;
        let jira = Jira::new(&config(server.url(), secret_file(dir.path(), "jira.token", "jira-s3cret")), http()).expect("valid");
        let err = jira.resolve("OPS-3", &note()).await.expect_err("no Done transition");
        assert!(!err.retryable && err.message.contains("Start"), "{err}");
        assert_eq!(server.requests().len(), 2);
    }

    #[tokio::test]
    async fn errors_are_classified_without_the_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let token = secret_file(dir.path(), "jira.token", "jira-s3cret");
        assert_error_classes("jira-s3cret", |url| {
            let config = config(&url, token.clone());
            async move { Jira::new(&config, http())?.find(MARKER).await }
        })
        .await;
    }
}
