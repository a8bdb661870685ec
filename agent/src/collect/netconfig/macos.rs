//! Network configuration on macOS, from the text of:
//! `netstat -rn` (the `default` routes of both families; macOS has no
//! route metric, so the metric is the route's rank in the table),
//! `scutil --dns` (nameservers and search domains of the default
//! resolvers, i.e. those without a `domain`, before the "for scoped
//! queries" part), and `lsof +c 0 -nP -l -iTCP -sTCP:LISTEN -iUDP` (listening
//! TCP sockets and bound, unconnected UDP sockets, with pid, command and
//! numeric uid). Sockets have no inode number here: it is 0.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::{Error, Result};
use crate::inventory::netconfig::{DefaultGateway, DnsConfig, ListeningSocket, NetConfig, Protocol, SocketProcess};
use crate::inventory::unreadable::Unreadable;

#[cfg(target_os = "macos")]
pub fn collect(_root: &std::path::Path) -> Result<NetConfig> {
    use crate::collect::command::{MAX_OUTPUT_BYTES, run};
    let read = |program: &str, args: &[&str]| run(program, args, MAX_OUTPUT_BYTES).map_err(|e| e.to_string());
    // lsof exits 1, saying nothing, when no socket matches.
    let lsof = match run("lsof", &["+c", "0", "-nP", "-l", "-iTCP", "-sTCP:LISTEN", "-iUDP"], MAX_OUTPUT_BYTES) {
        Err(crate::error::Error::Command { reason, .. }) if reason == "exit status: 1" => Ok(String::new()),
        other => other.map_err(|e| e.to_string()),
    };
    Ok(netconfig_from(read("netstat", &["-rn"]), read("scutil", &["--dns"]), lsof))
}

type Read = std::result::Result<String, String>;

/// Builds the section from the three command outputs; a failed one makes
/// its field absent (or empty, for routes) with the reason.
pub fn netconfig_from(netstat: Read, scutil_dns: Read, lsof: Read) -> NetConfig {
    let mut unreadable = Vec::new();
    let default_gateways = match netstat.and_then(|t| parse_netstat_defaults(&t).map_err(|e| e.to_string())) {
        Ok(g) => g,
        Err(reason) => {
            unreadable.push(Unreadable::new("default_gateways", reason));
            Vec::new()
        }
    };
    let dns = match scutil_dns {
        Ok(t) => Some(parse_scutil_dns(&t)),
        Err(reason) => {
            unreadable.push(Unreadable::new("dns", reason));
            None
        }
    };
    let listening = match lsof.and_then(|t| parse_lsof_listening(&t).map_err(|e| e.to_string())) {
        Ok(l) => Some(l),
        Err(reason) => {
            unreadable.push(Unreadable::new("listening", reason));
            None
        }
    };
    NetConfig { default_gateways, dns, listening, unreadable }
}

/// The `default` lines of `netstat -rn`: `default  192.168.1.1  UGScg  en0`.
pub fn parse_netstat_defaults(text: &str) -> Result<Vec<DefaultGateway>> {
    if !text.contains("Routing tables") && !text.trim().is_empty() {
        return Err(Error::parse("netstat -rn output", Some(1), "no \"Routing tables\" heading"));
    }
    let mut rank = [0u32; 2];
    let mut list = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.first() != Some(&"default") || words.len() < 4 {
            continue;
        }
        let Some(gateway) = words[1].split('%').next().and_then(|g| g.parse::<IpAddr>().ok()) else { continue };
        let family = usize::from(gateway.is_ipv6());
        list.push(DefaultGateway { gateway, interface: words[3].to_owned(), metric: rank[family] });
        rank[family] += 1;
    }
    Ok(list)
}

/// Nameservers and search domains of the default resolvers in `scutil --dns`.
pub fn parse_scutil_dns(text: &str) -> DnsConfig {
    let mut config =
        DnsConfig { nameservers: Vec::new(), search: Vec::new(), systemd_resolved_stub: false, upstream_nameservers: Vec::new() };
    let body = text.split("DNS configuration (for scoped queries)").next().unwrap_or("");
    for resolver in body.split("\nresolver #").skip(1) {
        let pairs: Vec<(&str, &str)> = crate::collect::command::key_values(resolver, ':').collect();
        if pairs.iter().any(|(k, _)| *k == "domain") {
            continue; // a per-domain resolver (mDNS `local`, a VPN split domain)
        }
        for (key, value) in pairs {
            let list = if key.starts_with("nameserver[") {
                &mut config.nameservers
            } else if key.starts_with("search domain[") {
                &mut config.search
            } else {
                continue;
            };
            if !value.is_empty() && !list.iter().any(|v| v == value) {
                list.push(value.to_owned());
            }
        }
    }
    config
}

/// `lsof +c 0 -nP -l -iTCP -sTCP:LISTEN -iUDP` output (`+c 0`: whole command
/// names, spaces escaped as `\x20`).
pub fn parse_lsof_listening(text: &str) -> Result<Vec<ListeningSocket>> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        None => return Ok(Vec::new()), // lsof prints nothing when nothing matches
        Some((_, header)) if header.starts_with("COMMAND") => {}
        Some(_) => return Err(Error::parse("lsof output", Some(1), "no COMMAND header")),
    }
    let mut sockets: BTreeMap<(Protocol, IpAddr, u16), ListeningSocket> = BTreeMap::new();
    for (index, line) in lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(pid), Some(uid), Some(family), Some(node), Some(name)) = (
            words.get(1).and_then(|p| p.parse::<u32>().ok()),
            words.get(2).and_then(|u| u.parse::<i64>().ok()),
            words.get(4),
            words.get(7),
            words.get(8),
        ) else {
            return Err(Error::parse("lsof output", Some(index + 1), format!("unexpected line {line:?}")));
        };
        let protocol = match *node {
            "TCP" => Protocol::Tcp,
            "UDP" => Protocol::Udp,
            _ => continue,
        };
        if name.contains("->") {
            continue; // a connected UDP socket is not waiting for traffic
        }
        let Some((host, port)) = name.rsplit_once(':') else { continue };
        let Ok(port) = port.parse::<u16>() else { continue };
        let address = match host {
            "*" if *family == "IPv6" => IpAddr::from([0u16; 8]),
            "*" => IpAddr::from([0u8; 4]),
            other => match other.trim_start_matches('[').trim_end_matches(']').split('%').next().and_then(|a| a.parse().ok()) {
                Some(a) => a,
                None => continue,
            },
        };
        let socket = sockets.entry((protocol, address, port)).or_insert_with(|| ListeningSocket {
            protocol,
            address,
            port,
            uid: uid as u32,
            inode: 0,
            processes: Vec::new(),
        });
        if !socket.processes.iter().any(|p| p.pid == pid) {
            socket.processes.push(SocketProcess { pid, name: words.first().map(|c| c.replace("\\x20", " ")) });
        }
    }
    Ok(sockets.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../../../tests/fixtures/netconfig/macos/", $name))
        };
    }

    #[test]
    fn default_routes_dns_and_listeners() {
        let n = netconfig_from(
            Ok(fixture!("netstat_rn.txt").into()),
            Ok(fixture!("scutil_dns.txt").into()),
            Ok(fixture!("lsof_listen.txt").into()),
        );
        assert!(n.unreadable.is_empty(), "{:?}", n.unreadable);
        let gws: Vec<(String, &str, u32)> =
            n.default_gateways.iter().map(|g| (g.gateway.to_string(), g.interface.as_str(), g.metric)).collect();
        assert_eq!(
            gws,
            [("192.168.1.1".into(), "en0", 0), ("fe80::1".into(), "en0", 0), ("fe80::".into(), "utun0", 1)],
            "link# gateways are skipped"
        );
        let dns = n.dns.unwrap();
        assert_eq!(dns.nameservers, ["192.168.1.1", "2a01:e0a::1"]);
        assert_eq!(dns.search, ["corp.example.com"]);
        let l = n.listening.unwrap();
        let found: Vec<(Protocol, String, u16, usize)> =
            l.iter().map(|s| (s.protocol, s.address.to_string(), s.port, s.processes.len())).collect();
        assert_eq!(
            found,
            [
                (Protocol::Tcp, "0.0.0.0".into(), 22, 1),
                (Protocol::Tcp, "127.0.0.1".into(), 5432, 1),
                (Protocol::Tcp, "::".into(), 22, 1),
                (Protocol::Tcp, "::1".into(), 5432, 1),
                (Protocol::Udp, "0.0.0.0".into(), 5353, 2),
            ]
        );
        assert_eq!(l[1].uid, 501);
        assert_eq!(l[4].processes[1].name.as_deref(), Some("Google Chrome Helper"));
    }

    #[test]
    fn failures_truncation_and_garbage() {
        let n = netconfig_from(Err("netstat: not installed".into()), Ok(String::new()), Ok(fixture!("lsof_truncated.txt").into()));
        let fields: Vec<&str> = n.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["default_gateways", "listening"]);
        assert!(n.unreadable[1].reason.contains("line 4"), "{}", n.unreadable[1].reason);
        assert_eq!(n.dns.map(|d| d.nameservers.len()), Some(0));
        assert!(parse_netstat_defaults("garbage").is_err());
        for text in [fixture!("netstat_rn.txt"), fixture!("scutil_dns.txt"), fixture!("lsof_listen.txt")] {
            for cut in 0..text.len() {
                let t = text.get(..cut).unwrap_or("");
                let _ = (parse_netstat_defaults(t), parse_scutil_dns(t), parse_lsof_listening(t));
            }
        }
    }
}
