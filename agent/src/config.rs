//! Agent configuration: one `Config`, resolved once as defaults < TOML file
//! < `CENSUS_*` environment < flags (`main.rs`), validated before use.
//! Reference: docs/config-agent.md (checked against `Config::default()` by a test).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the key, certificates, agent id and sequence counter live.
    pub state_dir: PathBuf,
    /// Collector agent API URL. Empty: use the one recorded at enrollment.
    pub server: String,
    /// Heartbeat interval until the collector pushes its own.
    #[serde(with = "duration_text")]
    pub heartbeat_interval: Duration,
    /// Inventory interval until the collector pushes its own.
    #[serde(with = "duration_text")]
    pub inventory_interval: Duration,
    /// First retry delay after a failed send; doubles up to `backoff_max`, with jitter.
    #[serde(with = "duration_text")]
    pub backoff_initial: Duration,
    #[serde(with = "duration_text")]
    pub backoff_max: Duration,
    /// Deadline of one call to the collector.
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// Seconds between health samples.
    #[serde(with = "duration_text")]
    pub health_interval: Duration,
    /// Health samples are sent together, one report per this interval.
    #[serde(with = "duration_text")]
    pub health_batch_interval: Duration,
    /// A full inventory snapshot at least this often (anti-entropy);
    /// between them only deltas are sent.
    #[serde(with = "duration_text")]
    pub full_inventory_interval: Duration,
    /// Size bound of the on-disk report spool (`state_dir/spool`), bytes.
    /// When full, the oldest health batches are dropped first (and counted);
    /// inventory is never dropped.
    pub spool_max_bytes: u64,
    /// Filesystem root that inventory is read from ("/" except in tests).
    pub root: PathBuf,
    /// "text" or "json" logs on stderr.
    pub log_format: LogFormat,
    /// Extra certificate files or directories to inventory, besides the
    /// system trust store additions and /etc/ssl, /etc/pki, /etc/letsencrypt.
    pub certificate_paths: Vec<PathBuf>,
    /// Directory of `*.prom` files whose values every health sample carries
    /// as `custom.*` series (docs/custom-metrics.md). Empty: none.
    pub health_textfile_dir: PathBuf,
    /// The client certificate is renewed once less than this share of its
    /// lifetime is left, e.g. "33%".
    pub renew_before: Share,
}

/// A share of a whole, written as a whole percentage ("33%") in TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Share {
    percent: u8,
}

impl Share {
    /// 1 to 99 percent.
    pub fn percent(percent: u8) -> Option<Share> {
        (1..=99).contains(&percent).then_some(Share { percent })
    }

    /// This share of `whole`, rounded down.
    pub fn of(self, whole: i64) -> i64 {
        whole / 100 * i64::from(self.percent) + whole % 100 * i64::from(self.percent) / 100
    }
}

impl TryFrom<String> for Share {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Share, String> {
        text.trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u8>().ok())
            .and_then(Share::percent)
            .ok_or_else(|| format!("{text:?} is not a share such as \"33%\" (1% to 99%)"))
    }
}

impl From<Share> for String {
    fn from(s: Share) -> String {
        format!("{}%", s.percent)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            state_dir: PathBuf::from("/var/lib/census-agent"),
            server: String::new(),
            heartbeat_interval: Duration::from_secs(60),
            inventory_interval: Duration::from_secs(3600),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            health_interval: Duration::from_secs(15),
            health_batch_interval: Duration::from_secs(60),
            full_inventory_interval: Duration::from_secs(24 * 3600),
            spool_max_bytes: 64 * 1024 * 1024,
            root: PathBuf::from("/"),
            log_format: LogFormat::Text,
            certificate_paths: Vec::new(),
            health_textfile_dir: PathBuf::new(),
            renew_before: Share { percent: 33 },
        }
    }
}

impl Config {
    pub fn from_toml(text: &str, origin: &str) -> Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        c.validate().map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        Ok(c)
    }

    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading config", path, e))?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// The textfile directory, when one is configured.
    pub fn health_textfile_dir(&self) -> Option<&Path> {
        Some(self.health_textfile_dir.as_path()).filter(|d| !d.as_os_str().is_empty())
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.heartbeat_interval < Duration::from_secs(1) {
            return Err("heartbeat_interval must be at least 1s".into());
        }
        if self.inventory_interval < self.heartbeat_interval {
            return Err("inventory_interval cannot be shorter than heartbeat_interval".into());
        }
        if self.backoff_initial.is_zero() || self.backoff_max < self.backoff_initial {
            return Err("backoff_initial must be > 0 and backoff_max >= backoff_initial".into());
        }
        if self.request_timeout < Duration::from_secs(1) {
            return Err("request_timeout must be at least 1s".into());
        }
        if self.health_interval < Duration::from_secs(1) {
            return Err("health_interval must be at least 1s".into());
        }
        if self.health_batch_interval < self.health_interval {
            return Err("health_batch_interval cannot be shorter than health_interval".into());
        }
        if self.full_inventory_interval < self.inventory_interval {
            return Err("full_inventory_interval cannot be shorter than inventory_interval".into());
        }
        if self.spool_max_bytes < 4096 {
            return Err("spool_max_bytes must be at least 4096".into());
        }
        if let Some(relative) = self.certificate_paths.iter().find(|p| !p.is_absolute()) {
            return Err(format!("certificate_paths: {} must be an absolute path", relative.display()));
        }
        if self.health_textfile_dir().is_some_and(|d| !d.is_absolute()) {
            return Err(format!("health_textfile_dir: {} must be an absolute path", self.health_textfile_dir.display()));
        }
        if !self.server.is_empty() && !(self.server.starts_with("https://")) {
            return Err(format!("server {:?} must be an https:// URL", self.server));
        }
        Ok(())
    }
}

mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    /// The largest whole unit: "90d", "1h", "90s" (humantime would print
    /// "2months 29days 2h 52m 48s" for 90 days).
    pub fn format_duration(d: Duration) -> String {
        let secs = d.as_secs();
        if d.subsec_nanos() != 0 {
            return format!("{}ms", d.as_millis());
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs >= size && secs % size == 0 {
                return format!("{}{unit}", secs / size);
            }
        }
        format!("{secs}s")
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        assert_eq!(Config::from_toml("", "t").expect("valid"), Config::default());
        let err = Config::from_toml("heartbeat = \"1s\"", "agent.toml").unwrap_err().to_string();
        assert!(err.contains("agent.toml") && err.contains("heartbeat"), "{err}");
        let err = Config::from_toml("server = \"http://x\"", "t").unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
        let c = Config::from_toml("certificate_paths = [\"/srv/tls\"]", "t").expect("valid");
        assert_eq!(c.certificate_paths, [PathBuf::from("/srv/tls")]);
        let err = Config::from_toml("certificate_paths = [\"tls\"]", "agent.toml").unwrap_err().to_string();
        assert!(err.contains("agent.toml") && err.contains("certificate_paths: tls"), "{err}");
        assert_eq!(Config::default().health_textfile_dir(), None);
        let c = Config::from_toml("health_textfile_dir = \"/var/lib/census-agent/textfile\"", "t").expect("valid");
        assert_eq!(c.health_textfile_dir(), Some(Path::new("/var/lib/census-agent/textfile")));
        let err = Config::from_toml("health_textfile_dir = \"textfile\"", "agent.toml").unwrap_err().to_string();
        assert!(err.contains("agent.toml") && err.contains("health_textfile_dir: textfile must be an absolute path"), "{err}");
        let c = Config::from_toml("renew_before = \"50%\"", "t").expect("valid");
        assert_eq!(c.renew_before.of(90_000), 45_000);
        for bad in ["\"0%\"", "\"100%\"", "\"1/3\"", "0.33"] {
            let err = Config::from_toml(&format!("renew_before = {bad}"), "agent.toml").unwrap_err().to_string();
            assert!(err.contains("agent.toml") && err.contains("renew_before"), "{bad}: {err}");
        }
        assert_eq!(Config::default().renew_before.of(7_776_000_000), 2_566_080_000, "33% of 90 days, no overflow");
    }

    #[test]
    fn example_config_parses() {
        let c = Config::from_toml(include_str!("../../deploy/agent.toml"), "deploy/agent.toml").expect("example parses");
        assert_eq!(c.heartbeat_interval, Config::default().heartbeat_interval);
    }

    #[test]
    fn config_reference_lists_every_key_with_its_default() {
        let reference = include_str!("../../docs/config-agent.md");
        let defaults = toml::to_string(&Config::default()).expect("serialise");
        for line in defaults.lines() {
            let Some((key, value)) = line.split_once(" = ") else { continue };
            let row = format!("| `{key}` | `{value}` |");
            assert!(reference.contains(&row), "docs/config-agent.md lacks the row starting {row}");
        }
    }
}
