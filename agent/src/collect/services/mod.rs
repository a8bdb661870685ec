//! Services on Linux (systemd).
//!
//! Runs `systemctl list-units --type=service --all` for active states and
//! `systemctl list-unit-files --type=service` for enabled states when
//! `root` is "/" and systemctl exists. When systemd is not PID 1 (a
//! container: "System has not been booted with systemd"), list-units fails
//! and active states are absent with that reason; when systemctl is missing
//! or `root` is a fixture tree, unit-file states come from the unit
//! directories (`systemd::unit_file_states`). The section fails only when
//! there is no systemd at all. Parsers live in `systemd`.

pub mod macos;
pub mod systemd;
pub mod windows;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::inventory::services::{Service, ServiceManager, Services};
use crate::inventory::unreadable::Unreadable;
use systemd::UnitFileEntry;

/// Unit directories, highest precedence first (systemd.unit(5)).
const UNIT_DIRS: [&str; 5] =
    ["etc/systemd/system", "run/systemd/system", "usr/local/lib/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"];
const MAX_UNIT_FILE_BYTES: usize = 1 << 20;

/// Collects the services section from the system under `root`.
pub fn collect(root: &Path) -> Result<Services> {
    let mut unreadable = Vec::new();
    // sd_booted(3): systemd is the running manager only if this directory
    // exists. Without it systemctl just fails, after costing ~400 ms of
    // start-up per call, so it is not even tried.
    let live = root == Path::new("/") && root.join("run/systemd/system").is_dir();

    let unit_files = match live.then(|| run_systemctl(&["list-unit-files", "--type=service", "--no-legend", "--no-pager"])) {
        Some(Ok(text)) => systemd::parse_list_unit_files(&text)?,
        other => {
            if let Some(Err(e)) = other {
                unreadable.push(Unreadable::new("units.enabled", format!("{e}; read from unit directories instead")));
            }
            let (entries, wanted) = scan_unit_dirs(root);
            if entries.is_empty() {
                return Err(Error::Command {
                    command: "systemctl".into(),
                    reason: "no systemd on this host: systemctl unavailable and no unit directories".into(),
                });
            }
            systemd::unit_file_states(&entries, &wanted)
        }
    };

    let (rows, manager) = if live {
        match run_systemctl(&["list-units", "--type=service", "--all", "--no-legend", "--plain", "--no-pager"]) {
            Ok(text) => (systemd::parse_list_units(&text)?, ServiceManager::Systemd),
            Err(e) => {
                unreadable.push(Unreadable::new("units.active_state", e.to_string()));
                (Vec::new(), ServiceManager::SystemdUnitFilesOnly)
            }
        }
    } else {
        let reason = if root == Path::new("/") {
            "systemd is not the running service manager (no /run/systemd/system): only unit-file states are known"
        } else {
            "reading a file tree, not a running system: only unit-file states are known"
        };
        unreadable.push(Unreadable::new("units.active_state", reason));
        (Vec::new(), ServiceManager::SystemdUnitFilesOnly)
    };

    Ok(merge(manager, rows, unit_files, unreadable))
}

/// Joins active rows and unit-file states by name; sorted, `failed` derived.
pub fn merge(
    manager: ServiceManager,
    rows: Vec<systemd::UnitRow>,
    mut unit_files: BTreeMap<String, String>,
    unreadable: Vec<Unreadable>,
) -> Services {
    let mut units: Vec<Service> = rows
        .into_iter()
        .map(|r| {
            // An instance (getty@tty1) takes its template's state when it
            // has no file of its own.
            let enabled = unit_files.remove(&r.name).or_else(|| {
                let (prefix, rest) = r.name.split_once('@')?;
                let (_, suffix) = rest.rsplit_once('.')?;
                unit_files.get(&format!("{prefix}@.{suffix}")).cloned()
            });
            Service {
                name: r.name,
                description: r.description,
                load_state: Some(r.load),
                active_state: Some(r.active),
                sub_state: Some(r.sub),
                enabled,
                pid: None,
            }
        })
        .collect();
    units.extend(unit_files.into_iter().map(|(name, state)| Service {
        name,
        description: None,
        load_state: None,
        active_state: None,
        sub_state: None,
        enabled: Some(state),
        pid: None,
    }));
    units.sort_by(|a, b| a.name.cmp(&b.name));
    let failed = units.iter().filter(|u| u.active_state.as_deref() == Some("failed")).map(|u| u.name.clone()).collect();
    Services { manager, units, failed, unreadable }
}

pub(crate) fn run_systemctl(args: &[&str]) -> Result<String> {
    crate::collect::command::run("systemctl", args, systemd::MAX_SYSTEMCTL_BYTES as u64)
}

/// The read half of the fallback: every `*.service` in the unit
/// directories, and every name linked from a `.wants/`/`.requires/` dir.
fn scan_unit_dirs(root: &Path) -> (Vec<UnitFileEntry>, HashSet<String>) {
    let mut entries = Vec::new();
    let mut wanted = HashSet::new();
    for (precedence, rel) in UNIT_DIRS.iter().enumerate() {
        let dir = root.join(rel);
        let Ok(it) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in it.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.ends_with(".wants") || name.ends_with(".requires") || name.ends_with(".upholds") {
                // Only links the admin made (/etc, /run) enable a unit;
                // vendor `.wants/` links are static dependencies.
                if precedence < 2
                    && let Ok(links) = std::fs::read_dir(&path)
                {
                    wanted.extend(links.flatten().map(|l| l.file_name().to_string_lossy().into_owned()));
                }
                continue;
            }
            if !name.ends_with(".service") {
                continue;
            }
            let link_target = std::fs::read_link(&path).ok().map(|t| t.to_string_lossy().into_owned());
            let install = read_bounded(&path, MAX_UNIT_FILE_BYTES).map(|t| systemd::install_section(&t)).unwrap_or_default();
            entries.push(UnitFileEntry { name, precedence, link_target, install });
        }
    }
    (entries, wanted)
}

fn read_bounded(path: &Path, limit: usize) -> std::io::Result<String> {
    let mut buf = Vec::new();
    std::fs::File::open(path)?.take(limit as u64).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_derives_failed_and_template_states() {
        let rows = systemd::parse_list_units(include_str!("../../../tests/fixtures/services/list_units.txt")).unwrap();
        let files = systemd::parse_list_unit_files(include_str!("../../../tests/fixtures/services/list_unit_files.txt")).unwrap();
        let s = merge(ServiceManager::Systemd, rows, files, Vec::new());
        assert_eq!(s.failed, ["fwupd-refresh.service", "nginx.service"]);
        let tty1 = s.units.iter().find(|u| u.name == "getty@tty1.service").unwrap();
        assert_eq!(tty1.enabled.as_deref(), Some("enabled"));
        assert_eq!(tty1.active_state.as_deref(), Some("active"));
        // Unit files that are not loaded still appear, without active state.
        let dbg = s.units.iter().find(|u| u.name == "debug-shell.service").unwrap();
        assert_eq!((dbg.enabled.as_deref(), dbg.active_state.as_deref()), (Some("disabled"), None));
        assert!(s.units.windows(2).all(|w| w[0].name < w[1].name));
    }

    #[test]
    fn fixture_tree_uses_unit_directories() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/services/root");
        let s = collect(&root).unwrap();
        assert_eq!(s.manager, ServiceManager::SystemdUnitFilesOnly);
        let get = |n: &str| s.units.iter().find(|u| u.name == n).and_then(|u| u.enabled.as_deref());
        assert_eq!(get("nginx.service"), Some("enabled"));
        assert_eq!(get("cron.service"), Some("masked"));
        assert_eq!(get("apt-daily.service"), Some("static"));
        assert_eq!(get("ssh.service"), Some("disabled"));
        assert!(s.unreadable.iter().any(|u| u.field == "units.active_state"));
        assert!(collect(&root.join("nothing")).is_err());
    }

    /// Oracle: the unit-directory fallback agrees with
    /// `systemctl list-unit-files` on this machine.
    #[test]
    fn live_unit_dirs_agree_with_systemctl_list_unit_files() {
        let Ok(text) = run_systemctl(&["list-unit-files", "--type=service", "--no-legend", "--no-pager"]) else {
            eprintln!("skipping: systemctl list-unit-files unavailable");
            return;
        };
        let theirs = systemd::parse_list_unit_files(&text).unwrap();
        let (entries, wanted) = scan_unit_dirs(Path::new("/"));
        let ours = systemd::unit_file_states(&entries, &wanted);
        // systemctl also knows generated and transient units, which have no
        // file in the unit directories.
        let theirs: BTreeMap<String, String> = theirs.into_iter().filter(|(_, s)| s != "generated" && s != "transient").collect();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn live_collect_reports_manager_state() {
        if std::process::Command::new("systemctl").arg("--version").output().is_err() {
            eprintln!("skipping: no systemctl");
            return;
        }
        let s = collect(Path::new("/")).unwrap();
        if s.manager == ServiceManager::SystemdUnitFilesOnly {
            assert!(s.unreadable.iter().any(|u| u.field == "units.active_state"));
        }
        assert!(!s.units.is_empty());
    }
}
