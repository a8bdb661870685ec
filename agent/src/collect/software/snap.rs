//! snap: the output of `snap list --unicode=never --color=never`, a table
//! with a header row (`Name Version Rev Tracking Publisher Notes`; older snapd
//! says `Developer` and has no `Tracking`) and one row per installed snap.
//! snapd's own `state.json` is large and its layout is internal, so the
//! reader asks the `snap` command; it can only describe the running system.
//!
//! Columns are found by their header names. No cell contains a blank (names,
//! versions, channels, publisher account names and comma-joined notes never
//! do), so rows split on whitespace. The publisher is the vendor, without the
//! verification mark snap appends (`**`/`✓` verified, `*`/`✪` starred);
//! `-` (a locally installed snap) is no vendor. snap list gives no
//! architecture and no install time.
//!
//! Output without a recognisable header fails the whole source (it is not a
//! package table). A row with the wrong number of cells is skipped, one error
//! each naming its line.

use std::path::Path;

use super::{Listing, is_live_root, run_command};
use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

const MAX_OUTPUT_BYTES: u64 = 8 * 1024 * 1024;
const WHAT: &str = "snap list output";

/// Runs the snap source: `Ok(None)` when `snap` is not installed or `root`
/// is not the running system's.
pub fn collect(root: &Path) -> Result<Option<Listing>> {
    if !is_live_root(root) {
        return Ok(None);
    }
    read_snap_list()?.map(|text| parse_snap_list(&text)).transpose()
}

/// Runs `snap list --unicode=never --color=never`; `Ok(None)` when snap is
/// not installed.
pub fn read_snap_list() -> Result<Option<String>> {
    run_command("snap", &["list", "--unicode=never", "--color=never"], &[], MAX_OUTPUT_BYTES)
}

/// Parses `snap list` output. Empty output (snap prints "No snaps are
/// installed yet" on stderr) is an empty listing.
pub fn parse_snap_list(text: &str) -> Result<Listing> {
    let mut lines = text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Ok(Listing::default());
    };
    if header.starts_with("No snaps are installed") {
        return Ok(Listing::default());
    }
    let columns: Vec<&str> = header.split_whitespace().collect();
    let position = |names: &[&str]| columns.iter().position(|c| names.contains(c));
    let (Some(0), Some(version_at)) = (position(&["Name"]), position(&["Version"])) else {
        return Err(Error::parse(WHAT, Some(1), format!("first line {header:?} is not the Name/Version/... header")));
    };
    let publisher_at = position(&["Publisher", "Developer"]);

    let mut listing = Listing::default();
    for (index, line) in lines {
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() != columns.len() {
            listing.skip(Error::parse(
                WHAT,
                Some(index + 1),
                format!("expected {} columns like the header, got {}: {line:?}", columns.len(), cells.len()),
            ));
            continue;
        }
        let (Some(name), Some(version)) = (cells.first(), cells.get(version_at)) else {
            continue;
        };
        listing.packages.push(Package {
            name: (*name).to_owned(),
            version: (*version).to_owned(),
            arch: None,
            vendor: publisher_at.and_then(|at| cells.get(at)).and_then(|p| publisher(p)),
            source: PackageSource::Snap,
            install_time_unix_ms: None,
        });
    }
    Ok(listing)
}

/// The publisher's account name without snap's verification marks.
fn publisher(cell: &str) -> Option<String> {
    let name = cell.trim_end_matches(['*', '✓', '✪']);
    (!name.is_empty() && name != "-").then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = include_str!("../../../tests/fixtures/software/snap-list.txt");
    const UNICODE: &str = include_str!("../../../tests/fixtures/software/snap-list-unicode.txt");
    const OLD: &str = include_str!("../../../tests/fixtures/software/snap-list-old.txt");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/software/snap-list-truncated.txt");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/software/snap-list-malformed.txt");

    fn vendor_of<'p>(listing: &'p Listing, name: &str) -> Option<&'p str> {
        listing.packages.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("{name} missing")).vendor.as_deref()
    }

    #[test]
    fn parses_rows_and_strips_publisher_marks() {
        let listing = parse_snap_list(LIST).expect("fixture is a snap table");
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        assert_eq!(listing.packages.len(), LIST.lines().count() - 1);
        let firefox = listing.packages.iter().find(|p| p.name == "firefox").expect("firefox listed");
        assert_eq!(firefox.version, "127.0.2-1");
        assert_eq!(firefox.source, PackageSource::Snap);
        assert_eq!((firefox.arch.as_deref(), firefox.install_time_unix_ms), (None, None));
        assert_eq!(vendor_of(&listing, "firefox"), Some("mozilla"));
        assert_eq!(vendor_of(&listing, "core22"), Some("canonical"));
        assert_eq!(vendor_of(&listing, "spotify"), Some("spotify"), "starred mark stripped");
        assert_eq!(vendor_of(&listing, "hello-local"), None, "local snaps have no publisher");
    }

    #[test]
    fn unicode_marks_and_old_headers_are_understood() {
        let unicode = parse_snap_list(UNICODE).expect("unicode table");
        assert_eq!(vendor_of(&unicode, "core22"), Some("canonical"));
        assert_eq!(vendor_of(&unicode, "spotify"), Some("spotify"));
        let old = parse_snap_list(OLD).expect("old table");
        assert_eq!(old.packages.len(), 2);
        assert_eq!(old.packages[0].version, "16-2.35.4");
        assert_eq!(vendor_of(&old, "hello"), Some("canonical"));
    }

    #[test]
    fn truncated_row_is_skipped_with_its_line() {
        let listing = parse_snap_list(TRUNCATED).expect("header is intact");
        assert_eq!(listing.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["bare", "core22"]);
        assert_eq!(listing.errors.len(), 1);
        let message = listing.errors[0].to_string();
        assert!(message.contains("snap list output at line 4") && message.contains("got 4"), "{message}");
    }

    #[test]
    fn output_that_is_not_a_table_fails_the_source() {
        let message = parse_snap_list(MALFORMED).expect_err("no header").to_string();
        assert!(message.contains("line 1") && message.contains("cannot communicate"), "{message}");
    }

    #[test]
    fn no_snaps_is_empty() {
        assert!(parse_snap_list("").expect("empty").packages.is_empty());
        let hint = "No snaps are installed yet. Try 'snap install hello-world'.\n";
        assert!(parse_snap_list(hint).expect("hint").packages.is_empty());
    }
}
