//! `nthlayer-host outbox list|show|requeue|drop`: the operator's hands on the entries the
//! sender set aside (core refused them, their retry window ran out, or their body is
//! corrupt).
//!
//! The commands work while `serve` runs on the same state directory: they open the spool
//! without the host's lock file and rely on SQLite's locking for their short transactions;
//! the running sender picks a requeued entry up at its next pass. A requeued entry goes to
//! the **end** of its lane: the lane went on past it when it was set aside, so the entries
//! that followed it are in core already and its old place no longer exists.

use std::path::PathBuf;

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
    let mut spool = Spool::open_shared(&dir)?;
    let ctx = |what: &str| format!("cannot {what} in the spool of state directory {}", dir.display());
    let missing =
        |id: i64| anyhow::anyhow!("no set-aside entry {id} in the spool of state directory {}", dir.display());
    match args.command {
        OutboxCommand::List { json } => {
            let all = spool.aside().with_context(|| ctx("list set-aside entries"))?;
            if json {
                let rows: Vec<Value> = all.iter().map(summary).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", table(&all));
            }
        }
        OutboxCommand::Show { id } => {
            let a =
                spool.aside_one(id).with_context(|| ctx(&format!("read entry {id}")))?.ok_or_else(|| missing(id))?;
            println!("{}", serde_json::to_string_pretty(&full(&a))?);
        }
        OutboxCommand::Requeue { id, body } => {
            let a =
                spool.aside_one(id).with_context(|| ctx(&format!("read entry {id}")))?.ok_or_else(|| missing(id))?;
            let (body, record_id) = match body {
                Some(file) => corrected(&a, &file)?,
                None => (None, None),
            };
            let seq = spool
                .requeue(id, body.as_deref(), record_id.as_deref())
                .with_context(|| ctx(&format!("requeue entry {id}")))?
                .ok_or_else(|| missing(id))?;
            tracing::warn!(id, new_seq = seq, task = %a.task, record_id = %a.record_id, state_dir = %dir.display(),
                "set-aside entry requeued by the operator");
            println!("requeued entry {id} as {seq} at the end of task {:?}'s lane", a.task);
        }
        OutboxCommand::Drop { id } => {
            let a =
                spool.aside_one(id).with_context(|| ctx(&format!("read entry {id}")))?.ok_or_else(|| missing(id))?;
            if !spool.drop_aside(id).with_context(|| ctx(&format!("drop entry {id}")))? {
                return Err(missing(id));
            }
            tracing::warn!(id, task = %a.task, what = %a.what, record_id = %a.record_id, state_dir = %dir.display(),
                body = %a.body, "set-aside entry dropped by the operator; it will never be delivered");
            println!("dropped entry {id} ({} {:?} of task {:?})", a.what, a.record_id, a.task);
        }
    }
    Ok(())
}

/// Reads a corrected body: JSON, and for a record an object whose `id` (if any) becomes
/// the entry's record id (core dedups on it).
fn corrected(a: &Aside, file: &std::path::Path) -> Result<(Option<String>, Option<String>)> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not JSON; entry {} left as it was", file.display(), a.id))?;
    let record = matches!(a.what.as_str(), "assessment" | "verdict");
    if record && !v.is_object() {
        bail!("{} must hold a JSON object (a {}), entry {} left as it was", file.display(), a.what, a.id);
    }
    let id = v.get("id").and_then(Value::as_str).filter(|_| record).map(str::to_string);
    Ok((Some(v.to_string()), id))
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
