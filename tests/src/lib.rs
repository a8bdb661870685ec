//! End-to-end harness: real binaries, real TLS, loopback, one temp dir per
//! test.
//!
//! - `binary(name)` finds the workspace binaries next to the test
//!   executable, building them once with cargo if needed (a test crate
//!   cannot see another package's `CARGO_BIN_EXE_*`).
//! - `Proc` wraps a child process: it is killed on drop, and its stdout and
//!   stderr are captured line by line so tests can wait for a line and
//!   failures can print everything.
//! - `eventually` polls a condition until a deadline (patience from
//!   `CENSUS_TEST_PATIENCE_SECS`, default 60): no sleeps as synchronisation.
//! - `sim`: simulated hosts enrolling and reporting in-process over the
//!   real agent API, for fleet-sized tests; `recorder`: a recording HTTP
//!   receiver standing in for webhook-style sinks; `peers` runs the real
//!   systems the notification sinks talk to (SMTP, Alertmanager, Request
//!   Tracker), each in its own temp dir.

#![allow(clippy::unwrap_used)] // a test harness fails loudly by design

pub mod peers;
pub mod recorder;
pub mod sim;
pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long `eventually` waits.
pub fn patience() -> Duration {
    let secs = std::env::var("CENSUS_TEST_PATIENCE_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    Duration::from_secs(secs)
}

/// Polls `check` until it returns Some, or panics with `what` after the patience.
pub fn eventually<T>(what: &str, check: impl FnMut() -> Option<T>) -> T {
    within(patience(), check).unwrap_or_else(|| panic!("timed out after {:?} waiting for: {what}", patience()))
}

/// Polls `check` until it returns Some, or None after `limit`.
pub fn within<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// Path of a workspace binary (census-agent, census-collector, census).
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    let dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    BUILT.get_or_init(|| {
        // Build (or confirm up to date) the real binaries with the same
        // profile as this test; cargo is a no-op when they are current.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bins", "-p", "census-agent", "-p", "census-collector"]);
        // cargo gives this test process the variables of the package under
        // test (CARGO_MANIFEST_DIR, CARGO_PKG_*, ...). Passed on, they make
        // build scripts that watch them (ring's, through cc) rerun, so the
        // nested build and the next `cargo test` would rebuild ring,
        // rustls and tonic in turn. The nested cargo sees the caller's
        // environment instead.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            let per_package = key == "CARGO_MANIFEST_DIR"
                || key == "CARGO_MANIFEST_PATH"
                || key == "CARGO_PRIMARY_PACKAGE"
                || key == "CARGO_CRATE_NAME"
                || key == "CARGO_TARGET_TMPDIR"
                || key.starts_with("CARGO_PKG_");
            if per_package {
                cmd.env_remove(key.as_ref());
            }
        }
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build for the e2e binaries");
        assert!(status.success(), "cargo build of the binaries failed");
    });
    let path = dir.join(name);
    assert!(path.exists(), "{} does not exist", path.display());
    path
}

/// A blocking HTTPS client (the collector's HTTP API) trusting only the
/// CA in the PEM file `ca`, with rustls' safe default protocol versions.
/// A fresh connection per request: the collector closes a keep-alive
/// connection that sends no request for 30 s (its header-read timeout), and
/// ureq does not always retry a request that meets such a closed pooled
/// connection ("Unexpected EOF" in a slow test run).
pub fn https_client(ca: &Path) -> ureq::Agent {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots.add(cert.expect("CA certificate")).expect("a usable CA");
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new().tls_config(Arc::new(tls)).max_idle_connections(0).build()
}

/// A free loopback port (bound then released: good enough on a test box).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A spawned process, killed on drop, with captured output.
pub struct Proc {
    pub name: String,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn capture(stream: impl std::io::Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
}

impl Proc {
    pub fn spawn(name: &str, mut cmd: Command) -> Proc {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if !cmd.get_envs().any(|(key, _)| key == "RUST_LOG") {
            cmd.env("RUST_LOG", "info");
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        capture(child.stdout.take().unwrap(), Arc::clone(&stdout));
        capture(child.stderr.take().unwrap(), Arc::clone(&stderr));
        Proc { name: name.to_string(), child, stdout, stderr }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a stdout line starting with `prefix`; returns the rest.
    pub fn wait_stdout(&mut self, prefix: &str) -> String {
        eventually(&format!("{} to print {prefix:?}", self.name), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status} before printing {prefix:?}\n{}", self.name, self.dump());
            }
            self.stdout().iter().find_map(|l| l.strip_prefix(prefix).map(str::to_string))
        })
    }

    /// Waits for a stderr line containing every one of `needles`.
    pub fn wait_stderr(&self, needles: &[&str]) -> String {
        eventually(&format!("{} to log {needles:?}", self.name), || {
            self.stderr().into_iter().find(|l| needles.iter().all(|n| l.contains(n)))
        })
    }

    /// SIGKILL, like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dump(&self) -> String {
        format!("--- {} stdout\n{}\n--- {} stderr\n{}\n", self.name, self.stdout().join("\n"), self.name, self.stderr().join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.dump());
        }
    }
}

/// What `census-collector init --json` printed.
#[derive(Debug, Clone)]
pub struct Init {
    pub data_dir: PathBuf,
    pub ca: PathBuf,
    pub admin_token: String,
    pub enrollment_secret: String,
}

/// A collector data directory plus its running server.
pub struct Collector {
    pub init: Init,
    pub config: PathBuf,
    pub agent_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub proc: Option<Proc>,
}

impl Collector {
    /// `init` in `dir/collector`, then `serve` with fixed free ports (so a
    /// restart keeps them) and `extra_config` appended to the TOML.
    pub fn start(dir: &Path, extra_config: &str) -> Collector {
        let mut c = Collector::prepare(dir, extra_config);
        c.serve();
        c
    }

    /// `start` without `serve`: the data directory and config only, so a
    /// test can run offline commands (`token create`) before serving.
    pub fn prepare(dir: &Path, extra_config: &str) -> Collector {
        let data_dir = dir.join("collector");
        let out = run(Command::new(binary("census-collector"))
            .args(["init", "--json", "--san", "127.0.0.1", "--san", "localhost", "--data-dir"])
            .arg(&data_dir));
        assert!(out.status.success(), "init failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let init = Init {
            data_dir: data_dir.clone(),
            ca: data_dir.join("pki/ca.pem"),
            admin_token: v["admin_token"].as_str().unwrap().to_string(),
            enrollment_secret: v["enrollment_secret"].as_str().unwrap().to_string(),
        };
        let agent_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let admin_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let http_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.join("collector.toml");
        // A TOML table is opened once: the listen address joins a test's
        // own [http_api] table when it has one.
        let http_listen = format!("[http_api]\nlisten = \"{http_addr}\"\n");
        let (extra_config, http_table) = match extra_config.contains("[http_api]\n") {
            true => (extra_config.replacen("[http_api]\n", &http_listen, 1), String::new()),
            false => (extra_config.to_string(), http_listen),
        };
        std::fs::write(
            &config,
            format!(
                "data_dir = {:?}\n{extra_config}\n[agent_api]\nlisten = \"{agent_addr}\"\n[admin_api]\nlisten = \"{admin_addr}\"\n{http_table}",
                data_dir.display().to_string()
            ),
        )
        .unwrap();
        Collector { init, config, agent_addr, admin_addr, http_addr, proc: None }
    }

    /// `census-collector token create --role ROLE` (offline: call it
    /// before `serve`); returns (token, token id).
    pub fn create_token(&self, role: &str) -> (String, String) {
        assert!(self.proc.is_none(), "tokens are created while the collector is stopped");
        let out = run(Command::new(binary("census-collector"))
            .args(["token", "create", "--json", "--name", &format!("e2e {role}"), "--role", role, "--data-dir"])
            .arg(&self.init.data_dir));
        assert!(out.status.success(), "token create failed: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["token"].as_str().unwrap().to_string(), v["id"].as_str().unwrap().to_string())
    }

    /// Kills the running `serve` (SIGKILL, like a crash).
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// This collector's config with another data directory (e.g. a
    /// restored one): same addresses, same settings, same secrets as far
    /// as that data directory holds them. Not serving yet.
    pub fn with_data_dir(&self, data_dir: &Path, config: &Path) -> Collector {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let old = format!("data_dir = {:?}\n", self.init.data_dir.display().to_string());
        assert!(text.contains(&old), "the harness wrote {old:?} into {}", self.config.display());
        std::fs::write(config, text.replacen(&old, &format!("data_dir = {:?}\n", data_dir.display().to_string()), 1)).unwrap();
        let init = Init { data_dir: data_dir.to_path_buf(), ca: data_dir.join("pki/ca.pem"), ..self.init.clone() };
        Collector {
            init,
            config: config.to_path_buf(),
            agent_addr: self.agent_addr,
            admin_addr: self.admin_addr,
            http_addr: self.http_addr,
            proc: None,
        }
    }

    /// (Re)starts `serve` and waits for `ready`.
    pub fn serve(&mut self) {
        self.serve_logging("info");
    }

    /// `serve` with `RUST_LOG` set to `filter`.
    pub fn serve_logging(&mut self, filter: &str) {
        let mut cmd = Command::new(binary("census-collector"));
        cmd.arg("serve").arg("--config").arg(&self.config).env("RUST_LOG", filter);
        let mut p = Proc::spawn("census-collector", cmd);
        let agent = p.wait_stdout("agent api listening on ");
        assert_eq!(agent, self.agent_addr.to_string());
        let http = p.wait_stdout("http api listening on ");
        assert_eq!(http, self.http_addr.to_string());
        p.wait_stdout("ready");
        self.proc = Some(p);
    }

    pub fn agent_url(&self) -> String {
        format!("https://{}", self.agent_addr)
    }

    pub fn admin_url(&self) -> String {
        format!("https://{}", self.admin_addr)
    }

    /// Base URL of the HTTP API and /metrics (TLS with the collector's CA).
    pub fn http_url(&self) -> String {
        format!("https://{}", self.http_addr)
    }

    /// Runs the `census` CLI against this collector with its admin token.
    pub fn census(&self, args: &[&str]) -> Output {
        self.census_with_token(Some(&self.init.admin_token), args)
    }

    pub fn census_with_token(&self, token: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(binary("census"));
        cmd.arg("--server").arg(self.admin_url()).arg("--ca").arg(&self.init.ca).args(args);
        cmd.env_remove("CENSUS_TOKEN").env("CENSUS_CLI_CONFIG", "/nonexistent-census-cli.toml");
        if let Some(t) = token {
            cmd.arg("--token").arg(t);
        }
        // CENSUS_CLI_CONFIG pointing nowhere would be an error; use an empty file instead.
        let empty = std::env::temp_dir().join("census-empty-cli.toml");
        let _ = std::fs::write(&empty, "");
        cmd.env("CENSUS_CLI_CONFIG", &empty);
        run(&mut cmd)
    }

    /// `census hosts --output json`, parsed.
    pub fn hosts(&self) -> Vec<serde_json::Value> {
        let out = self.census(&["hosts", "--output", "json"]);
        assert!(out.status.success(), "census hosts failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().clone()
    }
}

/// An enrolled agent's state dir and its running process.
pub struct Agent {
    pub state_dir: PathBuf,
    pub proc: Option<Proc>,
}

impl Agent {
    /// `census-agent enroll` into `dir/agent-state`; returns the command output.
    pub fn enroll(dir: &Path, server: &str, ca: &Path, secret: &str) -> (Agent, Output) {
        let state_dir = dir.join("agent-state");
        let out = run(Command::new(binary("census-agent"))
            .arg("--state-dir")
            .arg(&state_dir)
            .args(["enroll", "--server", server, "--ca"])
            .arg(ca)
            .args(["--secret", secret]));
        (Agent { state_dir, proc: None }, out)
    }

    /// Starts `census-agent run` with short intervals for tests.
    pub fn run(&mut self, extra: &[&str]) {
        self.run_logging(extra, "info");
    }

    /// `run` with `RUST_LOG` set to `filter`.
    pub fn run_logging(&mut self, extra: &[&str], filter: &str) {
        let mut cmd = Command::new(binary("census-agent"));
        cmd.arg("--state-dir").arg(&self.state_dir).args(["run", "--backoff-max", "2s"]).args(extra).env("RUST_LOG", filter);
        self.proc = Some(Proc::spawn("census-agent", cmd));
    }

    pub fn proc(&self) -> &Proc {
        self.proc.as_ref().unwrap()
    }
}

/// The certificate (DER) a TLS server at `addr` presents to a new
/// connection, checked against the CA in `ca` (PEM) for the name
/// "localhost".
pub fn served_certificate(addr: SocketAddr, ca: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls::pki_types::CertificateDer::from_pem_file(ca).unwrap()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap_or_else(|e| panic!("TLS handshake with {addr}: {e}"));
    }
    conn.peer_certificates().unwrap()[0].as_ref().to_vec()
}

/// The first certificate of a PEM file, DER.
pub fn pem_certificate(path: &Path) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_file(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())).as_ref().to_vec()
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
