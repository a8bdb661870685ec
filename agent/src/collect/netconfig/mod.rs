//! Network configuration on Linux: default gateways, DNS resolvers and
//! listening sockets with their owning processes.
//!
//! Reads, under `root`: `/proc/net/{route,ipv6_route,tcp,tcp6,udp,udp6}`,
//! `/etc/resolv.conf`, `/run/systemd/resolve/resolv.conf` (only behind the
//! resolved stub) and the `/proc/PID/fd/*` links and `/proc/PID/comm` of
//! every visible process. This module is the read layer; the pure parsers
//! live in `routes`, `dns` and `sockets`. A missing table (no IPv6 in the
//! kernel) is simply empty; an unreadable one makes its field absent with a
//! reason. Only an error nothing can be reported around fails the section.

pub mod dns;
pub mod macos;
pub mod routes;
pub mod sockets;
pub mod windows;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use crate::collect::fs::read_under;
use crate::error::Result;
use crate::inventory::netconfig::{DnsConfig, NetConfig};
use crate::inventory::unreadable::{Unreadable, io_reason};
use sockets::{FdSocketLink, ProcNetTable};

/// Upper bound on processes scanned for socket owners; a host with more
/// has bigger problems and the scan would cost too much.
const MAX_PROCESSES_SCANNED: usize = 100_000;

/// Collects the network configuration section from the system under `root`.
pub fn collect(root: &Path) -> Result<NetConfig> {
    let mut unreadable = Vec::new();

    let mut default_gateways = Vec::new();
    for (rel, parse) in
        [("proc/net/route", routes::parse_ipv4_routes as fn(&str) -> Result<_>), ("proc/net/ipv6_route", routes::parse_ipv6_routes)]
    {
        match read_under(root, rel, routes::MAX_ROUTE_BYTES) {
            Ok(text) => match parse(&text) {
                Ok(g) => default_gateways.extend(g),
                Err(e) => unreadable.push(Unreadable::new("default_gateways", e.to_string())),
            },
            // No IPv6 support in the kernel: no IPv6 gateways, not an error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && rel.ends_with("ipv6_route") => {}
            Err(e) => unreadable.push(Unreadable::from_io("default_gateways", &format!("/{rel}"), &e)),
        }
    }

    let dns = match read_under(root, "etc/resolv.conf", dns::MAX_RESOLV_CONF_BYTES) {
        Err(e) => {
            unreadable.push(Unreadable::from_io("dns", "/etc/resolv.conf", &e));
            None
        }
        Ok(text) => match dns::parse_resolv_conf(&text, "/etc/resolv.conf") {
            Err(e) => {
                unreadable.push(Unreadable::new("dns", e.to_string()));
                None
            }
            Ok(conf) => {
                let stub = conf.is_systemd_resolved_stub();
                let mut upstream_nameservers = Vec::new();
                if stub {
                    const UPSTREAM: &str = "run/systemd/resolve/resolv.conf";
                    match read_under(root, UPSTREAM, dns::MAX_RESOLV_CONF_BYTES)
                        .map_err(|e| io_reason("/run/systemd/resolve/resolv.conf", &e))
                        .and_then(|t| dns::parse_resolv_conf(&t, "/run/systemd/resolve/resolv.conf").map_err(|e| e.to_string()))
                    {
                        Ok(up) => upstream_nameservers = up.nameservers,
                        Err(reason) => unreadable.push(Unreadable::new("dns.upstream_nameservers", reason)),
                    }
                }
                Some(DnsConfig { nameservers: conf.nameservers, search: conf.search, systemd_resolved_stub: stub, upstream_nameservers })
            }
        },
    };

    let listening = collect_listening(root, &mut unreadable);

    Ok(NetConfig { default_gateways, dns, listening, unreadable })
}

fn collect_listening(root: &Path, unreadable: &mut Vec<Unreadable>) -> Option<Vec<crate::inventory::netconfig::ListeningSocket>> {
    let mut all = Vec::new();
    let mut any_table = false;
    for table in ProcNetTable::ALL {
        let rel = format!("proc/net/{}", table.file_name());
        match read_under(root, &rel, sockets::MAX_PROC_NET_BYTES) {
            Ok(text) => match sockets::parse_listening(&text, table) {
                Ok(v) => {
                    any_table = true;
                    all.extend(v);
                }
                Err(e) => unreadable.push(Unreadable::new("listening", e.to_string())),
            },
            // tcp6/udp6 are missing when IPv6 is disabled: nothing listens there.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && table_is_v6(table) => {}
            Err(e) => unreadable.push(Unreadable::from_io("listening", &format!("/{rel}"), &e)),
        }
    }
    if !any_table {
        return None;
    }
    let wanted: HashSet<u64> = all.iter().map(|s| s.inode).filter(|i| *i != 0).collect();
    let (links, names, hidden) = scan_socket_fds(&root.join("proc"), &wanted);
    sockets::attach_processes(&mut all, &links, &names);
    for s in all.iter().filter(|s| s.processes.is_empty()) {
        let reason = if hidden > 0 {
            format!("{hidden} processes' file descriptors could not be read (needs root)")
        } else {
            "no visible process holds it (another PID namespace, or a kernel socket)".to_string()
        };
        unreadable.push(Unreadable::new(format!("listening[{:?} {}:{}].processes", s.protocol, s.address, s.port).to_lowercase(), reason));
    }
    all.sort_by_key(|s| (s.protocol, s.port, s.address));
    Some(all)
}

fn table_is_v6(t: ProcNetTable) -> bool {
    matches!(t, ProcNetTable::Tcp6 | ProcNetTable::Udp6)
}

/// Walks `/proc/*/fd/*` for links to the `wanted` socket inodes. Returns
/// the links, the names of the processes that hold any, and how many
/// processes' fd directories were unreadable. Processes exiting during the
/// walk are skipped silently: that race is normal.
fn scan_socket_fds(proc_dir: &Path, wanted: &HashSet<u64>) -> (Vec<FdSocketLink>, HashMap<u32, String>, usize) {
    let mut links = Vec::new();
    let mut names = HashMap::new();
    let mut hidden = 0;
    if wanted.is_empty() {
        return (links, names, hidden);
    }
    let Ok(entries) = std::fs::read_dir(proc_dir) else {
        return (links, names, hidden);
    };
    for entry in entries.flatten().take(MAX_PROCESSES_SCANNED) {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let fd_dir = entry.path().join("fd");
        let fds = match std::fs::read_dir(&fd_dir) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                hidden += 1;
                continue;
            }
            Err(_) => continue,
        };
        let mut holds_one = false;
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if let Some(inode) = target.to_str().and_then(sockets::parse_socket_link)
                && wanted.contains(&inode)
            {
                links.push(FdSocketLink { pid, inode });
                holds_one = true;
            }
        }
        if holds_one
            && let Ok(comm) = read_under(&entry.path(), "comm", 256)
            && let Some(name) = sockets::parse_comm(&comm)
        {
            names.insert(pid, name);
        }
    }
    (links, names, hidden)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_on_live_machine_reports_every_part() {
        if !Path::new("/proc/net/tcp").exists() {
            eprintln!("skipping: no /proc/net/tcp");
            return;
        }
        let n = collect(Path::new("/")).unwrap();
        assert!(n.listening.is_some(), "{:?}", n.unreadable);
        assert!(n.dns.is_some() || n.unreadable.iter().any(|u| u.field == "dns"));
    }

    #[test]
    fn collect_on_fixture_tree_with_resolved_stub() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/netconfig/root");
        let n = collect(&root).unwrap();
        let dns = n.dns.unwrap();
        assert!(dns.systemd_resolved_stub);
        assert_eq!(dns.upstream_nameservers, ["192.168.178.1", "fe80::1%wlp2s0", "2001:4860:4860::8888"]);
        assert_eq!(n.default_gateways.len(), 2);
        let l = n.listening.unwrap();
        assert!(l.iter().any(|s| s.port == 8631));
        // No /proc/PID directories in the fixture: owners empty and explained.
        assert!(l.iter().all(|s| s.processes.is_empty()));
        assert!(n.unreadable.iter().any(|u| u.field == "listening[tcp 127.0.0.1:8631].processes"), "{:?}", n.unreadable);
    }
}
