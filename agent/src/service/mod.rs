//! `census-agent install | uninstall | status`: the agent as an OS service.
//!
//! Each service manager has one file: `systemd.rs` (Linux), `launchd.rs`
//! (macOS), `windows.rs` (the service control manager). Each generates its
//! service definition with pure functions, tested as text on every OS, and
//! has a thin cfg'd part that writes it and calls the manager. The systemd
//! unit is `deploy/systemd/census-agent.service` itself (one source of
//! truth), with the binary path and state directory substituted.
//!
//! Invariants: uninstall never removes the state directory unless asked to
//! purge it (the key and the sequence counter survive a reinstall); every
//! path is taken under `root` ("/" in production) so tests never touch the
//! real system, and the service manager is called only when it runs there.

use std::path::{Path, PathBuf};

pub mod launchd;
pub mod systemd;
pub mod windows;

use crate::error::{Error, Result};

/// What the service runs: this binary, on this state directory.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSpec {
    /// Absolute path of the `census-agent` binary.
    pub binary: PathBuf,
    /// The agent's state directory (the only path it writes).
    pub state_dir: PathBuf,
    /// A config file passed with `--config`, if any.
    pub config: Option<PathBuf>,
}

impl ServiceSpec {
    /// The command line the service starts: `census-agent [--config F] run`,
    /// with the state directory given explicitly so it matches the sandbox.
    pub fn arguments(&self) -> Vec<String> {
        let mut args = vec!["--state-dir".to_string(), self.state_dir.display().to_string()];
        if let Some(c) = &self.config {
            args.push("--config".into());
            args.push(c.display().to_string());
        }
        args.push("run".into());
        args
    }
}

/// What `install` or `uninstall` did, for the operator.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Where the service definition was written or removed.
    pub definition: PathBuf,
    /// Whether the service manager was told (enabled and started, or
    /// stopped and disabled). False when it is not running under `root`.
    pub manager_called: bool,
}

/// Whether the service is running, as far as this host can tell.
#[derive(Debug, Clone, PartialEq)]
pub enum Running {
    Yes,
    No(String),
    Unknown(String),
}

/// What `status` reports about the service itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceStatus {
    pub definition: PathBuf,
    pub installed: bool,
    pub running: Running,
}

/// Installs the service under `root` and starts it when the service manager runs.
pub fn install(root: &Path, spec: &ServiceSpec) -> Result<Outcome> {
    std::fs::create_dir_all(&spec.state_dir).map_err(|e| Error::io("creating", &spec.state_dir, e))?;
    per_os::install(root, spec)
}

/// Stops and removes the service; removes the state directory only with `purge`.
pub fn uninstall(root: &Path, state_dir: &Path, purge: bool) -> Result<Outcome> {
    let outcome = per_os::uninstall(root)?;
    if purge {
        match std::fs::remove_dir_all(state_dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("removing", state_dir, e)),
            _ => {}
        }
    }
    Ok(outcome)
}

/// Is the service installed, and running?
pub fn status(root: &Path) -> ServiceStatus {
    per_os::status(root)
}

#[cfg(target_os = "linux")]
use systemd as per_os;

#[cfg(target_os = "macos")]
use launchd as per_os;

#[cfg(windows)]
use windows as per_os;

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod per_os {
    use super::*;
    const UNSUPPORTED: &str = "no supported service manager on this OS";
    pub fn install(_: &Path, _: &ServiceSpec) -> Result<Outcome> {
        Err(Error::Config(UNSUPPORTED.into()))
    }
    pub fn uninstall(_: &Path) -> Result<Outcome> {
        Err(Error::Config(UNSUPPORTED.into()))
    }
    pub fn status(_: &Path) -> ServiceStatus {
        ServiceStatus { definition: PathBuf::new(), installed: false, running: Running::Unknown(UNSUPPORTED.into()) }
    }
}

/// Runs a service manager command; its stderr becomes the error.
#[cfg_attr(not(any(target_os = "linux", target_os = "macos", windows)), allow(dead_code))]
fn run_manager(program: &str, args: &[&str]) -> Result<String> {
    let command = format!("{program} {}", args.join(" "));
    let out = std::process::Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| Error::Command { command: command.clone(), reason: e.to_string() })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let err = if err.is_empty() { String::from_utf8_lossy(&out.stdout).trim().to_string() } else { err };
        return Err(Error::Command { command, reason: format!("{}: {err}", out.status) });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `path` inside `root` (an absolute `path` is taken relative to `root`).
fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// Writes a service definition file atomically, readable by all.
fn write_definition(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    }
    crate::state::write_atomic(path, text.as_bytes(), 0o644)
}

/// Removes a service definition; false when there was none.
fn remove_definition(path: &Path) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("removing", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_name_the_state_dir_and_config_before_run() {
        let spec = ServiceSpec {
            binary: "/usr/bin/census-agent".into(),
            state_dir: "/var/lib/census-agent".into(),
            config: Some("/etc/census/agent.toml".into()),
        };
        assert_eq!(spec.arguments(), ["--state-dir", "/var/lib/census-agent", "--config", "/etc/census/agent.toml", "run"]);
    }

    #[test]
    fn purge_is_the_only_way_to_lose_the_state() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("root");
        let state = tmp.path().join("state");
        std::fs::create_dir_all(&state).expect("state");
        std::fs::write(state.join("seq"), "7\n").expect("seq");
        uninstall(&root, &state, false).expect("uninstall");
        assert!(state.join("seq").exists());
        uninstall(&root, &state, true).expect("purge");
        assert!(!state.exists());
    }
}
