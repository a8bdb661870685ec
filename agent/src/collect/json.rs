//! Reading fields of JSON the OS tools print (PowerShell's ConvertTo-Json,
//! `system_profiler -json`), tolerant of the shapes they use: a single
//! object where a list is expected, numbers as strings, booleans as 0/1.
//!
//! Invariant: no helper panics on any JSON value; a missing or ill-typed
//! field is `None` (or empty).

use serde_json::Value;

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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(crate::collect::powershell::date_unix_ms(&v, "n"), None);
    }
}
