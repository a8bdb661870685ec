//! Host identity on Windows: one PowerShell script reading
//! `Win32_ComputerSystemProduct.UUID` (the SMBIOS UUID),
//! `HKLM\SOFTWARE\Microsoft\Cryptography\MachineGuid`, and
//! `Win32_ComputerSystem` (`DNSHostName`, `Domain`, `PartOfDomain`).
//!
//! The SMBIOS UUID wins unless missing or a placeholder; then MachineGuid
//! (which changes on reinstall or sysprep). `Domain` is the DNS domain only
//! when `PartOfDomain` is true; otherwise it is the workgroup name and the
//! domain is absent with that reason. The FQDN is host name + domain.

use serde_json::Value;

use crate::collect::identity::canonical_uuid;
use crate::collect::json::{boolean, text};
use crate::collect::powershell;
use crate::error::Result;
use crate::inventory::identity::{HostIdentity, UuidSource};
use crate::inventory::unreadable::Unreadable;

const WHAT: &str = "identity script output";

/// The script; its output is what [`parse_identity`] reads.
pub const SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
$p = Get-CimInstance Win32_ComputerSystemProduct
$c = Get-CimInstance Win32_ComputerSystem
$g = (Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\Cryptography' -Name MachineGuid).MachineGuid
[pscustomobject]@{ Uuid=$p.UUID; MachineGuid=$g; Hostname=$c.DNSHostName; Domain=$c.Domain; PartOfDomain=$c.PartOfDomain } | ConvertTo-Json -Depth 4 -Compress"#;

/// Collects the identity section of this Windows host.
#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> Result<HostIdentity> {
    parse_identity(&powershell::run(SCRIPT)?)
}

/// Parses the output of [`SCRIPT`].
pub fn parse_identity(output: &str) -> Result<HostIdentity> {
    let json = powershell::parse_json(WHAT, output)?;
    let v = crate::collect::json::items(Some(&json)).into_iter().next().cloned().unwrap_or(Value::Null);
    let mut unreadable = Vec::new();
    let smbios = text(&v, "Uuid").ok_or_else(|| "Win32_ComputerSystemProduct.UUID is empty".to_owned()).and_then(|u| canonical_uuid(&u));
    let (uuid, uuid_source) = match smbios {
        Ok(u) => (Some(u), Some(UuidSource::Smbios)),
        Err(smbios_reason) => {
            match text(&v, "MachineGuid").ok_or_else(|| "MachineGuid is not set".to_owned()).and_then(|g| canonical_uuid(&g)) {
                Ok(g) => (Some(g), Some(UuidSource::WindowsMachineGuid)),
                Err(guid_reason) => {
                    unreadable.push(Unreadable::new("uuid", format!("{smbios_reason}; {guid_reason}")));
                    (None, None)
                }
            }
        }
    };
    let hostname = text(&v, "Hostname");
    if hostname.is_none() {
        unreadable.push(Unreadable::new("hostname", "Win32_ComputerSystem.DNSHostName is empty"));
    }
    let domain = match (boolean(&v, "PartOfDomain"), text(&v, "Domain")) {
        (Some(true), Some(d)) => Some(d.to_ascii_lowercase()),
        (Some(false), workgroup) => {
            let group = workgroup.map(|w| format!(" (workgroup {w})")).unwrap_or_default();
            unreadable.push(Unreadable::new("domain", format!("not joined to a domain{group}")));
            None
        }
        _ => {
            unreadable.push(Unreadable::new("domain", "Win32_ComputerSystem.Domain/PartOfDomain unreadable"));
            None
        }
    };
    let fqdn = match (&hostname, &domain) {
        (Some(h), Some(d)) => Some(format!("{}.{d}", h.to_ascii_lowercase())),
        _ => {
            unreadable.push(Unreadable::new("fqdn", "no DNS domain: the host name is not qualified"));
            None
        }
    };
    Ok(HostIdentity { uuid, uuid_source, hostname, fqdn, domain, unreadable })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOMAIN: &str = include_str!("../../../tests/fixtures/identity/windows/identity_domain.json");
    const WORKGROUP: &str = include_str!("../../../tests/fixtures/identity/windows/identity_workgroup_placeholder_uuid.json");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/identity/windows/identity_truncated.json");

    #[test]
    fn domain_joined_host() {
        let id = parse_identity(DOMAIN).unwrap();
        assert_eq!(id.uuid.as_deref(), Some("4c4c4544-0042-3510-8052-b4c04f4b4e32"));
        assert_eq!(id.uuid_source, Some(UuidSource::Smbios));
        assert_eq!(id.hostname.as_deref(), Some("WS-0142"));
        assert_eq!(id.domain.as_deref(), Some("corp.example.com"));
        assert_eq!(id.fqdn.as_deref(), Some("ws-0142.corp.example.com"));
        assert!(id.unreadable.is_empty(), "{:?}", id.unreadable);
    }

    #[test]
    fn placeholder_uuid_falls_back_to_machine_guid_and_workgroup_has_no_domain() {
        let id = parse_identity(WORKGROUP).unwrap();
        assert_eq!(id.uuid.as_deref(), Some("7d3c5e0a-91b2-4f63-a8c4-2e5b9d1f0a77"));
        assert_eq!(id.uuid_source, Some(UuidSource::WindowsMachineGuid));
        assert_eq!((id.domain, id.fqdn), (None, None));
        let fields: Vec<&str> = id.unreadable.iter().map(|u| u.field.as_str()).collect();
        assert_eq!(fields, ["domain", "fqdn"]);
        assert!(id.unreadable[0].reason.contains("WORKGROUP"));
    }

    #[test]
    fn truncated_or_empty_output() {
        assert!(parse_identity(TRUNCATED).unwrap_err().to_string().contains("identity script output"));
        let id = parse_identity("").unwrap();
        assert_eq!(id.uuid, None);
        assert_eq!(id.unreadable.len(), 4);
        for cut in 0..DOMAIN.len() {
            let _ = parse_identity(&DOMAIN[..cut]);
        }
    }
}
