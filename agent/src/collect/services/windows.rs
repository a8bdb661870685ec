//! Services on Windows, from `Win32_Service` in one PowerShell call
//! ([`SCRIPT`]): name, display name, state, start mode, process id, exit
//! code and delayed auto-start.
//!
//! States are lower-cased with underscores (`running`, `stopped`,
//! `start_pending`...). Windows has no "failed" state: an automatic
//! service that is stopped with a non-zero exit code (other than 1077,
//! "never started since boot") is reported as `failed`, which is what the
//! Services console's "Automatic, stopped" triage means. Start types are
//! `automatic`, `automatic_delayed`, `manual`, `disabled`, `boot`, `system`.

use crate::collect::json::{boolean, items, text, uint};
use crate::collect::powershell;
use crate::error::{Error, Result};
use crate::inventory::services::{Service, ServiceManager, Services};

const WHAT: &str = "Win32_Service script output";

pub const SCRIPT: &str = r#"Get-CimInstance Win32_Service | Select-Object Name,DisplayName,State,StartMode,DelayedAutoStart,ProcessId,ExitCode | ConvertTo-Json -Depth 4 -Compress"#;

#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> Result<Services> {
    parse_services(&powershell::run(SCRIPT)?)
}

/// Parses the output of [`SCRIPT`].
pub fn parse_services(output: &str) -> Result<Services> {
    let json = powershell::parse_json(WHAT, output)?;
    let list = items(Some(&json));
    if list.is_empty() {
        return Err(Error::parse(WHAT, None, "no service listed"));
    }
    let mut units: Vec<Service> = list
        .into_iter()
        .filter_map(|s| {
            let name = text(s, "Name")?;
            let mode = text(s, "StartMode").map(|m| m.to_ascii_lowercase());
            let enabled = match (mode.as_deref(), boolean(s, "DelayedAutoStart")) {
                (Some("auto"), Some(true)) => Some("automatic_delayed".to_owned()),
                (Some("auto"), _) => Some("automatic".to_owned()),
                (Some(other), _) => Some(other.to_owned()),
                (None, _) => None,
            };
            let state = text(s, "State").map(|st| st.to_ascii_lowercase().replace(' ', "_"));
            let exit = uint(s, "ExitCode").unwrap_or(0);
            let failed = state.as_deref() == Some("stopped")
                && enabled.as_deref().is_some_and(|e| e.starts_with("automatic"))
                && exit != 0
                && exit != 1077;
            Some(Service {
                description: text(s, "DisplayName"),
                load_state: None,
                active_state: if failed { Some("failed".to_owned()) } else { state },
                sub_state: None,
                enabled,
                pid: uint(s, "ProcessId").filter(|p| *p > 0).and_then(|p| u32::try_from(p).ok()),
                name,
            })
        })
        .collect();
    units.sort_by(|a, b| a.name.cmp(&b.name));
    let failed = units.iter().filter(|u| u.active_state.as_deref() == Some("failed")).map(|u| u.name.clone()).collect();
    Ok(Services { manager: ServiceManager::WindowsScm, units, failed, unreadable: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICES: &str = include_str!("../../../tests/fixtures/services/windows/win32_service.json");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/services/windows/win32_service_truncated.json");

    #[test]
    fn states_start_types_and_failed() {
        let s = parse_services(SERVICES).unwrap();
        assert_eq!(s.manager, ServiceManager::WindowsScm);
        type Row<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<u32>);
        let got: Vec<Row> = s.units.iter().map(|u| (u.name.as_str(), u.active_state.as_deref(), u.enabled.as_deref(), u.pid)).collect();
        assert_eq!(
            got,
            [
                ("BITS", Some("stopped"), Some("automatic_delayed"), None),
                ("Spooler", Some("running"), Some("automatic"), Some(2840)),
                ("W32Time", Some("stopped"), Some("manual"), None),
                ("gupdate", Some("stopped"), Some("automatic_delayed"), None),
                ("sshd", Some("failed"), Some("automatic"), None),
                ("wuauserv", Some("start_pending"), Some("manual"), Some(1312)),
            ]
        );
        assert_eq!(s.failed, ["sshd"]);
        assert_eq!(s.units[1].description.as_deref(), Some("Print Spooler"));
    }

    #[test]
    fn one_service_truncated_and_garbage() {
        let one = parse_services(r#"{"Name":"Spooler","DisplayName":"Print Spooler","State":"Running","StartMode":"Auto","DelayedAutoStart":false,"ProcessId":2840,"ExitCode":0}"#).unwrap();
        assert_eq!(one.units.len(), 1);
        assert!(parse_services(TRUNCATED).is_err());
        assert!(parse_services("").is_err());
        for cut in 0..SERVICES.len() {
            let _ = parse_services(SERVICES.get(..cut).unwrap_or(""));
        }
    }
}
