//! Listening sockets from `/proc/net/{tcp,tcp6,udp,udp6}` and their owners.
//!
//! Kernel format (net/ipv4/tcp_ipv4.c `get_tcp4_sock`, net/ipv6/tcp_ipv6.c):
//! one header line, then `sl: local remote st tx:rx tr:when retrnsmt uid
//! timeout inode ...`. Addresses are hex of the in-memory `__be32` words
//! printed as host-order integers: IPv4 is one 32-bit word, IPv6 four, each
//! of which must be turned back into bytes little-endian (every platform the
//! agent ships on is little-endian). Ports are plain big-endian hex.
//!
//! "Listening" means what `ss -l` means: TCP state 0A (LISTEN); UDP state
//! 07 (CLOSE, i.e. unconnected) with a non-zero local port and a zero
//! remote. Parsers are pure, bounded, and never panic.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};
use crate::inventory::netconfig::{ListeningSocket, Protocol, SocketProcess};

/// A busy server has one line per connection (~150 bytes); 128 MiB is about
/// 850k sockets, beyond which the file is not worth holding in memory.
pub const MAX_PROC_NET_BYTES: usize = 128 << 20;

const TCP_LISTEN: u8 = 0x0A;
const UDP_UNCONNECTED: u8 = 0x07;

/// Which `/proc/net` table a text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcNetTable {
    Tcp,
    Tcp6,
    Udp,
    Udp6,
}

impl ProcNetTable {
    pub const ALL: [ProcNetTable; 4] = [ProcNetTable::Tcp, ProcNetTable::Tcp6, ProcNetTable::Udp, ProcNetTable::Udp6];

    /// Path below `/proc/net/`.
    pub fn file_name(self) -> &'static str {
        match self {
            ProcNetTable::Tcp => "tcp",
            ProcNetTable::Tcp6 => "tcp6",
            ProcNetTable::Udp => "udp",
            ProcNetTable::Udp6 => "udp6",
        }
    }

    fn protocol(self) -> Protocol {
        match self {
            ProcNetTable::Tcp | ProcNetTable::Tcp6 => Protocol::Tcp,
            ProcNetTable::Udp | ProcNetTable::Udp6 => Protocol::Udp,
        }
    }

    fn is_v6(self) -> bool {
        matches!(self, ProcNetTable::Tcp6 | ProcNetTable::Udp6)
    }
}

/// Parses one `/proc/net/{tcp,tcp6,udp,udp6}` text and keeps the listening
/// sockets, with no owning processes yet (see [`attach_processes`]).
pub fn parse_listening(text: &str, table: ProcNetTable) -> Result<Vec<ListeningSocket>> {
    let what = format!("/proc/net/{}", table.file_name());
    if text.len() > MAX_PROC_NET_BYTES {
        return Err(Error::parse(what, None, format!("larger than {MAX_PROC_NET_BYTES} bytes")));
    }
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.contains("local_address") => {}
        _ => {
            return Err(Error::parse(what, Some(1), "missing the `sl local_address ...` header line"));
        }
    }
    let mut out = Vec::new();
    for (idx, line) in lines {
        let lineno = idx + 1;
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(st), Some(uid), Some(inode)) = (f.get(1), f.get(2), f.get(3), f.get(7), f.get(9)) else {
            return Err(Error::parse(what, Some(lineno), format!("expected at least 10 fields, found {}", f.len())));
        };
        let state = u8::from_str_radix(st, 16).map_err(|_| Error::parse(&what, Some(lineno), format!("bad socket state {st:?}")))?;
        let (address, port) = parse_endpoint(local, table.is_v6())
            .ok_or_else(|| Error::parse(&what, Some(lineno), format!("bad local address {local:?}")))?;
        let (remote_addr, remote_port) = parse_endpoint(remote, table.is_v6())
            .ok_or_else(|| Error::parse(&what, Some(lineno), format!("bad remote address {remote:?}")))?;
        let uid: u32 = uid.parse().map_err(|_| Error::parse(&what, Some(lineno), format!("bad uid {uid:?}")))?;
        let inode: u64 = inode.parse().map_err(|_| Error::parse(&what, Some(lineno), format!("bad inode {inode:?}")))?;
        let listening = match table.protocol() {
            Protocol::Tcp => state == TCP_LISTEN,
            Protocol::Udp => state == UDP_UNCONNECTED && port != 0 && remote_port == 0 && remote_addr.is_unspecified(),
        };
        if listening {
            out.push(ListeningSocket { protocol: table.protocol(), address, port, uid, inode, processes: Vec::new() });
        }
    }
    Ok(out)
}

/// Parses `HEX_ADDR:HEX_PORT` as the kernel prints it.
pub fn parse_endpoint(s: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (addr, port) = s.split_once(':')?;
    if port.len() != 4 {
        return None;
    }
    let port = u16::from_str_radix(port, 16).ok()?;
    let addr = if v6 { IpAddr::V6(parse_v6_words(addr)?) } else { IpAddr::V4(parse_v4_word(addr)?) };
    Some((addr, port))
}

/// One `%08X` word holding a `__be32`: its bytes in memory, little-endian.
fn parse_v4_word(hex: &str) -> Option<Ipv4Addr> {
    if hex.len() != 8 {
        return None;
    }
    Some(Ipv4Addr::from(u32::from_str_radix(hex, 16).ok()?.to_le_bytes()))
}

/// Four `%08X` words, each a little-endian 32-bit chunk of the address.
fn parse_v6_words(hex: &str) -> Option<Ipv6Addr> {
    if hex.len() != 32 || !hex.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
        let word = hex.get(i * 8..i * 8 + 8)?;
        chunk.copy_from_slice(&u32::from_str_radix(word, 16).ok()?.to_le_bytes());
    }
    Some(Ipv6Addr::from(bytes))
}

/// One open socket descriptor found under `/proc/PID/fd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdSocketLink {
    pub pid: u32,
    pub inode: u64,
}

/// The inode in a `/proc/PID/fd/N` link target `socket:[INODE]`; `None`
/// for files, pipes, anon inodes.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Fills `processes` of each socket from the fd links (pid + inode) and the
/// process names by pid. Pure: the `/proc` scan is the caller's job.
pub fn attach_processes(sockets: &mut [ListeningSocket], links: &[FdSocketLink], names: &HashMap<u32, String>) {
    let mut by_inode: HashMap<u64, Vec<u32>> = HashMap::new();
    for l in links {
        by_inode.entry(l.inode).or_default().push(l.pid);
    }
    for s in sockets {
        // Inode 0 means the socket is orphaned (e.g. TIME_WAIT): no owner.
        if s.inode == 0 {
            continue;
        }
        if let Some(pids) = by_inode.get(&s.inode) {
            let mut pids = pids.clone();
            pids.sort_unstable();
            pids.dedup();
            s.processes = pids.into_iter().map(|pid| SocketProcess { pid, name: names.get(&pid).cloned() }).collect();
        }
    }
}

/// Parses `/proc/PID/comm`: one line, kernel-truncated to 15 bytes.
pub fn parse_comm(text: &str) -> Option<String> {
    let t = text.trim_end_matches('\n');
    (!t.is_empty() && t.len() <= 64).then(|| t.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = include_str!("../../../tests/fixtures/netconfig/proc_net_tcp.txt");
    const TCP6: &str = include_str!("../../../tests/fixtures/netconfig/proc_net_tcp6.txt");
    const UDP: &str = include_str!("../../../tests/fixtures/netconfig/proc_net_udp.txt");
    const UDP6: &str = include_str!("../../../tests/fixtures/netconfig/proc_net_udp6.txt");

    fn endpoints(v: &[ListeningSocket]) -> Vec<String> {
        let mut out: Vec<String> = v
            .iter()
            .map(|s| match s.address {
                IpAddr::V4(a) => format!("{a}:{}", s.port),
                IpAddr::V6(a) => format!("[{a}]:{}", s.port),
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn tcp4_listen_only_and_byte_order() {
        let v = parse_listening(TCP, ProcNetTable::Tcp).unwrap();
        // The fixture holds two listeners plus one established connection
        // (both ends of it) which must not count.
        assert_eq!(endpoints(&v), ["0.0.0.0:2024", "127.0.0.1:8631"]);
        assert!(v.iter().all(|s| s.protocol == Protocol::Tcp));
    }

    #[test]
    fn tcp6_words_are_little_endian_and_mapped_addresses_stay_v6() {
        let v = parse_listening(TCP6, ProcNetTable::Tcp6).unwrap();
        assert_eq!(endpoints(&v), ["[::1]:8634", "[::]:8632", "[::]:8633", "[::ffff:127.0.0.1]:8635", "[fd00::2]:8636"]);
    }

    #[test]
    fn udp_unconnected_only() {
        let v = parse_listening(UDP, ProcNetTable::Udp).unwrap();
        // 127.0.0.1:8639 is connected to port 9: not listening.
        assert_eq!(endpoints(&v), ["0.0.0.0:8637"]);
        let v = parse_listening(UDP6, ProcNetTable::Udp6).unwrap();
        assert_eq!(endpoints(&v), ["[::]:8638"]);
        assert_eq!(v.first().map(|s| s.inode), Some(11150));
    }

    /// The fixture files were captured together with `ss -ltnH` / `ss -lunH`
    /// on the same machine; the parsed sets must match ss exactly.
    #[test]
    fn fixtures_agree_with_ss_captured_alongside() {
        let mut tcp = parse_listening(TCP, ProcNetTable::Tcp).unwrap();
        tcp.extend(parse_listening(TCP6, ProcNetTable::Tcp6).unwrap());
        let ss = ss_endpoints(include_str!("../../../tests/fixtures/netconfig/ss_ltnH.txt"));
        assert_eq!(normalized(&tcp), ss);
        let mut udp = parse_listening(UDP, ProcNetTable::Udp).unwrap();
        udp.extend(parse_listening(UDP6, ProcNetTable::Udp6).unwrap());
        let ss = ss_endpoints(include_str!("../../../tests/fixtures/netconfig/ss_lunH.txt"));
        assert_eq!(normalized(&udp), ss);
    }

    #[test]
    fn owners_are_attached_by_inode() {
        let fds = include_str!("../../../tests/fixtures/netconfig/fd_sockets.txt");
        let mut links = Vec::new();
        let mut names = HashMap::new();
        for line in fds.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let pid: u32 = f[0].parse().unwrap();
            names.insert(pid, f[1].to_string());
            links.push(FdSocketLink { pid, inode: parse_socket_link(f[2]).unwrap() });
        }
        let mut v = parse_listening(TCP, ProcNetTable::Tcp).unwrap();
        attach_processes(&mut v, &links, &names);
        let py = v.iter().find(|s| s.port == 8631).unwrap();
        assert_eq!(py.processes, [SocketProcess { pid: 7261, name: Some("python3".into()) }]);
        // Port 2024 belongs to a process outside this PID namespace.
        assert!(v.iter().find(|s| s.port == 2024).unwrap().processes.is_empty());
    }

    #[test]
    fn socket_link_parsing() {
        assert_eq!(parse_socket_link("socket:[11143]"), Some(11143));
        assert_eq!(parse_socket_link("pipe:[11122]"), None);
        assert_eq!(parse_socket_link("socket:[x]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
    }

    #[test]
    fn truncated_and_malformed_tables_are_clear_errors() {
        let e = parse_listening(include_str!("../../../tests/fixtures/netconfig/proc_net_tcp_truncated.txt"), ProcNetTable::Tcp)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/proc/net/tcp at line 3") && e.contains("at least 10 fields"), "{e}");
        let e = parse_listening("", ProcNetTable::Tcp6).unwrap_err().to_string();
        assert!(e.contains("header"), "{e}");
        let bad = "  sl  local_address rem_address st\n   0: 0000ZZ00:07E8 00000000:0000 0A 0:0 0:0 0 0 0 1 1\n";
        let e = parse_listening(bad, ProcNetTable::Tcp).unwrap_err().to_string();
        assert!(e.contains("bad local address"), "{e}");
        // IPv6 text in an IPv4 table, and multibyte garbage, never panic.
        assert!(parse_listening(TCP6, ProcNetTable::Tcp).is_err());
        let weird = "local_address\n0: éééééééééééééééééééééééééééééééé:0000 x 0A a b c d e f\n";
        assert!(parse_listening(weird, ProcNetTable::Tcp6).is_err());
    }

    /// ss prints a dual-stack `::` socket as `*`, brackets IPv6 and may add
    /// `%iface`; normalize to `addr:port` with bare IPv6 in brackets.
    fn ss_endpoints(text: &str) -> Vec<String> {
        let mut out: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .map(|local| {
                let (addr, port) = local.rsplit_once(':').unwrap();
                let addr = addr.split('%').next().unwrap();
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                let addr = if addr == "*" { "::" } else { addr };
                let ip: IpAddr = addr.parse().unwrap();
                match ip {
                    IpAddr::V4(a) => format!("{a}:{port}"),
                    IpAddr::V6(a) => format!("[{a}]:{port}"),
                }
            })
            .collect();
        out.sort();
        out
    }

    fn normalized(v: &[ListeningSocket]) -> Vec<String> {
        endpoints(v)
    }

    /// Oracle: the live machine's listening TCP set equals `ss -ltnH`.
    #[test]
    fn live_tcp_listeners_equal_ss() {
        let Ok(out) = std::process::Command::new("ss").arg("-ltnH").output() else {
            eprintln!("skipping: ss not installed");
            return;
        };
        assert!(out.status.success(), "ss -ltnH failed");
        let mut tcp = Vec::new();
        for t in [ProcNetTable::Tcp, ProcNetTable::Tcp6] {
            let Ok(text) = std::fs::read_to_string(format!("/proc/net/{}", t.file_name())) else {
                continue;
            };
            tcp.extend(parse_listening(&text, t).unwrap());
        }
        assert_eq!(normalized(&tcp), ss_endpoints(&String::from_utf8_lossy(&out.stdout)));
    }
}
