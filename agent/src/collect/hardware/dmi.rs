//! DMI/SMBIOS values from `/sys/class/dmi/id/*`.
//!
//! One file per field; serial numbers need root (permission denied
//! otherwise). Placeholder strings that vendors leave in the tables are
//! treated as "not set", because reporting "To Be Filled By O.E.M." as a
//! serial number would merge unrelated machines in the inventory.

use crate::error::{Error, Result};

/// Values vendors put in the tables instead of leaving them empty
/// (compared case-insensitively, trimmed).
const PLACEHOLDERS: [&str; 14] = [
    "to be filled by o.e.m.",
    "to be filled by oem",
    "default string",
    "system serial number",
    "system product name",
    "system manufacturer",
    "not specified",
    "not applicable",
    "none",
    "n/a",
    "0123456789",
    "123456789",
    "chassis serial number",
    "oem",
];

/// Parses one DMI value file. `Ok(None)` for an empty or placeholder
/// value; an error only for absurd content.
pub fn parse_dmi_value(text: &str, field: &str) -> Result<Option<String>> {
    if text.len() > 4096 {
        return Err(Error::parse(format!("/sys/class/dmi/id/{field}"), None, "longer than 4096 bytes"));
    }
    let t = text.trim();
    if t.is_empty() || PLACEHOLDERS.iter().any(|p| t.eq_ignore_ascii_case(p)) || t.chars().all(|c| c == '0' || c == ' ') {
        return Ok(None);
    }
    Ok(Some(t.to_string()))
}

/// Parses `/sys/class/dmi/id/chassis_type` (a decimal number) into the
/// SMBIOS 3.x chassis type name (DSP0134 table 17).
pub fn parse_chassis_type(text: &str) -> Result<Option<String>> {
    let n: u8 = text
        .trim()
        .parse()
        .map_err(|_| Error::parse("/sys/class/dmi/id/chassis_type", Some(1), format!("{:?} is not a number", text.trim())))?;
    Ok(chassis_type_name(n).map(String::from))
}

/// SMBIOS chassis type number to name; `None` for 2 ("Unknown") and
/// numbers beyond the table.
pub fn chassis_type_name(n: u8) -> Option<&'static str> {
    Some(match n {
        1 => "Other",
        3 => "Desktop",
        4 => "Low Profile Desktop",
        5 => "Pizza Box",
        6 => "Mini Tower",
        7 => "Tower",
        8 => "Portable",
        9 => "Laptop",
        10 => "Notebook",
        11 => "Hand Held",
        12 => "Docking Station",
        13 => "All in One",
        14 => "Sub Notebook",
        15 => "Space-saving",
        16 => "Lunch Box",
        17 => "Main Server Chassis",
        18 => "Expansion Chassis",
        19 => "SubChassis",
        20 => "Bus Expansion Chassis",
        21 => "Peripheral Chassis",
        22 => "RAID Chassis",
        23 => "Rack Mount Chassis",
        24 => "Sealed-case PC",
        25 => "Multi-system Chassis",
        26 => "Compact PCI",
        27 => "Advanced TCA",
        28 => "Blade",
        29 => "Blade Enclosure",
        30 => "Tablet",
        31 => "Convertible",
        32 => "Detachable",
        33 => "IoT Gateway",
        34 => "Embedded PC",
        35 => "Mini PC",
        36 => "Stick PC",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_placeholders() {
        assert_eq!(parse_dmi_value("LENOVO\n", "sys_vendor").unwrap().as_deref(), Some("LENOVO"));
        assert_eq!(parse_dmi_value("To Be Filled By O.E.M.\n", "product_serial").unwrap(), None);
        assert_eq!(parse_dmi_value("Default string", "product_serial").unwrap(), None);
        assert_eq!(parse_dmi_value("   \n", "board_serial").unwrap(), None);
        assert_eq!(parse_dmi_value("0000000000", "product_serial").unwrap(), None);
        assert!(parse_dmi_value(&"x".repeat(5000), "x").is_err());
    }

    #[test]
    fn chassis_types() {
        assert_eq!(parse_chassis_type("10\n").unwrap().as_deref(), Some("Notebook"));
        assert_eq!(parse_chassis_type("23").unwrap().as_deref(), Some("Rack Mount Chassis"));
        assert_eq!(parse_chassis_type("2").unwrap(), None);
        assert_eq!(parse_chassis_type("200").unwrap(), None);
        assert!(parse_chassis_type("laptop").is_err());
        assert!(parse_chassis_type("999").is_err());
    }
}
