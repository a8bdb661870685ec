//! What the CLI prints: tables for people, JSON (the proto field names) and
//! CSV (listings only; times in RFC 3339 UTC) for scripts. Pure formatting
//! over the admin API's messages.

use std::time::SystemTime;

use census_proto::v1 as pb;
use comfy_table::{Table, presets};
use tonic::Status;

use super::Output;
use super::connect::AdminClient;
use crate::clock::unix_ms;

/// Fetches every page of the host list.
/// Every host the query selects, page after page.
pub async fn all_hosts(client: &mut AdminClient, query: pb::ListHostsRequest) -> Result<Vec<pb::HostSummary>, Status> {
    let mut hosts = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = client.list_hosts(pb::ListHostsRequest { page_size: 0, page_token, ..query.clone() }).await?.into_inner();
        hosts.extend(page.hosts);
        if page.next_page_token.is_empty() {
            return Ok(hosts);
        }
        page_token = page.next_page_token;
    }
}

pub async fn hosts(client: &mut AdminClient, query: pb::ListHostsRequest, output: Output) -> Result<String, Status> {
    let columns = query.columns.clone();
    let hosts = all_hosts(client, query).await?;
    Ok(match output {
        Output::Json => json(&hosts),
        Output::Table if columns.is_empty() => hosts_table(&hosts, unix_ms(SystemTime::now())),
        Output::Table => hosts_columns_table(&hosts, &columns),
        Output::Csv if columns.is_empty() => hosts_csv(&hosts),
        Output::Csv => hosts_columns_csv(&hosts, &columns),
    })
}

/// Hostname, status and the requested columns.
pub fn hosts_columns_table(hosts: &[pb::HostSummary], columns: &[String]) -> String {
    let mut header = vec!["HOSTNAME".to_string(), "STATUS".to_string()];
    header.extend(columns.iter().cloned());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = table(&header);
    for h in hosts {
        let mut row = vec![h.hostname.clone(), host_status(h).to_string()];
        row.extend(columns.iter().map(|c| h.columns.get(c).cloned().unwrap_or_else(|| "-".into())));
        t.add_row(row);
    }
    format!("{t}\n{} host(s)\n", hosts.len())
}

pub fn hosts_columns_csv(hosts: &[pb::HostSummary], columns: &[String]) -> String {
    let mut header = vec!["agent_id", "hostname", "status"];
    header.extend(columns.iter().map(String::as_str));
    csv(
        &header,
        hosts.iter().map(|h| {
            let mut row = vec![h.agent_id.clone(), h.hostname.clone(), host_status(h).to_string()];
            row.extend(columns.iter().map(|c| h.columns.get(c).cloned().unwrap_or_default()));
            row
        }),
    )
}

pub async fn host(client: &mut AdminClient, id_or_hostname: &str, output: Output) -> Result<String, Status> {
    let host = client.get_host(pb::GetHostRequest { id_or_hostname: id_or_hostname.to_string() }).await?.into_inner();
    Ok(match output {
        Output::Json => json(&host),
        // `run` refuses csv for a detail view.
        Output::Table | Output::Csv => host_detail(&host, unix_ms(SystemTime::now())),
    })
}

pub async fn software(
    client: &mut AdminClient,
    name: &str,
    version: Option<&str>,
    with_hosts: bool,
    output: Output,
) -> Result<String, Status> {
    // Every page, merged: each lists every version, with its share of hosts.
    let request = |page_token: String| pb::ListSoftwareRequest {
        name: name.to_string(),
        version: version.unwrap_or_default().to_string(),
        page_size: 0,
        page_token,
    };
    let mut reply = client.list_software(request(String::new())).await?.into_inner();
    while !reply.next_page_token.is_empty() {
        let page = client.list_software(request(std::mem::take(&mut reply.next_page_token))).await?.into_inner();
        let same = |a: &pb::SoftwareVersion, b: &pb::SoftwareVersion| (&a.version, &a.source) == (&b.version, &b.source);
        if page.versions.len() != reply.versions.len() || !page.versions.iter().zip(&reply.versions).all(|(a, b)| same(a, b)) {
            // Installs changed between pages: the merge would mix versions.
            return Err(Status::aborted("the package's versions changed while paging; run the command again"));
        }
        for (all, more) in reply.versions.iter_mut().zip(page.versions) {
            all.hosts.extend(more.hosts);
        }
        reply.next_page_token = page.next_page_token;
    }
    Ok(match output {
        Output::Json => json(&reply),
        Output::Table => software_table(&reply, with_hosts),
        Output::Csv => software_csv(&reply, with_hosts),
    })
}

pub fn software_table(reply: &pb::ListSoftwareResponse, with_hosts: bool) -> String {
    if reply.versions.is_empty() {
        return format!("no host has a package named {:?}\n", reply.name);
    }
    let mut t =
        if with_hosts { table(&["VERSION", "SOURCE", "HOSTNAME", "AGENT ID", "ARCH"]) } else { table(&["VERSION", "SOURCE", "HOSTS"]) };
    let mut total = 0;
    for v in &reply.versions {
        total += v.host_count;
        if with_hosts {
            for h in &v.hosts {
                t.add_row(vec![
                    v.version.clone(),
                    v.source.clone(),
                    h.hostname.clone(),
                    h.agent_id.clone(),
                    h.arch.clone().unwrap_or_else(|| "-".into()),
                ]);
            }
        } else {
            t.add_row(vec![v.version.clone(), v.source.clone(), v.host_count.to_string()]);
        }
    }
    format!("{t}\n{} version(s) of {} on {total} host install(s)\n", reply.versions.len(), reply.name)
}

pub async fn changes(client: &mut AdminClient, host: Option<&str>, since: std::time::Duration, output: Output) -> Result<String, Status> {
    let now = unix_ms(SystemTime::now());
    let since_unix_ms = now.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    let reply =
        client.list_changes(pb::ListChangesRequest { host: host.unwrap_or_default().to_string(), since_unix_ms }).await?.into_inner();
    Ok(match output {
        Output::Json => json(&reply.changes),
        Output::Table => changes_table(&reply.changes, now),
        Output::Csv => csv(
            &["at", "agent_id", "hostname", "kind", "subject", "old", "new"],
            reply.changes.iter().map(|c| {
                vec![
                    time(c.at_unix_ms),
                    c.agent_id.clone(),
                    c.hostname.clone(),
                    c.kind.clone(),
                    c.subject.clone(),
                    c.old.clone(),
                    c.new.clone(),
                ]
            }),
        ),
    })
}

pub fn changes_table(changes: &[pb::HostChange], now_ms: i64) -> String {
    let mut t = table(&["WHEN", "HOSTNAME", "CHANGE", "WHAT", "OLD", "NEW"]);
    for c in changes {
        t.add_row(vec![
            ago(c.at_unix_ms, now_ms),
            c.hostname.clone(),
            c.kind.clone(),
            c.subject.clone(),
            if c.old.is_empty() { "-".into() } else { c.old.clone() },
            if c.new.is_empty() { "-".into() } else { c.new.clone() },
        ]);
    }
    format!("{t}\n{} change(s)\n", changes.len())
}

pub async fn metrics(
    client: &mut AdminClient,
    host: &str,
    metric: &str,
    since: std::time::Duration,
    resolution: Option<&str>,
    output: Output,
) -> Result<String, Status> {
    let now = unix_ms(SystemTime::now());
    let since_unix_ms = now.saturating_sub(i64::try_from(since.as_millis()).unwrap_or(i64::MAX));
    let reply = client
        .get_metrics(pb::GetMetricsRequest {
            host: host.to_string(),
            metric: metric.to_string(),
            since_unix_ms,
            resolution: resolution.unwrap_or_default().to_string(),
        })
        .await?
        .into_inner();
    Ok(match output {
        Output::Json => json(&reply),
        Output::Table => metrics_table(&reply, now),
        Output::Csv => csv(
            &["at", "value", "min", "max", "count"],
            reply
                .points
                .iter()
                .map(|p| vec![time(p.at_unix_ms), p.value.to_string(), p.min.to_string(), p.max.to_string(), p.count.to_string()]),
        ),
    })
}

/// A sparkline over the series, then one row per point.
pub fn metrics_table(reply: &pb::GetMetricsResponse, now_ms: i64) -> String {
    if reply.points.is_empty() {
        let mut text = format!("no {} data for {:?} in that range ({} resolution)\n", reply.metric, reply.agent_id, reply.resolution);
        if !reply.available.is_empty() {
            text.push_str(&format!("metrics of this host: {}\n", reply.available.join(", ")));
        }
        return text;
    }
    let values: Vec<f64> = reply.points.iter().map(|p| p.value).collect();
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let mut out = format!(
        "{} ({} resolution, {} points)  min {lo:.2}  max {hi:.2}\n{}\n",
        reply.metric,
        reply.resolution,
        values.len(),
        sparkline(&values, 72)
    );
    let mut t = table(&["WHEN", "VALUE", "MIN", "MAX", "SAMPLES"]);
    for p in &reply.points {
        t.add_row(vec![
            ago(p.at_unix_ms, now_ms),
            format!("{:.2}", p.value),
            format!("{:.2}", p.min),
            format!("{:.2}", p.max),
            p.count.to_string(),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    out
}

/// Eight-level block characters, the series resampled to at most `width`.
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let n = values.len().min(width);
    (0..n)
        .map(|i| {
            // Mean of the values falling in column i.
            let (a, b) = (i * values.len() / n, ((i + 1) * values.len() / n).max(i * values.len() / n + 1));
            let v = values[a..b].iter().sum::<f64>() / (b - a) as f64;
            let level = if hi > lo { ((v - lo) / (hi - lo) * 7.0).round() as usize } else { 3 };
            BARS[level.min(7)]
        })
        .collect()
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// RFC 4180 CSV: a header line, then one record per row.
pub fn csv(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail, and every record has the header's width.
    let records = std::iter::once(header.iter().map(|h| h.to_string()).collect::<Vec<_>>()).chain(rows);
    for record in records {
        if let Err(e) = w.write_record(&record) {
            return format!("# csv error: {e}\n");
        }
    }
    match w.into_inner() {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("# csv error: {e}\n"),
    }
}

/// RFC 3339 UTC for csv; empty for "never".
pub(super) fn time(unix_ms: i64) -> String {
    if unix_ms <= 0 { String::new() } else { crate::clock::rfc3339_seconds(unix_ms) }
}

pub(super) fn opt_time(unix_ms: Option<i64>) -> String {
    unix_ms.map(time).unwrap_or_default()
}

fn host_status(h: &pb::HostSummary) -> &'static str {
    if h.revoked {
        "revoked"
    } else if h.online {
        "online"
    } else {
        "offline"
    }
}

pub fn hosts_csv(hosts: &[pb::HostSummary]) -> String {
    csv(
        &[
            "agent_id",
            "hostname",
            "host_uuid",
            "status",
            "os",
            "kernel",
            "arch",
            "cpus",
            "memory_bytes",
            "agent_version",
            "enrolled_at",
            "last_seen",
            "last_seq",
        ],
        hosts.iter().map(|h| {
            vec![
                h.agent_id.clone(),
                h.hostname.clone(),
                h.host_uuid.clone(),
                host_status(h).to_string(),
                h.os.clone(),
                h.kernel.clone(),
                h.arch.clone(),
                h.cpu_logical_cores.to_string(),
                h.memory_total_bytes.to_string(),
                h.agent_version.clone(),
                time(h.enrolled_at_unix_ms),
                time(h.last_seen_unix_ms),
                h.last_seq.to_string(),
            ]
        }),
    )
}

pub fn software_csv(reply: &pb::ListSoftwareResponse, with_hosts: bool) -> String {
    if with_hosts {
        let rows = reply.versions.iter().flat_map(|v| {
            v.hosts.iter().map(move |h| {
                vec![v.version.clone(), v.source.clone(), h.hostname.clone(), h.agent_id.clone(), h.arch.clone().unwrap_or_default()]
            })
        });
        csv(&["version", "source", "hostname", "agent_id", "arch"], rows)
    } else {
        csv(
            &["version", "source", "hosts"],
            reply.versions.iter().map(|v| vec![v.version.clone(), v.source.clone(), v.host_count.to_string()]),
        )
    }
}

pub(super) fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(header.iter().map(|h| h.to_string()));
    t
}

pub fn hosts_table(hosts: &[pb::HostSummary], now_ms: i64) -> String {
    let mut t = table(&["HOSTNAME", "AGENT ID", "STATUS", "OS", "KERNEL", "CPUS", "MEMORY", "AGENT", "LAST SEEN"]);
    for h in hosts {
        t.add_row(vec![
            h.hostname.clone(),
            h.agent_id.chars().take(12).collect(),
            host_status(h).to_string(),
            h.os.clone(),
            h.kernel.clone(),
            h.cpu_logical_cores.to_string(),
            bytes(h.memory_total_bytes),
            h.agent_version.clone(),
            ago(h.last_seen_unix_ms, now_ms),
        ]);
    }
    format!("{t}\n{} host(s)\n", hosts.len())
}

pub fn host_detail(host: &pb::GetHostResponse, now_ms: i64) -> String {
    let mut out = String::new();
    let s = host.summary.clone().unwrap_or_default();
    let mut kv = table(&["", ""]);
    kv.set_header(Vec::<String>::new());
    for (k, v) in [
        ("hostname", s.hostname.clone()),
        ("agent id", s.agent_id.clone()),
        ("host uuid", s.host_uuid.clone()),
        ("agent version", s.agent_version.clone()),
        ("last seen", ago(s.last_seen_unix_ms, now_ms)),
        ("last seq", s.last_seq.to_string()),
        ("certificate expires", time(s.certificate_not_after_unix_ms)),
        ("revoked", s.revoked.to_string()),
    ] {
        kv.add_row(vec![k.to_string(), v]);
    }
    out.push_str(&format!("{kv}\n"));
    let Some(inv) = &host.inventory else {
        out.push_str("\nno inventory received yet\n");
        return out;
    };
    if let Some(os) = &inv.os {
        section(
            &mut out,
            "OS",
            &[
                ("name", os.pretty_name.clone().unwrap_or_else(|| os.name.clone())),
                ("kernel", os.kernel.clone()),
                ("arch", os.arch.clone()),
                ("timezone", os.timezone.clone().unwrap_or_else(|| "-".into())),
                ("booted", os.boot_time_unix_ms.map(|b| ago(b, now_ms)).unwrap_or_else(|| "-".into())),
            ],
        );
    }
    if let Some(cpu) = &inv.cpu {
        section(
            &mut out,
            "CPU",
            &[
                ("model", cpu.model.clone()),
                ("vendor", cpu.vendor.clone()),
                ("logical cores", cpu.logical_cores.to_string()),
                ("physical cores", cpu.physical_cores.map(|c| c.to_string()).unwrap_or_else(|| "-".into())),
                ("sockets", cpu.sockets.map(|c| c.to_string()).unwrap_or_else(|| "-".into())),
                ("frequency", cpu.frequency_mhz.map(|f| format!("{f} MHz")).unwrap_or_else(|| "-".into())),
            ],
        );
    }
    if let Some(m) = &inv.memory {
        section(&mut out, "Memory", &[("total", bytes(m.total_bytes)), ("swap", bytes(m.swap_total_bytes))]);
    }
    if let Some(fs) = &inv.filesystems {
        let mut t = table(&["MOUNT", "DEVICE", "TYPE", "SIZE", "USED", "INODES USED"]);
        for f in &fs.filesystems {
            t.add_row(vec![
                f.mount_point.clone(),
                f.device.clone(),
                f.fs_type.clone(),
                bytes(f.total_bytes),
                percent(f.total_bytes.saturating_sub(f.free_bytes), f.total_bytes),
                percent(f.inodes_total.saturating_sub(f.inodes_free), f.inodes_total),
            ]);
        }
        out.push_str(&format!("\nFilesystems\n{t}\n"));
    }
    if let Some(net) = &inv.network {
        let mut t = table(&["INTERFACE", "STATE", "MAC", "ADDRESSES"]);
        for i in &net.interfaces {
            let addrs: Vec<String> = i.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix_len)).collect();
            t.add_row(vec![i.name.clone(), i.oper_state.clone(), i.mac.clone().unwrap_or_else(|| "-".into()), addrs.join(" ")]);
        }
        out.push_str(&format!("\nNetwork\n{t}\n"));
    }
    render_hardware(&mut out, inv);
    render_netconfig(&mut out, inv);
    render_os_state(&mut out, inv);
    render_users(&mut out, inv);
    render_services(&mut out, inv);
    render_software(&mut out, inv);
    render_updates(&mut out, inv);
    render_certificates(&mut out, inv, now_ms);
    if !inv.errors.is_empty() {
        out.push_str("\nSections that failed to collect\n");
        for e in &inv.errors {
            out.push_str(&format!("  {}: {}\n", e.section, e.message));
        }
    }
    out
}

fn dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn unreadable_note(out: &mut String, list: &[pb::Unreadable]) {
    for u in list {
        out.push_str(&format!("  (unreadable: {}: {})\n", u.field, u.reason));
    }
}

fn render_hardware(out: &mut String, inv: &pb::Inventory) {
    let Some(hw) = &inv.hardware else { return };
    let sys = hw.system.clone().unwrap_or_default();
    let virt = hw.virtualization.clone().unwrap_or_default();
    section(
        out,
        "Hardware",
        &[
            ("vendor", dash(&sys.vendor)),
            ("model", dash(&sys.model)),
            ("serial", dash(&sys.serial)),
            ("chassis", dash(&sys.chassis_type)),
            ("BIOS", format!("{} {} {}", dash(&sys.bios_vendor), dash(&sys.bios_version), dash(&sys.bios_date))),
            ("virtualization", format!("{} {}", virt.kind, virt.technology.unwrap_or_default()).trim().to_string()),
            (
                "memory modules",
                hw.memory_modules.iter().map(|m| format!("{} {}", m.slot, bytes(m.size_bytes))).collect::<Vec<_>>().join(", "),
            ),
            ("GPUs", hw.gpus.iter().map(|g| format!("{} {}", g.pci_address, dash(&g.vendor))).collect::<Vec<_>>().join(", ")),
            (
                "batteries",
                hw.batteries
                    .iter()
                    .map(|b| format!("{} health {}", b.name, b.health_percent.map(|h| format!("{h:.0}%")).unwrap_or_else(|| "-".into())))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        ],
    );
    if !hw.disks.is_empty() {
        let mut t = table(&["DISK", "KIND", "SIZE", "MODEL", "SERIAL", "SMART"]);
        for d in &hw.disks {
            let smart = d.smart.as_ref().and_then(|s| s.passed).map(|p| if p { "passed" } else { "FAILED" }).unwrap_or("-");
            t.add_row(vec![d.name.clone(), d.kind.clone(), bytes(d.size_bytes), dash(&d.model), dash(&d.serial), smart.to_string()]);
        }
        out.push_str(&format!("{t}\n"));
    }
    unreadable_note(out, &hw.unreadable);
}

fn render_netconfig(out: &mut String, inv: &pb::Inventory) {
    let Some(nc) = &inv.netconfig else { return };
    let dns = nc.dns.clone().unwrap_or_default();
    section(
        out,
        "Network configuration",
        &[
            (
                "default gateways",
                nc.default_gateways.iter().map(|g| format!("{} via {}", g.gateway, g.interface)).collect::<Vec<_>>().join(", "),
            ),
            ("DNS servers", dns.nameservers.join(", ")),
            ("DNS search", dns.search.join(", ")),
        ],
    );
    if !nc.listening.is_empty() {
        let mut t = table(&["PROTO", "ADDRESS", "PORT", "PROCESS"]);
        for l in &nc.listening {
            let procs: Vec<String> = l.processes.iter().map(|p| format!("{}({})", p.name.clone().unwrap_or_default(), p.pid)).collect();
            t.add_row(vec![l.protocol.clone(), l.address.clone(), l.port.to_string(), procs.join(" ")]);
        }
        out.push_str(&format!("{t}\n"));
    }
    unreadable_note(out, &nc.unreadable);
}

fn render_os_state(out: &mut String, inv: &pb::Inventory) {
    let Some(st) = &inv.os_state else { return };
    let reboot = st.pending_reboot.as_ref().map(|r| if r.required { "required" } else { "no" }).unwrap_or("-");
    section(
        out,
        "OS state",
        &[
            ("timezone", dash(&st.timezone)),
            ("pending reboot", reboot.to_string()),
            ("secure boot", dash(&st.secure_boot)),
            ("root encrypted", st.root_encrypted.map(|e| e.to_string()).unwrap_or_else(|| "-".into())),
        ],
    );
    unreadable_note(out, &st.unreadable);
}

fn render_users(out: &mut String, inv: &pb::Inventory) {
    let Some(u) = &inv.users else { return };
    let logins: Vec<&str> = u.accounts.iter().filter(|a| a.login).map(|a| a.name.as_str()).collect();
    section(
        out,
        "Users",
        &[
            ("accounts", u.accounts.len().to_string()),
            ("login accounts", logins.join(", ")),
            ("admins", u.admins.join(", ")),
            ("sessions", u.sessions.iter().map(|s| format!("{}@{}", s.user, s.tty)).collect::<Vec<_>>().join(", ")),
        ],
    );
    unreadable_note(out, &u.unreadable);
}

fn render_services(out: &mut String, inv: &pb::Inventory) {
    let Some(sv) = &inv.services else { return };
    let enabled = sv.units.iter().filter(|u| u.enabled.as_deref() == Some("enabled")).count();
    section(
        out,
        "Services",
        &[
            ("manager", sv.manager.clone()),
            ("units", format!("{} ({enabled} enabled)", sv.units.len())),
            ("failed", if sv.failed.is_empty() { "none".into() } else { sv.failed.join(", ") }),
        ],
    );
    unreadable_note(out, &sv.unreadable);
}

fn render_software(out: &mut String, inv: &pb::Inventory) {
    let Some(sw) = &inv.software else { return };
    let mut by_source: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for p in &sw.packages {
        *by_source.entry(p.source.as_str()).or_default() += 1;
    }
    let rows: Vec<(&str, String)> = by_source.iter().map(|(s, n)| (*s, format!("{n} packages"))).collect();
    section(out, "Software", &rows);
    out.push_str("  (every package: --output json; one package across the fleet: census software NAME)\n");
}

/// A summary per update source with the security count, then the
/// security updates by name (the full list is in --output json).
fn render_updates(out: &mut String, inv: &pb::Inventory) {
    let Some(up) = &inv.updates else { return };
    let mut by_source: std::collections::BTreeMap<&str, (usize, usize)> = std::collections::BTreeMap::new();
    for u in &up.updates {
        let entry = by_source.entry(u.source.as_str()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(u.security);
    }
    let security: Vec<&str> = up.updates.iter().filter(|u| u.security).map(|u| u.name.as_str()).collect();
    let mut rows: Vec<(&str, String)> = vec![("total", format!("{} ({} security)", up.updates.len(), security.len()))];
    rows.extend(by_source.iter().map(|(s, (n, sec))| (*s, format!("{n} ({sec} security)"))));
    if !security.is_empty() {
        const SHOWN: usize = 10;
        let more = security.len().saturating_sub(SHOWN);
        let mut names = security[..security.len().min(SHOWN)].join(", ");
        if more > 0 {
            names.push_str(&format!(" and {more} more"));
        }
        rows.push(("security", names));
    }
    section(out, "Pending updates", &rows);
    unreadable_note(out, &up.unreadable);
}

/// One row per certificate, soonest expiry first, with the time left.
fn render_certificates(out: &mut String, inv: &pb::Inventory, now_ms: i64) {
    let Some(cs) = &inv.certificates else { return };
    let mut certs: Vec<&pb::Certificate> = cs.certificates.iter().collect();
    certs.sort_by_key(|c| (c.not_after_unix_ms, c.path.clone(), c.index));
    let mut t = table(&["PATH", "SUBJECT", "ISSUER", "SANS", "EXPIRES", "LOCATION"]);
    for c in &certs {
        let path = if c.index == 0 { c.path.clone() } else { format!("{} #{}", c.path, c.index) };
        let issuer = if c.self_signed { "(self-signed)".to_string() } else { c.issuer.clone() };
        let sans = match c.sans.len() {
            0 => "-".to_string(),
            1..=3 => c.sans.join(" "),
            n => format!("{} +{}", c.sans[..3].join(" "), n - 3),
        };
        t.add_row(vec![path, c.subject.clone(), issuer, sans, expiry(c.not_after_unix_ms, now_ms), c.location.clone()]);
    }
    out.push_str(&format!("\nCertificates ({})\n{t}\n", certs.len()));
    unreadable_note(out, &cs.unreadable);
}

/// "2026-05-01 (in 37d)" or "2020-01-02 (EXPIRED 5y ago)".
pub fn expiry(not_after_ms: i64, now_ms: i64) -> String {
    let date = crate::clock::utc_date(not_after_ms);
    let days = (not_after_ms - now_ms) / 86_400_000;
    if not_after_ms <= now_ms { format!("{date} (EXPIRED)") } else { format!("{date} (in {days}d)") }
}

pub(super) fn section(out: &mut String, title: &str, rows: &[(&str, String)]) {
    let mut t = table(&["", ""]);
    t.set_header(Vec::<String>::new());
    for (k, v) in rows {
        t.add_row(vec![format!("  {k}"), v.clone()]);
    }
    out.push_str(&format!("\n{title}\n{t}\n"));
}

/// Binary units, one decimal: "7.8 GiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "-".into() } else { format!("{:.0}%", part as f64 * 100.0 / whole as f64) }
}

/// "never", "12s ago", "3m ago", "5h ago", "2d ago".
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    if then_ms <= 0 {
        return "never".into();
    }
    let secs = (now_ms - then_ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_ages() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(8 * 1024 * 1024 * 1024), "8.0 GiB");
        assert_eq!(ago(0, 5), "never");
        assert_eq!(ago(1_000, 61_000), "1m ago");
        assert_eq!(ago(1_000, 1_000 + 3 * 86_400_000), "3d ago");
    }

    #[test]
    fn sparkline_scales_and_resamples() {
        assert_eq!(sparkline(&[0.0, 7.0], 10), "▁█");
        assert_eq!(sparkline(&[5.0, 5.0], 10), "▄▄");
        assert_eq!(sparkline(&(0..100).map(f64::from).collect::<Vec<_>>(), 4).chars().count(), 4);
        assert_eq!(sparkline(&[], 4), "");
    }

    #[test]
    fn changes_table_shows_old_and_new() {
        let c = pb::HostChange {
            hostname: "web-07".into(),
            kind: "software.upgraded".into(),
            subject: "openssl (dpkg)".into(),
            old: "3.0.2".into(),
            new: "3.0.13".into(),
            at_unix_ms: 1_000,
            ..Default::default()
        };
        let text = changes_table(&[c], 61_000);
        assert!(
            text.contains("software.upgraded") && text.contains("3.0.2") && text.contains("3.0.13") && text.contains("1m ago"),
            "{text}"
        );
    }

    #[test]
    fn expiry_dates_and_states() {
        assert_eq!(crate::clock::utc_date(0), "1970-01-01");
        assert_eq!(crate::clock::utc_date(1_577_923_200_000), "2020-01-02");
        assert_eq!(crate::clock::utc_date(1_709_164_800_000), "2024-02-29");
        assert_eq!(expiry(1_577_923_200_000, 1_709_164_800_000), "2020-01-02 (EXPIRED)");
        assert_eq!(expiry(1_709_164_800_000, 1_709_164_800_000 - 37 * 86_400_000), "2024-02-29 (in 37d)");
    }

    #[test]
    fn host_detail_shows_updates_and_certificates() {
        let update = |name: &str, security: bool| pb::PendingUpdate {
            name: name.into(),
            available_version: "2".into(),
            source: "apt".into(),
            security,
            ..Default::default()
        };
        let inv = pb::Inventory {
            updates: Some(pb::UpdatesSection { updates: vec![update("openssl", true), update("tzdata", false)], unreadable: Vec::new() }),
            certificates: Some(pb::CertificatesSection {
                certificates: vec![pb::Certificate {
                    path: "/etc/ssl/web.pem".into(),
                    subject: "CN=web".into(),
                    issuer: "CN=web".into(),
                    self_signed: true,
                    not_after_unix_ms: 1_577_923_200_000,
                    location: "service".into(),
                    sans: vec!["DNS:web".into()],
                    ..Default::default()
                }],
                unreadable: Vec::new(),
            }),
            ..Default::default()
        };
        let host = pb::GetHostResponse { inventory: Some(inv), ..Default::default() };
        let text = host_detail(&host, 1_709_164_800_000);
        assert!(text.contains("Pending updates") && text.contains("2 (1 security)") && text.contains("openssl"), "{text}");
        assert!(
            text.contains("Certificates (1)")
                && text.contains("/etc/ssl/web.pem")
                && text.contains("2020-01-02 (EXPIRED)")
                && text.contains("(self-signed)"),
            "{text}"
        );
    }

    #[test]
    fn hosts_table_shows_each_host() {
        let h = pb::HostSummary {
            hostname: "web-07".into(),
            agent_id: "0123456789abcdef".into(),
            memory_total_bytes: 1 << 30,
            ..Default::default()
        };
        let text = hosts_table(&[h], 0);
        assert!(text.contains("web-07") && text.contains("0123456789ab") && text.contains("1.0 GiB"), "{text}");
        assert!(text.ends_with("1 host(s)\n"));
    }
}
