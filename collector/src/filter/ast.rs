//! The syntax tree of a filter, type-checked as it was parsed: every
//! literal already has its field's type (sizes in bytes, durations in
//! milliseconds), every pattern is compiled.
//!
//! `Display` prints the canonical text of a tree, and parsing that text
//! gives the same tree back (property-tested): parentheses are printed
//! exactly where the tree nests an `or` in an `and`, or a group in a group
//! of the same kind, so `(a or b) or c` stays two levels.

use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use super::fields::FieldRef;
use super::units::{format_duration, format_size};
use crate::alert::pattern::Glob;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// At least two alternatives.
    Or(Vec<Expr>),
    /// At least two conditions that must all hold.
    And(Vec<Expr>),
    Not(Box<Expr>),
    Condition(Condition),
}

/// An atom: one test of one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: FieldRef,
    pub test: Test,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `has memory.total`, `software("openssl")`: the field has a value.
    Present,
    /// `memory.total < 8GiB`; a bare boolean field is `= true`.
    Compare(Op, Literal),
    /// `os.id in ("debian", "ubuntu")`: equal to one of them.
    In(Vec<Literal>),
    /// `hostname ~ "web-*"`, `hostname ~ /^web-\d+$/`.
    Matches(Pattern),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    /// Whether `value <op> literal` holds, given `value.cmp(literal)`.
    pub fn holds(self, ordering: Ordering) -> bool {
        match self {
            Op::Eq => ordering.is_eq(),
            Op::Ne => ordering.is_ne(),
            Op::Lt => ordering.is_lt(),
            Op::Le => ordering.is_le(),
            Op::Gt => ordering.is_gt(),
            Op::Ge => ordering.is_ge(),
        }
    }

    /// `<`, `<=`, `>`, `>=`: only for types with an order.
    pub fn is_ordering(self) -> bool {
        !matches!(self, Op::Eq | Op::Ne)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        })
    }
}

/// A value written in a filter, already of its field's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// For text and version fields.
    Text(String),
    Integer(i64),
    /// Bytes.
    Size(u64),
    Percent(f64),
    /// Milliseconds.
    Duration(i64),
    Time(TimeLiteral),
    Bool(bool),
}

/// A time as written: relative ones are resolved against the evaluation's
/// `now`, so a compiled filter stays right as time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLiteral {
    Now,
    /// `1h ago`: milliseconds before now.
    Ago(i64),
    /// `30d from now`.
    FromNow(i64),
    /// `"2025-01-31"`, `"2025-01-31T12:00:00Z"`: Unix milliseconds UTC.
    At(i64),
}

impl TimeLiteral {
    pub fn resolve(self, now_unix_ms: i64) -> i64 {
        match self {
            TimeLiteral::Now => now_unix_ms,
            TimeLiteral::Ago(ms) => now_unix_ms.saturating_sub(ms),
            TimeLiteral::FromNow(ms) => now_unix_ms.saturating_add(ms),
            TimeLiteral::At(ms) => ms,
        }
    }
}

/// The right-hand side of `~`.
#[derive(Debug, Clone)]
pub enum Pattern {
    /// `"web-*"`: the whole text matches (`*` any run, `?` one character).
    Glob(Glob),
    /// `/^web-\d+$/`: searched anywhere in the text unless anchored.
    Regex(regex::Regex),
}

impl Pattern {
    pub fn matches(&self, text: &str) -> bool {
        match self {
            Pattern::Glob(g) => g.matches(text),
            Pattern::Regex(r) => r.is_match(text),
        }
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        match (self, other) {
            (Pattern::Glob(a), Pattern::Glob(b)) => a == b,
            (Pattern::Regex(a), Pattern::Regex(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

/// A string literal as the lexer reads it back: `"a \"b\""`.
pub(crate) fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(items) => join(f, items, " or ", |e| matches!(e, Expr::Or(_))),
            Expr::And(items) => join(f, items, " and ", |e| matches!(e, Expr::Or(_) | Expr::And(_))),
            Expr::Not(inner) if matches!(**inner, Expr::Or(_) | Expr::And(_)) => write!(f, "not ({inner})"),
            Expr::Not(inner) => write!(f, "not {inner}"),
            Expr::Condition(c) => c.fmt(f),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, items: &[Expr], separator: &str, parenthesise: fn(&Expr) -> bool) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(separator)?;
        }
        if parenthesise(item) {
            write!(f, "({item})")?;
        } else {
            write!(f, "{item}")?;
        }
    }
    Ok(())
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `software("openssl") < "3"` rather than `software("openssl").version < "3"`.
        let field = self.field.short_call().unwrap_or_else(|| self.field.to_string());
        match &self.test {
            Test::Present => match self.field.presence_call() {
                Some(call) => f.write_str(&call),
                None => write!(f, "has {}", self.field),
            },
            Test::Compare(Op::Eq, Literal::Bool(true)) => f.write_str(&field),
            Test::Compare(op, literal) => write!(f, "{field} {op} {literal}"),
            Test::In(list) => {
                write!(f, "{field} in (")?;
                for (i, literal) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{literal}")?;
                }
                f.write_str(")")
            }
            Test::Matches(Pattern::Glob(g)) => write!(f, "{field} ~ {}", quoted(&g.as_string())),
            Test::Matches(Pattern::Regex(r)) => write!(f, "{field} ~ /{}/", r.as_str().replace('/', "\\/")),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Text(s) => f.write_str(&quoted(s)),
            Literal::Integer(n) => write!(f, "{n}"),
            Literal::Size(bytes) => f.write_str(&format_size(*bytes)),
            Literal::Percent(p) => write!(f, "{p}%"),
            Literal::Duration(ms) => f.write_str(&format_duration(*ms)),
            Literal::Time(TimeLiteral::Now) => f.write_str("now"),
            Literal::Time(TimeLiteral::Ago(ms)) => write!(f, "{} ago", format_duration(*ms)),
            Literal::Time(TimeLiteral::FromNow(ms)) => write!(f, "{} from now", format_duration(*ms)),
            Literal::Time(TimeLiteral::At(ms)) => f.write_str(&quoted(&format_date(*ms))),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// `2025-01-31` at midnight UTC, else RFC 3339 with as many digits as the
/// time needs. Parsed back by [`parse_date`].
pub(crate) fn format_date(unix_ms: i64) -> String {
    let Some(t) = u64::try_from(unix_ms).ok().and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms))) else {
        return unix_ms.to_string();
    };
    if unix_ms % 86_400_000 == 0 {
        humantime::format_rfc3339_seconds(t).to_string()[..10].to_string()
    } else if unix_ms % 1000 == 0 {
        humantime::format_rfc3339_seconds(t).to_string()
    } else {
        humantime::format_rfc3339_millis(t).to_string()
    }
}

/// `"2025-01-31"` (midnight UTC) or RFC 3339 in UTC
/// (`"2025-01-31T12:00:00Z"`, fractions allowed), as Unix milliseconds.
pub(crate) fn parse_date(text: &str) -> Option<i64> {
    let full = if text.len() == 10 { format!("{text}T00:00:00Z") } else { text.to_string() };
    let t = humantime::parse_rfc3339(&full).ok()?;
    i64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for text in ["2025-01-31", "2025-01-31T12:00:00Z", "2025-01-31T12:00:00.250Z", "1970-01-01"] {
            let ms = parse_date(text).unwrap();
            assert_eq!(format_date(ms), text);
        }
        assert_eq!(parse_date("2025-01-31"), Some(1_738_281_600_000));
        assert_eq!(parse_date("31/01/2025"), None);
        assert_eq!(parse_date("2025-02-30"), None);
    }

    #[test]
    fn quotes_what_the_lexer_unquotes() {
        assert_eq!(quoted("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
    }
}
