//! Deterministic ids. The reference draws incident and verdict ids from uuid4 and a
//! process-wide counter, so a restart (or a cycle that dies before its state is saved)
//! re-opens the same situation under new ids. Ours derive from what triggered them, so a
//! replay produces the same ids and core's 409 `duplicate` stops the second write.

/// 8 hex digits of FNV-1a over `s`: stable across builds and platforms.
pub fn hash8(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", (h ^ (h >> 32)) as u32)
}

/// `INC-<SERVICE>-YYYYmmdd-HHMMSS-<hash8(trigger)>`, stamped with the trigger's time.
pub fn incident_id(service: &str, trigger_id: &str, trigger_unix: f64) -> String {
    let stamp = nthlayer_sdk::time::to_datetime(trigger_unix).format("%Y%m%d-%H%M%S");
    format!("INC-{}-{}-{}", service.to_uppercase().replace('/', "-"), stamp, hash8(trigger_id))
}

/// `vrd-<trigger date>-<hash8(incident)>-<slot:05>`: one id per pipeline slot of an incident.
pub fn verdict_id(incident_id: &str, trigger_unix: f64, slot: u32) -> String {
    format!("vrd-{}-{}-{:05}", nthlayer_sdk::time::date(trigger_unix), hash8(incident_id), slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_shaped_like_the_references() {
        assert_eq!(hash8("csn-a"), hash8("csn-a"));
        assert_ne!(hash8("csn-a"), hash8("csn-b"));
        let id = incident_id("team/fraud-detect", "csn-a", 1_795_532_927.6);
        assert!(id.starts_with("INC-TEAM-FRAUD-DETECT-20261124-150847-"), "{id}");
        assert_eq!(id.len(), "INC-TEAM-FRAUD-DETECT-20261124-150847-".len() + 8);
        assert_eq!(verdict_id("INC-X", 1_795_532_927.6, 3), format!("vrd-2026-11-24-{}-00003", hash8("INC-X")));
    }
}
