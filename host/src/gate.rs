//! On-demand tasks from the CLI: `gate` (observe's deploy gate) and `run` (any task once).
//!
//! The gate is not special-cased in the host: it is the `observe.gate` task (interval 0) of
//! the observe component, run once with the CLI's arguments. Its result carries the exit
//! code, stdout and stderr the reference's `nthlayer-workers gate` would produce.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::capabilities::GrantPolicy;
use crate::config::HostConfig;
use crate::registry::Registry;
use crate::runtime::{cache, Runtime};
use crate::scheduler::{run_once, RunEnv};
use crate::serve::build_services;
use crate::swap::Watcher;

#[derive(Debug, Clone, clap::Args)]
pub struct GateArgs {
    #[arg(long)]
    pub service: String,
    #[arg(long)]
    pub tier: Option<String>,
    #[arg(long)]
    pub commit_sha: Option<String>,
    #[arg(long, default_value = "http://localhost:8000", env = "NTHLAYER_CORE_URL")]
    pub core_url: String,
    /// Module components (the one providing `observe.gate` is used).
    #[arg(long, num_args = 1.., required = true, env = "NTHLAYER_MODULES", value_delimiter = ' ')]
    pub modules: Vec<String>,
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
    #[arg(long, default_value = "http://localhost:8000", env = "NTHLAYER_CORE_URL")]
    pub core_url: String,
    #[arg(long, default_value = "http://localhost:9090")]
    pub prometheus_url: String,
    #[arg(long = "grant", value_name = "MODULE=CAPS")]
    pub grants: Vec<String>,
    #[arg(long, num_args = 1.., required = true, env = "NTHLAYER_MODULES", value_delimiter = ' ')]
    pub modules: Vec<String>,
}

/// Loads the modules and runs `task` once; returns the cycle's result JSON.
async fn run_task(
    modules: &[String],
    core_url: &str,
    prometheus_url: &str,
    grants: &[String],
    task: &str,
    state: Option<Value>,
    args: Option<Value>,
) -> Result<(Option<Value>, Option<Value>)> {
    let services = Arc::new(build_services(core_url, prometheus_url, None, crate::llm::LlmService::from_env(&[])?)?);
    let runtime = Runtime::new(cache::default_dir())?;
    let registry = Arc::new(Registry::default());
    let grants = GrantPolicy::parse(grants)?;
    let config =
        Arc::new(HostConfig { intervals: Default::default(), limits: Default::default(), module_config: json!({}) });
    let env = RunEnv { runtime, services, config };
    Watcher::new(modules.to_vec(), env.clone(), registry.clone(), grants, 1).initial_load(None).await;
    let (slot, module) = registry
        .all()
        .into_iter()
        .map(|(_, s)| (s.clone(), s.current()))
        .find(|(_, m)| m.meta.tasks.iter().any(|t| t.name == task))
        .with_context(|| format!("no loaded module provides task {task:?}"))?;
    let out = run_once(&env, &slot, &module, task, state.as_ref(), args.as_ref())
        .await
        .with_context(|| format!("{task} on {}", module.label()))?;
    Ok((out.state, out.result))
}

/// `nthlayer-host gate`: prints what the gate printed and returns its exit code
/// (0 approved/warning, 2 blocked, 1 error).
pub async fn gate(a: GateArgs) -> Result<i32> {
    let args = json!({"service": a.service, "tier": a.tier, "commit_sha": a.commit_sha});
    let (_, result) = run_task(&a.modules, &a.core_url, "", &[], "observe.gate", None, Some(args)).await?;
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
    let (state, result) = run_task(
        &a.modules,
        &a.core_url,
        &a.prometheus_url,
        &a.grants,
        &a.task,
        parse("state", &a.state)?,
        parse("args", &a.args)?,
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&json!({"state": state, "result": result}))?);
    Ok(())
}
