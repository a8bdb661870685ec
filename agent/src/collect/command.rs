//! Running an OS command for the Windows and macOS sections, and the pure
//! helpers for the `key: value` text many macOS tools print (`sw_vers`,
//! `sysctl`, `scutil`).
//!
//! Invariant: output is bounded (see `software::run_command`), and a
//! command that is not installed is an error naming it, since every
//! command used here ships with its OS.

#[cfg(any(windows, target_os = "macos"))]
use crate::error::{Error, Result};

/// Default bound on a command's output.
pub const MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `program args` (C locale, timeout, at most `limit` bytes of output)
/// and returns its standard output.
#[cfg(any(windows, target_os = "macos"))]
pub fn run(program: &str, args: &[&str], limit: u64) -> Result<String> {
    crate::collect::software::run_command(program, args, &[], limit)?.ok_or_else(|| Error::Command {
        command: program.to_owned(),
        reason: "not installed".to_owned(),
    })
}

/// `key: value` (or `key = value`) lines into pairs, keys and values
/// trimmed; lines without the separator are skipped.
pub fn key_values<'a>(text: &'a str, separator: char) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    text.lines().filter_map(move |line| {
        let (key, value) = line.split_once(separator)?;
        Some((key.trim(), value.trim()))
    })
}

/// The value of `key` in `key: value` text, when present and not empty.
pub fn value_of<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    key_values(text, ':').find(|(k, _)| *k == key).map(|(_, v)| v).filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_value_lines() {
        let text = "ProductName:\t\tmacOS\nProductVersion:\t\t14.5\nnoise\nhw.model: Mac14,2: odd\nEmpty:\n";
        assert_eq!(value_of(text, "ProductName"), Some("macOS"));
        assert_eq!(value_of(text, "hw.model"), Some("Mac14,2: odd"));
        assert_eq!(value_of(text, "Empty"), None);
        assert_eq!(value_of(text, "missing"), None);
    }
}
