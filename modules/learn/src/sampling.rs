//! Path 2, calibration sampling: a fixed share of each producer's verdicts is put up for human
//! review, and the reviewer's answer becomes that verdict's calibration signal.
//!
//! Why a sample and not every override: people override the verdicts that looked wrong, so
//! calibrating on overrides alone says every producer is over-confident. A sample drawn
//! without looking at the verdict gives an unbiased estimate. Membership is a pure function of
//! `(seed, producer, verdict id)`: the same verdicts are chosen on every cycle, every restart
//! and every replica, with nothing stored, and each producer gets `rate` of its own verdicts
//! whatever the others' volumes.

use serde_json::Value;

use crate::fnv1a64;

/// The producer a verdict is sampled under (`producer.system`, or the loose shape's `producer`).
pub fn producer(v: &Value) -> &str {
    v.pointer("/producer/system")
        .and_then(Value::as_str)
        .or_else(|| v.get("producer").and_then(Value::as_str))
        .unwrap_or("unknown")
}

/// Whether the verdict `id` from `producer` is in the calibration sample.
pub fn in_sample(seed: &str, producer: &str, id: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    if rate >= 1.0 {
        return true;
    }
    // Top 53 bits as a uniform fraction in [0, 1).
    let u = (mix(fnv1a64(&[seed, producer, id])) >> 11) as f64 / (1u64 << 53) as f64;
    u < rate
}

/// splitmix64's finaliser: FNV's high bits barely move between ids that differ only in
/// their last characters, and the fraction is taken from the high bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sample_is_deterministic_and_close_to_the_rate_per_producer() {
        for p in ["nthlayer-respond", "nthlayer-measure"] {
            let n = (0..20_000).filter(|i| in_sample("seed", p, &format!("vrd-{i}"), 0.05)).count();
            assert!((800..1200).contains(&n), "{p}: {n}");
        }
        assert_eq!(in_sample("s", "p", "v1", 0.3), in_sample("s", "p", "v1", 0.3));
        let a: Vec<bool> = (0..200).map(|i| in_sample("a", "p", &format!("v{i}"), 0.5)).collect();
        let b: Vec<bool> = (0..200).map(|i| in_sample("b", "p", &format!("v{i}"), 0.5)).collect();
        assert_ne!(a, b, "the seed changes the sample");
        assert!(!in_sample("s", "p", "v", 0.0));
        assert!(in_sample("s", "p", "v", 1.0));
    }

    #[test]
    fn producer_of_both_shapes() {
        assert_eq!(producer(&json!({"producer": {"system": "nthlayer-respond"}})), "nthlayer-respond");
        assert_eq!(producer(&json!({"producer": "nthlayer-measure"})), "nthlayer-measure");
        assert_eq!(producer(&json!({})), "unknown");
    }
}
