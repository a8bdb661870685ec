//! Host identity on macOS: `IOPlatformUUID` from
//! `ioreg -rd1 -c IOPlatformExpertDevice`, the Bonjour name from
//! `scutil --get LocalHostName`, and the DNS name from
//! `scutil --get HostName`, which is usually not set (then FQDN and domain
//! are absent with that reason: `.local` is mDNS, not a domain).

use crate::collect::identity::canonical_uuid;
use crate::error::{Error, Result};
use crate::inventory::identity::{HostIdentity, UuidSource};
use crate::inventory::unreadable::Unreadable;

/// Collects the identity section of this Mac.
#[cfg(target_os = "macos")]
pub fn collect(_root: &std::path::Path) -> Result<HostIdentity> {
    use crate::collect::command::run;
    let ioreg = run("ioreg", &["-rd1", "-c", "IOPlatformExpertDevice"], 1 << 20)?;
    let scutil = |key: &str| run("scutil", &["--get", key], 4096).map_err(|e| e.to_string());
    Ok(identity_from(&ioreg, scutil("LocalHostName"), scutil("HostName")))
}

/// The `"IOPlatformUUID" = "…"` property of `ioreg -rd1 -c IOPlatformExpertDevice`.
pub fn parse_ioreg_platform_uuid(text: &str) -> Result<String> {
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("\"IOPlatformUUID\""))
        .ok_or_else(|| Error::parse("ioreg output", None, "no IOPlatformUUID property"))?;
    let value = line.split_once('=').map(|(_, v)| v.trim().trim_matches('"')).unwrap_or("");
    canonical_uuid(value).map_err(|reason| Error::parse("ioreg output", None, reason))
}

/// One name from `scutil --get KEY`: `None` when scutil says it is not set
/// (it then prints `KEY: not set` and exits 1, an `Err` here).
pub fn parse_scutil_name(output: std::result::Result<String, String>) -> std::result::Result<String, String> {
    let text = output?;
    let name = text.trim();
    if name.is_empty() || name.ends_with(": not set") || name.len() > 253 || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("not set ({name:?})"));
    }
    Ok(name.to_owned())
}

/// Builds the section from the ioreg output and the two `scutil --get` results.
pub fn identity_from(
    ioreg: &str,
    local_host_name: std::result::Result<String, String>,
    host_name: std::result::Result<String, String>,
) -> HostIdentity {
    let mut unreadable = Vec::new();
    let (uuid, uuid_source) = match parse_ioreg_platform_uuid(ioreg) {
        Ok(u) => (Some(u), Some(UuidSource::IoPlatformUuid)),
        Err(e) => {
            unreadable.push(Unreadable::new("uuid", e.to_string()));
            (None, None)
        }
    };
    let hostname = match parse_scutil_name(local_host_name) {
        Ok(h) => Some(h),
        Err(reason) => {
            unreadable.push(Unreadable::new("hostname", format!("scutil --get LocalHostName: {reason}")));
            None
        }
    };
    let fqdn = match parse_scutil_name(host_name) {
        Ok(h) if h.contains('.') && !h.ends_with(".local") => Some(h.to_ascii_lowercase()),
        Ok(h) => {
            unreadable.push(Unreadable::new("fqdn", format!("scutil HostName {h:?} is not a DNS name")));
            None
        }
        Err(reason) => {
            unreadable.push(Unreadable::new("fqdn", format!("scutil --get HostName: {reason}")));
            None
        }
    };
    let domain = fqdn.as_deref().and_then(|f| f.split_once('.')).map(|(_, d)| d.to_owned());
    if domain.is_none() {
        unreadable.push(Unreadable::new("domain", "no FQDN to take the DNS domain from"));
    }
    HostIdentity { uuid, uuid_source, hostname, fqdn, domain, unreadable }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IOREG: &str = include_str!("../../../tests/fixtures/identity/macos/ioreg_platform_expert.txt");
    const IOREG_TRUNCATED: &str = include_str!("../../../tests/fixtures/identity/macos/ioreg_truncated.txt");

    #[test]
    fn reads_platform_uuid_and_names() {
        let id = identity_from(IOREG, Ok("Alices-MacBook-Pro\n".into()), Ok("alice-mbp.corp.example.com\n".into()));
        assert_eq!(id.uuid.as_deref(), Some("5f3c2a9e-8b71-4d0c-9e6a-1b2c3d4e5f60"));
        assert_eq!(id.uuid_source, Some(UuidSource::IoPlatformUuid));
        assert_eq!(id.hostname.as_deref(), Some("Alices-MacBook-Pro"));
        assert_eq!(id.fqdn.as_deref(), Some("alice-mbp.corp.example.com"));
        assert_eq!(id.domain.as_deref(), Some("corp.example.com"));
        assert!(id.unreadable.is_empty());
    }

    #[test]
    fn unset_host_name_and_cut_ioreg() {
        let id = identity_from(
            IOREG_TRUNCATED,
            Ok("Alices-MacBook-Pro".into()),
            Err("running scutil --get HostName: exit status: 1: HostName: not set".into()),
        );
        assert_eq!((id.uuid, id.fqdn, id.domain), (None, None, None));
        let fields: Vec<&str> = id.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["uuid", "fqdn", "domain"]);
        assert!(id.unreadable[0].reason.contains("IOPlatformUUID"));
        for cut in 0..IOREG.len() {
            let _ = parse_ioreg_platform_uuid(IOREG.get(..cut).unwrap_or(""));
        }
    }
}
