//! `census-agent inventory` output: JSON (the domain types as serde shows
//! them, everything) or a compact table per section for people: long lists
//! (packages, services, accounts, sockets) show counts and their first
//! `LIST_PREVIEW` rows; the JSON has them all.

use std::collections::BTreeMap;

use comfy_table::{Table, presets};

use crate::inventory::{Inventory, SectionTiming, Unreadable};

/// Rows shown of a long list in the table output.
const LIST_PREVIEW: usize = 10;

pub fn json(inv: &Inventory, timings: Option<&[SectionTiming]>) -> String {
    let value = match timings {
        Some(t) => serde_json::json!({ "inventory": inv, "timings": t }),
        None => serde_json::to_value(inv).unwrap_or_default(),
    };
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    if !header.is_empty() {
        t.set_header(header.iter().map(|h| h.to_string()));
    }
    t
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

fn yes_no(v: bool) -> String {
    if v { "yes" } else { "no" }.to_string()
}

/// A list section's title, its first rows, a line for the rows left out,
/// and the section's unreadable fields.
fn push_list(out: &mut String, title: &str, t: &Table, total: usize, section: &str, unreadable: &[Unreadable]) {
    out.push_str(&format!("{title}\n{t}\n"));
    if total > LIST_PREVIEW {
        out.push_str(&format!("  ... {} more (all of them with --format json)\n", total - LIST_PREVIEW));
    }
    push_unreadable(out, section, unreadable);
    out.push('\n');
}

fn push_unreadable(out: &mut String, section: &str, list: &[Unreadable]) {
    for u in list {
        out.push_str(&format!("  {section}.{} unreadable: {}\n", u.field, u.reason));
    }
}

pub fn table_text(inv: &Inventory, timings: Option<&[SectionTiming]>) -> String {
    let mut out = String::new();
    if let Some(id) = &inv.identity {
        let mut t = table(&[]);
        t.add_row(vec!["hostname".to_string(), opt(&id.hostname)]);
        t.add_row(vec!["fqdn".to_string(), opt(&id.fqdn)]);
        t.add_row(vec!["host uuid".to_string(), format!("{} ({})", opt(&id.uuid), opt(&id.uuid_source.map(|s| s.as_str())))]);
        t.add_row(vec!["domain".to_string(), opt(&id.domain)]);
        out.push_str(&format!("Identity\n{t}\n"));
        push_unreadable(&mut out, "identity", &id.unreadable);
        out.push('\n');
    }
    if let Some(os) = &inv.os {
        let mut t = table(&[]);
        t.add_row(vec!["name".to_string(), os.pretty_name.clone().unwrap_or_else(|| os.name.clone())]);
        t.add_row(vec!["kernel".to_string(), os.kernel.clone()]);
        t.add_row(vec!["arch".to_string(), os.arch.clone()]);
        out.push_str(&format!("OS\n{t}\n\n"));
    }
    if let Some(cpu) = &inv.cpu {
        let mut t = table(&[]);
        t.add_row(vec!["model".to_string(), cpu.model.clone()]);
        t.add_row(vec!["logical cores".to_string(), cpu.logical_cores.to_string()]);
        t.add_row(vec!["physical cores".to_string(), opt(&cpu.physical_cores)]);
        t.add_row(vec!["sockets".to_string(), opt(&cpu.sockets)]);
        out.push_str(&format!("CPU\n{t}\n\n"));
    }
    if let Some(m) = &inv.memory {
        let mut t = table(&[]);
        t.add_row(vec!["total bytes".to_string(), m.total_bytes.to_string()]);
        t.add_row(vec!["swap bytes".to_string(), m.swap_total_bytes.to_string()]);
        out.push_str(&format!("Memory\n{t}\n\n"));
    }
    if let Some(fs) = &inv.filesystems {
        let mut t = table(&["MOUNT", "DEVICE", "TYPE", "SIZE", "FREE", "INODES", "INODES FREE"]);
        for f in fs {
            t.add_row(vec![
                f.mount_point.clone(),
                f.device.clone(),
                f.fs_type.clone(),
                f.total_bytes.to_string(),
                f.free_bytes.to_string(),
                f.inodes_total.to_string(),
                f.inodes_free.to_string(),
            ]);
        }
        out.push_str(&format!("Filesystems\n{t}\n\n"));
    }
    if let Some(net) = &inv.network {
        let mut t = table(&["INTERFACE", "STATE", "MAC", "MTU", "SPEED", "ADDRESSES"]);
        for n in net {
            let addrs: Vec<String> = n.addresses.iter().map(|a| format!("{}/{}", a.address, a.prefix_len)).collect();
            t.add_row(vec![n.name.clone(), n.oper_state.clone(), opt(&n.mac), opt(&n.mtu), opt(&n.speed_mbps), addrs.join(" ")]);
        }
        out.push_str(&format!("Network\n{t}\n\n"));
    }
    more_sections(&mut out, inv);
    for e in &inv.errors {
        out.push_str(&format!("section {} failed: {}\n", e.section, e.message));
    }
    if let Some(timings) = timings {
        let mut t = table(&["SECTION", "WALL µs"]);
        for s in timings {
            t.add_row(vec![s.section.to_string(), s.wall_micros.to_string()]);
        }
        out.push_str(&format!("Timings\n{t}\n"));
    }
    out
}

/// Software, hardware, network configuration, users, services, OS state,
/// pending updates, certificates:
/// the sections with long lists, each shown as counts plus a preview.
fn more_sections(out: &mut String, inv: &Inventory) {
    if let Some(packages) = &inv.software {
        let mut per_source: BTreeMap<&str, usize> = BTreeMap::new();
        for p in packages {
            *per_source.entry(p.source.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = per_source.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let mut t = table(&["PACKAGE", "VERSION", "ARCH", "SOURCE"]);
        for p in packages.iter().take(LIST_PREVIEW) {
            t.add_row(vec![p.name.clone(), p.version.clone(), opt(&p.arch), p.source.as_str().to_string()]);
        }
        push_list(out, &format!("Software: {} packages ({})", packages.len(), counts.join(", ")), &t, packages.len(), "software", &[]);
    }
    if let Some(h) = &inv.hardware {
        let s = &h.system;
        let mut t = table(&[]);
        t.add_row(vec!["system".to_string(), format!("{} {}", opt(&s.vendor), opt(&s.model))]);
        t.add_row(vec!["serial".to_string(), opt(&s.serial)]);
        t.add_row(vec!["chassis".to_string(), opt(&s.chassis_type)]);
        t.add_row(vec!["bios".to_string(), format!("{} {} ({})", opt(&s.bios_vendor), opt(&s.bios_version), opt(&s.bios_date))]);
        let virt = &h.virtualization;
        t.add_row(vec!["virtualization".to_string(), format!("{:?} {}", virt.kind, opt(&virt.technology)).to_lowercase()]);
        let modules = h.memory_modules.as_ref().map(|m| {
            m.iter().map(|m| format!("{} {} MiB {}", m.slot, m.size_bytes >> 20, opt(&m.memory_type))).collect::<Vec<_>>().join(", ")
        });
        t.add_row(vec!["memory modules".to_string(), opt(&modules)]);
        for d in &h.disks {
            let smart = d.smart.as_ref().and_then(|s| s.passed).map(|p| if p { "SMART ok" } else { "SMART FAILING" });
            t.add_row(vec![format!("disk {}", d.name), format!("{:?} {} bytes {} {}", d.kind, d.size_bytes, opt(&d.model), opt(&smart))]);
        }
        for g in &h.gpus {
            t.add_row(vec![
                format!("gpu {}", g.pci_address),
                format!("{} {:04x}:{:04x} driver {}", opt(&g.vendor), g.vendor_id, g.device_id, opt(&g.driver)),
            ]);
        }
        for b in &h.batteries {
            t.add_row(vec![
                format!("battery {}", b.name),
                format!(
                    "{}% charged, health {}%, {} cycles",
                    opt(&b.capacity_percent),
                    opt(&b.health_percent.map(|h| format!("{h:.0}"))),
                    opt(&b.cycle_count)
                ),
            ]);
        }
        out.push_str(&format!("Hardware\n{t}\n"));
        push_unreadable(out, "hardware", &h.unreadable);
        out.push('\n');
    }
    if let Some(n) = &inv.netconfig {
        let mut t = table(&[]);
        for g in &n.default_gateways {
            t.add_row(vec!["default gateway".to_string(), format!("{} dev {} metric {}", g.gateway, g.interface, g.metric)]);
        }
        if let Some(dns) = &n.dns {
            t.add_row(vec!["nameservers".to_string(), dns.nameservers.join(" ")]);
            if dns.systemd_resolved_stub {
                t.add_row(vec!["upstream nameservers".to_string(), dns.upstream_nameservers.join(" ")]);
            }
            t.add_row(vec!["search".to_string(), dns.search.join(" ")]);
        }
        out.push_str(&format!("Network configuration\n{t}\n"));
        push_unreadable(out, "netconfig", &n.unreadable);
        out.push('\n');
        if let Some(listening) = &n.listening {
            let mut t = table(&["PROTO", "ADDRESS", "PORT", "UID", "PROCESSES"]);
            for l in listening.iter().take(LIST_PREVIEW) {
                let procs: Vec<String> = l.processes.iter().map(|p| format!("{}/{}", p.pid, opt(&p.name))).collect();
                t.add_row(vec![
                    format!("{:?}", l.protocol).to_lowercase(),
                    l.address.to_string(),
                    l.port.to_string(),
                    l.uid.to_string(),
                    procs.join(" "),
                ]);
            }
            push_list(out, &format!("Listening sockets: {}", listening.len()), &t, listening.len(), "netconfig", &[]);
        }
    }
    if let Some(u) = &inv.users {
        let mut t = table(&[]);
        let logins = u.accounts.iter().filter(|a| a.login).count();
        t.add_row(vec!["accounts".to_string(), format!("{} ({logins} can log in)", u.accounts.len())]);
        t.add_row(vec!["groups".to_string(), u.groups.len().to_string()]);
        t.add_row(vec!["admins".to_string(), u.admins.join(" ")]);
        let sessions = u.sessions.as_ref().map(|s| s.iter().map(|s| format!("{}@{}", s.user, s.tty)).collect::<Vec<_>>().join(" "));
        t.add_row(vec!["sessions".to_string(), opt(&sessions)]);
        t.add_row(vec!["last logins".to_string(), opt(&u.last_logins.as_ref().map(|l| l.len()))]);
        out.push_str(&format!("Users\n{t}\n"));
        push_unreadable(out, "users", &u.unreadable);
        out.push('\n');
    }
    if let Some(s) = &inv.services {
        let mut t = table(&["SERVICE", "ACTIVE", "SUB", "ENABLED"]);
        // Failed units first: they are what an admin looks for.
        let failed = s.units.iter().filter(|u| u.active_state.as_deref() == Some("failed"));
        let others = s.units.iter().filter(|u| u.active_state.as_deref() != Some("failed"));
        for u in failed.chain(others).take(LIST_PREVIEW) {
            t.add_row(vec![u.name.clone(), opt(&u.active_state), opt(&u.sub_state), opt(&u.enabled)]);
        }
        let title = format!("Services ({:?}): {} units, {} failed", s.manager, s.units.len(), s.failed.len());
        push_list(out, &title, &t, s.units.len(), "services", &s.unreadable);
    }
    if let Some(o) = &inv.os_state {
        let mut t = table(&[]);
        t.add_row(vec!["timezone".to_string(), opt(&o.timezone)]);
        let reboot =
            o.pending_reboot.as_ref().map(|r| if r.required { format!("required ({})", r.packages.join(" ")) } else { "no".to_string() });
        t.add_row(vec!["pending reboot".to_string(), opt(&reboot)]);
        t.add_row(vec!["secure boot".to_string(), opt(&o.secure_boot.map(|s| format!("{s:?}")))]);
        t.add_row(vec!["root encrypted".to_string(), opt(&o.root_encrypted.map(yes_no))]);
        for f in o.filesystems_encryption.iter().flatten() {
            t.add_row(vec![format!("encrypted {}", f.mount_point), yes_no(f.encrypted)]);
        }
        out.push_str(&format!("OS state\n{t}\n"));
        push_unreadable(out, "os_state", &o.unreadable);
        out.push('\n');
    }
    if let Some(u) = &inv.updates {
        let mut t = table(&["PACKAGE", "INSTALLED", "AVAILABLE", "SOURCE", "SECURITY", "ORIGIN"]);
        // Security updates first: they are what an admin looks for.
        let security = u.updates.iter().filter(|p| p.security);
        let others = u.updates.iter().filter(|p| !p.security);
        for p in security.chain(others).take(LIST_PREVIEW) {
            t.add_row(vec![
                p.name.clone(),
                opt(&p.installed_version),
                p.available_version.clone(),
                p.source.as_str().to_string(),
                yes_no(p.security),
                opt(&p.origin),
            ]);
        }
        let title = format!("Pending updates: {} ({} security)", u.updates.len(), u.security_count());
        push_list(out, &title, &t, u.updates.len(), "updates", &u.unreadable);
    }
    if let Some(c) = &inv.certificates {
        let mut t = table(&["PATH", "SUBJECT", "EXPIRES IN", "SELF-SIGNED", "CA", "LOCATION"]);
        // Soonest expiry first, measured from the collection time.
        let mut certs: Vec<_> = c.certificates.iter().collect();
        certs.sort_by_key(|x| x.not_after_unix_ms);
        for x in certs.iter().take(LIST_PREVIEW) {
            let days = (x.not_after_unix_ms - inv.collected_at_unix_ms) / 86_400_000;
            let expires = if x.not_after_unix_ms <= inv.collected_at_unix_ms { "EXPIRED".to_string() } else { format!("{days}d") };
            let path = if x.index == 0 { x.path.clone() } else { format!("{} #{}", x.path, x.index) };
            t.add_row(vec![path, x.subject.clone(), expires, yes_no(x.self_signed), yes_no(x.is_ca), format!("{:?}", x.location)]);
        }
        push_list(out, &format!("Certificates: {}", c.certificates.len()), &t, c.certificates.len(), "certificates", &c.unreadable);
    }
}
