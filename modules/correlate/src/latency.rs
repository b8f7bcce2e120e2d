//! Latency promises as written in manifests ("200ms", "1.5s") in milliseconds.

/// Trimmed and lower-cased; `ms` or `s` suffix; anything else (including "fast") is `None`,
/// which the callers treat as "no promise to check", as the reference does.
pub fn parse_ms(s: &str) -> Option<f64> {
    let s = s.trim().to_lowercase();
    let num = |t: &str| nthlayer_sdk::py::float_str(t);
    if let Some(t) = s.strip_suffix("ms") {
        return num(t);
    }
    s.strip_suffix('s').and_then(num).map(|v| v * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::parse_ms;

    #[test]
    fn suffixes_and_garbage() {
        assert_eq!(parse_ms("200ms"), Some(200.0));
        assert_eq!(parse_ms(" 1.5S "), Some(1500.0));
        assert_eq!(parse_ms("0.25s"), Some(250.0));
        assert_eq!(parse_ms("200"), None);
        assert_eq!(parse_ms("fast"), None);
        assert_eq!(parse_ms("ms"), None);
        assert_eq!(parse_ms("xs"), None);
        assert_eq!(parse_ms("1e3ms"), Some(1000.0));
    }
}
