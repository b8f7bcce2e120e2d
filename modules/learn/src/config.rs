//! learn's settings, read from the host's module config (the `serve` flags).

use nthlayer_sdk::CycleInput;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `--expiry-threshold-days` (7). 0 disables expiry, as in the reference.
    pub expiry_threshold_days: u64,
    /// `--min-resolution-age-hours` (1). 0 looks at verdicts as soon as they exist.
    pub min_resolution_age_hours: u64,
    /// `--calibration-sample-rate` (0.05): share of each producer's verdicts put up for review.
    pub sample_rate: f64,
    /// `--calibration-sample-seed`: changing it draws a different, equally fair sample.
    pub sample_seed: String,
    /// `--retrospective-delay-seconds` (120): how long after a snapshot the retrospective is
    /// written, so respond's incident verdicts (written within a respond cycle) are in it.
    pub retrospective_delay_seconds: u64,
    /// Descendant look-ups per outcome cycle; bounds a cycle's cost when many verdicts are open.
    pub max_checks_per_cycle: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            expiry_threshold_days: 7,
            min_resolution_age_hours: 1,
            sample_rate: 0.05,
            sample_seed: "nthlayer-learn".into(),
            retrospective_delay_seconds: 120,
            max_checks_per_cycle: 500,
        }
    }
}

impl Config {
    pub fn from_input(input: &CycleInput) -> Self {
        let d = Config::default();
        let c = &input.config;
        Config {
            expiry_threshold_days: input.config_u64("expiry_threshold_days").unwrap_or(d.expiry_threshold_days),
            min_resolution_age_hours: input
                .config_u64("min_resolution_age_hours")
                .unwrap_or(d.min_resolution_age_hours),
            sample_rate: c
                .get("calibration_sample_rate")
                .and_then(|v| v.as_f64())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(d.sample_rate),
            sample_seed: input.config_str("calibration_sample_seed").map(str::to_string).unwrap_or(d.sample_seed),
            retrospective_delay_seconds: input
                .config_u64("retrospective_delay_seconds")
                .unwrap_or(d.retrospective_delay_seconds),
            max_checks_per_cycle: input
                .config_u64("learn_max_checks_per_cycle")
                .filter(|n| *n > 0)
                .unwrap_or(d.max_checks_per_cycle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_host_config_and_defaults() {
        let input = |config| CycleInput { task: "learn.outcome".into(), state: None, config, args: None };
        assert_eq!(Config::from_input(&input(json!({}))), Config::default());
        let c = Config::from_input(&input(json!({
            "expiry_threshold_days": 0, "min_resolution_age_hours": 0, "calibration_sample_rate": 1.0,
            "calibration_sample_seed": "s", "retrospective_delay_seconds": 0
        })));
        assert_eq!((c.expiry_threshold_days, c.min_resolution_age_hours), (0, 0));
        assert_eq!((c.sample_rate, c.sample_seed.as_str(), c.retrospective_delay_seconds), (1.0, "s", 0));
        assert_eq!(Config::from_input(&input(json!({"calibration_sample_rate": 2.0}))).sample_rate, 0.05);
    }
}
