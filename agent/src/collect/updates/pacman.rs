//! pacman (Arch): `pacman -Qu` compares the local database with the synced
//! repository databases (no download) and prints `name old -> new`,
//! possibly followed by `[ignored]`. It exits 1 when nothing is
//! upgradable. pacman says nothing about security.

use std::path::Path;

use super::SourceUpdates;
use crate::collect::software::{is_live_root, run_command_accepting};
use crate::error::{Error, Result};
use crate::inventory::updates::{PendingUpdate, UpdateSource};

const MAX_OUTPUT_BYTES: u64 = 4 * 1024 * 1024;

/// Runs pacman on the live system; `Ok(None)` when it is missing, `root` is
/// not "/", or there is no local pacman database (a Debian host with the
/// pacman tool installed is not an Arch host).
pub fn collect(root: &Path) -> Result<Option<SourceUpdates>> {
    if !is_live_root(root) || !root.join("var/lib/pacman/local").is_dir() {
        return Ok(None);
    }
    let Some(text) = run_command_accepting("pacman", &["-Qu"], &[], MAX_OUTPUT_BYTES, &[0, 1])? else { return Ok(None) };
    Ok(Some(SourceUpdates { updates: parse_query_upgrades(&text)?, unreadable: Vec::new() }))
}

/// Parses `pacman -Qu` output.
pub fn parse_query_upgrades(text: &str) -> Result<Vec<PendingUpdate>> {
    let mut updates = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (name, old, new) = match words.as_slice() {
            [name, old, "->", new] | [name, old, "->", new, "[ignored]"] => (name, old, new),
            _ => return Err(Error::parse("pacman -Qu output", Some(index + 1), format!("{line:?} is not \"name old -> new\""))),
        };
        updates.push(PendingUpdate {
            name: (*name).to_owned(),
            installed_version: Some((*old).to_owned()),
            available_version: (*new).to_owned(),
            source: UpdateSource::Pacman,
            security: false,
            origin: None,
        });
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::collect::updates::tests::fixture;

    #[test]
    fn parses_pacman_qu_output() {
        let updates = parse_query_upgrades(&fixture("pacman-qu.txt")).expect("valid fixture");
        let rows: Vec<(&str, Option<&str>, &str)> =
            updates.iter().map(|u| (u.name.as_str(), u.installed_version.as_deref(), u.available_version.as_str())).collect();
        assert_eq!(
            rows,
            [
                ("linux", Some("6.9.7.arch1-1"), "6.9.8.arch1-1"),
                ("openssl", Some("3.3.0-1"), "3.3.1-1"),
                ("yay", Some("1:12.3.5-1"), "1:12.4.0-1")
            ]
        );
    }

    #[test]
    fn truncated_output_names_the_line() {
        let error = parse_query_upgrades(&fixture("pacman-qu-truncated.txt")).expect_err("cut").to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
