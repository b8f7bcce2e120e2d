//! `nthlayer-host run`: any task once from the command line, loaded as `serve` would load
//! it; `gate` is this with observe's gate task and its own output.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::load::{load, Loaded};
use crate::command::args::ServeArgs;
use crate::lifecycle::scheduler::run_once;
use crate::runtime::task_state::TaskState;

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
pub(super) async fn run_task(
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
    let state = state.as_ref().map(TaskState::from_value);
    let out = run_once(&env, &serving, task, state.as_ref(), args.as_ref())
        .await
        .with_context(|| format!("{task} on {}", serving.module.label()))?;
    Ok((out.state.as_ref().map(TaskState::to_value), out.result))
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
