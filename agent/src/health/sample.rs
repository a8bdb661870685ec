//! The health sample and the pure arithmetic that turns raw kernel counters
//! into it.
//!
//! Raw readings (`CpuTimes`, `DiskCounters`, `NetCounters`, ...) are what the
//! kernel says at one instant; rates come from two consecutive readings.
//! Invariants every function here keeps:
//! - a counter that went down was reset (reboot, driver reload, 32-bit wrap)
//!   and counts from 0, so no rate is ever negative;
//! - zero or negative elapsed time gives a rate of 0, so no rate is ever NaN
//!   or infinite;
//! - a device or interface that appeared counts from 0, one that disappeared
//!   is simply absent from the result.
//!
//! No I/O and no clock: time arrives as an argument.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;

use crate::health::textfile::CustomMetric;

/// How many processes `HealthSample::top_by_cpu` and `top_by_memory` keep.
pub const TOP_PROCESSES: usize = 5;

/// `/proc/diskstats` counts sectors of 512 bytes whatever the device's
/// real sector size.
pub const DISKSTATS_SECTOR_BYTES: u64 = 512;

/// One health sample of a host, taken at `taken_at_unix_ms`.
///
/// Every metric is optional or may be empty: a metric that could not be read
/// is absent here and its reason is reported beside the sample. Rates are
/// `None` on the first sample, which has no previous reading to compare with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthSample {
    pub taken_at_unix_ms: i64,
    /// Busy share of all CPUs since the previous sample, 0–100.
    pub cpu_percent: Option<f64>,
    pub load: Option<LoadAverage>,
    pub memory: Option<MemoryUsage>,
    /// One entry per mount point the caller passed in, in that order.
    pub filesystems: Vec<FilesystemUsage>,
    pub disks: Option<Vec<DiskRate>>,
    pub network: Option<Vec<NetRate>>,
    /// Number of processes (thread-group leaders) on the host.
    pub process_count: Option<u32>,
    /// Highest CPU users since the previous sample, highest first.
    pub top_by_cpu: Option<Vec<ProcessCpu>>,
    /// Largest resident sets, largest first.
    pub top_by_memory: Option<Vec<ProcessMemory>>,
    pub temperatures: Vec<Temperature>,
    pub uptime_seconds: Option<f64>,
    /// Failed systemd units. The sampler leaves this `None`: running
    /// `systemctl` is the caller's decision (and cadence), see
    /// `parse::parse_systemctl_failed`.
    pub failed_units: Option<Vec<String>>,
    /// The agent's own resident set, bytes.
    pub agent_rss_bytes: Option<u64>,
    /// CPU time (user + system) the agent has used since it started, seconds.
    pub agent_cpu_seconds: Option<f64>,
    /// Series read from the textfile directory; empty when none is
    /// configured. The sampler leaves this empty: see `textfile::TextfileDir`.
    pub custom: Vec<CustomMetric>,
}

impl HealthSample {
    /// A sample with nothing measured yet.
    pub fn empty(taken_at_unix_ms: i64) -> Self {
        HealthSample {
            taken_at_unix_ms,
            cpu_percent: None,
            load: None,
            memory: None,
            filesystems: Vec::new(),
            disks: None,
            network: None,
            process_count: None,
            top_by_cpu: None,
            top_by_memory: None,
            temperatures: Vec::new(),
            uptime_seconds: None,
            failed_units: None,
            agent_rss_bytes: None,
            agent_cpu_seconds: None,
            custom: Vec::new(),
        }
    }
}

/// Aggregate CPU time from the `cpu` line of `/proc/stat`, in clock ticks.
/// `guest` and `guest_nice` are left out: the kernel already counts them in
/// `user` and `nice`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// All ticks, busy or not.
    pub fn total(&self) -> u64 {
        self.busy().saturating_add(self.idle_all())
    }

    /// Ticks spent doing work (steal included: the host took the CPU away).
    pub fn busy(&self) -> u64 {
        [self.user, self.nice, self.system, self.irq, self.softirq, self.steal].iter().fold(0u64, |acc, v| acc.saturating_add(*v))
    }

    /// Ticks spent idle, waiting for I/O included.
    pub fn idle_all(&self) -> u64 {
        self.idle.saturating_add(self.iowait)
    }
}

/// Busy share of all CPUs between two `/proc/stat` readings, 0–100.
///
/// If the total went down the machine rebooted (or the reading came from
/// elsewhere): the current reading is taken as counting from 0. Otherwise
/// busy and idle ticks are compared as two groups, each delta clamped at 0,
/// so `iowait` going backwards on an idle CPU (a known kernel quirk) only
/// shrinks the idle delta. No ticks elapsed gives 0.
pub fn cpu_percent(prev: &CpuTimes, cur: &CpuTimes) -> f64 {
    let (busy, total) = if cur.total() < prev.total() {
        (cur.busy(), cur.total())
    } else {
        (
            cur.busy().saturating_sub(prev.busy()),
            cur.idle_all().saturating_sub(prev.idle_all()).saturating_add(cur.busy().saturating_sub(prev.busy())),
        )
    };
    if total == 0 {
        return 0.0;
    }
    (busy as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
}

/// Load averages from `/proc/loadavg`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Memory from `/proc/meminfo`, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MemoryUsage {
    pub total_bytes: u64,
    /// What can be given to a new program without swapping (`MemAvailable`).
    pub available_bytes: u64,
    /// `total - available`, as `free` shows it.
    pub used_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
}

/// What `statvfs(3)` says about one filesystem, as plain numbers; the call
/// itself is made by the caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FsStat {
    /// Fragment size (`f_frsize`): the unit of the block counts.
    pub fragment_size: u64,
    /// `f_blocks`
    pub blocks: u64,
    /// `f_bfree`: free blocks, root's reserve included.
    pub blocks_free: u64,
    /// `f_bavail`: free blocks an unprivileged user may use.
    pub blocks_available: u64,
    /// `f_files`: inodes; 0 on filesystems without a fixed inode table.
    pub files: u64,
    /// `f_ffree`
    pub files_free: u64,
}

/// Usage of one mounted filesystem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilesystemUsage {
    pub mount_point: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    /// Used share as `df` computes it: used / (used + available to users),
    /// so a disk whose root reserve alone is left shows 100 %.
    pub used_percent: f64,
    /// `None` when the filesystem has no inode limit (btrfs, some FUSE).
    pub inodes_used_percent: Option<f64>,
}

/// Usage of the filesystem mounted at `mount_point` from its `statvfs`.
pub fn filesystem_usage(mount_point: &str, st: &FsStat) -> FilesystemUsage {
    let used = st.blocks.saturating_sub(st.blocks_free);
    let denominator = used.saturating_add(st.blocks_available);
    let used_percent = percent(used, denominator);
    let inodes_used_percent = (st.files > 0).then(|| percent(st.files.saturating_sub(st.files_free), st.files));
    FilesystemUsage {
        mount_point: mount_point.to_owned(),
        total_bytes: st.blocks.saturating_mul(st.fragment_size),
        available_bytes: st.blocks_available.saturating_mul(st.fragment_size),
        used_percent,
        inodes_used_percent,
    }
}

/// One block device's cumulative counters from `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiskCounters {
    pub name: String,
    pub reads_completed: u64,
    pub sectors_read: u64,
    pub writes_completed: u64,
    pub sectors_written: u64,
}

/// One block device's throughput between two readings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DiskRate {
    pub device: String,
    pub read_bytes_per_sec: f64,
    pub write_bytes_per_sec: f64,
    pub reads_per_sec: f64,
    pub writes_per_sec: f64,
}

/// Per-device throughput between two `/proc/diskstats` readings, for the
/// devices in `cur`, in `cur`'s order.
pub fn disk_rates(prev: &[DiskCounters], cur: &[DiskCounters], elapsed: Duration) -> Vec<DiskRate> {
    let secs = elapsed.as_secs_f64();
    let before: HashMap<&str, &DiskCounters> = prev.iter().map(|d| (d.name.as_str(), d)).collect();
    cur.iter()
        .map(|c| {
            let p = before.get(c.name.as_str());
            let delta = |f: fn(&DiskCounters) -> u64| counter_delta(p.map(|p| f(p)), f(c));
            DiskRate {
                device: c.name.clone(),
                read_bytes_per_sec: per_second(delta(|d| d.sectors_read).saturating_mul(DISKSTATS_SECTOR_BYTES), secs),
                write_bytes_per_sec: per_second(delta(|d| d.sectors_written).saturating_mul(DISKSTATS_SECTOR_BYTES), secs),
                reads_per_sec: per_second(delta(|d| d.reads_completed), secs),
                writes_per_sec: per_second(delta(|d| d.writes_completed), secs),
            }
        })
        .collect()
}

/// Drops the `/proc/diskstats` devices not worth reporting: loop, RAM and
/// zram devices, and partitions of a disk that is itself listed (their I/O
/// is already counted there). A partition whose disk is absent (a container
/// may see only partitions) is kept.
pub fn retain_reported_disks(disks: &mut Vec<DiskCounters>) {
    let keep: Vec<bool> = {
        let names: HashSet<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        disks.iter().map(|d| is_reported_disk(&d.name, &names)).collect()
    };
    let mut keep = keep.into_iter();
    disks.retain(|_| keep.next().unwrap_or(true));
}

/// See `retain_reported_disks`. `sda1` is a partition of `sda`,
/// `nvme0n1p2` of `nvme0n1`, `mmcblk0p1` of `mmcblk0`: the kernel puts a `p`
/// before the partition number when the disk name ends in a digit.
fn is_reported_disk(name: &str, listed: &HashSet<&str>) -> bool {
    if ["loop", "ram", "zram"].iter().any(|p| name.starts_with(p)) {
        return false;
    }
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if base.len() == name.len() || base.is_empty() {
        return true;
    }
    let partition_of_plain_disk = listed.contains(base);
    let partition_of_numbered_disk =
        base.strip_suffix('p').filter(|disk| disk.ends_with(|c: char| c.is_ascii_digit())).is_some_and(|disk| listed.contains(disk));
    !(partition_of_plain_disk || partition_of_numbered_disk)
}

/// One network interface's cumulative counters from `/proc/net/dev`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_drops: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_drops: u64,
}

/// One interface's traffic between two readings. Errors and drops are the
/// counts during the interval, not since boot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetRate {
    pub interface: String,
    pub rx_bytes_per_sec: f64,
    pub tx_bytes_per_sec: f64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_drops: u64,
    pub tx_drops: u64,
}

/// Per-interface traffic between two `/proc/net/dev` readings, for the
/// interfaces in `cur`, in `cur`'s order.
pub fn net_rates(prev: &[NetCounters], cur: &[NetCounters], elapsed: Duration) -> Vec<NetRate> {
    let secs = elapsed.as_secs_f64();
    let before: HashMap<&str, &NetCounters> = prev.iter().map(|n| (n.name.as_str(), n)).collect();
    cur.iter()
        .map(|c| {
            let p = before.get(c.name.as_str());
            let delta = |f: fn(&NetCounters) -> u64| counter_delta(p.map(|p| f(p)), f(c));
            NetRate {
                interface: c.name.clone(),
                rx_bytes_per_sec: per_second(delta(|n| n.rx_bytes), secs),
                tx_bytes_per_sec: per_second(delta(|n| n.tx_bytes), secs),
                rx_errors: delta(|n| n.rx_errors),
                tx_errors: delta(|n| n.tx_errors),
                rx_drops: delta(|n| n.rx_drops),
                tx_drops: delta(|n| n.tx_drops),
            }
        })
        .collect()
}

/// The fields of `/proc/PID/stat` health sampling needs. `comm` borrows from
/// the text so scanning thousands of processes allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStat<'a> {
    pub pid: u32,
    /// The executable name, at most 15 bytes for user processes (longer for
    /// some kernel threads); may contain spaces and parentheses.
    pub comm: &'a str,
    pub state: char,
    /// User CPU time, clock ticks.
    pub utime: u64,
    /// System CPU time, clock ticks.
    pub stime: u64,
    /// Start time after boot, clock ticks; tells a reused pid from the old one.
    pub start_time: u64,
    /// Resident set, pages (the same value as `/proc/PID/statm`'s second field).
    pub rss_pages: u64,
}

/// What the previous scan remembered of one process, to compute its CPU share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessTicks {
    pub start_time: u64,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
}

/// A process among the top CPU users.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProcessCpu {
    pub pid: u32,
    pub name: String,
    /// Share of one CPU core since the previous sample, as `top` shows it:
    /// a process busy on 4 cores shows 400.
    pub cpu_percent: f64,
}

/// A process among the largest resident sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessMemory {
    pub pid: u32,
    pub name: String,
    pub rss_bytes: u64,
}

/// CPU share of one core used by a process between two scans.
///
/// `prev` is what the previous scan saw under the same pid, if anything. A
/// pid with another start time was reused: the new process started within
/// the interval and all its ticks count, as for a pid not seen before.
pub fn process_cpu_percent(prev: Option<ProcessTicks>, cur: ProcessTicks, elapsed: Duration, clock_ticks_per_sec: u64) -> f64 {
    let prev_ticks = prev.filter(|p| p.start_time == cur.start_time).map(|p| p.cpu_ticks);
    let ticks = counter_delta(prev_ticks, cur.cpu_ticks);
    let secs = elapsed.as_secs_f64();
    if clock_ticks_per_sec == 0 {
        return 0.0;
    }
    per_second(ticks, secs) * 100.0 / clock_ticks_per_sec as f64
}

/// Keeps the `n` largest items offered, so a scan over thousands of
/// processes allocates names only for the few that make the list.
#[derive(Debug, Clone)]
pub struct TopN<T> {
    n: usize,
    items: Vec<(f64, T)>,
}

impl<T> TopN<T> {
    pub fn new(n: usize) -> Self {
        TopN { n, items: Vec::with_capacity(n.saturating_add(1)) }
    }

    /// Whether an item with this score would enter the list; lets callers
    /// skip building the item.
    pub fn would_accept(&self, score: f64) -> bool {
        if self.n == 0 || !score.is_finite() {
            return false;
        }
        self.items.len() < self.n || self.items.last().is_some_and(|(s, _)| score > *s)
    }

    /// Offers an item; `make` runs only if it enters the list.
    pub fn offer(&mut self, score: f64, make: impl FnOnce() -> T) {
        if !self.would_accept(score) {
            return;
        }
        let at = self.items.partition_point(|(s, _)| *s >= score);
        self.items.insert(at, (score, make()));
        self.items.truncate(self.n);
    }

    /// The kept items, highest score first.
    pub fn into_sorted(self) -> Vec<T> {
        self.items.into_iter().map(|(_, t)| t).collect()
    }
}

/// A temperature sensor reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Temperature {
    /// `thermal/<zone type>` or `<hwmon chip name>/<label or tempN>`; a
    /// duplicate gets ` #2`, ` #3`, ... so every sensor has its own name.
    pub sensor: String,
    pub celsius: f64,
}

/// Makes sensor names unique by suffixing repeats with ` #2`, ` #3`, ...
/// (two NVMe drives both call themselves `nvme/Composite`).
pub fn dedupe_sensor_names(temps: &mut [Temperature]) {
    let mut seen: HashMap<String, u32> = HashMap::new();
    for t in temps.iter_mut() {
        let count = seen.entry(t.sensor.clone()).or_insert(0);
        *count += 1;
        if *count > 1 {
            t.sensor = format!("{} #{}", t.sensor, count);
        }
    }
}

/// How much a cumulative counter grew. `prev` `None` (new device) or a
/// counter that went down (reset or wrap) counts from 0.
pub fn counter_delta(prev: Option<u64>, cur: u64) -> u64 {
    match prev {
        Some(p) if cur >= p => cur - p,
        _ => cur,
    }
}

/// `count / secs`, 0 when no time elapsed.
fn per_second(count: u64, secs: f64) -> f64 {
    if secs.is_finite() && secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// `part / whole * 100`, 0 when `whole` is 0, at most 100.
fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { (part as f64 * 100.0 / whole as f64).clamp(0.0, 100.0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(user: u64, system: u64, idle: u64, iowait: u64) -> CpuTimes {
        CpuTimes { user, system, idle, iowait, ..CpuTimes::default() }
    }

    #[test]
    fn cpu_percent_is_busy_share_of_elapsed_ticks() {
        let p = cpu(100, 100, 800, 0);
        let c = cpu(130, 120, 850, 0);
        assert!((cpu_percent(&p, &c) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_percent_zero_elapsed_is_zero_not_nan() {
        let p = cpu(1, 2, 3, 4);
        assert_eq!(cpu_percent(&p, &p), 0.0);
        assert_eq!(cpu_percent(&CpuTimes::default(), &CpuTimes::default()), 0.0);
    }

    #[test]
    fn cpu_percent_after_reboot_counts_from_zero() {
        let p = cpu(10_000, 10_000, 80_000, 0);
        let c = cpu(25, 25, 50, 0);
        assert!((cpu_percent(&p, &c) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn cpu_percent_clamps_iowait_going_backwards() {
        // iowait drops by 5 while the total still grows: not a reset.
        let p = cpu(100, 0, 800, 10);
        let c = cpu(110, 0, 890, 5);
        let pct = cpu_percent(&p, &c);
        // busy 10, idle + iowait 810 -> 895: 85
        assert!((pct - 1000.0 / 95.0).abs() < 1e-9, "{pct}");
        // idle group going down alone is clamped, not negative
        let c = cpu(300, 0, 800, 0);
        assert_eq!(cpu_percent(&p, &c), 100.0);
    }

    #[test]
    fn filesystem_usage_matches_df_arithmetic() {
        // 1000 blocks, 400 free of which 50 reserved for root.
        let st = FsStat { fragment_size: 4096, blocks: 1000, blocks_free: 400, blocks_available: 350, files: 200, files_free: 150 };
        let u = filesystem_usage("/", &st);
        assert_eq!(u.total_bytes, 4_096_000);
        assert_eq!(u.available_bytes, 350 * 4096);
        // df: used 600 / (600 + 350)
        assert!((u.used_percent - 600.0 * 100.0 / 950.0).abs() < 1e-9);
        assert_eq!(u.inodes_used_percent, Some(25.0));
    }

    #[test]
    fn filesystem_usage_without_inodes_or_blocks() {
        let u = filesystem_usage("/proc", &FsStat::default());
        assert_eq!(u.used_percent, 0.0);
        assert_eq!(u.inodes_used_percent, None);
        // bfree > blocks (inconsistent statvfs) never underflows
        let st = FsStat { fragment_size: 1, blocks: 1, blocks_free: 5, ..FsStat::default() };
        assert_eq!(filesystem_usage("/x", &st).used_percent, 0.0);
    }

    fn disk(name: &str, reads: u64, sr: u64, writes: u64, sw: u64) -> DiskCounters {
        DiskCounters { name: name.into(), reads_completed: reads, sectors_read: sr, writes_completed: writes, sectors_written: sw }
    }

    #[test]
    fn disk_rates_per_second_with_reset_and_hotplug() {
        let prev = vec![disk("sda", 100, 1000, 50, 2000), disk("gone", 1, 1, 1, 1)];
        let cur = vec![disk("sda", 120, 1400, 40, 2200), disk("sdb", 10, 8, 0, 0)];
        let r = disk_rates(&prev, &cur, Duration::from_secs(2));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].device, "sda");
        assert_eq!(r[0].reads_per_sec, 10.0);
        assert_eq!(r[0].read_bytes_per_sec, 400.0 * 512.0 / 2.0);
        // writes went down 50 -> 40: reset, counts from 0
        assert_eq!(r[0].writes_per_sec, 20.0);
        assert_eq!(r[0].write_bytes_per_sec, 200.0 * 512.0 / 2.0);
        // new device counts from 0
        assert_eq!(r[1].device, "sdb");
        assert_eq!(r[1].reads_per_sec, 5.0);
    }

    #[test]
    fn rates_with_zero_elapsed_are_zero() {
        let d = vec![disk("sda", 100, 1000, 50, 2000)];
        let r = disk_rates(&[], &d, Duration::ZERO);
        assert_eq!(r[0].read_bytes_per_sec, 0.0);
        let n = vec![NetCounters { name: "eth0".into(), rx_bytes: 10, ..NetCounters::default() }];
        let r = net_rates(&[], &n, Duration::ZERO);
        assert_eq!(r[0].rx_bytes_per_sec, 0.0);
        assert_eq!(r[0].rx_errors, 0);
    }

    #[test]
    fn net_rates_report_interval_errors_and_drops() {
        let p = NetCounters {
            name: "eth0".into(),
            rx_bytes: 1000,
            rx_errors: 3,
            rx_drops: 1,
            tx_bytes: u64::from(u32::MAX) - 10,
            tx_errors: 0,
            tx_drops: 0,
        };
        let c = NetCounters {
            rx_bytes: 3000,
            rx_errors: 5,
            rx_drops: 1,
            tx_bytes: 90, // 32-bit wrap: treated as a reset
            ..p.clone()
        };
        let r = net_rates(std::slice::from_ref(&p), std::slice::from_ref(&c), Duration::from_millis(500));
        assert_eq!(r[0].rx_bytes_per_sec, 4000.0);
        assert_eq!(r[0].tx_bytes_per_sec, 180.0);
        assert_eq!(r[0].rx_errors, 2);
        assert_eq!(r[0].rx_drops, 0);
    }

    #[test]
    fn partitions_of_listed_disks_and_virtual_devices_are_skipped() {
        let all = [
            "sda",
            "sda1",
            "nvme0n1",
            "nvme0n1p1",
            "mmcblk0",
            "mmcblk0p2",
            "loop0",
            "ram0",
            "zram0",
            "dm-0",
            "md0",
            "sdb1",
            "xvda",
            "xvda1",
            "nvme0n10",
        ];
        let mut disks: Vec<DiskCounters> = all.iter().map(|n| disk(n, 0, 0, 0, 0)).collect();
        retain_reported_disks(&mut disks);
        let kept: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        // sdb1 stays: its disk is not listed; nvme0n10 is not a partition of nvme0n1
        assert_eq!(kept, ["sda", "nvme0n1", "mmcblk0", "dm-0", "md0", "sdb1", "xvda", "nvme0n10"]);
    }

    #[test]
    fn process_cpu_percent_handles_reuse_and_new_pids() {
        let tick = |start_time, cpu_ticks| ProcessTicks { start_time, cpu_ticks };
        let s = Duration::from_secs(10);
        assert_eq!(process_cpu_percent(Some(tick(5, 100)), tick(5, 600), s, 100), 50.0);
        // two cores busy
        assert_eq!(process_cpu_percent(Some(tick(5, 0)), tick(5, 2000), s, 100), 200.0);
        // pid reused by a process started later: all its ticks are new
        assert_eq!(process_cpu_percent(Some(tick(5, 900)), tick(7, 100), s, 100), 10.0);
        assert_eq!(process_cpu_percent(None, tick(7, 100), s, 100), 10.0);
        assert_eq!(process_cpu_percent(None, tick(7, 100), Duration::ZERO, 100), 0.0);
        assert_eq!(process_cpu_percent(None, tick(7, 100), s, 0), 0.0);
    }

    #[test]
    fn top_n_keeps_highest_and_builds_only_winners() {
        let mut top = TopN::new(3);
        let mut built = 0;
        for (score, name) in [(1.0, "a"), (5.0, "b"), (3.0, "c"), (0.5, "d"), (4.0, "e"), (f64::NAN, "n")] {
            top.offer(score, || {
                built += 1;
                name
            });
        }
        assert_eq!(top.into_sorted(), ["b", "e", "c"]);
        assert_eq!(built, 4, "d and NaN are never built");
        assert!(TopN::<()>::new(0).into_sorted().is_empty());
    }

    #[test]
    fn duplicate_sensor_names_get_a_suffix() {
        let mut t = vec![
            Temperature { sensor: "nvme/Composite".into(), celsius: 40.0 },
            Temperature { sensor: "coretemp/Core 0".into(), celsius: 50.0 },
            Temperature { sensor: "nvme/Composite".into(), celsius: 41.0 },
        ];
        dedupe_sensor_names(&mut t);
        let names: Vec<_> = t.iter().map(|t| t.sensor.as_str()).collect();
        assert_eq!(names, ["nvme/Composite", "coretemp/Core 0", "nvme/Composite #2"]);
    }

    #[test]
    fn counter_delta_never_negative() {
        assert_eq!(counter_delta(Some(5), 7), 2);
        assert_eq!(counter_delta(Some(7), 5), 5);
        assert_eq!(counter_delta(None, 5), 5);
        assert_eq!(counter_delta(Some(u64::MAX), 0), 0);
    }
}
