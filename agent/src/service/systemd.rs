//! systemd: the unit is `deploy/systemd/census-agent.service` with this
//! installation's binary and state directory substituted (`unit`, pure);
//! it is written to `/etc/systemd/system` and enabled with `systemctl`
//! only when systemd is running under `root` (`/run/systemd/system`
//! exists), so a container or a test root gets the file and a clear word.

use std::path::{Path, PathBuf};

use super::{Outcome, Running, ServiceSpec, ServiceStatus};
use crate::error::Result;

/// The hardened unit shipped in deploy/, the single source of truth.
pub const UNIT_TEMPLATE: &str = include_str!("../../../deploy/systemd/census-agent.service");
/// The unit's name.
pub const UNIT_NAME: &str = "census-agent.service";
/// Where units written by the administrator live.
pub const UNIT_DIR: &str = "/etc/systemd/system";

const TEMPLATE_EXEC: &str = "ExecStart=/usr/bin/census-agent --config /etc/census/agent.toml run";
const TEMPLATE_STATE_ENV: &str = "Environment=CENSUS_STATE_DIR=/var/lib/census-agent";
const TEMPLATE_STATE_DIR: &str = "StateDirectory=census-agent";

/// The unit text for `spec`. A state directory under /var/lib stays a
/// `StateDirectory=` (systemd creates it, owned and 0700); anywhere else it
/// becomes the one `ReadWritePaths=` in the otherwise read-only system.
pub fn unit(spec: &ServiceSpec) -> String {
    let mut exec = format!("ExecStart={}", quote(&spec.binary.display().to_string()));
    for a in spec.arguments() {
        exec.push(' ');
        exec.push_str(&quote(&a));
    }
    let state = spec.state_dir.display().to_string();
    let writable = match state.strip_prefix("/var/lib/") {
        Some(rel) if !rel.is_empty() => format!("StateDirectory={}", rel.trim_end_matches('/')),
        _ => format!("ReadWritePaths={}", quote(&state)),
    };
    let mut text = String::with_capacity(UNIT_TEMPLATE.len() + 128);
    for line in UNIT_TEMPLATE.lines() {
        match line {
            TEMPLATE_EXEC => text.push_str(&exec),
            TEMPLATE_STATE_ENV => text.push_str(&quote(&format!("Environment=CENSUS_STATE_DIR={state}"))),
            TEMPLATE_STATE_DIR => text.push_str(&writable),
            "StateDirectoryMode=0700" if writable.starts_with("ReadWritePaths=") => continue,
            other => text.push_str(other),
        }
        text.push('\n');
    }
    text
}

/// systemd's command-line quoting: plain words stay bare, anything with
/// blanks, quotes or backslashes is double-quoted with C escapes. `%` is
/// a specifier in unit files and always doubled.
fn quote(word: &str) -> String {
    let word = word.replace('%', "%%");
    if !word.is_empty() && !word.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return word;
    }
    let mut out = String::from("\"");
    for c in word.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Path of the unit file under `root`.
pub fn unit_path(root: &Path) -> PathBuf {
    super::under(root, UNIT_DIR).join(UNIT_NAME)
}

/// Whether systemd is the running service manager under `root` (sd_booted).
pub fn systemd_running(root: &Path) -> bool {
    super::under(root, "/run/systemd/system").is_dir()
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) fn install(root: &Path, spec: &ServiceSpec) -> Result<Outcome> {
    let path = unit_path(root);
    super::write_definition(&path, &unit(spec))?;
    let manager_called = systemd_running(root);
    if manager_called {
        super::run_manager("systemctl", &["daemon-reload"])?;
        super::run_manager("systemctl", &["enable", "--now", UNIT_NAME])?;
    }
    Ok(Outcome { definition: path, manager_called })
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) fn uninstall(root: &Path) -> Result<Outcome> {
    let path = unit_path(root);
    let manager_called = systemd_running(root) && path.exists();
    if manager_called {
        super::run_manager("systemctl", &["disable", "--now", UNIT_NAME])?;
    }
    super::remove_definition(&path)?;
    if manager_called {
        super::run_manager("systemctl", &["daemon-reload"])?;
    }
    Ok(Outcome { definition: path, manager_called })
}

#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) fn status(root: &Path) -> ServiceStatus {
    let path = unit_path(root);
    let installed = path.exists();
    let running = if !systemd_running(root) {
        Running::Unknown("systemd not running".into())
    } else {
        // `is-active` exits non-zero for every state but "active"; its
        // stdout names the state either way.
        match std::process::Command::new("systemctl").args(["is-active", UNIT_NAME]).env("LC_ALL", "C").output() {
            Ok(out) => {
                let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if state == "active" { Running::Yes } else { Running::No(state) }
            }
            Err(e) => Running::Unknown(format!("running systemctl: {e}")),
        }
    };
    ServiceStatus { definition: path, installed, running }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(state: &str) -> ServiceSpec {
        ServiceSpec { binary: "/opt/census/bin/census-agent".into(), state_dir: state.into(), config: None }
    }

    #[test]
    fn default_location_keeps_the_template_hardening() {
        let u = unit(&spec("/var/lib/census-agent"));
        assert!(u.contains("\nExecStart=/opt/census/bin/census-agent --state-dir /var/lib/census-agent run\n"), "{u}");
        assert!(u.contains("\nStateDirectory=census-agent\n"));
        assert!(u.contains("\nStateDirectoryMode=0700\n"));
        assert!(!u.contains("ReadWritePaths"));
        // Everything but the substituted lines is the deploy/ file verbatim.
        let same = |t: &str| !t.starts_with("ExecStart=") && !t.starts_with("Environment=");
        assert_eq!(u.lines().filter(|l| same(l)).collect::<Vec<_>>(), UNIT_TEMPLATE.lines().filter(|l| same(l)).collect::<Vec<_>>());
    }

    #[test]
    fn other_state_dir_is_the_one_writable_path() {
        let u = unit(&spec("/srv/census agent"));
        assert!(u.contains("\nReadWritePaths=\"/srv/census agent\"\n"), "{u}");
        assert!(u.contains("--state-dir \"/srv/census agent\" run\n"));
        assert!(u.contains("\n\"Environment=CENSUS_STATE_DIR=/srv/census agent\"\n"));
        assert!(!u.contains("StateDirectory"));
        assert!(u.contains("\nProtectSystem=strict\n"));
    }

    #[test]
    fn quoting_follows_systemd_rules() {
        assert_eq!(quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(quote("a b"), "\"a b\"");
        assert_eq!(quote("say \"hi\"\\"), "\"say \\\"hi\\\"\\\\\"");
        assert_eq!(quote("50%"), "50%%");
    }

    #[test]
    fn template_has_the_lines_we_substitute() {
        for line in [TEMPLATE_EXEC, TEMPLATE_STATE_ENV, TEMPLATE_STATE_DIR] {
            assert!(UNIT_TEMPLATE.lines().any(|l| l == line), "deploy/systemd/census-agent.service lost {line:?}");
        }
    }

    #[test]
    fn without_systemd_the_unit_is_written_and_nothing_is_called() {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = spec(&tmp.path().join("state").display().to_string());
        let out = install(tmp.path(), &s).expect("install");
        assert!(!out.manager_called);
        assert_eq!(std::fs::read_to_string(&out.definition).expect("unit"), unit(&s));
        let st = status(tmp.path());
        assert!(st.installed);
        assert_eq!(st.running, Running::Unknown("systemd not running".into()));
        uninstall(tmp.path()).expect("uninstall");
        assert!(!status(tmp.path()).installed);
    }
}
