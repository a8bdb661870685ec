//! Binary login records: utmp/wtmp (`struct utmp`) and lastlog.
//!
//! Layout is glibc's on 64-bit Linux (x86_64, aarch64), where `ut_tv`
//! uses 32-bit seconds for compatibility: 384 bytes per record, little
//! endian. Offsets: `ut_type` i16 @0, `ut_pid` i32 @4, `ut_line[32]` @8,
//! `ut_id[4]` @40, `ut_user[32]` @44, `ut_host[256]` @76, `ut_tv.tv_sec`
//! i32 @340. lastlog: `ll_time` i32 @0, `ll_line[32]` @4, `ll_host[256]` @36,
//! 292 bytes per record, record N belongs to uid N. Strings are NUL-padded
//! and not always NUL-terminated. Parsers are pure, bounded, never panic.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::inventory::users::{LastLogin, LastLoginSource, Session};

pub const UTMP_RECORD: usize = 384;
pub const LASTLOG_RECORD: usize = 292;
/// utmp is one record per terminal; wtmp grows forever, so the reader
/// hands over at most its last 64 MiB (~175k logins), record-aligned.
pub const MAX_UTMP_BYTES: usize = 64 << 20;

const USER_PROCESS: i16 = 7;

/// One `USER_PROCESS` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginRecord {
    pub user: String,
    pub tty: String,
    pub host: Option<String>,
    pub pid: i32,
    pub time_unix: i64,
}

/// Parses utmp or wtmp bytes into their `USER_PROCESS` records, in file order.
/// `what` names the file for errors.
pub fn parse_utmp(bytes: &[u8], what: &str) -> Result<Vec<LoginRecord>> {
    if bytes.len() > MAX_UTMP_BYTES {
        return Err(Error::parse(what, None, format!("larger than {MAX_UTMP_BYTES} bytes")));
    }
    if bytes.len() % UTMP_RECORD != 0 {
        return Err(Error::parse(
            what,
            None,
            format!("{} bytes is not a whole number of {UTMP_RECORD}-byte records (truncated, or not glibc 64-bit utmp)", bytes.len()),
        ));
    }
    let mut out = Vec::new();
    for rec in bytes.chunks_exact(UTMP_RECORD) {
        if i16_at(rec, 0) != Some(USER_PROCESS) {
            continue;
        }
        let user = c_string(rec.get(44..76).unwrap_or_default());
        // A USER_PROCESS slot whose user was cleared is a stale record.
        if user.is_empty() {
            continue;
        }
        out.push(LoginRecord {
            user,
            tty: c_string(rec.get(8..40).unwrap_or_default()),
            host: Some(c_string(rec.get(76..332).unwrap_or_default())).filter(|h| !h.is_empty()),
            pid: i32_at(rec, 4).unwrap_or_default(),
            time_unix: i64::from(i32_at(rec, 340).unwrap_or_default()),
        });
    }
    Ok(out)
}

/// Current sessions from utmp records.
pub fn sessions(records: Vec<LoginRecord>) -> Vec<Session> {
    records.into_iter().map(|r| Session { user: r.user, tty: r.tty, host: r.host, pid: r.pid, login_time_unix: r.time_unix }).collect()
}

/// The latest login per user from wtmp records, sorted by user.
pub fn last_logins_from_wtmp(records: &[LoginRecord]) -> Vec<LastLogin> {
    let mut latest: HashMap<&str, &LoginRecord> = HashMap::new();
    for r in records {
        let e = latest.entry(r.user.as_str()).or_insert(r);
        if r.time_unix >= e.time_unix {
            *e = r;
        }
    }
    let mut out: Vec<LastLogin> = latest
        .into_values()
        .map(|r| LastLogin {
            user: r.user.clone(),
            time_unix: r.time_unix,
            tty: Some(r.tty.clone()).filter(|t| !t.is_empty()),
            host: r.host.clone(),
            source: LastLoginSource::Wtmp,
        })
        .collect();
    out.sort_by(|a, b| a.user.cmp(&b.user));
    out
}

/// One lastlog record (292 bytes); `None` when the account never logged in.
pub fn parse_lastlog_record(rec: &[u8], user: &str) -> Result<Option<LastLogin>> {
    if rec.len() != LASTLOG_RECORD {
        return Err(Error::parse("/var/log/lastlog", None, format!("record for {user} is {} bytes, expected {LASTLOG_RECORD}", rec.len())));
    }
    let time = i32_at(rec, 0).unwrap_or_default();
    if time == 0 {
        return Ok(None);
    }
    Ok(Some(LastLogin {
        user: user.to_string(),
        time_unix: i64::from(time),
        tty: Some(c_string(rec.get(4..36).unwrap_or_default())).filter(|t| !t.is_empty()),
        host: Some(c_string(rec.get(36..292).unwrap_or_default())).filter(|h| !h.is_empty()),
        source: LastLoginSource::Lastlog,
    }))
}

/// Last logins of `accounts` (uid, name) from a whole lastlog file held in
/// memory; uids beyond the end of the (sparse) file never logged in.
pub fn parse_lastlog(bytes: &[u8], accounts: &[(u32, String)]) -> Result<Vec<LastLogin>> {
    let mut out = Vec::new();
    for (uid, name) in accounts {
        let Some(start) = (*uid as usize).checked_mul(LASTLOG_RECORD) else {
            continue;
        };
        let Some(rec) = start.checked_add(LASTLOG_RECORD).and_then(|end| bytes.get(start..end)) else {
            continue;
        };
        if let Some(l) = parse_lastlog_record(rec, name)? {
            out.push(l);
        }
    }
    out.sort_by(|a, b| a.user.cmp(&b.user));
    Ok(out)
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(b.get(..end).unwrap_or_default()).into_owned()
}

fn i16_at(b: &[u8], at: usize) -> Option<i16> {
    Some(i16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utmp_user_processes_only() {
        let r = parse_utmp(include_bytes!("../../../tests/fixtures/users/utmp.bin"), "/var/run/utmp").unwrap();
        let s = sessions(r);
        let got: Vec<(&str, &str, Option<&str>, i64)> =
            s.iter().map(|s| (s.user.as_str(), s.tty.as_str(), s.host.as_deref(), s.login_time_unix)).collect();
        assert_eq!(
            got,
            [
                ("alice", "tty2", None, 1718003600),
                ("bob", "pts/0", Some("203.0.113.7"), 1718007200),
                ("alice", "pts/2", Some("2001:db8::42"), 1718010000),
            ]
        );
        assert_eq!(s.get(1).map(|s| s.pid), Some(2210));
    }

    #[test]
    fn truncated_utmp_is_a_clear_error() {
        let e = parse_utmp(include_bytes!("../../../tests/fixtures/users/utmp_truncated.bin"), "/var/run/utmp").unwrap_err().to_string();
        assert!(e.contains("868 bytes is not a whole number of 384-byte records"), "{e}");
        assert_eq!(parse_utmp(&[], "/var/log/wtmp").unwrap(), []);
    }

    #[test]
    fn wtmp_latest_login_per_user() {
        let r = parse_utmp(include_bytes!("../../../tests/fixtures/users/wtmp.bin"), "/var/log/wtmp").unwrap();
        let l = last_logins_from_wtmp(&r);
        let got: Vec<(&str, i64, Option<&str>)> = l.iter().map(|l| (l.user.as_str(), l.time_unix, l.tty.as_deref())).collect();
        assert_eq!(got, [("alice", 1717900000, Some("tty2")), ("bob", 1717500000, Some("pts/1"))]);
    }

    #[test]
    fn lastlog_records_by_uid() {
        let bytes = include_bytes!("../../../tests/fixtures/users/lastlog.bin");
        let accounts = [(0, "root".to_string()), (1, "daemon".to_string()), (3, "alice".to_string()), (1000, "bob".to_string())];
        let l = parse_lastlog(bytes, &accounts).unwrap();
        let got: Vec<(&str, i64, Option<&str>, Option<&str>)> =
            l.iter().map(|l| (l.user.as_str(), l.time_unix, l.tty.as_deref(), l.host.as_deref())).collect();
        // daemon never logged in; bob's uid is past the end of the sparse file.
        assert_eq!(got, [("alice", 1718010000, Some("pts/2"), Some("2001:db8::42")), ("root", 1716000000, Some("tty1"), None)]);
        assert!(parse_lastlog_record(&[0u8; 10], "x").is_err());
    }
}
