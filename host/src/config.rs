//! `serve` configuration: exactly the flags of `nthlayer-workers serve` (same names, same
//! defaults), plus what a host of sandboxed modules needs on top (module paths, grants,
//! limits, cache, concurrency). Each capability's own flags and environment live in its
//! room (capability/<name>/config.rs) and are flattened in here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::runtime::limits::Limits;

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Every capability's flags (`--core-url`, `--prometheus-url`, `--tempo-endpoint`,
    /// `--arbiter-url`, `--llm`): capability/<name>/config.rs.
    #[command(flatten)]
    pub caps: crate::capability::CapabilityArgs,
    /// Heartbeat instance id.
    #[arg(long, default_value = "workers-1")]
    pub instance_id: String,
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
    /// respond's `workers.respond.*` settings as a JSON object, e.g.
    /// {"fallback_threshold_seconds":60,"step_timeout_seconds":90,"arbiter_enabled":false}.
    /// The reference's worker mode has no way to set them (defaults only); see docs/PARITY.md.
    #[arg(long, env = "NTHLAYER_RESPOND_CONFIG")]
    pub respond_config: Option<String>,

    /// Module components in addition to the built-in ones: files and globs (quoted globs
    /// are expanded by the host and watched for new files). A file providing a built-in's
    /// name replaces it. Also NTHLAYER_MODULES, space-separated.
    #[arg(long, num_args = 1.., env = "NTHLAYER_MODULES", value_delimiter = ' ')]
    pub modules: Vec<String>,
    /// Serve only `--modules`, not the built-in modules embedded in the binary.
    #[arg(long)]
    pub no_builtin: bool,
    /// Trust module files under this directory as built-in code: they get what they declare
    /// without `--grant` (repeatable; see docs/SANDBOX.md).
    #[arg(long = "trusted-dir", value_name = "DIR")]
    pub trusted_dirs: Vec<PathBuf>,
    /// Override any task's interval: TASK=SECONDS (repeatable).
    #[arg(long = "interval", value_name = "TASK=SECONDS")]
    pub intervals: Vec<String>,
    // The help lists every capability of the table (capability/mod.rs).
    #[arg(long = "grant", value_name = "MODULE=CAPS", help = crate::capability::GRANT_HELP)]
    pub grants: Vec<String>,
    /// Limits for a module as JSON: MODULE={"cpu_ms":5000,"memory_bytes":67108864} (repeatable;
    /// also max_concurrent, max_tasks, min_interval_seconds: docs/SANDBOX.md). Use `*` as
    /// MODULE for every module.
    #[arg(long = "limits", value_name = "MODULE=JSON")]
    pub limits: Vec<String>,
    /// Where compiled components are cached (default: $NTHLAYER_CACHE_DIR or ~/.cache/nthlayer-host).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    #[arg(long)]
    pub no_cache: bool,
    /// Guests executing at once across all modules. A slot is held only while guest code
    /// runs (not while it waits in a host call or a WASI sleep) and is shared first-come
    /// first-served; a module's cycles in flight are capped by its `max_concurrent` limit.
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
    /// Record every cycle's import calls, clock and randomness as run-once fixtures in
    /// DIR/<task>/<n>/ (docs/modules.md). Recordings hold what the backends answered.
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// A cycle that failed (or was refused) runs again after this many seconds, doubling
    /// up to the task's interval, instead of waiting a whole interval.
    #[arg(long, default_value_t = FAILED_CYCLE_RETRY_SECONDS)]
    pub failed_cycle_retry_seconds: u64,
    /// Where the host keeps its durable outbox (spool.db: undelivered records, task state,
    /// last good manifests). Default: $XDG_STATE_HOME/nthlayer-host/<instance-id>, else
    /// ~/.local/state/nthlayer-host/<instance-id>. Give each host its own.
    #[arg(long, env = "NTHLAYER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Undelivered bytes the spool may hold before it counts as full (then heartbeats are
    /// dropped and new cycles of tasks with undelivered records are refused; no record is).
    #[arg(long, default_value_t = 536_870_912)]
    pub spool_max_bytes: u64,
    /// Age of the oldest undelivered entry beyond which the spool counts as full.
    #[arg(long, default_value_t = 86_400)]
    pub spool_max_age_seconds: u64,
    /// Seconds an entry core cannot take now (no answer, 5xx, 429) is retried, from its first
    /// failure (kept across restarts), before it is set aside (`outbox list`; docs/OUTBOX.md).
    #[arg(long, default_value_t = 86_400)]
    pub delivery_retry_seconds: u64,
}

impl ServeArgs {
    pub fn state_dir(&self) -> Result<PathBuf> {
        state_dir(self.state_dir.as_deref(), &self.instance_id)
    }
}

/// `dir`, else the XDG default for `instance_id`: `serve` and `outbox` find the same spool.
pub fn state_dir(dir: Option<&std::path::Path>, instance_id: &str) -> Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let base = match std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".local/state"),
            None => bail!("no --state-dir given and neither XDG_STATE_HOME nor HOME is set"),
        },
    };
    // The instance id names a directory: nothing in it may climb out.
    let name: String =
        instance_id.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    let name = if name.chars().all(|c| c == '.') { format!("_{name}") } else { name };
    Ok(base.join("nthlayer-host").join(name))
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

/// `--failed-cycle-retry-seconds`' default, also [`HostConfig::default`]'s.
pub const FAILED_CYCLE_RETRY_SECONDS: u64 = 30;

/// Configuration resolved from flags, shared by the scheduler.
#[derive(Debug, Clone)]
pub struct HostConfig {
    pub intervals: BTreeMap<String, u64>,
    pub limits: BTreeMap<String, Limits>,
    pub module_config: Value,
    /// First retry delay after a cycle that did not commit.
    pub retry_first: std::time::Duration,
}

/// What `serve` runs with when no flag says otherwise and no module is configured: for
/// in-process runs (tests, the bench) that have no command line.
impl Default for HostConfig {
    fn default() -> Self {
        HostConfig {
            intervals: BTreeMap::new(),
            limits: BTreeMap::new(),
            module_config: serde_json::json!({}),
            retry_first: std::time::Duration::from_secs(FAILED_CYCLE_RETRY_SECONDS),
        }
    }
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
        let respond = match &a.respond_config {
            None => json!({}),
            Some(j) => match serde_json::from_str(j).context("--respond-config: not JSON")? {
                Value::Object(o) => Value::Object(o),
                _ => bail!("--respond-config: expected a JSON object"),
            },
        };
        let module_config = json!({
            "instance_id": a.instance_id,
            "expiry_threshold_days": a.expiry_threshold_days,
            "min_resolution_age_hours": a.min_resolution_age_hours,
            "calibration_sample_rate": a.calibration_sample_rate,
            "calibration_sample_seed": a.calibration_sample_seed,
            "retrospective_delay_seconds": a.retrospective_delay_seconds,
            "tempo_configured": a.caps.tempo.tempo_endpoint.is_some(),
            "measure": measure_knobs(|k| std::env::var(k).ok()),
            "respond": respond,
        });
        let retry_first = std::time::Duration::from_secs(a.failed_cycle_retry_seconds.max(1));
        Ok(HostConfig { intervals, limits, module_config, retry_first })
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
            "stdio_bytes": l.stdio_bytes, "call_ms": l.call_ms, "max_concurrent": l.max_concurrent,
            "max_tasks": l.max_tasks, "min_interval_seconds": l.min_interval_seconds,
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
