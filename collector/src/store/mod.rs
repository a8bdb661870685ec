//! Storage behind a narrow, intention-revealing trait. `store::sled` is the
//! embedded default and the only module that imports sled; a shared SQL
//! backend can implement the same trait without touching ingest or the
//! admin API.
//!
//! Invariant for every implementation: when `put_reports` returns, what it
//! reports as stored is durable (survives kill -9 and power loss as far as
//! the filesystem's fsync guarantees).

mod group_flush;
mod host_cache;
mod latest_sample;
mod name_cache;
pub mod records;
pub mod sled;
mod software_cache;

use census_proto::v1 as pb;

pub use self::records::{AgentRecord, AuditRecord, BucketRecord, ChangeRecord, EnrollmentSecretRecord, InventoryRecord, TokenRecord};
use crate::alert::book::{Alert, AlertFingerprint, Silence};
use crate::alert::rules::RuleSpec;
use crate::error::Result;
use crate::metrics::{Bucket, Resolution};
use crate::notify::outbox::{DeliveryState, OutboxEntry};
pub use crate::pki::IssuedCertificate;

/// A SHA-256 digest used as a key (certificate fingerprints, hashed secrets).
pub type Digest = [u8; 32];

/// What enrollment asks the store to record.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// The agent id: a fresh one, or the existing id of this host.
    pub agent_id: String,
    pub host_uuid: String,
    pub hostname: String,
    pub agent_version: String,
    pub cert_fingerprint: Digest,
    pub cert_not_after_unix_ms: i64,
    pub enrolled_at_unix_ms: i64,
    /// Hash of the enrollment secret used, whose use count is incremented.
    pub secret_hash: Digest,
}

/// Test fixture: an enrollment of `id` for host `host_uuid` with the
/// certificate whose fingerprint is `[cert; 32]`, enrolled at 1 ms.
#[cfg(test)]
pub(crate) fn test_agent(id: &str, host_uuid: &str, cert: u8) -> NewAgent {
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

/// One package installed on one host, as the software index records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoftwareInstall {
    pub name: String,
    pub version: String,
    pub source: String,
    pub arch: Option<String>,
    pub agent_id: String,
}

/// The software index entries an inventory implies.
pub fn software_installs_of(agent_id: &str, inventory: &pb::Inventory) -> Vec<SoftwareInstall> {
    inventory
        .software
        .as_ref()
        .map(|s| {
            s.packages
                .iter()
                .map(|p| SoftwareInstall {
                    name: p.name.clone(),
                    version: p.version.clone(),
                    source: p.source.clone(),
                    arch: p.arch.clone(),
                    agent_id: agent_id.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What `put_reports` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub acked_through: u64,
    pub full_inventory_requested: bool,
}

/// What one compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compaction {
    pub agents_rolled_up: usize,
    pub buckets_written: usize,
    pub expired: usize,
}

/// What one alert evaluation (or an operator's ack or silence) changed in
/// the alert book: written in one transaction with the outbox entries it
/// enqueues.
#[derive(Debug, Clone, Default)]
pub struct AlertCommit {
    pub upsert: Vec<Alert>,
    pub remove: Vec<AlertFingerprint>,
    /// The whole silence list (it is short).
    pub silences: Vec<Silence>,
    pub next_sequence: u64,
}

/// The alert book as stored.
#[derive(Debug, Clone, Default)]
pub struct StoredAlerts {
    pub alerts: Vec<Alert>,
    pub silences: Vec<Silence>,
    pub next_sequence: u64,
}

/// One item of a store's dump, in order: the id floor first, then each
/// tree's name followed by its entries. What `Store::export` produces and
/// `sled::import` consumes; `backup.rs` puts it in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DumpItem {
    /// Every id the store ever generated is below this (outbox entry ids);
    /// a restored store generates ids from here on.
    IdFloor(u64),
    /// The entries that follow belong to this tree.
    Tree(Vec<u8>),
    Entry(Vec<u8>, Vec<u8>),
}

/// What `Store::export` wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DumpSummary {
    pub trees: u64,
    pub entries: u64,
}

/// A host as the admin API shows it: its agent and latest inventory
/// (shared: the in-memory host summaries hand out the same inventory to
/// every query without copying it).
#[derive(Debug, Clone)]
pub struct HostView {
    pub agent: AgentRecord,
    pub inventory: Option<std::sync::Arc<InventoryRecord>>,
}

/// The order of a host listing without a sort field, and the tie-break
/// after one: the host name ignoring case, then the agent id, so the order
/// is total and a page is the one a full sort gives. The host summaries
/// are kept in it (`Store::host_snapshot`).
pub fn listing_order(a: &AgentRecord, b: &AgentRecord) -> std::cmp::Ordering {
    name_order(&a.hostname, &b.hostname).then_with(|| a.agent_id.cmp(&b.agent_id))
}

/// The order of the lower-cased names, without lower-casing (an
/// allocation per host per query) when both are ASCII, as host names
/// nearly always are: there `to_lowercase` is the ASCII one.
fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
    } else {
        a.to_lowercase().cmp(&b.to_lowercase())
    }
}

/// An inventory as the host summaries keep it: everything but the package
/// list, which only the software index holds in a form a query can afford
/// (2,000 packages a host are most of an inventory's bytes).
pub fn summary_of(record: &mut InventoryRecord) -> InventoryRecord {
    // Taken out and put back, so the packages are never copied.
    let software = record.inventory.as_mut().and_then(|i| i.software.take());
    let mut summary = record.clone();
    if let Some(software) = software {
        if let Some(inv) = summary.inventory.as_mut() {
            inv.software = Some(pb::SoftwareSection::default());
        }
        if let Some(inv) = record.inventory.as_mut() {
            inv.software = Some(software);
        }
    }
    summary
}

pub trait Store: Send + Sync + 'static {
    /// Records an enrollment durably, and counts a use of the secret it
    /// names, in one transaction that refuses (PermissionDenied) a secret
    /// revoked, expired or used up by then. If `new.agent_id` is already known
    /// (the caller found the host by `agent_by_host`), the agent keeps its
    /// history, its old certificate stops working and its sequence restarts.
    fn enroll_agent(&self, new: NewAgent) -> Result<AgentRecord>;

    /// The agent enrolled for this host UUID, if any.
    fn agent_by_host(&self, host_uuid: &str) -> Result<Option<AgentRecord>>;

    /// The agent whose current certificate, or previous certificate still
    /// in its overlap (see `renew_certificate`), has this fingerprint.
    fn agent_by_certificate(&self, fingerprint: &Digest) -> Result<Option<AgentRecord>>;

    /// Records a renewed certificate for `agent_id`, asked for over the
    /// certificate `presented`, durably. At most two certificates of an
    /// agent work at any time: presented with the current one, the current
    /// becomes the previous (the one before is retired); presented with the
    /// previous one (the agent never got, or never used, the last renewal),
    /// the unused current one is retired and the previous stays. Refused
    /// for a revoked agent (PermissionDenied) and for a certificate that is
    /// neither (Unauthenticated).
    fn renew_certificate(&self, agent_id: &str, presented: &Digest, renewed: &IssuedCertificate) -> Result<AgentRecord>;

    /// A certificate this CA issued for `agent_id` that the store does not
    /// know: adopted as the agent's current one (its previous one retired)
    /// when it starts later than every certificate the store knows for the
    /// agent, which happens only when the store lost its issue: restored
    /// from a backup taken before a renewal. A retired certificate is
    /// always older, so it is not adopted (`None`). A revoked agent is
    /// returned unchanged, for the caller to refuse as revoked.
    fn adopt_certificate(&self, agent_id: &str, certificate: &IssuedCertificate) -> Result<Option<AgentRecord>>;

    /// The agent connected with its current certificate: its previous one
    /// stops working, durably. Nothing to do when there is none.
    fn retire_previous_certificate(&self, agent_id: &str) -> Result<()>;

    /// Marks an agent revoked, durably; its certificates stay known so its
    /// calls are refused as revoked rather than unknown. Returns the record
    /// and whether it was revoked already (then nothing changed).
    fn revoke_agent(&self, agent_id: &str, at_unix_ms: i64) -> Result<(AgentRecord, bool)>;

    /// Stores the reports of one agent whose seq is above its last stored
    /// seq, atomically, then makes them durable: inventories (full, or a
    /// delta applied to the stored one) with the change history they imply,
    /// raw health samples. Returns the highest seq now stored (the
    /// acknowledgement) and whether a delta could not be applied (then the
    /// agent is asked for a full snapshot; the delta itself is acknowledged
    /// and dropped).
    fn put_reports(&self, agent_id: &str, reports: &[pb::Report], received_at_unix_ms: i64) -> Result<Ingested>;

    /// Change history, oldest first: of one agent, or of every agent when
    /// `agent_id` is `None`, from `since_unix_ms` on.
    fn changes(&self, agent_id: Option<&str>, since_unix_ms: i64) -> Result<Vec<(String, ChangeRecord)>>;

    /// Raw health samples of an agent with `from <= taken_at < to`, oldest first.
    fn health_samples(&self, agent_id: &str, from_unix_ms: i64, to_unix_ms: i64) -> Result<Vec<pb::HealthSample>>;

    /// The newest raw health sample of an agent taken at or before the
    /// given time (what alert rules compare with thresholds).
    fn latest_health_sample(&self, agent_id: &str, at_or_before_unix_ms: i64) -> Result<Option<pb::HealthSample>>;

    /// Rollup buckets of one metric, `from <= start < to`, oldest first.
    fn rollups(&self, agent_id: &str, metric: &str, resolution: Resolution, from_unix_ms: i64, to_unix_ms: i64) -> Result<Vec<Bucket>>;

    /// Rolls up raw samples stored since the last compaction and deletes
    /// what is past its retention. Runs in the background; ingest does not
    /// wait for it.
    fn compact_metrics(&self, now_unix_ms: i64, retention: &crate::config::Metrics) -> Result<Compaction>;

    /// Every host, in no particular order.
    fn hosts(&self) -> Result<Vec<HostView>>;

    /// One host by agent id.
    fn host(&self, agent_id: &str) -> Result<Option<HostView>>;

    /// Every host with its inventory summary (`summary_of`: no package
    /// list), what host-list queries read: from memory after the first
    /// call, kept in step with every write. In no particular order.
    fn host_summaries(&self) -> Result<Vec<std::sync::Arc<HostView>>>;

    /// The host summaries of `host_summaries` in listing order
    /// (`listing_order`), shared: a query takes one pointer, not 100,000.
    fn host_snapshot(&self) -> Result<std::sync::Arc<Vec<std::sync::Arc<HostView>>>>;

    /// Every enrolled agent without its inventory (cheap: the fleet gauges
    /// of /metrics read it at every scrape), in no particular order.
    fn agents(&self) -> Result<Vec<AgentRecord>>;

    /// Bytes the store takes on disk.
    fn size_on_disk(&self) -> Result<u64>;

    /// Every (version, source, arch, agent id) of the package `name`, from
    /// the software index kept in step with stored inventories. Shared:
    /// held in memory per name after the first query.
    fn software_installs(&self, name: &str) -> Result<std::sync::Arc<Vec<SoftwareInstall>>>;

    /// Every distinct package name in the software index that starts with
    /// `prefix` (all names for ""), in byte order: what alert rules naming
    /// packages by glob are resolved against. Held in memory after the
    /// first call, kept in step with every inventory write.
    fn software_names(&self, prefix: &str) -> Result<Vec<String>>;

    /// The installs of `software_installs` as ListSoftware shows them
    /// (`software::listing`): versions newest first, each with its hosts
    /// by name. Shared, and kept until the package's installs or the
    /// fleet's host names change: grouping and ordering 100,000 installs
    /// per query missed the 200 ms target.
    fn software_listing(&self, name: &str) -> Result<std::sync::Arc<Vec<crate::software::ListedVersion>>>;

    /// Agents whose hostname equals `hostname`, ignoring ASCII case.
    fn agents_named(&self, hostname: &str) -> Result<Vec<AgentRecord>>;

    fn put_admin_token(&self, hash: &Digest, token: &TokenRecord) -> Result<()>;
    fn admin_token(&self, hash: &Digest) -> Result<Option<TokenRecord>>;

    /// Every admin token, in no particular order (a short list).
    fn admin_tokens(&self) -> Result<Vec<TokenRecord>>;
    /// Revokes the token with this public id, durably; refused
    /// (FailedPrecondition) when it is the last active admin token, which
    /// would leave no one able to manage tokens online. Returns the record
    /// and whether it was revoked already.
    fn revoke_admin_token(&self, id: &str) -> Result<(TokenRecord, bool)>;

    fn put_enrollment_secret(&self, hash: &Digest, secret: &EnrollmentSecretRecord) -> Result<()>;
    fn enrollment_secret(&self, hash: &Digest) -> Result<Option<EnrollmentSecretRecord>>;
    /// Every enrollment secret, in no particular order.
    fn enrollment_secrets(&self) -> Result<Vec<EnrollmentSecretRecord>>;
    /// Revokes the secret with this public id, durably. Returns the record
    /// and whether it was revoked already.
    fn revoke_enrollment_secret(&self, id: &str) -> Result<(EnrollmentSecretRecord, bool)>;

    // --- the audit log

    /// Appends an entry, durably.
    fn append_audit(&self, entry: &AuditRecord) -> Result<()>;
    /// Entries at or after `since_unix_ms` that `keep` accepts, newest
    /// first, at most `limit`.
    fn audit_entries(&self, since_unix_ms: i64, keep: &dyn Fn(&AuditRecord) -> bool, limit: usize) -> Result<Vec<AuditRecord>>;
    /// Deletes entries older than `before_unix_ms`; returns how many.
    fn prune_audit(&self, before_unix_ms: i64) -> Result<usize>;

    // --- alerts (SPEC §5)

    /// The alert book as last committed (empty on a new store).
    fn load_alerts(&self) -> Result<StoredAlerts>;

    /// Applies `commit` and enqueues `enqueue` (their ids assigned here, in
    /// order) in one transaction, durably: a transition and its
    /// notifications are stored together or not at all. Returns the ids.
    fn commit_alerts(&self, commit: &AlertCommit, enqueue: Vec<OutboxEntry>) -> Result<Vec<u64>>;

    /// Rules added through the admin API, by name.
    fn api_rules(&self) -> Result<Vec<RuleSpec>>;
    fn put_api_rule(&self, spec: &RuleSpec) -> Result<()>;
    /// Whether a rule of that name existed.
    fn delete_api_rule(&self, name: &str) -> Result<bool>;

    // --- the notification outbox

    /// The oldest pending entry of a sink: the only one the dispatcher may
    /// attempt (delivery in order per sink).
    fn outbox_head(&self, sink: &str) -> Result<Option<OutboxEntry>>;
    fn outbox_entry(&self, id: u64) -> Result<Option<OutboxEntry>>;
    /// Rewrites an entry after an attempt or an operator's retry, durably.
    fn update_outbox_entry(&self, entry: &OutboxEntry) -> Result<()>;
    /// Entries, newest first, filtered by state and sink, at most `limit`.
    fn outbox_entries(&self, state: Option<DeliveryState>, sink: Option<&str>, limit: usize) -> Result<Vec<OutboxEntry>>;
    /// Pending entries per sink.
    fn outbox_depth(&self) -> Result<std::collections::BTreeMap<String, usize>>;
    /// Deletes delivered entries delivered before the given time.
    fn purge_outbox(&self, delivered_before_unix_ms: i64) -> Result<usize>;

    // --- the ticket ledger: which ticket of a ticketing sink holds an alert

    fn ticket_of(&self, sink: &str, fingerprint: &str) -> Result<Option<String>>;
    /// Records that `ticket` holds these alerts (durably, before the next
    /// step of a delivery).
    fn link_ticket(&self, sink: &str, ticket: &str, fingerprints: &[String]) -> Result<()>;
    fn unlink_ticket(&self, sink: &str, ticket: &str, fingerprints: &[String]) -> Result<()>;
    /// The alerts a ticket still holds.
    fn ticket_members(&self, sink: &str, ticket: &str) -> Result<Vec<String>>;

    // --- backup

    /// Hands every item of a consistent dump of the whole store to `sink`,
    /// in order (see `DumpItem`). Writes wait while it runs: what it dumps
    /// is one point in time, never half of a transaction.
    fn export(&self, sink: &mut dyn FnMut(DumpItem) -> Result<()>) -> Result<DumpSummary>;
}
