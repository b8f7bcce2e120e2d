//! `nthlayer-host outbox list|show|requeue|drop`: the operator's hands on the entries the
//! sender set aside (core refused them, their retry window ran out, or their body is
//! corrupt).
//!
//! The commands work while `serve` runs on the same state directory: they open the spool
//! without the host's lock file and rely on SQLite's locking for their short transactions;
//! the running sender picks a requeued entry up at its next pass. A requeued entry goes to
//! the **end** of its lane: the lane went on past it when it was set aside, so the entries
//! that followed it are in core already and its old place no longer exists.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::aside::Aside;
use super::spool::Spool;

#[derive(Args, Debug)]
pub struct OutboxArgs {
    /// The host's state directory (as `serve --state-dir`; also NTHLAYER_STATE_DIR).
    #[arg(long, env = "NTHLAYER_STATE_DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    /// As `serve --instance-id`: names the default state directory.
    #[arg(long, default_value = "workers-1", global = true)]
    pub instance_id: String,
    #[command(subcommand)]
    pub command: OutboxCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum OutboxCommand {
    /// The set-aside entries: id, task, kind, record id, status, when, first line of the reason.
    List {
        /// One JSON array (without bodies; `show` has them).
        #[arg(long)]
        json: bool,
    },
    /// One set-aside entry in full (JSON): its body and core's answer.
    Show { id: i64 },
    /// Put a set-aside entry back at the end of its task's lane, to be delivered again.
    Requeue {
        id: i64,
        /// Send this (corrected) JSON instead of the refused body.
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
    },
    /// Remove a set-aside entry for good: it is never delivered.
    Drop { id: i64 },
}

pub fn outbox(args: OutboxArgs) -> Result<()> {
    let dir = super::config::state_dir(args.state_dir.as_deref(), &args.instance_id)?;
    match args.command {
        OutboxCommand::List { json } => {
            let all = list(&dir)?;
            if json {
                let rows: Vec<Value> = all.iter().map(summary).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", table(&all));
            }
        }
        OutboxCommand::Show { id } => println!("{}", serde_json::to_string_pretty(&show(&dir, id)?)?),
        OutboxCommand::Requeue { id, body } => {
            let text = match &body {
                Some(file) => {
                    Some(std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?)
                }
                None => None,
            };
            let label = || body.as_ref().map(|f| f.display().to_string()).unwrap_or_default();
            println!("{}", requeue(&dir, id, text.as_deref(), &label)?);
        }
        OutboxCommand::Drop { id } => println!("{}", drop_entry(&dir, id)?),
    }
    Ok(())
}

/// No set-aside entry with this id: the admin API answers 404 for it.
#[derive(Debug, thiserror::Error)]
#[error("no set-aside entry {id} in the spool of state directory {dir}")]
pub struct Missing {
    pub id: i64,
    pub dir: String,
}

fn ctx(dir: &Path, what: &str) -> String {
    format!("cannot {what} in the spool of state directory {}", dir.display())
}

fn missing(dir: &Path, id: i64) -> anyhow::Error {
    Missing { id, dir: dir.display().to_string() }.into()
}

/// Every set-aside entry (the CLI's `list` and the admin API's).
pub fn list(dir: &Path) -> Result<Vec<Aside>> {
    Spool::open_shared(dir)?.aside().with_context(|| ctx(dir, "list set-aside entries"))
}

/// The one-line JSON summaries `list --json` prints.
pub fn list_json(dir: &Path) -> Result<Vec<Value>> {
    Ok(list(dir)?.iter().map(summary).collect())
}

/// One entry in full (`show`).
pub fn show(dir: &Path, id: i64) -> Result<Value> {
    let spool = Spool::open_shared(dir)?;
    let a =
        spool.aside_one(id).with_context(|| ctx(dir, &format!("read entry {id}")))?.ok_or_else(|| missing(dir, id))?;
    Ok(full(&a))
}

/// Puts entry `id` back at the end of its lane, with `body` (JSON text, named by `label` in
/// errors) instead of the refused one if given. Returns what was done, for the operator.
pub fn requeue(dir: &Path, id: i64, body: Option<&str>, label: &dyn Fn() -> String) -> Result<String> {
    let mut spool = Spool::open_shared(dir)?;
    let a =
        spool.aside_one(id).with_context(|| ctx(dir, &format!("read entry {id}")))?.ok_or_else(|| missing(dir, id))?;
    let (body, record_id) = match body {
        Some(text) => corrected(&a, text, &label())?,
        None => (None, None),
    };
    if a.what == "state" {
        let local = spool.local_state(&a.task).with_context(|| ctx(dir, &format!("read task {:?}'s state", a.task)))?;
        stale_state(&a, body.as_deref().unwrap_or(&a.body), local.and_then(|l| l.saved_at).as_deref())?;
    }
    let seq = spool
        .requeue(id, body.as_deref(), record_id.as_deref())
        .with_context(|| ctx(dir, &format!("requeue entry {id}")))?
        .ok_or_else(|| missing(dir, id))?;
    tracing::warn!(id, new_seq = seq, task = %a.task, record_id = %a.record_id, state_dir = %dir.display(),
        "set-aside entry requeued by the operator");
    Ok(format!("requeued entry {id} as {seq} at the end of task {:?}'s lane", a.task))
}

/// Removes entry `id` for good. Returns what was done, for the operator.
pub fn drop_entry(dir: &Path, id: i64) -> Result<String> {
    let mut spool = Spool::open_shared(dir)?;
    let a =
        spool.aside_one(id).with_context(|| ctx(dir, &format!("read entry {id}")))?.ok_or_else(|| missing(dir, id))?;
    if !spool.drop_aside(id).with_context(|| ctx(dir, &format!("drop entry {id}")))? {
        return Err(missing(dir, id));
    }
    tracing::warn!(id, task = %a.task, what = %a.what, record_id = %a.record_id, state_dir = %dir.display(),
        body = %a.body, "set-aside entry dropped by the operator; it will never be delivered");
    Ok(format!("dropped entry {id} ({} {:?} of task {:?})", a.what, a.record_id, a.task))
}

/// Reads a corrected body: JSON, and for a record an object whose `id` (if any) becomes
/// the entry's record id (core dedups on it).
fn corrected(a: &Aside, text: &str, label: &str) -> Result<(Option<String>, Option<String>)> {
    let v: Value =
        serde_json::from_str(text).with_context(|| format!("{label} is not JSON; entry {} left as it was", a.id))?;
    let record = matches!(a.what.as_str(), "assessment" | "verdict");
    if record && !v.is_object() {
        bail!("{label} must hold a JSON object (a {}), entry {} left as it was", a.what, a.id);
    }
    let id = v.get("id").and_then(Value::as_str).filter(|_| record).map(str::to_string);
    Ok((Some(v.to_string()), id))
}

/// A state PUT replaces the task's whole row in core, so only the task's newest committed
/// state may go back in the lane: an older one would overwrite what core should hold.
fn stale_state(a: &Aside, body: &str, newest: Option<&str>) -> Result<()> {
    let saved_at = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.pointer("/hysteresis_state/saved_at").and_then(Value::as_str).map(str::to_string));
    match (saved_at.as_deref(), newest) {
        (Some(this), Some(newest)) if this != newest => bail!(
            "entry {} is task {:?}'s state saved at {this}, but the task has committed a newer one (saved at \
             {newest}), which is delivered on its own; requeueing this one would overwrite it in core. Drop it: \
             nthlayer-host outbox drop {}",
            a.id,
            a.task,
            a.id
        ),
        _ => Ok(()),
    }
}

fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn summary(a: &Aside) -> Value {
    serde_json::json!({
        "id": a.id, "task": a.task, "what": a.what, "record_id": a.record_id, "status": a.status,
        "set_aside_at": when(a.set_aside_at_ms), "attempts": a.attempts, "error": first_line(&a.error),
    })
}

fn full(a: &Aside) -> Value {
    let mut v = serde_json::to_value(a).expect("an entry serialises");
    v["set_aside_at"] = when(a.set_aside_at_ms).into();
    v["spooled_at"] = a.spooled_at_ms.map(when).into();
    // The body and core's answer as JSON when they are, so they read as such.
    for key in ["body", "error"] {
        if let Some(j) = v[key].as_str().and_then(|s| serde_json::from_str::<Value>(s).ok()) {
            v[key] = j;
        }
    }
    v
}

fn table(all: &[Aside]) -> String {
    if all.is_empty() {
        return "no set-aside entries\n".into();
    }
    let mut out = String::from("ID\tTASK\tWHAT\tRECORD ID\tSTATUS\tSET ASIDE AT\tREASON\n");
    for a in all {
        let reason: String = first_line(&a.error).chars().take(160).collect();
        out += &format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            a.id,
            a.task,
            a.what,
            a.record_id,
            a.status,
            when(a.set_aside_at_ms),
            reason
        );
    }
    out
}

#[cfg(test)]
#[path = "admin_tests.rs"]
mod tests;
