//! The asset register: one `AssetRow` per host, from its agent record and
//! latest inventory, and its two file forms — CSV (RFC 4180, a header,
//! times in RFC 3339 UTC, lists joined by a space) and JSON (an array of
//! objects with the same column names). `census export` and
//! `GET /api/v1/export` write the same bytes for the same rows.
//!
//! Both forms are written a row at a time (`Writer`), so a caller can send
//! each page of rows as it arrives.

use census_proto::v1 as pb;

use crate::store::HostView;

/// The columns, in order: the CSV header and the JSON keys.
pub const COLUMNS: &[&str] = &[
    "agent_id",
    "hostname",
    "host_uuid",
    "os",
    "os_id",
    "os_version",
    "kernel",
    "arch",
    "vendor",
    "model",
    "serial",
    "cpu_model",
    "cpu_logical_cores",
    "memory_total_bytes",
    "disks_total_bytes",
    "ips",
    "macs",
    "last_seen",
    "agent_version",
    "online",
    "revoked",
    "enrolled_at",
];

/// The row of one host.
pub fn asset_row(host: &HostView, online: bool) -> pb::AssetRow {
    let summary = crate::wire::host_summary(host, online);
    let inv = host.inventory.as_ref().and_then(|r| r.inventory.as_ref());
    let os = inv.and_then(|i| i.os.as_ref());
    let system = inv.and_then(|i| i.hardware.as_ref()).and_then(|h| h.system.as_ref());
    let interfaces = inv.and_then(|i| i.network.as_ref()).map(|n| n.interfaces.as_slice()).unwrap_or_default();
    // Loopback is the same on every host: not an asset's address.
    let real = interfaces.iter().filter(|i| i.name != "lo" && !i.addresses.iter().any(|a| a.address == "127.0.0.1"));
    let mut ips: Vec<String> = Vec::new();
    let mut macs: Vec<String> = Vec::new();
    for interface in real {
        ips.extend(interface.addresses.iter().map(|a| a.address.clone()));
        if let Some(mac) = interface.mac.as_ref().filter(|m| !m.is_empty() && *m != "00:00:00:00:00:00") {
            if !macs.contains(mac) {
                macs.push(mac.clone());
            }
        }
    }
    pb::AssetRow {
        agent_id: summary.agent_id,
        hostname: summary.hostname,
        host_uuid: summary.host_uuid,
        os: summary.os,
        os_id: os.and_then(|o| o.id.clone()).unwrap_or_default(),
        os_version: os.and_then(|o| o.version_id.clone()).unwrap_or_default(),
        kernel: summary.kernel,
        arch: summary.arch,
        vendor: system.and_then(|s| s.vendor.clone()).unwrap_or_default(),
        model: system.and_then(|s| s.model.clone()).unwrap_or_default(),
        serial: system.and_then(|s| s.serial.clone()).unwrap_or_default(),
        cpu_model: inv.and_then(|i| i.cpu.as_ref()).map(|c| c.model.clone()).unwrap_or_default(),
        cpu_logical_cores: summary.cpu_logical_cores,
        memory_total_bytes: summary.memory_total_bytes,
        disks_total_bytes: inv
            .and_then(|i| i.hardware.as_ref())
            .map(|h| h.disks.iter().fold(0u64, |sum, d| sum.saturating_add(d.size_bytes)))
            .unwrap_or(0),
        ips,
        macs,
        last_seen_unix_ms: summary.last_seen_unix_ms,
        agent_version: summary.agent_version,
        online: summary.online,
        revoked: summary.revoked,
        enrolled_at_unix_ms: summary.enrolled_at_unix_ms,
    }
}

fn time(unix_ms: i64) -> String {
    if unix_ms == 0 { String::new() } else { crate::clock::rfc3339_seconds(unix_ms) }
}

/// A row's values as text, in `COLUMNS` order.
fn texts(r: &pb::AssetRow) -> Vec<String> {
    vec![
        r.agent_id.clone(),
        r.hostname.clone(),
        r.host_uuid.clone(),
        r.os.clone(),
        r.os_id.clone(),
        r.os_version.clone(),
        r.kernel.clone(),
        r.arch.clone(),
        r.vendor.clone(),
        r.model.clone(),
        r.serial.clone(),
        r.cpu_model.clone(),
        r.cpu_logical_cores.to_string(),
        r.memory_total_bytes.to_string(),
        r.disks_total_bytes.to_string(),
        r.ips.join(" "),
        r.macs.join(" "),
        time(r.last_seen_unix_ms),
        r.agent_version.clone(),
        r.online.to_string(),
        r.revoked.to_string(),
        time(r.enrolled_at_unix_ms),
    ]
}

/// A row as a JSON object: numbers and booleans typed, lists as arrays,
/// times as RFC 3339 (null when never).
fn object(r: &pb::AssetRow) -> serde_json::Value {
    let t = |ms: i64| if ms == 0 { serde_json::Value::Null } else { serde_json::Value::String(crate::clock::rfc3339_seconds(ms)) };
    serde_json::json!({
        "agent_id": r.agent_id,
        "hostname": r.hostname,
        "host_uuid": r.host_uuid,
        "os": r.os,
        "os_id": r.os_id,
        "os_version": r.os_version,
        "kernel": r.kernel,
        "arch": r.arch,
        "vendor": r.vendor,
        "model": r.model,
        "serial": r.serial,
        "cpu_model": r.cpu_model,
        "cpu_logical_cores": r.cpu_logical_cores,
        "memory_total_bytes": r.memory_total_bytes,
        "disks_total_bytes": r.disks_total_bytes,
        "ips": r.ips,
        "macs": r.macs,
        "last_seen": t(r.last_seen_unix_ms),
        "agent_version": r.agent_version,
        "online": r.online,
        "revoked": r.revoked,
        "enrolled_at": t(r.enrolled_at_unix_ms),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// Writes the register a row at a time: `start`, `rows` per page, `finish`.
pub struct Writer {
    format: Format,
    rows: usize,
}

impl Writer {
    /// The writer and the bytes that open the file (the CSV header, `[`).
    pub fn start(format: Format) -> (Writer, Vec<u8>) {
        let head = match format {
            Format::Csv => csv_line(COLUMNS.iter().map(|c| c.to_string()).collect()),
            Format::Json => b"[".to_vec(),
        };
        (Writer { format, rows: 0 }, head)
    }

    /// The bytes of these rows.
    pub fn rows(&mut self, rows: &[pb::AssetRow]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in rows {
            match self.format {
                Format::Csv => out.extend(csv_line(texts(r))),
                Format::Json => {
                    out.extend_from_slice(if self.rows == 0 { b"\n" } else { b",\n" });
                    out.extend(serde_json::to_vec(&object(r)).expect("a JSON value always serialises"));
                }
            }
            self.rows += 1;
        }
        out
    }

    /// The bytes that close the file.
    pub fn finish(self) -> Vec<u8> {
        match self.format {
            Format::Csv => Vec::new(),
            Format::Json if self.rows == 0 => b"]\n".to_vec(),
            Format::Json => b"\n]\n".to_vec(),
        }
    }
}

/// One CSV record, RFC 4180: quoted when needed, CRLF-free (`\n` ends it).
fn csv_line(fields: Vec<String>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::Any(b'\n')).from_writer(Vec::new());
    w.write_record(&fields).expect("writing to memory cannot fail");
    w.into_inner().expect("writing to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hostname: &str) -> pb::AssetRow {
        pb::AssetRow {
            agent_id: "a".repeat(32),
            hostname: hostname.into(),
            ips: vec!["10.0.0.1".into(), "fe80::1".into()],
            memory_total_bytes: 8 << 30,
            last_seen_unix_ms: 1_000,
            online: true,
            ..Default::default()
        }
    }

    fn whole(format: Format, rows: &[pb::AssetRow]) -> String {
        let (mut w, mut out) = Writer::start(format);
        for r in rows {
            out.extend(w.rows(std::slice::from_ref(r)));
        }
        out.extend(w.finish());
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn csv_has_the_header_and_quotes_what_needs_it() {
        let text = whole(Format::Csv, &[row("web,\"01\""), row("db")]);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().expect("header").iter().map(str::to_string).collect();
        assert_eq!(header, COLUMNS);
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(&records[0][1], "web,\"01\"", "the hostname round-trips through the quoting");
        assert_eq!(&records[0][15], "10.0.0.1 fe80::1");
        assert_eq!(&records[0][17], "1970-01-01T00:00:01Z");
        assert_eq!(&records[0][21], "", "never enrolled: empty, not 1970");
        assert!(text.lines().nth(1).expect("row").starts_with(&format!("{},\"web,\"\"01\"\"\"", "a".repeat(32))), "{text}");
    }

    #[test]
    fn json_is_an_array_of_objects_even_when_empty() {
        let empty: serde_json::Value = serde_json::from_str(&whole(Format::Json, &[])).expect("json");
        assert_eq!(empty, serde_json::json!([]));
        let two: serde_json::Value = serde_json::from_str(&whole(Format::Json, &[row("web"), row("db")])).expect("json");
        let rows = two.as_array().expect("array");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1]["hostname"], "db");
        assert_eq!(rows[0]["memory_total_bytes"], 8u64 << 30);
        assert_eq!(rows[0]["ips"], serde_json::json!(["10.0.0.1", "fe80::1"]));
        assert_eq!(rows[0]["enrolled_at"], serde_json::Value::Null);
        let keys: std::collections::BTreeSet<&str> = rows[0].as_object().expect("object").keys().map(String::as_str).collect();
        assert_eq!(keys, COLUMNS.iter().copied().collect(), "the same columns as the CSV");
    }
}
