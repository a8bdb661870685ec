//! Arch Linux (pacman) versions: `[epoch:]pkgver[-pkgrel]`, ordered as
//! libalpm's `alpm_pkg_vercmp` (what `vercmp` prints).
//!
//! pacman's comparison descends from an old `rpmvercmp` but is not rpm's, so
//! it lives here rather than reusing [`crate::rpm`]:
//! * no `~` or `^` magic: every non-alphanumeric byte is a separator;
//! * a longer separator wins over a shorter one ("1..0" > "1.0");
//! * a trailing letter segment is *older* than the end of the string
//!   ("1.0a" < "1.0", "1.0rc1" < "1.0"), while "1.0.a" > "1.0";
//! * the epoch is always compared (missing = 0); the pkgrel only when both
//!   versions have one.
//!
//! [`vercmp`] is that function, byte for byte. It is not a total order, for
//! two reasons, so [`compare`] (what [`crate::compare`] uses) differs
//! from it in exactly these cases:
//! * a pkgrel present on one side only: `vercmp` ignores it, which makes
//!   "1.0-1" == "1.0" == "1.0-2" although "1.0-1" < "1.0-2"; `compare` sorts
//!   a missing pkgrel before every present one;
//! * a component ending in separators: `vercmp` gives the cycle
//!   "1a." < "1a1" < "1a.b" < "1a."; `compare` sorts "end after separators"
//!   right after "end", so there "1a.b" > "1a.". Every pair where neither
//!   component ends in a separator is ordered as `vercmp` orders it.

use std::cmp::Ordering;

/// `[epoch:]version[-release]` split as pacman's `parseEVR` splits it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PacmanVersion<'a> {
    /// The digits before the colon; "0" when absent or empty.
    pub epoch: &'a str,
    pub version: &'a str,
    /// The pkgrel after the last hyphen; None when there is no hyphen.
    pub release: Option<&'a str>,
}

impl<'a> PacmanVersion<'a> {
    /// pacman's `parseEVR`; every string splits.
    pub fn parse(evr: &'a str) -> PacmanVersion<'a> {
        let rpm = crate::rpm::Evr::parse(evr);
        PacmanVersion { epoch: rpm.epoch.unwrap_or("0"), version: rpm.version, release: rpm.release }
    }
}

/// pacman's `alpm_pkg_vercmp`, exactly. Not transitive; see the module doc.
pub fn vercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (PacmanVersion::parse(a), PacmanVersion::parse(b));
    alpm_rpmvercmp(a.epoch, b.epoch).then_with(|| alpm_rpmvercmp(a.version, b.version)).then_with(|| match (a.release, b.release) {
        (Some(x), Some(y)) => alpm_rpmvercmp(x, y),
        _ => Ordering::Equal,
    })
}

/// The total order closest to [`vercmp`]; see the module doc for the two
/// kinds of pairs where they differ.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (a, b) = (PacmanVersion::parse(a), PacmanVersion::parse(b));
    compare_component(a.epoch, b.epoch).then_with(|| compare_component(a.version, b.version)).then_with(|| match (a.release, b.release) {
        (Some(x), Some(y)) => compare_component(x, y),
        (x, y) => x.is_some().cmp(&y.is_some()),
    })
}

/// libalpm's copy of `rpmvercmp`, ported line for line.
pub fn alpm_rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let at = |s: &[u8], k: usize| s.get(k).copied().unwrap_or(0);
    let (mut one, mut two) = (0, 0);
    let (mut seg_end_a, mut seg_end_b) = (0, 0);
    while at(a, one) != 0 && at(b, two) != 0 {
        while at(a, one) != 0 && !at(a, one).is_ascii_alphanumeric() {
            one += 1;
        }
        while at(b, two) != 0 && !at(b, two).is_ascii_alphanumeric() {
            two += 1;
        }
        if at(a, one) == 0 || at(b, two) == 0 {
            break;
        }
        if one - seg_end_a != two - seg_end_b {
            return (one - seg_end_a).cmp(&(two - seg_end_b));
        }
        let numeric = at(a, one).is_ascii_digit();
        let in_segment = |c: u8| {
            if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() }
        };
        seg_end_a = one;
        while in_segment(at(a, seg_end_a)) {
            seg_end_a += 1;
        }
        seg_end_b = two;
        while in_segment(at(b, seg_end_b)) {
            seg_end_b += 1;
        }
        if seg_end_b == two {
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let decided = if numeric {
            crate::generic::compare_digits(&a[one..seg_end_a], &b[two..seg_end_b])
        } else {
            a[one..seg_end_a].cmp(&b[two..seg_end_b])
        };
        if decided != Ordering::Equal {
            return decided;
        }
        one = seg_end_a;
        two = seg_end_b;
    }
    let (rest_a, rest_b) = (at(a, one), at(b, two));
    if rest_a == 0 && rest_b == 0 {
        return Ordering::Equal;
    }
    // "We never want a remaining alpha string to beat an empty string."
    if (rest_a == 0 && !rest_b.is_ascii_alphabetic()) || rest_a.is_ascii_alphabetic() { Ordering::Less } else { Ordering::Greater }
}

/// One step of a component as [`alpm_rpmvercmp`] sees it.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    /// A separator run of `sep` bytes, then a digit or letter segment.
    Segment { sep: usize, numeric: bool, text: &'a [u8] },
    /// The end, reached right after a segment or after trailing separators.
    End { trailing_separator: bool },
}

fn steps(component: &str) -> Vec<Step<'_>> {
    let bytes = component.as_bytes();
    let mut steps = Vec::new();
    let mut pos = 0;
    loop {
        let sep = bytes[pos..].iter().take_while(|c| !c.is_ascii_alphanumeric()).count();
        pos += sep;
        let Some(&first) = bytes.get(pos) else {
            steps.push(Step::End { trailing_separator: sep > 0 });
            return steps;
        };
        let numeric = first.is_ascii_digit();
        let len = bytes[pos..].iter().take_while(|c| if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() }).count();
        steps.push(Step::Segment { sep, numeric, text: &bytes[pos..pos + len] });
        pos += len;
    }
}

/// Orders steps so that the end sits between letter segments and digit
/// segments that follow without a separator, as in `alpm_rpmvercmp`.
fn compare_steps(x: Step<'_>, y: Step<'_>) -> Ordering {
    match (x, y) {
        (Step::Segment { sep: sx, numeric: nx, text: tx }, Step::Segment { sep: sy, numeric: ny, text: ty }) => {
            sx.cmp(&sy).then(nx.cmp(&ny)).then_with(|| if nx { crate::generic::compare_digits(tx, ty) } else { tx.cmp(ty) })
        }
        (Step::End { trailing_separator: ex }, Step::End { trailing_separator: ey }) => ex.cmp(&ey),
        (Step::End { .. }, Step::Segment { sep, numeric, .. }) => {
            if sep == 0 && !numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Step::Segment { .. }, Step::End { .. }) => compare_steps(y, x).reverse(),
    }
}

fn compare_component(a: &str, b: &str) -> Ordering {
    let (a, b) = (steps(a), steps(b));
    for (x, y) in a.iter().zip(&b) {
        let decided = compare_steps(*x, *y);
        if decided != Ordering::Equal {
            return decided;
        }
    }
    // Both lists end with an End step, and End steps compare unequal to
    // segments, so an equal walk means equal lengths.
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::{self, SplitMix};
    use std::cmp::Ordering::{Equal, Greater, Less};

    /// pacman's own test/util/vercmptest.sh cases and the vercmp(8) examples.
    const PACMAN_SUITE: &[(&str, &str, i32)] = &[
        ("1.5.0", "1.5.0", 0),
        ("1.5.1", "1.5.0", 1),
        ("1.5.1", "1.5", 1),
        ("1.5.0", "1.5", 1),
        ("1.5b", "1.5", -1),
        ("1.5b", "1.5.1", -1),
        ("1.0a", "1.0alpha", -1),
        ("1.0alpha", "1.0b", -1),
        ("1.0b", "1.0beta", -1),
        ("1.0beta", "1.0rc", -1),
        ("1.0rc", "1.0", -1),
        ("1.5.a", "1.5", 1),
        ("1.5.b", "1.5.a", 1),
        ("1.5.1", "1.5.b", 1),
        ("1.5.b-1", "1.5.b", 0),
        ("1.5-1", "1.5.b", -1),
        ("1.0.a", "1.0.1", -1),
        ("1.0", "1.0.a", -1),
        ("1.5-1", "1.5-1", 0),
        ("1.5-1", "1.5-2", -1),
        ("1.5-2", "1.5-1", 1),
        ("1.5-1", "1.5", 0),
        ("1.5", "1.5-1", 0),
        ("1.1-1", "1.1", 0),
        ("1.0-1", "1.1", -1),
        ("1.1-1", "1.0", 1),
        ("1.5-1", "1.5-1.1", -1),
        ("1.5-1.1", "1.5-1", 1),
        ("1.5.0-1", "1.5", 1),
        ("1.5.0-1.1", "1.5-1", 1),
        ("1.5.1-1", "1.5.0", 1),
        ("1.5.1", "1.5.0-1", 1),
        ("0:1.0", "0:1.0", 0),
        ("0:1.0", "0:1.1", -1),
        ("1:1.0", "0:1.0", 1),
        ("1:1.0", "0:1.1", 1),
        ("1:1.0", "2:1.1", -1),
        ("0:1.0", "1.0", 0),
        ("0:1.0", "1.1", -1),
        ("0:1.1", "1.0", 1),
        ("1:1.0", "1.0", 1),
        ("1:1.0", "1.1", 1),
        ("1:1.1", "1.1", 1),
        ("1.5.0", "1.5..0", -1),
        ("1.5..0", "1.5.0", 1),
        ("1.5", "1.5.", -1),
        ("1.5", "1.5..", -1),
        ("1.5.", "1.5..", 0),
        ("1.5a", "1.5_a", -1),
        ("1.5_a", "1.5a", 1),
    ];

    #[test]
    fn pacman_suite_table() {
        for &(a, b, expected) in PACMAN_SUITE {
            assert_eq!(vercmp(a, b), expected.cmp(&0), "vercmp({a}, {b})");
            assert_eq!(vercmp(b, a), expected.cmp(&0).reverse(), "vercmp({b}, {a})");
        }
    }

    #[test]
    fn vercmp_is_not_transitive_and_compare_is() {
        let (x, y, z) = ("1a.", "1a1", "1a.b");
        assert_eq!((vercmp(x, y), vercmp(y, z), vercmp(z, x)), (Less, Less, Less));
        assert_eq!((compare(x, y), compare(y, z), compare(x, z)), (Less, Less, Less));
        assert_eq!(compare("1.0", "1.0-1"), Less);
        assert_eq!(compare("1.0-1", "1.0-2"), Less);
    }

    #[test]
    fn compare_agrees_with_vercmp_on_the_suite_where_releases_match() {
        for &(a, b, _) in PACMAN_SUITE {
            let (pa, pb) = (PacmanVersion::parse(a), PacmanVersion::parse(b));
            if pa.release.is_some() == pb.release.is_some() {
                assert_eq!(compare(a, b), vercmp(a, b), "{a} vs {b}");
            }
        }
        assert_eq!(compare("1.5", "1.5."), Less);
        assert_eq!(compare("1.5.", "1.5.."), Equal);
        assert_eq!(compare("1.5.", "1.5a"), Greater);
    }

    fn random_version(rng: &mut SplitMix) -> String {
        let mut s = String::new();
        if rng.below(5) == 0 {
            s.push_str(&rng.below(3).to_string());
            s.push(':');
        }
        s.push_str(&rng.string(b"0123456789001abzA....__+", 8));
        if rng.below(2) == 0 {
            s.push('-');
            s.push_str(&rng.string(b"0123456789a.", 3));
        }
        s
    }

    fn ends_with_separator(component: &str) -> bool {
        component.bytes().last().is_some_and(|c| !c.is_ascii_alphanumeric())
    }

    #[test]
    fn oracle_pacman_vercmp() {
        if oracle::output("vercmp", &["1", "2"]).is_none() {
            eprintln!("skipped: pacman's vercmp is not installed");
            return;
        }
        let mut pairs: Vec<(String, String)> = PACMAN_SUITE.iter().map(|&(a, b, _)| (a.to_owned(), b.to_owned())).collect();
        let mut rng = SplitMix::new(0xa5c4_1100);
        for _ in 0..400 {
            let a = random_version(&mut rng);
            let b = if rng.below(2) == 0 {
                let mut b: String = a.chars().take(rng.below(a.len() + 1)).collect();
                b.push_str(&rng.string(b"0123456789ab._-", 4));
                b
            } else {
                random_version(&mut rng)
            };
            pairs.push((a, b));
        }
        pairs.retain(|(a, b)| !a.starts_with('-') && !b.starts_with('-'));
        let (mut exact, mut total) = (0, 0);
        for (a, b) in &pairs {
            let out = oracle::output("vercmp", &[a, b]).expect("vercmp ran");
            let said: i32 = out.stdout.trim().parse().expect("vercmp prints a number");
            assert_eq!(vercmp(a, b), said.cmp(&0), "vercmp({a:?}, {b:?})");
            exact += 1;
            let (pa, pb) = (PacmanVersion::parse(a), PacmanVersion::parse(b));
            let comparable = pa.release.is_some() == pb.release.is_some()
                && ![pa.version, pb.version, pa.release.unwrap_or(""), pb.release.unwrap_or("")].into_iter().any(ends_with_separator);
            if comparable {
                assert_eq!(compare(a, b), said.cmp(&0), "compare({a:?}, {b:?})");
                total += 1;
            }
        }
        eprintln!(
            "pacman oracle: vercmp agreed on {exact} pairs; compare agreed on the {total} of them \
             where it is meant to"
        );
    }
}
