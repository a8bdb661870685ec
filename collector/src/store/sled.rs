//! The embedded sled store: one directory, nothing else to run.
//!
//! Key layout (every value is a prost record from `records`, schema tag 1):
//!
//! | tree               | key                          | value                   |
//! |--------------------|------------------------------|-------------------------|
//! | `meta`             | `schema_version`             | u32 big-endian          |
//! | `agents`           | agent id (ASCII hex)         | `AgentRecord`           |
//! | `agent_by_cert`    | SHA-256 of client cert DER   | agent id                |
//! | `agent_by_host`    | host UUID                    | agent id                |
//! | `inventory`        | agent id                     | `InventoryRecord`       |
//! | `admin_tokens`     | SHA-256 of the token         | `TokenRecord`           |
//! | `enroll_secrets`   | SHA-256 of the secret        | `EnrollmentSecretRecord`|
//! | `software`         | name 0 version 0 source 0 arch 0 agent id | empty  |
//!
//! The `software` index is rewritten for an agent in the same transaction
//! that replaces its inventory (old entries removed, new ones added), so a
//! fleet-wide package query is a prefix scan and never disagrees with the
//! stored inventories. Names, versions, sources and architectures never
//! contain a NUL byte (validated on ingest), so the separator is unambiguous.
//!
//! Multi-tree updates run in one sled transaction, so a crash leaves either
//! all of a report batch or none of it; `put_reports` and `enroll_agent`
//! flush before returning, which is what makes an acknowledgement durable.

use std::path::{Path, PathBuf};

use census_proto::v1 as pb;
use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::records::RECORD_SCHEMA;
use super::{
    AgentRecord, Digest, EnrollmentSecretRecord, HostView, InventoryRecord, NewAgent, SoftwareInstall, Store, TokenRecord,
    software_installs_of,
};
use crate::error::{Error, Result};

/// Layout version of the whole database. Bump it with a migration in
/// `migrate` when the key layout changes.
pub const SCHEMA_VERSION: u32 = 1;

pub struct SledStore {
    db: sled::Db,
    agents: sled::Tree,
    agent_by_cert: sled::Tree,
    agent_by_host: sled::Tree,
    inventory: sled::Tree,
    admin_tokens: sled::Tree,
    enroll_secrets: sled::Tree,
    software: sled::Tree,
}

impl SledStore {
    /// Opens (creating if needed) the database under `dir`, checking and
    /// migrating its schema version.
    pub fn open(dir: &Path) -> Result<SledStore> {
        let db = sled::Config::new()
            .path(dir)
            // Durability comes from explicit flushes before every ack, not
            // from the periodic background flush.
            .flush_every_ms(None)
            .open()
            .map_err(|e| Error::Store(format!("opening {}: {e}", dir.display())))?;
        let meta = db.open_tree("meta")?;
        migrate(&meta, dir)?;
        Ok(SledStore {
            agents: db.open_tree("agents")?,
            agent_by_cert: db.open_tree("agent_by_cert")?,
            agent_by_host: db.open_tree("agent_by_host")?,
            inventory: db.open_tree("inventory")?,
            admin_tokens: db.open_tree("admin_tokens")?,
            enroll_secrets: db.open_tree("enroll_secrets")?,
            software: db.open_tree("software")?,
            db,
        })
    }

    /// Where the database lives inside a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("db")
    }

    fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }
}

fn migrate(meta: &sled::Tree, dir: &Path) -> Result<()> {
    let found = match meta.get("schema_version")? {
        None => {
            meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            meta.flush()?;
            return Ok(());
        }
        Some(bytes) => {
            let arr: [u8; 4] = bytes
                .as_ref()
                .try_into()
                .map_err(|_| Error::Store(format!("{}: corrupt schema_version entry", dir.display())))?;
            u32::from_be_bytes(arr)
        }
    };
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew { path: dir.to_path_buf(), found, supported: SCHEMA_VERSION });
    }
    // Version 1 is the first layout: nothing to migrate yet. Future
    // migrations run here in order, each in its own transaction, bumping
    // `schema_version` as they go.
    Ok(())
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::Store(format!("corrupt {what} record: {e}")))
}

fn software_key(i: &SoftwareInstall) -> Vec<u8> {
    let arch = i.arch.as_deref().unwrap_or("");
    let mut key = Vec::with_capacity(i.name.len() + i.version.len() + i.source.len() + arch.len() + i.agent_id.len() + 4);
    for (n, part) in [i.name.as_str(), i.version.as_str(), i.source.as_str(), arch, i.agent_id.as_str()].into_iter().enumerate() {
        if n > 0 {
            key.push(0);
        }
        key.extend_from_slice(part.as_bytes());
    }
    key
}

fn parse_software_key(key: &[u8]) -> Option<SoftwareInstall> {
    let mut parts = key.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    let (name, version, source, arch, agent_id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some(SoftwareInstall { name, version, source, arch: (!arch.is_empty()).then_some(arch), agent_id })
}

fn abort(e: Error) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(e)
}

fn tx_decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, ConflictableTransactionError<Error>> {
    decode(bytes, what).map_err(abort)
}

fn get_agent_tx(agents: &TransactionalTree, agent_id: &str) -> Result<Option<AgentRecord>, ConflictableTransactionError<Error>> {
    agents.get(agent_id.as_bytes())?.map(|b| tx_decode::<AgentRecord>(&b, "agent")).transpose()
}

impl Store for SledStore {
    fn enroll_agent(&self, new: NewAgent) -> Result<AgentRecord> {
        let record = (&self.agents, &self.agent_by_cert, &self.agent_by_host, &self.enroll_secrets).transaction(
            |(agents, by_cert, by_host, secrets)| {
                let record = match get_agent_tx(agents, &new.agent_id)? {
                    Some(mut old) => {
                        // Same host re-enrolling (reinstall, lost state):
                        // keep its id and history, retire the old certificate,
                        // and restart its sequence numbers.
                        by_cert.remove(old.cert_fingerprint.as_slice())?;
                        old.cert_fingerprint = new.cert_fingerprint.to_vec();
                        old.cert_not_after_unix_ms = new.cert_not_after_unix_ms;
                        old.hostname = new.hostname.clone();
                        old.agent_version = new.agent_version.clone();
                        old.enrolled_at_unix_ms = new.enrolled_at_unix_ms;
                        old.revoked = false;
                        old.last_seq = 0;
                        old
                    }
                    None => AgentRecord {
                        schema: RECORD_SCHEMA,
                        agent_id: new.agent_id.clone(),
                        host_uuid: new.host_uuid.clone(),
                        hostname: new.hostname.clone(),
                        cert_fingerprint: new.cert_fingerprint.to_vec(),
                        enrolled_at_unix_ms: new.enrolled_at_unix_ms,
                        revoked: false,
                        last_seq: 0,
                        last_seen_unix_ms: 0,
                        agent_version: new.agent_version.clone(),
                        cert_not_after_unix_ms: new.cert_not_after_unix_ms,
                    },
                };
                agents.insert(record.agent_id.as_bytes(), record.encode_to_vec())?;
                by_cert.insert(&new.cert_fingerprint[..], record.agent_id.as_bytes())?;
                by_host.insert(new.host_uuid.as_bytes(), record.agent_id.as_bytes())?;
                if let Some(bytes) = secrets.get(&new.secret_hash[..])? {
                    let mut secret: EnrollmentSecretRecord = tx_decode(&bytes, "enrollment secret")?;
                    secret.uses += 1;
                    secrets.insert(&new.secret_hash[..], secret.encode_to_vec())?;
                }
                Ok(record)
            },
        )?;
        self.flush()?;
        Ok(record)
    }

    fn agent_by_host(&self, host_uuid: &str) -> Result<Option<AgentRecord>> {
        let Some(id) = self.agent_by_host.get(host_uuid.as_bytes())? else { return Ok(None) };
        self.agents.get(&id)?.map(|b| decode(&b, "agent")).transpose()
    }

    fn agent_by_certificate(&self, fingerprint: &Digest) -> Result<Option<AgentRecord>> {
        let Some(id) = self.agent_by_cert.get(&fingerprint[..])? else { return Ok(None) };
        self.agents.get(&id)?.map(|b| decode(&b, "agent")).transpose()
    }

    fn put_reports(&self, agent_id: &str, reports: &[pb::Report], received_at_unix_ms: i64) -> Result<u64> {
        let acked = (&self.agents, &self.inventory, &self.software).transaction(|(agents, inventory, software)| {
            let Some(mut agent) = get_agent_tx(agents, agent_id)? else {
                return Err(abort(Error::NotFound(format!("agent {agent_id} is not enrolled"))));
            };
            let mut changed = false;
            let already_stored = agent.last_seq;
            for report in reports.iter().filter(|r| r.seq > already_stored) {
                changed = true;
                agent.last_seq = report.seq;
                agent.last_seen_unix_ms = received_at_unix_ms;
                match &report.body {
                    Some(pb::report::Body::Heartbeat(hb)) if !hb.agent_version.is_empty() => {
                        agent.agent_version = hb.agent_version.clone();
                    }
                    Some(pb::report::Body::Heartbeat(_)) => {}
                    Some(pb::report::Body::Inventory(inv)) => {
                        if let Some(identity) = &inv.identity {
                            agent.hostname = identity.hostname.clone();
                        }
                        if let Some(old) = inventory.get(agent_id.as_bytes())? {
                            let old: InventoryRecord = tx_decode(&old, "inventory")?;
                            for install in old.inventory.as_ref().map(|i| software_installs_of(agent_id, i)).unwrap_or_default() {
                                software.remove(software_key(&install))?;
                            }
                        }
                        for install in software_installs_of(agent_id, inv) {
                            software.insert(software_key(&install), &[])?;
                        }
                        let record = InventoryRecord {
                            schema: RECORD_SCHEMA,
                            seq: report.seq,
                            received_at_unix_ms,
                            inventory: Some(inv.clone()),
                        };
                        inventory.insert(agent_id.as_bytes(), record.encode_to_vec())?;
                    }
                    None => {}
                }
            }
            if changed {
                agents.insert(agent_id.as_bytes(), agent.encode_to_vec())?;
            }
            Ok((agent.last_seq, changed))
        })?;
        if acked.1 {
            self.flush()?;
        }
        Ok(acked.0)
    }

    fn hosts(&self) -> Result<Vec<HostView>> {
        let mut out = Vec::with_capacity(self.agents.len());
        for entry in self.agents.iter() {
            let (key, value) = entry?;
            let agent: AgentRecord = decode(&value, "agent")?;
            let inventory = self.inventory.get(&key)?.map(|b| decode(&b, "inventory")).transpose()?;
            out.push(HostView { agent, inventory });
        }
        Ok(out)
    }

    fn host(&self, agent_id: &str) -> Result<Option<HostView>> {
        let Some(value) = self.agents.get(agent_id.as_bytes())? else { return Ok(None) };
        let agent = decode(&value, "agent")?;
        let inventory = self.inventory.get(agent_id.as_bytes())?.map(|b| decode(&b, "inventory")).transpose()?;
        Ok(Some(HostView { agent, inventory }))
    }

    fn software_installs(&self, name: &str) -> Result<Vec<SoftwareInstall>> {
        let mut prefix = name.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for entry in self.software.scan_prefix(&prefix) {
            let (key, _) = entry?;
            if let Some(install) = parse_software_key(&key) {
                out.push(install);
            }
        }
        Ok(out)
    }

    fn agents_named(&self, hostname: &str) -> Result<Vec<AgentRecord>> {
        let mut out = Vec::new();
        for entry in self.agents.iter() {
            let (_, value) = entry?;
            let agent: AgentRecord = decode(&value, "agent")?;
            if agent.hostname.eq_ignore_ascii_case(hostname) {
                out.push(agent);
            }
        }
        Ok(out)
    }

    fn put_admin_token(&self, hash: &Digest, token: &TokenRecord) -> Result<()> {
        self.admin_tokens.insert(&hash[..], token.encode_to_vec())?;
        self.flush()
    }

    fn admin_token(&self, hash: &Digest) -> Result<Option<TokenRecord>> {
        self.admin_tokens.get(&hash[..])?.map(|b| decode(&b, "admin token")).transpose()
    }

    fn put_enrollment_secret(&self, hash: &Digest, secret: &EnrollmentSecretRecord) -> Result<()> {
        self.enroll_secrets.insert(&hash[..], secret.encode_to_vec())?;
        self.flush()
    }

    fn enrollment_secret(&self, hash: &Digest) -> Result<Option<EnrollmentSecretRecord>> {
        self.enroll_secrets.get(&hash[..])?.map(|b| decode(&b, "enrollment secret")).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_agent(id: &str, host_uuid: &str, cert: u8) -> NewAgent {
        NewAgent {
            agent_id: id.into(),
            host_uuid: host_uuid.into(),
            hostname: "web-07".into(),
            agent_version: "0.1.0".into(),
            cert_fingerprint: [cert; 32],
            cert_not_after_unix_ms: 0,
            enrolled_at_unix_ms: 1,
            secret_hash: [9; 32],
        }
    }

    fn heartbeat(seq: u64) -> pb::Report {
        pb::Report {
            seq,
            created_at_unix_ms: 0,
            body: Some(pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: seq, agent_version: "0.1.0".into() })),
        }
    }

    #[test]
    fn duplicate_reports_are_acked_but_not_stored_twice() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
        assert_eq!(store.put_reports("a1", &[heartbeat(1), heartbeat(2)], 10).expect("put"), 2);
        // A retry of 2 plus a new 3: 2 is skipped, 3 stored.
        assert_eq!(store.put_reports("a1", &[heartbeat(2), heartbeat(3)], 20).expect("put"), 3);
        // A pure retry changes nothing, not even last_seen.
        assert_eq!(store.put_reports("a1", &[heartbeat(3)], 30).expect("put"), 3);
        let host = store.host("a1").expect("get").expect("exists");
        assert_eq!(host.agent.last_seq, 3);
        assert_eq!(host.agent.last_seen_unix_ms, 20);
    }

    #[test]
    fn reenrolling_host_keeps_id_and_retires_old_certificate() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
        store.put_reports("a1", &[heartbeat(5)], 10).expect("put");
        let existing = store.agent_by_host("u1").expect("lookup").expect("known host");
        let again = store.enroll_agent(new_agent(&existing.agent_id, "u1", 2)).expect("re-enroll");
        assert_eq!(again.agent_id, "a1");
        assert_eq!(again.last_seq, 0, "a reinstalled agent starts its sequence again");
        assert!(store.agent_by_certificate(&[1; 32]).expect("lookup").is_none(), "old certificate retired");
        assert_eq!(store.agent_by_certificate(&[2; 32]).expect("lookup").expect("new cert").agent_id, "a1");
    }

    #[test]
    fn unknown_agent_is_not_found_and_nothing_written() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        let err = store.put_reports("nobody", &[heartbeat(1)], 1).unwrap_err();
        assert!(matches!(err, Error::NotFound(_)), "{err}");
        assert!(store.hosts().expect("hosts").is_empty());
    }

    fn inventory_with(seq: u64, packages: &[(&str, &str)]) -> pb::Report {
        let software = pb::SoftwareSection {
            packages: packages
                .iter()
                .map(|(n, v)| pb::Package { name: n.to_string(), version: v.to_string(), source: "dpkg".into(), arch: Some("amd64".into()), ..Default::default() })
                .collect(),
        };
        pb::Report {
            seq,
            created_at_unix_ms: 0,
            body: Some(pb::report::Body::Inventory(pb::Inventory { software: Some(software), ..Default::default() })),
        }
    }

    #[test]
    fn software_index_follows_the_latest_inventory() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
        store.enroll_agent(new_agent("a2", "u2", 2)).expect("enroll");
        store.put_reports("a1", &[inventory_with(1, &[("openssl", "3.0.11-1"), ("curl", "7.88")])], 1).expect("put");
        store.put_reports("a2", &[inventory_with(1, &[("openssl", "3.0.13-1"), ("openssl-dev", "3.0.13-1")])], 1).expect("put");
        let mut openssl = store.software_installs("openssl").expect("query");
        openssl.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        assert_eq!(openssl.len(), 2, "a prefix of another name (openssl-dev) is not matched");
        assert_eq!((openssl[0].agent_id.as_str(), openssl[0].version.as_str()), ("a1", "3.0.11-1"));
        assert_eq!(openssl[0].arch.as_deref(), Some("amd64"));
        // a1 upgrades openssl and removes curl: the index follows.
        store.put_reports("a1", &[inventory_with(2, &[("openssl", "3.0.13-1")])], 2).expect("put");
        let versions: Vec<String> = store.software_installs("openssl").expect("q").into_iter().map(|i| i.version).collect();
        assert_eq!(versions, vec!["3.0.13-1".to_string(), "3.0.13-1".to_string()]);
        assert!(store.software_installs("curl").expect("q").is_empty());
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = SledStore::open(dir.path()).expect("open");
            store.db.open_tree("meta").expect("meta").insert("schema_version", &99u32.to_be_bytes()).expect("set");
            store.flush().expect("flush");
        }
        let err = SledStore::open(dir.path()).err().expect("must refuse");
        assert!(matches!(err, Error::SchemaTooNew { found: 99, .. }), "{err}");
    }

    #[test]
    fn data_survives_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = SledStore::open(dir.path()).expect("open");
            store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
            store.put_reports("a1", &[heartbeat(7)], 10).expect("put");
        }
        let store = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(store.host("a1").expect("get").expect("exists").agent.last_seq, 7);
    }
}
