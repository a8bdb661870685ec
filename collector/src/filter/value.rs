//! What a field yields for one host: a typed value borrowed from the
//! host's records (no copy of strings), a total order for sorting, and a
//! display form for table cells.

use std::cmp::Ordering;
use std::fmt;
use std::time::{Duration, UNIX_EPOCH};

use census_version::Ecosystem;

use super::units::human_size;

/// The type of a field, which decides the literals and operators a
/// comparison with it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// Compared exactly (`=`, `!=`, `in`) or by pattern (`~`); not ordered.
    Text,
    /// Ordered by the package source's own rules (dpkg, rpm, ...).
    Version,
    Integer,
    /// Bytes.
    Size,
    /// 0 to 100.
    Percent,
    /// Milliseconds.
    Duration,
    /// Unix milliseconds UTC.
    Time,
    Bool,
}

impl Type {
    /// The name the field catalogue and error messages use.
    pub fn name(self) -> &'static str {
        match self {
            Type::Text => "text",
            Type::Version => "version",
            Type::Integer => "integer",
            Type::Size => "size",
            Type::Percent => "percent",
            Type::Duration => "duration",
            Type::Time => "time",
            Type::Bool => "bool",
        }
    }
}

/// One value of a field on one host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'h> {
    Text(&'h str),
    /// A version and the rules that order it.
    Version(&'h str, Ecosystem),
    Integer(i64),
    /// Bytes.
    Size(u64),
    /// 0 to 100.
    Percent(f64),
    /// Milliseconds.
    Duration(i64),
    /// Unix milliseconds UTC.
    Time(i64),
    Bool(bool),
}

impl Value<'_> {
    pub fn ty(&self) -> Type {
        match self {
            Value::Text(_) => Type::Text,
            Value::Version(..) => Type::Version,
            Value::Integer(_) => Type::Integer,
            Value::Size(_) => Type::Size,
            Value::Percent(_) => Type::Percent,
            Value::Duration(_) => Type::Duration,
            Value::Time(_) => Type::Time,
            Value::Bool(_) => Type::Bool,
        }
    }

    /// A total order for sorting hosts: text ignoring ASCII case first,
    /// versions by their ecosystem when both share one, numbers and times
    /// numerically, false before true. Values of different types (never
    /// two values of one field) are ordered by type.
    pub fn sort_cmp(&self, other: &Value<'_>) -> Ordering {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => {
                a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase())).then_with(|| a.cmp(b))
            }
            (Value::Version(a, ea), Value::Version(b, eb)) if ea == eb => ea.compare(a, b).then_with(|| a.cmp(b)),
            (Value::Version(a, _), Value::Version(b, _)) => a.cmp(b),
            (Value::Integer(a), Value::Integer(b)) | (Value::Duration(a), Value::Duration(b)) | (Value::Time(a), Value::Time(b)) => {
                a.cmp(b)
            }
            (Value::Size(a), Value::Size(b)) => a.cmp(b),
            (Value::Percent(a), Value::Percent(b)) => a.total_cmp(b),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (a, b) => (a.ty() as u8).cmp(&(b.ty() as u8)),
        }
    }
}

/// Orders two hosts' values of one field, hosts without a value last.
pub fn sort_cmp(a: Option<&Value<'_>>, b: Option<&Value<'_>>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.sort_cmp(b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// For a person reading a table: `7.8 GiB`, `92.5%`, `2025-01-31T12:00:00Z`.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) | Value::Version(s, _) => f.write_str(s),
            Value::Integer(n) => write!(f, "{n}"),
            Value::Size(bytes) => f.write_str(&human_size(*bytes)),
            Value::Percent(p) => write!(f, "{p:.1}%"),
            Value::Duration(ms) => {
                let rounded = Duration::from_secs(u64::try_from(*ms / 1000).unwrap_or(0));
                write!(f, "{}", humantime::format_duration(rounded))
            }
            Value::Time(ms) => match u64::try_from(*ms).ok().and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms))) {
                Some(t) => write!(f, "{}", humantime::format_rfc3339_seconds(t)),
                None => write!(f, "{ms} ms since 1970"),
            },
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_versions_by_their_ecosystem_and_text_ignoring_case() {
        let dpkg = |v| Value::Version(v, Ecosystem::Dpkg);
        assert_eq!(dpkg("1:1.0").sort_cmp(&dpkg("2.0")), Ordering::Greater);
        assert_eq!(dpkg("1.0~rc1").sort_cmp(&dpkg("1.0")), Ordering::Less);
        assert_eq!(Value::Text("alpha").sort_cmp(&Value::Text("Beta")), Ordering::Less);
        assert_eq!(sort_cmp(Some(&Value::Size(1)), None), Ordering::Less, "hosts without a value sort last");
        assert_eq!(sort_cmp(None, None), Ordering::Equal);
    }

    #[test]
    fn displays_for_tables() {
        assert_eq!(Value::Size(8 << 30).to_string(), "8.0 GiB");
        assert_eq!(Value::Percent(92.46).to_string(), "92.5%");
        assert_eq!(Value::Time(1_738_324_800_000).to_string(), "2025-01-31T12:00:00Z");
        assert_eq!(Value::Duration(90_061_000).to_string(), "1day 1h 1m 1s");
    }
}
