//! A recording HTTP/1.1 server for the sink clients' tests: it listens on
//! 127.0.0.1 on a free port, records every request (method, path and
//! query, headers, body) and answers with scripted replies, in order. A
//! request beyond the script gets a 500 naming it, so the test fails loudly.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;

use super::SinkError;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, content_type: "application/json", body: body.to_string() }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Reply {
        Reply { status, content_type: "text/plain", body: body.into() }
    }

    pub fn empty(status: u16) -> Reply {
        Reply::text(status, "")
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Path and query, still percent-encoded: `/REST/2.0/tickets?query=...`.
    pub target: String,
    /// Names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The query decoded, in order.
    pub fn query(&self) -> Vec<(String, String)> {
        let url = reqwest::Url::parse(&format!("http://test{}", self.target)).expect("request targets are valid URLs");
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the recorded body is JSON")
    }

    /// `"POST /path?query"`, for compact assertions on a whole exchange.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    recorded: Vec<Recorded>,
}

/// Stops accepting connections when dropped.
pub struct TestServer {
    url: String,
    state: Arc<Mutex<State>>,
    accept: tokio::task::JoinHandle<()>,
}

impl TestServer {
    pub async fn start(script: Vec<Reply>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("a bound listener has an address"));
        let state = Arc::new(Mutex::new(State { script: script.into(), recorded: Vec::new() }));
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        TestServer { url, state, accept }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("the test server never panics holding the lock").recorded.clone()
    }

    /// The requests as `"METHOD target"` lines.
    pub fn lines(&self) -> Vec<String> {
        self.requests().iter().map(Recorded::line).collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| answer(state.clone(), request));
            // A client hanging up mid-request is the test's business, not ours.
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(state: Arc<Mutex<State>>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes().to_vec()).unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        target: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect(),
        body,
    };
    let line = recorded.line();
    let reply = {
        let mut state = state.lock().expect("the test server never panics holding the lock");
        state.recorded.push(recorded);
        state.script.pop_front()
    };
    let reply = reply.unwrap_or_else(|| Reply::text(500, format!("test server: no scripted reply for {line}")));
    let response = Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .expect("scripted replies have valid statuses");
    Ok(response)
}

/// Runs `call` against servers answering 500, 429 (retryable) and 401, 403,
/// 404 (permanent), each answer echoing `secret` the way a careless server
/// might, and checks the classification and that the secret never reaches
/// the error message.
pub async fn assert_error_classes<F, Fut, T>(secret: &str, call: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, SinkError>>,
    T: std::fmt::Debug,
{
    for (status, retryable) in [(500, true), (429, true), (401, false), (403, false), (404, false)] {
        let server = TestServer::start(vec![Reply::text(status, format!("refused credentials {secret}"))]).await;
        let err = call(server.url().to_string()).await.expect_err("an error status is an error");
        assert_eq!(err.retryable, retryable, "HTTP {status}: {err}");
        assert!(err.message.contains(&status.to_string()), "HTTP {status}: the message names the status: {err}");
        assert!(!err.message.contains(secret), "HTTP {status}: the secret leaked into {err}");
    }
}

/// Fixtures the ticketing clients' tests share.
pub mod fixtures {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use crate::alert::rules::Severity;
    use crate::notify::{TicketDraft, TicketNote};

    pub const MARKER: &str = "census-0123456789ab";

    pub fn draft() -> TicketDraft {
        TicketDraft {
            marker: MARKER.into(),
            subject: "[FIRING] DiskFull on web1".into(),
            body: "/var is 97% full\nrunbook: https://runbooks.example/disk".into(),
            severity: Severity::Critical,
            labels: BTreeMap::from([("team".to_string(), "ops".to_string())]),
        }
    }

    pub fn note() -> TicketNote {
        TicketNote { body: "resolved at 16:10".into() }
    }

    pub fn http() -> reqwest::Client {
        crate::notify::http::client(Duration::from_secs(5), None).expect("a client without extra CA builds")
    }

    /// Writes a secret file (with the trailing newline editors add).
    pub fn secret_file(dir: &Path, name: &str, secret: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("{secret}\n")).expect("writing a secret file in a temp dir");
        path
    }
}
