//! A recording HTTP receiver for sink tests: it stores every request
//! (method, path, headers, body) and answers a status the test sets. It can
//! be stopped and started again on the same port, to play a sink that is
//! down for a while. Plain std threads: one per connection, HTTP/1.1 with
//! Content-Length bodies (what the collector's HTTP client sends).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// The status the recorder answered.
    pub status: u16,
    /// When the request was read (for backoff checks).
    pub at: std::time::Instant,
}

impl Recorded {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub struct Recorder {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    status: Arc<AtomicU16>,
    /// Milliseconds to wait before answering (a slow sink).
    delay_ms: Arc<AtomicU64>,
    running: Option<Arc<AtomicBool>>,
}

impl Recorder {
    /// Listens on a free loopback port.
    pub fn start() -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut r = Recorder {
            addr: listener.local_addr().expect("addr"),
            requests: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::default(),
            running: None,
        };
        r.serve(listener);
        r
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The status every request gets from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// From now on every answer is sent `delay` after the request was
    /// read: a slow sink (the pause is the peer's behaviour, not a test's
    /// synchronisation).
    pub fn answer_after(&self, delay: Duration) {
        self.delay_ms.store(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Every request received, in arrival order (also those answered with
    /// an error status).
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    /// Stops accepting: connections are refused until `resume`.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.store(false, Ordering::SeqCst);
            // Unblock accept() so the listener is dropped now.
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        }
        // Wait until the port refuses connections.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
            assert!(std::time::Instant::now() < deadline, "the recorder's port still accepts connections");
            std::thread::yield_now();
        }
    }

    /// Listens again on the same port.
    pub fn resume(&mut self) {
        let listener = TcpListener::bind(self.addr).expect("re-binding the recorder's port");
        self.serve(listener);
    }

    fn serve(&mut self, listener: TcpListener) {
        let running = Arc::new(AtomicBool::new(true));
        self.running = Some(Arc::clone(&running));
        let (requests, status, delay) = (Arc::clone(&self.requests), Arc::clone(&self.status), Arc::clone(&self.delay_ms));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if !running.load(Ordering::SeqCst) {
                    break; // drops the listener: the port refuses from now on
                }
                let Ok(stream) = stream else { continue };
                let (requests, status, running, delay) =
                    (Arc::clone(&requests), Arc::clone(&status), Arc::clone(&running), Arc::clone(&delay));
                std::thread::spawn(move || handle(stream, &requests, &status, &running, &delay));
            }
        });
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.store(false, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        }
    }
}

fn handle(stream: TcpStream, requests: &Mutex<Vec<Recorded>>, status: &AtomicU16, running: &AtomicBool, delay_ms: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || !running.load(Ordering::SeqCst) {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let code = status.load(Ordering::SeqCst);
        let at = std::time::Instant::now();
        requests.lock().expect("lock").push(Recorded { method, path, headers, body, status: code, at });
        let delay = delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let response = format!("HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{{}}");
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
