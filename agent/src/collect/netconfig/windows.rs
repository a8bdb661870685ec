//! Network configuration on Windows, from one PowerShell script
//! ([`SCRIPT`]): default routes (`Get-NetRoute 0.0.0.0/0, ::/0`, metric =
//! route metric + interface metric, as Windows ranks them), DNS servers
//! (`Get-DnsClientServerAddress`, every interface, in order, each once) and
//! the suffix search list, listening TCP sockets
//! (`Get-NetTCPConnection -State Listen`) and bound UDP endpoints
//! (`Get-NetUDPEndpoint`) with their owning process names (`Get-Process`).
//!
//! Windows sockets have no uid or inode: both are 0. The `fec0:0:0:ffff::`
//! DNS addresses Windows lists for interfaces without DNS are defaults,
//! not configuration, and are left out.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::collect::json::{items, strings, text, uint};
use crate::collect::powershell;
use crate::error::{Error, Result};
use crate::inventory::netconfig::{DefaultGateway, DnsConfig, ListeningSocket, NetConfig, Protocol, SocketProcess};

const WHAT: &str = "network configuration script output";

pub const SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
[pscustomobject]@{
 Routes = @(Get-NetRoute -DestinationPrefix '0.0.0.0/0','::/0' | Select-Object DestinationPrefix,NextHop,InterfaceAlias,RouteMetric,InterfaceMetric)
 Dns = @(Get-DnsClientServerAddress | Select-Object InterfaceAlias,AddressFamily,ServerAddresses)
 Search = @((Get-DnsClientGlobalSetting).SuffixSearchList)
 Tcp = @(Get-NetTCPConnection -State Listen | Select-Object LocalAddress,LocalPort,OwningProcess)
 Udp = @(Get-NetUDPEndpoint | Select-Object LocalAddress,LocalPort,OwningProcess)
 Processes = @(Get-Process | Select-Object Id,ProcessName)
} | ConvertTo-Json -Depth 4 -Compress"#;

#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> Result<NetConfig> {
    parse_netconfig(&powershell::run(SCRIPT)?)
}

/// Parses the output of [`SCRIPT`].
pub fn parse_netconfig(output: &str) -> Result<NetConfig> {
    let json = powershell::parse_json(WHAT, output)?;
    let root = items(Some(&json)).into_iter().next().ok_or_else(|| Error::parse(WHAT, None, "no object in the output"))?;
    let mut default_gateways: Vec<DefaultGateway> = items(root.get("Routes"))
        .into_iter()
        .filter_map(|r| {
            let gateway: IpAddr = text(r, "NextHop")?.split('%').next()?.parse().ok()?;
            if gateway.is_unspecified() {
                return None; // on-link default (a VPN adapter): no gateway
            }
            let metric = uint(r, "RouteMetric").unwrap_or(0).saturating_add(uint(r, "InterfaceMetric").unwrap_or(0));
            Some(DefaultGateway {
                gateway,
                interface: text(r, "InterfaceAlias").unwrap_or_default(),
                metric: u32::try_from(metric).unwrap_or(u32::MAX),
            })
        })
        .collect();
    default_gateways.sort_by_key(|g| (g.gateway.is_ipv6(), g.metric));
    let mut nameservers: Vec<String> = Vec::new();
    for entry in items(root.get("Dns")) {
        for server in strings(entry, "ServerAddresses") {
            if server.parse::<IpAddr>().is_ok() && !server.starts_with("fec0:0:0:ffff::") && !nameservers.contains(&server) {
                nameservers.push(server);
            }
        }
    }
    let dns =
        Some(DnsConfig { nameservers, search: strings(root, "Search"), systemd_resolved_stub: false, upstream_nameservers: Vec::new() });
    let names: BTreeMap<u64, String> =
        items(root.get("Processes")).into_iter().filter_map(|p| Some((uint(p, "Id")?, text(p, "ProcessName")?))).collect();
    let mut sockets: BTreeMap<(Protocol, IpAddr, u16), ListeningSocket> = BTreeMap::new();
    for (key, protocol) in [("Tcp", Protocol::Tcp), ("Udp", Protocol::Udp)] {
        for s in items(root.get(key)) {
            let (Some(address), Some(port)) = (
                text(s, "LocalAddress").and_then(|a| a.split('%').next()?.parse::<IpAddr>().ok()),
                uint(s, "LocalPort").and_then(|p| u16::try_from(p).ok()),
            ) else {
                continue;
            };
            let socket = sockets.entry((protocol, address, port)).or_insert_with(|| ListeningSocket {
                protocol,
                address,
                port,
                uid: 0,
                inode: 0,
                processes: Vec::new(),
            });
            if let Some(pid) = uint(s, "OwningProcess").and_then(|p| u32::try_from(p).ok()) {
                if !socket.processes.iter().any(|p| p.pid == pid) {
                    socket.processes.push(SocketProcess { pid, name: names.get(&u64::from(pid)).cloned() });
                }
            }
        }
    }
    Ok(NetConfig { default_gateways, dns, listening: Some(sockets.into_values().collect()), unreadable: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = include_str!("../../../tests/fixtures/netconfig/windows/netconfig.json");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/netconfig/windows/netconfig_truncated.json");

    #[test]
    fn routes_dns_and_listeners() {
        let n = parse_netconfig(NET).unwrap();
        let gws: Vec<(String, &str, u32)> =
            n.default_gateways.iter().map(|g| (g.gateway.to_string(), g.interface.as_str(), g.metric)).collect();
        assert_eq!(
            gws,
            [
                ("10.20.30.1".to_string(), "Ethernet", 25),
                ("192.168.1.1".to_string(), "Wi-Fi", 80),
                ("fe80::1".to_string(), "Ethernet", 281)
            ]
        );
        let dns = n.dns.as_ref().unwrap();
        assert_eq!(dns.nameservers, ["10.20.0.53", "10.20.0.54", "2a01:e0a::53"]);
        assert_eq!(dns.search, ["corp.example.com"]);
        let listening = n.listening.as_ref().unwrap();
        let rdp = listening.iter().find(|s| s.port == 3389 && s.address.is_ipv4()).unwrap();
        assert_eq!((rdp.protocol, rdp.processes[0].pid, rdp.processes[0].name.as_deref()), (Protocol::Tcp, 1234, Some("svchost")));
        let dns_udp = listening.iter().find(|s| s.protocol == Protocol::Udp && s.port == 5353).unwrap();
        assert_eq!(dns_udp.processes.len(), 2, "two processes on one endpoint");
        assert_eq!(listening.len(), 5, "the garbage entry is skipped");
    }

    #[test]
    fn single_objects_truncated_and_empty() {
        let one = parse_netconfig(r#"{"Routes":{"DestinationPrefix":"0.0.0.0/0","NextHop":"192.168.1.1","InterfaceAlias":"Wi-Fi","RouteMetric":0,"InterfaceMetric":35},"Dns":null,"Search":null,"Tcp":{"LocalAddress":"0.0.0.0","LocalPort":135,"OwningProcess":980},"Udp":[],"Processes":[]}"#).unwrap();
        assert_eq!(one.default_gateways.len(), 1);
        assert_eq!(one.listening.as_ref().map(Vec::len), Some(1));
        assert!(parse_netconfig(TRUNCATED).is_err());
        assert!(parse_netconfig("").is_err());
        for cut in 0..NET.len() {
            let _ = parse_netconfig(NET.get(..cut).unwrap_or(""));
        }
    }
}
