//! Batteries from `/sys/class/power_supply/*/uevent` (`POWER_SUPPLY_*`
//! KEY=VALUE lines). Only `POWER_SUPPLY_TYPE=Battery` entries that are
//! present count: mains adapters and peripheral batteries (a wireless
//! mouse reports `SCOPE=Device`) are not the host's battery. Health is
//! full-now over full-as-designed, from energy (µWh) or charge (µAh),
//! whichever the driver reports. Pure, bounded, never panics.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::inventory::hardware::Battery;

/// Parses one uevent text; `Ok(None)` for a non-battery or absent battery.
pub fn parse_power_supply_uevent(name: &str, text: &str) -> Result<Option<Battery>> {
    let what = format!("/sys/class/power_supply/{name}/uevent");
    if text.len() > 64 << 10 {
        return Err(Error::parse(what, None, "larger than 64 KiB"));
    }
    let mut kv = HashMap::new();
    for (idx, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(Error::parse(&what, Some(idx + 1), "expected KEY=VALUE"));
        };
        kv.insert(k.trim().trim_start_matches("POWER_SUPPLY_").to_string(), v.trim().to_string());
    }
    let get = |k: &str| kv.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if get("TYPE") != Some("Battery") || get("SCOPE") == Some("Device") || get("PRESENT") == Some("0") {
        return Ok(None);
    }
    let num = |k: &str| get(k).and_then(|v| v.parse::<u64>().ok());
    let health = match (num("ENERGY_FULL"), num("ENERGY_FULL_DESIGN"), num("CHARGE_FULL"), num("CHARGE_FULL_DESIGN")) {
        (Some(full), Some(design), _, _) | (_, _, Some(full), Some(design)) if design > 0 => {
            // One decimal is all the precision a wear figure deserves.
            Some((full as f64 / design as f64 * 1000.0).round() / 10.0)
        }
        _ => None,
    };
    Ok(Some(Battery {
        name: name.to_string(),
        manufacturer: get("MANUFACTURER").map(String::from),
        model: get("MODEL_NAME").map(String::from),
        capacity_percent: get("CAPACITY").and_then(|v| v.parse::<u8>().ok()).filter(|c| *c <= 100),
        health_percent: health,
        // Many drivers report 0 when they do not count cycles.
        cycle_count: get("CYCLE_COUNT").and_then(|v| v.parse::<u32>().ok()).filter(|c| *c > 0),
        status: get("STATUS").map(String::from),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laptop_energy_battery() {
        let b =
            parse_power_supply_uevent("BAT0", include_str!("../../../tests/fixtures/hardware/laptop/sys/class/power_supply/BAT0/uevent"))
                .unwrap()
                .unwrap();
        assert_eq!(b.capacity_percent, Some(81));
        assert_eq!(b.health_percent, Some(88.6));
        assert_eq!(b.cycle_count, Some(214));
        assert_eq!(b.status.as_deref(), Some("Discharging"));
        assert_eq!(b.manufacturer.as_deref(), Some("SMP"));
    }

    #[test]
    fn charge_based_battery_and_non_batteries() {
        let b =
            parse_power_supply_uevent("BAT1", include_str!("../../../tests/fixtures/hardware/uevent_charge_battery.txt")).unwrap().unwrap();
        assert_eq!(b.health_percent, Some(75.0));
        assert_eq!(b.cycle_count, None, "0 cycles means not counted");
        let ac = include_str!("../../../tests/fixtures/hardware/laptop/sys/class/power_supply/AC/uevent");
        assert_eq!(parse_power_supply_uevent("AC", ac).unwrap(), None);
        let mouse = "POWER_SUPPLY_TYPE=Battery\nPOWER_SUPPLY_SCOPE=Device\nPOWER_SUPPLY_CAPACITY=50\n";
        assert_eq!(parse_power_supply_uevent("hidpp_battery_0", mouse).unwrap(), None);
        let e = parse_power_supply_uevent("BAT0", "POWER_SUPPLY_TYPE=Battery\ngarbage\n").unwrap_err().to_string();
        assert!(e.contains("BAT0/uevent at line 2"), "{e}");
    }
}
