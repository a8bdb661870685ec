//! Services on macOS: the jobs of `launchctl list` (`PID  Status  Label`;
//! run as root, the system domain's daemons; as a user, that user's
//! agents too). A job with a PID is `running`; without one it is
//! `stopped`, or `failed` when its last exit status is non-zero (a
//! negative status is the signal that killed it). launchd has no enabled
//! state in this listing and no descriptions: both are absent.

use crate::error::{Error, Result};
use crate::inventory::services::{Service, ServiceManager, Services};

#[cfg(target_os = "macos")]
pub fn collect(_root: &std::path::Path) -> Result<Services> {
    parse_launchctl_list(&crate::collect::command::run("launchctl", &["list"], crate::collect::command::MAX_OUTPUT_BYTES)?)
}

/// Parses `launchctl list`.
pub fn parse_launchctl_list(text: &str) -> Result<Services> {
    const WHAT: &str = "launchctl list output";
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.split_whitespace().eq(["PID", "Status", "Label"]) => {}
        _ => return Err(Error::parse(WHAT, Some(1), "no PID Status Label header")),
    }
    let mut units = Vec::new();
    for (index, line) in lines {
        let mut fields = line.splitn(3, '\t');
        let (Some(pid), Some(status), Some(label)) = (fields.next(), fields.next(), fields.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(Error::parse(WHAT, Some(index + 1), format!("expected three tab-separated fields, found {line:?}")));
        };
        let pid = pid.trim().parse::<u32>().ok();
        let status = status.trim().parse::<i64>().unwrap_or(0);
        let label = label.trim();
        if label.is_empty() {
            continue;
        }
        let state = match (pid, status) {
            (Some(_), _) => "running",
            (None, 0) => "stopped",
            (None, _) => "failed",
        };
        units.push(Service {
            name: label.to_owned(),
            description: None,
            load_state: None,
            active_state: Some(state.into()),
            sub_state: None,
            enabled: None,
            pid,
        });
    }
    units.sort_by(|a, b| a.name.cmp(&b.name));
    units.dedup_by(|a, b| a.name == b.name);
    let failed = units.iter().filter(|u| u.active_state.as_deref() == Some("failed")).map(|u| u.name.clone()).collect();
    Ok(Services { manager: ServiceManager::Launchd, units, failed, unreadable: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = include_str!("../../../tests/fixtures/services/macos/launchctl_list.txt");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/services/macos/launchctl_list_truncated.txt");

    #[test]
    fn running_stopped_and_failed_jobs() {
        let s = parse_launchctl_list(LIST).unwrap();
        assert_eq!(s.manager, ServiceManager::Launchd);
        let got: Vec<(&str, &str, Option<u32>)> =
            s.units.iter().map(|u| (u.name.as_str(), u.active_state.as_deref().unwrap_or(""), u.pid)).collect();
        assert_eq!(
            got,
            [
                ("com.apple.SafariHistoryServiceAgent", "stopped", None),
                ("com.apple.rapportd", "running", Some(612)),
                ("com.example.crashy", "failed", None),
                ("com.openssh.sshd.0A1B2C3D", "failed", None),
                ("org.postgresql.postgres", "running", Some(1234)),
            ]
        );
        assert_eq!(s.failed, ["com.example.crashy", "com.openssh.sshd.0A1B2C3D"]);
    }

    #[test]
    fn truncated_and_garbage() {
        let err = parse_launchctl_list(TRUNCATED).unwrap_err().to_string();
        assert!(err.contains("line 3"), "{err}");
        assert!(parse_launchctl_list("").is_err());
        for cut in 0..LIST.len() {
            let _ = parse_launchctl_list(LIST.get(..cut).unwrap_or(""));
        }
    }
}
