//! The HTTP client every HTTP sink shares: rustls (ring) with the system's
//! roots plus an optional extra CA, a per-request timeout, no redirects (a
//! redirect from a ticketing API is a misconfiguration to report, not to
//! follow with credentials), and the status classification of `SinkError`.
//!
//! On top of it, what the sink clients have in common: an `ApiRequest` is a
//! plain description of one call (method, path, query, headers, JSON body)
//! built by a pure function of each sink, so its shape is unit-tested
//! without a server; an `Api` (base URL + credentials) sends it.
//!
//! Invariants: secrets live in `Secret`s, whose Debug prints `***`, travel
//! only in headers marked sensitive, and are cut out of every error message
//! (a server that echoes the credentials it refused must not put them in
//! the outbox or the logs); base URLs carrying credentials are refused.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::SinkError;

/// Bodies read back from sinks are bounded: an answer larger than this is
/// an error, not a reason to buffer without limit.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<reqwest::Client, SinkError> {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("census-collector/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| SinkError::permanent(format!("reading CA file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| SinkError::permanent(format!("CA file {} holds no valid PEM certificate: {e}", path.display())))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| SinkError::permanent(format!("building the HTTP client: {e}")))
}

/// Sends a request and returns the response body when the status is 2xx;
/// otherwise a `SinkError` naming `what`, the status and the start of the
/// body, retryable for 408, 429 and 5xx.
pub async fn send(what: &str, request: reqwest::RequestBuilder) -> Result<(reqwest::StatusCode, Vec<u8>), SinkError> {
    let response = request.send().await.map_err(|e| SinkError::retryable(format!("{what}: {}", describe(&e))))?;
    let status = response.status();
    let body = read_bounded(what, response).await?;
    if status.is_success() {
        return Ok((status, body));
    }
    let excerpt: String = String::from_utf8_lossy(&body).chars().take(300).collect();
    let message = format!("{what}: HTTP {status}: {}", excerpt.trim());
    let retryable =
        status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS || status == reqwest::StatusCode::REQUEST_TIMEOUT;
    Err(SinkError { retryable, message })
}

async fn read_bounded(what: &str, mut response: reqwest::Response) -> Result<Vec<u8>, SinkError> {
    let mut body = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|e| SinkError::retryable(format!("{what}: reading the answer: {}", describe(&e))))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(SinkError::retryable(format!("{what}: answer larger than {MAX_RESPONSE_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// reqwest's Display stops at the outermost error ("error sending
/// request"); operators need the cause (connection refused, timeout, TLS).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A token, password or key read from a `*_file`. Debug prints `***`, so a
/// client or config can derive Debug without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret received at run time (a GLPI session token).
    pub fn new(secret: String) -> Secret {
        Secret(secret)
    }

    /// Reads it with `super::read_secret_file` (the error names the file).
    pub fn read(path: &Path) -> Result<Secret, SinkError> {
        super::read_secret_file(path).map(Secret)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret::new(s.to_string())
    }
}

/// A header whose value is `prefix` followed by a secret:
/// `Authorization: token <t>`, `App-Token: <t>`.
#[derive(Debug, Clone)]
pub struct SecretHeader {
    pub name: &'static str,
    pub prefix: &'static str,
    pub secret: Secret,
}

impl SecretHeader {
    pub fn new(name: &'static str, prefix: &'static str, secret: Secret) -> SecretHeader {
        SecretHeader { name, prefix, secret }
    }

    /// Marked sensitive, so hyper never indexes or prints it.
    fn value(&self) -> Result<HeaderValue, SinkError> {
        let mut value = HeaderValue::from_str(&format!("{}{}", self.prefix, self.secret.expose())).map_err(|_| {
            SinkError::permanent(format!("the secret for the {} header holds characters HTTP headers cannot carry", self.name))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// How a sink proves who it is.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Basic { username: String, password: Secret },
    Headers(Vec<SecretHeader>),
}

impl Auth {
    fn secrets(&self) -> Vec<&str> {
        match self {
            Auth::None => Vec::new(),
            Auth::Basic { password, .. } => vec![password.expose()],
            Auth::Headers(headers) => headers.iter().map(|h| h.secret.expose()).collect(),
        }
    }

    fn apply(&self, request: reqwest::RequestBuilder) -> Result<reqwest::RequestBuilder, SinkError> {
        Ok(match self {
            Auth::None => request,
            Auth::Basic { username, password } => request.basic_auth(username, Some(password.expose())),
            Auth::Headers(headers) => {
                let mut request = request;
                for h in headers {
                    request = request.header(h.name, h.value()?);
                }
                request
            }
        })
    }
}

/// One call to a sink's API, as data: built by the sinks' pure functions,
/// sent by `Api::send`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    pub method: Method,
    /// Appended to the base URL as is: `/REST/2.0/ticket`. Ticket ids in it
    /// went through `path_segment`.
    pub path: String,
    /// Encoded by `send` (form encoding: a space becomes `+`).
    pub query: Vec<(String, String)>,
    /// Headers other than credentials (those are the `Api`'s).
    pub headers: Vec<(String, String)>,
    /// JSON, sent with `Content-Type: application/json`.
    pub body: Option<Vec<u8>>,
}

impl ApiRequest {
    pub fn new(method: Method, path: impl Into<String>) -> ApiRequest {
        ApiRequest { method, path: path.into(), query: Vec::new(), headers: Vec::new(), body: None }
    }

    pub fn get(path: impl Into<String>) -> ApiRequest {
        ApiRequest::new(Method::GET, path)
    }

    pub fn post(path: impl Into<String>, body: &Value) -> ApiRequest {
        ApiRequest::new(Method::POST, path).json(body)
    }

    pub fn put(path: impl Into<String>, body: &Value) -> ApiRequest {
        ApiRequest::new(Method::PUT, path).json(body)
    }

    pub fn patch(path: impl Into<String>, body: &Value) -> ApiRequest {
        ApiRequest::new(Method::PATCH, path).json(body)
    }

    pub fn json(mut self, body: &Value) -> ApiRequest {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> ApiRequest {
        self.query.push((name.to_string(), value.into()));
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> ApiRequest {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The body parsed back, for tests of the builders.
    #[cfg(test)]
    pub fn body_json(&self) -> Value {
        serde_json::from_slice(self.body.as_deref().unwrap_or(b"null")).expect("request bodies are JSON")
    }
}

/// A sink's API endpoint: base URL, credentials and the shared client.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    auth: Auth,
    /// Secrets that are not credentials (an HMAC key) but must not leak
    /// into error messages either.
    also_redacted: Vec<Secret>,
}

impl Api {
    /// `base` must be an http(s) URL without credentials in it (they would
    /// end up in error messages); its trailing `/` is dropped so paths can
    /// start with one.
    pub fn new(http: reqwest::Client, base: &str, auth: Auth) -> Result<Api, SinkError> {
        let url = reqwest::Url::parse(base).map_err(|e| SinkError::permanent(format!("url {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SinkError::permanent(format!("url {base:?}: the scheme must be http or https")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(SinkError::permanent("url: credentials in the URL are refused; put them in the sink's *_file settings"));
        }
        if let Auth::Headers(headers) = &auth {
            for h in headers {
                h.value()?;
            }
        }
        Ok(Api { http, base: base.trim_end_matches('/').to_string(), auth, also_redacted: Vec::new() })
    }

    /// Also cuts `secret` out of error messages.
    pub fn redacting(mut self, secret: Secret) -> Api {
        self.also_redacted.push(secret);
        self
    }

    /// The same endpoint with other credentials (a GLPI session); the
    /// current ones stay redacted.
    pub fn with_auth(&self, auth: Auth) -> Api {
        let mut also_redacted = self.also_redacted.clone();
        also_redacted.extend(self.auth.secrets().into_iter().map(|s| Secret::new(s.to_string())));
        Api { http: self.http.clone(), base: self.base.clone(), auth, also_redacted }
    }

    /// Sends `request`; the answer's body on 2xx, else the classified error
    /// of `send`, with every secret of this endpoint cut out.
    pub async fn send(&self, what: &str, request: &ApiRequest) -> Result<Vec<u8>, SinkError> {
        let built = self.build(request)?;
        match send(what, built).await {
            Ok((_, body)) => Ok(body),
            Err(e) => Err(self.redact(e)),
        }
    }

    /// `send`, then the answer parsed as JSON (an empty answer is `null`).
    pub async fn send_json(&self, what: &str, request: &ApiRequest) -> Result<Value, SinkError> {
        let body = self.send(what, request).await?;
        parse_json(what, &body).map_err(|e| self.redact(e))
    }

    fn build(&self, request: &ApiRequest) -> Result<reqwest::RequestBuilder, SinkError> {
        let mut builder = self
            .http
            .request(request.method.clone(), format!("{}{}", self.base, request.path))
            .header(reqwest::header::ACCEPT, "application/json");
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| SinkError::permanent(format!("header {name:?}: {e}")))?;
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
        }
        self.auth.apply(builder)
    }

    fn redact(&self, mut e: SinkError) -> SinkError {
        for secret in self.auth.secrets().into_iter().chain(self.also_redacted.iter().map(Secret::expose)) {
            e.message = e.message.replace(secret, "***");
        }
        e
    }
}

/// A 2xx answer that is not the JSON the API documents is a proxy's login
/// page or a wrong URL: permanent, since retrying will not change it.
pub fn parse_json(what: &str, body: &[u8]) -> Result<Value, SinkError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|e| {
        let excerpt: String = String::from_utf8_lossy(body).chars().take(200).collect();
        SinkError::permanent(format!("{what}: the answer is not JSON ({e}): {}", excerpt.trim()))
    })
}

/// An id as APIs spell them: `"42"`, `42` or `"OPS-7"`.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The id at `pointer` in an answer, or a permanent error saying the
/// answer lacks it (the API is not the one configured, or changed).
pub fn required_id(what: &str, answer: &Value, pointer: &str) -> Result<String, SinkError> {
    answer.pointer(pointer).and_then(id_text).ok_or_else(|| {
        let excerpt: String = answer.to_string().chars().take(200).collect();
        SinkError::permanent(format!("{what}: the answer has no id at {pointer}: {excerpt}"))
    })
}

/// For APIs that take a ticket id as a JSON number (GLPI, Zammad).
pub fn numeric_id(system: &str, ticket: &str) -> Result<u64, SinkError> {
    ticket.parse().map_err(|_| SinkError::permanent(format!("{system} ticket id {ticket:?} is not a number")))
}

/// Resolution for systems where a finished ticket must be left alone (some
/// refuse any update once closed; none should reopen what a human closed):
/// reads the ticket with `show` and sends `resolve` only when `finished`
/// says it is not finished yet. Also makes a retried resolution a no-op.
pub async fn resolve_once(
    api: &Api,
    what: &str,
    show: &ApiRequest,
    finished: fn(&Value) -> bool,
    resolve: &ApiRequest,
) -> Result<(), SinkError> {
    if finished(&api.send_json(what, show).await?) {
        return Ok(());
    }
    api.send(what, resolve).await.map(drop)
}

/// A ticket id from the ledger, checked before it goes into a URL path: ids
/// of every supported system are letters, digits, `-`, `_` and `.`; anything
/// else (a `/`, a `?`) would change which resource the request reaches.
pub fn path_segment(id: &str) -> Result<&str, SinkError> {
    let valid =
        !id.is_empty() && id != "." && id != ".." && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid { Ok(id) } else { Err(SinkError::permanent(format!("ticket id {id:?} is not a valid id"))) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::notify::test_server::{Reply, TestServer, assert_error_classes};

    fn http() -> reqwest::Client {
        client(Duration::from_secs(5), None).expect("a client without extra CA builds")
    }

    fn token_auth(token: &str) -> Auth {
        Auth::Headers(vec![SecretHeader::new("Authorization", "token ", Secret::from(token))])
    }

    #[tokio::test]
    async fn send_builds_the_request_and_returns_the_answer() {
        let server = TestServer::start(vec![Reply::json(201, json!({"id": "7"}))]).await;
        let api = Api::new(http(), &format!("{}/base/", server.url()), token_auth("s3cret")).expect("valid base");
        let request = ApiRequest::post("/thing", &json!({"a": 1})).query("q", "a b&c").header("X-Extra", "1");
        let answer = api.send_json("test", &request).await.expect("201 is success");
        assert_eq!(answer, json!({"id": "7"}));

        let seen = &server.requests()[0];
        assert_eq!(seen.method, "POST");
        assert_eq!(seen.path(), "/base/thing");
        assert_eq!(seen.query(), vec![("q".to_string(), "a b&c".to_string())]);
        assert_eq!(seen.header("authorization"), Some("token s3cret"));
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert_eq!(seen.header("accept"), Some("application/json"));
        assert_eq!(seen.header("x-extra"), Some("1"));
        assert_eq!(seen.json(), json!({"a": 1}));
    }

    #[tokio::test]
    async fn statuses_are_classified_and_secrets_redacted() {
        assert_error_classes("s3cret", |url| async move {
            let api = Api::new(http(), &url, token_auth("s3cret"))?;
            api.send("test", &ApiRequest::get("/")).await
        })
        .await;
        for (status, retryable) in [(408, true), (503, true), (400, false), (422, false)] {
            let server = TestServer::start(vec![Reply::empty(status)]).await;
            let api = Api::new(http(), server.url(), Auth::None).expect("valid base");
            let err = api.send("test", &ApiRequest::get("/")).await.expect_err("error status");
            assert_eq!(err.retryable, retryable, "HTTP {status}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_retryable() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let api = Api::new(http(), &format!("http://127.0.0.1:{port}"), Auth::None).expect("valid base");
        let err = api.send("test", &ApiRequest::get("/")).await.expect_err("nothing listens");
        assert!(err.retryable, "{err}");
    }

    #[tokio::test]
    async fn a_success_that_is_not_json_is_permanent() {
        let server = TestServer::start(vec![Reply::text(200, "<html>login</html>"), Reply::empty(204)]).await;
        let api = Api::new(http(), server.url(), Auth::None).expect("valid base");
        let err = api.send_json("test", &ApiRequest::get("/")).await.expect_err("HTML is not JSON");
        assert!(!err.retryable, "{err}");
        assert_eq!(api.send_json("test", &ApiRequest::get("/")).await, Ok(Value::Null));
    }

    #[test]
    fn base_urls_with_credentials_or_other_schemes_are_refused() {
        assert!(Api::new(http(), "https://user:pw@example.test", Auth::None).unwrap_err().message.contains("credentials"));
        assert!(Api::new(http(), "ftp://example.test", Auth::None).is_err());
        assert!(Api::new(http(), "not a url", Auth::None).is_err());
        assert!(Api::new(http(), "http://example.test", token_auth("bad\nvalue")).is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let api = Api::new(http(), "http://example.test", token_auth("s3cret")).expect("valid base");
        let basic = Auth::Basic { username: "u".into(), password: Secret::from("pa55") };
        assert!(!format!("{api:?}{basic:?}").contains("s3cret"));
        assert!(!format!("{basic:?}").contains("pa55"));
    }

    #[test]
    fn ids_are_read_as_text_and_checked_before_paths() {
        assert_eq!(id_text(&json!("12")), Some("12".into()));
        assert_eq!(id_text(&json!(12)), Some("12".into()));
        assert_eq!(id_text(&json!("")), None);
        assert_eq!(id_text(&json!(null)), None);
        assert_eq!(required_id("t", &json!({"ticket": {"id": 5}}), "/ticket/id"), Ok("5".into()));
        assert!(!required_id("t", &json!({}), "/id").unwrap_err().retryable);
        assert_eq!(path_segment("OPS-12"), Ok("OPS-12"));
        for bad in ["", "..", "1/comment", "1?x", "a b"] {
            assert!(path_segment(bad).is_err(), "{bad:?}");
        }
    }
}
