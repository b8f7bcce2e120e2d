//! `nthlayer-host gate`: observe's deploy gate.
//!
//! The gate is not special-cased in the host: it is the `observe.gate` task (interval 0) of
//! the observe component, run once with the CLI's arguments. Its result carries the exit
//! code, stdout and stderr the reference's `nthlayer-workers gate` would produce.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::run::run_task;
use crate::command::args::ServeArgs;

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
