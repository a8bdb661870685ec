//! launchd (macOS): a LaunchDaemon plist (`plist`, pure) in
//! /Library/LaunchDaemons, loaded with `launchctl bootstrap system` and
//! removed with `launchctl bootout`. KeepAlive restarts the agent when it
//! exits with a failure; LowPriorityIO and Nice keep it in the background.

use std::path::{Path, PathBuf};

use super::{Outcome, Running, ServiceSpec, ServiceStatus};
use crate::error::Result;

/// The daemon's label.
pub const LABEL: &str = "com.census.agent";
/// Where system daemons' definitions live.
pub const PLIST_PATH: &str = "/Library/LaunchDaemons/com.census.agent.plist";

/// The LaunchDaemon definition for `spec`.
pub fn plist(spec: &ServiceSpec) -> String {
    let mut args = format!("        <string>{}</string>\n", escape(&spec.binary.display().to_string()));
    for a in spec.arguments() {
        args.push_str(&format!("        <string>{}</string>\n", escape(&a)));
    }
    let log = escape(&spec.state_dir.join("agent.log").display().to_string());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>Label</key>
    <string>{LABEL}</string>
    <key>ProgramArguments</key>
    <array>
{args}    </array>
    <key>RunAtLoad</key>
    <true/>
    <key>KeepAlive</key>
    <dict>
        <key>SuccessfulExit</key>
        <false/>
    </dict>
    <key>ThrottleInterval</key>
    <integer>5</integer>
    <key>ProcessType</key>
    <string>Background</string>
    <key>LowPriorityIO</key>
    <true/>
    <key>Nice</key>
    <integer>10</integer>
    <key>Umask</key>
    <integer>63</integer>
    <key>StandardErrorPath</key>
    <string>{log}</string>
</dict>
</plist>
"#
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Path of the plist under `root`.
pub fn plist_path(root: &Path) -> PathBuf {
    super::under(root, PLIST_PATH)
}

#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn launchd_running(root: &Path) -> bool {
    cfg!(target_os = "macos") && root == Path::new("/")
}

#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(super) fn install(root: &Path, spec: &ServiceSpec) -> Result<Outcome> {
    let path = plist_path(root);
    super::write_definition(&path, &plist(spec))?;
    let manager_called = launchd_running(root);
    if manager_called {
        let p = path.display().to_string();
        // A daemon loaded before (a reinstall) is unloaded first; failure here means it was not loaded.
        let _ = super::run_manager("launchctl", &["bootout", "system", &p]);
        super::run_manager("launchctl", &["bootstrap", "system", &p])?;
    }
    Ok(Outcome { definition: path, manager_called })
}

#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(super) fn uninstall(root: &Path) -> Result<Outcome> {
    let path = plist_path(root);
    let manager_called = launchd_running(root) && path.exists();
    if manager_called {
        let _ = super::run_manager("launchctl", &["bootout", &format!("system/{LABEL}")]);
    }
    super::remove_definition(&path)?;
    Ok(Outcome { definition: path, manager_called })
}

#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
pub(super) fn status(root: &Path) -> ServiceStatus {
    let path = plist_path(root);
    let installed = path.exists();
    let running = if !launchd_running(root) {
        Running::Unknown("launchd not reachable under this root".into())
    } else {
        match super::run_manager("launchctl", &["print", &format!("system/{LABEL}")]) {
            Ok(text) if text.lines().any(|l| l.trim() == "state = running") => Running::Yes,
            Ok(_) => Running::No("loaded, not running".into()),
            Err(_) => Running::No("not loaded".into()),
        }
    };
    ServiceStatus { definition: path, installed, running }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plist_is_a_keepalive_background_daemon() {
        let spec = ServiceSpec {
            binary: "/usr/local/bin/census-agent".into(),
            state_dir: "/Library/Application Support/Census & Co".into(),
            config: None,
        };
        let p = plist(&spec);
        // The plist crate (already a dependency) reads it back: well-formed XML plist.
        let v = plist::Value::from_reader(std::io::Cursor::new(p.as_bytes())).expect("a valid plist");
        let d = v.as_dictionary().expect("dict");
        assert_eq!(d.get("Label").and_then(|v| v.as_string()), Some(LABEL));
        let args: Vec<&str> =
            d.get("ProgramArguments").and_then(|v| v.as_array()).expect("args").iter().filter_map(|v| v.as_string()).collect();
        assert_eq!(args, ["/usr/local/bin/census-agent", "--state-dir", "/Library/Application Support/Census & Co", "run"]);
        assert_eq!(d.get("RunAtLoad").and_then(|v| v.as_boolean()), Some(true));
        assert_eq!(d.get("LowPriorityIO").and_then(|v| v.as_boolean()), Some(true));
        assert_eq!(d.get("Nice").and_then(|v| v.as_signed_integer()), Some(10));
        let keep = d.get("KeepAlive").and_then(|v| v.as_dictionary()).expect("KeepAlive dict");
        assert_eq!(keep.get("SuccessfulExit").and_then(|v| v.as_boolean()), Some(false));
    }

    #[test]
    fn written_under_root() {
        assert_eq!(plist_path(Path::new("/tmp/r")), Path::new("/tmp/r/Library/LaunchDaemons/com.census.agent.plist"));
    }
}
