//! Windows service control manager: the `sc.exe create` and `sc.exe
//! failure` arguments (`create_args`, `failure_args`, pure), run only on
//! Windows. The service starts automatically (delayed, after the boot
//! rush) and restarts on failure: 5 s, 5 s, then 60 s, the failure count
//! reset after a day.
//!
//! Not done yet: `census-agent run` does not speak the SCM protocol
//! (StartServiceCtrlDispatcher), so Windows stops it after its start
//! timeout; the registration is in place for when it does.

// The adapters below exist only on Windows; the pure part compiles everywhere.
#![cfg_attr(not(windows), allow(unused_imports))]

use std::path::{Path, PathBuf};

use super::{Outcome, Running, ServiceSpec, ServiceStatus};
use crate::error::Result;

/// The service's name in the SCM.
pub const SERVICE_NAME: &str = "CensusAgent";

/// `sc.exe create` arguments. sc.exe wants `key=` and the value as two
/// words; the binary path is one word holding the whole quoted command line.
pub fn create_args(spec: &ServiceSpec) -> Vec<String> {
    let mut bin_path = quote(&spec.binary.display().to_string());
    for a in spec.arguments() {
        bin_path.push(' ');
        bin_path.push_str(&quote(&a));
    }
    ["create", SERVICE_NAME, "binPath=", &bin_path, "start=", "delayed-auto", "obj=", "LocalSystem", "DisplayName=", "Census agent"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// `sc.exe failure` arguments: restart after 5 s, 5 s, 60 s; reset after a day.
pub fn failure_args() -> Vec<String> {
    ["failure", SERVICE_NAME, "reset=", "86400", "actions=", "restart/5000/restart/5000/restart/60000"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Windows command-line quoting (CommandLineToArgvW rules) for one argument.
fn quote(arg: &str) -> String {
    if !arg.is_empty() && !arg.contains([' ', '\t', '"']) {
        return arg.to_string();
    }
    let mut out = String::from("\"");
    let mut backslashes = 0;
    for c in arg.chars() {
        match c {
            '\\' => backslashes += 1,
            '"' => {
                out.push_str(&"\\".repeat(backslashes * 2 + 1));
                out.push('"');
                backslashes = 0;
            }
            _ => {
                out.push_str(&"\\".repeat(backslashes));
                out.push(c);
                backslashes = 0;
            }
        }
    }
    out.push_str(&"\\".repeat(backslashes * 2));
    out.push('"');
    out
}

/// The SCM keeps no file; `definition` names the service instead.
pub fn definition() -> PathBuf {
    PathBuf::from(format!("SCM service {SERVICE_NAME}"))
}

#[cfg(windows)]
pub(super) fn install(_root: &Path, spec: &ServiceSpec) -> Result<Outcome> {
    let create = create_args(spec);
    super::run_manager("sc.exe", &create.iter().map(String::as_str).collect::<Vec<_>>())?;
    let failure = failure_args();
    super::run_manager("sc.exe", &failure.iter().map(String::as_str).collect::<Vec<_>>())?;
    super::run_manager("sc.exe", &["start", SERVICE_NAME])?;
    Ok(Outcome { definition: definition(), manager_called: true })
}

#[cfg(windows)]
pub(super) fn uninstall(_root: &Path) -> Result<Outcome> {
    // Stopping a stopped service fails; deletion is what matters.
    let _ = super::run_manager("sc.exe", &["stop", SERVICE_NAME]);
    super::run_manager("sc.exe", &["delete", SERVICE_NAME])?;
    Ok(Outcome { definition: definition(), manager_called: true })
}

#[cfg(windows)]
pub(super) fn status(_root: &Path) -> ServiceStatus {
    let (installed, running) = match super::run_manager("sc.exe", &["query", SERVICE_NAME]) {
        Ok(text) if text.contains("RUNNING") => (true, Running::Yes),
        Ok(_) => (true, Running::No("stopped".into())),
        Err(_) => (false, Running::No("not installed".into())),
    };
    ServiceStatus { definition: definition(), installed, running }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_registers_an_auto_start_service_with_the_whole_command_line() {
        let spec = ServiceSpec {
            binary: r"C:\Program Files\Census\census-agent.exe".into(),
            state_dir: r"C:\ProgramData\Census\".into(),
            config: None,
        };
        let a = create_args(&spec);
        assert_eq!(a[..3], ["create", "CensusAgent", "binPath="]);
        assert_eq!(a[3], r#""C:\Program Files\Census\census-agent.exe" --state-dir C:\ProgramData\Census\ run"#);
        assert_eq!(a[4..8], ["start=", "delayed-auto", "obj=", "LocalSystem"]);
    }

    #[test]
    fn failure_actions_restart() {
        assert_eq!(failure_args().join(" "), "failure CensusAgent reset= 86400 actions= restart/5000/restart/5000/restart/60000");
    }

    #[test]
    fn quoting_follows_commandlinetoargvw() {
        assert_eq!(quote(r"C:\a b\"), r#""C:\a b\\""#);
        assert_eq!(quote(r#"say "hi""#), r#""say \"hi\"""#);
        assert_eq!(quote("plain"), "plain");
    }
}
