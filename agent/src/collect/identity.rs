//! Host identity on Linux: host UUID, hostname, FQDN, domain.
//!
//! Reads, under `root` ("/" in production, a fixture tree in tests):
//! `/sys/class/dmi/id/product_uuid` (root only), `/etc/machine-id`,
//! `/proc/sys/kernel/hostname`, `/proc/sys/kernel/domainname`, `/etc/hosts`.
//! The DMI UUID wins when readable and not a firmware placeholder (all zeros
//! or all `f`); otherwise the machine id. The FQDN is never taken from
//! resolv.conf `search`/`domain`: those are resolver settings, not the host's
//! name. Parsers are pure, bounded and never panic.

pub mod macos;
pub mod windows;

use std::path::Path;

use crate::collect::fs::read_under;
use crate::error::{Error, Result};
use crate::inventory::identity::{HostIdentity, UuidSource};
use crate::inventory::unreadable::{Unreadable, io_reason};

/// Largest `/etc/hosts` we parse; anything bigger is not a hosts file.
const MAX_HOSTS_BYTES: usize = 4 << 20;
/// Small sysfs/procfs value files.
const MAX_VALUE_BYTES: usize = 4096;

/// Collects the identity section from the system under `root`.
pub fn collect(root: &Path) -> Result<HostIdentity> {
    let mut unreadable = Vec::new();

    let (uuid, uuid_source) = match read_under(root, "sys/class/dmi/id/product_uuid", MAX_VALUE_BYTES)
        .map_err(|e| io_reason("/sys/class/dmi/id/product_uuid", &e))
        .and_then(|t| parse_dmi_uuid(&t).map_err(|e| e.to_string()))
    {
        Ok(u) => (Some(u), Some(UuidSource::Dmi)),
        Err(dmi_reason) => {
            match read_under(root, "etc/machine-id", MAX_VALUE_BYTES)
                .map_err(|e| io_reason("/etc/machine-id", &e))
                .and_then(|t| parse_machine_id(&t).map_err(|e| e.to_string()))
            {
                Ok(id) => (Some(id), Some(UuidSource::MachineId)),
                Err(mid_reason) => {
                    unreadable.push(Unreadable::new("uuid", format!("{dmi_reason}; {mid_reason}")));
                    (None, None)
                }
            }
        }
    };

    let hostname = match read_under(root, "proc/sys/kernel/hostname", MAX_VALUE_BYTES) {
        Ok(t) => match parse_hostname(&t) {
            Ok(h) => Some(h),
            Err(e) => {
                unreadable.push(Unreadable::new("hostname", e.to_string()));
                None
            }
        },
        Err(e) => {
            unreadable.push(Unreadable::from_io("hostname", "/proc/sys/kernel/hostname", &e));
            None
        }
    };

    let kernel_domain = read_under(root, "proc/sys/kernel/domainname", MAX_VALUE_BYTES).ok().and_then(|t| parse_kernel_domainname(&t));

    let hosts = read_under(root, "etc/hosts", MAX_HOSTS_BYTES);
    let fqdn = match (&hostname, &hosts) {
        (None, _) => {
            unreadable.push(Unreadable::new("fqdn", "host name unknown"));
            None
        }
        (Some(h), _) if h.contains('.') => Some(h.clone()),
        (Some(h), Ok(text)) => match fqdn_from_hosts(text, h) {
            Ok(Some(f)) => Some(f),
            Ok(None) => {
                unreadable
                    .push(Unreadable::new("fqdn", format!("host name {h:?} has no dotted name in /etc/hosts and is not itself qualified")));
                None
            }
            Err(e) => {
                unreadable.push(Unreadable::new("fqdn", e.to_string()));
                None
            }
        },
        (Some(_), Err(e)) => {
            unreadable.push(Unreadable::from_io("fqdn", "/etc/hosts", e));
            None
        }
    };

    let domain = domain_of(fqdn.as_deref()).or(kernel_domain);
    if domain.is_none() {
        unreadable.push(Unreadable::new(
            "domain",
            "no FQDN and kernel domainname is \"(none)\" (resolv.conf search domains are not the host's domain)",
        ));
    }

    Ok(HostIdentity { uuid, uuid_source, hostname, fqdn, domain, unreadable })
}

/// Parses `/sys/class/dmi/id/product_uuid`: a canonical 8-4-4-4-12 UUID,
/// returned lower-cased. Firmware placeholders (all zeros, all `f`) are
/// errors because they are shared by many machines and would merge hosts.
pub fn parse_dmi_uuid(text: &str) -> Result<String> {
    const WHAT: &str = "/sys/class/dmi/id/product_uuid";
    let t = text.trim();
    if t.len() != 36 {
        return Err(Error::parse(WHAT, Some(1), format!("expected a 36-character UUID, got {} characters", t.len())));
    }
    let well_formed = t.char_indices().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => c == '-',
        _ => c.is_ascii_hexdigit(),
    });
    if !well_formed {
        return Err(Error::parse(WHAT, Some(1), format!("{t:?} is not an 8-4-4-4-12 hex UUID")));
    }
    let lower = t.to_ascii_lowercase();
    let digits: String = lower.chars().filter(|c| *c != '-').collect();
    if digits.chars().all(|c| c == '0') || digits.chars().all(|c| c == 'f') {
        return Err(Error::parse(WHAT, Some(1), format!("{lower} is a firmware placeholder, not a unique id")));
    }
    Ok(lower)
}

/// A canonical 8-4-4-4-12 hex UUID, lower-cased; firmware placeholders
/// (all zeros, all `f`, the AMI default `03000200-0400-0500-0006-000700080009`)
/// are refused: shared by many machines, they would merge hosts. Used by the
/// Windows and macOS identity parsers.
pub fn canonical_uuid(text: &str) -> std::result::Result<String, String> {
    let t = text.trim();
    let well_formed = t.len() == 36
        && t.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
    if !well_formed {
        return Err(format!("{t:?} is not an 8-4-4-4-12 hex UUID"));
    }
    let lower = t.to_ascii_lowercase();
    let digits = || lower.chars().filter(|c| *c != '-');
    if digits().all(|c| c == '0') || digits().all(|c| c == 'f') || lower == "03000200-0400-0500-0006-000700080009" {
        return Err(format!("{lower} is a firmware placeholder, not a unique id"));
    }
    Ok(lower)
}

/// Parses `/etc/machine-id`: 32 lower-case hex digits on one line.
pub fn parse_machine_id(text: &str) -> Result<String> {
    const WHAT: &str = "/etc/machine-id";
    let t = text.trim();
    if t.is_empty() || t == "uninitialized" {
        return Err(Error::parse(WHAT, Some(1), "machine id is not initialized yet"));
    }
    if t.len() != 32 || !t.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::parse(WHAT, Some(1), "expected 32 hexadecimal digits"));
    }
    Ok(t.to_ascii_lowercase())
}

/// Parses `/proc/sys/kernel/hostname`.
pub fn parse_hostname(text: &str) -> Result<String> {
    let t = text.trim();
    if t.is_empty() || t == "(none)" {
        return Err(Error::parse("/proc/sys/kernel/hostname", Some(1), "host name is not set"));
    }
    if t.len() > 253 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::parse("/proc/sys/kernel/hostname", Some(1), "not a valid host name"));
    }
    Ok(t.to_string())
}

/// Parses `/proc/sys/kernel/domainname`; `(none)` and empty mean unset.
pub fn parse_kernel_domainname(text: &str) -> Option<String> {
    let t = text.trim();
    (!t.is_empty() && t != "(none)" && !t.chars().any(char::is_whitespace)).then(|| t.to_string())
}

/// Finds the FQDN of `hostname` in an `/etc/hosts` text the way the
/// resolver's canonical name does: the first entry whose names include
/// `hostname` (or `hostname.something`) gives its first (canonical) name,
/// which counts only if it is dotted and its first label is `hostname`.
pub fn fqdn_from_hosts(text: &str, hostname: &str) -> Result<Option<String>> {
    if text.len() > MAX_HOSTS_BYTES {
        return Err(Error::parse("/etc/hosts", None, format!("larger than {MAX_HOSTS_BYTES} bytes")));
    }
    let short = hostname.split('.').next().unwrap_or(hostname);
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(_addr) = fields.next() else { continue };
        let names: Vec<&str> = fields.collect();
        let mentions = names.iter().any(|n| {
            n.eq_ignore_ascii_case(hostname)
                || n.split('.').next().is_some_and(|first| first.eq_ignore_ascii_case(short)) && n.contains('.')
        });
        if !mentions {
            continue;
        }
        // The canonical name first, then aliases: prefer a dotted name whose
        // first label is the host name.
        if let Some(f) =
            names.iter().find(|n| n.contains('.') && n.split('.').next().is_some_and(|first| first.eq_ignore_ascii_case(short)))
        {
            return Ok(Some(f.trim_end_matches('.').to_string()));
        }
    }
    Ok(None)
}

/// The DNS domain of a dotted name: everything after the first label.
fn domain_of(fqdn: Option<&str>) -> Option<String> {
    let (_, d) = fqdn?.split_once('.')?;
    (!d.is_empty()).then(|| d.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/identity")
    }

    #[test]
    fn dmi_uuid_is_lower_cased() {
        let u = parse_dmi_uuid(include_str!("../../tests/fixtures/identity/product_uuid.txt")).unwrap();
        assert_eq!(u, "4c4c4544-0042-3510-8056-b4c04f564e32");
    }

    #[test]
    fn placeholder_and_malformed_uuids_are_refused() {
        let e = parse_dmi_uuid(include_str!("../../tests/fixtures/identity/product_uuid_zero.txt")).unwrap_err();
        assert!(e.to_string().contains("placeholder"), "{e}");
        let e = parse_dmi_uuid(include_str!("../../tests/fixtures/identity/product_uuid_bad.txt")).unwrap_err();
        assert!(e.to_string().contains("36-character"), "{e}");
        // Multi-byte characters must not trip char-boundary slicing.
        assert!(parse_dmi_uuid("ééééééééééééééééééé").is_err());
        assert!(parse_dmi_uuid("").is_err());
    }

    #[test]
    fn machine_id_parses_and_rejects_garbage() {
        let id = parse_machine_id(include_str!("../../tests/fixtures/identity/machine-id.txt")).unwrap();
        assert_eq!(id.len(), 32);
        assert!(parse_machine_id("uninitialized\n").is_err());
        assert!(parse_machine_id("xyz").is_err());
    }

    #[test]
    fn fqdn_comes_from_hosts_canonical_name() {
        let hosts = include_str!("../../tests/fixtures/identity/hosts_fqdn.txt");
        assert_eq!(fqdn_from_hosts(hosts, "web-07").unwrap().as_deref(), Some("web-07.corp.example.com"));
        assert_eq!(fqdn_from_hosts(hosts, "db-01").unwrap(), None);
        let short = include_str!("../../tests/fixtures/identity/hosts_short.txt");
        assert_eq!(fqdn_from_hosts(short, "vm").unwrap(), None);
    }

    #[test]
    fn kernel_domainname_none_is_unset() {
        assert_eq!(parse_kernel_domainname("(none)\n"), None);
        assert_eq!(parse_kernel_domainname("corp\n").as_deref(), Some("corp"));
    }

    #[test]
    fn collect_on_fixture_tree_prefers_dmi_and_ignores_resolv_search() {
        let id = collect(&fixtures().join("root")).unwrap();
        assert_eq!(id.uuid.as_deref(), Some("4c4c4544-0042-3510-8056-b4c04f564e32"));
        assert_eq!(id.uuid_source, Some(UuidSource::Dmi));
        assert_eq!(id.hostname.as_deref(), Some("web-07"));
        assert_eq!(id.fqdn.as_deref(), Some("web-07.corp.example.com"));
        assert_eq!(id.domain.as_deref(), Some("corp.example.com"));
        assert!(id.unreadable.is_empty(), "{:?}", id.unreadable);
    }

    #[test]
    fn collect_on_empty_root_reports_every_field_absent_with_reason() {
        let id = collect(&fixtures().join("does-not-exist")).unwrap();
        assert_eq!(id.uuid, None);
        let fields: Vec<&str> = id.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["uuid", "hostname", "fqdn", "domain"]);
        assert!(id.unreadable.iter().all(|u| !u.reason.is_empty()));
    }

    /// Oracle: the real machine's host name and machine id.
    #[test]
    fn real_machine_matches_hostname_and_machine_id() {
        if !Path::new("/proc/sys/kernel/hostname").exists() {
            eprintln!("skipping: no /proc/sys/kernel/hostname");
            return;
        }
        let id = collect(Path::new("/")).unwrap();
        let expected = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(id.hostname.as_deref(), Some(expected.trim()));
        if let Ok(out) = std::process::Command::new("hostname").output() {
            assert_eq!(id.hostname.as_deref(), Some(String::from_utf8_lossy(&out.stdout).trim()));
        }
        if id.uuid_source == Some(UuidSource::MachineId) {
            let mid = std::fs::read_to_string("/etc/machine-id").unwrap();
            assert_eq!(id.uuid.as_deref(), Some(mid.trim()));
        }
    }
}
