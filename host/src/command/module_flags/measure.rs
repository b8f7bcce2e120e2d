//! measure's flag and environment: its interval, and the reference's `MEASURE_*` variables
//! (read by clap, hidden from `--help`: the reference has them as environment only).

use serde_json::{json, Value};

#[derive(Debug, Clone, clap::Args)]
pub struct MeasureArgs {
    #[arg(long)]
    pub measure_interval: Option<u64>,
    #[arg(long, env = "MEASURE_THRESHOLD_INTERVAL", hide = true)]
    pub measure_threshold_interval: Option<String>,
    #[arg(long, env = "MEASURE_THRESHOLD_HEARTBEAT", hide = true)]
    pub measure_threshold_heartbeat: Option<String>,
    #[arg(long, env = "MEASURE_THRESHOLD_AUTONOMY", hide = true)]
    pub measure_threshold_autonomy: Option<String>,
    #[arg(long, env = "MEASURE_RETENTION_CHECK", hide = true)]
    pub measure_retention_check: Option<String>,
}

impl MeasureArgs {
    pub fn intervals(&self) -> Vec<(&'static str, Option<u64>)> {
        vec![("measure", self.measure_interval)]
    }

    /// The knobs measure reads from `config.measure`.
    pub fn knobs(&self) -> Value {
        measure_knobs(|name| {
            match name {
                "MEASURE_THRESHOLD_INTERVAL" => &self.measure_threshold_interval,
                "MEASURE_THRESHOLD_HEARTBEAT" => &self.measure_threshold_heartbeat,
                "MEASURE_THRESHOLD_AUTONOMY" => &self.measure_threshold_autonomy,
                "MEASURE_RETENTION_CHECK" => &self.measure_retention_check,
                _ => return None,
            }
            .clone()
        })
    }
}

/// The reference's `MEASURE_*` environment knobs, parsed as it parses them, for the measure
/// module (a module cannot read the environment). Timings are float seconds in (0, 7 d]; a
/// bad value warns and keeps the default. Autonomy is off unless `1|true|yes|on`; the
/// retention check is on unless `off|false|0`.
pub fn measure_knobs(env: impl Fn(&str) -> Option<String>) -> Value {
    let seconds = |name: &str, default: f64| -> f64 {
        let raw = env(name).unwrap_or_default();
        let raw = raw.trim();
        if raw.is_empty() {
            return default;
        }
        match raw.replace('_', "").parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 && v <= 7.0 * 86400.0 => v,
            _ => {
                tracing::warn!(name, value = raw, default, "measure_env_invalid");
                default
            }
        }
    };
    let flag = |name: &str| env(name).unwrap_or_default().trim().to_ascii_lowercase();
    json!({
        "threshold_interval_seconds": seconds("MEASURE_THRESHOLD_INTERVAL", 900.0),
        "threshold_heartbeat_seconds": seconds("MEASURE_THRESHOLD_HEARTBEAT", 3600.0),
        "threshold_autonomy": matches!(flag("MEASURE_THRESHOLD_AUTONOMY").as_str(), "1" | "true" | "yes" | "on"),
        "retention_check": !matches!(flag("MEASURE_RETENTION_CHECK").as_str(), "off" | "false" | "0"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_knobs_parse_like_the_reference() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let d = measure_knobs(env(&[]));
        assert_eq!(
            d,
            json!({"threshold_interval_seconds": 900.0, "threshold_heartbeat_seconds": 3600.0,
                "threshold_autonomy": false, "retention_check": true})
        );
        let k = measure_knobs(env(&[
            ("MEASURE_THRESHOLD_INTERVAL", " 2.5 "),
            ("MEASURE_THRESHOLD_HEARTBEAT", "0"),
            ("MEASURE_THRESHOLD_AUTONOMY", "Yes"),
            ("MEASURE_RETENTION_CHECK", "OFF"),
        ]));
        assert_eq!(k["threshold_interval_seconds"], 2.5);
        assert_eq!(k["threshold_heartbeat_seconds"], 3600.0);
        assert_eq!((k["threshold_autonomy"].as_bool(), k["retention_check"].as_bool()), (Some(true), Some(false)));
        for bad in ["abc", "nan", "inf", "-5", "604801"] {
            let pairs: &'static [(&'static str, &'static str)] =
                Box::leak(vec![("MEASURE_THRESHOLD_INTERVAL", bad)].into_boxed_slice());
            assert_eq!(measure_knobs(env(pairs))["threshold_interval_seconds"], 900.0, "{bad}");
        }
        assert_eq!(measure_knobs(env(&[("MEASURE_THRESHOLD_AUTONOMY", "maybe")]))["threshold_autonomy"], false);
        assert_eq!(measure_knobs(env(&[("MEASURE_RETENTION_CHECK", "no")]))["retention_check"], true);
    }

    #[test]
    fn the_environment_reaches_the_knobs_through_clap() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            measure: MeasureArgs,
        }
        let cmd = <Cli as clap::CommandFactory>::command();
        let envs: Vec<_> = cmd.get_arguments().filter_map(|a| a.get_env()?.to_str()).collect();
        for name in [
            "MEASURE_THRESHOLD_INTERVAL",
            "MEASURE_THRESHOLD_HEARTBEAT",
            "MEASURE_THRESHOLD_AUTONOMY",
            "MEASURE_RETENTION_CHECK",
        ] {
            assert!(envs.contains(&name), "{name} is not read");
        }
        let a = <Cli as clap::Parser>::parse_from(["x", "--measure-threshold-autonomy", "on"]).measure;
        assert_eq!(a.knobs()["threshold_autonomy"], true);
    }
}
