//! learn's flags: its tasks' intervals and the knobs its cycles read from `config`.

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, clap::Args)]
pub struct LearnArgs {
    #[arg(long)]
    pub outcome_interval: Option<u64>,
    #[arg(long)]
    pub retrospective_interval: Option<u64>,
    #[arg(long, default_value_t = 7)]
    pub expiry_threshold_days: u64,
    #[arg(long, default_value_t = 1)]
    pub min_resolution_age_hours: u64,
    /// learn: share (0..1) of each producer's verdicts put up for calibration review.
    #[arg(long, default_value_t = 0.05)]
    pub calibration_sample_rate: f64,
    /// learn: seed of the calibration sample (a different seed draws a different sample).
    #[arg(long, default_value = "nthlayer-learn")]
    pub calibration_sample_seed: String,
    /// learn: wait this long after a correlation snapshot before writing its retrospective,
    /// so respond's incident verdicts are in it.
    #[arg(long, default_value_t = 120)]
    pub retrospective_delay_seconds: u64,
}

impl LearnArgs {
    pub fn intervals(&self) -> Vec<(&'static str, Option<u64>)> {
        vec![("learn.outcome", self.outcome_interval), ("learn.retrospective", self.retrospective_interval)]
    }

    /// learn's keys at the top of the cycles' `config` (where the reference's flags put them).
    pub fn config(&self, into: &mut Map<String, Value>) {
        into.insert("expiry_threshold_days".into(), json!(self.expiry_threshold_days));
        into.insert("min_resolution_age_hours".into(), json!(self.min_resolution_age_hours));
        into.insert("calibration_sample_rate".into(), json!(self.calibration_sample_rate));
        into.insert("calibration_sample_seed".into(), json!(self.calibration_sample_seed));
        into.insert("retrospective_delay_seconds".into(), json!(self.retrospective_delay_seconds));
    }
}
