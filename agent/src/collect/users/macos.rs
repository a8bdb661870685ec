//! Local users on macOS, from the text of:
//! `dscl . -readall /Users RecordName UniqueID PrimaryGroupID RealName
//! NFSHomeDirectory UserShell` (the local directory node's accounts),
//! `dscl . -read /Groups/admin GroupMembership` (administrators), and
//! `who -u` with `date '+%Y %z'` (the year and UTC offset `who` omits).
//!
//! Accounts whose name starts with `_` are launchd service accounts
//! (`_www`, `_spotlight`, about a hundred of them) and are left out, as
//! the Users & Groups pane does; `root`, `daemon` and `nobody` are kept.
//! uids are printed signed (`nobody` is -2) and stored as the kernel does
//! (4294967294). Last logins are not collected on macOS (`last` reads a
//! rotated utmpx log): the field is absent with that reason.

use crate::error::{Error, Result};
use crate::inventory::unreadable::Unreadable;
use crate::inventory::users::{Account, Group, Session, Users};

#[cfg(target_os = "macos")]
pub fn collect(_root: &std::path::Path) -> Result<Users> {
    use crate::collect::command::{MAX_OUTPUT_BYTES, run};
    let users = run(
        "dscl",
        &[".", "-readall", "/Users", "RecordName", "UniqueID", "PrimaryGroupID", "RealName", "NFSHomeDirectory", "UserShell"],
        MAX_OUTPUT_BYTES,
    )?;
    let admin = run("dscl", &[".", "-read", "/Groups/admin", "GroupMembership"], 1 << 20).map_err(|e| e.to_string());
    let who = run("who", &["-u"], 1 << 20).and_then(|w| Ok((w, run("date", &["+%Y %z"], 64)?))).map_err(|e| e.to_string());
    users_from(&users, admin, who)
}

type Read<T> = std::result::Result<T, String>;

/// Builds the section from the dscl listing, the admin group read and
/// the `who -u` + `date '+%Y %z'` pair.
pub fn users_from(dscl_users: &str, admin_group: Read<String>, who: Read<(String, String)>) -> Result<Users> {
    let mut unreadable = Vec::new();
    let accounts = parse_dscl_users(dscl_users, &mut unreadable)?;
    let admins: Vec<String> = match admin_group {
        Ok(text) => {
            let mut members: Vec<String> =
                text.split_once("GroupMembership:").map(|(_, m)| m.split_whitespace().map(str::to_owned).collect()).unwrap_or_default();
            members.sort();
            members.dedup();
            members
        }
        Err(reason) => {
            unreadable.push(Unreadable::new("admins", reason));
            Vec::new()
        }
    };
    let groups = vec![Group { name: "admin".into(), gid: 80, members: admins.clone() }];
    let sessions = match who {
        Ok((who, date)) => match parse_year_offset(&date) {
            Some((year, offset)) => Some(parse_who(&who, year, offset)),
            None => {
                unreadable.push(Unreadable::new("sessions", format!("date printed {:?}, not year and offset", date.trim())));
                None
            }
        },
        Err(reason) => {
            unreadable.push(Unreadable::new("sessions", reason));
            None
        }
    };
    unreadable.push(Unreadable::new("last_logins", "not collected on macOS"));
    Ok(Users { accounts, groups, admins, sessions, last_logins: None, unreadable })
}

/// `dscl . -readall /Users ...`: records separated by `-` lines, `Key: value`
/// or `Key:` followed by indented value lines (names with spaces).
pub fn parse_dscl_users(text: &str, unreadable: &mut Vec<Unreadable>) -> Result<Vec<Account>> {
    if !text.contains("RecordName:") {
        return Err(Error::parse("dscl output", None, "no RecordName in the listing"));
    }
    let mut accounts = Vec::new();
    for record in text.split("\n-\n").chain(std::iter::once("")).filter(|r| !r.trim().is_empty()) {
        let mut fields: Vec<(&str, String)> = Vec::new();
        for line in record.lines() {
            if let Some(continued) = line.strip_prefix(' ') {
                if let Some((_, value)) = fields.last_mut() {
                    if !value.is_empty() {
                        value.push(' ');
                    }
                    value.push_str(continued.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim(), value.trim().to_owned()));
            }
        }
        let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        // RecordName may carry aliases: `_www www`; the first is the name.
        let Some(name) = get("RecordName").and_then(|n| n.split_whitespace().next()) else { continue };
        if name.starts_with('_') {
            continue;
        }
        let id = |k: &str| {
            get(k)
                .and_then(|v| v.parse::<i64>().ok())
                .and_then(|v| i32::try_from(v).ok().map(|v| v as u32).or_else(|| u32::try_from(v).ok()))
        };
        let Some(uid) = id("UniqueID") else {
            unreadable.push(Unreadable::new(format!("accounts[{name}]"), "no numeric UniqueID"));
            continue;
        };
        let shell = get("UserShell").map(str::to_owned);
        let login = shell.as_deref().is_some_and(|s| !s.ends_with("/false") && !s.ends_with("/nologin"));
        accounts.push(Account {
            name: name.to_owned(),
            uid,
            gid: id("PrimaryGroupID").unwrap_or(0),
            gecos: get("RealName").map(str::to_owned),
            home: get("NFSHomeDirectory").unwrap_or("").to_owned(),
            shell,
            login,
        });
    }
    accounts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(accounts)
}

/// `date '+%Y %z'`: `2024 +0200`.
pub fn parse_year_offset(text: &str) -> Option<(i64, i64)> {
    let (year, zone) = text.trim().split_once(' ')?;
    let sign = match zone.get(..1)? {
        "+" => 1,
        "-" => -1,
        _ => return None,
    };
    let hours: i64 = zone.get(1..3)?.parse().ok()?;
    let minutes: i64 = zone.get(3..5)?.parse().ok()?;
    Some((year.parse().ok()?, sign * (hours * 60 + minutes)))
}

/// `who -u`: `alice  console  Jun 18 07:55  old  412  (192.168.1.50)`.
/// The year is the current one unless that puts the login in the future.
pub fn parse_who(text: &str, year: i64, utc_offset_minutes: i64) -> Vec<Session> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let mut sessions = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (Some(user), Some(tty), Some(month), Some(day), Some(time)) =
            (words.first(), words.get(1), words.get(2), words.get(3), words.get(4))
        else {
            continue;
        };
        let Some(month) = MONTHS.iter().position(|m| m == month) else { continue };
        let (Ok(day), Some((h, m))) = (day.parse::<i64>(), time.split_once(':')) else { continue };
        let (Ok(h), Ok(m)) = (h.parse::<i64>(), m.parse::<i64>()) else { continue };
        let Some(ms) = crate::collect::software::unix_ms_of_civil(year, month as i64 + 1, day, h, m, 0) else { continue };
        let pid = words.get(6).and_then(|p| p.parse().ok()).unwrap_or(0);
        let host = words
            .iter()
            .find(|w| w.starts_with('(') && w.ends_with(')'))
            .map(|w| w.trim_matches(['(', ')']).to_owned())
            .filter(|h| !h.is_empty());
        sessions.push(Session {
            user: (*user).to_owned(),
            tty: (*tty).to_owned(),
            host,
            pid,
            login_time_unix: ms / 1000 - utc_offset_minutes * 60,
        });
    }
    sessions
}

#[cfg(test)]
mod tests {
    use super::*;

    const DSCL: &str = include_str!("../../../tests/fixtures/users/macos/dscl_readall_users.txt");
    const DSCL_TRUNCATED: &str = include_str!("../../../tests/fixtures/users/macos/dscl_truncated.txt");
    const WHO: &str = include_str!("../../../tests/fixtures/users/macos/who_u.txt");

    #[test]
    fn accounts_admins_and_sessions() {
        let u = users_from(DSCL, Ok("GroupMembership: root alice\n".into()), Ok((WHO.into(), "2024 +0200\n".into()))).unwrap();
        let names: Vec<(&str, u32, bool)> = u.accounts.iter().map(|a| (a.name.as_str(), a.uid, a.login)).collect();
        assert_eq!(names, [("alice", 501, true), ("daemon", 1, false), ("nobody", 4_294_967_294, false), ("root", 0, true)]);
        let alice = &u.accounts[0];
        assert_eq!((alice.gecos.as_deref(), alice.home.as_str(), alice.gid), (Some("Alice Example"), "/Users/alice", 20));
        assert_eq!(u.admins, ["alice", "root"]);
        let s = u.sessions.as_ref().unwrap();
        let got: Vec<(&str, &str, Option<&str>, i32, i64)> =
            s.iter().map(|s| (s.user.as_str(), s.tty.as_str(), s.host.as_deref(), s.pid, s.login_time_unix)).collect();
        assert_eq!(got, [("alice", "console", None, 412, 1_718_690_100), ("bob", "ttys001", Some("192.168.1.50"), 2231, 1_718_697_660)]);
        assert_eq!(u.unreadable.iter().map(|u| u.field.as_str()).collect::<Vec<_>>(), ["last_logins"]);
    }

    #[test]
    fn truncated_and_failed_reads() {
        let mut unreadable = Vec::new();
        let accounts = parse_dscl_users(DSCL_TRUNCATED, &mut unreadable).unwrap();
        assert_eq!(accounts.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["alice"]);
        assert_eq!(unreadable.len(), 1, "the cut record has no UniqueID");
        assert!(parse_dscl_users("garbage", &mut unreadable).is_err());
        let u = users_from(DSCL, Err("dscl: eDSRecordNotFound".into()), Ok((WHO.into(), "garbage".into()))).unwrap();
        assert_eq!(u.unreadable.iter().map(|u| u.field.as_str()).collect::<Vec<_>>(), ["admins", "sessions", "last_logins"]);
        assert_eq!(parse_year_offset("2024 -0530"), Some((2024, -330)));
        for cut in 0..DSCL.len() {
            let _ = parse_dscl_users(DSCL.get(..cut).unwrap_or(""), &mut Vec::new());
            let _ = parse_who(WHO.get(..cut.min(WHO.len())).unwrap_or(""), 2024, 0);
        }
    }
}
