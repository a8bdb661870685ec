//! Admin tokens and enrollment secrets: generation, hashing, roles.
//!
//! Both are 256-bit random values shown once at creation and stored only as
//! their SHA-256 (a fast hash is right here: the inputs are random and long,
//! so there is nothing to brute-force). `Secret` is the redacted type that
//! carries one in memory: its Debug and Display print `***`.

use sha2::{Digest as _, Sha256};

use crate::store::Digest;

/// Prefix of admin tokens, so a leaked one is recognisable in a scan.
pub const TOKEN_PREFIX: &str = "census_tok_";
/// Prefix of enrollment secrets.
pub const ENROLL_PREFIX: &str = "census_enr_";

/// A secret value in memory. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must show or send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> Digest {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// Short public id derived from the hash, safe to list and log.
    pub fn public_id(&self) -> String {
        hex::encode(&self.hash()[..6])
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Generates a new secret: `prefix` + 64 hex characters.
pub fn generate(prefix: &str) -> Secret {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    Secret(format!("{prefix}{}", hex::encode(bytes)))
}

/// What an admin token may do. Ordered: a higher role can do everything a
/// lower one can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Read everything.
    Viewer,
    /// Viewer, plus acknowledge and silence alerts, retry notifications.
    Operator,
    /// Operator, plus tokens, enrollment secrets, revocation, rules.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = generate(TOKEN_PREFIX);
        assert!(s.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(s.expose().len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_ne!(generate(TOKEN_PREFIX), s, "two secrets differ");
    }

    #[test]
    fn roles_are_ordered_and_round_trip() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
