//! What a held record really costs the host, checked against the caps that bound it. A
//! record is held as its JSON text until its cycle commits (`Emitted`, backend/envelope.rs),
//! so its cost is the text plus the struct around it, `Emitted::held_bytes`; an earlier form
//! held parsed JSON, which took several times the text, and a module of many tiny records
//! could hold far more memory than the cap counted.

#[cfg(test)]
mod tests {
    use crate::backend::envelope::{Emitted, RecordKind};
    use serde_json::Value;

    fn held(record: Value, component: &str) -> Emitted {
        let Value::Object(m) = record else { unreachable!() };
        Emitted::new(RecordKind::Assessment, component.into(), m)
    }

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
        let each = held(record, "observe").held_bytes();
        let cycle = each * 30_001;
        eprintln!("observe slo_status: {each} bytes held each, {cycle} for a 10,000-service collect");
        assert!(cycle < crate::outbox::MAX_HELD_BYTES / 2, "{cycle} bytes");
        assert!(30_001 < crate::policy::limits::Limits::default().max_records);
    }

    /// The flood: `max_records` tiny records are held in a few megabytes, well under the cap;
    /// what a parsed map would take is several times more.
    #[test]
    fn a_small_record_is_held_at_about_its_text() {
        let text = r#"{"id":"a-1","kind":"k","service":"s","created_at":"t","data":{"n":1}}"#;
        let e = held(serde_json::from_str(text).unwrap(), "flood");
        assert!(e.held_bytes() <= std::mem::size_of::<Emitted>() + text.len() + 16, "{}", e.held_bytes());
        let max = crate::policy::limits::Limits::default().max_records;
        assert!(e.held_bytes() * max < 16 << 20, "{} bytes for {max} records", e.held_bytes() * max);
    }
}
