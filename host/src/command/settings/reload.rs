//! SIGHUP and `POST /-/reload`: re-read the config file the host started with and apply
//! what can apply while the host runs.
//!
//! The file is read and checked exactly as at start-up (every key known, every value through
//! its flag's parser, the resulting configuration consistent). An invalid file changes
//! nothing: the error names the key. A valid one is applied whole, in one step
//! ([`super::apply`]): the values a cycle reads at its start (grants, limits, intervals, the
//! modules' own config, the `--llm` policies) take effect from each task's next cycle; a
//! cycle running keeps what it started with. The keys a room only reads at start-up
//! (listeners, backends, the state and cache directories, HA, the module files) are
//! reported as `restart_required` with the reason, and keep their running value.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use clap::{Args, Command, FromArgMatches};
use serde_json::{json, Value};

use super::apply::Live;
use super::layer::{deepest, layer, started_with, Layered};
use super::print::effective;
use crate::command::args::ServeArgs;
use crate::lifecycle::config::HostConfig;
use crate::policy::grants::GrantPolicy;

type Values = BTreeMap<String, Vec<String>>;

/// Flags (long names) whose new value a reload applies: the modules' own knobs (which
/// include their intervals) and these.
const LIVE: [&str; 6] = ["interval", "limits", "grant", "llm", "failed-cycle-retry-seconds", "log-level"];

/// Why a key needs a restart, by the first matching prefix of its long name.
const RESTART: [(&str, &str); 14] = [
    ("listen", "the HTTP listener is bound at start-up"),
    ("admin-listen", "the admin listener is bound at start-up"),
    ("admin-token-file", "the token file's path is fixed at start-up (its content is re-read on every reload)"),
    ("no-metrics", "metrics recording is switched at start-up"),
    ("instance-id", "the instance id names the spool, the heartbeat and the HA member"),
    ("state-dir", "the spool is opened at start-up"),
    ("outbox", "the spool is opened at start-up"),
    ("cache", "the compiled-artifact cache is opened at start-up"),
    ("ha", "HA membership is joined at start-up"),
    ("modules", "module files are resolved at start-up (drop files into a watched directory instead)"),
    ("trusted-dir", "trust is decided when a file loads"),
    ("core-url", "the core client is built at start-up"),
    ("max-concurrent-cycles", "the execution slots are sized at start-up"),
    ("cycle-memory-budget-mib", "the memory budget is sized at start-up"),
];

fn restart_reason(key: &str) -> &'static str {
    RESTART
        .iter()
        .find(|(prefix, _)| key.starts_with(prefix))
        .map_or("read once at start-up by the room that owns it", |(_, why)| why)
}

/// The flags a reload applies: [`LIVE`] plus every built-in module's knob.
fn live_keys() -> Vec<String> {
    let knobs = crate::command::module_flags::ModuleArgs::augment_args(Command::new("x"));
    let mut keys: Vec<String> = knobs.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect();
    keys.extend(LIVE.iter().map(|k| k.to_string()));
    keys
}

fn values(cmd: &Command, argv: &[String]) -> Result<Values> {
    Ok(effective(cmd, argv.to_vec())?.into_iter().map(|e| (e.key, e.value)).collect())
}

/// What a valid file would run with.
pub struct Candidate {
    pub config: HostConfig,
    pub grants: GrantPolicy,
    pub llm: crate::backend::llm::Policies,
    pub values: Values,
}

/// Reads and checks the file as at start-up; an error names the file's key.
pub fn read(cmd: &Command, argv: &[String]) -> Result<Candidate> {
    let Layered { argv: full, file, from_file } = layer(cmd, argv.to_vec())?;
    let file = file.map(|f| f.display().to_string()).unwrap_or_default();
    let m = cmd.clone().try_get_matches_from(&full).with_context(|| format!("config file {file}"))?;
    let (sub, sm) = deepest(cmd, &m);
    let args = ServeArgs::from_arg_matches(sm).with_context(|| format!("config file {file}"))?;
    // A flag-level error names the flag; say which key of the file set it.
    let by_key = |e: anyhow::Error| {
        let text = format!("{e:#}");
        let key = sub.get_arguments().find_map(|a| {
            let long = a.get_long()?;
            let path = from_file.get(a.get_id().as_str())?;
            text.contains(&format!("--{long}")).then(|| path.clone())
        });
        match key {
            Some(k) => anyhow::anyhow!("config file {file}: {k}: {text}"),
            None => anyhow::anyhow!("config file {file}: {text}"),
        }
    };
    let config = HostConfig::from_args(&args).map_err(by_key)?;
    let grants = GrantPolicy::parse(&args.policy.grants).map_err(by_key)?;
    let llm = crate::backend::llm::Policies::parse(&args.caps.llm.llm).map_err(by_key)?;
    Ok(Candidate { config, grants, llm, values: values(cmd, argv)? })
}

/// One reload's report: the keys applied (old -> new) and the keys that wait for a restart.
fn diff(running: &Values, now: &Values) -> (Vec<Value>, Vec<Value>) {
    let live = live_keys();
    let (mut applied, mut restart) = (Vec::new(), Vec::new());
    for (k, v) in now.iter().filter(|(k, v)| running.get(*k) != Some(v)) {
        let entry = json!({"key": k, "old": running.get(k), "new": v});
        if live.contains(k) {
            applied.push(entry);
        } else {
            let mut e = entry;
            e["reason"] = json!(restart_reason(k));
            restart.push(e);
        }
    }
    (applied, restart)
}

/// A reload for this process (if it was started through
/// [`super::layer::layer_process`]), applying into `live`. Called with who asked.
pub fn reloader(live: Live) -> Option<crate::ops::admin::Reload> {
    let (cmd, argv) = started_with()?;
    let running = Mutex::new(values(cmd, argv).ok()?);
    Some(Arc::new(move |caller: &str| {
        let next = read(cmd, argv)?;
        let mut running = running.lock().expect("reload lock");
        let (applied, restart) = diff(&running, &next.values);
        // Checked before anything applies: a bad level must leave the rest unchanged too.
        let level = next.values.get("log-level").and_then(|v| v.last()).cloned();
        if let Some(l) = &level {
            crate::ops::logging::parse_level(l).map_err(|e| anyhow::anyhow!("host.log-level: {e}"))?;
        }
        let rights = live.apply(next.config, &next.grants, next.llm)?;
        // Also when the key left the file: back to the level the process started with.
        if running.get("log-level") != next.values.get("log-level") {
            crate::ops::logging::set_level(level.as_deref()).map_err(anyhow::Error::msg)?;
            tracing::info!(%caller, level = level.as_deref().unwrap_or("(as at start)"), "reload: log level applied");
            if level.is_none() {
                running.remove("log-level");
            }
        }
        for e in &applied {
            tracing::info!(%caller, key = %e["key"], old = %e["old"], new = %e["new"], "reload: applied");
            running.insert(
                e["key"].as_str().unwrap_or_default().to_string(),
                next.values[e["key"].as_str().unwrap_or_default()].clone(),
            );
        }
        for e in &restart {
            tracing::warn!(%caller, key = %e["key"], old = %e["old"], new = %e["new"], reason = %e["reason"], "reload: needs a restart; the running value stands");
        }
        for (module, change) in &rights {
            tracing::info!(%caller, %module, %change, "reload: rights re-resolved");
        }
        Ok(json!({
            "valid": true,
            "applied": applied,
            "restart_required": restart,
            "rights": rights.into_iter().map(|(m, c)| json!({"module": m, "change": c})).collect::<Vec<_>>(),
        }))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A changed key is applied when a reload can apply it, else reported with why.
    #[test]
    fn changed_keys_split_into_applied_and_restart_required() {
        let v = |pairs: &[(&str, &str)]| -> Values {
            pairs.iter().map(|(k, v)| (k.to_string(), vec![v.to_string()])).collect()
        };
        let running =
            v(&[("grant", "m=core"), ("core-url", "http://a"), ("expiry-threshold-days", "7"), ("listen", "x")]);
        let now = v(&[("grant", "m=none"), ("core-url", "http://b"), ("expiry-threshold-days", "9"), ("listen", "x")]);
        let (applied, restart) = diff(&running, &now);
        let keys = |l: &[Value]| l.iter().map(|e| e["key"].as_str().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(keys(&applied), ["expiry-threshold-days", "grant"]);
        assert_eq!(keys(&restart), ["core-url"]);
        assert_eq!(restart[0]["reason"], "the core client is built at start-up");
        assert_eq!((applied[1]["old"][0].as_str(), applied[1]["new"][0].as_str()), (Some("m=core"), Some("m=none")));
    }
}
