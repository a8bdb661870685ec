//! `census-collector init`: a new data directory with its CA, server
//! certificate, first admin token and first enrollment secret.
//!
//! The token and secret are returned to the caller to print once; only
//! their hashes are stored.

use std::path::Path;
use std::time::SystemTime;

use crate::clock::unix_ms;
use crate::error::{Error, Result};
use crate::pki::Pki;
use crate::secrets::{self, Role, Secret};
use crate::store::records::RECORD_SCHEMA;
use crate::store::sled::SledStore;
use crate::store::{EnrollmentSecretRecord, Store, TokenRecord};

/// What `init` created.
#[derive(Debug)]
pub struct Initialised {
    pub ca_path: std::path::PathBuf,
    pub admin_token: Secret,
    pub enrollment_secret: Secret,
}

pub fn init(data_dir: &Path, sans: &[String]) -> Result<Initialised> {
    if sans.is_empty() {
        return Err(Error::Config("at least one --san is needed (the name or address agents use to reach the collector)".into()));
    }
    create_data_dir(data_dir)?;
    let pki_dir = data_dir.join("pki");
    let now = SystemTime::now();
    Pki::create(&pki_dir, sans, now)?;
    let store = SledStore::open(&SledStore::path_in(data_dir))?;
    let admin_token = create_admin_token(&store, "initial admin", Role::Admin, now)?;
    let enrollment_secret = create_enrollment_secret(&store, "default", None, now)?;
    Ok(Initialised { ca_path: Pki::ca_path(&pki_dir), admin_token, enrollment_secret })
}

/// Creates a data directory (if needed) readable by its owner only.
pub fn create_data_dir(data_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(data_dir).map_err(|e| Error::io("creating", data_dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("restricting permissions of", data_dir, e))?;
    }
    Ok(())
}

/// Opens the store of an initialised data directory for an offline
/// command. sled admits one process: while the collector runs, this fails
/// with what to do instead (`while_running`).
pub fn open_offline(data_dir: &Path, while_running: &str) -> Result<SledStore> {
    if !Pki::ca_path(&data_dir.join("pki")).exists() {
        return Err(Error::NotInitialised(data_dir.to_path_buf()));
    }
    SledStore::open(&SledStore::path_in(data_dir)).map_err(|e| match e {
        Error::Store(m) if m.contains("lock") => {
            Error::FailedPrecondition(format!("{m}\nthe collector is probably running on this data directory; {while_running}"))
        }
        other => other,
    })
}

/// `census-collector token create`: a new admin token with `role` in an
/// initialised data directory. Offline: sled admits one process, so the
/// collector must be stopped (while it runs: `census tokens create`).
pub fn create_token_offline(data_dir: &Path, name: &str, role: Role) -> Result<Secret> {
    if name.trim().is_empty() || name.len() > 128 {
        return Err(Error::Config("--name must be 1 to 128 bytes: who or what the token is for".into()));
    }
    let store = open_offline(data_dir, "create the token with `census tokens create` instead, or stop it first")?;
    create_admin_token(&store, name, role, SystemTime::now())
}

/// Creates and stores (hashed) a new admin token.
pub fn create_admin_token(store: &dyn Store, name: &str, role: Role, now: SystemTime) -> Result<Secret> {
    let token = secrets::generate(secrets::TOKEN_PREFIX);
    let record = TokenRecord {
        schema: RECORD_SCHEMA,
        id: token.public_id(),
        name: name.to_string(),
        role: role.as_str().to_string(),
        created_at_unix_ms: unix_ms(now),
        revoked: false,
    };
    store.put_admin_token(&token.hash(), &record)?;
    Ok(token)
}

/// Creates and stores (hashed) a new enrollment secret.
pub fn create_enrollment_secret(store: &dyn Store, name: &str, expires: Option<SystemTime>, now: SystemTime) -> Result<Secret> {
    create_enrollment_secret_limited(store, name, expires, 0, now).map(|(secret, _)| secret)
}

/// Creates and stores (hashed) a new enrollment secret admitting at most
/// `max_uses` enrollments (0: no limit); returns it with its record.
pub fn create_enrollment_secret_limited(
    store: &dyn Store,
    name: &str,
    expires: Option<SystemTime>,
    max_uses: u64,
    now: SystemTime,
) -> Result<(Secret, EnrollmentSecretRecord)> {
    let secret = secrets::generate(secrets::ENROLL_PREFIX);
    let record = EnrollmentSecretRecord {
        schema: RECORD_SCHEMA,
        id: secret.public_id(),
        name: name.to_string(),
        created_at_unix_ms: unix_ms(now),
        expires_at_unix_ms: expires.map(unix_ms).unwrap_or(0),
        revoked: false,
        uses: 0,
        max_uses,
    };
    store.put_enrollment_secret(&secret.hash(), &record)?;
    Ok((secret, record))
}
