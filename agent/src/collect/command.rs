//! Running OS commands, for every section that needs one: C locale, a
//! timeout, bounded output, stdin closed. Also the pure helpers for the
//! `key: value` text many macOS tools print (`sw_vers`, `sysctl`, `scutil`).
//!
//! Invariant: no section spawns a process any other way (the only
//! exceptions are oracle tests and `smartctl`, whose non-zero exit bits
//! are part of its answer and are read by `hardware`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default bound on a command's output.
pub const MAX_OUTPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Runs `program args` (C locale, timeout, at most `limit` bytes of output)
/// and returns its standard output; a missing program is an error.
pub fn run(program: &str, args: &[&str], limit: u64) -> Result<String> {
    run_command(program, args, &[], limit)?
        .ok_or_else(|| Error::Command { command: program.to_owned(), reason: "not installed".to_owned() })
}

/// How long a command may run before it is killed: a hung daemon (snapd,
/// systemd) must not stall the whole inventory.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `program args` with a C locale (plus `env`) and returns its standard
/// output. `Ok(None)` when the program is not installed. A non-zero exit, a
/// timeout or more than `limit` bytes of output is an [`Error::Command`].
pub(crate) fn run_command(program: &str, args: &[&str], env: &[(&str, &str)], limit: u64) -> Result<Option<String>> {
    run_command_accepting(program, args, env, limit, &[0])
}

/// [`run_command`] for tools whose exit code carries an answer, not a
/// failure (`dnf check-update` exits 100 when updates are available,
/// `pacman -Qu` 1 when there are none): every code in `ok_codes` succeeds.
pub(crate) fn run_command_accepting(
    program: &str,
    args: &[&str],
    env: &[(&str, &str)],
    limit: u64,
    ok_codes: &[i32],
) -> Result<Option<String>> {
    let command_line = std::iter::once(program).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
    let failed = |reason: String| Error::Command { command: command_line.clone(), reason };
    let mut child = match Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e.to_string())),
    };
    // Drain both pipes on their own threads so a chatty child never blocks
    // on a full pipe while we wait for it to exit.
    let drain = |pipe: Option<Box<dyn Read + Send>>, limit: u64| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(limit.saturating_add(1)).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>), limit);
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>), 64 * 1024);

    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(format!("no answer after {} s, killed", COMMAND_TIMEOUT.as_secs())));
            }
            Err(e) => return Err(failed(e.to_string())),
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    // Checked first: once we stop reading, the child dies of a broken pipe.
    if out.len() as u64 > limit {
        return Err(failed(format!("more than {} of output", crate::collect::software::describe_size(limit))));
    }
    if !status.code().is_some_and(|code| ok_codes.contains(&code)) {
        let message = String::from_utf8_lossy(&err);
        let message = message.trim();
        return Err(failed(if message.is_empty() { status.to_string() } else { format!("{status}: {message}") }));
    }
    Ok(Some(String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())))
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
