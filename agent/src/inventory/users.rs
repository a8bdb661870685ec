//! Local users: accounts, groups, administrators, logged-in sessions and
//! last logins. Pure domain types; `collect::users` fills them.
//!
//! Invariant: `accounts` is exactly the local account database
//! (`/etc/passwd` on Linux), so it equals `getent passwd` on a host without
//! NSS extras (LDAP/SSSD users are not local accounts and are not listed).

use crate::inventory::unreadable::Unreadable;

/// The users section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Users {
    pub accounts: Vec<Account>,
    pub groups: Vec<Group>,
    /// Names of accounts with administrative rights through group
    /// membership (sudo, wheel, admin: listed as members or as primary
    /// group), sorted, each once.
    pub admins: Vec<String>,
    /// Current sessions; absent with a reason when utmp is unreadable.
    pub sessions: Option<Vec<Session>>,
    /// Most recent login per account that ever logged in; absent with a
    /// reason when neither lastlog nor wtmp is readable.
    pub last_logins: Option<Vec<LastLogin>>,
    pub unreadable: Vec<Unreadable>,
}

/// One local account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Full name and contact fields; absent when the field is empty.
    pub gecos: Option<String>,
    pub home: String,
    /// Login shell; absent when empty (the system then uses /bin/sh).
    pub shell: Option<String>,
    /// Whether the account can open an interactive session: its shell is
    /// not `nologin` or `false`. Locked passwords are not considered.
    pub login: bool,
}

/// One local group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    /// Supplementary members as listed in the group file (primary-group
    /// members are not repeated there).
    pub members: Vec<String>,
}

/// A logged-in session.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Session {
    pub user: String,
    /// Terminal, e.g. `tty2`, `pts/0`.
    pub tty: String,
    /// Remote host or address for remote sessions; absent for local ones.
    pub host: Option<String>,
    pub pid: i32,
    pub login_time_unix: i64,
}

/// Where a last-login record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LastLoginSource {
    Lastlog,
    Wtmp,
    /// Windows local account database (`Get-LocalUser` LastLogon).
    Sam,
}

/// The most recent login of one account.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LastLogin {
    pub user: String,
    pub time_unix: i64,
    pub tty: Option<String>,
    pub host: Option<String>,
    pub source: LastLoginSource,
}
