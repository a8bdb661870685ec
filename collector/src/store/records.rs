//! Stored record types. Every record is a protobuf message (prost) with a
//! `schema` field as tag 1, so a record written by an older collector can be
//! recognised and migrated, and a newer field is skipped by an older reader.

use census_proto::v1 as pb;

/// Schema version written into every record by this collector.
pub const RECORD_SCHEMA: u32 = 1;

/// One enrolled agent and the host it speaks for.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentRecord {
    #[prost(uint32, tag = "1")]
    pub schema: u32,
    /// 32 lower-case hex characters, the CN of its client certificate.
    #[prost(string, tag = "2")]
    pub agent_id: String,
    #[prost(string, tag = "3")]
    pub host_uuid: String,
    #[prost(string, tag = "4")]
    pub hostname: String,
    /// SHA-256 of the DER client certificate currently valid for this agent.
    #[prost(bytes = "vec", tag = "5")]
    pub cert_fingerprint: Vec<u8>,
    #[prost(int64, tag = "6")]
    pub enrolled_at_unix_ms: i64,
    #[prost(bool, tag = "7")]
    pub revoked: bool,
    /// Highest report sequence number stored; reports at or below are duplicates.
    #[prost(uint64, tag = "8")]
    pub last_seq: u64,
    #[prost(int64, tag = "9")]
    pub last_seen_unix_ms: i64,
    #[prost(string, tag = "10")]
    pub agent_version: String,
    #[prost(int64, tag = "11")]
    pub cert_not_after_unix_ms: i64,
    /// Health batches the agent's spool dropped because it was full
    /// (cumulative, as last reported in a `HealthBatch`).
    #[prost(uint64, tag = "12")]
    pub health_dropped_batches: u64,
    /// Health samples in those batches, cumulative.
    #[prost(uint64, tag = "13")]
    pub health_dropped_samples: u64,
    /// Health samples stored (each counted once, duplicates skipped).
    #[prost(uint64, tag = "14")]
    pub health_samples_stored: u64,
    /// Reports stored for this agent since it (re)enrolled, each once.
    /// Equals `last_seq` unless the agent's spool superseded some
    /// inventory reports (a full snapshot replaces older queued ones).
    #[prost(uint64, tag = "15")]
    pub reports_stored: u64,
    /// SHA-256 of the certificate this agent had before its last renewal,
    /// while it still works: until the agent first connects with the
    /// renewed one (`cert_fingerprint`), or until it expires. Empty when
    /// there is none.
    #[prost(bytes = "vec", tag = "16")]
    pub previous_cert_fingerprint: Vec<u8>,
    #[prost(int64, tag = "17")]
    pub previous_cert_not_after_unix_ms: i64,
    /// When an administrator revoked the agent; 0 if `revoked` is false
    /// (or it was revoked by a collector that did not record the time).
    #[prost(int64, tag = "18")]
    pub revoked_at_unix_ms: i64,
    /// Start of validity of the current certificate when it came from a
    /// renewal (or was adopted); 0 for the certificate issued at
    /// enrollment, which dates from `enrolled_at_unix_ms`. A certificate of
    /// this CA for this agent that starts later is newer than every one
    /// the store knows (see `Store::adopt_certificate`).
    #[prost(int64, tag = "19")]
    pub cert_not_before_unix_ms: i64,
}

/// One entry of a host's change history (`changes::Change`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChangeRecord {
    #[prost(uint32, tag = "1")]
    pub schema: u32,
    #[prost(int64, tag = "2")]
    pub at_unix_ms: i64,
    /// `ChangeKind::as_str`, e.g. "software.upgraded".
    #[prost(string, tag = "3")]
    pub kind: String,
    #[prost(string, tag = "4")]
    pub subject: String,
    #[prost(string, tag = "5")]
    pub old: String,
    #[prost(string, tag = "6")]
    pub new: String,
    /// Seq of the report whose inventory revealed the change.
    #[prost(uint64, tag = "7")]
    pub seq: u64,
}

/// A metric rollup bucket (`metrics::Bucket`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketRecord {
    #[prost(uint32, tag = "1")]
    pub schema: u32,
    #[prost(uint64, tag = "2")]
    pub count: u64,
    #[prost(double, tag = "3")]
    pub sum: f64,
    #[prost(double, tag = "4")]
    pub min: f64,
    #[prost(double, tag = "5")]
    pub max: f64,
}

/// The latest full inventory of a host.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InventoryRecord {
    #[prost(uint32, tag = "1")]
    pub schema: u32,
    /// Sequence number of the report that carried it.
    #[prost(uint64, tag = "2")]
    pub seq: u64,
    #[prost(int64, tag = "3")]
    pub received_at_unix_ms: i64,
    #[prost(message, optional, tag = "4")]
    pub inventory: Option<pb::Inventory>,
}

/// An admin API token. The token itself is never stored: the key of this
/// record is its SHA-256.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TokenRecord {
    #[prost(uint32, tag = "1")]
    pub schema: u32,
    /// Short public identifier (first characters of the hash), for listing and revoking.
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(string, tag = "3")]
    pub name: String,
    /// "viewer", "operator" or "admin".
    #[prost(string, tag = "4")]
    pub role: String,
    #[prost(int64, tag = "5")]
    pub created_at_unix_ms: i64,
    #[prost(bool, tag = "6")]
    pub revoked: bool,
}

/// An enrollment secret. Keyed by its SHA-256; the secret is never stored.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EnrollmentSecretRecord {
    #[prost(uint32, tag = "1")]
    pub schema: u32,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(int64, tag = "4")]
    pub created_at_unix_ms: i64,
    /// 0 means it never expires.
    #[prost(int64, tag = "5")]
    pub expires_at_unix_ms: i64,
    #[prost(bool, tag = "6")]
    pub revoked: bool,
    /// How many agents enrolled with it.
    #[prost(uint64, tag = "7")]
    pub uses: u64,
    /// Most enrollments it admits; 0: no limit (and what a record written
    /// before the field existed reads as).
    #[prost(uint64, tag = "8")]
    pub max_uses: u64,
}

impl EnrollmentSecretRecord {
    /// Why an enrollment with this secret is refused at `now`, if it is.
    pub fn refusal(&self, now_unix_ms: i64) -> Option<String> {
        if self.revoked {
            return Some(format!("enrollment secret {} ({:?}) has been revoked by an administrator", self.id, self.name));
        }
        if self.expires_at_unix_ms != 0 && self.expires_at_unix_ms <= now_unix_ms {
            return Some(format!(
                "enrollment secret {} ({:?}) expired at {}",
                self.id,
                self.name,
                crate::clock::rfc3339_seconds(self.expires_at_unix_ms)
            ));
        }
        if self.max_uses != 0 && self.uses >= self.max_uses {
            return Some(format!("enrollment secret {} ({:?}) has been used its {} times", self.id, self.name, self.max_uses));
        }
        None
    }

    /// "active", "expired", "revoked" or "used_up" at `now`.
    pub fn state(&self, now_unix_ms: i64) -> &'static str {
        if self.revoked {
            "revoked"
        } else if self.expires_at_unix_ms != 0 && self.expires_at_unix_ms <= now_unix_ms {
            "expired"
        } else if self.max_uses != 0 && self.uses >= self.max_uses {
            "used_up"
        } else {
            "active"
        }
    }
}

/// One entry of the audit log: a state-changing admin call, allowed or
/// refused. Keyed by time and a unique id (`store/sled.rs`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuditRecord {
    #[prost(uint32, tag = "1")]
    pub schema: u32,
    #[prost(int64, tag = "2")]
    pub at_unix_ms: i64,
    #[prost(string, tag = "3")]
    pub token_id: String,
    #[prost(string, tag = "4")]
    pub token_name: String,
    #[prost(string, tag = "5")]
    pub role: String,
    /// The call, e.g. "alert.ack".
    #[prost(string, tag = "6")]
    pub action: String,
    #[prost(string, tag = "7")]
    pub target: String,
    /// "ok", "refused" or "failed".
    #[prost(string, tag = "8")]
    pub outcome: String,
    #[prost(string, tag = "9")]
    pub detail: String,
    /// The caller's address, as the transport saw it.
    #[prost(string, tag = "10")]
    pub peer: String,
    /// "grpc" or "http".
    #[prost(string, tag = "11")]
    pub api: String,
}
