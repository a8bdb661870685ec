//! Debian package versions, ordered exactly as dpkg orders them
//! (deb-version(7); `parseversion` and `verrevcmp` in libdpkg).
//!
//! A version is `[epoch:]upstream[-revision]`: the epoch is a decimal number
//! (0 when absent), the revision is everything after the *last* hyphen ("" when
//! there is none, which compares equal to "0"). Upstream and revision are
//! compared with `verrevcmp`: alternating non-digit and digit runs; in a
//! non-digit run letters sort before every other character, `~` sorts before
//! everything including the end of the string; digit runs compare as integers
//! of any length (leading zeros dropped, then length, then digits), so nothing
//! overflows.
//!
//! dpkg sorts two kinds of bad input differently, and so does this module:
//! * *errors* (empty, embedded blanks, bad epoch, nothing after the colon,
//!   empty upstream, empty revision after a trailing hyphen) make
//!   `dpkg --compare-versions` exit 2. [`DebVersion::parse_lenient`] rejects
//!   them too.
//! * *warnings* (upstream not starting with a digit, characters outside
//!   `[A-Za-z0-9.+~-:]` in upstream or `[A-Za-z0-9.+~]` in revision) are still
//!   compared by dpkg. [`DebVersion::parse_lenient`] accepts them;
//!   [`DebVersion::parse`] rejects them, as `dpkg-deb --build` and Debian
//!   policy do, so `parse` is the validator for "is this a proper Debian
//!   version".
//!
//! Bytes above 0x7f are weighted as dpkg on amd64 weights them (C `char` is
//! signed there), so they sort after letters and before ASCII punctuation.

use std::cmp::Ordering;
use std::fmt;

use crate::VersionError;

/// A parsed Debian version. Its ordering is dpkg's, so two versions that
/// print differently can compare equal ("1.0" and "1.00-0").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DebVersion {
    /// The epoch, 0 when absent. dpkg refuses epochs above `i32::MAX`.
    pub epoch: u32,
    /// The upstream version, between the epoch colon and the last hyphen.
    pub upstream: String,
    /// The Debian revision after the last hyphen; "" when there is none.
    pub revision: String,
}

impl DebVersion {
    /// Parses a version that dpkg accepts without a warning: the validator
    /// for "is this a proper Debian version".
    pub fn parse(version: &str) -> Result<DebVersion, VersionError> {
        match parse_dpkg(version)? {
            (parsed, None) => Ok(parsed),
            (_, Some(warning)) => Err(warning),
        }
    }

    /// Parses a version the way `dpkg --compare-versions` does: errors are
    /// rejected, warnings are accepted and the version is still ordered.
    pub fn parse_lenient(version: &str) -> Result<DebVersion, VersionError> {
        parse_dpkg(version).map(|(parsed, _)| parsed)
    }

    /// dpkg's `dpkg_version_compare`: epoch, then upstream, then revision.
    pub fn compare(&self, other: &DebVersion) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

impl fmt::Display for DebVersion {
    /// Prints the epoch when it is not 0 or when leaving it out would change
    /// the meaning (upstream containing a colon), like dpkg.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.epoch != 0 || self.upstream.contains(':') {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

/// Orders two version strings as dpkg does. Versions dpkg refuses with an
/// error sort before every version it accepts, and among themselves by the
/// generic ordering, so this is a total order on all strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (DebVersion::parse_lenient(a), DebVersion::parse_lenient(b)) {
        (Ok(a), Ok(b)) => a.compare(&b),
        (Err(_), Ok(_)) => Ordering::Less,
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Err(_)) => crate::generic::compare(a, b),
    }
}

/// C's `isblank` in the C locale: what dpkg trims and calls an embedded space.
fn is_blank(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// C's `isspace` in the C locale: what `strtol` skips before the epoch.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// dpkg's `parseversion`, check for check and in the same order (the order
/// decides whether a string with two problems is an error or a warning).
/// Returns the version and the warning dpkg would print, if any.
fn parse_dpkg(input: &str) -> Result<(DebVersion, Option<VersionError>), VersionError> {
    let error = |reason: &'static str| VersionError::Dpkg { version: input.to_owned(), reason };
    if input.contains('\0') {
        // dpkg reads C strings: it could never be handed this one whole.
        return Err(error("version string contains a NUL byte"));
    }
    let trimmed = input.trim_start_matches([' ', '\t']);
    if trimmed.is_empty() {
        return Err(error("version string is empty"));
    }
    let end = trimmed.bytes().position(is_blank).unwrap_or(trimmed.len());
    if !trimmed[end..].bytes().all(is_blank) {
        return Err(error("version string has embedded spaces"));
    }
    let text = &trimmed[..end];

    let (epoch, rest) = match text.find(':') {
        Some(colon) => {
            let epoch = parse_epoch(&text[..colon]).map_err(error)?;
            let rest = &text[colon + 1..];
            if rest.is_empty() {
                return Err(error("nothing after colon in version number"));
            }
            (epoch, rest)
        }
        None => (0, text),
    };
    let (upstream, revision) = match rest.rfind('-') {
        Some(hyphen) => (&rest[..hyphen], Some(&rest[hyphen + 1..])),
        None => (rest, None),
    };
    if revision == Some("") {
        return Err(error("revision number is empty"));
    }
    if upstream.is_empty() {
        return Err(error("version number is empty"));
    }
    let parsed = DebVersion { epoch, upstream: upstream.to_owned(), revision: revision.unwrap_or("").to_owned() };
    let warning = if !upstream.as_bytes()[0].is_ascii_digit() {
        Some(error("version number does not start with digit"))
    } else if !upstream.bytes().all(|c| c.is_ascii_alphanumeric() || b".-+~:".contains(&c)) {
        Some(error("invalid character in version number"))
    } else if !parsed.revision.bytes().all(|c| c.is_ascii_alphanumeric() || b".+~".contains(&c)) {
        Some(error("invalid character in revision number"))
    } else {
        None
    };
    Ok((parsed, warning))
}

/// The epoch as dpkg reads it with `strtol`: leading C whitespace, an
/// optional sign, decimal digits, and nothing else before the colon.
fn parse_epoch(field: &str) -> Result<u32, &'static str> {
    let field = field.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    let (negative, digits) = match field.as_bytes().first() {
        Some(b'-') => (true, &field[1..]),
        Some(b'+') => (false, &field[1..]),
        _ => (false, field),
    };
    let digit_count = digits.bytes().take_while(u8::is_ascii_digit).count();
    if digit_count == 0 {
        return Err("epoch in version is empty");
    }
    if digit_count != digits.len() {
        return Err("epoch in version is not number");
    }
    let significant = digits.trim_start_matches('0');
    if negative && !significant.is_empty() {
        return Err("epoch in version is negative");
    }
    // Ten digits is the most that can still fit under i32::MAX.
    let value = if significant.len() > 10 { None } else { significant.parse::<u64>().ok().or(Some(0)) };
    match value {
        Some(value) if value <= i32::MAX as u64 => Ok(u32::try_from(value).expect("value is at most i32::MAX")),
        _ => Err("epoch in version is too big"),
    }
}

/// dpkg's weight of a byte in a non-digit run; `None` is the end of string.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        // dpkg passes a signed `char` on amd64: a byte above 0x7f arrives
        // negative and gets weight c - 256 + 256, i.e. its unsigned value,
        // between the letters and the ASCII punctuation.
        Some(c) if c >= 0x80 => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`, used for both the upstream version and the revision.
pub fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let is_digit_at = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let (ac, bc) = (order(a.get(i).copied()), order(b.get(j).copied()));
            if ac != bc {
                return ac.cmp(&bc);
            }
            // Equal weights here are never 0, so neither side is at its end.
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let (start_a, start_b) = (i, j);
        while is_digit_at(a, i) {
            i += 1;
        }
        while is_digit_at(b, j) {
            j += 1;
        }
        let (run_a, run_b) = (&a[start_a..i], &b[start_b..j]);
        match run_a.len().cmp(&run_b.len()).then_with(|| run_a.cmp(run_b)) {
            Ordering::Equal => {}
            decided => return decided,
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{self, SplitMix};
    use std::cmp::Ordering::{Equal, Greater, Less};

    fn ord(n: i32) -> Ordering {
        n.cmp(&0)
    }

    /// The comparison table of dpkg's own test suite
    /// (scripts/t/Dpkg_Version.t), which also runs `dpkg --compare-versions`.
    const DPKG_SUITE: &[(&str, &str, i32)] = &[
        ("1.0-1", "2.0-2", -1),
        ("2.2~rc-4", "2.2-1", -1),
        ("2.2-1", "2.2~rc-4", 1),
        ("1.0000-1", "1.0-1", 0),
        ("1", "0:1", 0),
        ("0", "0:0-0", 0),
        ("2:2.5", "1:7.5", 1),
        ("1:foo", "foo", 1),
        ("0:foo", "foo", 0),
        ("foo", "foo", 0),
        ("foo-0", "foo", 0),
        ("foo", "fo", 1),
        ("foo-0", "foo+", -1),
        ("foo~1", "foo", -1),
        ("foo~foo+Bar", "foo~foo+bar", -1),
        ("foo~~", "foo~", -1),
        ("1~", "1", -1),
        ("12345+that-really-is-some-ver-0", "12345+that-really-is-some-ver-10", -1),
        ("foo-0", "foo-01", -1),
        ("foo.bar", "foobar", 1),
        ("foo.bar", "foo1bar", 1),
        ("foo.bar", "foo0bar", 1),
        ("1foo-1", "foo-1", -1),
        ("foo2.0", "foo2", 1),
        ("foo2.0.0", "foo2.10.0", -1),
        ("foo2.0", "foo2.0.0", -1),
        ("foo2.0", "foo2.10", -1),
        ("foo2.1", "foo2.10", -1),
        ("1.09", "1.9", 0),
        ("1.0.8+nmu1", "1.0.8", 1),
        ("3.11", "3.10+nmu1", 1),
        ("0.9j-20080306-4", "0.9i-20070324-2", 1),
        ("1.2.0~b7-1", "1.2.0~b6-1", 1),
        ("1.011-1", "1.06-2", 1),
        ("0.0.9+dfsg1-1", "0.0.8+dfsg1-3", 1),
        ("4.6.99+svn6582-1", "4.6.99+svn6496-1", 1),
        ("53", "52", 1),
        ("0.9.9~pre122-1", "0.9.9~pre111-1", 1),
        ("2:2.3.2-2+lenny2", "2:2.3.2-2", 1),
        ("1:3.8.1-1", "3.8.GA-1", 1),
        ("1.0.1+gpl-1", "1.0.1-2", 1),
        ("1a", "1000a", -1),
        // From lib/dpkg/t/t-version.c.
        ("0:0-00", "0:00-0", 0),
        ("1:2-3", "1:2-3", 0),
        ("0:0-0", "1:0-0", -1),
        ("0:a-0", "0:b-0", -1),
        ("0:0-a", "0:0-b", -1),
        ("0:0-0-0", "0-0-0", 0),
        ("0:0:0-0", "0:0:0-0", 0),
    ];

    /// The cases the product depends on most, written as the spec states them.
    const TRICKY: &[(&str, &str, Ordering)] = &[
        ("1:1.0", "2.0", Greater),
        ("1.0~rc1", "1.0", Less),
        ("1.0~~", "1.0~", Less),
        ("1.0~", "1.0", Less),
        ("1.0", "1.0a", Less),
        ("1.0~~a", "1.0~~", Greater),
        ("1.0-1", "1.0-2", Less),
        ("1.0-1", "1.0-1.1", Less),
        ("1.0", "1.0-0", Equal),
        ("1.0", "1.0-1", Less),
        ("1.0a", "1.0+", Less),
        ("1.0a", "1.0.", Less),
        ("1.0z", "1.0A", Greater),
        ("1.0+", "1.0.", Less),
        ("1.0.1", "1.0a", Greater),
        ("1.001", "1.1", Equal),
        ("1.010", "1.9", Greater),
        ("007", "7", Equal),
        ("1.123456789012345678901234567890", "1.123456789012345678901234567889", Greater),
        ("1.99999999999999999999999", "1.100000000000000000000000", Less),
        ("1:0", "0:99999999999999999999", Greater),
        ("1.2-3-4", "1.2-3-5", Less),
        ("1.2-3-4", "1.2-4", Greater),
        ("1:2:3", "1:2:4", Less),
        ("9:1", "10:0", Less),
    ];

    #[test]
    fn dpkg_suite_table() {
        assert!(DPKG_SUITE.len() >= 40);
        for &(a, b, expected) in DPKG_SUITE {
            assert_eq!(compare(a, b), ord(expected), "{a} vs {b}");
            assert_eq!(compare(b, a), ord(-expected), "{b} vs {a}");
        }
    }

    #[test]
    fn tricky_cases() {
        for &(a, b, expected) in TRICKY {
            assert_eq!(compare(a, b), expected, "{a} vs {b}");
            assert_eq!(compare(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn tilde_chain_is_ordered() {
        let chain = ["1.0~~", "1.0~~a", "1.0~", "1.0~rc1", "1.0", "1.0-0.1", "1.0a", "1.0+b1", "1.0.1"];
        for pair in chain.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Less, "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn parse_splits_epoch_and_last_hyphen() {
        let v = DebVersion::parse("2:1.2-3-4").expect("valid");
        assert_eq!((v.epoch, v.upstream.as_str(), v.revision.as_str()), (2, "1.2-3", "4"));
        let v = DebVersion::parse("0:0:0-0").expect("valid");
        assert_eq!((v.epoch, v.upstream.as_str(), v.revision.as_str()), (0, "0:0", "0"));
        let v = DebVersion::parse(" \t1.0 ").expect("blanks are trimmed");
        assert_eq!((v.epoch, v.upstream.as_str(), v.revision.as_str()), (0, "1.0", ""));
        let v = DebVersion::parse("+1:2").expect("strtol takes a sign");
        assert_eq!(v.epoch, 1);
        assert_eq!(DebVersion::parse("2147483647:1").expect("max").epoch, 2147483647);
    }

    #[test]
    fn display_round_trips() {
        for s in ["1.0", "1:1.0-1", "0:1:2-3", "1.0-1.1~bpo"] {
            let v = DebVersion::parse(s).expect("valid");
            assert_eq!(DebVersion::parse(&v.to_string()).expect("reparses"), v);
        }
        assert_eq!(DebVersion::parse("0:1.0").expect("valid").to_string(), "1.0");
    }

    #[test]
    fn errors_rejected_by_both_parsers() {
        for bad in [
            "",
            "  ",
            "0:",
            "0:0 0-1",
            "-1:0-1",
            "999999999999999999999999:0-1",
            "2147483648:1",
            "a:0-0",
            "A:0-0",
            "-0",
            "0:-0",
            "1.0-",
            "1:-",
            ":1",
            "1\0",
        ] {
            assert!(DebVersion::parse(bad).is_err(), "{bad:?} must be rejected");
            assert!(DebVersion::parse_lenient(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn warnings_rejected_only_by_strict_parser() {
        let mut cases = vec!["0:abc3-0".to_owned(), "0:0-0:0".to_owned(), "~1".to_owned()];
        for c in "!#@$%&/|\\<>()[]{};,_=*^'".chars() {
            cases.push(format!("0:0{c}-0"));
        }
        for c in "!#@$%&/|\\<>()[]{}:;,_=*^'".chars() {
            cases.push(format!("0:0-0{c}"));
        }
        for case in &cases {
            assert!(DebVersion::parse(case).is_err(), "{case:?} is only a warning in dpkg");
            assert!(DebVersion::parse_lenient(case).is_ok(), "{case:?} is still comparable");
        }
        assert!(DebVersion::parse("0:09azAZ.-+~:-0").is_ok());
        assert!(DebVersion::parse("0:0-azAZ09.+~").is_ok());
    }

    #[test]
    fn invalid_versions_sort_first() {
        assert_eq!(compare("", "~"), Less);
        assert_eq!(compare("1 2", "0"), Less);
        assert_eq!(compare("0:", "0"), Less);
        assert_eq!(compare("", ""), Equal);
    }

    /// A random version in dpkg's alphabet, sometimes with an epoch, a
    /// revision, several hyphens or colons, and now and then a bad character.
    fn random_version(rng: &mut SplitMix) -> String {
        const BODY: &[u8] = b"0123456789001aAbzZ..++~~~-:";
        let mut s = String::new();
        if rng.below(4) == 0 {
            s.push_str(&rng.below(12).to_string());
            s.push(':');
        }
        s.push(char::from(b'0' + u8::try_from(rng.below(10)).expect("below 10")));
        for _ in 0..rng.below(8) {
            s.push(char::from(BODY[rng.below(BODY.len())]));
        }
        if rng.below(2) == 0 {
            s.push('-');
            for _ in 0..1 + rng.below(4) {
                s.push(char::from(b"0123456789ab.+~"[rng.below(15)]));
            }
        }
        if rng.below(40) == 0 {
            s.push(char::from(b"_@%"[rng.below(3)]));
        }
        s
    }

    /// `dpkg --compare-versions`: Some(order), or None when dpkg refuses.
    fn dpkg_order(a: &str, b: &str) -> Option<Option<Ordering>> {
        let relation = |op: &str| oracle::exit_code("dpkg", &["--compare-versions", a, op, b]);
        match relation("lt")? {
            0 => Some(Some(Less)),
            1 => match relation("eq")? {
                0 => Some(Some(Equal)),
                _ => Some(Some(Greater)),
            },
            _ => Some(None),
        }
    }

    #[test]
    fn oracle_dpkg_compare_versions() {
        if !oracle::available("dpkg", &["--version"]) {
            eprintln!("skipped: dpkg is not installed");
            return;
        }
        let mut pairs: Vec<(String, String)> = DPKG_SUITE
            .iter()
            .map(|&(a, b, _)| (a.to_owned(), b.to_owned()))
            .chain(TRICKY.iter().map(|&(a, b, _)| (a.to_owned(), b.to_owned())))
            .collect();
        let mut rng = SplitMix::new(0x0d15_ea5e_5eed);
        for _ in 0..520 {
            let a = random_version(&mut rng);
            // Half the pairs share a prefix, where the interesting decisions are.
            let b = if rng.below(2) == 0 {
                let cut = rng.below(a.len() + 1);
                let mut b: String = a.chars().take(cut).collect();
                for _ in 0..rng.below(5) {
                    b.push(char::from(b"0123456789aZ.+~-:"[rng.below(17)]));
                }
                b
            } else {
                random_version(&mut rng)
            };
            pairs.push((a, b));
        }
        let (mut agreed, mut both_refused) = (0, 0);
        for (a, b) in &pairs {
            // dpkg reads a leading '-' as an option; such strings are invalid anyway.
            if a.starts_with('-') || b.starts_with('-') {
                continue;
            }
            let dpkg = dpkg_order(a, b).expect("dpkg ran");
            let ours = (DebVersion::parse_lenient(a), DebVersion::parse_lenient(b));
            match (dpkg, ours) {
                (Some(order), (Ok(x), Ok(y))) => {
                    assert_eq!(x.compare(&y), order, "{a:?} vs {b:?}: dpkg says {order:?}");
                    agreed += 1;
                }
                (None, (Ok(_), Ok(_))) => panic!("dpkg refused {a:?} vs {b:?}, we did not"),
                // The command line takes "" as "no version", older than any:
                // the place `compare` gives every refused string.
                (Some(order), _) if a.is_empty() || b.is_empty() => {
                    assert_eq!(compare(a, b), order, "{a:?} vs {b:?}");
                    agreed += 1;
                }
                (Some(order), _) => panic!("dpkg ordered {a:?} vs {b:?} ({order:?}), we refused"),
                (None, _) => both_refused += 1,
            }
        }
        eprintln!("dpkg oracle: {agreed} pairs agreed, {both_refused} refused by both, of {}", pairs.len());
        assert!(agreed >= 400, "too few pairs compared: {agreed}");
    }

    #[test]
    fn oracle_dpkg_validation() {
        if !oracle::available("dpkg", &["--version"]) {
            eprintln!("skipped: dpkg is not installed");
            return;
        }
        let mut rng = SplitMix::new(7);
        let mut inputs: Vec<String> = (0..150).map(|_| random_version(&mut rng)).collect();
        inputs.extend(
            ["1.0-", "1:", "1 2", "a", "1.0é", "\n1:1", "+1:2", "1:a", "0:0-0:0", "1_0", "9999999999:1", " 1", "1\t"].map(String::from),
        );
        for input in inputs.iter().filter(|s| !s.starts_with('-')) {
            let out = oracle::output("dpkg", &["--compare-versions", input, "eq", "0"]).expect("dpkg ran");
            let refused = out.code == Some(2);
            let warned = out.stderr.contains("warning");
            assert_eq!(DebVersion::parse_lenient(input).is_err(), refused, "{input:?}: {}", out.stderr);
            assert_eq!(DebVersion::parse(input).is_err(), refused || warned, "{input:?}: {}", out.stderr);
        }
    }
}
