//! The durable report spool: every report is written here before it is
//! sent and removed only when the collector acknowledges it, so neither a
//! collector outage nor a kill -9 of the agent loses a report.
//!
//! Layout: `state_dir/spool/<seq, 20 digits>.<kind>`, one file per report,
//! plus `spool/dropped` (cumulative drop counters). A record file is
//! `CSP1`, the payload length (u32 LE), its CRC-32 (u32 LE), then the
//! encoded `census.v1.Report`.
//!
//! Invariants:
//! - a record is written to a `.tmp` file, fsynced, renamed into place and
//!   the directory fsynced before `push` returns: after a crash a record is
//!   either whole or absent. `open` still checks length and CRC and discards
//!   (and logs) a torn or corrupt record and any leftover `.tmp` file;
//! - records are replayed in seq order;
//! - bounded by `max_bytes`: when a new record does not fit, the oldest
//!   health batches are dropped first (counted in `dropped`, reported in the
//!   next health batch), then the oldest heartbeats (liveness that is
//!   already stale); inventory is never dropped: a full snapshot replaces
//!   every older inventory record (it supersedes them), and an inventory
//!   record that still does not fit is kept anyway (the bound is exceeded
//!   rather than inventory lost);
//! - acknowledged records are unlinked without fsync: one that reappears
//!   after a crash is a duplicate the collector acknowledges again and does
//!   not store twice (dedupe by agent id + seq).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use census_proto::v1 as pb;
use prost::Message;
use tracing::warn;

use crate::error::{Error, Result};

const MAGIC: &[u8; 4] = b"CSP1";
const HEADER: usize = 12;
const DROPPED_FILE: &str = "dropped";

/// What a spooled report carries; decides what may be dropped when full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Heartbeat,
    Health,
    Inventory,
    InventoryDelta,
}

impl Kind {
    fn of(report: &pb::Report) -> Option<Kind> {
        use pb::report::Body;
        Some(match report.body.as_ref()? {
            Body::Heartbeat(_) => Kind::Heartbeat,
            Body::Health(_) => Kind::Health,
            Body::Inventory(_) => Kind::Inventory,
            Body::InventoryDelta(_) => Kind::InventoryDelta,
        })
    }

    fn extension(self) -> &'static str {
        match self {
            Kind::Heartbeat => "hb",
            Kind::Health => "health",
            Kind::Inventory => "inv",
            Kind::InventoryDelta => "delta",
        }
    }

    fn from_extension(ext: &str) -> Option<Kind> {
        Some(match ext {
            "hb" => Kind::Heartbeat,
            "health" => Kind::Health,
            "inv" => Kind::Inventory,
            "delta" => Kind::InventoryDelta,
            _ => return None,
        })
    }

    pub fn is_inventory(self) -> bool {
        matches!(self, Kind::Inventory | Kind::InventoryDelta)
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    kind: Kind,
    bytes: u64,
    /// Health samples in the record (0 for other kinds).
    samples: u64,
}

/// What the spool has dropped since it was created. Cumulative and
/// persisted, so a counter reported in a batch that is itself lost is
/// reported again by the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub health_batches: u64,
    pub health_samples: u64,
    pub heartbeats: u64,
}

/// The on-disk queue of reports not yet acknowledged.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: BTreeMap<u64, Entry>,
    total_bytes: u64,
    dropped: Dropped,
}

impl Spool {
    /// Opens (creating) `state_dir/spool`, discarding torn records.
    pub fn open(state_dir: &Path, max_bytes: u64) -> Result<Spool> {
        let dir = state_dir.join("spool");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
        let mut spool = Spool { dir, max_bytes, entries: BTreeMap::new(), total_bytes: 0, dropped: Dropped::default() };
        spool.dropped = spool.read_dropped()?;
        let listing = std::fs::read_dir(&spool.dir).map_err(|e| Error::io("listing", &spool.dir, e))?;
        for item in listing {
            let item = item.map_err(|e| Error::io("listing", &spool.dir, e))?;
            let path = item.path();
            let name = item.file_name().to_string_lossy().into_owned();
            if name == DROPPED_FILE {
                continue;
            }
            let parsed = name.split_once('.').and_then(|(seq, ext)| Some((seq.parse::<u64>().ok()?, Kind::from_extension(ext)?)));
            let Some((seq, kind)) = parsed else {
                // A `.tmp` left by a crash mid-write, or a stranger.
                warn!(path = %path.display(), "discarding an unfinished spool file");
                remove(&path);
                continue;
            };
            match read_record(&path) {
                Ok(report) if report.seq == seq => {
                    let samples = samples_in(&report);
                    let bytes = item.metadata().map(|m| m.len()).unwrap_or(0);
                    spool.total_bytes += bytes;
                    spool.entries.insert(seq, Entry { kind, bytes, samples });
                }
                Ok(_) | Err(_) => {
                    warn!(path = %path.display(), "discarding a torn or corrupt spool record");
                    remove(&path);
                }
            }
        }
        Ok(spool)
    }

    /// Writes `report` durably, making room first as the module doc says.
    pub fn push(&mut self, report: &pb::Report) -> Result<()> {
        let kind = Kind::of(report).ok_or_else(|| Error::Collector(format!("report seq {} has no body", report.seq)))?;
        let payload = report.encode_to_vec();
        let bytes = (HEADER + payload.len()) as u64;
        if kind == Kind::Inventory {
            // A full snapshot supersedes every older inventory record.
            let older: Vec<u64> = self.entries.iter().filter(|(_, e)| e.kind.is_inventory()).map(|(s, _)| *s).collect();
            for seq in older {
                self.remove_entry(seq);
            }
        }
        self.make_room(bytes, kind);
        if kind == Kind::Health && self.total_bytes + bytes > self.max_bytes {
            // Not even dropping every older batch frees enough: this one goes.
            self.count_drop(Entry { kind, bytes, samples: samples_in(report) });
            self.write_dropped()?;
            return Ok(());
        }
        let path = self.path(report.seq, kind);
        let tmp = path.with_extension("tmp");
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(MAGIC);
        record.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(u32::MAX).to_le_bytes());
        record.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        record.extend_from_slice(&payload);
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        f.write_all(&record).and_then(|_| f.sync_all()).map_err(|e| Error::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming into", &path, e))?;
        sync_dir(&self.dir)?;
        self.total_bytes += bytes;
        self.entries.insert(report.seq, Entry { kind, bytes, samples: samples_in(report) });
        self.write_dropped()
    }

    /// Drops the oldest health batches, then the oldest heartbeats, until
    /// `bytes` more fit (or nothing droppable is left).
    fn make_room(&mut self, bytes: u64, incoming: Kind) {
        for victim in [Kind::Health, Kind::Heartbeat] {
            if incoming == Kind::Health && victim == Kind::Heartbeat {
                // Health never pushes out liveness; it drops itself instead.
                break;
            }
            while self.total_bytes + bytes > self.max_bytes {
                let Some((&seq, &entry)) = self.entries.iter().find(|(_, e)| e.kind == victim) else { break };
                self.remove_entry(seq);
                self.count_drop(entry);
            }
        }
    }

    fn count_drop(&mut self, e: Entry) {
        match e.kind {
            Kind::Health => {
                self.dropped.health_batches += 1;
                self.dropped.health_samples += e.samples;
            }
            Kind::Heartbeat => self.dropped.heartbeats += 1,
            Kind::Inventory | Kind::InventoryDelta => {}
        }
    }

    /// The oldest reports to send next: one inventory record alone (they
    /// can be large), or a run of up to `max_reports` other records within
    /// `max_bytes` (at least one).
    pub fn next_batch(&self, max_reports: usize, max_bytes: u64) -> Result<Vec<pb::Report>> {
        let mut out = Vec::new();
        let mut bytes = 0;
        for (&seq, e) in &self.entries {
            if e.kind.is_inventory() && !out.is_empty() {
                break;
            }
            if !out.is_empty() && (out.len() >= max_reports || bytes + e.bytes > max_bytes) {
                break;
            }
            out.push(read_record(&self.path(seq, e.kind))?);
            bytes += e.bytes;
            if e.kind.is_inventory() {
                break;
            }
        }
        Ok(out)
    }

    /// Forgets every record with seq <= `through` (acknowledged).
    pub fn ack(&mut self, through: u64) {
        let done: Vec<u64> = self.entries.range(..=through).map(|(s, _)| *s).collect();
        for seq in done {
            self.remove_entry(seq);
        }
    }

    /// Forgets the records with seq in `first..=last` (refused for good).
    pub fn discard(&mut self, first: u64, last: u64) {
        let gone: Vec<u64> = self.entries.range(first..=last).map(|(s, _)| *s).collect();
        for seq in gone {
            self.remove_entry(seq);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The highest seq held, if any (the sequence counter must never fall
    /// below it).
    pub fn highest_seq(&self) -> Option<u64> {
        self.entries.keys().next_back().copied()
    }

    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Kinds of the queued records, oldest first (tests, `status`).
    pub fn kinds(&self) -> Vec<(u64, Kind)> {
        self.entries.iter().map(|(s, e)| (*s, e.kind)).collect()
    }

    fn remove_entry(&mut self, seq: u64) {
        if let Some(e) = self.entries.remove(&seq) {
            self.total_bytes = self.total_bytes.saturating_sub(e.bytes);
            remove(&self.path(seq, e.kind));
        }
    }

    fn path(&self, seq: u64, kind: Kind) -> PathBuf {
        self.dir.join(format!("{seq:020}.{}", kind.extension()))
    }

    fn read_dropped(&self) -> Result<Dropped> {
        let path = self.dir.join(DROPPED_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Dropped::default()),
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        let n: Vec<u64> = text.split_whitespace().filter_map(|w| w.parse().ok()).collect();
        Ok(Dropped {
            health_batches: n.first().copied().unwrap_or(0),
            health_samples: n.get(1).copied().unwrap_or(0),
            heartbeats: n.get(2).copied().unwrap_or(0),
        })
    }

    fn write_dropped(&self) -> Result<()> {
        if self.dropped == Dropped::default() {
            return Ok(());
        }
        let d = self.dropped;
        crate::state::write_atomic(
            &self.dir.join(DROPPED_FILE),
            format!("{} {} {}\n", d.health_batches, d.health_samples, d.heartbeats).as_bytes(),
            0o644,
        )
    }
}

fn samples_in(report: &pb::Report) -> u64 {
    match &report.body {
        Some(pb::report::Body::Health(b)) => b.samples.len() as u64,
        _ => 0,
    }
}

fn read_record(path: &Path) -> Result<pb::Report> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
    let torn = |reason: &str| Error::parse(path.display().to_string(), None, reason.to_string());
    if bytes.len() < HEADER || &bytes[..4] != MAGIC {
        return Err(torn("not a spool record"));
    }
    let len = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let payload = &bytes[HEADER..];
    if payload.len() != len {
        return Err(torn("truncated record"));
    }
    if crc32fast::hash(payload) != crc {
        return Err(torn("checksum mismatch"));
    }
    pb::Report::decode(payload).map_err(|e| torn(&format!("undecodable report: {e}")))
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            warn!(path = %path.display(), error = %e, "cannot remove spool file");
        }
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("syncing", dir, e))?;
    }
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(seq: u64) -> pb::Report {
        pb::Report {
            seq,
            created_at_unix_ms: 1,
            body: Some(pb::report::Body::Heartbeat(pb::Heartbeat { agent_uptime_s: seq, agent_version: "0.1.0".into() })),
        }
    }

    fn health(seq: u64, samples: usize) -> pb::Report {
        let sample = pb::HealthSample { taken_at_unix_ms: 1, cpu_percent: Some(1.0), ..Default::default() };
        pb::Report {
            seq,
            created_at_unix_ms: 1,
            body: Some(pb::report::Body::Health(pb::HealthBatch { samples: vec![sample; samples], ..Default::default() })),
        }
    }

    fn inventory(seq: u64, full: bool) -> pb::Report {
        let body = if full {
            pb::report::Body::Inventory(pb::Inventory { collected_at_unix_ms: 1, ..Default::default() })
        } else {
            // As large as a health batch, so it needs room.
            let p = pb::Package { name: "openssl".into(), version: "3.0.13-0ubuntu1".into(), source: "dpkg".into(), ..Default::default() };
            pb::report::Body::InventoryDelta(pb::InventoryDelta { base_seq: seq - 1, packages_added: vec![p; 8], ..Default::default() })
        };
        pb::Report { seq, created_at_unix_ms: 1, body: Some(body) }
    }

    fn seqs(s: &Spool) -> Vec<u64> {
        s.kinds().into_iter().map(|(seq, _)| seq).collect()
    }

    #[test]
    fn survives_reopen_in_order_and_forgets_acknowledged() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Spool::open(dir.path(), 1 << 20).expect("open");
        for seq in 1..=5 {
            s.push(&heartbeat(seq)).expect("push");
        }
        s.ack(2);
        let again = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(seqs(&again), [3, 4, 5]);
        let batch = again.next_batch(2, 1 << 20).expect("batch");
        assert_eq!(batch.iter().map(|r| r.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(batch[0], heartbeat(3));
    }

    #[test]
    fn torn_and_unfinished_records_are_discarded() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Spool::open(dir.path(), 1 << 20).expect("open");
        for seq in 1..=3 {
            s.push(&health(seq, 4)).expect("push");
        }
        let last = s.path(3, Kind::Health);
        let bytes = std::fs::read(&last).expect("read");
        std::fs::write(&last, &bytes[..bytes.len() - 3]).expect("tear");
        std::fs::write(s.dir.join("00000000000000000004.tmp"), b"CSP1").expect("tmp");
        let mut flipped = std::fs::read(s.path(2, Kind::Health)).expect("read");
        let n = flipped.len() - 1;
        flipped[n] ^= 0xff;
        std::fs::write(s.path(2, Kind::Health), flipped).expect("flip");
        let again = Spool::open(dir.path(), 1 << 20).expect("reopen");
        assert_eq!(seqs(&again), [1]);
        assert_eq!(std::fs::read_dir(&again.dir).expect("ls").count(), 1, "torn files removed");
    }

    #[test]
    fn full_spool_drops_oldest_health_first_and_counts_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let one = (HEADER + health(1, 4).encoded_len()) as u64;
        let mut s = Spool::open(dir.path(), one * 3 + 10).expect("open");
        s.push(&health(1, 4)).expect("push");
        s.push(&inventory(2, true)).expect("push");
        s.push(&health(3, 4)).expect("push");
        s.push(&health(4, 4)).expect("push");
        assert_eq!(seqs(&s), [2, 3, 4], "oldest health batch dropped");
        s.push(&inventory(5, false)).expect("push");
        s.push(&inventory(6, false)).expect("push");
        assert!(seqs(&s).contains(&2) && seqs(&s).contains(&5) && seqs(&s).contains(&6), "inventory never dropped");
        assert!(s.kinds().iter().all(|(_, k)| k.is_inventory()), "{:?}", s.kinds());
        assert_eq!(s.dropped(), Dropped { health_batches: 3, health_samples: 12, heartbeats: 0 });
        let again = Spool::open(dir.path(), one * 3).expect("reopen");
        assert_eq!(again.dropped(), s.dropped(), "drop counters persist");
    }

    #[test]
    fn full_snapshot_supersedes_older_inventory() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = Spool::open(dir.path(), 1 << 20).expect("open");
        s.push(&inventory(1, true)).expect("push");
        s.push(&heartbeat(2)).expect("push");
        s.push(&inventory(3, false)).expect("push");
        s.push(&inventory(4, true)).expect("push");
        assert_eq!(seqs(&s), [2, 4]);
        assert_eq!(s.next_batch(10, 1 << 20).expect("b").len(), 1, "heartbeat alone, inventory goes by itself");
    }

    #[test]
    fn health_that_cannot_fit_drops_itself_not_heartbeats() {
        let dir = tempfile::tempdir().expect("tmp");
        let hb = (HEADER + heartbeat(1).encoded_len()) as u64;
        let mut s = Spool::open(dir.path(), hb * 2).expect("open");
        s.push(&heartbeat(1)).expect("push");
        s.push(&heartbeat(2)).expect("push");
        s.push(&health(3, 50)).expect("push");
        assert_eq!(seqs(&s), [1, 2]);
        assert_eq!(s.dropped().health_samples, 50);
    }
}
