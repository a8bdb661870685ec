//! Windows sections read one PowerShell script each, which prints one JSON
//! document (`ConvertTo-Json -Depth 4 -Compress`). This module runs such a
//! script (Windows only) and holds the pure helpers every Windows parser
//! uses to read what ConvertTo-Json emits, so those parsers are tested on
//! every OS.
//!
//! ConvertTo-Json shapes the parsers must accept:
//! - a pipeline of one object is not wrapped in an array, and of none is
//!   empty output: [`items`] turns null / an object / an array into a list;
//! - a DateTime is `"/Date(1700000000000)/"` in Windows PowerShell 5.1
//!   (sometimes `{"value": "/Date(...)/", "DateTime": "..."}` when the value
//!   carries extended properties) and an ISO 8601 string
//!   (`"2023-11-14T22:13:20.1234567+01:00"`) in PowerShell 7; a raw CIM
//!   value is DMTF (`"20231114221320.000000+060"`): [`date_unix_ms`] reads
//!   all of them;
//! - numbers may arrive as strings (registry values, UInt64 in 5.1).
//!
//! Invariant: no helper panics on any JSON value; a missing or ill-typed
//! field is `None`.

use serde_json::Value;

use crate::error::{Error, Result};

/// Largest script output accepted: a section's JSON is a few hundred KiB
/// even on a server with thousands of services.
pub const MAX_OUTPUT_BYTES: u64 = 32 * 1024 * 1024;

/// Runs `script` with `powershell.exe -NoProfile -NonInteractive` and
/// returns its standard output.
#[cfg(windows)]
pub fn run(script: &str) -> Result<String> {
    crate::collect::command::run(
        "powershell.exe",
        &["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-Command", script],
        MAX_OUTPUT_BYTES,
    )
}

/// Parses a script's output. Empty output (a pipeline of nothing) is `null`.
pub fn parse_json(what: &str, text: &str) -> Result<Value> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| Error::parse(what, Some(e.line()), format!("not JSON: {e}")))
}

/// The objects of a ConvertTo-Json value: none for null, one for an
/// object, the object elements of an array.
pub fn items(value: Option<&Value>) -> Vec<&Value> {
    match value {
        Some(Value::Array(list)) => list.iter().filter(|v| v.is_object()).collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    }
}

/// A string field, trimmed, absent when empty or not a string/number.
pub fn text(value: &Value, key: &str) -> Option<String> {
    match value.get(key)? {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An unsigned integer field (a JSON number or a numeric string).
pub fn uint(value: &Value, key: &str) -> Option<u64> {
    match value.get(key)? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0 && *f < 1.8e19).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean field (`true`/`false`, or 0/1).
pub fn boolean(value: &Value, key: &str) -> Option<bool> {
    match value.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => n.as_u64().map(|n| n != 0),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// A list-of-strings field; a single string is a list of one.
pub fn strings(value: &Value, key: &str) -> Vec<String> {
    match value.get(key) {
        Some(Value::Array(list)) => list.iter().filter_map(|v| v.as_str()).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
        Some(Value::String(s)) if !s.trim().is_empty() => vec![s.trim().to_owned()],
        _ => Vec::new(),
    }
}

/// A DateTime field in any shape ConvertTo-Json or CIM emits, as Unix ms.
pub fn date_unix_ms(value: &Value, key: &str) -> Option<i64> {
    match value.get(key)? {
        Value::String(s) => parse_date(s),
        Value::Object(o) => o.get("value").and_then(Value::as_str).and_then(parse_date),
        _ => None,
    }
}

/// `/Date(ms)/` or `/Date(ms+hhmm)/` (the offset only says how it was
/// displayed: ms is already UTC), ISO 8601, or DMTF.
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix("/Date(").and_then(|r| r.strip_suffix(")/")) {
        let end = inner.get(1..).and_then(|r| r.find(['+', '-'])).map_or(inner.len(), |i| i + 1);
        return inner.get(..end)?.parse().ok();
    }
    if s.len() >= 21 && s.as_bytes().get(14) == Some(&b'.') && s.bytes().take(14).all(|b| b.is_ascii_digit()) {
        return parse_dmtf(s);
    }
    parse_iso8601(s)
}

/// `yyyymmddHHMMSS.mmmmmm+UUU` (UUU: minutes east of UTC).
fn parse_dmtf(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let local = civil_ms(num(0..4)?, num(4..6)?, num(6..8)?, num(8..10)?, num(10..12)?, num(12..14)?)?;
    let sign = match s.as_bytes().get(21) {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Some(local),
    };
    let offset_min = num(22..s.len().min(25))?;
    Some(local - sign * offset_min * 60_000)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac][Z|±HH:MM]`; no zone is read as UTC.
fn parse_iso8601(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b.get(4) != Some(&b'-') || !matches!(b.get(10), Some(b'T' | b' ')) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let mut ms = civil_ms(num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?)?;
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        let millis: String = frac.get(..digits)?.chars().chain("000".chars()).take(3).collect();
        ms += millis.parse::<i64>().ok()?;
        rest = frac.get(digits..)?;
    }
    match rest.as_bytes().first() {
        None | Some(b'Z') => Some(ms),
        Some(&c @ (b'+' | b'-')) => {
            let h = rest.get(1..3)?.parse::<i64>().ok()?;
            let m = rest.get(rest.len().saturating_sub(2)..)?.parse::<i64>().ok()?;
            let off = (h * 60 + m) * 60_000;
            Some(if c == b'+' { ms - off } else { ms + off })
        }
        _ => None,
    }
}

/// Unix ms of a UTC civil time, `None` when a field is out of range.
pub fn civil_ms(year: i64, month: i64, day: i64, hour: i64, min: i64, sec: i64) -> Option<i64> {
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(0..24).contains(&hour) || !(0..60).contains(&min) || !(0..=60).contains(&sec) {
        return None;
    }
    let days = crate::collect::software::unix_ms_of_date(year, month as u32, day as u32)?;
    Some(days + ((hour * 60 + min) * 60 + sec) * 1000)
}

/// Windows' name for an architecture to the kernel's (`AMD64` → `x86_64`).
pub fn arch_name(processor_architecture: &str) -> String {
    match processor_architecture.to_ascii_uppercase().as_str() {
        "AMD64" | "X64" | "64-BIT" => "x86_64".into(),
        "ARM64" => "aarch64".into(),
        "X86" | "32-BIT" => "x86".into(),
        other => other.to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_or_many() {
        let one = parse_json("t", r#"{"a":1}"#).unwrap();
        let many = parse_json("t", "\u{feff}[{\"a\":1},{\"a\":2},3]\r\n").unwrap();
        assert_eq!(items(Some(&one)).len(), 1);
        assert_eq!(items(Some(&many)).len(), 2);
        assert!(items(Some(&parse_json("t", "  ").unwrap())).is_empty());
        assert!(parse_json("t", r#"{"a":"#).unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn dates_of_both_powershells_and_cim() {
        let want = 1_700_000_000_000;
        assert_eq!(parse_date("/Date(1700000000000)/"), Some(want));
        assert_eq!(parse_date("/Date(1700000000000+0100)/"), Some(want));
        assert_eq!(parse_date("/Date(-1000)/"), Some(-1000));
        assert_eq!(parse_date("2023-11-14T22:13:20Z"), Some(want));
        assert_eq!(parse_date("2023-11-14T23:13:20.0000000+01:00"), Some(want));
        assert_eq!(parse_date("2023-11-14T17:13:20.5-05:00"), Some(want + 500));
        assert_eq!(parse_date("20231114231320.000000+060"), Some(want));
        let wrapped: Value = serde_json::from_str(r#"{"d":{"value":"/Date(1700000000000)/","DateTime":"Tuesday, November 14, 2023 10:13:20 PM"}}"#).unwrap();
        assert_eq!(date_unix_ms(&wrapped, "d"), Some(want));
        for bad in ["", "/Date(x)/", "/Date(", "2023-13-14T22:13:20Z", "20231114", "2023-11-14T22:13:20+0", "é2023-11-14T22:13:20Z"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn typed_fields_never_panic() {
        let v: Value = serde_json::from_str(r#"{"s":" x ","n":5,"f":1.5e30,"neg":-1,"b":1,"l":["a",2,""],"o":{}}"#).unwrap();
        assert_eq!(text(&v, "s").as_deref(), Some("x"));
        assert_eq!(text(&v, "n").as_deref(), Some("5"));
        assert_eq!(uint(&v, "f"), None);
        assert_eq!(uint(&v, "neg"), None);
        assert_eq!(boolean(&v, "b"), Some(true));
        assert_eq!(strings(&v, "l"), ["a"]);
        assert_eq!(text(&v, "o"), None);
        assert_eq!(date_unix_ms(&v, "n"), None);
    }
}
