//! Real peers for end-to-end tests of the notification sinks: an SMTP
//! server (aiosmtpd writing a Maildir), Prometheus Alertmanager and Request
//! Tracker 5, all from the Debian packages `.ci/run` installs.
//!
//! Invariants, for every peer:
//! - it runs in a fresh temp dir, on free ports, bound to 127.0.0.1 only;
//! - it runs in its own process group, and dropping it kills the whole
//!   group (rt-server's Starlet master forks workers that would outlive a
//!   kill of the master alone);
//! - `start` returns only once the peer answers (polled with `eventually`'s
//!   deadline, failing at once if the process exits);
//! - its output goes to log files in the temp dir, printed when the test
//!   panics;
//! - a missing Debian package fails the test with the package's name: a
//!   peer test never skips.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::recorder::Recorder;
use crate::{eventually, free_port, run, text};

/// The interpreter that sees Debian's python3-* modules: a `python3` first
/// on PATH may be a pyenv or venv one that does not.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const RT_LIB: &str = "/usr/share/request-tracker5/lib";
const RT_SERVER: &str = "/usr/share/request-tracker5/libexec/rt-server";
const RT_SETUP_DATABASE: &str = "/usr/sbin/rt-setup-database-5";

/// Fails the test, naming the Debian package, when `present` is false.
fn require(present: bool, what: &str, package: &str) {
    assert!(
        present,
        "{what} is missing: `.ci/run` installs {package} (by hand: apt-get install {package}); peer tests fail rather than skip"
    );
}

/// A peer's temp dir. Declared after the peer's daemons so they are killed
/// before it is listed and removed.
struct Workdir(tempfile::TempDir);

impl Workdir {
    fn new(peer: &str) -> Workdir {
        Workdir(tempfile::Builder::new().prefix(&format!("census-peer-{peer}-")).tempdir().expect("creating a peer temp dir"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let names: Vec<String> = std::fs::read_dir(self.path())
                .map(|entries| entries.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
                .unwrap_or_default();
            eprintln!("--- peer dir {}: {}", self.path().display(), names.join(" "));
        }
    }
}

/// A server process in its own process group, stdout and stderr in a log
/// file; the group is killed on drop.
pub struct Daemon {
    name: String,
    command: String,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Daemon {
        let out = File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
        let err = out.try_clone().expect("cloning a log file handle");
        // process_group(0): the child leads a new group, so Drop can kill
        // it and every worker it forks, and a Ctrl-C aimed at the test
        // runner's group does not reach it half-way through a test.
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).process_group(0);
        let command = format!("{cmd:?}");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("starting {name} ({command}): {e}"));
        Daemon { name: name.to_string(), command, child, log }
    }

    /// Panics with the log when the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited with {status}\n{}", self.name, self.report());
        }
    }

    /// Polls `ready` until it holds; fails at once if the process exits.
    fn wait_ready(&mut self, mut ready: impl FnMut() -> bool) {
        let what = format!("{} to answer", self.name);
        eventually(&what, || {
            self.assert_running();
            ready().then_some(())
        });
    }

    pub fn report(&self) -> String {
        let log = std::fs::read(&self.log).map(|b| text(&b)).unwrap_or_else(|e| format!("(no log: {e})"));
        format!("--- {} ({})\n--- log {}\n{log}", self.name, self.command, self.log.display())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("{}", self.report());
        }
    }
}

/// An HTTP client for the peers' APIs: short timeouts, loopback only.
fn http() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build()
}

/// The JSON answer of a request, or a panic naming the request, the status
/// and the answer's text.
fn json(what: &str, result: Result<ureq::Response, ureq::Error>) -> Value {
    match result {
        Ok(response) => response.into_json().unwrap_or_else(|e| panic!("{what}: the answer is not JSON: {e}")),
        Err(ureq::Error::Status(code, response)) => {
            panic!("{what}: HTTP {code}: {}", response.into_string().unwrap_or_default())
        }
        Err(e) => panic!("{what}: {e}"),
    }
}

// --- SMTP ------------------------------------------------------------------

/// A certificate and its key, PEM, for a TLS-speaking SMTP peer.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_pem: String,
    pub key_pem: String,
}

/// How to run the SMTP peer; `Default` is plain SMTP into a Maildir.
#[derive(Debug, Clone, Default)]
pub struct SmtpOptions {
    /// Offer STARTTLS with this identity; aiosmtpd then refuses mail
    /// before STARTTLS (530).
    pub starttls: Option<TlsIdentity>,
    /// Speak implicit TLS (SMTPS) with this identity.
    pub smtps: Option<TlsIdentity>,
    /// Refuse messages larger than this (552, a permanent failure).
    pub max_message_bytes: Option<usize>,
    /// Answer every DATA with this reply (e.g. "451 4.3.0 try again later")
    /// instead of storing the message.
    pub data_reply: Option<String>,
}

/// aiosmtpd on a free loopback port, storing every message it accepts in
/// a Maildir with the envelope in `X-MailFrom` / `X-RcptTo` / `X-Peer`.
pub struct Smtp {
    daemon: Daemon,
    pub port: u16,
    maildir: PathBuf,
    dir: Workdir,
}

/// One stored message. Header names are lowercase; a header that occurs
/// more than once keeps every value, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailMessage {
    pub headers: BTreeMap<String, Vec<String>>,
    pub body: String,
}

impl MailMessage {
    /// The first value of a header (any case), unfolded.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).and_then(|v| v.first()).map(String::as_str)
    }

    /// Parses an RFC 5322 message: headers up to the first empty line
    /// (folded lines joined), the rest as the body, line ends as `\n`.
    pub fn parse(raw: &str) -> MailMessage {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in head.lines() {
            match fields.last_mut() {
                Some((_, value)) if line.starts_with([' ', '\t']) => {
                    value.push(' ');
                    value.push_str(line.trim());
                }
                _ => {
                    if let Some((name, value)) = line.split_once(':') {
                        fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
                    }
                }
            }
        }
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in fields {
            headers.entry(name).or_default().push(value);
        }
        MailMessage { headers, body: body.to_string() }
    }
}

impl Smtp {
    pub fn start() -> Smtp {
        Smtp::start_with(SmtpOptions::default())
    }

    pub fn start_with(options: SmtpOptions) -> Smtp {
        let aiosmtpd =
            Command::new(DEBIAN_PYTHON).args(["-c", "import aiosmtpd.main, aiosmtpd.handlers"]).output().is_ok_and(|o| o.status.success());
        require(aiosmtpd, &format!("aiosmtpd (for {DEBIAN_PYTHON})"), "python3-aiosmtpd");
        let dir = Workdir::new("smtp");
        let maildir = dir.path().join("maildir");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("creating the Maildir");
        }
        let port = free_port();
        let mut cmd = Command::new(DEBIAN_PYTHON);
        // -n: stay the user we are (as root, aiosmtpd would switch to nobody,
        // who cannot write the Maildir).
        cmd.args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")]);
        if let Some(size) = options.max_message_bytes {
            cmd.args(["-s", &size.to_string()]);
        }
        let write_identity = |name: &str, identity: &TlsIdentity| {
            let (cert, key) = (dir.path().join(format!("{name}.crt")), dir.path().join(format!("{name}.key")));
            std::fs::write(&cert, &identity.cert_pem).expect("writing the SMTP certificate");
            std::fs::write(&key, &identity.key_pem).expect("writing the SMTP key");
            (cert, key)
        };
        if let Some(identity) = &options.starttls {
            let (cert, key) = write_identity("starttls", identity);
            cmd.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
        }
        if let Some(identity) = &options.smtps {
            let (cert, key) = write_identity("smtps", identity);
            cmd.arg("--smtpscert").arg(cert).arg("--smtpskey").arg(key);
        }
        match &options.data_reply {
            None => {
                cmd.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(&maildir);
            }
            Some(reply) => {
                let handler = format!(
                    "class Reply:\n    async def handle_DATA(self, server, session, envelope):\n        return {}\n",
                    Value::String(reply.clone())
                );
                std::fs::write(dir.path().join("census_reply.py"), handler).expect("writing the reply handler");
                cmd.args(["-c", "census_reply.Reply"]).env("PYTHONPATH", dir.path());
            }
        }
        let mut daemon = Daemon::spawn("aiosmtpd", cmd, dir.path().join("aiosmtpd.log"));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if options.smtps.is_some() {
            // The greeting comes after the TLS handshake: a listening socket is enough.
            daemon.wait_ready(|| TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok());
        } else {
            daemon.wait_ready(|| smtp_greets(addr));
        }
        Smtp { daemon, port, maildir, dir }
    }

    /// The messages stored so far, oldest first.
    pub fn messages(&self) -> Vec<MailMessage> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(self.maildir.join("new"))
            .expect("reading maildir/new")
            .filter_map(Result::ok)
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
            .collect();
        files.sort();
        files.into_iter().map(|(_, path)| MailMessage::parse(&text(&std::fs::read(&path).expect("reading a stored message")))).collect()
    }

    /// Waits until `count` messages are stored; returns them all.
    pub fn wait_messages(&self, count: usize) -> Vec<MailMessage> {
        eventually(&format!("{count} message(s) in {}", self.maildir.display()), || {
            let messages = self.messages();
            (messages.len() >= count).then_some(messages)
        })
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.daemon.report()
    }
}

/// True when an SMTP server at `addr` sends its 220 greeting.
fn smtp_greets(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut greeting = String::new();
    let greeted = BufReader::new(&stream).read_line(&mut greeting).is_ok() && greeting.starts_with("220");
    let _ = stream.write_all(b"QUIT\r\n");
    greeted
}

// --- Alertmanager ------------------------------------------------------------

/// Prometheus Alertmanager with gossip disabled, routing everything at once
/// (group_wait 0s, group_interval 1s) to a webhook recorded in-process.
///
/// Alertmanager 0.25 never lists a resolved alert: `/api/v2/alerts` (and
/// v1, and the groups) drop every alert whose `endsAt` is past, whatever
/// the filters. A resolution is seen as the alert leaving `alerts()` and as
/// a `"status": "resolved"` webhook notification (`notifications()`).
pub struct Alertmanager {
    daemon: Daemon,
    pub url: String,
    webhook: Recorder,
    dir: Workdir,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        require(Path::new(ALERTMANAGER).exists(), ALERTMANAGER, "prometheus-alertmanager");
        let dir = Workdir::new("alertmanager");
        let webhook = Recorder::start();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                "route:\n  receiver: recorder\n  group_by: ['alertname']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
                 receivers:\n  - name: recorder\n    webhook_configs:\n      - url: 'http://{}/alerts'\n        send_resolved: true\n",
                webhook.addr
            ),
        )
        .expect("writing alertmanager.yml");
        let mut cmd = Command::new(ALERTMANAGER);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // empty: no gossip cluster (it would listen on 0.0.0.0:9094)
            .arg("--cluster.listen-address=")
            // else links in payloads name this machine's hostname
            .arg(format!("--web.external-url={url}"))
            .arg("--log.level=info");
        let mut daemon = Daemon::spawn("prometheus-alertmanager", cmd, dir.path().join("alertmanager.log"));
        let agent = http();
        daemon.wait_ready(|| agent.get(&format!("{url}/-/ready")).call().is_ok());
        Alertmanager { daemon, url, webhook, dir }
    }

    /// Every alert Alertmanager holds that has not ended: active, silenced,
    /// inhibited and not yet processed alike.
    pub fn alerts(&self) -> Vec<Value> {
        let url = format!("{}/api/v2/alerts?active=true&silenced=true&inhibited=true&unprocessed=true", self.url);
        match json("GET /api/v2/alerts", http().get(&url).call()) {
            Value::Array(alerts) => alerts,
            other => panic!("GET /api/v2/alerts: not a list: {other}"),
        }
    }

    /// POSTs alerts (a JSON list) to `/api/v2/alerts`, as a client would.
    pub fn post_alerts(&self, alerts: &Value) {
        let url = format!("{}/api/v2/alerts", self.url);
        if let Err(e) = http().post(&url).send_json(alerts) {
            panic!("POST /api/v2/alerts: {e}\n{}", self.daemon.report());
        }
    }

    /// The webhook notifications Alertmanager sent so far, oldest first
    /// (version 4 payloads: `status`, `alerts[]`, `groupLabels`, ...).
    pub fn notifications(&self) -> Vec<Value> {
        self.webhook.requests().iter().map(|r| serde_json::from_slice(&r.body).unwrap_or_else(|_| Value::String(text(&r.body)))).collect()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

// --- Request Tracker -----------------------------------------------------------

/// Request Tracker 5 (Debian's request-tracker5) with a private SQLite DB,
/// served by `rt-server` (Starlet, 2 workers). REST 2 answers at
/// `{url}/REST/2.0` with `Authorization: token {token}` (or basic auth
/// root:password, RT's initial data). Outgoing mail (auto-replies) is
/// written to `mail/` in the temp dir, never sent.
pub struct RequestTracker {
    daemon: Daemon,
    pub url: String,
    pub token: String,
    dir: Workdir,
}

impl RequestTracker {
    pub fn start() -> RequestTracker {
        require(Path::new(RT_SERVER).exists(), RT_SERVER, "rt5-standalone");
        require(Path::new(RT_SETUP_DATABASE).exists(), RT_SETUP_DATABASE, "request-tracker5");
        let sqlite = Command::new("perl").args(["-MDBD::SQLite", "-e", "1"]).output().is_ok_and(|o| o.status.success());
        require(sqlite, "RT's SQLite driver (perl DBD::SQLite)", "rt5-db-sqlite");
        let dir = Workdir::new("rt");
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        std::fs::create_dir_all(dir.path().join("site.d")).expect("creating site.d");
        std::fs::create_dir_all(dir.path().join("mail")).expect("creating mail/");
        std::fs::write(dir.path().join("RT_SiteConfig.pm"), rt_site_config(dir.path(), port)).expect("writing RT_SiteConfig.pm");
        let rt_env = |cmd: &mut Command| {
            // RT reads RT_SITE_CONFIG, then every *.pm of RT_SITE_CONFIG_DIR:
            // left at its default (/etc/request-tracker5/RT_SiteConfig.d),
            // Debian's dbconfig settings would override our database.
            cmd.env("RT_SITE_CONFIG", dir.path().join("RT_SiteConfig.pm")).env("RT_SITE_CONFIG_DIR", dir.path().join("site.d"));
        };

        let mut setup = Command::new(RT_SETUP_DATABASE);
        setup.args(["--action", "init", "--dba-password", ""]);
        rt_env(&mut setup);
        let out = run(&mut setup);
        std::fs::write(dir.path().join("setup.log"), [&out.stdout[..], &out.stderr[..]].concat()).expect("writing setup.log");
        assert!(out.status.success(), "rt-setup-database-5 --action init failed:\n{}{}", text(&out.stdout), text(&out.stderr));

        let mut token = Command::new("perl");
        token.arg(format!("-I{RT_LIB}")).args(["-e", RT_CREATE_TOKEN]);
        rt_env(&mut token);
        let out = run(&mut token);
        assert!(out.status.success(), "creating an RT auth token failed:\n{}", text(&out.stderr));
        let token = text(&out.stdout).trim().to_string();

        let mut server = Command::new(RT_SERVER);
        server.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--max-workers=2"]);
        rt_env(&mut server);
        let mut daemon = Daemon::spawn("rt-server", server, dir.path().join("rt-server.log"));
        let agent = http();
        let probe = format!("{url}/REST/2.0/queue/General");
        daemon.wait_ready(|| agent.get(&probe).set("Authorization", &format!("token {token}")).call().is_ok());
        RequestTracker { daemon, url, token, dir }
    }

    /// `{url}/REST/2.0`
    pub fn api(&self) -> String {
        format!("{}/REST/2.0", self.url)
    }

    fn get(&self, path_and_query: &str) -> Value {
        let url = format!("{}{path_and_query}", self.api());
        json(&format!("GET {path_and_query}"), http().get(&url).set("Authorization", &format!("token {}", self.token)).call())
    }

    /// Every item of a paged REST 2 collection.
    fn all_items(&self, path: &str, query: &[(&str, &str)]) -> Vec<Value> {
        let mut items = Vec::new();
        for page in 1.. {
            let url = format!("{}{path}", self.api());
            let mut request = http().get(&url).set("Authorization", &format!("token {}", self.token));
            for (k, v) in query {
                request = request.query(k, v);
            }
            let answer = json(&format!("GET {path} page {page}"), request.query("per_page", "100").query("page", &page.to_string()).call());
            let batch = answer["items"].as_array().cloned().unwrap_or_default();
            let done = batch.len() < 100;
            items.extend(batch);
            if done {
                break;
            }
        }
        items
    }

    /// Tickets matching a TicketSQL query (e.g. `Subject LIKE 'census-'`),
    /// with id, Subject, Status, Created and Resolved.
    pub fn tickets(&self, query: &str) -> Vec<Value> {
        self.all_items("/tickets", &[("query", query), ("fields", "Subject,Status,Created,Resolved")])
    }

    /// One ticket as REST 2 shows it (Subject, Status, Queue, Requestor, ...).
    pub fn ticket(&self, id: &str) -> Value {
        self.get(&format!("/ticket/{id}"))
    }

    /// A ticket's transactions, oldest first: id, Type (Create, Comment,
    /// Correspond, Status, ...), Field, OldValue, NewValue, Created, and
    /// Content: the text of the transaction's text/plain parts ("" when it
    /// has none). REST 2 has no Content field on transactions: it comes
    /// from the ticket's attachments.
    pub fn history(&self, id: &str) -> Vec<Value> {
        let mut content: BTreeMap<String, String> = BTreeMap::new();
        for attachment in self.all_items(&format!("/ticket/{id}/attachments"), &[("fields", "TransactionId,ContentType,Content")]) {
            if attachment["ContentType"] == "text/plain" {
                let transaction = value_id(&attachment["TransactionId"]);
                content.entry(transaction).or_default().push_str(attachment["Content"].as_str().unwrap_or(""));
            }
        }
        let mut history = self.all_items(&format!("/ticket/{id}/history"), &[("fields", "Type,Field,OldValue,NewValue,Created")]);
        for transaction in &mut history {
            let text = content.remove(&value_id(&transaction["id"])).unwrap_or_default();
            transaction["Content"] = Value::String(text);
        }
        history
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        self.daemon.report()
    }
}

/// REST 2 gives ids as strings in some places and numbers in others.
fn value_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Creates an auth token for root and prints it (RT::AuthToken, as the web
/// UI would; REST 2 then takes `Authorization: token ...`).
const RT_CREATE_TOKEN: &str = r#"
use RT; RT::LoadConfig(); RT::Init();
my $user = RT::User->new(RT->SystemUser); $user->Load("root") or die "no root user\n";
my $token = RT::AuthToken->new(RT::CurrentUser->new($user));
my ($id, $msg, $secret) = $token->Create(Owner => $user->Id, Description => "census-tests");
die "token: $msg\n" unless $id;
print "$secret\n";
"#;

fn rt_site_config(dir: &Path, port: u16) -> String {
    let dir = dir.display();
    format!(
        r#"Set($rtname, 'census.test');
Set($Organization, 'census.test');
Set($Timezone, 'UTC');
Set($WebDomain, '127.0.0.1');
Set($WebPort, {port});
Set($WebPath, '');
Set($WebBaseURL, 'http://127.0.0.1:{port}');
Set($CanonicalizeRedirectURLs, 0);
Set($DatabaseType, 'SQLite');
Set($DatabaseName, '{dir}/rtdb');
Set($DatabaseUser, '');
Set($DatabasePassword, '');
Set($LogToSyslog, undef);
Set($LogToFile, undef);
Set($LogToSTDERR, 'error');
Set($CorrespondAddress, 'rt@census.test');
Set($CommentAddress, 'rt-comment@census.test');
# Outgoing mail into files of the temp dir: 'mbox' would write under
# /var/lib/request-tracker5 and 'sendmailpipe' would try real delivery.
Set($MailCommand, sub {{
    my ($entity) = @_;
    my $n = 0;
    $n++ while -e "{dir}/mail/$$-$n.eml";
    open(my $fh, '>', "{dir}/mail/$$-$n.eml") or return 0;
    print $fh $entity->stringify;
    close $fh;
    return 1;
}});
1;
"#
    )
}
