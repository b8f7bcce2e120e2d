//! `serve`'s flags, assembled from the rooms that own them, and the configuration resolved
//! from them. The flags are exactly those of `nthlayer-workers serve` (same names, same
//! defaults), plus what a host of sandboxed modules needs on top; each lives with its room
//! (capability/<name>/config.rs, lifecycle/config.rs, policy/config.rs, runtime/config.rs,
//! tape/config.rs, outbox/config.rs, command/module_flags/) and is flattened in here.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};

use crate::command::module_flags::ModuleArgs;
use crate::lifecycle::config::{HostConfig, SchedulerArgs, SwapArgs};
use crate::outbox::config::OutboxArgs;
use crate::policy::config::PolicyArgs;
use crate::policy::limits::Limits;
use crate::runtime::config::CacheArgs;
use crate::tape::config::RecordArgs;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Every capability's flags (`--core-url`, `--prometheus-url`, `--tempo-endpoint`,
    /// `--arbiter-url`, `--llm`): capability/<name>/config.rs.
    #[command(flatten)]
    pub caps: crate::capability::CapabilityArgs,
    /// Heartbeat instance id.
    #[arg(long, default_value = "workers-1")]
    pub instance_id: String,
    /// The built-in modules' knobs (intervals, learn's and respond's settings, measure's
    /// environment): command/module_flags/.
    #[command(flatten)]
    pub module_flags: ModuleArgs,
    #[command(flatten)]
    pub swap: SwapArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub scheduler: SchedulerArgs,
    #[command(flatten)]
    pub tape: RecordArgs,
    #[command(flatten)]
    pub outbox: OutboxArgs,
    #[command(flatten)]
    pub ha: crate::ha::config::HaArgs,
    #[command(flatten)]
    pub admin: crate::ops::admin::config::AdminArgs,
    #[command(flatten)]
    pub settings: crate::command::settings::SettingsArgs,
    /// The HTTP surface (`--listen`, `--no-metrics`): ops/.
    #[command(flatten)]
    pub ops: crate::ops::config::OpsArgs,
}

/// Resolving the configuration is the flags' business; what it holds is the lifecycle's.
impl HostConfig {
    pub fn from_args(a: &ServeArgs) -> Result<Self> {
        let mut intervals = BTreeMap::new();
        for (task, v) in a.module_flags.intervals() {
            if let Some(v) = v {
                intervals.insert(task.to_string(), v);
            }
        }
        for spec in &a.scheduler.intervals {
            let (task, secs) =
                spec.split_once('=').with_context(|| format!("--interval {spec:?}: expected TASK=SECONDS"))?;
            let secs: u64 =
                secs.parse().with_context(|| format!("--interval {spec:?}: seconds must be a whole number"))?;
            if secs == 0 {
                bail!("--interval {spec:?}: the interval of {task} must be at least 1 second");
            }
            intervals.insert(task.to_string(), secs);
        }
        if let Some((t, _)) = intervals.iter().find(|(_, s)| **s == 0) {
            bail!("interval of {t} must be at least 1 second");
        }
        let mut limits = BTreeMap::new();
        for spec in &a.policy.limits {
            let (module, j) =
                spec.split_once('=').with_context(|| format!("--limits {spec:?}: expected MODULE=JSON"))?;
            let base: Limits = limits.get("*").cloned().unwrap_or_default();
            let mut merged = serde_json::to_value(&base)?;
            let patch: Value = serde_json::from_str(j).with_context(|| format!("--limits {module}: not JSON"))?;
            let Value::Object(patch) = patch else { bail!("--limits {module}: expected a JSON object") };
            for (k, v) in patch {
                merged[k] = v;
            }
            let parsed: Limits = serde_json::from_value(merged).with_context(|| format!("--limits {module}"))?;
            limits.insert(module.to_string(), parsed);
        }
        let flags = &a.module_flags;
        let mut module_config = Map::new();
        module_config.insert("instance_id".into(), json!(a.instance_id));
        flags.learn.config(&mut module_config);
        module_config.insert("tempo_configured".into(), json!(a.caps.tempo.tempo_endpoint.is_some()));
        module_config.insert("measure".into(), flags.measure.knobs());
        module_config.insert("respond".into(), flags.respond.config()?);
        let module_config = Value::Object(module_config);
        let retry_first = std::time::Duration::from_secs(a.scheduler.failed_cycle_retry_seconds.max(1));
        Ok(HostConfig { intervals, limits, module_config, retry_first })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).unwrap().serve
    }

    #[test]
    fn reference_flags_map_to_tasks() {
        let a = parse(&[
            "--modules",
            "a.wasm",
            "--collect-interval",
            "5",
            "--respond-interval",
            "7",
            "--interval",
            "custom.x=3",
        ]);
        let c = HostConfig::from_args(&a).unwrap();
        assert_eq!(c.interval_for("observe.collect", 60), 5);
        assert_eq!(c.interval_for("respond", 30), 7);
        assert_eq!(c.interval_for("custom.x", 10), 3);
        assert_eq!(c.interval_for("observe.drift", 1800), 1800);
        assert_eq!(a.caps.core.core_url, "http://localhost:8000");
        assert_eq!(a.caps.prometheus.prometheus_url, "http://localhost:9090");
        assert_eq!(a.instance_id, "workers-1");
        assert_eq!(c.module_config["expiry_threshold_days"], 7);
    }

    #[test]
    fn respond_config_passes_through_as_an_object() {
        let c = HostConfig::from_args(&parse(&["--modules", "a.wasm"])).unwrap();
        assert_eq!(c.module_config["respond"], json!({}));
        let a = parse(&["--modules", "a.wasm", "--respond-config", r#"{"fallback_threshold_seconds":5}"#]);
        assert_eq!(HostConfig::from_args(&a).unwrap().module_config["respond"]["fallback_threshold_seconds"], 5);
        assert!(HostConfig::from_args(&parse(&["--modules", "a.wasm", "--respond-config", "[1]"])).is_err());
    }

    #[test]
    fn learn_flags_reach_the_module_config() {
        let c = HostConfig::from_args(&parse(&["--modules", "a.wasm"])).unwrap();
        assert_eq!(c.module_config["calibration_sample_rate"], 0.05);
        assert_eq!(c.module_config["retrospective_delay_seconds"], 120);
        let a = parse(&[
            "--modules",
            "a.wasm",
            "--min-resolution-age-hours",
            "0",
            "--calibration-sample-rate",
            "1",
            "--calibration-sample-seed",
            "s",
            "--retrospective-delay-seconds",
            "0",
        ]);
        let c = HostConfig::from_args(&a).unwrap();
        assert_eq!(c.module_config["min_resolution_age_hours"], 0);
        assert_eq!(c.module_config["calibration_sample_rate"], 1.0);
        assert_eq!(c.module_config["calibration_sample_seed"], "s");
        assert_eq!(c.module_config["retrospective_delay_seconds"], 0);
    }

    #[test]
    fn limits_merge_over_defaults_and_reject_typos() {
        let a = parse(&[
            "--modules",
            "a.wasm",
            "--limits",
            r#"*={"cpu_ms":500,"max_records":60000}"#,
            "--limits",
            r#"observe={"memory_bytes":1048576}"#,
        ]);
        let c = HostConfig::from_args(&a).unwrap();
        assert_eq!(c.limits_for("observe").cpu_ms, 500);
        // Every field of the `*` base carries into a module's own limits (a hand-kept list of
        // fields once missed one).
        assert_eq!(c.limits_for("observe").max_records, 60_000);
        assert_eq!(c.limits_for("observe").memory_bytes, 1 << 20);
        assert_eq!(c.limits_for("other").cpu_ms, 500);
        let bad = parse(&["--modules", "a.wasm", "--limits", r#"observe={"cpu":1}"#]);
        assert!(HostConfig::from_args(&bad).is_err());
        let zero = parse(&["--modules", "a.wasm", "--interval", "x=0"]);
        assert!(HostConfig::from_args(&zero).is_err());
    }
}

/// The docs state some defaults in prose; `--help` states them from the code. This keeps
/// the two from drifting (docs/PARITY.md once said 4 concurrent cycles while the code said 8).
#[cfg(test)]
mod docs_agree {
    use super::ServeArgs;
    use clap::Args;

    #[test]
    fn defaults_in_docs_match_the_flags() {
        let cmd = ServeArgs::augment_args(clap::Command::new("serve"));
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut checked = 0;
        for doc in ["README.md", "docs/PARITY.md", "docs/ARCHITECTURE.md", "docs/SANDBOX.md", "docs/LLM.md"] {
            let Ok(text) = std::fs::read_to_string(root.join(doc)) else { continue };
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                let Some(default) = arg.get_default_values().first() else { continue };
                let flag = format!("`--{long}`");
                // "`--flag`, default N" / "`--flag` (default N)" anywhere in the docs.
                for (at, _) in text.match_indices(&flag) {
                    let rest = &text[at + flag.len()..];
                    let rest = rest.trim_start_matches([',', ' ', '(']);
                    if let Some(v) = rest.strip_prefix("default ") {
                        let v: String = v.chars().take_while(|c| !c.is_whitespace() && !",;)".contains(*c)).collect();
                        assert_eq!(
                            v,
                            default.to_string_lossy(),
                            "{doc} says --{long} defaults to {v}; the flag says {default:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 0, "no documented default found; the pattern or the docs changed");
    }
}
