//! Host health sampling: CPU, load, memory, filesystems, disk and network
//! I/O, processes, temperatures, uptime, failed units and the agent's own
//! footprint, taken every interval and sent in batches.
//!
//! - `sample`: the `HealthSample` domain type and the pure functions that
//!   turn two raw counter readings into rates (never negative, never NaN).
//! - `parse`: pure, bounded parsers for `/proc`, sysfs and `systemctl` text;
//!   they never touch the filesystem.
//! - `linux`: `Sampler`, the thin reader that keeps the previous readings,
//!   reads the files under a root directory ("/" in production, a fixture
//!   tree in tests) and hands their text to the parsers. A metric that fails
//!   is reported beside the sample and never stops it.
//! - `textfile`: custom metrics administrators write as `*.prom` files in
//!   `health_textfile_dir` (`parse` pure, `TextfileDir` the reader), sent
//!   in each sample as `custom.*` series.

pub mod linux;
pub mod parse;
pub mod sample;
pub mod textfile;

pub use linux::Sampler;
pub use sample::{FsStat, HealthSample};
pub use textfile::{CustomMetric, TextfileDir};
