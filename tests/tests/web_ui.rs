//! The web dashboard in a real headless Chromium (Debian's chromium and
//! chromedriver), against a collector with this machine's real agent and
//! three simulated hosts: sign in, the fleet overview, the host list with
//! a filter (the rows are exactly the hosts the filter names), a wrong
//! filter's caret error, sorting, a host's charts and software, the
//! outbox, and acknowledging an alert: refused to a viewer (the button is
//! disabled, and forced anyway the server's 403 is shown), done by an
//! operator, who also silences it and expires the silence. Each page is
//! saved as a PNG under `$CARGO_TARGET_DIR/screenshots/` (or
//! `target/screenshots/`), and the browser console holds no error but the
//! HTTP refusals the test provokes.

use std::path::{Path, PathBuf};
use std::process::Command;

use census_tests::recorder::Recorder;
use census_tests::sim::Enroller;
use census_tests::webdriver::{Browser, spki_sha256};
use census_tests::{Agent, Collector, served_certificate, text};
use serde_json::json;

const RULE: &str = "e2e-web-absent-package";
const SIM_HOSTS: [&str; 3] = ["web-01", "web-02", "db-01"];

fn screenshots_dir() -> PathBuf {
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// A package this machine's agent reports (dpkg's own list).
fn a_dpkg_package() -> String {
    let out = Command::new("dpkg-query").args(["-W", "-f", "${Package}\\n"]).output().expect("dpkg-query");
    assert!(out.status.success(), "dpkg-query: {}", text(&out.stderr));
    text(&out.stdout).lines().find(|l| !l.trim().is_empty()).expect("at least one installed package").trim().to_string()
}

/// Asserts the console holds no error since the last look, but those the
/// step provoked on purpose (`expected`: substrings such as "status of 403").
fn assert_clean_console(browser: &Browser, step: &str, expected: &[&str]) {
    let errors: Vec<(String, String)> = browser
        .console()
        .into_iter()
        .filter(|(level, message)| level == "SEVERE" && !expected.iter().any(|e| message.contains(e)))
        .collect();
    assert!(errors.is_empty(), "{step}: console errors: {errors:#?}");
}

/// The hostnames of the host table's rows, in order.
fn host_rows(browser: &Browser) -> Vec<String> {
    let rows = browser.execute("return [...document.querySelectorAll('#hosts tbody tr')].map(r => r.dataset.host);", json!([]));
    rows.as_array().expect("rows").iter().map(|v| v.as_str().expect("a hostname").to_string()).collect()
}

/// Waits until the page `page` shows `condition` (a JS expression),
/// redrawing it while it does not (what arrives at the collector later
/// shows on the next draw, as after a reload).
fn wait_redrawing(browser: &Browser, page: &str, what: &str, condition: &str) {
    browser.wait_for(
        what,
        &format!(
            "(() => {{ const ready = document.querySelector('main').dataset.ready === {page:?}; \
             if (ready && ({condition})) return true; \
             if (ready) window.dispatchEvent(new HashChangeEvent('hashchange')); return false; }})()"
        ),
    );
}

fn sign_in(browser: &Browser, base: &str, token: &str) {
    browser.goto(&format!("{base}/#/login"));
    browser.wait_page("login");
    browser.type_into("#token", token);
    browser.click("#login-submit");
    browser.wait_page("overview");
}

fn sign_out(browser: &Browser) {
    browser.click("#logout");
    browser.wait_page("login");
    let kept = browser.execute("return sessionStorage.getItem('census.token');", json!([]));
    assert!(kept.is_null(), "signing out forgets the token: {kept}");
}

#[test]
fn dashboard_in_headless_chromium() {
    let dir = tempfile::tempdir().expect("temp dir");
    let shots = screenshots_dir();
    let shot = |browser: &Browser, name: &str| browser.screenshot(&shots.join(name));

    // A rule that fires at once for the real host (a package it lacks),
    // an accepting webhook sink so the outbox has an entry, fast health.
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        format!(
            "[[rule]]\nname = \"{RULE}\"\nseverity = \"critical\"\nfor = \"0s\"\nsummary = \"census-e2e-absent-package is not installed\"\n\
             when = {{ kind = \"software_missing\", package = \"census-e2e-absent-package\" }}\n"
        ),
    )
    .expect("rules");
    let sink = Recorder::start();
    let mut collector = Collector::prepare(
        dir.path(),
        &format!(
            "[agents]\nheartbeat_interval = \"1s\"\n[alerts]\nevaluation_interval = \"200ms\"\nrules_file = {:?}\n\
             [[sink]]\nname = \"helpdesk\"\nkind = \"webhook\"\nurl = \"{}\"\n",
            rules.display().to_string(),
            sink.url("/hook"),
        ),
    );
    let viewer = collector.create_token("viewer").0;
    let operator = collector.create_token("operator").0;
    collector.serve();
    let (mut agent, out) = Agent::enroll(dir.path(), &collector.agent_url(), &collector.init.ca, &collector.init.enrollment_secret);
    assert!(out.status.success(), "enroll: {}", text(&out.stderr));
    let agent_config = dir.path().join("agent.toml");
    std::fs::write(&agent_config, "health_interval = \"1s\"\nhealth_batch_interval = \"1s\"\n").expect("agent config");
    agent.run(&["--config", agent_config.to_str().expect("utf-8 path")]);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let enroller = Enroller::new(&collector);
    for name in SIM_HOSTS {
        runtime.block_on(enroller.enroll(name, "0.1.0"));
    }
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname").trim().to_string();
    let package = a_dpkg_package();

    let base = collector.http_url();
    let spki = spki_sha256(&served_certificate(collector.http_addr, &collector.init.ca));
    let browser = Browser::start(&spki, 1440, 1100);

    // Sign-in page; a wrong token is refused with a message.
    browser.goto(&format!("{base}/"));
    browser.wait_page("login");
    shot(&browser, "web-01-login.png");
    browser.type_into("#token", "census_tok_not-a-token");
    browser.click("#login-submit");
    browser.wait_for("the refusal of a wrong token", "document.querySelector('#login-error .error-box')");
    assert!(browser.text("#login-error").contains("not valid"), "{}", browser.text("#login-error"));
    assert_clean_console(&browser, "login", &["status of 401"]);

    // A viewer sees the alert, but cannot acknowledge it: the button is
    // disabled, and a forced click gets the server's refusal, shown.
    browser.type_into("#token", &viewer);
    browser.click("#login-submit");
    browser.wait_page("overview");
    assert_eq!(browser.text("#role"), "VIEWER", "the role is shown (styled upper case)");
    let ack_button = format!("button[data-action=ack][data-rule={RULE:?}]");
    browser.goto(&format!("{base}/#/alerts"));
    wait_redrawing(&browser, "alerts", "the firing alert", &format!("document.querySelector({ack_button:?})"));
    let disabled = browser.execute(&format!("return document.querySelector({ack_button:?}).disabled;"), json!([]));
    assert_eq!(disabled, json!(true), "a viewer's Acknowledge button is disabled");
    assert!(browser.text("#role-note").contains("operator role"));
    browser.execute(&format!("document.querySelector({ack_button:?}).disabled = false;"), json!([]));
    browser.click(&ack_button);
    browser.type_into("#ack-comment", "viewer tries");
    browser.click("#dialog-confirm");
    browser.wait_for("the server's refusal in the dialog", "document.querySelector('#action-dialog .error-box')");
    let refusal = browser.text("#action-dialog .error-box");
    assert!(refusal.contains("Not allowed") && refusal.contains("needs the operator role"), "{refusal}");
    shot(&browser, "web-02-alerts-viewer-refused.png");
    assert_clean_console(&browser, "viewer acknowledging", &["status of 403"]);
    browser.click("#dialog-cancel");
    sign_out(&browser);

    // The operator: overview with the fleet's numbers.
    sign_in(&browser, &base, &operator);
    let stats = browser.text("#stats");
    assert!(stats.contains("4\nHosts"), "one real and three simulated hosts: {stats}");
    // The distributions come from the collector's fleet summary: this
    // machine's OS (oracle: /etc/os-release) for the real host, "(unknown)"
    // for the three simulated hosts, which sent no inventory.
    let panels = browser.text(".grid");
    let pretty = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())));
    if let Some(pretty) = pretty {
        let shown: String = pretty.chars().take(12).collect();
        assert!(panels.contains(&shown), "the overview names this machine's OS {pretty:?}: {panels}");
    }
    assert!(panels.contains("(unknown)"), "the simulated hosts have no OS: {panels}");
    shot(&browser, "web-03-overview.png");

    // Host list: a filter typed in; the rows are exactly its hosts.
    browser.goto(&format!("{base}/#/hosts"));
    browser.wait_page("hosts");
    let mut all = host_rows(&browser);
    assert_eq!(all.len(), 4, "{all:?}");
    browser.type_into("#filter", "hostname ~ \"web-*\"");
    browser.click("#filter-apply");
    browser.wait_for("the filtered list", "location.hash.includes('filter=') && document.querySelector('main').dataset.ready === 'hosts'");
    assert_eq!(host_rows(&browser), vec!["web-01".to_string(), "web-02".to_string()]);
    shot(&browser, "web-04-hosts-filtered.png");
    // Sorting by hostname, descending: a click on the header.
    browser.click("button.sort[data-sort=hostname]");
    browser
        .wait_for("the descending order", "location.hash.includes('desc=1') && document.querySelector('main').dataset.ready === 'hosts'");
    assert_eq!(host_rows(&browser), vec!["web-02".to_string(), "web-01".to_string()]);
    // A wrong filter: the server's message with its caret.
    browser.type_into("#filter", "os.name = Ubuntu");
    browser.click("#filter-apply");
    browser.wait_for("the filter error", "document.querySelector('#filter-error')");
    let error = browser.text("#filter-error");
    assert!(error.contains("os.name = Ubuntu") && error.contains('^') && error.contains("quoted string"), "{error}");
    shot(&browser, "web-05-filter-error.png");
    assert_clean_console(&browser, "host list", &["status of 400"]);
    browser.click("#filter-clear");
    browser.wait_for("every host again", "document.querySelectorAll('#hosts tbody tr').length === 4");
    all.sort();
    let mut shown = host_rows(&browser);
    shown.sort();
    assert_eq!(shown, all);

    // The real host: charts with data points, its software.
    browser.click(&format!("tr[data-host={hostname:?}] a.host-link"));
    browser.wait_page("host");
    assert_eq!(browser.text("#host-name"), hostname);
    browser.wait_for("the 24 h charts", "document.querySelector('#charts').dataset.ready === '24h'");
    // The last hour at full resolution: wait for a few samples (the agent
    // sends one a second), redrawing until they are there.
    browser.click("button[data-range='1h']");
    browser.wait_for(
        "a CPU chart with several points",
        "(() => { const charts = document.querySelector('#charts'); if (charts.dataset.ready !== '1h') return false; \
         if (Number(document.querySelector('[data-metric=cpu] svg.chart')?.dataset.points) >= 3) return true; \
         document.querySelector(\"button[data-range='1h']\").click(); return false; })()",
    );
    let dots = browser.execute("return document.querySelectorAll('[data-metric=cpu] svg.chart circle.pt').length;", json!([]));
    assert!(dots.as_u64().unwrap_or(0) >= 3, "the chart draws its points: {dots}");
    browser.execute("window.scrollTo(0, 0);", json!([]));
    shot(&browser, "web-06-host.png");
    browser.type_into("#software-search", &package);
    browser.wait_for(
        "the package in the software list",
        &format!("[...document.querySelectorAll('#software tbody tr td:first-child')].some(td => td.textContent === {package:?})"),
    );
    browser.execute("document.getElementById('p-software').scrollIntoView();", json!([]));
    shot(&browser, "web-07-host-software.png");
    // Every inventory section the agent sent is there, by its key.
    let sections = browser.execute("return [...document.querySelectorAll('#inventory details')].map(d => d.dataset.section);", json!([]));
    for key in ["identity", "os", "cpu", "memory", "filesystems", "network", "users", "services"] {
        assert!(sections.as_array().is_some_and(|a| a.contains(&json!(key))), "section {key} in {sections}");
    }
    browser.execute(
        "document.querySelectorAll('#inventory details').forEach(d => d.open = d.dataset.section === 'cpu' || d.dataset.section === 'memory' || d.dataset.section === 'filesystems'); document.getElementById('p-inventory').scrollIntoView();",
        json!([]),
    );
    shot(&browser, "web-08-host-inventory.png");
    assert_clean_console(&browser, "host detail", &[]);

    // The operator acknowledges the alert.
    browser.goto(&format!("{base}/#/alerts"));
    wait_redrawing(&browser, "alerts", "the firing alert", &format!("document.querySelector({ack_button:?})"));
    shot(&browser, "web-09-alerts-operator.png");
    browser.click(&ack_button);
    browser.type_into("#ack-comment", "looking into it");
    browser.click("#dialog-confirm");
    browser.wait_for("the acknowledgement", "document.querySelector('#notice:not([hidden])')");
    assert!(browser.text("#notice").contains("Acknowledged"), "{}", browser.text("#notice"));
    browser.wait_for("the acknowledged row", &format!("document.querySelector('main').dataset.ready === 'alerts' && !document.querySelector({ack_button:?}) && document.querySelector('#alerts').textContent.includes('by ')"));
    shot(&browser, "web-10-alert-acknowledged.png");
    // ... and silences it for an hour, the matchers prefilled, then ends
    // the silence early.
    browser.click(&format!("button[data-action=silence][data-rule={RULE:?}]"));
    let matchers = browser.execute("return document.querySelector('#silence-matchers').value;", json!([]));
    assert_eq!(matchers, json!(format!("alertname={RULE}\nhost={hostname}")));
    browser.type_into("#silence-comment", "maintenance");
    browser.click("#dialog-confirm");
    browser.wait_for(
        "the active silence",
        "document.querySelector('main').dataset.ready === 'alerts' && [...document.querySelectorAll('section[aria-labelledby=p-silences] tbody tr')].some(r => r.textContent.includes('maintenance') && r.textContent.includes('active'))",
    );
    browser.click("section[aria-labelledby=p-silences] tbody tr button");
    browser.wait_for(
        "the expired silence",
        "document.querySelector('main').dataset.ready === 'alerts' && [...document.querySelectorAll('section[aria-labelledby=p-silences] tbody tr')].some(r => r.textContent.includes('maintenance') && r.textContent.includes('expired'))",
    );

    // The outbox holds the firing notification.
    browser.goto(&format!("{base}/#/outbox"));
    wait_redrawing(&browser, "outbox", "the outbox entry", &format!("document.querySelector('#outbox').textContent.includes({RULE:?})"));
    assert!(browser.text("#outbox").contains("helpdesk"));
    shot(&browser, "web-11-outbox.png");
    assert_clean_console(&browser, "operator pages", &[]);
    sign_out(&browser);
    assert_clean_console(&browser, "sign out", &[]);
}

#[test]
fn the_dashboard_is_served_with_strict_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let collector = Collector::start(dir.path(), "");
    let spki = spki_sha256(&served_certificate(collector.http_addr, &collector.init.ca));
    let browser = Browser::start(&spki, 1024, 768);
    let base = collector.http_url();
    browser.goto(&format!("{base}/"));
    browser.wait_page("login");
    // The headers, as the browser received them (same origin fetches).
    let headers = browser.execute(
        "const done = arguments[0]; return Promise.all(['/', '/ui/app.js', '/ui/app.css', '/api/v1/hosts', '/ui/nope.js'].map(async p => { const r = await fetch(p); return [p, r.status, r.headers.get('content-type'), r.headers.get('content-security-policy'), r.headers.get('x-content-type-options'), r.headers.get('cache-control')]; }));",
        json!([]),
    );
    let rows = headers.as_array().expect("rows");
    let row = |p: &str| rows.iter().find(|r| r[0] == p).unwrap_or_else(|| panic!("{p} in {headers}")).clone();
    assert_eq!(row("/")[1], 200);
    assert!(row("/")[2].as_str().is_some_and(|t| t.starts_with("text/html")), "{}", row("/"));
    assert!(row("/ui/app.js")[2].as_str().is_some_and(|t| t.starts_with("text/javascript")), "{}", row("/ui/app.js"));
    assert!(row("/ui/app.css")[2].as_str().is_some_and(|t| t.starts_with("text/css")));
    for p in ["/", "/ui/app.js", "/api/v1/hosts"] {
        let r = row(p);
        assert!(r[3].as_str().is_some_and(|c| c.contains("script-src 'self'") && !c.contains("unsafe")), "{r}");
        assert_eq!(r[4], "nosniff", "{r}");
    }
    assert_eq!(row("/api/v1/hosts")[1], 401, "the API still needs a token");
    assert_eq!(row("/api/v1/hosts")[5], "no-store", "API answers are never cached");
    assert_eq!(row("/ui/nope.js")[1], 404);
    // An inline script is refused by the policy: the page cannot run one.
    let inline = browser.execute(
        "const s = document.createElement('script'); s.textContent = 'window.__inline_ran = true'; document.body.append(s); return window.__inline_ran === true;",
        json!([]),
    );
    assert_eq!(inline, json!(false), "CSP blocks inline script");
    let console = browser.console();
    assert!(console.iter().any(|(_, m)| m.contains("Content Security Policy")), "the blocked inline script is reported: {console:?}");
}
