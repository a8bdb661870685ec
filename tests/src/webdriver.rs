//! A small W3C WebDriver client driving Debian's headless Chromium through
//! `chromedriver`, over plain HTTP on loopback with the blocking `ureq` the
//! harness already uses (no async browser crate, no download of a browser).
//!
//! The collector's HTTPS certificate is trusted by its public key alone
//! (`--ignore-certificate-errors-spki-list`, which Chromium honours with a
//! `--user-data-dir`): every other certificate error still fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Proc, eventually, free_port};

/// The key of an element reference in WebDriver answers starts with this
/// (the W3C spec names `element-6066-11e4-a23a-4d7c0e3b8f0a`; this
/// chromedriver answers `element-6066-11e4-a52e-4f735466cecf`).
const ELEMENT_PREFIX: &str = "element-6066-11e4-";

/// The id of an element reference.
fn element_id(v: &Value) -> Option<String> {
    v.as_object()?.iter().find(|(k, _)| k.starts_with(ELEMENT_PREFIX)).and_then(|(_, id)| id.as_str()).map(str::to_string)
}

/// A headless Chromium session; closed (and chromedriver killed) on drop.
pub struct Browser {
    http: ureq::Agent,
    session: String,
    _driver: Proc,
    _profile: tempfile::TempDir,
}

/// An error answer of the WebDriver protocol.
#[derive(Debug)]
pub struct WebDriverError {
    pub error: String,
    pub message: String,
}

/// The base64 SHA-256 of the SubjectPublicKeyInfo of a DER certificate,
/// as `--ignore-certificate-errors-spki-list` takes it.
pub fn spki_sha256(der: &[u8]) -> String {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("a DER certificate");
    let digest = Sha256::digest(cert.tbs_certificate.subject_pki.raw);
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// Chromium's own binary (`/usr/bin/chromium` is Debian's wrapper script).
fn chromium_binary() -> PathBuf {
    let real = Path::new("/usr/lib/chromium/chromium");
    if real.exists() { real.to_path_buf() } else { PathBuf::from("/usr/bin/chromium") }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium trusting the certificate
    /// whose SPKI hash is `trusted_spki`, with a `width` x `height` window.
    pub fn start(trusted_spki: &str, width: u32, height: u32) -> Browser {
        let port = free_port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}")).arg("--allowed-ips=127.0.0.1");
        let driver = Proc::spawn("chromedriver", cmd);
        let http = ureq::AgentBuilder::new().timeout(Duration::from_secs(60)).build();
        let base = format!("http://127.0.0.1:{port}");
        eventually("chromedriver to be ready", || {
            let status: Value = http.get(&format!("{base}/status")).call().ok()?.into_json().ok()?;
            status["value"]["ready"].as_bool().filter(|r| *r)
        });
        let profile = tempfile::tempdir().expect("a browser profile dir");
        let args = vec![
            "--headless=new".to_string(),
            // Root in CI: Chromium's sandbox refuses to run as root.
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            // /dev/shm is small in containers; Chromium falls back to /tmp.
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--disable-extensions".into(),
            "--disable-background-networking".into(),
            "--disable-sync".into(),
            "--disable-default-apps".into(),
            "--lang=en-US".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--ignore-certificate-errors-spki-list={trusted_spki}"),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": false,
            "goog:chromeOptions": { "binary": chromium_binary(), "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let answer = send(&http, "POST", &format!("{base}/session"), Some(&capabilities))
            .unwrap_or_else(|e| panic!("starting a Chromium session: {e:?}\n{}", driver.dump()));
        let id = answer["sessionId"].as_str().expect("a session id").to_string();
        Browser { http, session: format!("{base}/session/{id}"), _driver: driver, _profile: profile }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WebDriverError> {
        send(&self.http, method, &format!("{}{path}", self.session), body)
    }

    fn must(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, path, body).unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e:?}"))
    }

    pub fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.must("POST", "/execute/sync", Some(&json!({ "script": script, "args": args })))
    }

    /// Polls `expression` in the page until it is truthy; returns its value.
    pub fn wait_for(&self, what: &str, expression: &str) -> Value {
        let script = format!("return ({expression});");
        eventually(what, || {
            let v = self.call("POST", "/execute/sync", Some(&json!({ "script": script, "args": [] }))).ok()?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                Value::Array(a) => !a.is_empty(),
                Value::Object(_) => true,
            };
            truthy.then_some(v)
        })
    }

    /// Waits for the page's router to have rendered `page` (docs/web-ui.md:
    /// `main[data-ready]`).
    pub fn wait_page(&self, page: &str) {
        self.wait_for(&format!("the {page} page"), &format!("document.querySelector('main').dataset.ready === {page:?}"));
    }

    /// The element `css` matches, waiting for it to exist.
    pub fn find(&self, css: &str) -> String {
        let mut last = None;
        let found = crate::within(crate::patience(), || {
            match self.call("POST", "/element", Some(&json!({ "using": "css selector", "value": css }))) {
                Ok(v) => element_id(&v),
                Err(e) => {
                    last = Some(e);
                    None
                }
            }
        });
        found.unwrap_or_else(|| panic!("no element {css} within {:?}: last answer {last:?}", crate::patience()))
    }

    /// A real click, as a user's (the element must be visible and enabled).
    pub fn click(&self, css: &str) {
        let id = self.find(css);
        self.must("POST", &format!("/element/{id}/click"), Some(&json!({})));
    }

    /// Clears the field `css` and types `text` into it, key by key.
    pub fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css);
        self.must("POST", &format!("/element/{id}/clear"), Some(&json!({})));
        self.must("POST", &format!("/element/{id}/value"), Some(&json!({ "text": text })));
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.must("GET", &format!("/element/{id}/text"), None).as_str().unwrap_or_default().to_string()
    }

    /// Resizes the window (screenshots show the viewport).
    pub fn resize(&self, width: u32, height: u32) {
        self.must("POST", "/window/rect", Some(&json!({ "width": width, "height": height })));
    }

    /// Saves a PNG of the viewport at `path`.
    pub fn screenshot(&self, path: &Path) {
        let encoded = self.must("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(encoded.as_str().expect("base64 text")).expect("base64 PNG");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// The browser console's entries since the last call (chromedriver's
    /// log endpoint, which empties its buffer): `(level, message)`.
    pub fn console(&self) -> Vec<(String, String)> {
        let entries = self.must("POST", "/se/log", Some(&json!({ "type": "browser" })));
        entries
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| (e["level"].as_str().unwrap_or_default().to_string(), e["message"].as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closes Chromium; chromedriver itself is killed by its Proc.
        let _ = send(&self.http, "DELETE", &self.session, None);
    }
}

fn send(http: &ureq::Agent, method: &str, url: &str, body: Option<&Value>) -> Result<Value, WebDriverError> {
    let request = http.request(method, url);
    let result = match body {
        Some(b) => request.send_json(b.clone()),
        None => request.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(WebDriverError { error: "transport".into(), message: e.to_string() }),
    };
    let ok = response.status() < 400;
    let answer: Value = response.into_json().map_err(|e| WebDriverError { error: "bad answer".into(), message: e.to_string() })?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if ok {
        // New Session answers {value: {sessionId, capabilities}}.
        Ok(value)
    } else {
        Err(WebDriverError {
            error: value["error"].as_str().unwrap_or("unknown").to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        })
    }
}
