//! RPM versions, ordered exactly as rpm orders them (`rpmvercmp`, and
//! `rpmverCmp` / `rpmverOverlap` for `[epoch:]version[-release]`).
//!
//! `rpmvercmp` walks both strings segment by segment: a segment is a run of
//! ASCII digits or a run of ASCII letters; every other byte only separates
//! segments and is otherwise ignored ("2.0" == "2_0"). Then:
//! * `~` sorts before everything, the end of the string included
//!   ("1.0~rc1" < "1.0");
//! * `^` sorts after the end of the string but before any segment
//!   ("1.0" < "1.0^git1" < "1.0.1");
//! * a numeric segment beats an alphabetic one ("1.0" > "1.a");
//! * numeric segments compare as integers of any length, alphabetic ones
//!   byte by byte;
//! * when everything compared equal, the string with segments left wins.
//!
//! That is a lexicographic order over the tokens `~ < end < ^ < letters <
//! digits`, hence a total preorder. For EVRs, rpm has two comparisons:
//! * [`compare_evr`] (`rpmverCmp`, how rpm sorts packages): a missing epoch
//!   is 0, a missing release sorts before any release. Total; used by
//!   [`crate::compare`].
//! * [`compare_dependency`] (`rpmverOverlap`, how rpm matches a dependency
//!   such as `foo >= 1.2`): a release missing on either side is ignored, so
//!   "1.2" equals both "1.2-1" and "1.2-5". That is *not* transitive; use it
//!   to test a requirement, never to sort.

use std::cmp::Ordering;

/// An `[epoch:]version[-release]` split the way rpm's `parseEVR` splits it.
/// Every string splits; nothing is rejected.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Evr<'a> {
    /// The digits before a colon; "0" for ":1.0"; None when there is no
    /// all-digit epoch followed by a colon.
    pub epoch: Option<&'a str>,
    pub version: &'a str,
    /// After the last hyphen; None when there is no hyphen.
    pub release: Option<&'a str>,
}

impl<'a> Evr<'a> {
    /// rpm's `parseEVR`. The release is searched for after the epoch digits,
    /// so "1-2:3" is version "1", release "2:3".
    pub fn parse(evr: &'a str) -> Evr<'a> {
        let digits = evr.bytes().take_while(u8::is_ascii_digit).count();
        let hyphen = evr[digits..].rfind('-').map(|at| digits + at);
        let (epoch, version_start) = if evr.as_bytes().get(digits) == Some(&b':') {
            let epoch = if digits == 0 { "0" } else { &evr[..digits] };
            (Some(epoch), digits + 1)
        } else {
            (None, 0)
        };
        match hyphen {
            Some(hyphen) if hyphen >= version_start => {
                Evr { epoch, version: &evr[version_start..hyphen], release: Some(&evr[hyphen + 1..]) }
            }
            // A hyphen found before the colon cannot exist (the epoch is
            // digits only), so this arm is for "no hyphen".
            _ => Evr { epoch, version: &evr[version_start..], release: None },
        }
    }
}

/// rpm's `rpmverCmp`: epoch (missing = "0"), then version, then release,
/// where a missing release sorts before every present one. A total order.
pub fn compare_evr(a: &str, b: &str) -> Ordering {
    let (a, b) = (Evr::parse(a), Evr::parse(b));
    rpmvercmp(a.epoch.unwrap_or("0"), b.epoch.unwrap_or("0")).then_with(|| rpmvercmp(a.version, b.version)).then_with(|| {
        match (a.release, b.release) {
            (Some(x), Some(y)) => rpmvercmp(x, y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        }
    })
}

/// How rpm relates two EVRs when checking a dependency (`rpmverOverlap`):
/// an epoch given on one side only counts only if it is above 0, and a
/// release given on one side only is ignored. Not transitive: never sort by it.
pub fn compare_dependency(a: &str, b: &str) -> Ordering {
    let (a, b) = (Evr::parse(a), Evr::parse(b));
    let positive = |epoch: &str| epoch.bytes().any(|c| c != b'0');
    let epoch = match (a.epoch, b.epoch) {
        (Some(x), Some(y)) => rpmvercmp(x, y),
        (Some(x), None) if positive(x) => Ordering::Greater,
        (None, Some(y)) if positive(y) => Ordering::Less,
        _ => Ordering::Equal,
    };
    epoch.then_with(|| rpmvercmp(a.version, b.version)).then_with(|| match (a.release, b.release) {
        (Some(x), Some(y)) if !x.is_empty() && !y.is_empty() => rpmvercmp(x, y),
        _ => Ordering::Equal,
    })
}

fn is_separator(c: u8) -> bool {
    !c.is_ascii_alphanumeric() && c != b'~' && c != b'^'
}

/// rpm's `rpmvercmp` on one version (or release) string. Bytes outside ASCII
/// are separators, as in rpm; a NUL byte, which rpm could never see, is one too.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        while i < a.len() && is_separator(a[i]) {
            i += 1;
        }
        while j < b.len() && is_separator(b[j]) {
            j += 1;
        }
        let (ca, cb) = (a.get(i).copied(), b.get(j).copied());

        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            if ca.is_none() {
                return Ordering::Less;
            }
            if cb.is_none() {
                return Ordering::Greater;
            }
            if ca != Some(b'^') {
                return Ordering::Greater;
            }
            if cb != Some(b'^') {
                return Ordering::Less;
            }
            i += 1;
            j += 1;
            continue;
        }
        let (Some(first), Some(_)) = (ca, cb) else {
            break;
        };

        let numeric = first.is_ascii_digit();
        let in_segment = |c: &u8| {
            if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() }
        };
        let end_a = i + a[i..].iter().take_while(|c| in_segment(c)).count();
        let end_b = j + b[j..].iter().take_while(|c| in_segment(c)).count();
        if end_b == j {
            // Segments of different kinds: the numeric one is newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let decided = if numeric { crate::generic::compare_digits(&a[i..end_a], &b[j..end_b]) } else { a[i..end_a].cmp(&b[j..end_b]) };
        if decided != Ordering::Equal {
            return decided;
        }
        i = end_a;
        j = end_b;
    }
    match (i >= a.len(), j >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{self, SplitMix};
    use std::cmp::Ordering::{Equal, Greater, Less};

    /// rpm's own suite, tests/rpmvercmp.at, case for case.
    const RPM_SUITE: &[(&str, &str, i32)] = &[
        ("1.0", "1.0", 0),
        ("1.0", "2.0", -1),
        ("2.0", "1.0", 1),
        ("2.0.1", "2.0.1", 0),
        ("2.0", "2.0.1", -1),
        ("2.0.1", "2.0", 1),
        ("2.0.1a", "2.0.1a", 0),
        ("2.0.1a", "2.0.1", 1),
        ("2.0.1", "2.0.1a", -1),
        ("5.5p1", "5.5p1", 0),
        ("5.5p1", "5.5p2", -1),
        ("5.5p2", "5.5p1", 1),
        ("5.5p10", "5.5p10", 0),
        ("5.5p1", "5.5p10", -1),
        ("5.5p10", "5.5p1", 1),
        ("10xyz", "10.1xyz", -1),
        ("10.1xyz", "10xyz", 1),
        ("xyz10", "xyz10", 0),
        ("xyz10", "xyz10.1", -1),
        ("xyz10.1", "xyz10", 1),
        ("xyz.4", "xyz.4", 0),
        ("xyz.4", "8", -1),
        ("8", "xyz.4", 1),
        ("xyz.4", "2", -1),
        ("2", "xyz.4", 1),
        ("5.5p2", "5.6p1", -1),
        ("5.6p1", "5.5p2", 1),
        ("5.6p1", "6.5p1", -1),
        ("6.5p1", "5.6p1", 1),
        ("6.0.rc1", "6.0", 1),
        ("6.0", "6.0.rc1", -1),
        ("10b2", "10a1", 1),
        ("10a2", "10b2", -1),
        ("1.0aa", "1.0aa", 0),
        ("1.0a", "1.0aa", -1),
        ("1.0aa", "1.0a", 1),
        ("10.0001", "10.0001", 0),
        ("10.0001", "10.1", 0),
        ("10.1", "10.0001", 0),
        ("10.0001", "10.0039", -1),
        ("10.0039", "10.0001", 1),
        ("4.999.9", "5.0", -1),
        ("5.0", "4.999.9", 1),
        ("20101121", "20101121", 0),
        ("20101121", "20101122", -1),
        ("20101122", "20101121", 1),
        ("2_0", "2_0", 0),
        ("2.0", "2_0", 0),
        ("2_0", "2.0", 0),
        ("a", "a", 0),
        ("a+", "a+", 0),
        ("a+", "a_", 0),
        ("a_", "a+", 0),
        ("+a", "+a", 0),
        ("+a", "_a", 0),
        ("_a", "+a", 0),
        ("+_", "+_", 0),
        ("_+", "+_", 0),
        ("_+", "_+", 0),
        ("+", "_", 0),
        ("_", "+", 0),
        ("1.0~rc1", "1.0~rc1", 0),
        ("1.0~rc1", "1.0", -1),
        ("1.0", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc2", -1),
        ("1.0~rc2", "1.0~rc1", 1),
        ("1.0~rc1~git123", "1.0~rc1~git123", 0),
        ("1.0~rc1~git123", "1.0~rc1", -1),
        ("1.0~rc1", "1.0~rc1~git123", 1),
        // Caret cases from the same file in later rpm releases.
        ("1.0^", "1.0^", 0),
        ("1.0^", "1.0", 1),
        ("1.0", "1.0^", -1),
        ("1.0^git1", "1.0^git1", 0),
        ("1.0^git1", "1.0", 1),
        ("1.0", "1.0^git1", -1),
        ("1.0^git1", "1.0^git2", -1),
        ("1.0^git2", "1.0^git1", 1),
        ("1.0^git1", "1.01", -1),
        ("1.01", "1.0^git1", 1),
        ("1.0^20160101", "1.0^20160101", 0),
        ("1.0^20160101", "1.0.1", -1),
        ("1.0.1", "1.0^20160101", 1),
        ("1.0^20160101^git1", "1.0^20160101^git1", 0),
        ("1.0^20160102", "1.0^20160101^git1", 1),
        ("1.0^20160101^git1", "1.0^20160102", -1),
        ("1.0~rc1^git1", "1.0~rc1^git1", 0),
        ("1.0~rc1^git1", "1.0~rc1", 1),
        ("1.0~rc1", "1.0~rc1^git1", -1),
        ("1.0^git1~pre", "1.0^git1~pre", 0),
        ("1.0^git1", "1.0^git1~pre", 1),
        ("1.0^git1~pre", "1.0^git1", -1),
        // The "oddities" the suite documents without asserting.
        ("1b.fc17", "1b.fc17", 0),
        ("1b.fc17", "1.fc17", -1),
        ("1.fc17", "1b.fc17", 1),
        ("1g.fc17", "1g.fc17", 0),
        ("1g.fc17", "1.fc17", 1),
        ("1.fc17", "1g.fc17", -1),
        ("1.1.α", "1.1.α", 0),
        ("1.1.α", "1.1.β", 0),
        ("1.1.αα", "1.1.α", 0),
    ];

    #[test]
    fn rpm_suite_table() {
        assert!(RPM_SUITE.len() >= 90);
        for &(a, b, expected) in RPM_SUITE {
            assert_eq!(rpmvercmp(a, b), expected.cmp(&0), "rpmvercmp({a}, {b})");
        }
    }

    #[test]
    fn evr_parsing_follows_parse_evr() {
        let cases: &[(&str, Option<&str>, &str, Option<&str>)] = &[
            ("1:2.0-3", Some("1"), "2.0", Some("3")),
            ("2.0", None, "2.0", None),
            ("2.0-3.fc39", None, "2.0", Some("3.fc39")),
            (":2.0", Some("0"), "2.0", None),
            ("a:2.0", None, "a:2.0", None),
            ("1.2-3-4", None, "1.2-3", Some("4")),
            ("1-2:3", None, "1", Some("2:3")),
            ("5:", Some("5"), "", None),
            ("", None, "", None),
            ("2.0-", None, "2.0", Some("")),
        ];
        for &(input, epoch, version, release) in cases {
            assert_eq!(Evr::parse(input), Evr { epoch, version, release }, "{input}");
        }
    }

    #[test]
    fn evr_ordering() {
        let cases: &[(&str, &str, Ordering)] = &[
            ("1:1.0-1", "2.0-1", Greater),
            ("0:1.0", "1.0", Equal),
            ("00:1.0", "1.0", Equal),
            ("1.0", "1.0-1", Less),
            ("1.0-1", "1.0-2", Less),
            ("1.0-1.el9", "1.0-1.el9_2", Less),
            ("1.0-", "1.0", Greater),
            ("2.0~rc1-1", "2.0-1", Less),
            ("2.0^post1-1", "2.0-9", Greater),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(compare_evr(a, b), expected, "{a} vs {b}");
            assert_eq!(compare_evr(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn dependency_comparison_ignores_a_missing_release() {
        assert_eq!(compare_dependency("1.0", "1.0-5"), Equal);
        assert_eq!(compare_dependency("1.0-5", "1.0"), Equal);
        assert_eq!(compare_dependency("1.0-4", "1.0-5"), Less);
        assert_eq!(compare_dependency("1:1.0", "1.0-5"), Greater);
        assert_eq!(compare_dependency("0:1.0", "1.0"), Equal);
        assert_eq!(compare_dependency("1.1", "1.0-5"), Greater);
        // Why it must not be used to sort: "1.0-1" == "1.0" == "1.0-2".
        assert_eq!(compare_dependency("1.0-1", "1.0-2"), Less);
    }

    fn random_evr(rng: &mut SplitMix) -> String {
        const BODY: &[u8] = b"0123456789001aAbzZ....__++~~^^";
        let mut s = String::new();
        if rng.below(4) == 0 {
            s.push_str(&rng.below(3).to_string());
            s.push(':');
        }
        s.push_str(&rng.string(BODY, 8));
        if rng.below(2) == 0 {
            s.push('-');
            s.push_str(&rng.string(b"0123456789ab.~^_", 4));
        }
        s
    }

    /// One `rpm --eval` run answers every pair: the Lua in rpm reads them
    /// from a file and prints `rpm.vercmp`, which in rpm 4.18 parses both
    /// sides as EVRs and applies `rpmverCmp`. Pairs without `:` or `-` are
    /// plain versions, for which that is `rpmvercmp` itself.
    #[test]
    fn oracle_rpm() {
        if !oracle::available("rpm", &["--version"]) {
            eprintln!("skipped: rpm is not installed");
            return;
        }
        let mut evr_pairs: Vec<(String, String)> = Vec::new();
        let mut rng = SplitMix::new(0x5eed_0f4e_1100);
        for _ in 0..600 {
            let a = random_evr(&mut rng);
            let b = if rng.below(2) == 0 {
                let mut b: String = a.chars().take(rng.below(a.len() + 1)).collect();
                b.push_str(&rng.string(b"0123456789aZ._~^-", 4));
                b
            } else {
                random_evr(&mut rng)
            };
            evr_pairs.push((a, b));
        }
        let plain = |s: &str| s.replace([':', '-'], "");
        let mut plain_pairs: Vec<(String, String)> = RPM_SUITE.iter().map(|&(a, b, _)| (a.to_owned(), b.to_owned())).collect();
        plain_pairs.extend(evr_pairs.iter().map(|(a, b)| (plain(a), plain(b))));
        // rpm's EVR parser refuses an empty string; rpmvercmp itself does not.
        let nonempty = |(a, b): &(String, String)| !a.is_empty() && !b.is_empty();
        evr_pairs.retain(nonempty);
        plain_pairs.retain(nonempty);
        let all: Vec<&(String, String)> = evr_pairs.iter().chain(&plain_pairs).collect();

        let dir = std::env::temp_dir().join(format!("census-rpm-oracle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("pairs");
        let body: String = all.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
        std::fs::write(&file, body).expect("write pairs");
        let script = format!(
            "%{{lua: for line in io.lines(\"{}\") do \
               local a, b = line:match(\"^(.-)\\t(.*)$\") \
               print(rpm.vercmp(a, b) .. \"\\n\") \
             end}}",
            file.display()
        );
        let out = oracle::output("rpm", &["--eval", &script]).expect("rpm ran");
        std::fs::remove_dir_all(&dir).expect("clean temp dir");
        let answers: Vec<i32> =
            out.stdout.lines().filter(|l| !l.trim().is_empty()).map(|l| l.trim().parse().expect("rpm prints a number")).collect();
        assert_eq!(answers.len(), all.len(), "rpm answered every pair: {}", out.stderr);

        let (evr_answers, plain_answers) = answers.split_at(evr_pairs.len());
        for ((a, b), said) in evr_pairs.iter().zip(evr_answers) {
            assert_eq!(compare_evr(a, b), said.cmp(&0), "rpmverCmp({a:?}, {b:?})");
        }
        for ((a, b), said) in plain_pairs.iter().zip(plain_answers) {
            assert_eq!(rpmvercmp(a, b), said.cmp(&0), "rpmvercmp({a:?}, {b:?})");
        }
        eprintln!("rpm oracle: {} EVR pairs agreed on rpmverCmp, {} plain pairs on rpmvercmp", evr_pairs.len(), plain_pairs.len());
    }
}
