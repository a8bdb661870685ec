//! macOS `softwareupdate --list`: the updates Apple's update service
//! offers (it contacts the catalog; run with a timeout like every command).
//! Since macOS 10.15 each update is a `* Label: <label>` line followed by a
//! tab-indented `Title: <title>, Version: <v>, Size: ..., Recommended: YES,`
//! line. Apple names security-only releases "Security Update ...",
//! "Background Security Improvement" or "Rapid Security Response", so
//! "Security" in the title or label marks a security update. The parser
//! compiles and is tested everywhere; the call exists only on macOS.

use crate::error::{Error, Result};
use crate::inventory::updates::{PendingUpdate, UpdateSource};

#[cfg(target_os = "macos")]
pub fn collect(_root: &std::path::Path) -> Result<Option<super::SourceUpdates>> {
    let Some(text) = crate::collect::software::run_command("softwareupdate", &["--list"], &[], 1024 * 1024)? else { return Ok(None) };
    Ok(Some(super::SourceUpdates { updates: parse_list(&text)?, unreadable: Vec::new() }))
}

/// Parses `softwareupdate --list` output ("No new software available." and
/// the banner lines give no updates).
pub fn parse_list(text: &str) -> Result<Vec<PendingUpdate>> {
    let what = "softwareupdate --list output";
    let mut updates = Vec::new();
    let mut label: Option<(usize, &str)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("* Label:") {
            if let Some((line, previous)) = label {
                return Err(Error::parse(what, Some(line), format!("update {previous:?} has no Title line")));
            }
            label = Some((number, rest.trim()));
        } else if let Some(rest) = trimmed.strip_prefix("Title:") {
            let Some((_, name)) = label.take() else {
                return Err(Error::parse(what, Some(number), "Title line without a Label line before it"));
            };
            let fields: Vec<(&str, &str)> = std::iter::once(("Title", rest))
                .chain(rest.split(", ").skip(1).filter_map(|f| f.split_once(':')))
                .map(|(k, v)| (k.trim(), v.trim().trim_end_matches(',')))
                .collect();
            let title = rest.split(", Version:").next().unwrap_or(rest).trim();
            let version = fields.iter().find(|(k, _)| *k == "Version").map(|(_, v)| *v).filter(|v| !v.is_empty());
            let Some(version) = version else {
                return Err(Error::parse(what, Some(number), format!("update {name:?} has no Version")));
            };
            updates.push(PendingUpdate {
                name: name.to_owned(),
                installed_version: None,
                available_version: version.to_owned(),
                source: UpdateSource::MacSoftwareUpdate,
                security: title.contains("Security") || name.contains("Security"),
                origin: None,
            });
        }
    }
    if let Some((line, name)) = label {
        return Err(Error::parse(what, Some(line), format!("update {name:?} has no Title line")));
    }
    Ok(updates)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::collect::updates::tests::fixture;

    #[test]
    fn parses_labels_titles_and_versions() {
        let updates = parse_list(&fixture("softwareupdate-list.txt")).expect("valid fixture");
        let rows: Vec<(&str, &str, bool)> = updates.iter().map(|u| (u.name.as_str(), u.available_version.as_str(), u.security)).collect();
        assert_eq!(
            rows,
            [
                ("macOS Sonoma 14.5-23F79", "14.5", false),
                ("Safari17.5VenturaAuto-17.5", "17.5", false),
                ("Background Security Improvement 14.5 (a)-23F79a", "14.5 (a)", true),
            ]
        );
        assert!(parse_list("Software Update Tool\n\nFinding available software\nNo new software available.\n").expect("none").is_empty());
    }

    #[test]
    fn truncated_output_names_the_label() {
        let error = parse_list(&fixture("softwareupdate-list-truncated.txt")).expect_err("cut").to_string();
        assert!(error.contains("line 5") && error.contains("no Title"), "{error}");
    }
}
