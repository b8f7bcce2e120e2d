//! `workers.respond.*` settings. The reference's worker mode can only ever use the
//! dataclass defaults (`nthlayer-workers serve` builds `RespondConfig` from the interval
//! alone); the host passes an operator's overrides as `config.respond` (`--respond-config`).

use nthlayer_sdk::{Host, Level};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct RespondConfig {
    /// A breach with no snapshot after this long opens its own incident.
    pub fallback_threshold_seconds: f64,
    /// Terminal incidents are dropped from state this long after their last update.
    pub terminal_retention_seconds: f64,
    /// Bound of one pipeline step (0 disables it, as in the reference).
    pub step_timeout_seconds: f64,
    /// A degraded (`escalate`) verdict below this confidence escalates the incident.
    pub escalation_threshold: f64,
    /// Investigation keeps a root cause only at or above this confidence.
    pub root_cause_threshold: f64,
    /// Steps start only while this much of the cycle is left for their worst case; the rest
    /// continue next cycle (a cycle has a wall-clock bound; the reference has none).
    pub cycle_budget_seconds: f64,
    /// Send the arbiter autonomy reduction when remediation recommends it. Off by default.
    pub arbiter_enabled: bool,
    pub max_tokens: u32,
    /// Per-agent timeouts, seconds: triage, investigation, communication, remediation.
    pub agent_timeouts: [f64; 4],
    pub max_retries: u32,
    /// What the state keeps at most (incident::Keep).
    pub keep: crate::incident::Keep,
}

impl Default for RespondConfig {
    fn default() -> Self {
        RespondConfig {
            fallback_threshold_seconds: 60.0,
            terminal_retention_seconds: 86400.0,
            step_timeout_seconds: 90.0,
            escalation_threshold: 0.3,
            root_cause_threshold: 0.7,
            cycle_budget_seconds: 100.0,
            arbiter_enabled: false,
            max_tokens: 4096,
            agent_timeouts: [15.0, 60.0, 20.0, 30.0],
            max_retries: 3,
            keep: crate::incident::Keep::default(),
        }
    }
}

impl RespondConfig {
    /// Reads `config.respond`. An invalid value is logged and its default kept: a typo must
    /// not stop incident response.
    pub fn from_input(host: &dyn Host, config: &Value) -> Self {
        let mut c = RespondConfig::default();
        let Some(obj) = config.get("respond").and_then(Value::as_object) else { return c };
        let num = |key: &str, slot: &mut f64, max: Option<f64>| {
            let Some(v) = obj.get(key) else { return };
            match v.as_f64() {
                Some(x) if x >= 0.0 && max.is_none_or(|m| x <= m) => *slot = x,
                _ => host.log(Level::Warn, "respond_config_invalid", &[("key", key), ("value", &v.to_string())]),
            }
        };
        num("fallback_threshold_seconds", &mut c.fallback_threshold_seconds, None);
        num("terminal_retention_seconds", &mut c.terminal_retention_seconds, None);
        num("step_timeout_seconds", &mut c.step_timeout_seconds, None);
        num("escalation_threshold", &mut c.escalation_threshold, Some(1.0));
        num("root_cause_threshold", &mut c.root_cause_threshold, Some(1.0));
        num("cycle_budget_seconds", &mut c.cycle_budget_seconds, None);
        for (i, role) in ["triage", "investigation", "communication", "remediation"].iter().enumerate() {
            num(&format!("{role}_timeout_seconds"), &mut c.agent_timeouts[i], None);
        }
        if let Some(v) = obj.get("arbiter_enabled") {
            match v.as_bool() {
                Some(b) => c.arbiter_enabled = b,
                None => host.log(
                    Level::Warn,
                    "respond_config_invalid",
                    &[("key", "arbiter_enabled"), ("value", &v.to_string())],
                ),
            }
        }
        if let Some(n) = obj.get("max_tokens").and_then(Value::as_u64) {
            c.max_tokens = n.clamp(1, u32::MAX as u64) as u32;
        }
        for (key, slot) in [("max_incidents", &mut c.keep.incidents), ("max_incident_bytes", &mut c.keep.bytes)] {
            if let Some(v) = obj.get(key) {
                match v.as_u64().filter(|n| *n > 0) {
                    Some(n) => *slot = n as usize,
                    None => host.log(Level::Warn, "respond_config_invalid", &[("key", key), ("value", &v.to_string())]),
                }
            }
        }
        if let Some(n) = obj.get("max_retries").and_then(Value::as_u64) {
            c.max_retries = n.min(10) as u32;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nthlayer_sdk::testing::FakeHost;
    use serde_json::json;

    #[test]
    fn defaults_are_the_references() {
        let h = FakeHost::new();
        let c = RespondConfig::from_input(&h, &json!({}));
        assert_eq!(c, RespondConfig::default());
        assert_eq!(
            (c.fallback_threshold_seconds, c.terminal_retention_seconds, c.step_timeout_seconds),
            (60.0, 86400.0, 90.0)
        );
        assert_eq!((c.escalation_threshold, c.root_cause_threshold), (0.3, 0.7));
        assert!(!c.arbiter_enabled);
    }

    #[test]
    fn overrides_apply_and_bad_values_keep_defaults_with_a_log() {
        let h = FakeHost::new();
        let c = RespondConfig::from_input(
            &h,
            &json!({"respond": {"fallback_threshold_seconds": 0, "escalation_threshold": 1.5,
                                "step_timeout_seconds": -1, "arbiter_enabled": true, "triage_timeout_seconds": 5}}),
        );
        assert_eq!(c.fallback_threshold_seconds, 0.0);
        assert_eq!(c.escalation_threshold, 0.3);
        assert_eq!(c.step_timeout_seconds, 90.0);
        assert_eq!(c.agent_timeouts[0], 5.0);
        assert!(c.arbiter_enabled);
        assert_eq!(h.logs.borrow().iter().filter(|(_, m)| m == "respond_config_invalid").count(), 2);
    }
}
