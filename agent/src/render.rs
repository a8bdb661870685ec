//! `census-agent inventory` output: JSON (the domain types as serde shows
//! them) or a table per section for people.

use comfy_table::{Table, presets};

use crate::inventory::{Inventory, SectionTiming};

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

pub fn table_text(inv: &Inventory, timings: Option<&[SectionTiming]>) -> String {
    let mut out = String::new();
    if let Some(id) = &inv.identity {
        let mut t = table(&[]);
        t.add_row(vec!["hostname".to_string(), id.hostname.clone()]);
        t.add_row(vec!["host uuid".to_string(), format!("{} ({})", id.host_uuid, id.host_uuid_source)]);
        t.add_row(vec!["domain".to_string(), opt(&id.domain)]);
        out.push_str(&format!("Identity\n{t}\n\n"));
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
