//! Wall-clock conversions. Domain code takes time as an argument; only the
//! edges (handlers, `main`) read the clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 for times before it.
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Now, in Unix milliseconds: the one place the edges read the clock.
pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// The inverse of `unix_ms`.
pub fn from_unix_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// UTC calendar date of Unix milliseconds (civil-from-days, Howard Hinnant).
pub fn utc_date(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// RFC 3339 UTC with whole seconds (`2026-11-28T06:22:32Z`), as tickets
/// and mails show times to people.
pub fn rfc3339_seconds(unix_ms: i64) -> String {
    humantime::format_rfc3339_seconds(from_unix_ms(unix_ms)).to_string()
}

/// RFC 3339 UTC with milliseconds (`2026-11-24T10:00:00.000Z`), the form
/// webhook and Alertmanager payloads carry; times before the epoch clamp to it.
pub fn rfc3339(unix_ms: i64) -> String {
    humantime::format_rfc3339_millis(from_unix_ms(unix_ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_millis() {
        // Oracle: `date -u -d @1764000000.123 +%Y-%m-%dT%H:%M:%S.%3NZ`
        assert_eq!(rfc3339(1_764_000_000_123), "2025-11-24T16:00:00.123Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
    }
}
