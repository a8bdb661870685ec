//! Parsers for systemd service state: `systemctl list-units` and
//! `systemctl list-unit-files` output, and the unit-file states derived
//! from the unit directories when systemctl cannot answer.
//!
//! The directory rules follow systemd's own (`systemctl list-unit-files`):
//! the first directory in precedence order that holds a name wins; a link to
//! `/dev/null` is `masked`; a link to a unit of another name is `alias`; a
//! unit (or, for a template, any instance of it) linked from a `.wants/` or
//! `.requires/` directory is `enabled`; a unit without an `[Install]`
//! section is `static`; otherwise `disabled`. Pure, bounded, never panics.

use std::collections::{BTreeMap, HashSet};

use crate::error::{Error, Result};

/// systemctl output for tens of thousands of units is still far below this.
pub const MAX_SYSTEMCTL_BYTES: usize = 32 << 20;

/// One row of `systemctl list-units --type=service --all --no-legend --plain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    pub name: String,
    pub load: String,
    pub active: String,
    pub sub: String,
    pub description: Option<String>,
}

/// Parses `systemctl list-units --type=service --all --no-legend --plain --no-pager`.
pub fn parse_list_units(text: &str) -> Result<Vec<UnitRow>> {
    const WHAT: &str = "systemctl list-units output";
    check_size(text, WHAT)?;
    let mut out = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        // Some versions mark not-found or failed units with a bullet even
        // with --plain.
        let line = line.trim_start().trim_start_matches(['●', '*', '×']).trim();
        if line.is_empty() {
            continue;
        }
        let mut f = line.split_whitespace();
        let (Some(name), Some(load), Some(active), Some(sub)) = (f.next(), f.next(), f.next(), f.next()) else {
            return Err(Error::parse(WHAT, Some(idx + 1), "expected UNIT LOAD ACTIVE SUB [DESCRIPTION]"));
        };
        // Column padding is not part of the description; inner runs of
        // spaces collapse, which descriptions do not rely on.
        let description = f.collect::<Vec<_>>().join(" ");
        out.push(UnitRow {
            name: name.to_string(),
            load: load.to_string(),
            active: active.to_string(),
            sub: sub.to_string(),
            description: (!description.is_empty()).then_some(description),
        });
    }
    Ok(out)
}

/// Parses `systemctl list-unit-files --type=service --no-legend --no-pager`
/// (`UNIT STATE [PRESET]`) into name -> state.
pub fn parse_list_unit_files(text: &str) -> Result<BTreeMap<String, String>> {
    const WHAT: &str = "systemctl list-unit-files output";
    check_size(text, WHAT)?;
    let mut out = BTreeMap::new();
    for (idx, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        match (f.next(), f.next()) {
            (None, _) => continue,
            (Some(name), Some(state)) => {
                out.insert(name.to_string(), state.to_string());
            }
            (Some(_), None) => {
                return Err(Error::parse(WHAT, Some(idx + 1), "expected UNIT STATE [PRESET]"));
            }
        }
    }
    Ok(out)
}

/// One `*.service` entry found in a unit directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFileEntry {
    pub name: String,
    /// Position of its directory in precedence order (0 = /etc, highest).
    pub precedence: usize,
    /// Where it links to, when it is a symlink.
    pub link_target: Option<String>,
    /// What its `[Install]` section holds.
    pub install: Install,
}

/// A unit file's `[Install]` section as systemd classifies it for its
/// unit-file state when nothing links to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Install {
    /// No install settings: "static".
    #[default]
    Nothing,
    /// Only `Also=` (it enables other units): "indirect".
    AlsoOnly,
    /// `WantedBy=`, `RequiredBy=`, `UpheldBy=` or `Alias=`: "disabled".
    Rules,
}

/// Unit-file states from directory entries and the names linked from
/// `.wants/` / `.requires/` directories. Returns name -> state.
pub fn unit_file_states(entries: &[UnitFileEntry], wanted: &HashSet<String>) -> BTreeMap<String, String> {
    let mut winners: BTreeMap<&str, &UnitFileEntry> = BTreeMap::new();
    for e in entries {
        let slot = winners.entry(e.name.as_str()).or_insert(e);
        if e.precedence < slot.precedence {
            *slot = e;
        }
    }
    // A template counts as enabled when any instance of it is wanted.
    let wanted_templates: HashSet<String> = wanted
        .iter()
        .filter_map(|w| {
            let (prefix, rest) = w.split_once('@')?;
            let (_, suffix) = rest.rsplit_once('.')?;
            Some(format!("{prefix}@.{suffix}"))
        })
        .collect();
    winners
        .into_iter()
        .map(|(name, e)| {
            let state = match e.link_target.as_deref() {
                Some("/dev/null") => "masked",
                Some(t) if t.rsplit('/').next() != Some(name) => "alias",
                _ if wanted.contains(name) || wanted_templates.contains(name) => "enabled",
                _ => match e.install {
                    Install::Nothing => "static",
                    Install::AlsoOnly => "indirect",
                    Install::Rules => "disabled",
                },
            };
            (name.to_string(), state.to_string())
        })
        .collect()
}

/// What a unit file's `[Install]` section holds: install rules
/// (`WantedBy=`, `RequiredBy=`, `UpheldBy=`, `Alias=`), only `Also=`, or
/// nothing (empty values do not count).
pub fn install_section(text: &str) -> Install {
    let (mut in_install, mut also) = (false, false);
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_install = line == "[Install]";
        } else if in_install
            && let Some((key, value)) = line.split_once('=')
            && !value.trim().is_empty()
        {
            match key.trim() {
                "WantedBy" | "RequiredBy" | "UpheldBy" | "Alias" => return Install::Rules,
                "Also" => also = true,
                _ => {}
            }
        }
    }
    if also { Install::AlsoOnly } else { Install::Nothing }
}

fn check_size(text: &str, what: &str) -> Result<()> {
    if text.len() > MAX_SYSTEMCTL_BYTES {
        return Err(Error::parse(what, None, format!("larger than {MAX_SYSTEMCTL_BYTES} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_units_rows_and_failed() {
        let rows = parse_list_units(include_str!("../../../tests/fixtures/services/list_units.txt")).unwrap();
        assert_eq!(rows.len(), 12);
        let cron = rows.iter().find(|r| r.name == "cron.service").unwrap();
        assert_eq!((cron.load.as_str(), cron.active.as_str(), cron.sub.as_str()), ("loaded", "active", "running"));
        assert_eq!(cron.description.as_deref(), Some("Regular background program processing daemon"));
        let failed: Vec<&str> = rows.iter().filter(|r| r.active == "failed").map(|r| r.name.as_str()).collect();
        assert_eq!(failed, ["fwupd-refresh.service", "nginx.service"]);
        let nf = rows.iter().find(|r| r.name == "plymouth-quit-wait.service").unwrap();
        assert_eq!(nf.load, "not-found");
    }

    #[test]
    fn list_unit_files_with_and_without_preset_column() {
        let m = parse_list_unit_files(include_str!("../../../tests/fixtures/services/list_unit_files.txt")).unwrap();
        assert_eq!(m.get("postgresql.service").map(String::as_str), Some("enabled"));
        assert_eq!(m.get("hwclock.service").map(String::as_str), Some("masked"));
        let old = parse_list_unit_files("cron.service enabled\nfoo.service static\n").unwrap();
        assert_eq!(old.len(), 2);
        let e = parse_list_unit_files("cron.service\n").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let e = parse_list_units("cron.service loaded\n").unwrap_err().to_string();
        assert!(e.contains("UNIT LOAD ACTIVE SUB"), "{e}");
    }

    #[test]
    fn install_section_detection() {
        assert_eq!(install_section("[Unit]\nDescription=x\n[Install]\nWantedBy=multi-user.target\n"), Install::Rules);
        assert_eq!(install_section("[Install]\nAlso=uuidd.socket\nAlias=x.service\n"), Install::Rules);
        assert_eq!(install_section("[Install]\nAlso=uuidd.socket\n"), Install::AlsoOnly, "uuidd.service: indirect");
        assert_eq!(install_section("[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n"), Install::Nothing);
        assert_eq!(install_section("[Install]\n# nothing\nWantedBy=\n"), Install::Nothing);
        assert_eq!(install_section("[Service]\nWantedBy=x\n"), Install::Nothing);
    }

    #[test]
    fn directory_states() {
        let e = |name: &str, precedence, link: Option<&str>, has_install: bool| UnitFileEntry {
            name: name.into(),
            precedence,
            link_target: link.map(String::from),
            install: if has_install { Install::Rules } else { Install::Nothing },
        };
        let entries = [
            e("postgresql.service", 3, None, true),
            e("apt-daily.service", 3, None, false),
            e("debug-shell.service", 3, None, true),
            e("hwclock.service", 3, Some("/dev/null"), false),
            e("kmod.service", 3, Some("systemd-modules-load.service"), false),
            e("getty@.service", 3, None, true),
            UnitFileEntry { install: Install::AlsoOnly, ..e("uuidd.service", 3, None, false) },
            // An /etc override masks a vendor unit.
            e("ssh.service", 3, None, true),
            e("ssh.service", 0, Some("/dev/null"), false),
        ];
        let wanted: HashSet<String> = ["postgresql.service", "getty@tty1.service"].map(String::from).into();
        let s = unit_file_states(&entries, &wanted);
        let get = |n: &str| s.get(n).map(String::as_str);
        assert_eq!(get("postgresql.service"), Some("enabled"));
        assert_eq!(get("apt-daily.service"), Some("static"));
        assert_eq!(get("debug-shell.service"), Some("disabled"));
        assert_eq!(get("uuidd.service"), Some("indirect"));
        assert_eq!(get("hwclock.service"), Some("masked"));
        assert_eq!(get("kmod.service"), Some("alias"));
        assert_eq!(get("getty@.service"), Some("enabled"));
        assert_eq!(get("ssh.service"), Some("masked"));
    }
}
