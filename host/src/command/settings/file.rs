//! Reading the config file into the flags it stands for.
//!
//! Keys: `host.<flag>` (a flag's long name, `-` or `_`), `workers.<module>.<knob>` (a
//! built-in module's own flags, without the `--`) and, for any module, `workers.<module>.`
//! `limits` / `grant` / `llm` / `intervals` (the `--limits`, `--grant`, `--llm` and
//! `--interval` lines for it). The other tiers' sections of a shared `nthlayer.yaml`
//! (`core:`, `store:`, …) are not ours and are skipped. Anything else is an error naming its
//! path and the nearest valid key.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use clap::{Arg, ArgAction, Args, Command};
use serde_json::{Map, Value};

use crate::command::module_flags as mf;

/// Sections of the ecosystem's shared `nthlayer.yaml` that belong to other tiers.
pub const OTHER_TIERS: [&str; 6] = ["deployment", "store", "llm", "prometheus", "core", "bench"];
/// Keys every module takes under `workers.<module>`, and the flag each becomes.
const MODULE_KEYS: [(&str, &str); 4] =
    [("limits", "limits"), ("grant", "grant"), ("llm", "llm"), ("intervals", "interval")];
/// Arguments that are not configuration.
const NOT_KEYS: [&str; 4] = ["help", "version", super::CONFIG_ID, "log_format"];

/// One flag the file sets.
#[derive(Debug, Clone)]
pub struct Setting {
    /// Where in the file (`host.state-dir`, `workers.learn.expiry_threshold_days`).
    pub path: String,
    pub id: String,
    pub long: String,
    /// Values, each one occurrence of the flag; empty with `switch` false: leave it off.
    pub values: Vec<String>,
    /// A flag without a value (`--no-cache`): present when true.
    pub switch: bool,
}

fn nearest<'a>(key: &str, valid: impl IntoIterator<Item = &'a str>) -> String {
    valid
        .into_iter()
        .min_by_key(|v| strsim::levenshtein(key, v))
        .map_or_else(String::new, |v| format!("; the nearest valid key is {v:?}"))
}

/// The built-in modules' own knobs: module name -> its flags' long names.
fn builtin_knobs() -> BTreeMap<&'static str, Vec<String>> {
    let longs = |c: Command| c.get_arguments().filter_map(|a| a.get_long().map(str::to_string)).collect::<Vec<_>>();
    BTreeMap::from([
        ("observe", longs(mf::observe::ObserveArgs::augment_args(Command::new("x")))),
        ("correlate", longs(mf::correlate::CorrelateArgs::augment_args(Command::new("x")))),
        ("measure", longs(mf::measure::MeasureArgs::augment_args(Command::new("x")))),
        ("learn", longs(mf::learn::LearnArgs::augment_args(Command::new("x")))),
        ("respond", longs(mf::respond::RespondArgs::augment_args(Command::new("x")))),
    ])
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A value that goes after `NAME=`: a scalar as text, anything else as JSON.
fn after_eq(v: &Value) -> String {
    scalar(v).unwrap_or_else(|| v.to_string())
}

fn repeatable(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append) || arg.get_num_args().is_some_and(|n| n.max_values() > 1)
}

/// Turns one file value into `arg`'s occurrences, each checked by the flag's own parser.
fn setting(arg: &Arg, path: &str, v: &Value) -> Result<Setting> {
    let long = arg.get_long().unwrap_or_default().to_string();
    let mut s = Setting {
        path: path.to_string(),
        id: arg.get_id().to_string(),
        long: long.clone(),
        values: vec![],
        switch: false,
    };
    if !arg.get_action().takes_values() {
        match v {
            Value::Bool(b) => s.switch = *b,
            _ => bail!("{path}: expected true or false (it is the switch --{long})"),
        }
        return Ok(s);
    }
    let named = arg.get_value_names().is_some_and(|n| n.iter().any(|n| n.contains('=')));
    s.values = match v {
        Value::Object(m) if named => m.iter().map(|(k, v)| format!("{k}={}", after_eq(v))).collect(),
        Value::Array(a) if repeatable(arg) => a
            .iter()
            .map(|x| scalar(x).ok_or_else(|| anyhow!("{path}: list items must be plain values")))
            .collect::<Result<_>>()?,
        Value::Null => vec![],
        v => vec![scalar(v).ok_or_else(|| {
            anyhow!("{path}: expected a plain value{}", if named { " or a map of NAME: value" } else { "" })
        })?],
    };
    // Each value through the flag's own parser, alone, so the error names the file's key.
    let alone = Command::new("config").arg(arg.clone().required(false));
    for value in &s.values {
        alone.clone().try_get_matches_from([OsStr::new("x"), OsStr::new(&format!("--{long}={value}"))]).map_err(
            |e| {
                let e = e.to_string();
                anyhow!("{path}: {}", e.lines().next().unwrap_or(&e).trim_start_matches("error: "))
            },
        )?;
    }
    Ok(s)
}

/// The file's settings for the flags of `cmd` (serve's, or a command flattening them).
pub fn read(file: &Path, cmd: &Command) -> Result<Vec<Setting>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read config file {}", file.display()))?;
    parse(&text, cmd).with_context(|| format!("config file {}", file.display()))
}

/// As [`read`], from the file's text.
pub fn parse(text: &str, cmd: &Command) -> Result<Vec<Setting>> {
    let doc: Value = serde_norway::from_str(text).context("not YAML")?;
    let top = match doc {
        Value::Null => return Ok(vec![]),
        Value::Object(m) => m,
        _ => bail!("expected a mapping at the top (host:, workers:)"),
    };
    let mut out = Vec::new();
    for (key, v) in &top {
        match key.as_str() {
            "host" => out.extend(host(cmd, section(v, "host")?)?),
            "workers" => out.extend(workers(cmd, section(v, "workers")?)?),
            k if OTHER_TIERS.contains(&k) => {}
            k => {
                let valid = ["host", "workers"].into_iter().chain(OTHER_TIERS);
                bail!("unknown key {k:?}{}", nearest(k, valid))
            }
        }
    }
    merge(cmd, out)
}

fn section(v: &Value, path: &str) -> Result<Map<String, Value>> {
    match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Map::new()),
        _ => bail!("{path}: expected a mapping"),
    }
}

fn keys(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|a| a.get_long().is_some() && !NOT_KEYS.contains(&a.get_id().as_str()))
}

fn find<'a>(cmd: &'a Command, long: &str) -> Option<&'a Arg> {
    keys(cmd).find(|a| a.get_long() == Some(long))
}

fn host(cmd: &Command, m: Map<String, Value>) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    for (k, v) in &m {
        let long = k.replace('_', "-");
        let Some(arg) = find(cmd, &long) else {
            let valid: Vec<String> = keys(cmd).filter_map(|a| a.get_long().map(|l| format!("host.{l}"))).collect();
            bail!("unknown key \"host.{k}\"{}", nearest(&format!("host.{long}"), valid.iter().map(String::as_str)));
        };
        out.push(setting(arg, &format!("host.{k}"), v)?);
    }
    Ok(out)
}

fn workers(cmd: &Command, m: Map<String, Value>) -> Result<Vec<Setting>> {
    let knobs = builtin_knobs();
    let mut out = Vec::new();
    for (module, v) in &m {
        let here = format!("workers.{module}");
        let own: &[String] = knobs.get(module.as_str()).map_or(&[], Vec::as_slice);
        for (k, v) in section(v, &here)? {
            let path = format!("{here}.{k}");
            let long = k.replace('_', "-");
            if let Some((_, flag)) = MODULE_KEYS.iter().find(|(key, _)| *key == k) {
                let arg = find(cmd, flag).ok_or_else(|| anyhow!("{path}: this command has no --{flag}"))?;
                let v = module_value(module, &k, &v, &path)?;
                out.push(setting(arg, &path, &v)?);
            } else if own.contains(&long) {
                let arg = find(cmd, &long).ok_or_else(|| anyhow!("{path}: this command has no --{long}"))?;
                out.push(setting(arg, &path, &v)?);
            } else {
                let valid: Vec<String> = MODULE_KEYS
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .chain(own.iter().map(|l| l.replace('-', "_")))
                    .map(|k| format!("{here}.{k}"))
                    .collect();
                bail!("unknown key {path:?}{}", nearest(&path.replace('-', "_"), valid.iter().map(String::as_str)));
            }
        }
    }
    Ok(out)
}

/// `workers.M.limits: {…}` is `--limits M=JSON`; `grant: [core, …]` is `--grant M=core,…`;
/// `llm: {…}` is `--llm M=JSON`; `intervals: {task: s}` is `--interval task=s` each.
fn module_value(module: &str, key: &str, v: &Value, path: &str) -> Result<Value> {
    Ok(match (key, v) {
        ("limits" | "llm", Value::Object(_)) => Value::String(format!("{module}={v}")),
        ("grant", Value::String(s)) => Value::String(format!("{module}={s}")),
        ("grant", Value::Array(a)) => {
            let caps: Vec<String> = a.iter().filter_map(scalar).collect();
            Value::String(format!("{module}={}", caps.join(",")))
        }
        ("intervals", Value::Object(m)) => {
            Value::Array(m.iter().map(|(task, s)| Value::String(format!("{task}={}", after_eq(s)))).collect())
        }
        ("intervals", _) => bail!("{path}: expected a map of task: seconds"),
        ("grant", _) => bail!("{path}: expected a capability list"),
        _ => bail!("{path}: expected a mapping"),
    })
}

/// One flag set twice: fine for a repeatable flag (both lines), an error otherwise.
fn merge(cmd: &Command, all: Vec<Setting>) -> Result<Vec<Setting>> {
    let mut by_id: BTreeMap<String, Setting> = BTreeMap::new();
    for s in all {
        match by_id.get_mut(&s.id) {
            None => {
                by_id.insert(s.id.clone(), s);
            }
            Some(prev) if find(cmd, &s.long).is_some_and(repeatable) => {
                prev.path = format!("{} + {}", prev.path, s.path);
                prev.values.extend(s.values);
            }
            Some(prev) => bail!("{} and {} both set --{}", prev.path, s.path, s.long),
        }
    }
    Ok(by_id.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Result<BTreeMap<String, (Vec<String>, bool)>> {
        let cmd = super::super::layer::serve_command();
        Ok(parse(yaml, &cmd)?.into_iter().map(|s| (s.long, (s.values, s.switch))).collect())
    }

    #[test]
    fn each_shape_of_value_becomes_the_flags_it_stands_for() {
        let s = settings(
            "host:\n  no_cache: true\n  no-builtin: false\n  modules: [a.wasm, b.wasm]\n  grant: {x: core}\n\
             workers:\n  custom:\n    grant: [core, llm]\n    intervals: {custom.t: 5}\n  observe: {drift_interval: 9}\n",
        )
        .unwrap();
        assert_eq!(s["no-cache"], (vec![], true));
        assert_eq!(s["no-builtin"], (vec![], false));
        assert_eq!(s["modules"].0, ["a.wasm", "b.wasm"]);
        assert_eq!(s["grant"].0, ["x=core", "custom=core,llm"], "a repeatable flag takes both keys' lines");
        assert_eq!(s["interval"].0, ["custom.t=5"]);
        assert_eq!(s["drift-interval"].0, ["9"]);
        assert!(settings("").unwrap().is_empty());
        assert!(settings("host:\nworkers:\n").unwrap().is_empty());
    }

    #[test]
    fn wrong_shapes_and_double_settings_name_their_keys() {
        let e = |y: &str| format!("{:#}", settings(y).unwrap_err());
        assert!(e("host:\n  no-cache: 1\n").contains("host.no-cache: expected true or false"));
        assert!(e("host:\n  core-url: [a, b]\n").contains("host.core-url: expected a plain value"));
        assert!(e("workers:\n  observe:\n    collect_interval: 5\n  x: 3\n").contains("workers.x: expected a mapping"));
        let twice = e("host:\n  collect-interval: 5\nworkers:\n  observe: {collect_interval: 6}\n");
        assert!(
            twice.contains("host.collect-interval and workers.observe.collect_interval both set --collect-interval"),
            "{twice}"
        );
        assert!(e("- a\n").contains("expected a mapping at the top"));
    }
}
