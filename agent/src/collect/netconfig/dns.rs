//! DNS resolver configuration from `/etc/resolv.conf` (resolv.conf(5)).
//!
//! Keeps `nameserver` entries in order and `search`/`domain` entries as
//! resolver search domains. When the only nameserver is the
//! systemd-resolved stub (127.0.0.53, or 127.0.0.54 in proxy mode) the
//! caller also parses `/run/systemd/resolve/resolv.conf` for the real
//! upstream servers. Pure and bounded; never panics.

use std::net::IpAddr;

use crate::error::{Error, Result};

/// resolv.conf is tiny; anything past this is not one.
pub const MAX_RESOLV_CONF_BYTES: usize = 1 << 20;

/// What one resolv.conf text says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
}

impl ResolvConf {
    /// True when every nameserver is a systemd-resolved stub listener.
    pub fn is_systemd_resolved_stub(&self) -> bool {
        !self.nameservers.is_empty() && self.nameservers.iter().all(|n| n == "127.0.0.53" || n == "127.0.0.54")
    }
}

/// Parses a resolv.conf text. `what` names the file for errors. Lines that
/// the libc resolver would ignore are ignored here too; a `nameserver`
/// that is not an IP address is an error because libc would silently drop it
/// and the operator should know.
pub fn parse_resolv_conf(text: &str, what: &str) -> Result<ResolvConf> {
    if text.len() > MAX_RESOLV_CONF_BYTES {
        return Err(Error::parse(what, None, format!("larger than {MAX_RESOLV_CONF_BYTES} bytes")));
    }
    let mut out = ResolvConf::default();
    for (idx, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                let Some(addr) = words.next() else {
                    return Err(Error::parse(what, Some(idx + 1), "nameserver without an address"));
                };
                // IPv6 link-local servers carry a `%iface` scope.
                let bare = addr.split('%').next().unwrap_or(addr);
                if bare.parse::<IpAddr>().is_err() {
                    return Err(Error::parse(what, Some(idx + 1), format!("nameserver {addr:?} is not an IP address")));
                }
                out.nameservers.push(addr.to_string());
            }
            // The last `search` or `domain` line wins, as in libc.
            Some("search") | Some("domain") => {
                out.search = words.map(|w| w.trim_end_matches('.').to_string()).collect();
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_resolv_conf() {
        let r = parse_resolv_conf(include_str!("../../../tests/fixtures/netconfig/resolv.conf"), "/etc/resolv.conf").unwrap();
        assert_eq!(r.nameservers, ["10.255.255.53"]);
        assert!(!r.is_systemd_resolved_stub());
    }

    #[test]
    fn systemd_resolved_stub_and_upstream() {
        let stub = parse_resolv_conf(include_str!("../../../tests/fixtures/netconfig/resolv_stub.conf"), "/etc/resolv.conf").unwrap();
        assert!(stub.is_systemd_resolved_stub());
        assert_eq!(stub.search, ["corp.example.com", "example.com"]);
        let up =
            parse_resolv_conf(include_str!("../../../tests/fixtures/netconfig/resolv_upstream.conf"), "/run/systemd/resolve/resolv.conf")
                .unwrap();
        assert_eq!(up.nameservers, ["192.168.178.1", "fe80::1%wlp2s0", "2001:4860:4860::8888"]);
    }

    #[test]
    fn bad_nameserver_is_a_clear_error() {
        let e = parse_resolv_conf("# x\nnameserver dns.example.com\n", "/etc/resolv.conf").unwrap_err().to_string();
        assert!(e.contains("/etc/resolv.conf at line 2") && e.contains("not an IP address"), "{e}");
        assert!(parse_resolv_conf("nameserver\n", "r").is_err());
    }
}
