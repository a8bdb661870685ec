//! Local users on Windows, from one PowerShell script ([`SCRIPT`]):
//! `Get-LocalUser` (name, SID, enabled, full name, last logon), the
//! profile folders of `Win32_UserProfile` as home directories, the
//! members of the built-in Administrators group (SID S-1-5-32-544, so
//! the name's language does not matter), and the text of `quser` for the
//! sessions together with the local UTC offset to read its times.
//!
//! A Windows account has a SID, not a uid: `uid` is the SID's relative id
//! (500 for Administrator, 1001...), `gid` is 0. `login` is "enabled".
//! Administrators that are not local accounts (domain users and groups)
//! are listed as `DOMAIN\name`; local ones by their bare name. Sessions
//! come from `quser` (absent, with the reason, where it does not exist:
//! Home editions), whose logon time is local and locale-formatted:
//! `M/D/YYYY h:mm AM/PM` (en-US), `D.M.YYYY HH:mm` and `YYYY-MM-DD HH:mm`
//! are read; a session whose time cannot be read is skipped with a reason.

use serde_json::Value;

use crate::collect::json::{boolean, items, text, uint};
use crate::collect::powershell::{self, date_unix_ms};
use crate::error::{Error, Result};
use crate::inventory::unreadable::Unreadable;
use crate::inventory::users::{Account, Group, LastLogin, LastLoginSource, Session, Users};

const WHAT: &str = "users script output";

pub const SCRIPT: &str = r#"$ErrorActionPreference='SilentlyContinue'
$q = $null; if (Get-Command quser.exe) { $q = (quser.exe 2>$null) -join "`n" }
[pscustomobject]@{
 Users = @(Get-LocalUser | Select-Object Name,@{n='SID';e={$_.SID.Value}},Enabled,FullName,Description,LastLogon)
 Profiles = @(Get-CimInstance Win32_UserProfile | Select-Object SID,LocalPath)
 Admins = @(Get-LocalGroupMember -SID 'S-1-5-32-544' | Select-Object Name,@{n='SID';e={$_.SID.Value}},ObjectClass,@{n='PrincipalSource';e={"$($_.PrincipalSource)"}})
 Quser = $q
 UtcOffsetMinutes = [int][TimeZoneInfo]::Local.GetUtcOffset((Get-Date)).TotalMinutes
} | ConvertTo-Json -Depth 4 -Compress"#;

#[cfg(windows)]
pub fn collect(_root: &std::path::Path) -> Result<Users> {
    parse_users(&powershell::run(SCRIPT)?)
}

/// Parses the output of [`SCRIPT`].
pub fn parse_users(output: &str) -> Result<Users> {
    let json = powershell::parse_json(WHAT, output)?;
    let root = items(Some(&json)).into_iter().next().ok_or_else(|| Error::parse(WHAT, None, "no object in the output"))?;
    let mut unreadable = Vec::new();
    let profiles = items(root.get("Profiles"));
    let users = items(root.get("Users"));
    if users.is_empty() {
        return Err(Error::parse(WHAT, None, "Get-LocalUser listed no account"));
    }
    let mut accounts = Vec::new();
    let mut last_logins = Vec::new();
    for u in users {
        let (Some(name), Some(sid)) = (text(u, "Name"), text(u, "SID")) else { continue };
        let Some(uid) = sid.rsplit('-').next().and_then(|r| r.parse::<u32>().ok()) else {
            unreadable.push(Unreadable::new(format!("accounts[{name}]"), format!("SID {sid:?} has no relative id")));
            continue;
        };
        let home = profiles
            .iter()
            .find(|p| text(p, "SID").as_deref() == Some(sid.as_str()))
            .and_then(|p| text(p, "LocalPath"))
            .unwrap_or_default();
        if let Some(time) = date_unix_ms(u, "LastLogon") {
            last_logins.push(LastLogin {
                user: name.clone(),
                time_unix: time.div_euclid(1000),
                tty: None,
                host: None,
                source: LastLoginSource::Sam,
            });
        }
        accounts.push(Account {
            gecos: text(u, "FullName").or_else(|| text(u, "Description")),
            home,
            shell: None,
            login: boolean(u, "Enabled").unwrap_or(false),
            uid,
            gid: 0,
            name,
        });
    }
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    last_logins.sort_by(|a, b| a.user.cmp(&b.user));
    let mut admins: Vec<String> = items(root.get("Admins"))
        .into_iter()
        .filter_map(|m| {
            let name = text(m, "Name")?;
            let local = text(m, "PrincipalSource").is_some_and(|s| s == "Local") || uint(m, "PrincipalSource") == Some(1);
            Some(match name.split_once('\\') {
                Some((_, bare)) if local => bare.to_owned(),
                _ => name,
            })
        })
        .collect();
    admins.sort();
    admins.dedup();
    let groups = vec![Group { name: "Administrators".into(), gid: 544, members: admins.clone() }];
    let sessions = match text(root, "Quser") {
        Some(q) => {
            let offset = root.get("UtcOffsetMinutes").and_then(Value::as_i64).unwrap_or(0);
            let (sessions, skipped) = parse_quser(&q, offset);
            unreadable.extend(skipped);
            Some(sessions)
        }
        None => {
            unreadable.push(Unreadable::new("sessions", "quser printed nothing (not installed on this edition, or no session)"));
            None
        }
    };
    Ok(Users { accounts, groups, admins, sessions, last_logins: Some(last_logins), unreadable })
}

/// Parses `quser` output; `utc_offset_minutes` turns its local times into UTC.
pub fn parse_quser(text: &str, utc_offset_minutes: i64) -> (Vec<Session>, Vec<Unreadable>) {
    let mut sessions = Vec::new();
    let mut skipped = Vec::new();
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return (sessions, skipped) };
    if !header.contains("STATE") {
        skipped.push(Unreadable::new("sessions", "quser output has no header"));
        return (sessions, skipped);
    }
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let line = line.trim_start_matches(['>', ' ']);
        let words: Vec<&str> = line.split_whitespace().collect();
        // USERNAME [SESSIONNAME] ID STATE IDLE LOGON-DATE LOGON-TIME [AM/PM]
        let Some(id_at) = words.iter().position(|w| w.parse::<u32>().is_ok() && w.len() < 6) else {
            skipped.push(Unreadable::new("sessions", format!("quser line {line:?} has no session id")));
            continue;
        };
        let user = words[0].to_owned();
        let tty = if id_at >= 2 { words[1].to_owned() } else { "disconnected".to_owned() };
        let logon = words.get(id_at + 3..).map(|w| w.join(" ")).unwrap_or_default();
        match parse_local_time(&logon) {
            Some(local) => sessions.push(Session { user, tty, host: None, pid: 0, login_time_unix: local - utc_offset_minutes * 60 }),
            None => skipped.push(Unreadable::new(format!("sessions[{user}]"), format!("logon time {logon:?} not understood"))),
        }
    }
    (sessions, skipped)
}

/// `6/18/2024 7:55 AM`, `18.06.2024 07:55`, `2024-06-18 07:55` → local Unix seconds.
fn parse_local_time(text: &str) -> Option<i64> {
    let mut words = text.split_whitespace();
    let date = words.next()?;
    let time = words.next()?;
    let meridiem = words.next();
    let parts: Vec<i64> = date.split(['/', '.', '-']).map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let (year, month, day) = match (date.contains('/'), date.contains('.'), parts.as_slice()) {
        (true, _, [m, d, y]) => (*y, *m, *d),
        (_, true, [d, m, y]) => (*y, *m, *d),
        (false, false, [y, m, d]) => (*y, *m, *d),
        _ => return None,
    };
    let (h, min) = time.split_once(':')?;
    let (mut hour, min): (i64, i64) = (h.parse().ok()?, min.parse().ok()?);
    match meridiem.map(str::to_ascii_uppercase).as_deref() {
        Some("PM") if hour < 12 => hour += 12,
        Some("AM") if hour == 12 => hour = 0,
        _ => {}
    }
    crate::collect::software::unix_ms_of_civil(year, month, day, hour, min, 0).map(|ms| ms / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const USERS: &str = include_str!("../../../tests/fixtures/users/windows/users.json");
    const TRUNCATED: &str = include_str!("../../../tests/fixtures/users/windows/users_truncated.json");

    #[test]
    fn accounts_admins_sessions_last_logons() {
        let u = parse_users(USERS).unwrap();
        let names: Vec<(&str, u32, bool)> = u.accounts.iter().map(|a| (a.name.as_str(), a.uid, a.login)).collect();
        assert_eq!(names, [("Administrator", 500, false), ("Guest", 501, false), ("alice", 1001, true)], "sorted by name, byte order");
        let alice = u.accounts.iter().find(|a| a.name == "alice").unwrap();
        assert_eq!((alice.home.as_str(), alice.gecos.as_deref()), ("C:\\Users\\alice", Some("Alice Example")));
        assert_eq!(u.admins, ["Administrator", "CORP\\Domain Admins", "alice"]);
        let sessions = u.sessions.as_ref().unwrap();
        let s: Vec<(&str, &str, i64)> = sessions.iter().map(|s| (s.user.as_str(), s.tty.as_str(), s.login_time_unix)).collect();
        assert_eq!(s, [("alice", "console", 1_718_690_100), ("bob", "rdp-tcp#3", 1_718_694_060), ("carol", "disconnected", 1_718_638_200)]);
        let last = u.last_logins.as_ref().unwrap();
        assert_eq!(
            (last.len(), last[0].user.as_str(), last[0].time_unix, last[0].source),
            (1, "alice", 1_718_690_100, LastLoginSource::Sam)
        );
        assert_eq!(u.unreadable.len(), 1, "{:?}", u.unreadable);
        assert!(u.unreadable[0].field.contains("dave"));
    }

    #[test]
    fn quser_locales_and_garbage() {
        assert_eq!(parse_local_time("18.06.2024 07:55"), parse_local_time("6/18/2024 7:55 AM"));
        assert_eq!(parse_local_time("2024-06-18 19:55"), parse_local_time("6/18/2024 7:55 PM"));
        assert_eq!(parse_local_time("6/18/2024 12:10 AM"), parse_local_time("2024-06-18 00:10"));
        assert_eq!(parse_local_time("13/45/2024 7:55"), None);
        assert!(parse_quser("garbage\nmore", 0).1[0].reason.contains("no header"));
        assert!(parse_users(TRUNCATED).is_err());
        assert!(parse_users(r#"{"Users":[]}"#).is_err());
        for cut in 0..USERS.len() {
            let _ = parse_users(USERS.get(..cut).unwrap_or(""));
        }
    }
}
