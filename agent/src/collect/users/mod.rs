//! Local users on Linux: accounts, groups, admins, sessions, last logins.
//!
//! Reads, under `root`: `/etc/passwd`, `/etc/group`, `/run/utmp` (or
//! `/var/run/utmp`), `/var/log/lastlog` (seeking to each account's record:
//! the file is sparse and can be terabytes long on disk with a high uid),
//! else the tail of `/var/log/wtmp`. The accounts come only from the files,
//! never from NSS, so the list is the host's local accounts. `/etc/passwd`
//! unreadable fails the section; everything else degrades to absent with a
//! reason. Pure parsers live in `accounts` and `logins`.

pub mod accounts;
pub mod logins;
pub mod macos;
pub mod windows;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::collect::fs::read_under_bytes;
use crate::error::{Error, Result};
use crate::inventory::unreadable::{Unreadable, io_reason};
use crate::inventory::users::{LastLogin, Users};

/// Collects the users section from the system under `root`.
pub fn collect(root: &Path) -> Result<Users> {
    let mut unreadable = Vec::new();
    let passwd =
        read_under_bytes(root, "etc/passwd", accounts::MAX_DB_BYTES).map_err(|e| Error::io("reading", root.join("etc/passwd"), e))?;
    let (accounts, skipped) = accounts::parse_passwd(&String::from_utf8_lossy(&passwd))?;
    for s in skipped {
        unreadable.push(Unreadable::new(format!("accounts[/etc/passwd line {}]", s.line), s.reason));
    }

    let groups = match read_under_bytes(root, "etc/group", accounts::MAX_DB_BYTES) {
        Ok(b) => {
            let (g, skipped) = accounts::parse_group(&String::from_utf8_lossy(&b))?;
            for s in skipped {
                unreadable.push(Unreadable::new(format!("groups[/etc/group line {}]", s.line), s.reason));
            }
            g
        }
        Err(e) => {
            unreadable.push(Unreadable::from_io("groups", "/etc/group", &e));
            Vec::new()
        }
    };
    let admins = accounts::admins(&accounts, &groups);

    let sessions = match ["run/utmp", "var/run/utmp"]
        .iter()
        .map(|rel| read_under_bytes(root, rel, logins::MAX_UTMP_BYTES).map(|b| (rel, b)))
        .find(|r| !matches!(r, Err(e) if e.kind() == std::io::ErrorKind::NotFound))
    {
        Some(Ok((rel, bytes))) => match logins::parse_utmp(&bytes, &format!("/{rel}")) {
            Ok(r) => Some(logins::sessions(r)),
            Err(e) => {
                unreadable.push(Unreadable::new("sessions", e.to_string()));
                None
            }
        },
        Some(Err(e)) => {
            unreadable.push(Unreadable::from_io("sessions", "/run/utmp", &e));
            None
        }
        None => {
            unreadable.push(Unreadable::new("sessions", "/run/utmp not present on this system (no login manager writes it)"));
            None
        }
    };

    let ids: Vec<(u32, String)> = accounts.iter().map(|a| (a.uid, a.name.clone())).collect();
    let last_logins = match last_logins(root, &ids) {
        Ok(l) => Some(l),
        Err(reason) => {
            unreadable.push(Unreadable::new("last_logins", reason));
            None
        }
    };

    Ok(Users { accounts, groups, admins, sessions, last_logins, unreadable })
}

/// lastlog when it exists and is non-empty (an empty lastlog means nothing
/// maintains it, e.g. Debian 13 with lastlog2), else wtmp.
fn last_logins(root: &Path, ids: &[(u32, String)]) -> std::result::Result<Vec<LastLogin>, String> {
    let lastlog = root.join("var/log/lastlog");
    if let Ok(meta) = std::fs::metadata(&lastlog)
        && meta.len() > 0
    {
        let mut file = std::fs::File::open(&lastlog).map_err(|e| io_reason("/var/log/lastlog", &e))?;
        let mut out = Vec::new();
        for (uid, name) in ids {
            let offset = u64::from(*uid) * logins::LASTLOG_RECORD as u64;
            if offset + logins::LASTLOG_RECORD as u64 > meta.len() {
                continue;
            }
            let mut rec = [0u8; logins::LASTLOG_RECORD];
            file.seek(SeekFrom::Start(offset)).and_then(|_| file.read_exact(&mut rec)).map_err(|e| io_reason("/var/log/lastlog", &e))?;
            if let Some(l) = logins::parse_lastlog_record(&rec, name).map_err(|e| e.to_string())? {
                out.push(l);
            }
        }
        out.sort_by(|a, b| a.user.cmp(&b.user));
        return Ok(out);
    }
    let wtmp = root.join("var/log/wtmp");
    let bytes = read_tail(&wtmp, logins::MAX_UTMP_BYTES, logins::UTMP_RECORD as u64)
        .map_err(|e| format!("no usable /var/log/lastlog, and {}", io_reason("/var/log/wtmp", &e)))?;
    let records = logins::parse_utmp(&bytes, "/var/log/wtmp").map_err(|e| e.to_string())?;
    Ok(logins::last_logins_from_wtmp(&records))
}

/// The last `limit` bytes of `path`, starting on a record boundary.
fn read_tail(path: &Path, limit: usize, record: u64) -> std::io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut start = len.saturating_sub(limit as u64);
    start += (record - start % record) % record;
    file.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    file.take(limit as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_on_fixture_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/users/root");
        let u = collect(&root).unwrap();
        assert_eq!(u.admins, ["alice", "bob", "opsadmin"]);
        assert_eq!(u.sessions.as_ref().map(Vec::len), Some(3));
        // lastlog is absent in the tree, so last logins come from wtmp.
        let l = u.last_logins.unwrap();
        assert_eq!(l.iter().map(|l| l.user.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        assert!(u.unreadable.iter().any(|x| x.field == "accounts[/etc/passwd line 16]"));
    }

    #[test]
    fn collect_on_live_machine() {
        if !Path::new("/etc/passwd").exists() {
            eprintln!("skipping: no /etc/passwd");
            return;
        }
        let u = collect(Path::new("/")).unwrap();
        assert!(u.accounts.iter().any(|a| a.uid == 0));
        // Every absent part carries a reason.
        assert!(u.sessions.is_some() || u.unreadable.iter().any(|x| x.field == "sessions"));
        assert!(u.last_logins.is_some() || u.unreadable.iter().any(|x| x.field == "last_logins"));
    }
}
