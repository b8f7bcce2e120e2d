//! Timestamps exactly as nthlayer-core and the reference write them.

use chrono::{DateTime, SecondsFormat, Utc};

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (Python's `datetime.now(UTC).isoformat()`), the only
/// form that sorts correctly among core's string-compared timestamps.
pub fn iso(unix_seconds: f64) -> String {
    to_datetime(unix_seconds).to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// `YYYY-MM-DD` in UTC.
pub fn date(unix_seconds: f64) -> String {
    to_datetime(unix_seconds).format("%Y-%m-%d").to_string()
}

pub fn to_datetime(unix_seconds: f64) -> DateTime<Utc> {
    let micros = (unix_seconds * 1_000_000.0).round() as i64;
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Parses an ISO-8601 timestamp (with offset, or naive = UTC) to Unix seconds.
pub fn parse_iso(s: &str) -> Option<f64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros() as f64 / 1e6);
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc().timestamp_micros() as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_matches_python_isoformat() {
        assert_eq!(iso(1_795_360_127.615105), "2026-11-22T15:08:47.615105+00:00");
        assert_eq!(iso(0.0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(date(1_795_360_127.0), "2026-11-22");
    }

    #[test]
    fn parse_round_trips() {
        let t = 1_795_360_127.615105;
        assert!((parse_iso(&iso(t)).unwrap() - t).abs() < 1e-6);
        assert_eq!(parse_iso("2026-11-22T15:08:47"), Some(1_795_360_127.0));
        assert_eq!(parse_iso("not-a-date"), None);
    }
}
