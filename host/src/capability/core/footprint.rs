//! What a held record really costs the host: a record is held as parsed JSON until its
//! cycle commits, and parsed JSON takes several times its text (a `Value` per node, a
//! `String` per key, the map's index). Counting the text let a module of tiny records hold
//! far more memory than the per-cycle cap says; counting this estimate does not.

use serde_json::{Map, Value};

/// Per map entry beyond key and value: the index's slot and the entry's cached hash.
const ENTRY: usize = 2 * std::mem::size_of::<usize>();

/// Heap and inline bytes of one JSON value (an estimate from the types' sizes and the
/// buffers' capacities: close to the allocator's count, never below the text).
pub fn of_value(v: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match v {
            Value::String(s) => s.capacity(),
            Value::Array(a) => a.iter().map(of_value).sum::<usize>()
                + (a.capacity() - a.len()) * std::mem::size_of::<Value>(),
            Value::Object(m) => of_map(m),
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        }
}

/// As [`of_value`], for a record's top-level map (without its own `Value`).
pub fn of_map(m: &Map<String, Value>) -> usize {
    m.iter().map(|(k, v)| std::mem::size_of::<String>() + k.capacity() + ENTRY + of_value(v)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// observe's collect at 10,000 services × 3 SLOs holds 30,001 records: their footprint
    /// must fit the per-cycle cap, or the default limits could not hold that cycle.
    #[test]
    fn a_10000_service_collect_fits_the_held_bytes_cap() {
        let record = serde_json::json!({
            "id": "asm-2026-12-01-5f3a9c21-00001", "created_at": "2026-12-01T21:00:00.123456+00:00",
            "kind": "slo_status", "service": "service-0001", "producer": "nthlayer-observe",
            "data": {"slo_name": "availability", "slo_type": "availability", "target": 99.9, "window": "30d",
                "current_value": 99.9731, "error_budget_remaining": 0.731, "status": "HEALTHY",
                "query": "sum(rate(http_requests_total{service=\"service-0001\",code!~\"5..\"}[5m])) / sum(rate(http_requests_total{service=\"service-0001\"}[5m])) * 100",
                "evaluated_at": "2026-12-01T21:00:00.123456+00:00"},
            "emitted_by": {"module": "observe", "version": "1.0.0"},
        });
        let Value::Object(m) = record else { unreachable!() };
        let each = of_map(&m) + "observe".len() + "asm-2026-12-01-5f3a9c21-00001".len();
        let cycle = each * 30_001;
        eprintln!("observe slo_status: {each} bytes held each, {cycle} for a 10,000-service collect");
        assert!(cycle < crate::outbox::MAX_HELD_BYTES, "{cycle} bytes");
        assert!(30_001 < crate::policy::limits::Limits::default().max_records);
    }

    #[test]
    fn a_small_record_costs_several_times_its_text() {
        let text = r#"{"id":"a-1","kind":"k","service":"s","created_at":"t","data":{"n":1}}"#;
        let Value::Object(m) = serde_json::from_str::<Value>(text).unwrap() else { unreachable!() };
        let bytes = of_map(&m);
        assert!(bytes > 4 * text.len(), "{bytes} for {} bytes of text", text.len());
    }
}
