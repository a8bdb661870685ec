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
//! The field accessors (`text`, `uint`, ...) are in `collect::json`.
//! Invariant: no helper panics on any JSON value; a missing or ill-typed
//! field is `None`.

use serde_json::Value;

use crate::error::{Error, Result};

/// Largest script output accepted: a section's JSON is a few hundred KiB
/// even on a server with thousands of services.
pub const MAX_OUTPUT_BYTES: u64 = 32 * 1024 * 1024;

/// Runs `script` with `powershell.exe -NoProfile -NonInteractive` and
/// returns its standard output, written as UTF-8 (redirected output is
/// otherwise in the OEM code page, which garbles non-ASCII names).
#[cfg(windows)]
pub fn run(script: &str) -> Result<String> {
    let encoded = encode_command(&format!("[Console]::OutputEncoding = [Text.Encoding]::UTF8\n{script}"));
    crate::collect::command::run(
        "powershell.exe",
        &["-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass", "-EncodedCommand", &encoded],
        MAX_OUTPUT_BYTES,
    )
}

/// The `-EncodedCommand` form of a script: base64 of its UTF-16LE bytes.
/// Passing the script this way avoids Windows command-line quoting, which
/// powershell.exe 5.1 does not undo faithfully for embedded quotes.
pub fn encode_command(script: &str) -> String {
    use base64::Engine as _;
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(utf16)
}

/// Parses a script's output. Empty output (a pipeline of nothing) is `null`.
pub fn parse_json(what: &str, text: &str) -> Result<Value> {
    let text = text.trim_start_matches('\u{feff}').trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| Error::parse(what, Some(e.line()), format!("not JSON: {e}")))
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
    let local = crate::collect::software::unix_ms_of_civil(num(0..4)?, num(4..6)?, num(6..8)?, num(8..10)?, num(10..12)?, num(12..14)?)?;
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
    let mut ms = crate::collect::software::unix_ms_of_civil(num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?)?;
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
            let m = match rest.len() {
                3 => 0,
                _ => rest.get(rest.len().saturating_sub(2)..)?.parse::<i64>().ok()?,
            };
            let off = (h * 60 + m) * 60_000;
            Some(if c == b'+' { ms - off } else { ms + off })
        }
        _ => None,
    }
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
        assert_eq!(crate::collect::json::items(Some(&one)).len(), 1);
        assert_eq!(crate::collect::json::items(Some(&many)).len(), 2);
        assert!(crate::collect::json::items(Some(&parse_json("t", "  ").unwrap())).is_empty());
        assert!(parse_json("t", r#"{"a":"#).unwrap_err().to_string().contains("not JSON"));
    }

    #[test]
    fn encoded_command_is_base64_utf16le() {
        // What `[Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes('dir'))` prints.
        assert_eq!(encode_command("dir"), "ZABpAHIA");
        assert_eq!(encode_command("é"), "6QA=");
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
        assert_eq!(parse_date("2023-11-14T23:13:20+01"), Some(want));
        assert_eq!(parse_date("20231114231320.000000+060"), Some(want));
        let wrapped: Value =
            serde_json::from_str(r#"{"d":{"value":"/Date(1700000000000)/","DateTime":"Tuesday, November 14, 2023 10:13:20 PM"}}"#).unwrap();
        assert_eq!(date_unix_ms(&wrapped, "d"), Some(want));
        for bad in ["", "/Date(x)/", "/Date(", "2023-13-14T22:13:20Z", "20231114", "2023-11-14T22:13:20+0", "é2023-11-14T22:13:20Z"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }
}
