//! Windows Update: the Windows Update Agent's searcher, asked through
//! PowerShell for updates not installed (`IsInstalled=0`, from the agent's
//! cached scan, no download), as JSON with `Title`, `KBArticleIDs` and
//! `MsrcSeverity`. An update with an MSRC severity is a security update
//! (Microsoft sets it only on security bulletins). The parser compiles and
//! is tested everywhere; the call exists only on Windows.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::inventory::updates::{PendingUpdate, UpdateSource};

/// The PowerShell script; `-Compress` keeps the output small.
pub const SCRIPT: &str = "(New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher().Search('IsInstalled=0').Updates | Select-Object Title,KBArticleIDs,MsrcSeverity | ConvertTo-Json -Compress";

#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> Result<Option<super::SourceUpdates>> {
    let Some(text) = crate::collect::software::run_command(
        "powershell.exe",
        &["-NoProfile", "-NonInteractive", "-Command", SCRIPT],
        &[],
        8 * 1024 * 1024,
    )?
    else {
        return Ok(None);
    };
    Ok(Some(super::SourceUpdates { updates: parse_search_json(&text)?, unreadable: Vec::new() }))
}

/// Parses the JSON: one object, an array of objects, or nothing at all (no
/// updates). `KBArticleIDs` may be an array, a single value or null.
pub fn parse_search_json(text: &str) -> Result<Vec<PendingUpdate>> {
    let what = "Windows Update search output";
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value =
        serde_json::from_str(text.trim_start_matches('\u{feff}')).map_err(|e| Error::parse(what, Some(e.line()), e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        Value::Null => Vec::new(),
        other => return Err(Error::parse(what, None, format!("expected an object or an array, got {other}"))),
    };
    let mut updates = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let title =
            item.get("Title").and_then(Value::as_str).ok_or_else(|| Error::parse(what, None, format!("update {index} has no Title")))?;
        let kbs: Vec<String> = match item.get("KBArticleIDs") {
            Some(Value::Array(ids)) => ids.iter().filter_map(scalar).collect(),
            Some(other) => scalar(other).into_iter().collect(),
            None => Vec::new(),
        };
        let severity = item.get("MsrcSeverity").and_then(Value::as_str).filter(|s| !s.is_empty());
        updates.push(PendingUpdate {
            name: title.to_owned(),
            installed_version: None,
            available_version: kbs.iter().map(|kb| format!("KB{kb}")).collect::<Vec<_>>().join(","),
            source: UpdateSource::WindowsUpdate,
            security: severity.is_some(),
            origin: severity.map(str::to_owned),
        });
    }
    Ok(updates)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::collect::updates::tests::fixture;

    #[test]
    fn parses_an_array_of_updates() {
        let updates = parse_search_json(&fixture("windows-update.json")).expect("valid fixture");
        let rows: Vec<(&str, &str, bool, Option<&str>)> =
            updates.iter().map(|u| (u.name.as_str(), u.available_version.as_str(), u.security, u.origin.as_deref())).collect();
        assert_eq!(
            rows,
            [
                (
                    "2024-05 Cumulative Update for Windows 11 Version 23H2 for x64-based Systems (KB5037771)",
                    "KB5037771",
                    true,
                    Some("Critical")
                ),
                (
                    "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.411.368.0)",
                    "KB2267602",
                    false,
                    None
                ),
                ("Intel - System - 10/3/2016 12:00:00 AM - 30.100.1643.1", "", false, None),
            ]
        );
    }

    #[test]
    fn a_single_update_is_an_object_and_none_is_empty() {
        let updates = parse_search_json(r#"{"Title":"Update A","KBArticleIDs":"5034441","MsrcSeverity":"Important"}"#).expect("one object");
        assert_eq!((updates[0].available_version.as_str(), updates[0].security), ("KB5034441", true));
        assert!(parse_search_json("\r\n").expect("no output is no updates").is_empty());
    }

    #[test]
    fn truncated_and_malformed_json_are_errors() {
        let error = parse_search_json(&fixture("windows-update-truncated.json")).expect_err("cut").to_string();
        assert!(error.contains("Windows Update"), "{error}");
        let error = parse_search_json(r#"[{"KBArticleIDs":[]}]"#).expect_err("no title").to_string();
        assert!(error.contains("no Title"), "{error}");
        assert!(parse_search_json("42").is_err());
    }
}
