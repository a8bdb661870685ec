//! Alpine (apk) versions, ordered as apk-tools' `version.c` orders them.
//!
//! The grammar is Gentoo's: `digits{.digits}{letter}{_suffix{digits}}{-rN}`,
//! with the suffixes `_alpha < _beta < _pre < _rc < (none) < _cvs < _svn <
//! _git < _hg < _p`. apk reads a version as a stream of typed tokens and
//! compares the streams token by token:
//! * same token type: compare values (numbers as integers; a component
//!   after a dot that starts with zeros is worth minus its zero count, so
//!   "1.01" < "1.1", as apk does);
//! * one departure from apk-tools 2: there "1.0_rc1" > "1.0", because after
//!   the zeros of ".0" apk reads an empty number token before the suffix.
//!   Here a pre-release suffix after ".0" is a pre-release like after any
//!   other number ("1.0_rc1" < "1.0"), as the Gentoo rules apk follows say;
//! * different types: a pre-release suffix is older than anything; otherwise
//!   the stream with the "earlier" token type (digit before letter before
//!   suffix before revision before end) is newer, and an invalid tail is
//!   newer still ("1.0bc" > "1.0", as apk's test data says).
//!
//! Numbers are compared by their digits, never converted, so long date
//! stamps ("_pre20191002222144") do not overflow. The stream order is
//! lexicographic over tokens whose kinds sort in fixed bands, so [`compare`]
//! is a total preorder on every string, valid or not; [`validate`] says
//! whether apk itself would accept the version.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::VersionError;
use crate::generic::compare_digits;

/// apk's token types, in apk's numbering (the order matters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    /// A run of digits, possibly empty (worth 0).
    Number(&'a [u8]),
    /// Leading zeros after a dot: worth minus their count.
    Zeros(usize),
    Letter(u8),
    /// -4..=-1 for alpha, beta, pre, rc (and -1 for an unknown suffix);
    /// 0..=4 for cvs, svn, git, hg, p.
    Suffix(i8),
}

/// apk compares every token value as one `int`; so do we, without its
/// overflow: a negative magnitude, or the decimal digits of a value >= 0.
enum Int<'a> {
    Negative(usize),
    NonNegative(Cow<'a, [u8]>),
}

fn as_int(value: Value<'_>) -> Int<'_> {
    let small = |n: u8| Int::NonNegative(Cow::Owned(n.to_string().into_bytes()));
    match value {
        Value::Number(digits) => Int::NonNegative(Cow::Borrowed(digits)),
        Value::Zeros(count) => Int::Negative(count),
        Value::Letter(c) => small(c),
        Value::Suffix(v) => match u8::try_from(v) {
            Ok(v) => small(v),
            Err(_) => Int::Negative(usize::from(v.unsigned_abs())),
        },
    }
}

fn compare_values(a: Value<'_>, b: Value<'_>) -> Ordering {
    match (as_int(a), as_int(b)) {
        (Int::Negative(x), Int::Negative(y)) => y.cmp(&x),
        (Int::Negative(_), Int::NonNegative(_)) => Ordering::Less,
        (Int::NonNegative(_), Int::Negative(_)) => Ordering::Greater,
        (Int::NonNegative(x), Int::NonNegative(y)) => compare_digits(&x, &y),
    }
}

const PRE_SUFFIXES: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
const POST_SUFFIXES: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];

/// apk's tokenizer state: the unread bytes and the type of the next token.
struct Tokens<'a> {
    rest: &'a [u8],
    kind: Kind,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Tokens<'a> {
        Tokens { rest: version.as_bytes(), kind: Kind::Digit }
    }

    /// apk's `next_token`: decides the type of the token starting at `rest`.
    fn next_kind(&mut self) {
        let mut n = Kind::Invalid;
        match self.rest.first() {
            None | Some(0) => n = Kind::End,
            Some(c) if matches!(self.kind, Kind::Digit | Kind::DigitOrZero) && c.is_ascii_lowercase() => {
                n = Kind::Letter;
            }
            Some(c) if self.kind == Kind::Letter && c.is_ascii_digit() => n = Kind::Digit,
            Some(c) if self.kind == Kind::Suffix && c.is_ascii_digit() => n = Kind::SuffixNo,
            Some(&c) => {
                match c {
                    b'.' => n = Kind::DigitOrZero,
                    b'_' => n = Kind::Suffix,
                    b'-' if self.rest.get(1) == Some(&b'r') => {
                        n = Kind::RevisionNo;
                        self.rest = &self.rest[1..];
                    }
                    _ => {}
                }
                self.rest = &self.rest[1..];
            }
        }
        let allowed_step_back =
            matches!((n, self.kind), (Kind::DigitOrZero, Kind::Digit) | (Kind::Suffix, Kind::SuffixNo) | (Kind::Digit, Kind::Letter));
        if n < self.kind && !allowed_step_back {
            n = Kind::Invalid;
        }
        self.kind = n;
    }

    /// apk's `get_token`: reads the value of a token of type `self.kind` and
    /// moves on to the type of the next one.
    fn value(&mut self) -> Value<'a> {
        if self.rest.is_empty() {
            self.kind = Kind::End;
            return Value::Number(b"");
        }
        let digits = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut next = None;
        let (value, used) = match self.kind {
            Kind::DigitOrZero if self.rest[0] == b'0' => {
                let zeros = self.rest.iter().take_while(|&&c| c == b'0').count();
                // apk-tools 2 always reads the rest as a number token, even
                // an empty one, so "1.0_rc1" became newer than "1.0". Only a
                // digit continues the number here; anything else is typed as
                // after any other number, which keeps _rc1 a pre-release.
                if self.rest.get(zeros).is_some_and(u8::is_ascii_digit) {
                    next = Some(Kind::Digit);
                }
                (Value::Zeros(zeros), zeros)
            }
            Kind::DigitOrZero | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo => {
                let n = digits(self.rest);
                (Value::Number(&self.rest[..n]), n)
            }
            Kind::Letter => (Value::Letter(self.rest[0]), 1),
            Kind::Suffix => {
                let pre = PRE_SUFFIXES.iter().position(|s| self.rest.starts_with(s));
                let post = POST_SUFFIXES.iter().position(|s| self.rest.starts_with(s));
                let index = |i: usize| i8::try_from(i).expect("suffix tables are tiny");
                match (pre, post) {
                    (Some(i), _) => (Value::Suffix(index(i) - 4), PRE_SUFFIXES[i].len()),
                    (None, Some(i)) => (Value::Suffix(index(i)), POST_SUFFIXES[i].len()),
                    (None, None) => {
                        self.kind = Kind::Invalid;
                        return Value::Suffix(-1);
                    }
                }
            }
            Kind::Invalid | Kind::End => {
                self.kind = Kind::Invalid;
                return Value::Suffix(-1);
            }
        };
        self.rest = &self.rest[used..];
        if self.rest.is_empty() {
            self.kind = Kind::End;
        } else if let Some(next) = next {
            self.kind = next;
        } else {
            self.next_kind();
        }
        value
    }
}

/// Orders two apk versions as apk does; total on all strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (Tokens::new(a), Tokens::new(b));
    loop {
        if a.kind != b.kind {
            return compare_kinds(&a, &b);
        }
        if matches!(a.kind, Kind::End | Kind::Invalid) {
            return Ordering::Equal;
        }
        let decided = compare_values(a.value(), b.value());
        if decided != Ordering::Equal {
            return decided;
        }
    }
}

/// Two streams whose next tokens differ in type: apk's closing rules.
fn compare_kinds(a: &Tokens<'_>, b: &Tokens<'_>) -> Ordering {
    let pre_release = |t: &Tokens<'_>| {
        let mut probe = Tokens { rest: t.rest, kind: t.kind };
        t.kind == Kind::Suffix && matches!(probe.value(), Value::Suffix(v) if v < 0)
    };
    if pre_release(a) {
        return Ordering::Less;
    }
    if pre_release(b) {
        return Ordering::Greater;
    }
    // apk: the stream whose next token type is numbered higher is older.
    // Invalid is numbered lowest (-1 in apk), so an invalid tail is newer.
    b.kind.cmp(&a.kind)
}

/// Whether apk accepts `version` (apk's `apk_version_validate`); the empty
/// string, which apk lets through, is refused here.
pub fn validate(version: &str) -> Result<(), VersionError> {
    let invalid = |reason: &'static str| VersionError::Apk { version: version.to_owned(), reason };
    if version.is_empty() {
        return Err(invalid("version string is empty"));
    }
    let mut tokens = Tokens::new(version);
    while !matches!(tokens.kind, Kind::End | Kind::Invalid) {
        tokens.value();
    }
    match tokens.kind {
        Kind::End => Ok(()),
        _ => Err(invalid("not of the form digits{.digits}{letter}{_suffix{N}}{-rN}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    /// apk-tools' test/version.data: one comparison per line.
    const APK_SUITE: &str = include_str!("../tests/fixtures/apk-version.data");

    fn suite() -> Vec<(&'static str, Ordering, &'static str)> {
        APK_SUITE
            .lines()
            .map(|line| line.split('#').next().unwrap_or("").trim())
            .filter(|line| !line.is_empty())
            .map(|line| {
                let mut fields = line.split_whitespace();
                let a = fields.next().expect("left version");
                let op = match fields.next().expect("operator") {
                    "<" => Less,
                    "=" => Equal,
                    ">" => Greater,
                    other => panic!("unknown operator {other}"),
                };
                (a, op, fields.next().expect("right version"))
            })
            .collect()
    }

    #[test]
    fn apk_suite() {
        let cases = suite();
        assert!(cases.len() > 100, "fixture loaded: {}", cases.len());
        for (a, expected, b) in cases {
            assert_eq!(compare(a, b), expected, "{a} vs {b}");
            assert_eq!(compare(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn suffix_order() {
        let chain = [
            "1.0_alpha",
            "1.0_alpha1",
            "1.0_beta",
            "1.0_pre",
            "1.0_rc1",
            "1.0",
            "1.0-r1",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git",
            "1.0_hg",
            "1.0_p1",
            "1.0a",
            "1.0.1",
        ];
        for pair in chain.windows(2) {
            assert_eq!(compare(pair[0], pair[1]), Less, "{} < {}", pair[0], pair[1]);
        }
    }

    #[test]
    fn long_numbers_do_not_overflow() {
        assert_eq!(compare("1_pre99999999999999999999", "1_pre100000000000000000000"), Less);
        assert_eq!(compare("20251231235959999", "20251231235959998"), Greater);
    }

    #[test]
    fn validation() {
        for good in ["1", "1.2.3", "1.2.3a", "1.0_alpha2_pre1-r3", "0.9.8c-r1", "1.0_p10-r0", "2.12r-r4", "1..2"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["", "1.0bc", "23_foo", "1.0-", "1.0-x1", "abc", "1.0 "] {
            assert!(validate(bad).is_err(), "{bad}");
        }
    }
}
