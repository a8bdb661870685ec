//! The agent's state directory: what enrollment produced, and the report
//! sequence counter.
//!
//! Files: `agent.toml` (agent id, server), `ca.pem` (the collector's CA,
//! pinned), `agent.pem` (client certificate), `agent.key` (private key,
//! mode 0600, never leaves the host), `seq` (last sequence number used),
//! `last_ack` (the last acknowledged seq and when, for `census-agent status`).
//! Every file is replaced atomically, so a crash never leaves half a key.
//! A certificate renewal replaces two files, key and certificate: both are
//! first written whole beside them (`agent.key.next`, then `agent.pem.next`,
//! whose presence says both are complete), then renamed into place;
//! `Enrolled::open` finishes a renewal a crash interrupted, so the key and
//! the certificate in use always belong together.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const IDENTITY_FILE: &str = "agent.toml";
const CA_FILE: &str = "ca.pem";
const CERT_FILE: &str = "agent.pem";
const KEY_FILE: &str = "agent.key";
const SEQ_FILE: &str = "seq";
const BASE_FILE: &str = "inventory.base";
const CAPS_FILE: &str = "collector.features";
const LAST_ACK_FILE: &str = "last_ack";
const NEXT_KEY_FILE: &str = "agent.key.next";
const NEXT_CERT_FILE: &str = "agent.pem.next";

/// A private key in memory; Debug prints `***`.
#[derive(Clone)]
pub struct PrivateKeyPem(pub String);

impl std::fmt::Debug for PrivateKeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFile {
    agent_id: String,
    server: String,
    enrolled_at_unix_ms: i64,
}

/// Everything needed to talk to the collector with mutual TLS.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub agent_id: String,
    pub server: String,
    pub enrolled_at_unix_ms: i64,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: PrivateKeyPem,
}

impl Enrolled {
    pub fn load(dir: &Path) -> Result<Enrolled> {
        let identity_path = dir.join(IDENTITY_FILE);
        if !identity_path.exists() {
            return Err(Error::NotEnrolled(dir.to_path_buf()));
        }
        let read = |f: &str| -> Result<String> {
            let p = dir.join(f);
            std::fs::read_to_string(&p).map_err(|e| Error::io("reading", p, e))
        };
        let id: IdentityFile =
            toml::from_str(&read(IDENTITY_FILE)?).map_err(|e| Error::Config(format!("{}: {e}", identity_path.display())))?;
        Ok(Enrolled {
            agent_id: id.agent_id,
            server: id.server,
            enrolled_at_unix_ms: id.enrolled_at_unix_ms,
            ca_pem: read(CA_FILE)?,
            cert_pem: read(CERT_FILE)?,
            key_pem: PrivateKeyPem(read(KEY_FILE)?),
        })
    }

    /// `load` for the process that owns the state (`run`): first completes
    /// a certificate renewal that a crash interrupted, or drops one whose
    /// certificate never arrived (the current pair then stays, and the
    /// collector still accepts it).
    pub fn open(dir: &Path) -> Result<Enrolled> {
        finish_renewal(dir)?;
        Enrolled::load(dir)
    }

    /// When the client certificate becomes valid and when it expires, Unix ms.
    pub fn certificate_validity(&self) -> Result<(i64, i64)> {
        certificate_validity(&self.cert_pem)
    }

    /// Puts a renewed key and certificate in place of the current ones
    /// (see the module documentation for the order that makes it safe).
    pub fn save_renewed(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(NEXT_KEY_FILE), self.key_pem.0.as_bytes(), 0o600)?;
        write_atomic(&dir.join(NEXT_CERT_FILE), self.cert_pem.as_bytes(), 0o644)?;
        sync_dir(dir)?;
        finish_renewal(dir)
    }

    /// Writes the state; the identity file goes last, so a crash midway
    /// leaves the agent "not enrolled" rather than half-enrolled.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| Error::io("restricting", dir, e))?;
        }
        // A renewal of an older identity must never land on this one.
        for stale in [NEXT_CERT_FILE, NEXT_KEY_FILE] {
            match std::fs::remove_file(dir.join(stale)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io("removing", dir.join(stale), e)),
                _ => {}
            }
        }
        write_atomic(&dir.join(KEY_FILE), self.key_pem.0.as_bytes(), 0o600)?;
        write_atomic(&dir.join(CERT_FILE), self.cert_pem.as_bytes(), 0o644)?;
        write_atomic(&dir.join(CA_FILE), self.ca_pem.as_bytes(), 0o644)?;
        let id =
            IdentityFile { agent_id: self.agent_id.clone(), server: self.server.clone(), enrolled_at_unix_ms: self.enrolled_at_unix_ms };
        let text = toml::to_string(&id).map_err(|e| Error::Config(e.to_string()))?;
        write_atomic(&dir.join(IDENTITY_FILE), text.as_bytes(), 0o644)?;
        // A new enrollment starts a new sequence on the collector, with no
        // inventory base and no queued reports of the old identity.
        let _ = std::fs::remove_file(dir.join(BASE_FILE));
        let _ = std::fs::remove_dir_all(dir.join("spool"));
        write_atomic(&dir.join(SEQ_FILE), b"0\n", 0o644)
    }
}

/// Renames a complete renewal into place, or removes an incomplete one.
fn finish_renewal(dir: &Path) -> Result<()> {
    let (next_key, next_cert) = (dir.join(NEXT_KEY_FILE), dir.join(NEXT_CERT_FILE));
    if next_cert.exists() {
        if next_key.exists() {
            rename(&next_key, &dir.join(KEY_FILE))?;
        }
        rename(&next_cert, &dir.join(CERT_FILE))?;
        sync_dir(dir)?;
    } else if next_key.exists() {
        std::fs::remove_file(&next_key).map_err(|e| Error::io("removing the unfinished renewal", &next_key, e))?;
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(|e| Error::io("renaming into", to, e))
}

/// Makes renames in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("syncing", dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// (not before, not after) of the first certificate in `pem`, Unix ms.
pub fn certificate_validity(pem: &str) -> Result<(i64, i64)> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|e| Error::Certificate(format!("agent.pem is not a PEM certificate: {e}")))?;
    let cert = pem.parse_x509().map_err(|e| Error::Certificate(format!("agent.pem does not parse: {e}")))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp().saturating_mul(1000), v.not_after.timestamp().saturating_mul(1000)))
}

/// The per-agent report sequence, persisted so a restart never reuses a
/// number the collector may already have stored.
#[derive(Debug)]
pub struct SequenceCounter {
    path: PathBuf,
    last: u64,
}

impl SequenceCounter {
    pub fn open(dir: &Path) -> Result<SequenceCounter> {
        let path = dir.join(SEQ_FILE);
        let last = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|e| Error::parse(path.display().to_string(), Some(1), format!("{e}")))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        Ok(SequenceCounter { path, last })
    }

    /// The number the next report will carry; nothing is written yet.
    pub fn next(&self) -> u64 {
        self.last + 1
    }

    /// Records `seq` as used, once the report carrying it is durable
    /// elsewhere (the spool). Numbering this way leaves no gap when the
    /// process dies between the two writes: an unwritten report never
    /// consumed its number, and a written one is seen by `observe`.
    pub fn commit(&mut self, seq: u64) -> Result<()> {
        if seq > self.last {
            write_atomic(&self.path, format!("{seq}\n").as_bytes(), 0o644)?;
            self.last = seq;
        }
        Ok(())
    }

    /// Takes into account a number already used by a durable report (the
    /// highest one in the spool at start-up).
    pub fn observe(&mut self, used: u64) -> Result<()> {
        self.commit(used)
    }

    pub fn last(&self) -> u64 {
        self.last
    }
}

pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = options.open(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| Error::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("renaming into", path, e))
}

/// The last inventory the agent queued for the collector, and its seq: the
/// base of the next delta. Written after the report is in the spool, so a
/// crash in between leaves an older base; the collector then sees a delta
/// whose base it does not hold and asks for a full snapshot (self-healing).
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryBase {
    pub seq: u64,
    /// When the last full snapshot was queued, Unix ms.
    pub last_full_unix_ms: i64,
    pub inventory: census_proto::v1::Inventory,
}

impl InventoryBase {
    /// `None` when there is none yet, or it is unreadable (then the next
    /// inventory is a full snapshot, which is always safe).
    pub fn load(dir: &Path) -> Option<InventoryBase> {
        use prost::Message;
        let bytes = std::fs::read(dir.join(BASE_FILE)).ok()?;
        if bytes.len() < 16 {
            return None;
        }
        let seq = u64::from_le_bytes(bytes[0..8].try_into().ok()?);
        let last_full_unix_ms = i64::from_le_bytes(bytes[8..16].try_into().ok()?);
        let inventory = census_proto::v1::Inventory::decode(&bytes[16..]).ok()?;
        Some(InventoryBase { seq, last_full_unix_ms, inventory })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        use prost::Message;
        let mut bytes = Vec::with_capacity(16 + self.inventory.encoded_len());
        bytes.extend_from_slice(&self.seq.to_le_bytes());
        bytes.extend_from_slice(&self.last_full_unix_ms.to_le_bytes());
        self.inventory.encode(&mut bytes).map_err(|e| Error::Collector(format!("encoding the inventory base: {e}")))?;
        write_atomic(&dir.join(BASE_FILE), &bytes, 0o600)
    }
}

/// Whether the collector said it accepts health batches and inventory
/// deltas (`AgentSettings.accepts_health_and_deltas`), remembered across
/// restarts so the first report after a restart need not wait to learn it.
pub fn load_collector_accepts_new(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(CAPS_FILE)).is_ok_and(|t| t.trim() == "health_and_deltas")
}

pub fn save_collector_accepts_new(dir: &Path, accepts: bool) -> Result<()> {
    write_atomic(&dir.join(CAPS_FILE), if accepts { b"health_and_deltas\n".as_slice() } else { b"\n".as_slice() }, 0o644)
}

/// The last report the collector acknowledged: informational only (shown
/// by `census-agent status`); nothing depends on it for correctness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastAck {
    pub seq: u64,
    pub at_unix_ms: i64,
}

impl LastAck {
    /// `None` before the first acknowledgement (or when unreadable).
    pub fn load(dir: &Path) -> Option<LastAck> {
        let text = std::fs::read_to_string(dir.join(LAST_ACK_FILE)).ok()?;
        let (seq, at) = text.trim().split_once(' ')?;
        Some(LastAck { seq: seq.parse().ok()?, at_unix_ms: at.parse().ok()? })
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        write_atomic(&dir.join(LAST_ACK_FILE), format!("{} {}\n", self.seq, self.at_unix_ms).as_bytes(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Enrolled state with this certificate and key text.
    fn enrolled(cert: &str, key: &str) -> Enrolled {
        Enrolled {
            agent_id: "abc".into(),
            server: "https://127.0.0.1:1".into(),
            enrolled_at_unix_ms: 5,
            ca_pem: "CA".into(),
            cert_pem: cert.into(),
            key_pem: PrivateKeyPem(key.into()),
        }
    }

    #[test]
    fn state_round_trips_and_key_is_private() {
        let dir = tempfile::tempdir().expect("tmp");
        enrolled("CERT", "KEY").save(dir.path()).expect("save");
        let l = Enrolled::load(dir.path()).expect("load");
        assert_eq!((l.agent_id.as_str(), l.key_pem.0.as_str()), ("abc", "KEY"));
        assert_eq!(format!("{:?}", l.key_pem), "***");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_number_is_consumed_only_when_committed_or_observed() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = SequenceCounter::open(dir.path()).expect("open");
        assert_eq!(c.next(), 1);
        // Died before the report was written: the number is not consumed.
        assert_eq!(SequenceCounter::open(dir.path()).expect("reopen").next(), 1);
        // Died after the report reached the spool but before the commit:
        // the spool's highest seq is observed at start.
        let mut again = SequenceCounter::open(dir.path()).expect("reopen");
        again.observe(1).expect("observe");
        assert_eq!(again.next(), 2);
        assert_eq!(SequenceCounter::open(dir.path()).expect("reopen").last(), 1, "observe persists");
        c.commit(5).expect("commit");
        c.commit(3).expect("an older number never moves the counter back");
        assert_eq!(SequenceCounter::open(dir.path()).expect("reopen").last(), 5);
    }

    #[test]
    fn sequence_survives_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut c = SequenceCounter::open(dir.path()).expect("open");
        for n in [1, 2] {
            assert_eq!(c.next(), n);
            c.commit(n).expect("commit");
        }
        let again = SequenceCounter::open(dir.path()).expect("reopen");
        assert_eq!(again.last(), 2);
        assert_eq!(again.next(), 3);
    }

    #[test]
    fn last_ack_round_trips() {
        let dir = tempfile::tempdir().expect("tmp");
        assert_eq!(LastAck::load(dir.path()), None);
        let a = LastAck { seq: 42, at_unix_ms: 1_700_000_000_000 };
        a.save(dir.path()).expect("save");
        assert_eq!(LastAck::load(dir.path()), Some(a));
    }

    #[test]
    fn a_renewal_is_all_or_nothing_across_crashes() {
        let dir = tempfile::tempdir().expect("tmp");
        enrolled("CERT1", "KEY1").save(dir.path()).expect("save");
        let pair = |d: &Path| {
            let e = Enrolled::open(d).expect("open");
            (e.cert_pem, e.key_pem.0)
        };

        // Crashed after the new key was written, before its certificate:
        // the old pair stays whole.
        write_atomic(&dir.path().join(NEXT_KEY_FILE), b"KEY2", 0o600).expect("key.next");
        assert_eq!(pair(dir.path()), ("CERT1".to_string(), "KEY1".to_string()));
        assert!(!dir.path().join(NEXT_KEY_FILE).exists(), "the unfinished renewal is dropped");

        // Crashed after both were written, between the two renames: the
        // renewal is completed.
        write_atomic(&dir.path().join(NEXT_KEY_FILE), b"KEY2", 0o600).expect("key.next");
        write_atomic(&dir.path().join(NEXT_CERT_FILE), b"CERT2", 0o644).expect("pem.next");
        rename(&dir.path().join(NEXT_KEY_FILE), &dir.path().join(KEY_FILE)).expect("first rename");
        assert_eq!(pair(dir.path()), ("CERT2".to_string(), "KEY2".to_string()));

        enrolled("CERT3", "KEY3").save_renewed(dir.path()).expect("renew");
        assert_eq!(pair(dir.path()), ("CERT3".to_string(), "KEY3".to_string()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "a renewed key is private too");
        }
        assert_eq!(std::fs::read_to_string(dir.path().join(SEQ_FILE)).expect("seq"), "0\n", "a renewal keeps the sequence");
    }

    #[test]
    fn missing_state_says_not_enrolled() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(matches!(Enrolled::load(dir.path()), Err(Error::NotEnrolled(_))));
    }
}
