//! apk (Alpine): the installed database `/lib/apk/db/installed`, read
//! directly. Records are blocks of `X:value` lines (one-letter keys) separated
//! by a blank line; `P` is the name, `V` the version, `A` the architecture and
//! `m` the maintainer (the vendor). The file records no install time (`t` is
//! the build time), so none is given. Every installed file of a package is a
//! line too, which makes the file large: it is bounded by
//! [`MAX_DATABASE_BYTES`].
//!
//! Bad records (a line that is not `X:value`, no `P` or no `V` — as when the
//! file is cut short) are skipped with one error each naming the line of the
//! problem; the other packages are kept.

use std::path::Path;

use super::{Listing, read_bounded, under_root};
use crate::error::{Error, Result};
use crate::inventory::software::{Package, PackageSource};

pub const DATABASE_PATH: &str = "/lib/apk/db/installed";

/// A full Alpine desktop with file lists is about 10 MiB.
pub const MAX_DATABASE_BYTES: u64 = 64 * 1024 * 1024;

/// Runs the apk source on `root`: `Ok(None)` when there is no apk database.
pub fn collect(root: &Path) -> Result<Option<Listing>> {
    let path = under_root(root, DATABASE_PATH);
    Ok(read_bounded(&path, MAX_DATABASE_BYTES)?.map(|text| parse_installed(&text, &path.display().to_string())))
}

/// Parses the text of an apk `installed` database; `origin` names it in errors.
pub fn parse_installed(text: &str, origin: &str) -> Listing {
    let mut listing = Listing::with_capacity(text.len() / 4096);
    let mut record = Record::default();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if line.is_empty() {
            record.finish(origin, &mut listing);
            continue;
        }
        if record.line == 0 {
            record.line = number;
        }
        let bytes = line.as_bytes();
        let (Some(&key), Some(b':')) = (bytes.first(), bytes.get(1)) else {
            if record.failure.is_none() {
                record.failure = Some((number, format!("line {line:?} is not a `X:value` field")));
            }
            continue;
        };
        // The key is one ASCII byte and the colon another, so index 2 is a
        // character boundary.
        let value = line.get(2..).unwrap_or("");
        match key {
            b'P' => record.name = Some(value),
            b'V' => record.version = Some(value),
            b'A' => record.arch = Some(value),
            b'm' => record.maintainer = Some(value),
            _ => {}
        }
    }
    record.finish(origin, &mut listing);
    listing
}

#[derive(Default)]
struct Record<'a> {
    /// First line of the record, 0 before any.
    line: usize,
    name: Option<&'a str>,
    version: Option<&'a str>,
    arch: Option<&'a str>,
    maintainer: Option<&'a str>,
    failure: Option<(usize, String)>,
}

impl<'a> Record<'a> {
    /// Turns the record read so far into a package or an error, and starts
    /// the next one.
    fn finish(&mut self, origin: &str, listing: &mut Listing) {
        let record = std::mem::take(self);
        if record.line == 0 {
            return;
        }
        let outcome = match (record.failure, record.name.filter(|n| !n.is_empty()), record.version) {
            (Some(failure), _, _) => Err(failure),
            (None, None, _) => Err((record.line, "record has no P: (name) field".to_owned())),
            (None, Some(name), None) => Err((record.line, format!("package {name} has no V: (version) field"))),
            (None, Some(name), Some(version)) => Ok(Package {
                name: name.to_owned(),
                version: version.to_owned(),
                arch: record.arch.filter(|a| !a.is_empty()).map(str::to_owned),
                vendor: record.maintainer.filter(|m| !m.is_empty()).map(str::to_owned),
                source: PackageSource::Apk,
                install_time_unix_ms: None,
            }),
        };
        match outcome {
            Ok(package) => listing.packages.push(package),
            Err((line, reason)) => listing.skip(Error::parse(origin, Some(line), reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = include_str!("../../../tests/fixtures/software/apk-installed");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/software/apk-installed-truncated");
    const MALFORMED: &str = include_str!("../../../tests/fixtures/software/apk-installed-malformed");

    #[test]
    fn parses_every_record() {
        let listing = parse_installed(INSTALLED, "installed");
        assert!(listing.errors.is_empty(), "{:?}", listing.errors);
        assert_eq!(listing.packages.len(), INSTALLED.matches("\nP:").count());
        let musl = &listing.packages[0];
        assert_eq!(musl.name, "musl");
        assert_eq!(musl.version, "1.2.5-r0");
        assert_eq!(musl.arch.as_deref(), Some("x86_64"));
        assert_eq!(musl.vendor.as_deref(), Some("Timo Teräs <timo.teras@iki.fi>"));
        assert_eq!(musl.source, PackageSource::Apk);
        assert_eq!(musl.install_time_unix_ms, None, "t: is the build time, not the install time");
        let last = listing.packages.last().expect("five packages");
        assert_eq!((last.name.as_str(), last.arch.as_deref()), ("py3-setuptools-pyc", Some("noarch")));
    }

    #[test]
    fn truncated_record_is_reported_with_its_line() {
        let listing = parse_installed(TRUNCATED, "/lib/apk/db/installed");
        assert_eq!(listing.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["musl"]);
        assert_eq!(listing.errors.len(), 1);
        let message = listing.errors[0].to_string();
        assert!(message.contains("/lib/apk/db/installed at line 9") && message.contains("busybox"), "{message}");
    }

    #[test]
    fn malformed_records_are_skipped_one_error_each() {
        let listing = parse_installed(MALFORMED, "installed");
        assert_eq!(listing.packages.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["musl", "zlib"]);
        let messages: Vec<String> = listing.errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("line 10") && messages[0].contains("not a `X:value`"), "{}", messages[0]);
        assert!(messages[1].contains("line 13") && messages[1].contains("no P:"), "{}", messages[1]);
    }

    #[test]
    fn crlf_and_odd_bytes_never_panic() {
        let listing = parse_installed("P:a\r\nV:1\r\n\r\nP\nä\n:\n", "x");
        assert_eq!(listing.packages.len(), 1);
        assert_eq!(listing.packages[0].version, "1");
        for cut in 0..=INSTALLED.len() {
            if INSTALLED.is_char_boundary(cut) {
                let _ = parse_installed(&INSTALLED[..cut], "x");
            }
        }
    }
}
