//! Memory modules from `dmidecode -t 17` (SMBIOS type 17, Memory Device).
//!
//! Each "Memory Device" block becomes a module unless its size says the
//! slot is empty ("No Module Installed", "0 MB"). Sizes come in `kB`, `MB`,
//! `GB` or `TB`; speeds in `MT/s` (newer dmidecode) or `MHz` (older, same
//! number for DDR). Pure, bounded, never panics.

use crate::error::{Error, Result};
use crate::inventory::hardware::MemoryModule;

pub const MAX_DMIDECODE_BYTES: usize = 4 << 20;

/// Parses `dmidecode -t 17` output.
pub fn parse_dmidecode_memory(text: &str) -> Result<Vec<MemoryModule>> {
    const WHAT: &str = "dmidecode -t 17 output";
    if text.len() > MAX_DMIDECODE_BYTES {
        return Err(Error::parse(WHAT, None, format!("larger than {MAX_DMIDECODE_BYTES} bytes")));
    }
    let mut out = Vec::new();
    let mut block: Option<(usize, Vec<(String, String)>)> = None;
    for (idx, line) in text.lines().enumerate() {
        if line.trim() == "Memory Device" {
            if let Some((start, fields)) = block.take() {
                out.extend(module_from_block(start, &fields)?);
            }
            block = Some((idx + 1, Vec::new()));
            continue;
        }
        if line.starts_with("Handle ") || line.trim().is_empty() {
            if let Some((start, fields)) = block.take() {
                out.extend(module_from_block(start, &fields)?);
            }
            continue;
        }
        // Only one-tab-indented "Key: Value" lines are fields; deeper
        // indentation continues a list value we do not use.
        if let Some((_, fields)) = block.as_mut()
            && let Some(rest) = line.strip_prefix('\t')
            && !rest.starts_with('\t')
            && let Some((k, v)) = rest.split_once(':')
        {
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if let Some((start, fields)) = block.take() {
        out.extend(module_from_block(start, &fields)?);
    }
    Ok(out)
}

fn module_from_block(start: usize, fields: &[(String, String)]) -> Result<Option<MemoryModule>> {
    let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let Some(size) = get("Size") else {
        return Err(Error::parse("dmidecode -t 17 output", Some(start), "Memory Device without a Size line"));
    };
    let Some(size_bytes) = parse_size(size) else {
        if size.contains("No Module") || size.contains("Not Installed") || size == "Unknown" {
            return Ok(None);
        }
        return Err(Error::parse("dmidecode -t 17 output", Some(start), format!("unrecognised size {size:?}")));
    };
    if size_bytes == 0 {
        return Ok(None);
    }
    let speed = get("Configured Memory Speed").and_then(parse_speed).or_else(|| get("Speed").and_then(parse_speed));
    Ok(Some(MemoryModule {
        slot: get("Locator").filter(|s| !s.is_empty()).unwrap_or("unknown").to_string(),
        bank: get("Bank Locator").and_then(meaningful),
        size_bytes,
        speed_mts: speed,
        memory_type: get("Type").and_then(meaningful),
        manufacturer: get("Manufacturer").and_then(meaningful),
        part_number: get("Part Number").and_then(meaningful),
        serial: get("Serial Number").and_then(meaningful),
    }))
}

/// "16 GB", "8192 MB", "512 kB"; `None` when not a size.
fn parse_size(s: &str) -> Option<u64> {
    let mut it = s.split_whitespace();
    let n: u64 = it.next()?.parse().ok()?;
    let mult: u64 = match it.next()? {
        "bytes" => 1,
        "kB" | "KB" => 1 << 10,
        "MB" => 1 << 20,
        "GB" => 1 << 30,
        "TB" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn parse_speed(s: &str) -> Option<u32> {
    let mut it = s.split_whitespace();
    let n: u32 = it.next()?.parse().ok()?;
    matches!(it.next()?, "MT/s" | "MHz").then_some(n).filter(|n| *n > 0)
}

/// Firmware fills unknown fields with placeholders; those are absent.
fn meaningful(v: &str) -> Option<String> {
    let bad = ["", "Unknown", "Not Specified", "Other", "NO DIMM", "[Empty]", "None"];
    let placeholder = bad.iter().any(|b| v.eq_ignore_ascii_case(b))
        || v.chars().all(|c| c == '0' || c == ' ')
        || v.to_ascii_lowercase().contains("manufacturer")
        || v.to_ascii_lowercase().contains("partnum")
        || v.to_ascii_lowercase().contains("sernum");
    (!placeholder).then(|| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workstation_modules_skip_empty_slots() {
        let m = parse_dmidecode_memory(include_str!("../../../tests/fixtures/hardware/dmidecode_t17_workstation.txt")).unwrap();
        assert_eq!(m.len(), 2, "two of four slots are populated");
        let a1 = m.first().unwrap();
        assert_eq!(a1.slot, "DIMM A1");
        assert_eq!(a1.bank.as_deref(), Some("BANK 0"));
        assert_eq!(a1.size_bytes, 16 << 30);
        assert_eq!(a1.speed_mts, Some(3200));
        assert_eq!(a1.memory_type.as_deref(), Some("DDR4"));
        assert_eq!(a1.manufacturer.as_deref(), Some("Samsung"));
        assert_eq!(a1.part_number.as_deref(), Some("M378A2K43EB1-CWE"));
    }

    #[test]
    fn laptop_soldered_lpddr_and_old_mhz_format() {
        let m = parse_dmidecode_memory(include_str!("../../../tests/fixtures/hardware/dmidecode_t17_laptop.txt")).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.iter().all(|m| m.size_bytes == 8192 << 20 && m.memory_type.as_deref() == Some("LPDDR5")));
        assert_eq!(m.first().and_then(|m| m.speed_mts), Some(6400));
        assert_eq!(m.first().and_then(|m| m.serial.clone()), None, "00000000 is a placeholder");
    }

    #[test]
    fn malformed_blocks_are_clear_errors() {
        let e = parse_dmidecode_memory("Handle 0x0040, DMI type 17, 92 bytes\nMemory Device\n\tLocator: DIMM 0\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("without a Size"), "{e}");
        let e = parse_dmidecode_memory("Memory Device\n\tSize: lots\n").unwrap_err().to_string();
        assert!(e.contains("unrecognised size"), "{e}");
        assert_eq!(parse_dmidecode_memory("# dmidecode 3.4\n").unwrap(), []);
        assert!(parse_dmidecode_memory("Memory Device\n\tSize: 99999999999999999 TB\n").is_err());
    }
}
