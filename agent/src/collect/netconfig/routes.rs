//! Default gateways from `/proc/net/route` and `/proc/net/ipv6_route`.
//!
//! `/proc/net/route` prints IPv4 addresses as host-order hex of a `__be32`
//! (so little-endian bytes on every platform the agent ships on);
//! `/proc/net/ipv6_route` prints IPv6 addresses byte by byte in network
//! order. A default route has destination 0/0 and the UP and GATEWAY flags;
//! REJECT routes (the kernel's `lo` unreachable entries) are not gateways.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::inventory::netconfig::DefaultGateway;

/// Routing tables beyond this are not a workstation or server's.
pub const MAX_ROUTE_BYTES: usize = 16 << 20;

const RTF_UP: u32 = 0x0001;
const RTF_GATEWAY: u32 = 0x0002;
const RTF_REJECT: u32 = 0x0200;

/// Parses `/proc/net/route` into its default gateways, lowest metric first.
pub fn parse_ipv4_routes(text: &str) -> Result<Vec<DefaultGateway>> {
    const WHAT: &str = "/proc/net/route";
    if text.len() > MAX_ROUTE_BYTES {
        return Err(Error::parse(WHAT, None, format!("larger than {MAX_ROUTE_BYTES} bytes")));
    }
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.starts_with("Iface") => {}
        _ => {
            return Err(Error::parse(WHAT, Some(1), "missing the `Iface Destination Gateway ...` header"));
        }
    }
    let mut out = Vec::new();
    for (idx, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(iface), Some(dst), Some(gw), Some(flags), Some(metric), Some(mask)) =
            (f.first(), f.get(1), f.get(2), f.get(3), f.get(6), f.get(7))
        else {
            return Err(Error::parse(WHAT, Some(idx + 1), format!("expected 11 fields, found {}", f.len())));
        };
        let hex = |s: &str| u32::from_str_radix(s, 16).ok().filter(|_| s.len() == 8);
        let (Some(dst), Some(gw), Some(mask)) = (hex(dst), hex(gw), hex(mask)) else {
            return Err(Error::parse(WHAT, Some(idx + 1), "destination, gateway and mask must be 8 hex digits"));
        };
        let flags = u32::from_str_radix(flags, 16).map_err(|_| Error::parse(WHAT, Some(idx + 1), format!("bad flags {flags:?}")))?;
        let metric: u32 = metric.parse().map_err(|_| Error::parse(WHAT, Some(idx + 1), format!("bad metric {metric:?}")))?;
        if dst == 0 && mask == 0 && is_gateway(flags) {
            out.push(DefaultGateway { gateway: IpAddr::V4(Ipv4Addr::from(gw.to_le_bytes())), interface: (*iface).to_string(), metric });
        }
    }
    out.sort_by_key(|g| g.metric);
    Ok(out)
}

/// Parses `/proc/net/ipv6_route` into its default gateways, lowest metric first.
pub fn parse_ipv6_routes(text: &str) -> Result<Vec<DefaultGateway>> {
    const WHAT: &str = "/proc/net/ipv6_route";
    if text.len() > MAX_ROUTE_BYTES {
        return Err(Error::parse(WHAT, None, format!("larger than {MAX_ROUTE_BYTES} bytes")));
    }
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dst), Some(plen), Some(next_hop), Some(metric), Some(flags), Some(iface)) =
            (f.first(), f.get(1), f.get(4), f.get(5), f.get(8), f.get(9))
        else {
            return Err(Error::parse(WHAT, Some(idx + 1), format!("expected 10 fields, found {}", f.len())));
        };
        let (Some(dst), Some(next_hop)) = (parse_v6_network_order(dst), parse_v6_network_order(next_hop)) else {
            return Err(Error::parse(WHAT, Some(idx + 1), "addresses must be 32 hex digits"));
        };
        let bad = |what: &str| Error::parse(WHAT, Some(idx + 1), format!("bad {what}"));
        let plen = u8::from_str_radix(plen, 16).map_err(|_| bad("prefix length"))?;
        let metric = u32::from_str_radix(metric, 16).map_err(|_| bad("metric"))?;
        let flags = u32::from_str_radix(flags, 16).map_err(|_| bad("flags"))?;
        if dst.is_unspecified() && plen == 0 && !next_hop.is_unspecified() && is_gateway(flags) {
            out.push(DefaultGateway { gateway: IpAddr::V6(next_hop), interface: (*iface).to_string(), metric });
        }
    }
    out.sort_by_key(|g| g.metric);
    Ok(out)
}

fn is_gateway(flags: u32) -> bool {
    flags & (RTF_UP | RTF_GATEWAY) == (RTF_UP | RTF_GATEWAY) && flags & RTF_REJECT == 0
}

fn parse_v6_network_order(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let v = u128::from_str_radix(hex, 16).ok()?;
    Some(Ipv6Addr::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_default_route_from_captured_table() {
        let g = parse_ipv4_routes(include_str!("../../../tests/fixtures/netconfig/proc_net_route.txt")).unwrap();
        assert_eq!(g, [DefaultGateway { gateway: "192.0.2.1".parse().unwrap(), interface: "eth0".into(), metric: 0 }]);
    }

    #[test]
    fn ipv4_laptop_with_wifi_and_ethernet_sorted_by_metric() {
        let g = parse_ipv4_routes(include_str!("../../../tests/fixtures/netconfig/proc_net_route_laptop.txt")).unwrap();
        let got: Vec<(String, &str, u32)> = g.iter().map(|g| (g.gateway.to_string(), g.interface.as_str(), g.metric)).collect();
        assert_eq!(got, [("192.168.1.1".to_string(), "enp0s31f6", 100), ("192.168.178.1".to_string(), "wlp2s0", 600)]);
    }

    #[test]
    fn ipv6_default_route_skips_reject_entries() {
        let g = parse_ipv6_routes(include_str!("../../../tests/fixtures/netconfig/proc_net_ipv6_route.txt")).unwrap();
        assert_eq!(g, [DefaultGateway { gateway: "fd00::1".parse().unwrap(), interface: "eth0".into(), metric: 1024 }]);
    }

    #[test]
    fn malformed_route_tables_are_errors() {
        assert!(parse_ipv4_routes("").unwrap_err().to_string().contains("header"));
        let e = parse_ipv4_routes("Iface\tDestination\neth0\t00000000\t010200C0\n").unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let e = parse_ipv6_routes("zz 00 x\n").unwrap_err().to_string();
        assert!(e.contains("/proc/net/ipv6_route at line 1"), "{e}");
        assert!(parse_ipv6_routes(&"é".repeat(40)).is_err());
    }

    /// Oracle: `ip -4 route show default` / `ip -6 route show default`.
    #[test]
    fn live_default_gateways_equal_ip_route() {
        for (flag, file, parse) in [
            ("-4", "/proc/net/route", parse_ipv4_routes as fn(&str) -> Result<Vec<DefaultGateway>>),
            ("-6", "/proc/net/ipv6_route", parse_ipv6_routes),
        ] {
            let Ok(out) = std::process::Command::new("ip").args([flag, "route", "show", "default"]).output() else {
                eprintln!("skipping: ip not installed");
                return;
            };
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let mut ours: Vec<String> = parse(&text).unwrap().iter().map(|g| format!("{} {}", g.gateway, g.interface)).collect();
            let mut theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    let via = f.iter().position(|w| *w == "via")?;
                    let dev = f.iter().position(|w| *w == "dev")?;
                    Some(format!("{} {}", f.get(via + 1)?, f.get(dev + 1)?))
                })
                .collect();
            ours.sort();
            theirs.sort();
            assert_eq!(ours, theirs, "{file} vs ip {flag} route");
        }
    }
}
