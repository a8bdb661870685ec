//! `/etc/passwd` and `/etc/group` parsers, and who is an administrator.
//!
//! Malformed lines are skipped and reported (as glibc skips them, so the
//! account list still equals `getent passwd`), instead of failing the whole
//! list. NIS compat lines (`+...`, `-...`) are not local accounts and are
//! skipped silently, again like `getent passwd` without compat NSS.

use crate::error::{Error, Result};
use crate::inventory::users::{Account, Group};

/// Account databases past this size are not a local passwd/group file.
pub const MAX_DB_BYTES: usize = 32 << 20;

/// Groups whose members may run commands as root (Debian/Ubuntu `sudo`,
/// RHEL/Fedora/Arch/BSD `wheel`, old Ubuntu and macOS `admin`).
pub const ADMIN_GROUPS: [&str; 3] = ["sudo", "wheel", "admin"];

/// A line that was skipped, with why: reported as an unreadable item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedLine {
    pub line: usize,
    pub reason: String,
}

/// Parses `/etc/passwd`: `name:password:uid:gid:gecos:home:shell`.
pub fn parse_passwd(text: &str) -> Result<(Vec<Account>, Vec<SkippedLine>)> {
    check_size(text, "/etc/passwd")?;
    let mut accounts = Vec::new();
    let mut skipped = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        let parsed = match f.as_slice() {
            [name, _pw, uid, gid, gecos, home, shell] if !name.is_empty() => match (uid.parse::<u32>(), gid.parse::<u32>()) {
                (Ok(uid), Ok(gid)) => Ok(Account {
                    name: (*name).to_string(),
                    uid,
                    gid,
                    gecos: non_empty(gecos),
                    home: (*home).to_string(),
                    shell: non_empty(shell),
                    login: is_login_shell(shell),
                }),
                _ => Err(format!("uid {uid:?} or gid {gid:?} is not a number")),
            },
            _ => Err(format!("expected 7 colon-separated fields, found {}", f.len())),
        };
        match parsed {
            Ok(a) => accounts.push(a),
            Err(reason) => skipped.push(SkippedLine { line: idx + 1, reason }),
        }
    }
    Ok((accounts, skipped))
}

/// Parses `/etc/group`: `name:password:gid:member,member`.
pub fn parse_group(text: &str) -> Result<(Vec<Group>, Vec<SkippedLine>)> {
    check_size(text, "/etc/group")?;
    let mut groups = Vec::new();
    let mut skipped = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') || line.starts_with('+') || line.starts_with('-') {
            continue;
        }
        let f: Vec<&str> = line.split(':').collect();
        match f.as_slice() {
            [name, _pw, gid, members] if !name.is_empty() => match gid.parse::<u32>() {
                Ok(gid) => groups.push(Group {
                    name: (*name).to_string(),
                    gid,
                    members: members.split(',').map(str::trim).filter(|m| !m.is_empty()).map(String::from).collect(),
                }),
                Err(_) => skipped.push(SkippedLine { line: idx + 1, reason: format!("gid {gid:?} is not a number") }),
            },
            _ => skipped.push(SkippedLine { line: idx + 1, reason: format!("expected 4 colon-separated fields, found {}", f.len()) }),
        }
    }
    Ok((groups, skipped))
}

/// Accounts with administrative rights through an admin group: listed
/// members (only those that are local accounts) plus accounts whose primary
/// gid is an admin group's. Sorted, each once. `root` is not added: it is
/// the administrator by definition, not by membership.
pub fn admins(accounts: &[Account], groups: &[Group]) -> Vec<String> {
    let admin_groups: Vec<&Group> = groups.iter().filter(|g| ADMIN_GROUPS.contains(&g.name.as_str())).collect();
    let mut out: Vec<String> = accounts
        .iter()
        .filter(|a| admin_groups.iter().any(|g| g.gid == a.gid || g.members.contains(&a.name)))
        .map(|a| a.name.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// False for the shells that refuse interactive logins.
pub fn is_login_shell(shell: &str) -> bool {
    let base = shell.rsplit('/').next().unwrap_or(shell);
    !matches!(base, "nologin" | "false")
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn check_size(text: &str, what: &str) -> Result<()> {
    if text.len() > MAX_DB_BYTES {
        return Err(Error::parse(what, None, format!("larger than {MAX_DB_BYTES} bytes")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = include_str!("../../../tests/fixtures/users/passwd_workstation.txt");
    const GROUP: &str = include_str!("../../../tests/fixtures/users/group_workstation.txt");

    #[test]
    fn passwd_fields_and_login_flag() {
        let (a, skipped) = parse_passwd(PASSWD).unwrap();
        assert_eq!(a.len(), 15);
        let alice = a.iter().find(|a| a.name == "alice").unwrap();
        assert_eq!((alice.uid, alice.gid, alice.home.as_str()), (1000, 1000, "/home/alice"));
        assert_eq!(alice.gecos.as_deref(), Some("Alice Martin,Room 4.12,+33 1 23 45 67 89,,"));
        assert!(alice.login);
        assert!(!a.iter().find(|a| a.name == "daemon").unwrap().login);
        assert!(!a.iter().find(|a| a.name == "postgres").unwrap().login);
        let svc = a.iter().find(|a| a.name == "svc-backup").unwrap();
        assert_eq!(svc.shell, None);
        assert!(svc.login, "an empty shell means /bin/sh");
        assert_eq!(a.iter().find(|a| a.name == "messagebus").unwrap().gecos, None);
        // The broken line is reported, the NIS `+@netgroup` line is not an account.
        assert_eq!(skipped, [SkippedLine { line: 16, reason: "expected 7 colon-separated fields, found 1".into() }]);
    }

    #[test]
    fn groups_and_admins() {
        let (accounts, _) = parse_passwd(PASSWD).unwrap();
        let (groups, skipped) = parse_group(GROUP).unwrap();
        assert_eq!(skipped.len(), 1);
        let sudo = groups.iter().find(|g| g.name == "sudo").unwrap();
        assert_eq!(sudo.members, ["alice", "bob"]);
        // alice, bob: sudo members; opsadmin: primary group wheel (gid 10);
        // carol is in `admin` but has no local account.
        assert_eq!(admins(&accounts, &groups), ["alice", "bob", "opsadmin"]);
    }

    #[test]
    fn captured_container_files_parse_cleanly() {
        let (a, s) = parse_passwd(include_str!("../../../tests/fixtures/users/passwd_container.txt")).unwrap();
        assert!(s.is_empty());
        assert!(a.iter().any(|a| a.name == "root" && a.uid == 0 && a.login));
        let (g, s) = parse_group(include_str!("../../../tests/fixtures/users/group_container.txt")).unwrap();
        assert!(s.is_empty());
        assert!(g.iter().any(|g| g.name == "sudo" && g.gid == 27 && g.members.is_empty()));
    }

    #[test]
    fn garbage_never_panics() {
        for t in [":::::::", "a:b", "é:x:é:é:::", "\u{0}\n\n::::::\n"] {
            let _ = parse_passwd(t).unwrap();
            let _ = parse_group(t).unwrap();
        }
    }

    /// Oracle: the names in /etc/passwd equal `getent passwd` on this host.
    #[test]
    fn live_passwd_equals_getent() {
        let Ok(out) = std::process::Command::new("getent").arg("passwd").output() else {
            eprintln!("skipping: getent not installed");
            return;
        };
        let text = std::fs::read_to_string("/etc/passwd").unwrap();
        let (accounts, _) = parse_passwd(&text).unwrap();
        let mut ours: Vec<(String, u32)> = accounts.iter().map(|a| (a.name.clone(), a.uid)).collect();
        let mut theirs: Vec<(String, u32)> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?.to_string();
                Some((name, f.nth(1)?.parse().ok()?))
            })
            .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
    }
}
