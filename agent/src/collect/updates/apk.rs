//! apk (Alpine): `apk version -l '<'` compares installed packages with the
//! cached repository indexes (no download) and prints those with a newer
//! version: `name-version-rN  < newversion-rM` under an `Installed:` header.
//! apk says nothing about security.

use std::path::Path;

use super::SourceUpdates;
use crate::collect::software::{is_live_root, run_command};
use crate::error::{Error, Result};
use crate::inventory::updates::{PendingUpdate, UpdateSource};

const MAX_OUTPUT_BYTES: u64 = 4 * 1024 * 1024;

/// Runs apk on the live system; `Ok(None)` when it is missing or `root` is not "/".
pub fn collect(root: &Path) -> Result<Option<SourceUpdates>> {
    if !is_live_root(root) {
        return Ok(None);
    }
    let Some(text) = run_command("apk", &["version", "-l", "<"], &[], MAX_OUTPUT_BYTES)? else { return Ok(None) };
    Ok(Some(SourceUpdates { updates: parse_version_list(&text)?, unreadable: Vec::new() }))
}

/// Parses `apk version -l '<'` output.
pub fn parse_version_list(text: &str) -> Result<Vec<PendingUpdate>> {
    let mut updates = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let bad = |reason: String| Error::parse("apk version output", Some(index + 1), reason);
        if line.trim().is_empty() || line.starts_with("Installed:") || line.starts_with("WARNING") {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let [installed, "<", available] = words.as_slice() else {
            return Err(bad(format!("{line:?} is not \"name-version < version\"")));
        };
        let (name, version) = split_name_version(installed).ok_or_else(|| bad(format!("{installed:?} is not name-version-rN")))?;
        updates.push(PendingUpdate {
            name: name.to_owned(),
            installed_version: Some(version.to_owned()),
            available_version: (*available).to_owned(),
            source: UpdateSource::Apk,
            security: false,
            origin: None,
        });
    }
    Ok(updates)
}

/// `busybox-1.36.1-r28` -> (`busybox`, `1.36.1-r28`): the version is the
/// last two `-` parts, the second of which is the `rN` release.
fn split_name_version(text: &str) -> Option<(&str, &str)> {
    let (rest, release) = text.rsplit_once('-')?;
    let (name, _version) = rest.rsplit_once('-')?;
    (release.starts_with('r') && !name.is_empty()).then(|| (name, &text[name.len() + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::collect::updates::tests::fixture;

    #[test]
    fn parses_apk_version_output() {
        let updates = parse_version_list(&fixture("apk-version.txt")).expect("valid fixture");
        let rows: Vec<(&str, Option<&str>, &str)> =
            updates.iter().map(|u| (u.name.as_str(), u.installed_version.as_deref(), u.available_version.as_str())).collect();
        assert_eq!(
            rows,
            [
                ("busybox", Some("1.36.1-r28"), "1.36.1-r29"),
                ("libcrypto3", Some("3.3.0-r2"), "3.3.1-r0"),
                ("ssl_client", Some("1.36.1-r28"), "1.36.1-r29")
            ]
        );
    }

    #[test]
    fn malformed_and_truncated_lines_are_named() {
        let error = parse_version_list(&fixture("apk-version-truncated.txt")).expect_err("cut").to_string();
        assert!(error.contains("line 3"), "{error}");
        let error = parse_version_list("busybox < 1.0\n").expect_err("no version").to_string();
        assert!(error.contains("name-version-rN"), "{error}");
    }
}
