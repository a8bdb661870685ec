//! Units of the filter language: sizes (`8GiB`, `500MB`), durations (`30s`,
//! `7d`) and their exact arithmetic. A literal such as `1.5GiB` is
//! converted without floating point, so `1.5GiB` is exactly 1610612736
//! bytes, and a value that is not a whole number of bytes or milliseconds
//! is refused rather than rounded.
//!
//! Formatting picks the largest unit that divides the value exactly, so
//! printing a literal and parsing it again gives the same value.

/// Size units, matched ignoring ASCII case (`gib`, `GiB`, `GIB`).
const SIZE_UNITS: [(&str, u64); 11] = [
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("TB", 1_000_000_000_000),
    ("PB", 1_000_000_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TiB", 1 << 40),
    ("PiB", 1 << 50),
];

/// Duration units, case-sensitive (`m` is a minute; there is no month).
const DURATION_UNITS: [(&str, i64); 6] =
    [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 7 * 86_400_000)];

/// The names for error messages: "B, KB, ..., PiB".
pub(crate) fn size_unit_names() -> String {
    SIZE_UNITS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

pub(crate) fn duration_unit_names() -> String {
    DURATION_UNITS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

pub(crate) fn size_unit(unit: &str) -> Option<u64> {
    SIZE_UNITS.iter().find(|(n, _)| n.eq_ignore_ascii_case(unit)).map(|(_, m)| *m)
}

pub(crate) fn duration_unit(unit: &str) -> Option<i64> {
    DURATION_UNITS.iter().find(|(n, _)| *n == unit).map(|(_, m)| *m)
}

/// Why a number could not become a whole quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inexact {
    /// `1.5B`: not a whole number of the base unit.
    Fraction,
    TooLarge,
}

/// `digits` (as the lexer took them: digits and at most one point) times
/// `multiplier`, exactly.
pub(crate) fn scale(digits: &str, multiplier: u64) -> Result<u64, Inexact> {
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let mantissa: u128 = format!("{whole}{fraction}").parse().map_err(|_| Inexact::TooLarge)?;
    let divisor = 10u128.checked_pow(u32::try_from(fraction.len()).map_err(|_| Inexact::TooLarge)?).ok_or(Inexact::TooLarge)?;
    let product = mantissa.checked_mul(u128::from(multiplier)).ok_or(Inexact::TooLarge)?;
    if product % divisor != 0 {
        return Err(Inexact::Fraction);
    }
    u64::try_from(product / divisor).map_err(|_| Inexact::TooLarge)
}

/// Bytes in the largest binary unit that divides them, else decimal:
/// `8GiB`, `500MB`, `3B`.
pub(crate) fn format_size(bytes: u64) -> String {
    if bytes == 0 {
        return "0B".into();
    }
    let unit = SIZE_UNITS.iter().rev().filter(|(_, m)| bytes % m == 0).max_by_key(|(_, m)| *m).expect("B divides every size");
    format!("{}{}", bytes / unit.1, unit.0)
}

/// Milliseconds in the largest unit that divides them: `7d`, `90m`, `1500ms`.
pub(crate) fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let unit = DURATION_UNITS.iter().rev().find(|(_, m)| ms % m == 0).expect("ms divides every duration");
    format!("{}{}", ms / unit.1, unit.0)
}

/// A size for a person reading a table: `7.8 GiB`, `512 B`.
pub(crate) fn human_size(bytes: u64) -> String {
    const STEPS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut step = 0;
    while value >= 1024.0 && step + 1 < STEPS.len() {
        value /= 1024.0;
        step += 1;
    }
    if step == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", STEPS[step]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_exactly() {
        assert_eq!(scale("8", size_unit("GiB").unwrap()), Ok(8 << 30));
        assert_eq!(scale("1.5", size_unit("gib").unwrap()), Ok(1_610_612_736));
        assert_eq!(scale("0.1", size_unit("KB").unwrap()), Ok(100));
        assert_eq!(scale("1.5", size_unit("B").unwrap()), Err(Inexact::Fraction));
        assert_eq!(scale("20000", size_unit("PiB").unwrap()), Err(Inexact::TooLarge));
        assert_eq!(scale("1.5", duration_unit("h").unwrap() as u64), Ok(5_400_000));
        assert_eq!(size_unit("Gb"), Some(1_000_000_000));
        assert_eq!(duration_unit("M"), None, "a capital M is not a minute");
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format_size(8 << 30), "8GiB");
        assert_eq!(format_size(500_000_000), "500MB");
        assert_eq!(format_size(1_536), "1536B");
        assert_eq!(format_size(3 << 20), "3MiB");
        assert_eq!(format_size(3), "3B");
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_duration(7 * 86_400_000), "1w");
        assert_eq!(format_duration(5_400_000), "90m");
        assert_eq!(format_duration(1_500), "1500ms");
        assert_eq!(human_size(8_300_000_000), "7.7 GiB");
        assert_eq!(human_size(512), "512 B");
    }

    #[test]
    fn formatting_round_trips() {
        for bytes in [1u64, 999, 1_000, 1_024, 1_536, 3 << 40, u64::MAX] {
            let text = format_size(bytes);
            let split = text.find(|c: char| !c.is_ascii_digit()).unwrap();
            assert_eq!(scale(&text[..split], size_unit(&text[split..]).unwrap()), Ok(bytes), "{text}");
        }
    }
}
