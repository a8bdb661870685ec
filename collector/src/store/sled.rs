//! The embedded sled store: one directory, nothing else to run.
//!
//! Key layout (every value is a prost record from `records`, schema tag 1):
//!
//! | tree               | key                          | value                   |
//! |--------------------|------------------------------|-------------------------|
//! | `meta`             | `schema_version`             | u32 big-endian          |
//! | `agents`           | agent id (ASCII hex)         | `AgentRecord`           |
//! | `agent_by_cert`    | SHA-256 of client cert DER (current, and previous during a renewal's overlap) | agent id |
//! | `agent_by_host`    | host UUID                    | agent id                |
//! | `inventory`        | agent id                     | `InventoryRecord`       |
//! | `host_summary`     | agent id                     | `InventoryRecord` without the package list (`summary_of`) |
//! | `admin_tokens`     | SHA-256 of the token         | `TokenRecord`           |
//! | `enroll_secrets`   | SHA-256 of the secret        | `EnrollmentSecretRecord`|
//! | `software`         | name 0 version 0 source 0 arch 0 agent id | empty  |
//! | `changes`          | agent id, time, seq, index   | `ChangeRecord`          |
//! | `metrics_raw`      | agent id, time               | `census.v1.HealthSample`|
//! | `metrics_5m`       | agent id, metric 0, bucket start | `BucketRecord`      |
//! | `metrics_1h`       | agent id, metric 0, bucket start | `BucketRecord`      |
//! | `metrics_dirty`    | agent id                     | time, earliest sample not yet rolled up |
//! | `alerts`           | alert fingerprint (hex)      | JSON `Alert`            |
//! | `alert_meta`       | `silences`, `next_sequence`  | JSON `[Silence]`, u64 BE |
//! | `api_rules`        | rule name                    | JSON `RuleSpec`         |
//! | `outbox`           | entry id, u64 BE             | JSON `OutboxEntry`      |
//! | `outbox_pending`   | sink 0 entry id (u64 BE)     | empty                   |
//! | `tickets`          | sink 0 fingerprint           | ticket id               |
//! | `ticket_members`   | sink 0 ticket id 0 fingerprint | empty                 |
//! | `audit`            | time, id (u64 BE)            | `AuditRecord`           |
//!
//! Agent ids are 32 ASCII hex characters, so an agent's keys are a fixed
//! 32-byte prefix. Times are i64 Unix ms stored big-endian with the sign
//! bit flipped (`time_key`), so byte order is time order and a time range
//! is a key range.
//!
//! Health: raw samples are written in the ingest transaction (durable
//! before the ack), with `metrics_dirty` lowered to the earliest new
//! sample. `compact_metrics` (background) recomputes the 5-minute and
//! 1-hour buckets of the hours a dirty mark covers from scratch, so late
//! samples (an agent replaying its spool after an outage) are rolled up
//! too and rerunning is harmless; it clears a mark only if ingest has not
//! moved it meanwhile (compare-and-swap).
//!
//! `host_summary` is written in the transaction that replaces an
//! inventory; the host summaries in memory (`host_cache`) are loaded from
//! it and `agents` on the first host query and refreshed after every write
//! to an agent. Schema 2 added it (built from `inventory` by `migrate`).
//!
//! The `software` index is rewritten for an agent in the same transaction
//! that replaces its inventory (old entries removed, new ones added), so a
//! fleet-wide package query is a prefix scan and never disagrees with the
//! stored inventories. Names, versions, sources and architectures never
//! contain a NUL byte (validated on ingest), so the separator is unambiguous.
//!
//! Alerts and the outbox are JSON (the alert domain types are serde types
//! and never cross the wire); a change of their shape needs a migration like
//! any record. An evaluation's alert changes and the outbox entries they
//! enqueue are one transaction; `outbox_pending` indexes the pending
//! entries per sink in id order, so a sink's head is a prefix scan.
//! Sink names and ticket ids never contain NUL (config validation, and the
//! ids systems return are numbers or keys).
//!
//! Multi-tree updates run in one sled transaction, so a crash leaves either
//! all of a report batch or none of it; `put_reports` and `enroll_agent`
//! flush before returning, which is what makes an acknowledgement durable.
//!
//! Backups: sled has no snapshot, and its iterators see writes made while
//! they run. So every method that writes holds `gate` shared, and `export`
//! holds it exclusively while it dumps every tree: writes wait (their
//! callers' acknowledgements with them) for as long as the dump takes, and
//! the dump is one point in time. A new writing method must take the gate
//! (`let _writing = self.writing();`) and must not call another writing
//! method while it holds it (a waiting export would deadlock the two). `import` rebuilds a database from a
//! dump, including sled's id counter (outbox entry ids).

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use census_proto::v1 as pb;
use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::group_flush::GroupFlush;
use super::host_cache::HostCache;
use super::latest_sample::LatestSamples;
use super::name_cache::NameCache;
use super::records::RECORD_SCHEMA;
use super::software_cache::SoftwareCache;
use super::{
    AgentRecord, AuditRecord, BucketRecord, ChangeRecord, Compaction, Digest, DumpItem, DumpSummary, EnrollmentSecretRecord, HostView,
    Ingested, InventoryRecord, IssuedCertificate, NewAgent, SoftwareInstall, Store, TokenRecord, software_installs_of, summary_of,
};
use super::{AlertCommit, StoredAlerts};
use crate::alert::book::{Alert, Silence};
use crate::alert::rules::RuleSpec;
use crate::error::{Error, Result};
use crate::metrics::{self, Bucket, Resolution};
use crate::notify::outbox::{DeliveryState, OutboxEntry};

/// Layout version of the whole database. Bump it with a migration in
/// `migrate` when the key layout changes.
pub const SCHEMA_VERSION: u32 = 2;

pub struct SledStore {
    db: sled::Db,
    /// Every write holds this shared; `export` holds it exclusively, so a
    /// dump sees no write half done (sled has no snapshot of its own).
    gate: RwLock<()>,
    /// One flush for all writers waiting at the same time.
    flushes: GroupFlush,
    /// sled's `blobs` directory, held open for `flush` (see there).
    blobs: std::fs::File,
    blobs_dir: PathBuf,
    agents: sled::Tree,
    agent_by_cert: sled::Tree,
    agent_by_host: sled::Tree,
    inventory: sled::Tree,
    host_summary: sled::Tree,
    /// What host queries read (see `host_cache`).
    hosts: HostCache,
    /// What `software(...)` filters and ListSoftware read (see `software_cache`).
    software_names: SoftwareCache,
    /// The index's distinct package names (see `name_cache`).
    package_names: NameCache,
    /// Each agent's newest raw sample (see `latest_sample`).
    latest_samples: LatestSamples,
    admin_tokens: sled::Tree,
    enroll_secrets: sled::Tree,
    software: sled::Tree,
    changes: sled::Tree,
    metrics_raw: sled::Tree,
    metrics_5m: sled::Tree,
    metrics_1h: sled::Tree,
    metrics_dirty: sled::Tree,
    alerts: sled::Tree,
    alert_meta: sled::Tree,
    api_rules: sled::Tree,
    outbox: sled::Tree,
    outbox_pending: sled::Tree,
    tickets: sled::Tree,
    ticket_members: sled::Tree,
    audit: sled::Tree,
    /// Token revocations run one at a time, so two concurrent revocations
    /// cannot each see the other's token as the last admin standing.
    token_revocation: std::sync::Mutex<()>,
}

impl SledStore {
    /// The host summaries in listing order with their names generation
    /// (`host_cache`), loaded from the summary tree on first use.
    fn host_snapshot_at(&self) -> Result<(std::sync::Arc<Vec<std::sync::Arc<HostView>>>, u64)> {
        self.hosts.ordered(|| {
            let mut out = Vec::with_capacity(self.agents.len());
            for entry in self.agents.iter() {
                let (key, value) = entry?;
                let agent: AgentRecord = decode(&value, "agent")?;
                let inventory = self.host_summary.get(&key)?.map(|b| decode(&b, "host summary")).transpose()?.map(std::sync::Arc::new);
                out.push(HostView { agent, inventory });
            }
            Ok(out)
        })
    }

    /// Opens (creating if needed) the database under `dir`, checking and
    /// migrating its schema version.
    pub fn open(dir: &Path) -> Result<SledStore> {
        let db = sled::Config::new()
            .path(dir)
            // Durability comes from explicit flushes before every ack, not
            // from the periodic background flush.
            .flush_every_ms(None)
            .idgen_persist_interval(IDGEN_PERSIST_INTERVAL)
            .open()
            .map_err(|e| Error::Store(format!("opening {}: {e}", dir.display())))?;
        let blobs_dir = dir.join("blobs");
        let blobs = std::fs::File::open(&blobs_dir).map_err(|e| Error::Store(format!("opening {}: {e}", blobs_dir.display())))?;
        let meta = db.open_tree("meta")?;
        let found = schema_version(&meta, dir)?;
        let store = SledStore {
            agents: db.open_tree("agents")?,
            agent_by_cert: db.open_tree("agent_by_cert")?,
            agent_by_host: db.open_tree("agent_by_host")?,
            inventory: db.open_tree("inventory")?,
            host_summary: db.open_tree("host_summary")?,
            hosts: HostCache::default(),
            software_names: SoftwareCache::default(),
            package_names: NameCache::default(),
            latest_samples: LatestSamples::default(),
            admin_tokens: db.open_tree("admin_tokens")?,
            enroll_secrets: db.open_tree("enroll_secrets")?,
            software: db.open_tree("software")?,
            changes: db.open_tree("changes")?,
            metrics_raw: db.open_tree("metrics_raw")?,
            metrics_5m: db.open_tree("metrics_5m")?,
            metrics_1h: db.open_tree("metrics_1h")?,
            metrics_dirty: db.open_tree("metrics_dirty")?,
            alerts: db.open_tree("alerts")?,
            alert_meta: db.open_tree("alert_meta")?,
            api_rules: db.open_tree("api_rules")?,
            outbox: db.open_tree("outbox")?,
            outbox_pending: db.open_tree("outbox_pending")?,
            tickets: db.open_tree("tickets")?,
            ticket_members: db.open_tree("ticket_members")?,
            audit: db.open_tree("audit")?,
            token_revocation: std::sync::Mutex::new(()),
            db,
            gate: RwLock::new(()),
            flushes: GroupFlush::default(),
            blobs,
            blobs_dir,
        };
        store.migrate(found, &meta)?;
        Ok(store)
    }

    /// `open` for a store this process may have closed a moment ago (`init`
    /// then serving, as the demo does in one process): sled's I/O threads
    /// hold its lock briefly after the last handle is dropped, so a held
    /// lock is retried for up to `wait`. Another process holding it (a
    /// running collector) still fails, after `wait`.
    pub fn open_after_close(dir: &Path, wait: std::time::Duration) -> Result<SledStore> {
        reopening_for(wait, || SledStore::open(dir))
    }

    /// Brings a store of an older layout (`found`; `None`: a new store) to
    /// `SCHEMA_VERSION`, one step at a time, each made durable before the
    /// version that records it.
    fn migrate(&self, found: Option<u32>, meta: &sled::Tree) -> Result<()> {
        let Some(mut version) = found else {
            meta.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
            meta.flush()?;
            return Ok(());
        };
        if version == 1 {
            // 1 -> 2: the host summaries, from the stored inventories.
            for entry in self.inventory.iter() {
                let (key, value) = entry?;
                let mut record: InventoryRecord = decode(&value, "inventory")?;
                self.host_summary.insert(key, summary_of(&mut record).encode_to_vec())?;
            }
            self.db.flush()?;
            version = 2;
            meta.insert("schema_version", &version.to_be_bytes())?;
            meta.flush()?;
        }
        Ok(())
    }

    /// After a write to an agent is durable: its host summary follows.
    fn refresh_host(&self, agent_id: &str, inventory_changed: bool) {
        let agent = || self.agents.get(agent_id.as_bytes())?.map(|b| decode::<AgentRecord>(&b, "agent")).transpose();
        let inventory = || self.host_summary.get(agent_id.as_bytes())?.map(|b| decode::<InventoryRecord>(&b, "host summary")).transpose();
        let read_inventory: Option<&dyn Fn() -> Result<Option<InventoryRecord>>> = if inventory_changed { Some(&inventory) } else { None };
        if let Err(e) = self.hosts.refresh(agent_id, agent, read_inventory) {
            // The write itself is durable; the summaries reload on the next query.
            tracing::warn!(%agent_id, error = %e, "refreshing a host summary failed; host summaries will be reloaded");
            self.hosts.invalidate();
        }
    }

    /// After an inventory write is durable: the cached installs of the
    /// package names it touched follow.
    fn refresh_software(&self, agent_id: &str, touched: &std::collections::HashSet<String>) {
        let committed = || -> Result<Vec<SoftwareInstall>> {
            let Some(bytes) = self.inventory.get(agent_id.as_bytes())? else { return Ok(Vec::new()) };
            let record: InventoryRecord = decode(&bytes, "inventory")?;
            Ok(record.inventory.as_ref().map(|i| software_installs_of(agent_id, i)).unwrap_or_default())
        };
        if let Err(e) = self.software_names.refresh(agent_id, touched, committed) {
            tracing::warn!(%agent_id, error = %e, "refreshing cached software installs failed; they will be reloaded");
            self.software_names.invalidate();
        }
    }

    /// After an inventory write is durable: the names in memory follow
    /// the names whose installs it added or removed.
    fn refresh_package_names(&self, touched: &std::collections::HashSet<String>) {
        let indexed = |name: &str| -> Result<bool> {
            let mut prefix = name.as_bytes().to_vec();
            prefix.push(0);
            Ok(self.software.scan_prefix(&prefix).next().transpose()?.is_some())
        };
        if let Err(e) = self.package_names.refresh(touched, indexed) {
            tracing::warn!(error = %e, "refreshing the package names in memory failed; they will be reloaded");
            self.package_names.invalidate();
        }
    }

    /// The newest stored sample at or before a time, read from the index.
    fn latest_health_sample_stored(&self, agent_id: &str, at_or_before_unix_ms: i64) -> Result<Option<pb::HealthSample>> {
        // Keys are agent id + time, so the last key of the range is the
        // newest sample: one seek, however many samples are kept.
        let mut range = self.metrics_raw.range(agent_time_key(agent_id, i64::MIN)..=agent_time_key(agent_id, at_or_before_unix_ms));
        match range.next_back().transpose()? {
            Some((_, value)) => Ok(Some(decode(&value, "health sample")?)),
            None => Ok(None),
        }
    }

    /// Where the database lives inside a data directory.
    pub fn path_in(data_dir: &Path) -> PathBuf {
        data_dir.join("db")
    }

    /// Makes every write committed before the call durable. Concurrent
    /// callers share one flush (`group_flush`): this is the fsync every
    /// acknowledgement waits for.
    ///
    /// sled 0.34 writes any log item larger than a quarter of its 512 KiB
    /// segment (a 2,000-package inventory, or a consolidated node of the
    /// inventory tree) to its own file under `blobs/` and never fsyncs
    /// those files: its flush syncs the log alone (spacejam/sled#1077
    /// shows the same trace). After a power loss the log would point at
    /// blob files that never reached the disk, losing acknowledged
    /// inventories and the nodes that hold them. So the flush also syncs
    /// the file system holding the store, which covers the blob files and
    /// their directory entries.
    fn flush(&self) -> Result<()> {
        self.flushes
            .flush(|| {
                self.db.flush().map_err(|e| e.to_string())?;
                sync_blob_files(&self.blobs, &self.blobs_dir).map_err(|e| format!("syncing the store's blob files: {e}"))
            })
            .map_err(|e| Error::Store(format!("flush: {e}")))
    }

    /// Taken by every method that writes, for as long as it writes.
    fn writing(&self) -> RwLockReadGuard<'_, ()> {
        // A panic while holding the gate leaves sled as consistent as its
        // transactions made it; the gate itself guards no data.
        self.gate.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One `syncfs` of the file system holding the store.
#[cfg(target_os = "linux")]
fn sync_blob_files(blobs: &std::fs::File, _blobs_dir: &Path) -> std::io::Result<()> {
    rustix::fs::syncfs(blobs).map_err(std::io::Error::from)
}

/// Without `syncfs`: every blob file, then the directory.
#[cfg(not(target_os = "linux"))]
fn sync_blob_files(blobs: &std::fs::File, blobs_dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(blobs_dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            match std::fs::File::open(entry.path()).and_then(|f| f.sync_all()) {
                // Removed by sled's log cleaning meanwhile: nothing to keep.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    blobs.sync_all()
}

/// Largest id floor `import` accepts: sled adds twice the floor to its id
/// counter (see `import`), which must not overflow.
const MAX_ID_FLOOR: u64 = 1 << 60;

/// How many ids sled hands out between two writes of its id counter
/// (sled's default, stated so `import` can rely on it): the persisted
/// counter is always a multiple of it.
const IDGEN_PERSIST_INTERVAL: u64 = 1_000_000;

/// Creates the database under `dir` (which must not hold one) from a dump
/// written by `Store::export`, then opens it as a store once, which checks
/// its schema version and runs the migrations a dump from an older
/// collector needs. On error, `dir` may hold a partial database: the caller
/// removes it.
pub fn import(dir: &Path, items: &mut dyn Iterator<Item = Result<DumpItem>>) -> Result<DumpSummary> {
    const BATCH: usize = 10_000;
    let open = |config: &dyn Fn() -> sled::Config| {
        reopening(|| config().path(dir).flush_every_ms(None).open().map_err(|e| Error::Store(format!("opening {}: {e}", dir.display()))))
    };
    let db = open(&sled::Config::new)?;
    if db.was_recovered() {
        return Err(Error::AlreadyInitialised(dir.to_path_buf()));
    }
    let mut summary = DumpSummary::default();
    let mut floor = 0;
    let mut tree: Option<sled::Tree> = None;
    let mut batch = sled::Batch::default();
    let mut batched = 0;
    for item in items {
        match item? {
            DumpItem::IdFloor(f) if f <= MAX_ID_FLOOR => floor = f,
            DumpItem::IdFloor(f) => return Err(Error::Store(format!("the dump's id floor {f} is out of range"))),
            DumpItem::Tree(name) => {
                if let Some(t) = &tree {
                    t.apply_batch(std::mem::take(&mut batch))?;
                    batched = 0;
                }
                tree = Some(db.open_tree(name)?);
                summary.trees += 1;
            }
            DumpItem::Entry(key, value) => {
                let Some(t) = &tree else { return Err(Error::Store("the dump has an entry before any tree".into())) };
                batch.insert(key, value);
                batched += 1;
                summary.entries += 1;
                if batched == BATCH {
                    t.apply_batch(std::mem::take(&mut batch))?;
                    batched = 0;
                }
            }
        }
    }
    if let Some(t) = tree.take() {
        t.apply_batch(batch)?;
    }
    db.flush()?;
    // The imported inventories are mostly blob files, which sled's flush
    // leaves unsynced (see `SledStore::flush`).
    let blobs_dir = dir.join("blobs");
    std::fs::File::open(&blobs_dir)
        .and_then(|blobs| sync_blob_files(&blobs, &blobs_dir))
        .map_err(|e| Error::Store(format!("syncing {}: {e}", blobs_dir.display())))?;
    // The last handle closes the database (and releases its lock).
    drop(db);
    if floor > 0 {
        // sled cannot set its id counter, but it resumes a reopened
        // database at the last persisted value plus twice
        // `idgen_persist_interval`, and persists the counter when an id
        // crosses a multiple of the interval. With the floor rounded up to
        // a multiple of our usual interval as the interval, the first id is
        // twice that and is persisted (still a multiple of the usual
        // interval, as sled expects), so every later open resumes above the
        // floor: restored outbox ids are never handed out again.
        let interval = floor.div_ceil(IDGEN_PERSIST_INTERVAL) * IDGEN_PERSIST_INTERVAL;
        let db = open(&|| sled::Config::new().idgen_persist_interval(interval))?;
        let first = db.generate_id()?;
        if first < floor {
            return Err(Error::Store(format!("the restored id counter starts at {first}, below the dump's floor {floor}")));
        }
        db.flush()?;
    }
    // A last open checks and stamps the schema version (the same brief
    // lock retry as above).
    reopening(|| SledStore::open(dir))?;
    Ok(summary)
}

/// What sled's error says when another handle holds the database's lock.
const LOCK_HELD: &str = "could not acquire lock";

/// Runs `open` until it does not fail on sled's file lock, for at most 10 s.
/// Reopening right after dropping the last handle can find the lock still
/// held for a moment (sled's IO threads release their references after the
/// drop); sled reports it as an I/O error of kind Other, hence the text.
fn reopening<T>(open: impl FnMut() -> Result<T>) -> Result<T> {
    reopening_for(std::time::Duration::from_secs(10), open)
}

fn reopening_for<T>(wait: std::time::Duration, mut open: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        match open() {
            Err(Error::Store(m)) if m.contains(LOCK_HELD) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The stored layout version (`None` for a new store); refuses a newer one.
fn schema_version(meta: &sled::Tree, dir: &Path) -> Result<Option<u32>> {
    let Some(bytes) = meta.get("schema_version")? else { return Ok(None) };
    let arr: [u8; 4] = bytes.as_ref().try_into().map_err(|_| Error::Store(format!("{}: corrupt schema_version entry", dir.display())))?;
    let found = u32::from_be_bytes(arr);
    if found > SCHEMA_VERSION {
        return Err(Error::SchemaTooNew { path: dir.to_path_buf(), found, supported: SCHEMA_VERSION });
    }
    Ok(Some(found))
}

fn decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M> {
    M::decode(bytes).map_err(|e| Error::Store(format!("corrupt {what} record: {e}")))
}

/// The software index keys an inventory implies, one per entry of
/// `software_installs_of` (name, version, source, arch, agent id; the
/// inverse of `parse_software_key`), without building the installs: an
/// inventory write computes them for the old and the new inventory.
fn software_keys_of(agent_id: &str, inventory: Option<&pb::Inventory>) -> std::collections::HashSet<Vec<u8>> {
    let packages = inventory.and_then(|i| i.software.as_ref()).map_or(&[][..], |s| s.packages.as_slice());
    packages.iter().map(|p| joined(&[&p.name, &p.version, &p.source, p.arch.as_deref().unwrap_or(""), agent_id])).collect()
}

/// The package name a software index key starts with.
fn name_of_software_key(key: &[u8]) -> String {
    let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end]).into_owned()
}

fn parse_software_key(key: &[u8]) -> Option<SoftwareInstall> {
    let mut parts = key.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned());
    let (name, version, source, arch, agent_id) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    Some(SoftwareInstall { name, version, source, arch: (!arch.is_empty()).then_some(arch), agent_id })
}

/// "Is `b` newer than `a`?" in the package source's own version ordering.
fn newer(source: &str, a: &str, b: &str) -> bool {
    let eco = census_version::Ecosystem::for_source(source);
    census_version::compare(eco, b, a) == std::cmp::Ordering::Greater
}

/// A time as 8 bytes whose byte order is time order.
fn time_key(t: i64) -> [u8; 8] {
    ((t as u64) ^ (1 << 63)).to_be_bytes()
}

fn time_from_key(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    (u64::from_be_bytes(a) ^ (1 << 63)) as i64
}

fn agent_time_key(agent_id: &str, t: i64) -> Vec<u8> {
    let mut k = agent_id.as_bytes().to_vec();
    k.extend_from_slice(&time_key(t));
    k
}

fn change_key(agent_id: &str, t: i64, seq: u64, index: usize) -> Vec<u8> {
    let mut k = agent_time_key(agent_id, t);
    k.extend_from_slice(&seq.to_be_bytes());
    k.extend_from_slice(&u32::try_from(index).unwrap_or(u32::MAX).to_be_bytes());
    k
}

fn bucket_key(agent_id: &str, metric: &str, start: i64) -> Vec<u8> {
    let mut k = agent_id.as_bytes().to_vec();
    k.extend_from_slice(metric.as_bytes());
    k.push(0);
    k.extend_from_slice(&time_key(start));
    k
}

fn bucket_record(b: &Bucket) -> Vec<u8> {
    BucketRecord { schema: RECORD_SCHEMA, count: b.count, sum: b.sum, min: b.min, max: b.max }.encode_to_vec()
}

fn abort(e: Error) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(e)
}

fn tx_decode<M: Message + Default>(bytes: &[u8], what: &str) -> Result<M, ConflictableTransactionError<Error>> {
    decode(bytes, what).map_err(abort)
}

/// The agent's stored inventory record, read from the transaction on first
/// use and kept in `cache` for the rest of the request.
fn stored_inventory<'c>(
    inventory: &TransactionalTree,
    cache: &'c mut Option<Option<InventoryRecord>>,
    agent_id: &str,
) -> Result<Option<&'c InventoryRecord>, ConflictableTransactionError<Error>> {
    if cache.is_none() {
        *cache = Some(inventory.get(agent_id.as_bytes())?.map(|b| tx_decode(&b, "inventory")).transpose()?);
    }
    Ok(cache.as_ref().and_then(Option::as_ref))
}

fn get_agent_tx(agents: &TransactionalTree, agent_id: &str) -> Result<Option<AgentRecord>, ConflictableTransactionError<Error>> {
    agents.get(agent_id.as_bytes())?.map(|b| tx_decode::<AgentRecord>(&b, "agent")).transpose()
}

impl Store for SledStore {
    fn enroll_agent(&self, new: NewAgent) -> Result<AgentRecord> {
        let _writing = self.writing();
        let record = (&self.agents, &self.agent_by_cert, &self.agent_by_host, &self.enroll_secrets).transaction(
            |(agents, by_cert, by_host, secrets)| {
                let record = match get_agent_tx(agents, &new.agent_id)? {
                    Some(mut old) => {
                        // Same host re-enrolling (reinstall, lost state):
                        // keep its id and history, retire the old certificate,
                        // and restart its sequence numbers.
                        by_cert.remove(old.cert_fingerprint.as_slice())?;
                        if !old.previous_cert_fingerprint.is_empty() {
                            by_cert.remove(old.previous_cert_fingerprint.as_slice())?;
                        }
                        old.previous_cert_fingerprint.clear();
                        old.previous_cert_not_after_unix_ms = 0;
                        old.revoked_at_unix_ms = 0;
                        old.cert_not_before_unix_ms = 0;
                        old.cert_fingerprint = new.cert_fingerprint.to_vec();
                        old.cert_not_after_unix_ms = new.cert_not_after_unix_ms;
                        old.hostname = new.hostname.clone();
                        old.agent_version = new.agent_version.clone();
                        old.enrolled_at_unix_ms = new.enrolled_at_unix_ms;
                        old.revoked = false;
                        old.last_seq = 0;
                        old.reports_stored = 0;
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
                        health_dropped_batches: 0,
                        health_dropped_samples: 0,
                        health_samples_stored: 0,
                        reports_stored: 0,
                        previous_cert_fingerprint: Vec::new(),
                        previous_cert_not_after_unix_ms: 0,
                        revoked_at_unix_ms: 0,
                        cert_not_before_unix_ms: 0,
                    },
                };
                agents.insert(record.agent_id.as_bytes(), record.encode_to_vec())?;
                by_cert.insert(&new.cert_fingerprint[..], record.agent_id.as_bytes())?;
                by_host.insert(new.host_uuid.as_bytes(), record.agent_id.as_bytes())?;
                // Checked again here, where the use is counted: a secret
                // expired, revoked or used up since the caller looked at it
                // admits no one. (An unknown secret is the caller's to
                // refuse; secrets are never deleted.)
                if let Some(bytes) = secrets.get(&new.secret_hash[..])? {
                    let mut secret: EnrollmentSecretRecord = tx_decode(&bytes, "enrollment secret")?;
                    if let Some(why) = secret.refusal(new.enrolled_at_unix_ms) {
                        return Err(abort(Error::PermissionDenied(why)));
                    }
                    secret.uses += 1;
                    secrets.insert(&new.secret_hash[..], secret.encode_to_vec())?;
                }
                Ok(record)
            },
        )?;
        self.flush()?;
        self.refresh_host(&record.agent_id, false);
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

    fn renew_certificate(&self, agent_id: &str, presented: &Digest, renewed: &IssuedCertificate) -> Result<AgentRecord> {
        let _writing = self.writing();
        let record = (&self.agents, &self.agent_by_cert).transaction(|(agents, by_cert)| {
            let Some(mut agent) = get_agent_tx(agents, agent_id)? else {
                return Err(abort(Error::NotFound(format!("agent {agent_id} is not enrolled"))));
            };
            if agent.revoked {
                return Err(abort(Error::PermissionDenied(format!("agent {agent_id} has been revoked by an administrator"))));
            }
            if agent.cert_fingerprint == presented[..] {
                // The usual case: the current certificate becomes the
                // previous one, and the one before it stops working.
                if !agent.previous_cert_fingerprint.is_empty() {
                    by_cert.remove(agent.previous_cert_fingerprint.as_slice())?;
                }
                agent.previous_cert_fingerprint = std::mem::take(&mut agent.cert_fingerprint);
                agent.previous_cert_not_after_unix_ms = agent.cert_not_after_unix_ms;
            } else if !agent.previous_cert_fingerprint.is_empty() && agent.previous_cert_fingerprint == presented[..] {
                // The agent still uses its previous certificate: the last
                // renewal never reached it (or it crashed before saving it).
                // That certificate was never used; it is replaced.
                by_cert.remove(agent.cert_fingerprint.as_slice())?;
            } else {
                return Err(abort(Error::Unauthenticated(format!(
                    "this client certificate is no longer registered for agent {agent_id}; enroll the agent again"
                ))));
            }
            agent.cert_fingerprint = renewed.fingerprint.to_vec();
            agent.cert_not_before_unix_ms = renewed.not_before_unix_ms;
            agent.cert_not_after_unix_ms = renewed.not_after_unix_ms;
            by_cert.insert(&renewed.fingerprint[..], agent_id.as_bytes())?;
            agents.insert(agent_id.as_bytes(), agent.encode_to_vec())?;
            Ok(agent)
        })?;
        self.flush()?;
        self.refresh_host(agent_id, false);
        Ok(record)
    }

    fn adopt_certificate(&self, agent_id: &str, certificate: &IssuedCertificate) -> Result<Option<AgentRecord>> {
        let _writing = self.writing();
        let adopted = (&self.agents, &self.agent_by_cert).transaction(|(agents, by_cert)| {
            let Some(mut agent) = get_agent_tx(agents, agent_id)? else { return Ok(None) };
            if agent.revoked {
                return Ok(Some((agent, false)));
            }
            // The enrollment certificate dates from the enrollment; later
            // ones record their own start.
            let newest_known = agent.cert_not_before_unix_ms.max(agent.enrolled_at_unix_ms);
            if certificate.not_before_unix_ms <= newest_known || by_cert.get(&certificate.fingerprint[..])?.is_some() {
                return Ok(None);
            }
            for old in [&agent.cert_fingerprint, &agent.previous_cert_fingerprint] {
                if !old.is_empty() {
                    by_cert.remove(old.as_slice())?;
                }
            }
            agent.previous_cert_fingerprint.clear();
            agent.previous_cert_not_after_unix_ms = 0;
            agent.cert_fingerprint = certificate.fingerprint.to_vec();
            agent.cert_not_before_unix_ms = certificate.not_before_unix_ms;
            agent.cert_not_after_unix_ms = certificate.not_after_unix_ms;
            by_cert.insert(&certificate.fingerprint[..], agent_id.as_bytes())?;
            agents.insert(agent_id.as_bytes(), agent.encode_to_vec())?;
            Ok(Some((agent, true)))
        })?;
        match adopted {
            Some((agent, changed)) => {
                if changed {
                    self.flush()?;
                    self.refresh_host(agent_id, false);
                }
                Ok(Some(agent))
            }
            None => Ok(None),
        }
    }

    fn retire_previous_certificate(&self, agent_id: &str) -> Result<()> {
        let _writing = self.writing();
        let changed = (&self.agents, &self.agent_by_cert).transaction(|(agents, by_cert)| {
            let Some(mut agent) = get_agent_tx(agents, agent_id)? else { return Ok(false) };
            if agent.previous_cert_fingerprint.is_empty() {
                return Ok(false);
            }
            by_cert.remove(agent.previous_cert_fingerprint.as_slice())?;
            agent.previous_cert_fingerprint.clear();
            agent.previous_cert_not_after_unix_ms = 0;
            agents.insert(agent_id.as_bytes(), agent.encode_to_vec())?;
            Ok(true)
        })?;
        if changed {
            self.flush()?;
            self.refresh_host(agent_id, false);
        }
        Ok(())
    }

    fn revoke_agent(&self, agent_id: &str, at_unix_ms: i64) -> Result<(AgentRecord, bool)> {
        let _writing = self.writing();
        let (record, already) = self.agents.transaction(|agents| {
            let Some(mut agent) = get_agent_tx(agents, agent_id)? else {
                return Err(abort(Error::NotFound(format!("no agent with id {agent_id} (`census hosts` lists the agent ids)"))));
            };
            if agent.revoked {
                return Ok((agent, true));
            }
            agent.revoked = true;
            agent.revoked_at_unix_ms = at_unix_ms;
            agents.insert(agent_id.as_bytes(), agent.encode_to_vec())?;
            Ok((agent, false))
        })?;
        if !already {
            self.flush()?;
            self.refresh_host(agent_id, false);
        }
        Ok((record, already))
    }

    fn put_reports(&self, agent_id: &str, reports: &[pb::Report], received_at_unix_ms: i64) -> Result<Ingested> {
        let _writing = self.writing();
        let trees =
            (&self.agents, &self.inventory, &self.host_summary, &self.software, &self.changes, &self.metrics_raw, &self.metrics_dirty);
        let outcome = trees.transaction(|(agents, inventory, summaries, software, changes, raw, dirty)| {
            let Some(mut agent) = get_agent_tx(agents, agent_id)? else {
                return Err(abort(Error::NotFound(format!("agent {agent_id} is not enrolled"))));
            };
            let mut changed = false;
            let mut inventory_changed = false;
            let mut full_inventory_requested = false;
            let mut earliest_sample: Option<i64> = None;
            // The newest sample stored now, for the samples in memory.
            let mut newest_sample: Option<(i64, Vec<u8>)> = None;
            // Package names whose installs on this agent changed: their
            // cached lists follow after the commit.
            let mut touched: std::collections::HashSet<String> = std::collections::HashSet::new();
            let already_stored = agent.last_seq;
            // The agent's stored inventory, decoded at most once per request
            // (a delta and the diff against it both need it): `None` until read.
            let mut stored: Option<Option<InventoryRecord>> = None;
            for report in reports.iter().filter(|r| r.seq > already_stored) {
                changed = true;
                agent.last_seq = report.seq;
                agent.reports_stored += 1;
                agent.last_seen_unix_ms = received_at_unix_ms;
                let new_inventory = match &report.body {
                    Some(pb::report::Body::Heartbeat(hb)) => {
                        if !hb.agent_version.is_empty() {
                            agent.agent_version = hb.agent_version.clone();
                        }
                        None
                    }
                    Some(pb::report::Body::Health(batch)) => {
                        agent.health_dropped_batches = agent.health_dropped_batches.max(batch.dropped_batches_total);
                        agent.health_dropped_samples = agent.health_dropped_samples.max(batch.dropped_samples_total);
                        for sample in &batch.samples {
                            let encoded = sample.encode_to_vec();
                            if newest_sample.as_ref().is_none_or(|(t, _)| *t <= sample.taken_at_unix_ms) {
                                newest_sample = Some((sample.taken_at_unix_ms, encoded.clone()));
                            }
                            raw.insert(agent_time_key(agent_id, sample.taken_at_unix_ms), encoded)?;
                            earliest_sample = Some(earliest_sample.map_or(sample.taken_at_unix_ms, |e| e.min(sample.taken_at_unix_ms)));
                        }
                        agent.health_samples_stored += batch.samples.len() as u64;
                        None
                    }
                    Some(pb::report::Body::Inventory(inv)) => Some(inv.clone()),
                    Some(pb::report::Body::InventoryDelta(delta)) => {
                        let stored = stored_inventory(inventory, &mut stored, agent_id)?;
                        let applied = stored.and_then(|r| crate::inventory_delta::apply(delta, r.inventory.as_ref()?, r.seq));
                        if applied.is_none() {
                            tracing::warn!(
                                seq = report.seq,
                                base_seq = delta.base_seq,
                                stored_seq = stored.map(|r| r.seq),
                                "inventory delta does not apply to the stored inventory; asking for a full snapshot"
                            );
                            full_inventory_requested = true;
                        }
                        applied
                    }
                    None => None,
                };
                let Some(inv) = new_inventory else { continue };
                if let Some(identity) = &inv.identity {
                    agent.hostname = identity.hostname.clone();
                }
                // The software index changes by the difference only: a
                // delta or a daily snapshot of an unchanged host rewrote
                // thousands of index keys before.
                let new_keys = software_keys_of(agent_id, Some(&inv));
                let old = stored_inventory(inventory, &mut stored, agent_id)?;
                let old_keys = software_keys_of(agent_id, old.and_then(|r| r.inventory.as_ref()));
                for key in old_keys.difference(&new_keys) {
                    touched.insert(name_of_software_key(key));
                    software.remove(key.as_slice())?;
                }
                if let Some(old_inv) = old.and_then(|r| r.inventory.as_ref()) {
                    let at = if inv.collected_at_unix_ms > 0 { inv.collected_at_unix_ms } else { received_at_unix_ms };
                    for (i, c) in crate::changes::changes(old_inv, &inv, at, &newer).into_iter().enumerate() {
                        let record = ChangeRecord {
                            schema: RECORD_SCHEMA,
                            at_unix_ms: c.at_unix_ms,
                            kind: c.kind.as_str().to_string(),
                            subject: c.subject,
                            old: c.old,
                            new: c.new,
                            seq: report.seq,
                        };
                        changes.insert(change_key(agent_id, c.at_unix_ms, report.seq, i), record.encode_to_vec())?;
                    }
                }
                for key in new_keys.difference(&old_keys) {
                    touched.insert(name_of_software_key(key));
                    software.insert(key.as_slice(), &[])?;
                }
                let mut record = InventoryRecord { schema: RECORD_SCHEMA, seq: report.seq, received_at_unix_ms, inventory: Some(inv) };
                summaries.insert(agent_id.as_bytes(), summary_of(&mut record).encode_to_vec())?;
                inventory.insert(agent_id.as_bytes(), record.encode_to_vec())?;
                // A later report of this request builds on this one.
                stored = Some(Some(record));
                inventory_changed = true;
            }
            if let Some(t) = earliest_sample {
                // Only an earlier mark is news: most batches land after the
                // last rollup's mark, and an unchanged key is not rewritten.
                let mark = dirty.get(agent_id.as_bytes())?.map(|v| time_from_key(&v));
                if mark.is_none_or(|m| t < m) {
                    dirty.insert(agent_id.as_bytes(), time_key(t).to_vec())?;
                }
            }
            if changed {
                agents.insert(agent_id.as_bytes(), agent.encode_to_vec())?;
            }
            Ok((Ingested { acked_through: agent.last_seq, full_inventory_requested }, changed, inventory_changed, touched, newest_sample))
        })?;
        if outcome.1 {
            self.flush()?;
            self.refresh_host(agent_id, outcome.2);
            if !outcome.3.is_empty() {
                self.refresh_software(agent_id, &outcome.3);
                self.refresh_package_names(&outcome.3);
            }
            if let Some((taken_at, encoded)) = outcome.4 {
                self.latest_samples.observe(agent_id, (taken_at, encoded.into()));
            }
        }
        Ok(outcome.0)
    }

    fn changes(&self, agent_id: Option<&str>, since_unix_ms: i64) -> Result<Vec<(String, ChangeRecord)>> {
        let mut out = Vec::new();
        let ids: Vec<String> = match agent_id {
            Some(id) => vec![id.to_string()],
            None => self.agents.iter().keys().map(|k| k.map(|k| String::from_utf8_lossy(&k).into_owned())).collect::<Result<_, _>>()?,
        };
        for id in ids {
            let from = agent_time_key(&id, since_unix_ms);
            let mut end = id.as_bytes().to_vec();
            end.extend_from_slice(&[0xff; 9]);
            for entry in self.changes.range(from..end) {
                let (_, value) = entry?;
                out.push((id.clone(), decode(&value, "change")?));
            }
        }
        out.sort_by_key(|(_, c): &(String, ChangeRecord)| c.at_unix_ms);
        Ok(out)
    }

    fn health_samples(&self, agent_id: &str, from_unix_ms: i64, to_unix_ms: i64) -> Result<Vec<pb::HealthSample>> {
        let mut out = Vec::new();
        for entry in self.metrics_raw.range(agent_time_key(agent_id, from_unix_ms)..agent_time_key(agent_id, to_unix_ms)) {
            let (_, value) = entry?;
            out.push(decode(&value, "health sample")?);
        }
        Ok(out)
    }

    fn latest_health_sample(&self, agent_id: &str, at_or_before_unix_ms: i64) -> Result<Option<pb::HealthSample>> {
        let newest = self.latest_samples.newest(agent_id, || {
            let mut all = self.metrics_raw.range(agent_time_key(agent_id, i64::MIN)..=agent_time_key(agent_id, i64::MAX));
            let newest = all.next_back().transpose()?;
            Ok(newest.map(|(key, value)| (time_from_key(&key[key.len() - 8..]), std::sync::Arc::from(value.as_ref()))))
        })?;
        match newest {
            None => Ok(None),
            Some((taken_at, encoded)) if taken_at <= at_or_before_unix_ms => Ok(Some(decode(&encoded, "health sample")?)),
            // The newest is later than asked (a clock ahead): from the index.
            Some(_) => self.latest_health_sample_stored(agent_id, at_or_before_unix_ms),
        }
    }

    fn rollups(&self, agent_id: &str, metric: &str, resolution: Resolution, from_unix_ms: i64, to_unix_ms: i64) -> Result<Vec<Bucket>> {
        let tree = match resolution {
            Resolution::FiveMinutes => &self.metrics_5m,
            Resolution::OneHour => &self.metrics_1h,
            Resolution::Raw => return Err(Error::Store("raw samples are not rollups".into())),
        };
        let mut out = Vec::new();
        for entry in tree.range(bucket_key(agent_id, metric, from_unix_ms)..bucket_key(agent_id, metric, to_unix_ms)) {
            let (key, value) = entry?;
            let r: BucketRecord = decode(&value, "rollup")?;
            out.push(Bucket { start_unix_ms: time_from_key(&key[key.len() - 8..]), count: r.count, sum: r.sum, min: r.min, max: r.max });
        }
        Ok(out)
    }

    fn compact_metrics(&self, now_unix_ms: i64, retention: &crate::config::Metrics) -> Result<Compaction> {
        let _writing = self.writing();
        let mut done = Compaction::default();
        let hour = Resolution::OneHour.width_ms();
        for entry in self.metrics_dirty.iter() {
            let (agent, mark) = entry?;
            let agent_id = String::from_utf8_lossy(&agent).into_owned();
            // Whole hours, so every 5-minute bucket of a recomputed hour is fresh.
            let from = metrics::bucket_start(time_from_key(&mark), hour);
            let mut points: std::collections::BTreeMap<String, Vec<(i64, f64)>> = std::collections::BTreeMap::new();
            for sample in self.health_samples(&agent_id, from, i64::MAX)? {
                for (name, v) in metrics::values_of(&sample) {
                    points.entry(name).or_default().push((sample.taken_at_unix_ms, v));
                }
            }
            for (metric, pts) in points {
                let five = metrics::rollup(pts, Resolution::FiveMinutes.width_ms());
                for b in &five {
                    self.metrics_5m.insert(bucket_key(&agent_id, &metric, b.start_unix_ms), bucket_record(b))?;
                }
                // Hours from every stored 5-minute bucket in them, including
                // ones whose raw samples have already expired.
                let stored = self.rollups(&agent_id, &metric, Resolution::FiveMinutes, from, i64::MAX)?;
                let hours = metrics::rollup_buckets(stored, hour);
                for b in &hours {
                    self.metrics_1h.insert(bucket_key(&agent_id, &metric, b.start_unix_ms), bucket_record(b))?;
                }
                done.buckets_written += five.len() + hours.len();
            }
            // Ingest may have lowered the mark meanwhile: then keep it.
            let _ = self.metrics_dirty.compare_and_swap(&agent, Some(&mark), None::<&[u8]>)?;
            done.agents_rolled_up += 1;
        }
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        for (tree, keep) in [
            (&self.metrics_raw, retention.raw_retention),
            (&self.metrics_5m, retention.five_minute_retention),
            (&self.metrics_1h, retention.hourly_retention),
        ] {
            let cutoff = now_unix_ms.saturating_sub(ms(keep));
            // Every key ends with its time; a full scan keeps the layout
            // simple (a time-first index is the next step at fleet scale).
            let mut expired = Vec::new();
            for key in tree.iter().keys() {
                let key = key?;
                if key.len() >= 8 && time_from_key(&key[key.len() - 8..]) < cutoff {
                    expired.push(key);
                }
            }
            for key in expired {
                tree.remove(key)?;
                done.expired += 1;
            }
            if std::ptr::eq(tree, &self.metrics_raw) {
                // Raw samples only: the newest may have been among them.
                self.latest_samples.expire(cutoff);
            }
        }
        self.flush()?;
        Ok(done)
    }

    fn hosts(&self) -> Result<Vec<HostView>> {
        let mut out = Vec::with_capacity(self.agents.len());
        for entry in self.agents.iter() {
            let (key, value) = entry?;
            let agent: AgentRecord = decode(&value, "agent")?;
            let inventory = self.inventory.get(&key)?.map(|b| decode(&b, "inventory")).transpose()?.map(std::sync::Arc::new);
            out.push(HostView { agent, inventory });
        }
        Ok(out)
    }

    fn host(&self, agent_id: &str) -> Result<Option<HostView>> {
        let Some(value) = self.agents.get(agent_id.as_bytes())? else { return Ok(None) };
        let agent = decode(&value, "agent")?;
        let inventory = self.inventory.get(agent_id.as_bytes())?.map(|b| decode(&b, "inventory")).transpose()?.map(std::sync::Arc::new);
        Ok(Some(HostView { agent, inventory }))
    }

    fn host_summaries(&self) -> Result<Vec<std::sync::Arc<HostView>>> {
        Ok(self.host_snapshot()?.to_vec())
    }

    fn host_snapshot(&self) -> Result<std::sync::Arc<Vec<std::sync::Arc<HostView>>>> {
        Ok(self.host_snapshot_at()?.0)
    }

    fn agents(&self) -> Result<Vec<AgentRecord>> {
        self.agents.iter().values().map(|value| decode(&value?, "agent")).collect()
    }

    fn size_on_disk(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }

    fn software_installs(&self, name: &str) -> Result<std::sync::Arc<Vec<SoftwareInstall>>> {
        self.software_names.installs(name, || {
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
        })
    }

    fn software_names(&self, prefix: &str) -> Result<Vec<String>> {
        self.package_names.with_prefix(prefix, || {
            // Skip scan: after reading a name, seek past every key of it
            // (the name, the NUL separator, anything) to the next name.
            let mut names = Vec::new();
            let mut from = Vec::new();
            while let Some((key, _)) = self.software.range(from.as_slice()..).next().transpose()? {
                let name = name_of_software_key(&key);
                // Keys of `name` are `name 0 ...`: the first key after all
                // of them is at or above `name 1`.
                from = name.as_bytes().to_vec();
                from.push(1);
                names.push(name);
            }
            Ok(names)
        })
    }

    fn software_listing(&self, name: &str) -> Result<std::sync::Arc<Vec<crate::software::ListedVersion>>> {
        // The names and their generation are taken together: a rename
        // after this leaves the listing stamped as stale.
        let (hosts, generation) = self.host_snapshot_at()?;
        let installs = self.software_installs(name)?;
        if let Some(kept) = self.software_names.listing(name, &installs, generation) {
            return Ok(kept);
        }
        let names: std::collections::HashMap<&str, &str> =
            hosts.iter().map(|h| (h.agent.agent_id.as_str(), h.agent.hostname.as_str())).collect();
        let listing = std::sync::Arc::new(crate::software::listing(&installs, |id| names.get(id).copied()));
        self.software_names.keep_listing(name, &installs, generation, std::sync::Arc::clone(&listing));
        Ok(listing)
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
        let _writing = self.writing();
        self.admin_tokens.insert(&hash[..], token.encode_to_vec())?;
        self.flush()
    }

    fn admin_token(&self, hash: &Digest) -> Result<Option<TokenRecord>> {
        self.admin_tokens.get(&hash[..])?.map(|b| decode(&b, "admin token")).transpose()
    }

    fn put_enrollment_secret(&self, hash: &Digest, secret: &EnrollmentSecretRecord) -> Result<()> {
        let _writing = self.writing();
        self.enroll_secrets.insert(&hash[..], secret.encode_to_vec())?;
        self.flush()
    }

    fn enrollment_secret(&self, hash: &Digest) -> Result<Option<EnrollmentSecretRecord>> {
        self.enroll_secrets.get(&hash[..])?.map(|b| decode(&b, "enrollment secret")).transpose()
    }

    fn admin_tokens(&self) -> Result<Vec<TokenRecord>> {
        self.admin_tokens.iter().values().map(|v| decode(&v?, "admin token")).collect()
    }

    fn revoke_admin_token(&self, id: &str) -> Result<(TokenRecord, bool)> {
        let _one_at_a_time = self.token_revocation.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _writing = self.writing();
        let mut found = None;
        let mut active_admins = 0;
        for entry in self.admin_tokens.iter() {
            let (key, value) = entry?;
            let record: TokenRecord = decode(&value, "admin token")?;
            if !record.revoked && record.role == "admin" {
                active_admins += 1;
            }
            if record.id == id {
                found = Some((key, record));
            }
        }
        let (key, mut record) = found.ok_or_else(|| Error::NotFound(format!("no admin token {id} (`census tokens list` shows them)")))?;
        if record.revoked {
            return Ok((record, true));
        }
        if record.role == "admin" && active_admins <= 1 {
            return Err(Error::FailedPrecondition(format!(
                "token {id} is the last active admin token: revoking it would leave no one able to manage tokens online; \
                 create another admin token first (census tokens create --role admin)"
            )));
        }
        record.revoked = true;
        self.admin_tokens.insert(key, record.encode_to_vec())?;
        self.flush()?;
        Ok((record, false))
    }

    fn enrollment_secrets(&self) -> Result<Vec<EnrollmentSecretRecord>> {
        self.enroll_secrets.iter().values().map(|v| decode(&v?, "enrollment secret")).collect()
    }

    fn revoke_enrollment_secret(&self, id: &str) -> Result<(EnrollmentSecretRecord, bool)> {
        let _writing = self.writing();
        let found = self
            .enroll_secrets
            .iter()
            .map(|entry| -> Result<_> {
                let (key, value) = entry?;
                Ok((key, decode::<EnrollmentSecretRecord>(&value, "enrollment secret")?))
            })
            .find(|r| r.as_ref().map_or(true, |(_, record)| record.id == id))
            .transpose()?;
        let (key, _) = found.ok_or_else(|| Error::NotFound(format!("no enrollment secret {id} (`census secrets list` shows them)")))?;
        // Read and written in one transaction: an enrollment counting a use
        // of the secret meanwhile is neither lost nor let through after.
        let result = self.enroll_secrets.transaction(|tree| {
            let bytes = tree.get(&key)?.ok_or_else(|| abort(Error::NotFound(format!("enrollment secret {id} vanished"))))?;
            let mut record: EnrollmentSecretRecord = tx_decode(&bytes, "enrollment secret")?;
            if record.revoked {
                return Ok((record, true));
            }
            record.revoked = true;
            tree.insert(&key, record.encode_to_vec())?;
            Ok((record, false))
        })?;
        self.flush()?;
        Ok(result)
    }

    fn append_audit(&self, entry: &AuditRecord) -> Result<()> {
        let _writing = self.writing();
        let mut key = time_key(entry.at_unix_ms).to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        self.audit.insert(key, entry.encode_to_vec())?;
        self.flush()
    }

    fn audit_entries(&self, since_unix_ms: i64, keep: &dyn Fn(&AuditRecord) -> bool, limit: usize) -> Result<Vec<AuditRecord>> {
        let mut out = Vec::new();
        for entry in self.audit.range(time_key(since_unix_ms).to_vec()..).rev() {
            if out.len() >= limit {
                break;
            }
            let (_, value) = entry?;
            let record: AuditRecord = decode(&value, "audit entry")?;
            if keep(&record) {
                out.push(record);
            }
        }
        Ok(out)
    }

    fn prune_audit(&self, before_unix_ms: i64) -> Result<usize> {
        let _writing = self.writing();
        let mut pruned = 0;
        for key in self.audit.range(..time_key(before_unix_ms).to_vec()).keys() {
            self.audit.remove(key?)?;
            pruned += 1;
        }
        if pruned > 0 {
            self.flush()?;
        }
        Ok(pruned)
    }

    fn load_alerts(&self) -> Result<StoredAlerts> {
        let alerts = self.alerts.iter().values().map(|v| from_json::<Alert>(&v?, "alert")).collect::<Result<Vec<_>>>()?;
        let silences = match self.alert_meta.get("silences")? {
            Some(v) => from_json::<Vec<Silence>>(&v, "silence list")?,
            None => Vec::new(),
        };
        let next_sequence = self.alert_meta.get("next_sequence")?.map(|v| u64_of(&v)).unwrap_or(0);
        Ok(StoredAlerts { alerts, silences, next_sequence })
    }

    fn commit_alerts(&self, commit: &AlertCommit, mut enqueue: Vec<OutboxEntry>) -> Result<Vec<u64>> {
        let _writing = self.writing();
        // Ids come from sled's persistent monotonic counter, outside the
        // transaction (which may run more than once).
        for entry in &mut enqueue {
            entry.id = self.db.generate_id()?;
        }
        let alerts =
            commit.upsert.iter().map(|a| Ok((a.fingerprint.as_str().as_bytes().to_vec(), to_json(a)?))).collect::<Result<Vec<_>>>()?;
        let entries = enqueue.iter().map(|e| Ok((e.id, pending_key(&e.sink, e.id), to_json(e)?))).collect::<Result<Vec<_>>>()?;
        let silences = to_json(&commit.silences)?;
        (&self.alerts, &self.alert_meta, &self.outbox, &self.outbox_pending).transaction(|(tx_alerts, meta, outbox, pending)| {
            for (key, value) in &alerts {
                tx_alerts.insert(key.as_slice(), value.as_slice())?;
            }
            for fp in &commit.remove {
                tx_alerts.remove(fp.as_str().as_bytes())?;
            }
            meta.insert("silences", silences.as_slice())?;
            meta.insert("next_sequence", &commit.next_sequence.to_be_bytes())?;
            for (id, pending_key, value) in &entries {
                outbox.insert(&id.to_be_bytes(), value.as_slice())?;
                pending.insert(pending_key.as_slice(), &[])?;
            }
            Ok::<_, ConflictableTransactionError<Error>>(())
        })?;
        self.flush()?;
        Ok(enqueue.iter().map(|e| e.id).collect())
    }

    fn api_rules(&self) -> Result<Vec<RuleSpec>> {
        self.api_rules.iter().values().map(|v| from_json(&v?, "rule")).collect()
    }

    fn put_api_rule(&self, spec: &RuleSpec) -> Result<()> {
        let _writing = self.writing();
        self.api_rules.insert(spec.name.as_bytes(), to_json(spec)?)?;
        self.flush()
    }

    fn delete_api_rule(&self, name: &str) -> Result<bool> {
        let _writing = self.writing();
        let existed = self.api_rules.remove(name.as_bytes())?.is_some();
        self.flush()?;
        Ok(existed)
    }

    fn outbox_head(&self, sink: &str) -> Result<Option<OutboxEntry>> {
        let Some((key, _)) = self.outbox_pending.scan_prefix(sink_prefix(sink)).next().transpose()? else { return Ok(None) };
        let id = u64_of(&key[key.len() - 8..]);
        self.outbox_entry(id)
    }

    fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>> {
        self.outbox.get(id.to_be_bytes())?.map(|v| from_json(&v, "outbox entry")).transpose()
    }

    fn update_outbox_entry(&self, entry: &OutboxEntry) -> Result<()> {
        let _writing = self.writing();
        let value = to_json(entry)?;
        let pending_key = pending_key(&entry.sink, entry.id);
        (&self.outbox, &self.outbox_pending).transaction(|(outbox, pending)| {
            outbox.insert(&entry.id.to_be_bytes(), value.as_slice())?;
            if entry.state == DeliveryState::Pending {
                pending.insert(pending_key.as_slice(), &[])?;
            } else {
                pending.remove(pending_key.as_slice())?;
            }
            Ok::<_, ConflictableTransactionError<Error>>(())
        })?;
        self.flush()
    }

    fn outbox_entries(&self, state: Option<DeliveryState>, sink: Option<&str>, limit: usize) -> Result<Vec<OutboxEntry>> {
        let mut found = Vec::new();
        for item in self.outbox.iter().rev() {
            let (_, value) = item?;
            let entry: OutboxEntry = from_json(&value, "outbox entry")?;
            if state.is_some_and(|s| s != entry.state) || sink.is_some_and(|s| s != entry.sink) {
                continue;
            }
            found.push(entry);
            if found.len() >= limit {
                break;
            }
        }
        Ok(found)
    }

    fn outbox_depth(&self) -> Result<std::collections::BTreeMap<String, usize>> {
        let mut depth = std::collections::BTreeMap::new();
        for key in self.outbox_pending.iter().keys() {
            let key = key?;
            let sink = String::from_utf8_lossy(&key[..key.len().saturating_sub(9)]).into_owned();
            *depth.entry(sink).or_insert(0) += 1;
        }
        Ok(depth)
    }

    fn purge_outbox(&self, delivered_before_unix_ms: i64) -> Result<usize> {
        let _writing = self.writing();
        let mut purged = 0;
        for item in self.outbox.iter() {
            let (key, value) = item?;
            let entry: OutboxEntry = from_json(&value, "outbox entry")?;
            if entry.state == DeliveryState::Delivered && entry.delivered_at_unix_ms.is_some_and(|t| t < delivered_before_unix_ms) {
                self.outbox.remove(key)?;
                purged += 1;
            }
        }
        if purged > 0 {
            self.flush()?;
        }
        Ok(purged)
    }

    fn ticket_of(&self, sink: &str, fingerprint: &str) -> Result<Option<String>> {
        Ok(self.tickets.get(joined(&[sink, fingerprint]))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn link_ticket(&self, sink: &str, ticket: &str, fingerprints: &[String]) -> Result<()> {
        let _writing = self.writing();
        (&self.tickets, &self.ticket_members).transaction(|(tickets, members)| {
            for fp in fingerprints {
                tickets.insert(joined(&[sink, fp]), ticket.as_bytes())?;
                members.insert(joined(&[sink, ticket, fp]), &[])?;
            }
            Ok::<_, ConflictableTransactionError<Error>>(())
        })?;
        self.flush()
    }

    fn unlink_ticket(&self, sink: &str, ticket: &str, fingerprints: &[String]) -> Result<()> {
        let _writing = self.writing();
        (&self.tickets, &self.ticket_members).transaction(|(tickets, members)| {
            for fp in fingerprints {
                tickets.remove(joined(&[sink, fp]))?;
                members.remove(joined(&[sink, ticket, fp]))?;
            }
            Ok::<_, ConflictableTransactionError<Error>>(())
        })?;
        self.flush()
    }

    fn ticket_members(&self, sink: &str, ticket: &str) -> Result<Vec<String>> {
        let mut prefix = joined(&[sink, ticket]);
        prefix.push(0);
        self.ticket_members.scan_prefix(&prefix).keys().map(|k| Ok(String::from_utf8_lossy(&k?[prefix.len()..]).into_owned())).collect()
    }

    fn export(&self, sink: &mut dyn FnMut(DumpItem) -> Result<()>) -> Result<DumpSummary> {
        let _exclusive = self.gate.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Every id handed out so far is at most this one.
        let floor = self.db.generate_id()?.saturating_add(1);
        sink(DumpItem::IdFloor(floor))?;
        let mut summary = DumpSummary::default();
        let mut names = self.db.tree_names();
        names.sort();
        for name in names {
            let tree = self.db.open_tree(&name)?;
            sink(DumpItem::Tree(name.to_vec()))?;
            summary.trees += 1;
            for entry in tree.iter() {
                let (key, value) = entry?;
                sink(DumpItem::Entry(key.to_vec(), value.to_vec()))?;
                summary.entries += 1;
            }
        }
        Ok(summary)
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Store(format!("encoding a record: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Store(format!("corrupt {what} record: {e}")))
}

fn u64_of(bytes: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = bytes.len().min(8);
    a[8 - n..].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(a)
}

fn sink_prefix(sink: &str) -> Vec<u8> {
    let mut k = sink.as_bytes().to_vec();
    k.push(0);
    k
}

fn pending_key(sink: &str, id: u64) -> Vec<u8> {
    let mut k = sink_prefix(sink);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Parts joined by NUL (none of them contains one).
fn joined(parts: &[&str]) -> Vec<u8> {
    parts.join("\0").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::test_agent as new_agent;

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
        assert_eq!(store.put_reports("a1", &[heartbeat(1), heartbeat(2)], 10).expect("put").acked_through, 2);
        // A retry of 2 plus a new 3: 2 is skipped, 3 stored.
        assert_eq!(store.put_reports("a1", &[heartbeat(2), heartbeat(3)], 20).expect("put").acked_through, 3);
        // A pure retry changes nothing, not even last_seen.
        assert_eq!(store.put_reports("a1", &[heartbeat(3)], 30).expect("put").acked_through, 3);
        let host = store.host("a1").expect("get").expect("exists");
        assert_eq!(host.agent.last_seq, 3);
        assert_eq!(host.agent.reports_stored, 3, "each report counted once");
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
    fn renewal_keeps_at_most_two_certificates_and_the_first_use_retires_the_old_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
        let works = |fp: u8| store.agent_by_certificate(&[fp; 32]).expect("lookup").is_some();

        let issued = |fp: u8, at: i64| IssuedCertificate { fingerprint: [fp; 32], not_before_unix_ms: at, not_after_unix_ms: at + 1_000 };
        let renewed = store.renew_certificate("a1", &[1; 32], &issued(2, 1_000)).expect("renew");
        assert_eq!((renewed.cert_fingerprint, renewed.previous_cert_fingerprint), (vec![2; 32], vec![1; 32]));
        assert_eq!((renewed.cert_not_before_unix_ms, renewed.cert_not_after_unix_ms), (1_000, 2_000));
        assert!(works(1) && works(2), "both work until the new one is used");

        // The answer was lost: the agent asks again with its old certificate.
        store.renew_certificate("a1", &[1; 32], &issued(3, 2_000)).expect("renew again");
        assert!(works(1) && !works(2) && works(3), "the unused certificate is replaced");

        store.retire_previous_certificate("a1").expect("first use of the new one");
        assert!(!works(1) && works(3));
        store.retire_previous_certificate("a1").expect("nothing left to retire");

        let err = store.renew_certificate("a1", &[1; 32], &issued(4, 3_000)).expect_err("a retired certificate");
        assert!(matches!(err, Error::Unauthenticated(_)), "{err}");

        let (revoked, already) = store.revoke_agent("a1", 5_000).expect("revoke");
        assert!(revoked.revoked && !already);
        assert_eq!(revoked.revoked_at_unix_ms, 5_000);
        let (_, already) = store.revoke_agent("a1", 6_000).expect("revoke again");
        assert!(already, "revoking twice changes nothing");
        assert_eq!(store.host("a1").expect("get").expect("host").agent.revoked_at_unix_ms, 5_000);
        let still_known = store.agent_by_certificate(&[3; 32]).expect("lookup").expect("known, so refused as revoked");
        assert!(still_known.revoked);
        let err = store.renew_certificate("a1", &[3; 32], &issued(4, 3_000)).expect_err("revoked");
        assert!(matches!(err, Error::PermissionDenied(_)), "{err}");
        assert!(matches!(store.revoke_agent("nobody", 1), Err(Error::NotFound(_))));

        // Enrolling the host again (with a secret) is the way back.
        let again = store.enroll_agent(new_agent("a1", "u1", 5)).expect("re-enroll");
        assert!(!again.revoked && again.revoked_at_unix_ms == 0 && again.previous_cert_fingerprint.is_empty());
        assert!(!works(3) && works(5));
    }

    #[test]
    fn only_a_certificate_newer_than_every_known_one_is_adopted() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        // Enrolled at 1 (new_agent) with certificate 1.
        let issued = |fp: u8, at: i64| IssuedCertificate { fingerprint: [fp; 32], not_before_unix_ms: at, not_after_unix_ms: at + 1_000 };
        assert_eq!(store.adopt_certificate("nobody", &issued(7, 50)).expect("adopt"), None, "unknown agent");
        store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
        assert_eq!(store.adopt_certificate("a1", &issued(7, 0)).expect("adopt"), None, "older than the enrollment");
        store.renew_certificate("a1", &[1; 32], &issued(2, 100)).expect("renew");
        assert_eq!(store.adopt_certificate("a1", &issued(7, 50)).expect("adopt"), None, "older than the renewal");
        assert_eq!(store.adopt_certificate("a1", &issued(2, 500)).expect("adopt"), None, "a known one is not adopted again");

        // Issued after what the store knows (it was restored from a backup).
        let adopted = store.adopt_certificate("a1", &issued(8, 200)).expect("adopt").expect("newer");
        assert_eq!((adopted.cert_fingerprint, adopted.previous_cert_fingerprint), (vec![8; 32], Vec::new()));
        assert!(store.agent_by_certificate(&[8; 32]).expect("lookup").is_some());
        assert!(
            store.agent_by_certificate(&[2; 32]).expect("lookup").is_none()
                && store.agent_by_certificate(&[1; 32]).expect("lookup").is_none()
        );

        store.revoke_agent("a1", 300).expect("revoke");
        let revoked = store.adopt_certificate("a1", &issued(9, 400)).expect("adopt").expect("returned to be refused");
        assert!(revoked.revoked && revoked.cert_fingerprint == vec![8; 32], "a revoked agent adopts nothing");
    }

    #[test]
    fn an_imported_dump_is_the_same_store_and_never_reuses_an_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let (source, target) = (dir.path().join("source"), dir.path().join("target"));
        let mut items = Vec::new();
        let old_ids = {
            let store = SledStore::open(&source).expect("open");
            store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
            store.put_reports("a1", &[heartbeat(1), inventory_with(2, &[("bash", "5.2")])], 10).expect("put");
            let ids = store
                .commit_alerts(
                    &AlertCommit::default(),
                    vec![OutboxEntry::new("rt", notification("k1"), 10), OutboxEntry::new("rt", notification("k2"), 10)],
                )
                .expect("commit");
            store
                .export(&mut |i| {
                    items.push(i);
                    Ok(())
                })
                .expect("export");
            ids
        };
        assert!(matches!(items[0], DumpItem::IdFloor(f) if f > old_ids[1]), "{:?}", items[0]);
        let summary = import(&target, &mut items.clone().into_iter().map(Ok)).expect("import");
        assert_eq!(summary.entries, items.iter().filter(|i| matches!(i, DumpItem::Entry(..))).count() as u64);

        let store = SledStore::open(&target).expect("open restored");
        assert_eq!(store.host("a1").expect("get").expect("host").agent.last_seq, 2);
        assert_eq!(store.software_installs("bash").expect("index").len(), 1);
        let new_id = store.commit_alerts(&AlertCommit::default(), vec![OutboxEntry::new("rt", notification("k3"), 20)]).expect("commit")[0];
        assert!(new_id > old_ids[1], "a new outbox id ({new_id}) above the restored ones ({old_ids:?})");
        assert_eq!(store.outbox_entries(None, None, 10).expect("list").len(), 3, "no restored entry overwritten");
        drop(store);
        // And again after a restart, with sled's usual id interval.
        let store = SledStore::open(&target).expect("reopen");
        let later = store.commit_alerts(&AlertCommit::default(), vec![OutboxEntry::new("rt", notification("k4"), 30)]).expect("commit")[0];
        assert!(later > new_id);

        let err = import(&target, &mut std::iter::empty()).expect_err("not into an existing store");
        assert!(matches!(err, Error::AlreadyInitialised(_) | Error::Store(_)), "{err}");
    }

    #[test]
    fn an_export_sees_no_write_half_done() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = std::sync::Arc::new(SledStore::open(dir.path()).expect("open"));
        store.enroll_agent(new_agent(AGENT, "u1", 1)).expect("enroll");
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let written = std::sync::Arc::new(AtomicU64::new(0));
        let writer = {
            let (store, stop, written) = (std::sync::Arc::clone(&store), std::sync::Arc::clone(&stop), std::sync::Arc::clone(&written));
            std::thread::spawn(move || {
                let mut seq = 0;
                while !stop.load(Ordering::Relaxed) {
                    seq += 1;
                    let sample = pb::HealthSample { taken_at_unix_ms: seq as i64, ..Default::default() };
                    let batch = pb::HealthBatch { samples: vec![sample], ..Default::default() };
                    let report = pb::Report { seq, created_at_unix_ms: 0, body: Some(pb::report::Body::Health(batch)) };
                    store.put_reports(AGENT, &[report], 1).expect("put");
                    written.store(seq, Ordering::Relaxed);
                }
            })
        };
        // Each report writes the agent record (its sample count) and one
        // raw sample, in different trees: a dump holds both or neither.
        for _ in 0..20 {
            // Let the writer get in between two exports.
            let seen = written.load(Ordering::Relaxed);
            while written.load(Ordering::Relaxed) == seen {
                assert!(!writer.is_finished(), "the writer stopped");
                std::thread::yield_now();
            }
            let (mut tree, mut stored, mut samples) = (Vec::new(), None, 0u64);
            store
                .export(&mut |item| {
                    match item {
                        DumpItem::Tree(name) => tree = name,
                        DumpItem::Entry(key, value) if tree == b"agents" => {
                            stored = Some(decode::<AgentRecord>(&value, "agent").expect("agent").health_samples_stored);
                            assert_eq!(key, AGENT.as_bytes());
                        }
                        DumpItem::Entry(..) if tree == b"metrics_raw" => samples += 1,
                        _ => {}
                    }
                    Ok(())
                })
                .expect("export");
            assert_eq!(stored, Some(samples), "the agent's count and its samples come from one point in time");
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().expect("writer");
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
                .map(|(n, v)| pb::Package {
                    name: n.to_string(),
                    version: v.to_string(),
                    source: "dpkg".into(),
                    arch: Some("amd64".into()),
                    ..Default::default()
                })
                .collect(),
        };
        pb::Report {
            seq,
            created_at_unix_ms: 0,
            body: Some(pb::report::Body::Inventory(pb::Inventory { software: Some(software), ..Default::default() })),
        }
    }

    #[test]
    fn a_schema_1_store_gets_its_host_summaries_when_opened() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = SledStore::open(dir.path()).expect("open");
            store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
            store.put_reports("a1", &[inventory_with(1, &[("openssl", "3.0.11-1")])], 1).expect("put");
            // What a schema-1 collector leaves: no summaries.
            store.host_summary.clear().expect("clear");
            store.db.open_tree("meta").expect("meta").insert("schema_version", &1u32.to_be_bytes()).expect("version");
            store.db.flush().expect("flush");
        }
        let store = reopening(|| SledStore::open(dir.path())).expect("reopen");
        let hosts = store.host_summaries().expect("summaries");
        assert_eq!(hosts.len(), 1);
        let inv = hosts[0].inventory.as_ref().and_then(|r| r.inventory.as_ref()).expect("a summary");
        assert!(inv.software.as_ref().expect("the section is kept").packages.is_empty());
        let version = store.db.open_tree("meta").expect("meta").get("schema_version").expect("get").expect("version");
        assert_eq!(version.as_ref(), &SCHEMA_VERSION.to_be_bytes()[..]);
    }

    #[test]
    fn software_index_follows_the_latest_inventory() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
        store.enroll_agent(new_agent("a2", "u2", 2)).expect("enroll");
        store.put_reports("a1", &[inventory_with(1, &[("openssl", "3.0.11-1"), ("curl", "7.88")])], 1).expect("put");
        store.put_reports("a2", &[inventory_with(1, &[("openssl", "3.0.13-1"), ("openssl-dev", "3.0.13-1")])], 1).expect("put");
        let mut openssl = store.software_installs("openssl").expect("query").to_vec();
        openssl.sort_by(|a, b| a.agent_id.cmp(&b.agent_id));
        assert_eq!(openssl.len(), 2, "a prefix of another name (openssl-dev) is not matched");
        assert_eq!((openssl[0].agent_id.as_str(), openssl[0].version.as_str()), ("a1", "3.0.11-1"));
        assert_eq!(openssl[0].arch.as_deref(), Some("amd64"));
        // Both names are now held in memory: the writes below must update them.
        assert_eq!(store.software_installs("curl").expect("q").len(), 1);
        // a1 upgrades openssl and removes curl: the index follows.
        store.put_reports("a1", &[inventory_with(2, &[("openssl", "3.0.13-1")])], 2).expect("put");
        let versions: Vec<String> = store.software_installs("openssl").expect("q").iter().map(|i| i.version.clone()).collect();
        assert_eq!(versions, vec!["3.0.13-1".to_string(), "3.0.13-1".to_string()]);
        assert!(store.software_installs("curl").expect("q").is_empty());
    }

    #[test]
    fn software_names_lists_each_name_once_under_a_prefix() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent("a1", "u1", 1)).expect("enroll");
        store.enroll_agent(new_agent("a2", "u2", 2)).expect("enroll");
        store.put_reports("a1", &[inventory_with(1, &[("openssl", "3.0.11-1"), ("curl", "7.88"), ("telnet", "0.17")])], 1).expect("put");
        let a2 = [("openssl", "3.0.13-1"), ("openssl-dev", "3.0.13-1"), ("telnetd", "0.17"), ("open", "1")];
        store.put_reports("a2", &[inventory_with(1, &a2)], 1).expect("put");
        let all = store.software_names("").expect("names");
        assert_eq!(all, ["curl", "open", "openssl", "openssl-dev", "telnet", "telnetd"], "each name once, in byte order");
        assert_eq!(store.software_names("openssl").expect("names"), ["openssl", "openssl-dev"]);
        assert_eq!(store.software_names("telnet").expect("names"), ["telnet", "telnetd"]);
        assert!(store.software_names("zzz").expect("names").is_empty());
        // a1 removes telnet: the index, and so the names, follow.
        store.put_reports("a1", &[inventory_with(2, &[("openssl", "3.0.11-1")])], 2).expect("put");
        assert_eq!(store.software_names("t").expect("names"), ["telnetd"]);
        // a2 drops openssl-dev and open (on no other host) and adds tmux.
        store.put_reports("a2", &[inventory_with(2, &[("telnetd", "0.17"), ("tmux", "3.3")])], 2).expect("put");
        assert_eq!(store.software_names("").expect("names"), ["openssl", "telnetd", "tmux"]);
        // A reopened store (nothing in memory) lists the same from the index.
        drop(store);
        let store = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(store.software_names("").expect("names"), ["openssl", "telnetd", "tmux"]);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let store = SledStore::open(dir.path()).expect("open");
            store.db.open_tree("meta").expect("meta").insert("schema_version", &99u32.to_be_bytes()).expect("set");
            store.flush().expect("flush");
        }
        let err = reopening(|| SledStore::open(dir.path())).err().expect("must refuse");
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
        let store = reopening(|| SledStore::open(dir.path())).expect("reopen");
        assert_eq!(store.host("a1").expect("get").expect("exists").agent.last_seq, 7);
    }

    const AGENT: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "0123456789abcdef0123456789abcdee";

    fn delta(seq: u64, base_seq: u64, added: &[(&str, &str)], removed: &[(&str, &str)]) -> pb::Report {
        let pkgs = |list: &[(&str, &str)]| -> Vec<pb::Package> {
            list.iter()
                .map(|(n, v)| pb::Package {
                    name: n.to_string(),
                    version: v.to_string(),
                    source: "dpkg".into(),
                    arch: Some("amd64".into()),
                    ..Default::default()
                })
                .collect()
        };
        let d = pb::InventoryDelta {
            base_seq,
            collected_at_unix_ms: 1_000 + seq as i64,
            changed: Some(pb::Inventory::default()),
            packages_added: pkgs(added),
            packages_removed: pkgs(removed),
            ..Default::default()
        };
        pb::Report { seq, created_at_unix_ms: 0, body: Some(pb::report::Body::InventoryDelta(d)) }
    }

    #[test]
    fn deltas_apply_on_their_base_record_changes_and_otherwise_ask_for_a_snapshot() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent(AGENT, "u1", 1)).expect("enroll");
        let first = store.put_reports(AGENT, &[delta(1, 0, &[("vim", "9")], &[])], 10).expect("put");
        assert_eq!((first.acked_through, first.full_inventory_requested), (1, true), "no base: ask for a snapshot");
        store.put_reports(AGENT, &[inventory_with(2, &[("bash", "5.1"), ("openssl", "3.0.2")])], 20).expect("put");
        let ok =
            store.put_reports(AGENT, &[delta(3, 2, &[("openssl", "3.0.13"), ("vim", "9")], &[("openssl", "3.0.2")])], 30).expect("put");
        assert!(!ok.full_inventory_requested);
        let stale = store.put_reports(AGENT, &[delta(4, 2, &[], &[("vim", "9")])], 40).expect("put");
        assert!(stale.full_inventory_requested, "base 2 is no longer what is stored");
        let inv = store.host(AGENT).expect("get").expect("host").inventory.expect("inv");
        assert_eq!(inv.seq, 3);
        let names: Vec<_> = std::sync::Arc::unwrap_or_clone(inv)
            .inventory
            .expect("inv")
            .software
            .expect("sw")
            .packages
            .iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect();
        assert_eq!(names, ["bash=5.1", "openssl=3.0.13", "vim=9"]);
        let changes: Vec<_> = store.changes(Some(AGENT), 0).expect("changes").into_iter().map(|(_, c)| (c.kind, c.old, c.new)).collect();
        assert_eq!(
            changes,
            [
                ("software.upgraded".to_string(), "3.0.2".to_string(), "3.0.13".to_string()),
                ("software.installed".into(), "".into(), "9".into())
            ]
        );
        assert!(store.changes(None, 1_004).expect("since").is_empty(), "since filters by time");
        assert_eq!(store.software_installs("vim").expect("index").len(), 1, "index follows applied deltas");
    }

    #[test]
    fn health_is_stored_once_rolled_up_and_expired() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent(AGENT, "u1", 1)).expect("enroll");
        let minute = 60_000;
        let batch = |seq: u64, start: i64| pb::Report {
            seq,
            created_at_unix_ms: 0,
            body: Some(pb::report::Body::Health(pb::HealthBatch {
                samples: (0..4)
                    .map(|i| pb::HealthSample { taken_at_unix_ms: start + i * 15_000, cpu_percent: Some(i as f64), ..Default::default() })
                    .collect(),
                dropped_batches_total: seq,
                dropped_samples_total: seq * 4,
            })),
        };
        let day = 86_400_000;
        store.put_reports(AGENT, &[batch(1, 10 * day), batch(2, 10 * day + minute)], 1).expect("put");
        store.put_reports(AGENT, &[batch(2, 10 * day + minute)], 1).expect("retry");
        let agent = store.host(AGENT).expect("get").expect("host").agent;
        assert_eq!((agent.health_samples_stored, agent.health_dropped_batches, agent.health_dropped_samples), (8, 2, 8));
        assert_eq!(store.health_samples(AGENT, 0, i64::MAX).expect("raw").len(), 8);

        let retention = crate::config::Metrics::default();
        let done = store.compact_metrics(10 * day + 5 * minute, &retention).expect("compact");
        assert_eq!(done.agents_rolled_up, 1);
        let five = store.rollups(AGENT, "cpu", Resolution::FiveMinutes, 0, i64::MAX).expect("5m");
        assert_eq!(five.len(), 1);
        assert_eq!((five[0].count, five[0].sum, five[0].max), (8, 12.0, 3.0));
        // A late sample in the same hour is rolled up by the next round.
        store.put_reports(AGENT, &[batch(3, 10 * day + 2 * minute)], 1).expect("late");
        store.compact_metrics(10 * day + 6 * minute, &retention).expect("compact");
        let hour = store.rollups(AGENT, "cpu", Resolution::OneHour, 0, i64::MAX).expect("1h");
        assert_eq!(hour[0].count, 12);
        assert_eq!(store.compact_metrics(10 * day + 7 * minute, &retention).expect("idle").agents_rolled_up, 0, "nothing dirty");
        // Eight days later the raw samples are gone, the rollups stay.
        store.compact_metrics(18 * day + 7 * minute, &retention).expect("expire");
        assert!(store.health_samples(AGENT, 0, i64::MAX).expect("raw").is_empty());
        assert_eq!(store.rollups(AGENT, "cpu", Resolution::OneHour, 0, i64::MAX).expect("1h").len(), 1);
    }

    fn notification(key: &str) -> crate::alert::engine::Notification {
        crate::alert::engine::Notification {
            idempotency_key: key.into(),
            transition: crate::alert::engine::Transition::Firing,
            rule: "disk".into(),
            severity: crate::alert::rules::Severity::Warning,
            route_key: Default::default(),
            summary: "s".into(),
            runbook_url: String::new(),
            alerts: Vec::new(),
        }
    }

    #[test]
    fn outbox_keeps_per_sink_order_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let ids = {
            let store = SledStore::open(dir.path()).expect("open");
            let commit = AlertCommit { next_sequence: 3, ..AlertCommit::default() };
            let entries = vec![
                OutboxEntry::new("rt", notification("disk/firing/1"), 10),
                OutboxEntry::new("mail", notification("disk/firing/1"), 10),
                OutboxEntry::new("rt", notification("disk/resolved/2"), 10),
            ];
            store.commit_alerts(&commit, entries).expect("commit")
        };
        assert!(ids[0] < ids[1] && ids[1] < ids[2], "ids grow in enqueue order: {ids:?}");

        let store = reopening(|| SledStore::open(dir.path())).expect("reopen");
        assert_eq!(store.load_alerts().expect("load").next_sequence, 3);
        let mut head = store.outbox_head("rt").expect("head").expect("rt has entries");
        assert_eq!(head.notification.idempotency_key, "disk/firing/1");
        assert_eq!(
            store.outbox_depth().expect("depth"),
            std::collections::BTreeMap::from([("mail".to_string(), 1), ("rt".to_string(), 2)])
        );

        head.record_success(20);
        store.update_outbox_entry(&head).expect("update");
        let next = store.outbox_head("rt").expect("head").expect("second rt entry");
        assert_eq!(next.notification.idempotency_key, "disk/resolved/2", "the delivered head leaves the queue");
        assert_eq!(store.outbox_entries(Some(DeliveryState::Delivered), None, 10).expect("list").len(), 1);
        assert_eq!(store.outbox_entries(None, Some("rt"), 10).expect("list").len(), 2);
        assert_eq!(store.purge_outbox(15).expect("purge"), 0, "delivered at 20: not before 15");
        assert_eq!(store.purge_outbox(21).expect("purge"), 1);
        assert!(store.outbox_entry(head.id).expect("get").is_none());
    }

    #[test]
    fn ticket_ledger_links_and_unlinks() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.link_ticket("rt", "42", &["fpa".into(), "fpb".into()]).expect("link");
        store.link_ticket("other", "42", &["fpa".into()]).expect("link in another sink");
        assert_eq!(store.ticket_of("rt", "fpa").expect("get").as_deref(), Some("42"));
        assert_eq!(store.ticket_members("rt", "42").expect("members"), ["fpa", "fpb"]);
        assert!(store.ticket_members("rt", "4").expect("members").is_empty(), "ticket 4 is not a prefix match of 42");
        store.unlink_ticket("rt", "42", &["fpa".into()]).expect("unlink");
        assert_eq!(store.ticket_members("rt", "42").expect("members"), ["fpb"]);
        assert_eq!(store.ticket_of("rt", "fpa").expect("get"), None);
        assert_eq!(store.ticket_of("other", "fpa").expect("get").as_deref(), Some("42"), "sinks are separate");
    }

    #[test]
    fn latest_health_sample_is_the_newest_at_or_before_the_time() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = SledStore::open(dir.path()).expect("open");
        store.enroll_agent(new_agent(AGENT, "host-a", 1)).expect("enroll");
        store.enroll_agent(new_agent(OTHER, "host-b", 2)).expect("enroll");
        let sample = |t: i64, cpu: f64| pb::HealthSample { taken_at_unix_ms: t, cpu_percent: Some(cpu), ..Default::default() };
        let batch = |seq: u64, samples: Vec<pb::HealthSample>| pb::Report {
            seq,
            created_at_unix_ms: 0,
            body: Some(pb::report::Body::Health(pb::HealthBatch { samples, ..Default::default() })),
        };
        store.put_reports(AGENT, &[batch(1, vec![sample(1_000, 1.0), sample(3_000, 3.0), sample(2_000, 2.0)])], 1).expect("put");
        store.put_reports(OTHER, &[batch(1, vec![sample(9_000, 9.0)])], 1).expect("put");
        let cpu = |at: i64| store.latest_health_sample(AGENT, at).expect("read").and_then(|s| s.cpu_percent);
        assert_eq!(cpu(10_000), Some(3.0), "the newest, not another agent's");
        assert_eq!(cpu(2_500), Some(2.0));
        assert_eq!(cpu(999), None);
        // Held in memory now: later writes must show. A newer sample, a
        // late older one, then a sample of the same time rewritten.
        store.put_reports(AGENT, &[batch(2, vec![sample(4_000, 4.0)]), batch(3, vec![sample(500, 0.5)])], 2).expect("put");
        assert_eq!(cpu(10_000), Some(4.0));
        assert_eq!(cpu(3_500), Some(3.0));
        store.put_reports(AGENT, &[batch(4, vec![sample(4_000, 4.5)])], 3).expect("put");
        assert_eq!(cpu(10_000), Some(4.5), "the same time's later write, as stored");
        // An agent known to have no sample gets one.
        const THIRD: &str = "cccccccccccccccccccccccccccccccc";
        store.enroll_agent(new_agent(THIRD, "host-c", 3)).expect("enroll");
        assert!(store.latest_health_sample(THIRD, 10_000).expect("read").is_none());
        store.put_reports(THIRD, &[batch(1, vec![sample(7_000, 7.0)])], 4).expect("put");
        assert_eq!(store.latest_health_sample(THIRD, 10_000).expect("read").and_then(|s| s.cpu_percent), Some(7.0));
        drop(store);
        let store = SledStore::open(dir.path()).expect("reopen");
        assert_eq!(store.latest_health_sample(AGENT, 10_000).expect("read").and_then(|s| s.cpu_percent), Some(4.5));
    }
}
