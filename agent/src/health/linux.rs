//! The Linux reader behind health samples: `Sampler` reads `/proc` and sysfs
//! under a root directory, hands the text to `parse`, and keeps the previous
//! raw readings so `sample` can turn counters into rates.
//!
//! Invariants:
//! - a metric that cannot be read or parsed is absent from the sample and
//!   its error is returned beside it; nothing stops the sample;
//! - the first reading of a counter yields no rate (`None`); each later one
//!   is measured against that counter's own previous reading, timed by
//!   `/proc/uptime` (monotonic) and by the caller's clock when uptime is
//!   unreadable;
//! - the process scan is cheap: one bounded read of `/proc/PID/stat` per
//!   process into a reused buffer, at most `MAX_PROCESSES` of them, names
//!   allocated only for the few processes that make a top list.
//!
//! Resident sets come from `/proc/PID/stat`'s `rss` field, which is the same
//! number as `/proc/PID/statm`'s second field; reading only `stat` halves
//! the files opened per process.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::health::parse::{self, MAX_SMALL_BYTES, MAX_TABLE_BYTES};
use crate::health::sample::{
    CpuTimes, DiskCounters, FsStat, HealthSample, NetCounters, ProcessCpu, ProcessMemory, ProcessTicks, TOP_PROCESSES, Temperature, TopN,
    cpu_percent, dedupe_sensor_names, disk_rates, filesystem_usage, net_rates, process_cpu_percent, retain_reported_disks,
};

/// At most this many `/proc/PID/stat` files are read per sample; the
/// process count still counts them all.
pub const MAX_PROCESSES: usize = 10_000;
/// Used when `/proc/self/auxv` is unreadable (fixture trees).
const DEFAULT_PAGE_SIZE: u64 = 4096;
/// USER_HZ, the unit of `/proc` CPU times: 100 on every Linux architecture.
const DEFAULT_CLOCK_TICKS: u64 = 100;

/// When a reading was taken: the caller's wall clock and, when readable,
/// the kernel's uptime, which does not jump when the clock is set.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stamp {
    unix_ms: i64,
    uptime_secs: Option<f64>,
}

impl Stamp {
    /// Time from `earlier` to `self`; `None` when it is not positive.
    fn since(&self, earlier: &Stamp) -> Option<Duration> {
        let secs = match (earlier.uptime_secs, self.uptime_secs) {
            (Some(a), Some(b)) if b > a => b - a,
            _ => self.unix_ms.saturating_sub(earlier.unix_ms) as f64 / 1000.0,
        };
        if secs > 0.0 { Duration::try_from_secs_f64(secs).ok() } else { None }
    }
}

/// Takes health samples of the Linux system under `root`, remembering the
/// previous readings between calls.
#[derive(Debug)]
pub struct Sampler {
    root: PathBuf,
    page_size: u64,
    clock_ticks: u64,
    max_processes: usize,
    cpu: Option<(Stamp, CpuTimes)>,
    disks: Option<(Stamp, Vec<DiskCounters>)>,
    net: Option<(Stamp, Vec<NetCounters>)>,
    /// When `prev_procs` was scanned.
    procs_stamp: Option<Stamp>,
    prev_procs: HashMap<u32, ProcessTicks>,
    /// Filled during a scan, then swapped with `prev_procs`; kept to reuse
    /// its allocation.
    cur_procs: HashMap<u32, ProcessTicks>,
    /// Reused read buffer.
    text: String,
    /// Reused path for per-process files.
    path: PathBuf,
}

impl Sampler {
    /// A sampler of the system under `root` ("/" in production). Page size
    /// and clock ticks come from `root/proc/self/auxv` when readable.
    pub fn new(root: &Path) -> Sampler {
        let auxv = std::fs::File::open(root.join("proc/self/auxv"))
            .and_then(|f| {
                let mut bytes = Vec::new();
                f.take(MAX_SMALL_BYTES as u64 + 1).read_to_end(&mut bytes).map(|_| bytes)
            })
            .ok()
            .and_then(|bytes| parse::parse_auxv(&bytes).ok())
            .unwrap_or_default();
        Sampler {
            root: root.to_owned(),
            page_size: auxv.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            clock_ticks: auxv.clock_ticks_per_sec.unwrap_or(DEFAULT_CLOCK_TICKS),
            max_processes: MAX_PROCESSES,
            cpu: None,
            disks: None,
            net: None,
            procs_stamp: None,
            prev_procs: HashMap::new(),
            cur_procs: HashMap::new(),
            text: String::with_capacity(4096),
            path: PathBuf::new(),
        }
    }

    /// Lowers the process-scan cap (tests; hosts that want a cheaper scan).
    pub fn with_max_processes(mut self, max: usize) -> Sampler {
        self.max_processes = max;
        self
    }

    /// Takes a sample at `now_unix_ms`. `mounts` pairs each mount point to
    /// report with what `statvfs` said about it. Returns the sample and the
    /// errors of the metrics that could not be read.
    pub fn sample(&mut self, now_unix_ms: i64, mounts: &[(String, FsStat)]) -> (HealthSample, Vec<Error>) {
        let mut errors = Vec::new();
        let mut s = HealthSample::empty(now_unix_ms);

        s.uptime_seconds = keep(self.read_parsed("proc/uptime", parse::parse_uptime), &mut errors);
        let stamp = Stamp { unix_ms: now_unix_ms, uptime_secs: s.uptime_seconds };

        if let Some(cpu) = keep(self.read_parsed("proc/stat", parse::parse_proc_stat), &mut errors) {
            s.cpu_percent = advance(&mut self.cpu, stamp, cpu, |p, c, _| cpu_percent(p, c));
        }
        s.load = keep(self.read_parsed("proc/loadavg", parse::parse_loadavg), &mut errors);
        s.memory = keep(self.read_parsed("proc/meminfo", parse::parse_meminfo_health), &mut errors);
        s.filesystems = mounts.iter().map(|(mount, st)| filesystem_usage(mount, st)).collect();

        if let Some(mut disks) = keep(self.read_parsed("proc/diskstats", parse::parse_diskstats), &mut errors) {
            retain_reported_disks(&mut disks);
            s.disks = advance(&mut self.disks, stamp, disks, |p, c, e| disk_rates(p, c, e));
        }
        if let Some(net) = keep(self.read_parsed("proc/net/dev", parse::parse_net_dev), &mut errors) {
            s.network = advance(&mut self.net, stamp, net, |p, c, e| net_rates(p, c, e));
        }

        if let Some(scan) = self.scan_processes(stamp, &mut errors) {
            s.process_count = Some(scan.count);
            s.top_by_cpu = scan.top_by_cpu;
            s.top_by_memory = Some(scan.top_by_memory);
        }

        s.temperatures = self.temperatures(&mut errors);

        s.agent_rss_bytes = keep(self.read_parsed("proc/self/status", parse::parse_status_vm_rss), &mut errors);
        let clock_ticks = self.clock_ticks;
        s.agent_cpu_seconds = keep(
            self.read_parsed("proc/self/stat", |text| {
                let st = parse::parse_pid_stat(text)?;
                Ok(st.utime.saturating_add(st.stime) as f64 / clock_ticks as f64)
            }),
            &mut errors,
        );

        (s, errors)
    }

    /// Reads `root/rel` into the reused buffer and parses it.
    fn read_parsed<T>(&mut self, rel: &str, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
        let path = self.root.join(rel);
        read_text(&path, MAX_TABLE_BYTES, &mut self.text)?;
        parse(&self.text).map_err(|e| name_file(e, &path))
    }

    /// Counts processes and keeps the top CPU and memory users, reading one
    /// `stat` file per process.
    fn scan_processes(&mut self, stamp: Stamp, errors: &mut Vec<Error>) -> Option<ProcessScan> {
        let proc_dir = self.root.join("proc");
        let entries = match std::fs::read_dir(&proc_dir) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(Error::io("listing", &proc_dir, e));
                return None;
            }
        };
        let elapsed = self.procs_stamp.and_then(|then| stamp.since(&then));
        let mut top_cpu = TopN::new(TOP_PROCESSES);
        let mut top_memory = TopN::new(TOP_PROCESSES);
        let mut count: u32 = 0;
        let mut scanned: usize = 0;
        let mut first_parse_error = None;
        self.cur_procs.clear();
        self.path.clear();
        self.path.push(&proc_dir);

        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            count = count.saturating_add(1);
            if scanned >= self.max_processes {
                continue;
            }
            scanned += 1;

            self.path.push(&name);
            self.path.push("stat");
            let parsed = read_text(&self.path, MAX_SMALL_BYTES, &mut self.text)
                .and_then(|()| parse::parse_pid_stat(&self.text).map_err(|e| name_file(e, &self.path)));
            self.path.pop();
            self.path.pop();
            let stat = match parsed {
                Ok(stat) => stat,
                // A process that exits between listing and reading is normal.
                Err(Error::Io { .. }) => continue,
                // One bad file is worth reporting; thousands of copies are not.
                Err(e) => {
                    first_parse_error.get_or_insert(e);
                    continue;
                }
            };

            let ticks = ProcessTicks { start_time: stat.start_time, cpu_ticks: stat.utime.saturating_add(stat.stime) };
            self.cur_procs.insert(pid, ticks);
            if let Some(elapsed) = elapsed {
                let prev = self.prev_procs.get(&pid).copied();
                let pct = process_cpu_percent(prev, ticks, elapsed, self.clock_ticks);
                if pct > 0.0 {
                    top_cpu.offer(pct, || ProcessCpu { pid, name: stat.comm.to_owned(), cpu_percent: pct });
                }
            }
            let rss = stat.rss_pages.saturating_mul(self.page_size);
            if rss > 0 {
                top_memory.offer(rss as f64, || ProcessMemory { pid, name: stat.comm.to_owned(), rss_bytes: rss });
            }
        }

        std::mem::swap(&mut self.prev_procs, &mut self.cur_procs);
        self.procs_stamp = Some(stamp);
        errors.extend(first_parse_error);
        if scanned < count as usize {
            errors.push(Error::parse(
                proc_dir.display().to_string(),
                None,
                format!("{count} processes; only the first {} were scanned for the top lists", self.max_processes),
            ));
        }
        Some(ProcessScan { count, top_by_cpu: elapsed.map(|_| top_cpu.into_sorted()), top_by_memory: top_memory.into_sorted() })
    }

    /// Thermal zones, then hwmon temperature inputs. A sensor whose file
    /// cannot be read is skipped without an error: drivers answer EIO or
    /// ENODATA for sensors that are switched off (a Wi-Fi card that is down).
    fn temperatures(&mut self, errors: &mut Vec<Error>) -> Vec<Temperature> {
        let mut out = Vec::new();

        let thermal = self.root.join("sys/class/thermal");
        for (_, name) in numbered_entries(&thermal, "thermal_zone", "", errors) {
            let zone = thermal.join(name);
            let (Ok(kind), Ok(temp)) = (read_owned(&zone.join("type")), read_owned(&zone.join("temp"))) else {
                continue;
            };
            match parse::parse_thermal_zone(&kind, &temp) {
                Ok(t) => out.push(t),
                Err(e) => errors.push(name_file(e, &zone)),
            }
        }

        let hwmon = self.root.join("sys/class/hwmon");
        for (_, name) in numbered_entries(&hwmon, "hwmon", "", errors) {
            let chip_dir = hwmon.join(name);
            let Ok(chip) = read_owned(&chip_dir.join("name")) else {
                continue;
            };
            for (index, input_name) in numbered_entries(&chip_dir, "temp", "_input", errors) {
                let input_path = chip_dir.join(input_name);
                let Ok(input) = read_owned(&input_path) else {
                    continue;
                };
                let label = read_owned(&chip_dir.join(format!("temp{index}_label"))).ok();
                match parse::parse_hwmon_temp(&chip, index, &input, label.as_deref()) {
                    Ok(t) => out.push(t),
                    Err(e) => errors.push(name_file(e, &input_path)),
                }
            }
        }

        dedupe_sensor_names(&mut out);
        out
    }
}

/// What one pass over `/proc/PID` found.
struct ProcessScan {
    count: u32,
    top_by_cpu: Option<Vec<ProcessCpu>>,
    top_by_memory: Vec<ProcessMemory>,
}

/// Replaces the previous reading in `slot` with `cur` and returns the rate
/// between them, or `None` when there was no previous reading or no time
/// passed. The newest reading always becomes the baseline.
fn advance<T, R>(slot: &mut Option<(Stamp, T)>, stamp: Stamp, cur: T, rate: impl FnOnce(&T, &T, Duration) -> R) -> Option<R> {
    let out = slot.as_ref().and_then(|(then, prev)| stamp.since(then).map(|elapsed| rate(prev, &cur, elapsed)));
    *slot = Some((stamp, cur));
    out
}

/// `Ok` value, or `None` with the error recorded.
fn keep<T>(r: Result<T>, errors: &mut Vec<Error>) -> Option<T> {
    r.map_err(|e| errors.push(e)).ok()
}

/// Reads at most `limit + 1` bytes of `path` into `buf` (cleared first), so
/// a parser can tell the file was over its limit without reading it all.
fn read_text(path: &Path, limit: usize, buf: &mut String) -> Result<()> {
    buf.clear();
    let file = File::open(path).map_err(|e| Error::io("reading", path, e))?;
    file.take(limit as u64 + 1).read_to_string(buf).map_err(|e| Error::io("reading", path, e))?;
    Ok(())
}

/// A small sysfs attribute as an owned string.
fn read_owned(path: &Path) -> Result<String> {
    let mut s = String::new();
    read_text(path, MAX_SMALL_BYTES, &mut s)?;
    Ok(s)
}

/// Parsers name the kind of file; the reader knows which one it was.
fn name_file(e: Error, path: &Path) -> Error {
    match e {
        Error::Parse { line, reason, .. } => Error::Parse { what: path.display().to_string(), line, reason },
        other => other,
    }
}

/// Entries of `dir` named `<prefix><N><suffix>`, sorted by N (so `hwmon10`
/// comes after `hwmon2`). A missing directory has no entries and no error:
/// VMs and containers often have no sensors.
fn numbered_entries(dir: &Path, prefix: &str, suffix: &str, errors: &mut Vec<Error>) -> Vec<(u32, OsString)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(Error::io("listing", dir, e));
            return Vec::new();
        }
    };
    let mut out: Vec<(u32, OsString)> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name();
            let n = name.to_str()?.strip_prefix(prefix)?.strip_suffix(suffix)?.parse().ok()?;
            Some((n, name))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempTree(PathBuf);

    impl TempTree {
        fn new(tag: &str) -> TempTree {
            let dir = std::env::temp_dir().join(format!("census-health-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir is writable");
            TempTree(dir)
        }

        fn write(&self, rel: &str, text: &str) {
            let path = self.0.join(rel);
            std::fs::create_dir_all(path.parent().expect("fixture paths have a parent")).expect("temp dir is writable");
            std::fs::write(path, text).expect("temp dir is writable");
        }
    }

    impl Drop for TempTree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    macro_rules! fixture {
        ($rel:literal) => {
            include_str!(concat!("../../tests/fixtures/health/", $rel))
        };
    }

    /// The first reading of the laptop fixture: `/proc` captured on a real
    /// machine plus a hand-written laptop's disks, interfaces, processes and
    /// sensors.
    fn laptop_reading_1(t: &TempTree) {
        for (rel, text) in [
            ("proc/uptime", fixture!("proc_uptime_1.txt")),
            ("proc/stat", fixture!("proc_stat_1.txt")),
            ("proc/loadavg", fixture!("proc_loadavg_1.txt")),
            ("proc/meminfo", fixture!("proc_meminfo_1.txt")),
            ("proc/diskstats", fixture!("laptop_diskstats.txt")),
            ("proc/net/dev", fixture!("laptop/proc/net/dev")),
            ("proc/self/status", fixture!("proc_self_status.txt")),
            ("proc/self/stat", fixture!("proc_self_stat.txt")),
            ("proc/1/stat", fixture!("laptop/proc/1/stat")),
            ("proc/88/stat", fixture!("laptop/proc/88/stat")),
            ("proc/777/stat", fixture!("laptop/proc/777/stat")),
            ("proc/4242/stat", fixture!("proc_pid_stat_tricky.txt")),
            ("sys/class/thermal/thermal_zone0/type", fixture!("laptop/sys/class/thermal/thermal_zone0/type")),
            ("sys/class/thermal/thermal_zone0/temp", fixture!("laptop/sys/class/thermal/thermal_zone0/temp")),
            ("sys/class/thermal/thermal_zone1/type", fixture!("laptop/sys/class/thermal/thermal_zone1/type")),
            ("sys/class/thermal/thermal_zone1/temp", fixture!("laptop/sys/class/thermal/thermal_zone1/temp")),
            ("sys/class/thermal/thermal_zone2/type", fixture!("laptop/sys/class/thermal/thermal_zone2/type")),
            ("sys/class/thermal/thermal_zone2/temp", fixture!("laptop/sys/class/thermal/thermal_zone2/temp")),
            ("sys/class/thermal/thermal_zone3/type", fixture!("laptop/sys/class/thermal/thermal_zone3/type")),
            ("sys/class/thermal/thermal_zone3/temp", fixture!("laptop/sys/class/thermal/thermal_zone3/temp")),
            ("sys/class/thermal/thermal_zone4/type", fixture!("laptop/sys/class/thermal/thermal_zone4/type")),
            ("sys/class/thermal/cooling_device0/type", fixture!("laptop/sys/class/thermal/cooling_device0/type")),
            ("sys/class/hwmon/hwmon0/name", fixture!("laptop/sys/class/hwmon/hwmon0/name")),
            ("sys/class/hwmon/hwmon0/temp1_input", fixture!("laptop/sys/class/hwmon/hwmon0/temp1_input")),
            ("sys/class/hwmon/hwmon1/name", fixture!("laptop/sys/class/hwmon/hwmon1/name")),
            ("sys/class/hwmon/hwmon1/in0_input", fixture!("laptop/sys/class/hwmon/hwmon1/in0_input")),
            ("sys/class/hwmon/hwmon2/name", fixture!("laptop/sys/class/hwmon/hwmon2/name")),
            ("sys/class/hwmon/hwmon2/temp1_input", fixture!("laptop/sys/class/hwmon/hwmon2/temp1_input")),
            ("sys/class/hwmon/hwmon2/temp1_label", fixture!("laptop/sys/class/hwmon/hwmon2/temp1_label")),
            ("sys/class/hwmon/hwmon2/temp1_max", fixture!("laptop/sys/class/hwmon/hwmon2/temp1_max")),
            ("sys/class/hwmon/hwmon2/temp2_input", fixture!("laptop/sys/class/hwmon/hwmon2/temp2_input")),
            ("sys/class/hwmon/hwmon2/temp2_label", fixture!("laptop/sys/class/hwmon/hwmon2/temp2_label")),
            ("sys/class/hwmon/hwmon3/name", fixture!("laptop/sys/class/hwmon/hwmon3/name")),
            ("sys/class/hwmon/hwmon3/temp1_input", fixture!("laptop/sys/class/hwmon/hwmon3/temp1_input")),
            ("sys/class/hwmon/hwmon3/temp1_label", fixture!("laptop/sys/class/hwmon/hwmon3/temp1_label")),
            ("sys/class/hwmon/hwmon3/temp2_input", fixture!("laptop/sys/class/hwmon/hwmon3/temp2_input")),
            ("sys/class/hwmon/hwmon3/temp2_label", fixture!("laptop/sys/class/hwmon/hwmon3/temp2_label")),
            ("sys/class/hwmon/hwmon3/temp3_input", fixture!("laptop/sys/class/hwmon/hwmon3/temp3_input")),
            ("sys/class/hwmon/hwmon3/temp3_label", fixture!("laptop/sys/class/hwmon/hwmon3/temp3_label")),
            ("sys/class/hwmon/hwmon10/name", fixture!("laptop/sys/class/hwmon/hwmon10/name")),
            ("sys/class/hwmon/hwmon10/temp1_input", fixture!("laptop/sys/class/hwmon/hwmon10/temp1_input")),
            ("sys/class/hwmon/hwmon10/temp1_label", fixture!("laptop/sys/class/hwmon/hwmon10/temp1_label")),
            ("sys/class/hwmon/hwmon11/name", fixture!("laptop/sys/class/hwmon/hwmon11/name")),
            ("sys/class/hwmon/hwmon11/temp1_input", fixture!("laptop/sys/class/hwmon/hwmon11/temp1_input")),
        ] {
            t.write(rel, text);
        }
    }

    /// The second reading, 2.07 s of uptime later: pid 777 exited, pid 900
    /// started, a veth went away, docker0's counter was reset, sda was
    /// unplugged, sdb plugged in, dm-0 recreated.
    fn laptop_reading_2(t: &TempTree) {
        for (rel, text) in [
            ("proc/uptime", fixture!("proc_uptime_2.txt")),
            ("proc/stat", fixture!("proc_stat_2.txt")),
            ("proc/diskstats", fixture!("laptop_diskstats_2.txt")),
            ("proc/net/dev", fixture!("laptop_2/proc/net/dev")),
            ("proc/1/stat", fixture!("laptop_2/proc/1/stat")),
            ("proc/4242/stat", fixture!("laptop_2/proc/4242/stat")),
            ("proc/900/stat", fixture!("laptop_2/proc/900/stat")),
        ] {
            t.write(rel, text);
        }
        std::fs::remove_dir_all(t.0.join("proc/777")).expect("pid 777 was written");
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    #[test]
    fn first_sample_has_levels_but_no_rates() {
        let t = TempTree::new("first");
        laptop_reading_1(&t);
        let mounts = vec![(
            "/".to_owned(),
            FsStat { fragment_size: 4096, blocks: 100, blocks_free: 10, blocks_available: 5, files: 10, files_free: 9 },
        )];
        let (s, errors) = Sampler::new(&t.0).sample(1_700_000_000_000, &mounts);

        assert_eq!(s.taken_at_unix_ms, 1_700_000_000_000);
        assert_eq!((s.cpu_percent, &s.disks, &s.network, &s.top_by_cpu), (None, &None, &None, &None));
        assert_eq!(s.uptime_seconds, Some(1270.67));
        assert_eq!(s.load.map(|l| l.one), Some(0.40));
        assert_eq!(s.memory, parse::parse_meminfo_health(fixture!("proc_meminfo_1.txt")).ok());
        assert_eq!(s.filesystems.len(), 1);
        assert!(close(s.filesystems[0].used_percent, 90.0 * 100.0 / 95.0));
        assert_eq!(s.process_count, Some(4), "1, 88, 777, 4242; `self` is not a process");
        let memory: Vec<(u32, &str, u64)> = s.top_by_memory.iter().flatten().map(|p| (p.pid, p.name.as_str(), p.rss_bytes)).collect();
        assert_eq!(memory, [(1, "systemd", 3000 * 4096), (4242, "my (evil)) app", 2048 * 4096), (777, "sleep", 200 * 4096)]);

        let sensors: Vec<(&str, f64)> = s.temperatures.iter().map(|t| (t.sensor.as_str(), t.celsius)).collect();
        assert_eq!(
            sensors,
            [
                ("thermal/acpitz", 48.0),
                ("thermal/INT3400 Thermal", 20.0),
                ("thermal/x86_pkg_temp", 52.0),
                ("thermal/TCPU", 51.25),
                ("acpitz/temp1", 48.0),
                ("nvme/Composite", 38.85),
                ("nvme/Sensor 1", 44.85),
                ("coretemp/Package id 0", 52.0),
                ("coretemp/Core 0", 49.0),
                ("coretemp/Core 1", 51.0),
                ("nvme/Composite #2", 35.85),
            ]
        );
        let rss = parse::parse_status_vm_rss(fixture!("proc_self_status.txt")).ok();
        assert_eq!(s.agent_rss_bytes, rss);
        assert_eq!(s.agent_cpu_seconds, Some(0.0));
        assert_eq!(s.failed_units, None);

        // The only error: the thinkpad chip's broken reading, naming its file.
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("hwmon11/temp1_input") && errors[0].contains("implausible temperature -128000 °C"), "{errors:?}");
    }

    #[test]
    fn second_sample_has_rates() {
        let t = TempTree::new("second");
        laptop_reading_1(&t);
        let mut sampler = Sampler::new(&t.0);
        let _ = sampler.sample(1_700_000_000_000, &[]);
        laptop_reading_2(&t);
        // The wall clock jumped back an hour: uptime still times the interval.
        let (s, _) = sampler.sample(1_700_000_000_000 - 3_600_000, &[]);
        let secs = 1272.74 - 1270.67;

        // CPU: busy and idle deltas of the two captured /proc/stat files.
        let (a, b) = (
            parse::parse_proc_stat(fixture!("proc_stat_1.txt")).expect("fixture parses"),
            parse::parse_proc_stat(fixture!("proc_stat_2.txt")).expect("fixture parses"),
        );
        let busy = (b.busy() - a.busy()) as f64;
        let idle = (b.idle_all() - a.idle_all()) as f64;
        assert!(close(s.cpu_percent.expect("second sample has CPU %"), busy * 100.0 / (busy + idle)));

        let disks = s.disks.expect("second sample has disk rates");
        let names: Vec<&str> = disks.iter().map(|d| d.device.as_str()).collect();
        assert_eq!(names, ["nvme0n1", "mmcblk0", "dm-0", "sdb"]);
        assert!(close(disks[0].reads_per_sec, 100.0 / secs));
        assert!(close(disks[0].read_bytes_per_sec, 10_000.0 * 512.0 / secs));
        assert!(close(disks[0].writes_per_sec, 100.0 / secs));
        assert_eq!(disks[1].read_bytes_per_sec, 0.0);
        assert!(close(disks[2].reads_per_sec, 40.0 / secs), "dm-0 was reset: counts from 0");
        assert!(close(disks[3].reads_per_sec, 30.0 / secs), "sdb is new: counts from 0");

        let net = s.network.expect("second sample has network rates");
        let names: Vec<&str> = net.iter().map(|n| n.interface.as_str()).collect();
        assert_eq!(names, ["lo", "wlp0s20f3", "docker0"]);
        assert!(close(net[1].rx_bytes_per_sec, 1_000_000.0));
        assert!(close(net[1].tx_bytes_per_sec, 100_000.0));
        assert_eq!((net[1].rx_errors, net[1].tx_errors, net[1].rx_drops, net[1].tx_drops), (3, 1, 0, 2));
        assert!(close(net[2].rx_bytes_per_sec, 1000.0), "docker0 was reset: counts from 0");

        assert_eq!(s.process_count, Some(4), "1, 88, 900, 4242");
        let cpu: Vec<(u32, &str, f64)> = s.top_by_cpu.iter().flatten().map(|p| (p.pid, p.name.as_str(), p.cpu_percent)).collect();
        assert_eq!(cpu.len(), 3, "{cpu:?}");
        assert_eq!((cpu[0].0, cpu[0].1), (4242, "my (evil)) app"));
        assert!(close(cpu[0].2, 100.0), "{cpu:?}");
        assert_eq!(cpu[1].0, 1);
        assert!(close(cpu[1].2, 100.0 / secs), "{cpu:?}");
        assert_eq!((cpu[2].0, cpu[2].1), (900, "make"));
        assert!(close(cpu[2].2, 20.0 / secs), "new pid counts from 0: {cpu:?}");
        let memory: Vec<u32> = s.top_by_memory.iter().flatten().map(|p| p.pid).collect();
        assert_eq!(memory, [1, 4242, 900]);
    }

    #[test]
    fn zero_elapsed_gives_no_rates_and_missing_files_give_errors_not_panics() {
        let t = TempTree::new("zero");
        laptop_reading_1(&t);
        let mut sampler = Sampler::new(&t.0);
        let _ = sampler.sample(5_000, &[]);
        // Same uptime file, same clock: nothing elapsed.
        let (s, _) = sampler.sample(5_000, &[]);
        assert_eq!((s.cpu_percent, s.disks, s.network, s.top_by_cpu), (None, None, None, None));
        // Uptime unchanged but the clock moved: the clock times the interval.
        let (s, _) = sampler.sample(6_000, &[]);
        assert_eq!(s.cpu_percent, Some(0.0));

        let empty = TempTree::new("empty");
        let (s, errors) = Sampler::new(&empty.0).sample(1, &[]);
        assert_eq!(s, HealthSample::empty(1));
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        // uptime, stat, loadavg, meminfo, diskstats, net/dev, the /proc listing, self/status, self/stat
        assert_eq!(errors.len(), 9, "{errors:?}");
        assert!(errors.iter().all(|e| e.starts_with("reading ") || e.starts_with("listing ")), "{errors:?}");
    }

    #[test]
    fn process_scan_is_capped_and_says_so() {
        let t = TempTree::new("cap");
        laptop_reading_1(&t);
        let (s, errors) = Sampler::new(&t.0).with_max_processes(2).sample(1, &[]);
        assert_eq!(s.process_count, Some(4), "the count still covers every process");
        assert!(s.top_by_memory.is_some_and(|m| m.len() <= 2));
        assert!(errors.iter().any(|e| e.to_string().contains("4 processes; only the first 2 were scanned")), "{errors:?}");
    }

    #[test]
    fn a_malformed_process_is_reported_once_and_skipped() {
        let t = TempTree::new("badpid");
        laptop_reading_1(&t);
        t.write("proc/31/stat", fixture!("proc_pid_stat_truncated.txt"));
        t.write("proc/32/stat", fixture!("proc_pid_stat_truncated.txt"));
        let (s, errors) = Sampler::new(&t.0).sample(1, &[]);
        assert_eq!(s.process_count, Some(6));
        let bad: Vec<String> = errors.iter().map(ToString::to_string).filter(|e| e.contains("line ends before field 16")).collect();
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].contains("/proc/3"), "names the file: {bad:?}");
    }

    /// Measures the cost of a sample on this machine; prints, asserts
    /// nothing about time (run with `--nocapture` to see it).
    #[cfg(target_os = "linux")]
    #[test]
    fn live_sample_cost() {
        let root = Path::new("/");
        let mut sampler = Sampler::new(root);
        let mounts = [("/".to_owned(), FsStat::default())];
        // The clock passed in advances 15 s per sample, so that samples taken
        // within the same 10 ms tick of /proc/uptime still compute rates.
        let start_ms = crate_now_ms();
        let _ = sampler.sample(start_ms, &mounts);
        let runs: u32 = 20;
        let started = std::time::Instant::now();
        let mut last = None;
        for i in 1..=runs {
            last = Some(sampler.sample(start_ms + i64::from(i) * 15_000, &mounts));
        }
        let per_sample = started.elapsed() / runs;
        let (s, errors) = last.expect("ran at least once");
        println!(
            "live health sample: {per_sample:?} per sample (wall) over {runs} runs; {} processes, {} disks, {} interfaces, {} sensors, {} errors: {errors:?}",
            s.process_count.unwrap_or(0),
            s.disks.as_ref().map_or(0, Vec::len),
            s.network.as_ref().map_or(0, Vec::len),
            s.temperatures.len(),
            errors.len(),
        );

        // Oracles: what the machine itself says.
        let listed = std::fs::read_dir("/proc")
            .expect("/proc is listable")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .count();
        let counted = s.process_count.expect("live process count") as usize;
        assert!(counted.abs_diff(listed) < 50, "sampler counted {counted}, /proc lists {listed}");
        let status = std::fs::read_to_string("/proc/self/status").expect("own status is readable");
        let own_rss = parse::parse_status_vm_rss(&status).expect("own status parses");
        let sampled_rss = s.agent_rss_bytes.expect("own RSS");
        assert!(sampled_rss.abs_diff(own_rss) < 64 << 20, "{sampled_rss} vs {own_rss}");
        assert!(s.cpu_percent.is_some_and(|p| (0.0..=100.0).contains(&p)));
        assert!(s.top_by_cpu.is_some());
    }

    #[cfg(target_os = "linux")]
    fn crate_now_ms() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}
