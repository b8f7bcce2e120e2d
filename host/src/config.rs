//! `serve` configuration: exactly the flags of `nthlayer-workers serve` (same names, same
//! defaults), plus what a host of sandboxed modules needs on top (module paths, grants,
//! limits, cache, concurrency).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::runtime::limits::Limits;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// nthlayer-core base URL.
    #[arg(long, default_value = "http://localhost:8000", env = "NTHLAYER_CORE_URL")]
    pub core_url: String,
    /// Heartbeat instance id.
    #[arg(long, default_value = "workers-1")]
    pub instance_id: String,
    #[arg(long, default_value = "http://localhost:9090")]
    pub prometheus_url: String,
    #[arg(long)]
    pub collect_interval: Option<u64>,
    #[arg(long)]
    pub drift_interval: Option<u64>,
    #[arg(long)]
    pub topology_interval: Option<u64>,
    #[arg(long)]
    pub correlate_interval: Option<u64>,
    #[arg(long)]
    pub topology_drift_interval: Option<u64>,
    #[arg(long)]
    pub contract_interval: Option<u64>,
    /// Grafana Tempo base URL (without it the tempo import answers "not configured").
    #[arg(long)]
    pub tempo_endpoint: Option<String>,
    #[arg(long)]
    pub measure_interval: Option<u64>,
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
    #[arg(long)]
    pub respond_interval: Option<u64>,

    /// Module components: files and globs (quoted globs are expanded by the host and
    /// watched for new files). Also NTHLAYER_MODULES, space-separated.
    #[arg(long, num_args = 1.., required = true, env = "NTHLAYER_MODULES", value_delimiter = ' ')]
    pub modules: Vec<String>,
    /// Override any task's interval: TASK=SECONDS (repeatable).
    #[arg(long = "interval", value_name = "TASK=SECONDS")]
    pub intervals: Vec<String>,
    /// Capabilities for a module: MODULE=core,prometheus,tempo,llm or MODULE=none (repeatable).
    #[arg(long = "grant", value_name = "MODULE=CAPS")]
    pub grants: Vec<String>,
    /// Limits for a module as JSON: MODULE={"cpu_ms":5000,"memory_bytes":67108864} (repeatable).
    /// Use `*` as MODULE for every module.
    #[arg(long = "limits", value_name = "MODULE=JSON")]
    pub limits: Vec<String>,
    /// LLM policy for a module: MODULE={"model":"openai/gpt-4o-mini","max_calls_per_cycle":4,
    /// "max_tokens_per_hour":200000} (repeatable). The `llm` grant is still required.
    #[arg(long = "llm", value_name = "MODULE=JSON")]
    pub llm: Vec<String>,
    /// Where compiled components are cached (default: $NTHLAYER_CACHE_DIR or ~/.cache/nthlayer-host).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[arg(long)]
    pub no_cache: bool,
    /// Cycles running at once across all tasks. Each may hold up to its module's
    /// `memory_bytes`, so this also bounds worst-case guest memory.
    #[arg(long, default_value_t = 8)]
    pub max_concurrent_cycles: usize,
    /// On SIGTERM/SIGINT, how long in-flight cycles may take to finish.
    #[arg(long, default_value_t = 10)]
    pub shutdown_grace_seconds: u64,
    /// How often module files are checked for changes (0 disables hot swap).
    #[arg(long, default_value_t = 500)]
    pub watch_interval_ms: u64,
    /// Roll a swapped-in version back when its first N cycles all fail.
    #[arg(long, default_value_t = 3)]
    pub rollback_after: u32,
    /// First-cycle jitter cap, milliseconds (spreads start-up load).
    #[arg(long, default_value_t = 500)]
    pub start_jitter_ms: u64,
}

/// The reference's interval flags and the task each one sets.
pub fn interval_flags(a: &ServeArgs) -> [(&'static str, Option<u64>); 10] {
    [
        ("observe.collect", a.collect_interval),
        ("observe.drift", a.drift_interval),
        ("observe.topology", a.topology_interval),
        ("correlate", a.correlate_interval),
        ("correlate.topology", a.topology_drift_interval),
        ("correlate.contract", a.contract_interval),
        ("measure", a.measure_interval),
        ("learn.outcome", a.outcome_interval),
        ("learn.retrospective", a.retrospective_interval),
        ("respond", a.respond_interval),
    ]
}

/// Configuration resolved from flags, shared by the scheduler.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub intervals: BTreeMap<String, u64>,
    pub limits: BTreeMap<String, Limits>,
    pub module_config: Value,
}

impl HostConfig {
    pub fn from_args(a: &ServeArgs) -> Result<Self> {
        let mut intervals = BTreeMap::new();
        for (task, v) in interval_flags(a) {
            if let Some(v) = v {
                intervals.insert(task.to_string(), v);
            }
        }
        for spec in &a.intervals {
            let (task, secs) =
                spec.split_once('=').with_context(|| format!("--interval {spec:?}: expected TASK=SECONDS"))?;
            let secs: u64 =
                secs.parse().with_context(|| format!("--interval {spec:?}: seconds must be a whole number"))?;
            intervals.insert(task.to_string(), secs);
        }
        if let Some((t, _)) = intervals.iter().find(|(_, s)| **s == 0) {
            bail!("interval of {t} must be at least 1 second");
        }
        let mut limits = BTreeMap::new();
        for spec in &a.limits {
            let (module, j) =
                spec.split_once('=').with_context(|| format!("--limits {spec:?}: expected MODULE=JSON"))?;
            let base: Limits = limits.get("*").cloned().unwrap_or_default();
            let mut merged = serde_json::to_value(LimitsView(&base))?;
            let patch: Value = serde_json::from_str(j).with_context(|| format!("--limits {module}: not JSON"))?;
            let Value::Object(patch) = patch else { bail!("--limits {module}: expected a JSON object") };
            for (k, v) in patch {
                merged[k] = v;
            }
            let parsed: Limits = serde_json::from_value(merged).with_context(|| format!("--limits {module}"))?;
            limits.insert(module.to_string(), parsed);
        }
        let module_config = json!({
            "instance_id": a.instance_id,
            "expiry_threshold_days": a.expiry_threshold_days,
            "min_resolution_age_hours": a.min_resolution_age_hours,
            "calibration_sample_rate": a.calibration_sample_rate,
            "calibration_sample_seed": a.calibration_sample_seed,
            "retrospective_delay_seconds": a.retrospective_delay_seconds,
            "tempo_configured": a.tempo_endpoint.is_some(),
        });
        Ok(HostConfig { intervals, limits, module_config })
    }

    pub fn interval_for(&self, task: &str, declared: u32) -> u64 {
        self.intervals.get(task).copied().unwrap_or(declared as u64)
    }

    pub fn limits_for(&self, module: &str) -> Limits {
        self.limits.get(module).or_else(|| self.limits.get("*")).cloned().unwrap_or_default()
    }
}

/// Serialises [`Limits`] (which only derives Deserialize, to keep it a plain config type).
struct LimitsView<'a>(&'a Limits);

impl serde::Serialize for LimitsView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let l = self.0;
        json!({
            "cpu_ms": l.cpu_ms, "wall_ms": l.wall_ms, "memory_bytes": l.memory_bytes,
            "table_elements": l.table_elements, "max_state_bytes": l.max_state_bytes,
            "max_result_bytes": l.max_result_bytes, "max_request_bytes": l.max_request_bytes,
            "max_response_bytes": l.max_response_bytes, "log_lines": l.log_lines,
            "stdio_bytes": l.stdio_bytes, "call_ms": l.call_ms,
        })
        .serialize(s)
    }
}

/// Expands `--modules` entries: plain paths as given, globs against the file system as it
/// is now (the watcher calls this on every poll, so files that appear later are found).
pub fn expand_modules(specs: &[String]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for spec in specs.iter().flat_map(|s| s.split_whitespace()) {
        if spec.contains(['*', '?', '[']) {
            for entry in glob::glob(spec).with_context(|| format!("--modules {spec:?}: bad glob"))? {
                files.push(entry?);
            }
        } else {
            files.push(PathBuf::from(spec));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
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
        assert_eq!(a.core_url, "http://localhost:8000");
        assert_eq!(a.instance_id, "workers-1");
        assert_eq!(c.module_config["expiry_threshold_days"], 7);
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
            r#"*={"cpu_ms":500}"#,
            "--limits",
            r#"observe={"memory_bytes":1048576}"#,
        ]);
        let c = HostConfig::from_args(&a).unwrap();
        assert_eq!(c.limits_for("observe").cpu_ms, 500);
        assert_eq!(c.limits_for("observe").memory_bytes, 1 << 20);
        assert_eq!(c.limits_for("other").cpu_ms, 500);
        let bad = parse(&["--modules", "a.wasm", "--limits", r#"observe={"cpu":1}"#]);
        assert!(HostConfig::from_args(&bad).is_err());
        let zero = parse(&["--modules", "a.wasm", "--interval", "x=0"]);
        assert!(HostConfig::from_args(&zero).is_err());
    }

    #[test]
    fn module_specs_expand_globs_and_keep_explicit_paths() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.wasm", "a.wasm", "notes.txt"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let glob = format!("{}/*.wasm", dir.path().display());
        let explicit = dir.path().join("a.wasm").display().to_string();
        let missing = "/nonexistent/x.wasm".to_string();
        let files = expand_modules(&[glob, explicit, missing.clone()]).unwrap();
        // Sorted, deduplicated; an explicit path is kept even if absent (the watcher reports it).
        assert_eq!(files, vec![PathBuf::from(&missing), dir.path().join("a.wasm"), dir.path().join("b.wasm")]);
    }
}
