//! Parsers for the Linux files and command output health sampling reads.
//!
//! Every parser takes the text (or bytes) already read, never touches the
//! filesystem, never panics, and refuses input larger than its limit with a
//! clear error instead of working through it. Errors name the file and the
//! 1-based line.

use crate::error::{Error, Result};
use crate::health::sample::{CpuTimes, DiskCounters, LoadAverage, MemoryUsage, NetCounters, PidStat, Temperature};

/// Limit for tables that grow with the machine (`/proc/stat` with its
/// interrupt line on a big host, `/proc/diskstats`, `/proc/net/dev` with
/// thousands of container veths, `systemctl` output).
pub const MAX_TABLE_BYTES: usize = 8 << 20;
/// Limit for files of one or a few short lines (`/proc/PID/stat`,
/// `/proc/loadavg`, sysfs attributes, `/proc/self/status`).
pub const MAX_SMALL_BYTES: usize = 64 << 10;
/// `systemctl --failed` listing more units than this is not a real host.
pub const MAX_FAILED_UNITS: usize = 10_000;
/// systemd's own limit on a unit name (UNIT_NAME_MAX).
const MAX_UNIT_NAME: usize = 256;
/// auxv entry types (linux/auxvec.h).
const AT_NULL: u64 = 0;
const AT_PAGESZ: u64 = 6;
const AT_CLKTCK: u64 = 17;

/// Aggregate CPU times from `/proc/stat` (its `cpu` line).
pub fn parse_proc_stat(text: &str) -> Result<CpuTimes> {
    const WHAT: &str = "/proc/stat";
    check_size(WHAT, text.len(), MAX_TABLE_BYTES)?;
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        if fields.next() != Some("cpu") {
            continue;
        }
        let line_no = i + 1;
        let values = fields.take(8).map(|v| number::<u64>(WHAT, line_no, "cpu time", v)).collect::<Result<Vec<u64>>>()?;
        // Kernels before 2.6 have four columns; later ones add the rest.
        if values.len() < 4 {
            return Err(Error::parse(WHAT, Some(line_no), format!("the cpu line has {} values, expected at least 4", values.len())));
        }
        let at = |i: usize| values.get(i).copied().unwrap_or(0);
        return Ok(CpuTimes {
            user: at(0),
            nice: at(1),
            system: at(2),
            idle: at(3),
            iowait: at(4),
            irq: at(5),
            softirq: at(6),
            steal: at(7),
        });
    }
    Err(Error::parse(WHAT, None, "no aggregate `cpu` line"))
}

/// Load averages from `/proc/loadavg` (`0.44 0.67 0.41 2/85 32677`).
pub fn parse_loadavg(text: &str) -> Result<LoadAverage> {
    const WHAT: &str = "/proc/loadavg";
    check_size(WHAT, text.len(), MAX_SMALL_BYTES)?;
    let mut fields = text.split_ascii_whitespace();
    let mut next = |name: &str| -> Result<f64> {
        let v = fields.next().ok_or_else(|| Error::parse(WHAT, Some(1), format!("missing the {name} load average")))?;
        non_negative(WHAT, 1, name, v)
    };
    Ok(LoadAverage { one: next("1-minute")?, five: next("5-minute")?, fifteen: next("15-minute")? })
}

/// Memory and swap from `/proc/meminfo`. `MemAvailable` is used when present
/// (Linux ≥ 3.14); older kernels get `MemFree + Buffers + Cached`.
pub fn parse_meminfo_health(text: &str) -> Result<MemoryUsage> {
    const WHAT: &str = "/proc/meminfo";
    check_size(WHAT, text.len(), MAX_TABLE_BYTES)?;
    let (mut total, mut available, mut free, mut buffers, mut cached) = (None, None, None, None, None);
    let (mut swap_total, mut swap_free) = (None, None);
    for (i, line) in text.lines().enumerate() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match key {
            "MemTotal" => &mut total,
            "MemAvailable" => &mut available,
            "MemFree" => &mut free,
            "Buffers" => &mut buffers,
            "Cached" => &mut cached,
            "SwapTotal" => &mut swap_total,
            "SwapFree" => &mut swap_free,
            _ => continue,
        };
        *slot = Some(kilobytes(WHAT, i + 1, key, rest)?);
    }
    let total = total.ok_or_else(|| Error::parse(WHAT, None, "no MemTotal line"))?;
    let available = match (available, free) {
        (Some(a), _) => a,
        (None, Some(f)) => f.saturating_add(buffers.unwrap_or(0)).saturating_add(cached.unwrap_or(0)),
        (None, None) => return Err(Error::parse(WHAT, None, "neither MemAvailable nor MemFree")),
    };
    let swap_total = swap_total.unwrap_or(0);
    Ok(MemoryUsage {
        total_bytes: total,
        available_bytes: available,
        used_bytes: total.saturating_sub(available),
        swap_total_bytes: swap_total,
        swap_used_bytes: swap_total.saturating_sub(swap_free.unwrap_or(swap_total)),
    })
}

/// Every device's counters from `/proc/diskstats`, in file order, unfiltered
/// (see `sample::retain_reported_disks`).
pub fn parse_diskstats(text: &str) -> Result<Vec<DiskCounters>> {
    const WHAT: &str = "/proc/diskstats";
    check_size(WHAT, text.len(), MAX_TABLE_BYTES)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut fields = line.split_ascii_whitespace();
        let (Some(_major), Some(_minor), Some(name)) = (fields.next(), fields.next(), fields.next()) else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(Error::parse(WHAT, Some(line_no), "expected `major minor name counters...`"));
        };
        let values = fields.take(11).map(|v| number::<u64>(WHAT, line_no, "counter", v)).collect::<Result<Vec<u64>>>()?;
        let counters = match values.as_slice() {
            // Full line: reads, reads merged, sectors read, ms reading,
            // writes, merged, sectors written, ms writing, in flight, ms doing
            // I/O, weighted ms; Linux 4.18+ adds discard and flush columns.
            [r, _, sr, _, w, _, sw, _, _, _, _] => (*r, *sr, *w, *sw),
            // Linux 2.6.x partitions: reads, sectors read, writes, sectors written.
            [r, sr, w, sw] => (*r, *sr, *w, *sw),
            _ => {
                return Err(Error::parse(WHAT, Some(line_no), format!("{name} has {} counters, expected 4 or at least 11", values.len())));
            }
        };
        out.push(DiskCounters {
            name: name.to_owned(),
            reads_completed: counters.0,
            sectors_read: counters.1,
            writes_completed: counters.2,
            sectors_written: counters.3,
        });
    }
    Ok(out)
}

/// Every interface's counters from `/proc/net/dev`, in file order.
pub fn parse_net_dev(text: &str) -> Result<Vec<NetCounters>> {
    const WHAT: &str = "/proc/net/dev";
    check_size(WHAT, text.len(), MAX_TABLE_BYTES)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        // Two header lines ("Inter-|   Receive ...", " face |bytes ..."); an
        // interface name can contain neither '|' nor ':'.
        if line.contains('|') || line.trim().is_empty() {
            continue;
        }
        let Some((name, rest)) = line.split_once(':') else {
            return Err(Error::parse(WHAT, Some(line_no), "expected `interface: counters...`"));
        };
        let name = name.trim();
        let values =
            rest.split_ascii_whitespace().take(16).map(|v| number::<u64>(WHAT, line_no, "counter", v)).collect::<Result<Vec<u64>>>()?;
        if values.len() < 16 || name.is_empty() {
            return Err(Error::parse(WHAT, Some(line_no), format!("interface {name:?} has {} counters, expected 16", values.len())));
        }
        out.push(NetCounters {
            name: name.to_owned(),
            rx_bytes: values[0],
            rx_errors: values[2],
            rx_drops: values[3],
            tx_bytes: values[8],
            tx_errors: values[10],
            tx_drops: values[11],
        });
    }
    Ok(out)
}

/// The fields of `/proc/PID/stat` sampling needs. The command name sits in
/// parentheses and may itself contain spaces and `)`, so it ends at the
/// *last* `)` of the line.
pub fn parse_pid_stat(text: &str) -> Result<PidStat<'_>> {
    const WHAT: &str = "/proc/PID/stat";
    check_size(WHAT, text.len(), MAX_SMALL_BYTES)?;
    let (Some(open), Some(close)) = (text.find('('), text.rfind(')')) else {
        return Err(Error::parse(WHAT, Some(1), "no `(command)` field"));
    };
    if close < open {
        return Err(Error::parse(WHAT, Some(1), "`)` before `(`"));
    }
    let pid = number::<u32>(WHAT, 1, "pid", text[..open].trim())?;
    let comm = &text[open + 1..close];
    // Fields after the command, numbered from 3 in proc(5).
    let mut fields = text[close + 1..].split_ascii_whitespace();
    // Called once per field, in order; `n` only names the field in errors.
    let mut field = |n: usize| -> Result<&str> {
        fields.next().ok_or_else(|| Error::parse(WHAT, Some(1), format!("pid {pid}: line ends before field {n}")))
    };
    let state_field = field(3)?;
    let mut chars = state_field.chars();
    let state = match (chars.next(), chars.next()) {
        (Some(c), None) => c,
        _ => {
            return Err(Error::parse(WHAT, Some(1), format!("pid {pid}: bad state {state_field:?}")));
        }
    };
    for n in 4..14 {
        field(n)?;
    }
    let utime = number::<u64>(WHAT, 1, "utime", field(14)?)?;
    let stime = number::<u64>(WHAT, 1, "stime", field(15)?)?;
    for n in 16..22 {
        field(n)?;
    }
    let start_time = number::<u64>(WHAT, 1, "starttime", field(22)?)?;
    field(23)?;
    // rss is a signed long in the kernel; never negative in practice.
    let rss = number::<i64>(WHAT, 1, "rss", field(24)?)?;
    Ok(PidStat { pid, comm, state, utime, stime, start_time, rss_pages: u64::try_from(rss).unwrap_or(0) })
}

/// Page counts from `/proc/PID/statm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statm {
    /// Total program size, pages.
    pub size_pages: u64,
    /// Resident set, pages.
    pub resident_pages: u64,
    /// Resident shared (file-backed) pages.
    pub shared_pages: u64,
}

/// Page counts from `/proc/PID/statm` (`size resident shared text lib data dt`).
pub fn parse_statm(text: &str) -> Result<Statm> {
    const WHAT: &str = "/proc/PID/statm";
    check_size(WHAT, text.len(), MAX_SMALL_BYTES)?;
    let mut fields = text.split_ascii_whitespace();
    let mut next = |name: &str| -> Result<u64> {
        let v = fields.next().ok_or_else(|| Error::parse(WHAT, Some(1), format!("missing the {name} field")))?;
        number(WHAT, 1, name, v)
    };
    Ok(Statm { size_pages: next("size")?, resident_pages: next("resident")?, shared_pages: next("shared")? })
}

/// Seconds since boot from `/proc/uptime` (`1264.87 2024.08`).
pub fn parse_uptime(text: &str) -> Result<f64> {
    const WHAT: &str = "/proc/uptime";
    check_size(WHAT, text.len(), MAX_SMALL_BYTES)?;
    let first = text.split_ascii_whitespace().next().ok_or_else(|| Error::parse(WHAT, Some(1), "empty"))?;
    non_negative(WHAT, 1, "uptime", first)
}

/// Resident set size in bytes from the `VmRSS:` line of `/proc/PID/status`.
pub fn parse_status_vm_rss(text: &str) -> Result<u64> {
    const WHAT: &str = "/proc/self/status";
    check_size(WHAT, text.len(), MAX_SMALL_BYTES)?;
    for (i, line) in text.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("VmRSS:") {
            return kilobytes(WHAT, i + 1, "VmRSS", rest);
        }
    }
    Err(Error::parse(WHAT, None, "no VmRSS line (kernel threads have none)"))
}

/// Unit names from `systemctl --failed --plain --no-legend --no-pager`,
/// whose lines read `UNIT LOAD ACTIVE SUB DESCRIPTION...`. A leading status
/// mark (`●`, `×`, `*`, printed without `--plain`) is tolerated.
pub fn parse_systemctl_failed(text: &str) -> Result<Vec<String>> {
    const WHAT: &str = "systemctl --failed output";
    check_size(WHAT, text.len(), MAX_TABLE_BYTES)?;
    let mut units = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = line.trim_start().trim_start_matches(['●', '×', '*']).trim();
        if line.is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split_ascii_whitespace().take(4).collect();
        let unit = columns[0];
        let Some((stem, kind)) = unit.rsplit_once('.') else {
            return Err(Error::parse(
                WHAT,
                Some(line_no),
                format!("{unit:?} is not a unit name (expected e.g. foo.service); was --no-legend given?"),
            ));
        };
        if stem.is_empty() || kind.is_empty() || unit.len() > MAX_UNIT_NAME || unit.chars().any(char::is_control) {
            return Err(Error::parse(WHAT, Some(line_no), format!("{unit:?} is not a unit name")));
        }
        if columns.len() < 4 {
            return Err(Error::parse(
                WHAT,
                Some(line_no),
                format!("expected `UNIT LOAD ACTIVE SUB DESCRIPTION`, got {} columns", columns.len()),
            ));
        }
        if units.len() == MAX_FAILED_UNITS {
            return Err(Error::parse(WHAT, Some(line_no), format!("more than {MAX_FAILED_UNITS} failed units")));
        }
        units.push(unit.to_owned());
    }
    Ok(units)
}

/// A thermal zone's reading from the text of its `type` and `temp` files
/// (`/sys/class/thermal/thermal_zoneN/`). The sensor is named `thermal/<type>`.
pub fn parse_thermal_zone(zone_type: &str, temp: &str) -> Result<Temperature> {
    const WHAT: &str = "thermal zone";
    check_size(WHAT, zone_type.len().saturating_add(temp.len()), MAX_SMALL_BYTES)?;
    let kind = zone_type.trim();
    if kind.is_empty() {
        return Err(Error::parse(WHAT, Some(1), "empty type"));
    }
    Ok(Temperature { sensor: format!("thermal/{kind}"), celsius: parse_millidegrees(WHAT, temp)? })
}

/// One hwmon temperature from the chip's `name`, the input's index
/// (`temp<index>_input`), its text and the text of `temp<index>_label` if the
/// chip has one. The sensor is named `<name>/<label or tempN>`.
pub fn parse_hwmon_temp(chip: &str, index: u32, input: &str, label: Option<&str>) -> Result<Temperature> {
    const WHAT: &str = "hwmon temperature";
    let label_len = label.map_or(0, str::len);
    check_size(WHAT, chip.len().saturating_add(input.len()).saturating_add(label_len), MAX_SMALL_BYTES)?;
    let chip = chip.trim();
    if chip.is_empty() {
        return Err(Error::parse(WHAT, Some(1), "empty chip name"));
    }
    let celsius = parse_millidegrees(WHAT, input)?;
    let sensor = match label.map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => format!("{chip}/{l}"),
        None => format!("{chip}/temp{index}"),
    };
    Ok(Temperature { sensor, celsius })
}

/// Millidegrees Celsius as sysfs writes them (`45000\n`), in degrees.
fn parse_millidegrees(what: &str, text: &str) -> Result<f64> {
    let milli = number::<i64>(what, 1, "temperature", text.trim())?;
    let celsius = milli as f64 / 1000.0;
    // Below absolute zero or hotter than any silicon survives: a broken driver.
    if !(-273.15..=1000.0).contains(&celsius) {
        return Err(Error::parse(what, Some(1), format!("implausible temperature {celsius} °C")));
    }
    Ok(celsius)
}

/// What the kernel told this process at exec (`/proc/self/auxv`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Auxv {
    pub page_size: Option<u64>,
    pub clock_ticks_per_sec: Option<u64>,
}

/// Page size and clock ticks per second from `/proc/self/auxv`: pairs of
/// native-endian machine words (type, value) ending with `AT_NULL`. This is
/// how a program without libc bindings learns `sysconf(_SC_PAGESIZE)`.
pub fn parse_auxv(bytes: &[u8]) -> Result<Auxv> {
    const WHAT: &str = "/proc/self/auxv";
    check_size(WHAT, bytes.len(), MAX_SMALL_BYTES)?;
    let word = size_of::<usize>();
    if bytes.len() % (2 * word) != 0 {
        return Err(Error::parse(WHAT, None, format!("{} bytes is not a whole number of entries", bytes.len())));
    }
    let read = |chunk: &[u8]| -> u64 {
        let mut b = [0u8; 8];
        if cfg!(target_endian = "little") {
            b[..chunk.len()].copy_from_slice(chunk);
            u64::from_le_bytes(b)
        } else {
            b[8 - chunk.len()..].copy_from_slice(chunk);
            u64::from_be_bytes(b)
        }
    };
    let mut out = Auxv::default();
    for entry in bytes.chunks_exact(2 * word) {
        let (kind, value) = (read(&entry[..word]), read(&entry[word..]));
        match kind {
            AT_NULL => break,
            AT_PAGESZ if value > 0 => out.page_size = Some(value),
            AT_CLKTCK if value > 0 => out.clock_ticks_per_sec = Some(value),
            _ => {}
        }
    }
    Ok(out)
}

fn check_size(what: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::parse(what, None, format!("{len} bytes is more than the {max}-byte limit")));
    }
    Ok(())
}

fn number<T: std::str::FromStr>(what: &str, line: usize, field: &str, text: &str) -> Result<T> {
    text.parse().map_err(|_| {
        let shown: String = text.chars().take(40).collect();
        Error::parse(what, Some(line), format!("{field} {shown:?} is not a number"))
    })
}

fn non_negative(what: &str, line: usize, field: &str, text: &str) -> Result<f64> {
    let v = number::<f64>(what, line, field, text)?;
    if !v.is_finite() || v < 0.0 {
        return Err(Error::parse(what, Some(line), format!("{field} {v} is not a non-negative number")));
    }
    Ok(v)
}

/// `   16303512 kB` → bytes. A value without a unit is taken as kB too: the
/// keys read here always carry one.
fn kilobytes(what: &str, line: usize, key: &str, rest: &str) -> Result<u64> {
    let mut parts = rest.split_ascii_whitespace();
    let value = parts.next().ok_or_else(|| Error::parse(what, Some(line), format!("{key} has no value")))?;
    match parts.next() {
        None | Some("kB") => {}
        Some(unit) => {
            return Err(Error::parse(what, Some(line), format!("{key} is in {unit:?}, expected kB")));
        }
    }
    Ok(number::<u64>(what, line, key, value)?.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err_text<T: std::fmt::Debug>(r: Result<T>) -> String {
        match r {
            Ok(v) => panic!("expected an error, got {v:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn proc_stat_from_this_machine() {
        let t = parse_proc_stat(include_str!("../../tests/fixtures/health/proc_stat_1.txt")).expect("parses");
        assert_eq!(t, CpuTimes { user: 38849, nice: 0, system: 9565, idle: 203535, iowait: 950, irq: 0, softirq: 99, steal: 17 });
        let t2 = parse_proc_stat(include_str!("../../tests/fixtures/health/proc_stat_2.txt")).expect("parses");
        let pct = crate::health::sample::cpu_percent(&t, &t2);
        assert!(pct > 0.0 && pct <= 100.0, "{pct}");
    }

    #[test]
    fn proc_stat_old_kernel_four_columns() {
        let t = parse_proc_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\n").expect("parses");
        assert_eq!((t.user, t.idle, t.iowait), (1, 4, 0));
    }

    #[test]
    fn proc_stat_malformed() {
        let truncated = include_str!("../../tests/fixtures/health/proc_stat_truncated.txt");
        assert_eq!(
            err_text(parse_proc_stat(truncated)),
            "cannot parse /proc/stat at line 1: the cpu line has 2 values, expected at least 4"
        );
        assert_eq!(err_text(parse_proc_stat("")), "cannot parse /proc/stat: no aggregate `cpu` line");
        assert_eq!(err_text(parse_proc_stat("cpu  1 2 x 4")), "cannot parse /proc/stat at line 1: cpu time \"x\" is not a number");
        assert_eq!(err_text(parse_proc_stat("cpu  1 2 -3 4")), "cannot parse /proc/stat at line 1: cpu time \"-3\" is not a number");
    }

    #[test]
    fn oversized_input_is_refused() {
        let big = "cpu 1 2 3 4\n".repeat(MAX_TABLE_BYTES / 12 + 1);
        assert!(err_text(parse_proc_stat(&big)).contains("limit"));
        let big = "1".repeat(MAX_SMALL_BYTES + 1);
        assert!(err_text(parse_pid_stat(&big)).contains("-byte limit"));
        assert!(err_text(parse_loadavg(&big)).contains("-byte limit"));
        assert!(err_text(parse_auxv(big.as_bytes())).contains("-byte limit"));
    }

    #[test]
    fn loadavg_from_this_machine_and_malformed() {
        let l = parse_loadavg(include_str!("../../tests/fixtures/health/proc_loadavg_1.txt")).expect("parses");
        assert_eq!(l, LoadAverage { one: 0.40, five: 0.66, fifteen: 0.41 });
        assert_eq!(err_text(parse_loadavg("0.1 0.2")), "cannot parse /proc/loadavg at line 1: missing the 15-minute load average");
        assert_eq!(
            err_text(parse_loadavg("0.1 NaN 0.3")),
            "cannot parse /proc/loadavg at line 1: 5-minute NaN is not a non-negative number"
        );
    }

    #[test]
    fn meminfo_from_this_machine() {
        let text = include_str!("../../tests/fixtures/health/proc_meminfo_1.txt");
        let m = parse_meminfo_health(text).expect("parses");
        let kb = |key: &str| -> u64 {
            let line = text.lines().find(|l| l.starts_with(&format!("{key}:"))).expect("key present");
            line.split_ascii_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("number")
        };
        assert_eq!(m.total_bytes, kb("MemTotal") * 1024);
        assert_eq!(m.available_bytes, kb("MemAvailable") * 1024);
        assert_eq!(m.used_bytes, m.total_bytes - m.available_bytes);
        assert_eq!(m.swap_total_bytes, kb("SwapTotal") * 1024);
        assert_eq!(m.swap_used_bytes, (kb("SwapTotal") - kb("SwapFree")) * 1024);
    }

    #[test]
    fn meminfo_old_kernel_and_malformed() {
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n";
        let m = parse_meminfo_health(old).expect("parses");
        assert_eq!(m.available_bytes, 400 * 1024);
        assert_eq!(m.used_bytes, 600 * 1024);
        let truncated = include_str!("../../tests/fixtures/health/proc_meminfo_truncated.txt");
        assert_eq!(err_text(parse_meminfo_health(truncated)), "cannot parse /proc/meminfo at line 3: MemAvailable has no value");
        assert_eq!(err_text(parse_meminfo_health("MemFree: 1 kB\n")), "cannot parse /proc/meminfo: no MemTotal line");
        assert_eq!(
            err_text(parse_meminfo_health("MemTotal: 1 MB\n")),
            "cannot parse /proc/meminfo at line 1: MemTotal is in \"MB\", expected kB"
        );
        // A huge value saturates instead of overflowing.
        let m = parse_meminfo_health("MemTotal: 18446744073709551615 kB\nMemAvailable: 1 kB\n").expect("parses");
        assert_eq!(m.total_bytes, u64::MAX);
    }

    #[test]
    fn diskstats_from_this_machine() {
        let d = parse_diskstats(include_str!("../../tests/fixtures/health/proc_diskstats_1.txt")).expect("parses");
        let vda = d.iter().find(|d| d.name == "vda").expect("vda listed");
        assert_eq!(
            (vda.reads_completed, vda.sectors_read, vda.writes_completed, vda.sectors_written),
            (131_688, 10_506_370, 13_753, 13_132_696)
        );
    }

    #[test]
    fn diskstats_laptop_old_format_and_malformed() {
        let d = parse_diskstats(include_str!("../../tests/fixtures/health/laptop_diskstats.txt")).expect("parses");
        let names: Vec<&str> = d.iter().map(|d| d.name.as_str()).collect();
        assert!(names.contains(&"nvme0n1p2"));
        assert_eq!(parse_diskstats("   8  1 sda1 10 20 30 40\n").expect("parses")[0].sectors_written, 40);
        let truncated = include_str!("../../tests/fixtures/health/proc_diskstats_truncated.txt");
        assert_eq!(
            err_text(parse_diskstats(truncated)),
            "cannot parse /proc/diskstats at line 10: vda has 6 counters, expected 4 or at least 11"
        );
        assert_eq!(err_text(parse_diskstats("  8 0\n")), "cannot parse /proc/diskstats at line 1: expected `major minor name counters...`");
        assert!(parse_diskstats("").expect("empty is fine").is_empty());
    }

    #[test]
    fn net_dev_from_this_machine_and_malformed() {
        let n = parse_net_dev(include_str!("../../tests/fixtures/health/proc_net_dev_1.txt")).expect("parses");
        let names: Vec<&str> = n.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        assert_eq!((n[3].rx_bytes, n[3].tx_bytes), (178_608_521, 419_637));
        // old kernels print no space after the colon
        let n = parse_net_dev("eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n").expect("parses");
        assert_eq!((n[0].rx_bytes, n[0].rx_errors, n[0].rx_drops, n[0].tx_bytes, n[0].tx_errors, n[0].tx_drops), (1, 3, 4, 9, 11, 12));
        let truncated = include_str!("../../tests/fixtures/health/proc_net_dev_truncated.txt");
        assert_eq!(
            err_text(parse_net_dev(truncated)),
            "cannot parse /proc/net/dev at line 6: interface \"eth0\" has 9 counters, expected 16"
        );
        assert_eq!(err_text(parse_net_dev("garbage\n")), "cannot parse /proc/net/dev at line 1: expected `interface: counters...`");
    }

    #[test]
    fn pid_stat_with_spaces_and_parenthesis_in_comm() {
        let text = include_str!("../../tests/fixtures/health/proc_pid_stat_tricky.txt");
        let s = parse_pid_stat(text).expect("parses");
        assert_eq!(s.pid, 4242);
        assert_eq!(s.comm, "my (evil)) app");
        assert_eq!((s.state, s.utime, s.stime, s.start_time, s.rss_pages), ('S', 1500, 250, 98765, 2048));
    }

    #[test]
    fn pid_stat_from_this_machine() {
        let s = parse_pid_stat(include_str!("../../tests/fixtures/health/proc_self_stat.txt")).expect("parses");
        assert_eq!((s.pid, s.comm, s.state, s.start_time, s.rss_pages), (415, "cat", 'R', 127_275, 381));
    }

    #[test]
    fn pid_stat_malformed() {
        let truncated = include_str!("../../tests/fixtures/health/proc_pid_stat_truncated.txt");
        assert_eq!(err_text(parse_pid_stat(truncated)), "cannot parse /proc/PID/stat at line 1: pid 4242: line ends before field 16");
        assert_eq!(err_text(parse_pid_stat("42 cat R 1")), "cannot parse /proc/PID/stat at line 1: no `(command)` field");
        assert_eq!(err_text(parse_pid_stat("42 )cat( R 1")), "cannot parse /proc/PID/stat at line 1: `)` before `(`");
        assert_eq!(err_text(parse_pid_stat("x (cat) R")), "cannot parse /proc/PID/stat at line 1: pid \"x\" is not a number");
        assert_eq!(err_text(parse_pid_stat("1 (cat) RR")), "cannot parse /proc/PID/stat at line 1: pid 1: bad state \"RR\"");
        assert_eq!(err_text(parse_pid_stat("")), "cannot parse /proc/PID/stat at line 1: no `(command)` field");
    }

    #[test]
    fn statm_from_this_machine_and_malformed() {
        let s = parse_statm(include_str!("../../tests/fixtures/health/proc_self_statm.txt")).expect("parses");
        assert!(s.resident_pages > 0 && s.resident_pages <= s.size_pages);
        assert_eq!(err_text(parse_statm("100")), "cannot parse /proc/PID/statm at line 1: missing the resident field");
    }

    #[test]
    fn uptime_and_self_status() {
        assert_eq!(parse_uptime(include_str!("../../tests/fixtures/health/proc_uptime_1.txt")).expect("parses"), 1270.67);
        assert_eq!(err_text(parse_uptime("")), "cannot parse /proc/uptime at line 1: empty");
        assert_eq!(err_text(parse_uptime("-1 0")), "cannot parse /proc/uptime at line 1: uptime -1 is not a non-negative number");
        let status = include_str!("../../tests/fixtures/health/proc_self_status.txt");
        assert_eq!(parse_status_vm_rss(status).expect("parses"), 1668 * 1024);
        assert_eq!(
            err_text(parse_status_vm_rss("Name:\tkthreadd\n")),
            "cannot parse /proc/self/status: no VmRSS line (kernel threads have none)"
        );
    }

    #[test]
    fn systemctl_failed_output() {
        let units = parse_systemctl_failed(include_str!("../../tests/fixtures/health/systemctl_failed.txt")).expect("parses");
        assert_eq!(units, ["logrotate.service", "nfs-server.service", "snap-core-1234.mount", "user@1000.service"]);
        assert!(parse_systemctl_failed("").expect("none failed").is_empty());
        assert!(parse_systemctl_failed("\n\n").expect("none failed").is_empty());
        assert_eq!(
            err_text(parse_systemctl_failed("UNIT LOAD ACTIVE SUB DESCRIPTION\n")),
            "cannot parse systemctl --failed output at line 1: \"UNIT\" is not a unit name (expected e.g. foo.service); was --no-legend given?"
        );
        assert_eq!(
            err_text(parse_systemctl_failed("foo.service loaded\n")),
            "cannot parse systemctl --failed output at line 1: expected `UNIT LOAD ACTIVE SUB DESCRIPTION`, got 2 columns"
        );
        let many = "a.service loaded failed failed x\n".repeat(MAX_FAILED_UNITS + 1);
        assert!(err_text(parse_systemctl_failed(&many)).contains("more than 10000 failed units"));
    }

    #[test]
    fn thermal_and_hwmon() {
        let t = parse_thermal_zone("x86_pkg_temp\n", "52000\n").expect("parses");
        assert_eq!(t, Temperature { sensor: "thermal/x86_pkg_temp".into(), celsius: 52.0 });
        let t = parse_hwmon_temp("coretemp\n", 2, "47500\n", Some("Core 0\n")).expect("parses");
        assert_eq!(t, Temperature { sensor: "coretemp/Core 0".into(), celsius: 47.5 });
        let t = parse_hwmon_temp("acpitz", 1, "-5000", None).expect("parses");
        assert_eq!(t, Temperature { sensor: "acpitz/temp1".into(), celsius: -5.0 });
        assert_eq!(err_text(parse_thermal_zone("", "1")), "cannot parse thermal zone at line 1: empty type");
        assert_eq!(err_text(parse_thermal_zone("acpitz", "")), "cannot parse thermal zone at line 1: temperature \"\" is not a number");
        assert_eq!(
            err_text(parse_hwmon_temp("x", 1, "-300000", None)),
            "cannot parse hwmon temperature at line 1: implausible temperature -300 °C"
        );
        assert_eq!(err_text(parse_hwmon_temp(" ", 1, "1", None)), "cannot parse hwmon temperature at line 1: empty chip name");
    }

    #[test]
    fn auxv_words() {
        let mut bytes = Vec::new();
        for (k, v) in [(33u64, 7u64), (AT_PAGESZ, 16384), (AT_CLKTCK, 100), (AT_NULL, 0), (AT_PAGESZ, 1)] {
            for x in [k, v] {
                let w = usize::try_from(x).expect("small");
                bytes.extend_from_slice(&w.to_ne_bytes());
            }
        }
        assert_eq!(parse_auxv(&bytes).expect("parses"), Auxv { page_size: Some(16384), clock_ticks_per_sec: Some(100) });
        assert!(err_text(parse_auxv(&bytes[..5])).contains("not a whole number of entries"));
        assert_eq!(parse_auxv(&[]).expect("empty"), Auxv::default());
    }

    #[test]
    fn parsers_never_panic_on_prefixes_of_real_files() {
        let files = [
            include_str!("../../tests/fixtures/health/proc_stat_1.txt"),
            include_str!("../../tests/fixtures/health/proc_diskstats_1.txt"),
            include_str!("../../tests/fixtures/health/proc_net_dev_1.txt"),
            include_str!("../../tests/fixtures/health/proc_meminfo_1.txt"),
            include_str!("../../tests/fixtures/health/proc_pid_stat_tricky.txt"),
            include_str!("../../tests/fixtures/health/systemctl_failed.txt"),
        ];
        for text in files {
            for end in (0..=text.len()).filter(|i| text.is_char_boundary(*i)) {
                let t = &text[..end];
                let _ = parse_proc_stat(t);
                let _ = parse_loadavg(t);
                let _ = parse_meminfo_health(t);
                let _ = parse_diskstats(t);
                let _ = parse_net_dev(t);
                let _ = parse_pid_stat(t);
                let _ = parse_statm(t);
                let _ = parse_uptime(t);
                let _ = parse_status_vm_rss(t);
                let _ = parse_systemctl_failed(t);
                let _ = parse_thermal_zone(t, t);
                let _ = parse_hwmon_temp(t, 1, t, Some(t));
                let _ = parse_auxv(t.as_bytes());
            }
        }
    }
}
