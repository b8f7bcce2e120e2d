//! `nthlayer-host run-once <file.wasm> --task T --fixtures DIR`: a module author's test
//! harness. One cycle whose imports are answered from fixture files (tape/), printing what
//! the cycle would have submitted and its new state, so any language's test runner can
//! assert on a module without a stack.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::bindings::CycleInput;
use crate::capability::Services;
use crate::command::args::ServeArgs;
use crate::lifecycle::config::HostConfig;
use crate::policy::grants::{GrantPolicy, Trust};
use crate::store::{CycleCtx, StoreData};
use crate::tape::{Replay, Tape};

#[derive(Debug, Clone, clap::Args)]
pub struct RunOnceArgs {
    /// The component to run (a .wasm file).
    pub file: PathBuf,
    /// Task to run, e.g. burn-rate.
    #[arg(long)]
    pub task: String,
    /// Fixture directory: cycle.json and one file per interface (docs/modules.md).
    #[arg(long, value_name = "DIR")]
    pub fixtures: PathBuf,
    /// State to start from as JSON (default: cycle.json's "state").
    #[arg(long)]
    pub state: Option<String>,
    /// Arguments for the task as JSON (default: cycle.json's "args").
    #[arg(long)]
    pub args: Option<String>,
    /// Module configuration, limits and `--grant`s as for serve (its URLs are never used:
    /// the fixtures are the only backends).
    #[command(flatten, next_help_heading = "Host options (as for serve)")]
    pub host: ServeArgs,
}

fn parse(what: &str, s: &Option<String>) -> Result<Option<Value>> {
    s.as_deref().map(|t| serde_json::from_str(t).with_context(|| format!("--{what} is not JSON"))).transpose()
}

/// Runs the cycle and prints the report; `Ok(false)` is a failed cycle or an unmatched call.
pub async fn run_once(a: RunOnceArgs) -> Result<bool> {
    let replay = Arc::new(Replay::load(&a.fixtures)?);
    let state = parse("state", &a.state)?.or_else(|| replay.cycle.state.clone());
    let args = parse("args", &a.args)?.or_else(|| replay.cycle.args.clone());
    let config = HostConfig::from_args(&a.host)?;
    let policy = GrantPolicy::parse(&a.host.policy.grants)?;
    // Nothing is reachable but the fixtures, so the module gets what it asks for unless a
    // `--grant` for it says otherwise (to exercise its `denied` paths).
    let services = Arc::new(Services::build(&a.host.caps.offline())?);
    let runtime = crate::store::runtime(a.host.cache.dir())?;
    let module = runtime.load(&a.file, services.clone()).await?;
    let meta = &module.meta;
    if !meta.tasks.iter().any(|t| t.name == a.task) {
        let tasks: Vec<&str> = meta.tasks.iter().map(|t| t.name.as_str()).collect();
        anyhow::bail!(
            "{}: module {} has no task {:?} (it has: {})",
            a.file.display(),
            meta.name,
            a.task,
            tasks.join(", ")
        );
    }
    let grants = policy.resolve(&meta.name, &meta.needs, meta.emits.as_ref(), &Trust::TrustedDir(a.fixtures.clone()));
    let mut cx = CycleCtx::new(&meta.name, &meta.version, &a.task, services, grants, config.limits_for(&meta.name));
    cx.cx.tape = Some(Tape::Replay(replay.clone()));
    let input = CycleInput {
        task: a.task.clone(),
        state: state.as_ref().map(Value::to_string),
        config: config.module_config.to_string(),
        args: args.as_ref().map(Value::to_string),
    };
    let started = std::time::Instant::now();
    let outcome = runtime.run_cycle(&module, input, StoreData::new(cx)).await;
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let unmatched = replay.unmatched();
    let ok = outcome.is_ok() && unmatched.is_empty();
    let (new_state, result, emitted, cpu_ms, error) = match outcome {
        Ok(o) => (o.state, o.result, o.emitted, Some(o.cpu_ms), None),
        Err(e) => (None, None, 0, None, Some(e.to_string())),
    };
    let report = json!({
        "task": a.task,
        "module": {"name": meta.name, "version": meta.version, "contract": module.contract().version()},
        "ok": ok,
        "error": error,
        "state": new_state,
        "result": result,
        "emitted": emitted,
        // The cycle alone (instantiate + run-cycle), not loading: what a cycle costs.
        "wall_ms": wall_ms,
        "cpu_ms": cpu_ms,
        "submitted": replay.submitted(),
        "unmatched": unmatched,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    for u in replay.unmatched() {
        eprintln!(
            "unmatched: {}.{} {} (looked in {})",
            u["interface"].as_str().unwrap_or(""),
            u["call"].as_str().unwrap_or(""),
            u["args"],
            u["file"].as_str().unwrap_or("")
        );
    }
    if let Some(e) = report["error"].as_str() {
        eprintln!("cycle failed: {e}");
    }
    Ok(ok)
}
