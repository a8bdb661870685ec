//! Network configuration beyond interfaces: default gateways, DNS resolvers
//! and listening sockets with their owning processes. Pure domain types;
//! `collect::netconfig` fills them.
//!
//! Invariant: addresses are exactly what the kernel has bound. An IPv6
//! socket bound to `::ffff:127.0.0.1` stays an IPv6 address (as `ss` shows
//! it) and is not folded into IPv4; a dual-stack `::` socket is reported
//! once, in IPv6.

use std::net::IpAddr;

use crate::inventory::unreadable::Unreadable;

/// The network configuration section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NetConfig {
    /// Default routes (IPv4 and IPv6), lowest metric first per family.
    pub default_gateways: Vec<DefaultGateway>,
    /// Resolver configuration; absent (with a reason) when resolv.conf is unreadable.
    pub dns: Option<DnsConfig>,
    /// Listening TCP and unconnected bound UDP sockets; absent (with a
    /// reason) when /proc/net is unreadable.
    pub listening: Option<Vec<ListeningSocket>>,
    pub unreadable: Vec<Unreadable>,
}

/// One default route.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DefaultGateway {
    pub gateway: IpAddr,
    pub interface: String,
    pub metric: u32,
}

/// What `/etc/resolv.conf` says, plus the real upstreams behind a
/// systemd-resolved stub.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DnsConfig {
    /// `nameserver` entries in order, as written (IPv6 may carry `%scope`).
    pub nameservers: Vec<String>,
    /// `search` / `domain` entries: where the resolver completes short
    /// names. Not the host's own domain.
    pub search: Vec<String>,
    /// True when the only resolver is the systemd-resolved stub
    /// (127.0.0.53 / 127.0.0.54): the real servers are in `upstream`.
    pub systemd_resolved_stub: bool,
    /// Servers from `/run/systemd/resolve/resolv.conf` when the stub is in
    /// use and that file is readable; empty otherwise.
    pub upstream_nameservers: Vec<String>,
}

/// Transport protocol of a listening socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

/// A socket waiting for traffic: TCP in LISTEN, or UDP bound to a port and
/// not connected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ListeningSocket {
    pub protocol: Protocol,
    pub address: IpAddr,
    pub port: u16,
    /// Owner uid of the socket (macOS: the uid of the first owning
    /// process; Windows has no socket uid and reports 0).
    pub uid: u32,
    /// Kernel socket inode, the key that links it to processes; 0 where
    /// the OS has none (Windows, macOS).
    pub inode: u64,
    /// Processes holding the socket open (several after fork, e.g. a
    /// pre-forking web server), by pid. Empty when none is visible: the
    /// agent is not root, or the socket belongs to another PID namespace.
    pub processes: Vec<SocketProcess>,
}

/// A process holding a socket.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SocketProcess {
    pub pid: u32,
    /// `/proc/PID/comm` (kernel-truncated to 15 bytes), when readable.
    pub name: Option<String>,
}
