//! Self-checks of the peer harness (`census_tests::peers`): each peer is
//! started, exercised once the way a sink test will use it, and dropped,
//! and its port must then refuse connections (the process group is gone).
//! When a peer breaks (a package missing, an upgrade changing an API), it
//! shows here first, not as a puzzling failure in a sink test.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime};

use census_tests::eventually;
use census_tests::peers::{Alertmanager, RequestTracker, Smtp};
use serde_json::{Value, json};

/// Waits until nothing listens on `port` any more.
fn wait_port_closed(port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    eventually(&format!("port {port} to refuse connections after drop"), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err().then_some(())
    });
}

/// Speaks SMTP by hand, checking every reply code.
fn send_by_hand(port: u16, from: &str, to: &[&str], message: &str) {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connecting to the SMTP peer");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("setting a read timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("cloning the stream"));
    let mut writer = stream;
    let mut exchange = |send: &str, code: &str| {
        writer.write_all(send.as_bytes()).expect("writing to the SMTP peer");
        // a multi-line reply is "250-..." lines, then "250 ..."
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("reading the SMTP reply");
            assert!(line.starts_with(code), "after {send:?}: expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
    };
    exchange("", "220");
    exchange("EHLO selfcheck.test\r\n", "250");
    exchange(&format!("MAIL FROM:<{from}>\r\n"), "250");
    for rcpt in to {
        exchange(&format!("RCPT TO:<{rcpt}>\r\n"), "250");
    }
    exchange("DATA\r\n", "354");
    exchange(&format!("{}\r\n.\r\n", message.replace('\n', "\r\n")), "250");
    exchange("QUIT\r\n", "221");
}

#[test]
fn smtp_peer_stores_messages_with_their_envelope() {
    let smtp = Smtp::start();
    assert!(smtp.messages().is_empty(), "a fresh Maildir is empty");
    let message = "From: collector@census.test\nTo: oncall@census.test\nSubject: peer self-check\n \
                   folded on a second line\n\nfirst body line\nsecond body line";
    send_by_hand(smtp.port, "collector@census.test", &["oncall@census.test", "audit@census.test"], message);

    let messages = smtp.wait_messages(1);
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.header("Subject"), Some("peer self-check folded on a second line"), "{m:?}");
    assert_eq!(m.header("x-mailfrom"), Some("collector@census.test"), "{m:?}");
    let rcpt: Vec<&str> = m.header("X-RcptTo").unwrap().split(',').map(str::trim).collect();
    assert_eq!(rcpt, ["oncall@census.test", "audit@census.test"], "{m:?}");
    assert!(m.body.contains("first body line\nsecond body line"), "{m:?}");

    let port = smtp.port;
    drop(smtp);
    wait_port_closed(port);
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The alerts of `notifications` with this status and alertname.
fn notified(notifications: &[Value], status: &str, alertname: &str) -> bool {
    notifications
        .iter()
        .any(|n| n["status"] == status && n["alerts"].as_array().into_iter().flatten().any(|a| a["labels"]["alertname"] == alertname))
}

#[test]
fn alertmanager_peer_lists_notifies_and_resolves() {
    let am = Alertmanager::start();
    assert!(am.alerts().is_empty());
    let labels = json!({"alertname": "PeerSelfCheck", "host": "host1", "severity": "critical"});
    am.post_alerts(&json!([{"labels": labels, "annotations": {"summary": "disk full"}, "startsAt": rfc3339(SystemTime::now())}]));

    let listed = eventually("the alert to be listed", || am.alerts().into_iter().find(|a| a["labels"] == labels));
    assert_eq!(listed["status"]["state"], "active", "{listed}");
    assert_eq!(listed["annotations"]["summary"], "disk full", "{listed}");
    eventually("a firing webhook notification", || notified(&am.notifications(), "firing", "PeerSelfCheck").then_some(()));
    let firing = am.notifications().into_iter().find(|n| n["status"] == "firing").unwrap();
    assert_eq!(firing["version"], "4", "{firing}");
    assert!(firing["externalURL"].as_str().unwrap().starts_with(&am.url), "{firing}");

    // Resolving: the same labels with endsAt now.
    let now = rfc3339(SystemTime::now());
    am.post_alerts(&json!([{"labels": labels, "startsAt": now, "endsAt": now}]));
    eventually("a resolved webhook notification", || notified(&am.notifications(), "resolved", "PeerSelfCheck").then_some(()));
    assert!(am.alerts().iter().all(|a| a["labels"] != labels), "a resolved alert is no longer listed: {:?}", am.alerts());

    let port: u16 = am.url.rsplit(':').next().unwrap().parse().unwrap();
    drop(am);
    wait_port_closed(port);
}

#[test]
fn request_tracker_peer_creates_comments_and_resolves() {
    let rt = RequestTracker::start();
    let http = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let auth = format!("token {}", rt.token);
    let post = |path: &str, body: Value| -> Value {
        let url = format!("{}{path}", rt.api());
        http.post(&url).set("Authorization", &auth).send_json(body).unwrap_or_else(|e| panic!("POST {path}: {e}")).into_json().unwrap()
    };

    let created = post(
        "/ticket",
        json!({"Queue": "General", "Subject": "[FIRING] census-selfcheck on host1", "Content": "value=97%",
               "ContentType": "text/plain", "Requestor": "collector@census.test"}),
    );
    let id = created["id"].as_str().unwrap().to_string();
    post(&format!("/ticket/{id}/comment"), json!({"Content": "still firing, value=98%", "ContentType": "text/plain"}));
    let url = format!("{}/ticket/{id}", rt.api());
    http.put(&url).set("Authorization", &auth).send_json(json!({"Status": "resolved"})).unwrap();

    let found = rt.tickets("Subject LIKE 'census-selfcheck'");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(found[0]["Status"], "resolved");
    assert!(rt.tickets("Subject LIKE 'no-such-ticket'").is_empty());

    let ticket = rt.ticket(&id);
    assert_eq!(ticket["Subject"], "[FIRING] census-selfcheck on host1", "{ticket}");
    assert_eq!(ticket["Status"], "resolved", "{ticket}");

    let history = rt.history(&id);
    let of_type = |t: &str| history.iter().find(|h| h["Type"] == t).unwrap_or_else(|| panic!("no {t} transaction in {history:?}"));
    assert_eq!(of_type("Create")["Content"], "value=97%");
    assert_eq!(of_type("Comment")["Content"], "still firing, value=98%");
    let status = of_type("Status");
    assert_eq!((&status["Field"], &status["OldValue"], &status["NewValue"]), (&json!("Status"), &json!("new"), &json!("resolved")));

    let port: u16 = rt.url.rsplit(':').next().unwrap().parse().unwrap();
    drop(rt);
    wait_port_closed(port);
}
