//! The fallback ordering for versions whose source has no package manager
//! rules of its own: snap, flatpak, Windows registry entries, macOS
//! applications and package receipts, and unknown sources.
//!
//! A version is split into runs of ASCII digits, runs of ASCII letters and
//! runs of anything else (separators). Two versions compare run by run:
//! * digit runs as integers of any length ("1.10" > "1.9", "1.01" == "1.1");
//! * letter runs ignoring ASCII case ("1.0-Beta" == "1.0-beta"), separator
//!   runs byte by byte;
//! * different kinds at the same place: digits > separators > letters
//!   ("1.0.1" > "1.0.a", "1.0.1" > "1.0a", as dpkg and rpm agree);
//! * when one version runs out first it is the older ("1.0" < "1.0.1",
//!   "1.0" < "1.0b"), except that a separator run starting with `~` sorts
//!   even before the end, as in Debian ("1.0~beta" < "1.0").
//!
//! It is a total preorder on all strings (a lexicographic order of runs, each
//! run kind in its own band), never panics, and is also the tie-break order
//! for strings an ecosystem module cannot parse. It knows nothing of
//! pre-release words: "1.0-rc1" sorts after "1.0".

use std::cmp::Ordering;

#[derive(Debug, Clone, Copy)]
enum Run<'a> {
    Digits(&'a [u8]),
    Letters(&'a [u8]),
    Separators(&'a [u8]),
}

impl Run<'_> {
    /// The band a run sorts in; the end of the string is band 1.
    fn band(self) -> u8 {
        match self {
            Run::Separators(text) if text.first() == Some(&b'~') => 0,
            Run::Letters(_) => 2,
            Run::Separators(_) => 3,
            Run::Digits(_) => 4,
        }
    }
}

fn class(c: u8) -> u8 {
    if c.is_ascii_digit() {
        0
    } else if c.is_ascii_alphabetic() {
        1
    } else {
        2
    }
}

const END_BAND: u8 = 1;

fn runs(version: &str) -> impl Iterator<Item = Run<'_>> {
    let bytes = version.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        let kind = class(*bytes.get(start)?);
        let len = bytes[start..].iter().take_while(|&&c| class(c) == kind).count();
        let text = &bytes[start..start + len];
        start += len;
        Some(match kind {
            0 => Run::Digits(text),
            1 => Run::Letters(text),
            _ => Run::Separators(text),
        })
    })
}

/// Compares two digit strings as the integers they spell, of any length.
pub(crate) fn compare_digits(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |s: &[u8]| {
        let zeros = s.iter().take_while(|&&c| c == b'0').count();
        s[zeros..].to_vec()
    };
    let (a, b) = (strip(a), strip(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

fn compare_runs(a: Run<'_>, b: Run<'_>) -> Ordering {
    // Band first: a `~` run must stay below the end even against "." runs
    // that are smaller byte-wise, or the order would not be transitive.
    a.band().cmp(&b.band()).then_with(|| match (a, b) {
        (Run::Digits(x), Run::Digits(y)) => compare_digits(x, y),
        (Run::Letters(x), Run::Letters(y)) => x.iter().map(u8::to_ascii_lowercase).cmp(y.iter().map(u8::to_ascii_lowercase)),
        (Run::Separators(x), Run::Separators(y)) => x.cmp(y),
        _ => Ordering::Equal,
    })
}

/// Orders two versions by the numeric-aware fallback rules above.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut left, mut right) = (runs(a), runs(b));
    loop {
        let decided = match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (Some(x), None) => x.band().cmp(&END_BAND),
            (None, Some(y)) => END_BAND.cmp(&y.band()),
            (Some(x), Some(y)) => compare_runs(x, y),
        };
        if decided != Ordering::Equal {
            return decided;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    #[test]
    fn orders_common_desktop_versions() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("10.0.19041.1", "10.0.19041.1", Equal),
            ("10.0.19041.1", "10.0.22621.1", Less),
            ("1.9", "1.10", Less),
            ("1.01", "1.1", Equal),
            ("1.0", "1.0.1", Less),
            ("1.0", "1.0b", Less),
            ("1.0~beta", "1.0", Less),
            ("1.0~beta", "1.0~rc", Less),
            ("1.0.1", "1.0.a", Greater),
            ("1.0.1", "1.0a", Greater),
            ("1.0.1", "1.0-beta", Greater),
            ("1.0-Beta", "1.0-beta", Equal),
            ("14.2.1 (23C71)", "14.2.1 (23D56)", Less),
            ("2.61.3+git1", "2.61.3", Greater),
            ("", "0", Less),
            ("", "", Equal),
            ("99999999999999999999999", "100000000000000000000000", Less),
            ("Version 7", "Version 10", Less),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(compare(a, b), expected, "{a} vs {b}");
            assert_eq!(compare(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in ["\0", "é", "~", "~~", "..", "\u{1F600}1", "1\u{0301}"] {
            assert_eq!(compare(s, s), Equal, "{s:?}");
            let _ = compare(s, "1");
        }
    }
}
