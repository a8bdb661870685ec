//! dnf / yum (Fedora, RHEL and rebuilds): `dnf check-update` lists the
//! available updates (exit code 100 when there are some, 0 when none), and
//! `dnf updateinfo list --security` names the packages whose update is a
//! security advisory. `yum` is asked the same when dnf is missing. Neither
//! prints the installed version, so it is absent.
//!
//! Both commands answer from the cached repository metadata (`-C`): the
//! agent never triggers a metadata download on its own.

use std::collections::HashSet;
use std::path::Path;

use super::SourceUpdates;
use crate::collect::software::{is_live_root, run_command_accepting};
use crate::error::{Error, Result};
use crate::inventory::unreadable::Unreadable;
use crate::inventory::updates::{PendingUpdate, UpdateSource};

const MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `dnf` (else `yum`) on the live system; `Ok(None)` when neither
/// exists or `root` is not "/".
pub fn collect(root: &Path) -> Result<Option<SourceUpdates>> {
    if !is_live_root(root) {
        return Ok(None);
    }
    for program in ["dnf", "yum"] {
        let Some(listing) = run_command_accepting(program, &["-C", "-q", "check-update"], &[], MAX_OUTPUT_BYTES, &[0, 100])? else {
            continue;
        };
        let mut updates = parse_check_update(&listing)?;
        let mut unreadable = Vec::new();
        match run_command_accepting(program, &["-C", "-q", "updateinfo", "list", "--security"], &[], MAX_OUTPUT_BYTES, &[0]) {
            Ok(Some(text)) => mark_security(&mut updates, &parse_security_names(&text)),
            Ok(None) => {}
            Err(e) => unreadable.push(Unreadable::new("updates.security", e.to_string())),
        }
        return Ok(Some(SourceUpdates { updates, unreadable }));
    }
    Ok(None)
}

/// Parses `dnf check-update` / `yum check-update` output: `name.arch
/// version repo` rows; a long name is printed alone with the rest of its row
/// on the next line. Stops at "Obsoleting Packages" (those are not updates
/// of an installed name). Headers ("Last metadata expiration check") and
/// blank lines are skipped.
pub fn parse_check_update(text: &str) -> Result<Vec<PendingUpdate>> {
    let mut updates = Vec::new();
    let mut carried: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.starts_with("Obsoleting Packages") {
            break;
        }
        if line.trim().is_empty() || line.starts_with("Last metadata expiration check") || line.starts_with("Security:") {
            continue;
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let joined;
        if let Some((_, name)) = carried.take() {
            joined = name;
            words.insert(0, &joined);
        }
        match words.as_slice() {
            [name] => carried = Some((number, (*name).to_owned())),
            [name_arch, version, repo] => {
                let (name, _arch) = name_arch
                    .rsplit_once('.')
                    .ok_or_else(|| Error::parse("dnf check-update output", Some(number), format!("{name_arch:?} is not name.arch")))?;
                updates.push(PendingUpdate {
                    name: name.to_owned(),
                    installed_version: None,
                    available_version: (*version).to_owned(),
                    source: UpdateSource::Dnf,
                    security: false,
                    origin: Some((*repo).to_owned()),
                });
            }
            _ => {
                return Err(Error::parse(
                    "dnf check-update output",
                    Some(number),
                    format!("{line:?} is not \"name.arch version repository\""),
                ));
            }
        }
    }
    if let Some((line, name)) = carried {
        return Err(Error::parse("dnf check-update output", Some(line), format!("row for {name} is cut off")));
    }
    Ok(updates)
}

/// Package names in `dnf updateinfo list --security` output. dnf 4 prints
/// `ADVISORY SEVERITY/Sec. NEVRA`, dnf 5 `ADVISORY security SEVERITY NEVRA
/// DATE` under a header; rows of any other shape are ignored.
pub fn parse_security_names(text: &str) -> HashSet<String> {
    let mut names = HashSet::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let nevra = match words.as_slice() {
            [_, kind, nevra] if kind.ends_with("/Sec.") => nevra,
            [_, "security", _, nevra, ..] => nevra,
            _ => continue,
        };
        if let Some(name) = name_of_nevra(nevra) {
            names.insert(name.to_owned());
        }
    }
    names
}

/// `openssl-1:3.0.7-27.el9.x86_64` -> `openssl`: drop `.arch`, then the
/// release and the `[epoch:]version` (the last two `-` parts).
pub fn name_of_nevra(nevra: &str) -> Option<&str> {
    let (nevr, _arch) = nevra.rsplit_once('.')?;
    let (nev, _release) = nevr.rsplit_once('-')?;
    let (name, _version) = nev.rsplit_once('-')?;
    (!name.is_empty()).then_some(name)
}

fn mark_security(updates: &mut [PendingUpdate], names: &HashSet<String>) {
    for update in updates {
        update.security = names.contains(&update.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::collect::updates::tests::fixture;

    #[test]
    fn parses_check_update_with_wrapped_rows_and_stops_at_obsoletes() {
        let mut updates = parse_check_update(&fixture("dnf-check-update.txt")).expect("valid fixture");
        let rows: Vec<(&str, &str, Option<&str>)> =
            updates.iter().map(|u| (u.name.as_str(), u.available_version.as_str(), u.origin.as_deref())).collect();
        assert_eq!(
            rows,
            [
                ("kernel", "5.14.0-427.13.1.el9_4", Some("baseos")),
                ("openssl", "1:3.0.7-27.el9", Some("baseos")),
                ("python3-setuptools-wheel", "53.0.0-12.el9_4.1", Some("appstream")),
                ("tzdata", "2024a-1.el9", Some("baseos")),
            ]
        );
        mark_security(&mut updates, &parse_security_names(&fixture("dnf-updateinfo-security.txt")));
        let security: Vec<&str> = updates.iter().filter(|u| u.security).map(|u| u.name.as_str()).collect();
        assert_eq!(security, ["kernel", "openssl"]);
    }

    #[test]
    fn dnf5_security_rows_and_nevra_names() {
        let names = parse_security_names(&fixture("dnf5-updateinfo-security.txt"));
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["curl", "python3-urllib3"]);
        assert_eq!(name_of_nevra("glibc-langpack-en-2.34-100.el9.x86_64"), Some("glibc-langpack-en"));
        assert_eq!(name_of_nevra("nonsense"), None);
    }

    #[test]
    fn truncated_and_malformed_output_names_the_line() {
        let error = parse_check_update(&fixture("dnf-check-update-truncated.txt")).expect_err("cut row").to_string();
        assert!(error.contains("line 4") && error.contains("cut off"), "{error}");
        let error = parse_check_update("kernel.x86_64 5.14 baseos extra words\n").expect_err("too many words").to_string();
        assert!(error.contains("line 1"), "{error}");
        let error = parse_check_update("kernel 5.14 baseos\n").expect_err("no arch").to_string();
        assert!(error.contains("name.arch"), "{error}");
        assert!(parse_check_update("").expect("empty is no updates").is_empty());
    }
}
