//! On-demand tasks from the CLI: `gate` (observe's deploy gate) and `run` (any task once).
//!
//! The gate is not special-cased in the host: it is the `observe.gate` task (interval 0) of
//! the observe component, run once with the CLI's arguments. Its result carries the exit
//! code, stdout and stderr the reference's `nthlayer-workers gate` would produce.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::config::ServeArgs;
use crate::scheduler::run_once;
use crate::serve::{load, Loaded};

#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub tier: Option<String>,
    #[arg(long)]
    pub commit_sha: Option<String>,
    /// The host's flags, as for `serve` (the module providing `observe.gate` is used: the
    /// embedded observe unless `--modules` replaces it).
    #[command(flatten, next_help_heading = "Host options (as for serve)")]
    pub host: ServeArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Task to run once, e.g. observe.collect.
    #[arg(long)]
    pub task: String,
    /// Arguments for the task as JSON.
    #[arg(long)]
    pub args: Option<String>,
    /// State to start from as JSON (default: none).
    #[arg(long)]
    pub state: Option<String>,
    #[command(flatten, next_help_heading = "Host options (as for serve)")]
    pub host: ServeArgs,
}

/// Loads the modules as `serve` does (same flags, same configuration, same grants) and runs
/// `task` once; returns the cycle's state and result. Of the built-ins, only the one the
/// task belongs to (tasks are named `<module>[.<task>]`) is compiled.
async fn run_task(
    host: &ServeArgs,
    task: &str,
    state: Option<Value>,
    args: Option<Value>,
) -> Result<(Option<Value>, Option<Value>)> {
    let module_name = task.split('.').next().unwrap_or(task);
    let Loaded { env, registry, .. } = load(host, Some(module_name), false).await?;
    let serving = registry
        .all()
        .into_iter()
        .map(|(_, s)| s.serving())
        .find(|s| s.module.meta.tasks.iter().any(|t| t.name == task))
        .with_context(|| format!("no loaded module provides task {task:?}"))?;
    let out = run_once(&env, &serving, task, state.as_ref(), args.as_ref())
        .await
        .with_context(|| format!("{task} on {}", serving.module.label()))?;
    Ok((out.state, out.result))
}

/// `nthlayer-host gate`: prints what the gate printed and returns its exit code
/// (0 approved/warning, 2 blocked, 1 error).
pub async fn gate(a: GateArgs) -> Result<i32> {
    let args = json!({"service": a.service, "tier": a.tier, "commit_sha": a.commit_sha});
    let (_, result) = run_task(&a.host, "observe.gate", None, Some(args)).await?;
    let Some(result) = result else { bail!("observe.gate returned no result") };
    let text = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (stdout, stderr) = (text("stdout"), text("stderr"));
    print!("{stdout}");
    if !stdout.is_empty() && !stdout.ends_with('\n') {
        println!();
    }
    eprint!("{stderr}");
    if !stderr.is_empty() && !stderr.ends_with('\n') {
        eprintln!();
    }
    let code = result.get("exit_code").and_then(Value::as_i64).context("observe.gate result has no exit_code")?;
    Ok(code as i32)
}

/// `nthlayer-host run`: one cycle of any task; prints `{"state","result"}`.
pub async fn run(a: RunArgs) -> Result<()> {
    let parse = |what: &str, s: &Option<String>| -> Result<Option<Value>> {
        s.as_deref().map(|t| serde_json::from_str(t).with_context(|| format!("--{what} is not JSON"))).transpose()
    };
    let (state, result) = run_task(&a.host, &a.task, parse("state", &a.state)?, parse("args", &a.args)?).await?;
    println!("{}", serde_json::to_string_pretty(&json!({"state": state, "result": result}))?);
    Ok(())
}
