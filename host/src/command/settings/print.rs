//! `config print`: every setting's effective value and where it came from (default, file,
//! env, flag), with secrets redacted.

use anyhow::Result;
use clap::parser::ValueSource;
use clap::Command;
use serde_json::{json, Value};

use super::layer::{deepest, layer};

/// Words that make a flag's value, or a key inside a JSON value, a secret.
const SECRET: [&str; 6] = ["token", "secret", "password", "api-key", "api_key", "apikey"];
/// Arguments of the printing command itself, not settings.
const NOT_SETTINGS: [&str; 4] = ["help", "version", "log_format", "json"];

#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub key: String,
    pub value: Vec<String>,
    pub source: String,
}

fn secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET.iter().any(|w| n.contains(w))
}

/// A flag holding a path to a secret (`--admin-token-file`) is printed: the path is not the
/// secret, the file's content is, and it is never read here.
fn secret_flag(long: &str) -> bool {
    secret(long) && !long.ends_with("-file") && !long.ends_with("-dir")
}

fn redact_json(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if secret(k) {
                    *x = json!("<redacted>");
                } else {
                    redact_json(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(redact_json),
        _ => {}
    }
}

/// A value as printed: JSON inside it (`MODULE=JSON`) with its secret keys redacted.
fn redact_value(v: &str) -> String {
    let (prefix, rest) = match v.split_once('=') {
        Some((p, r)) if r.starts_with(['{', '[']) => (format!("{p}="), r),
        _ => (String::new(), v),
    };
    match serde_json::from_str::<Value>(rest) {
        Ok(mut j) if j.is_object() || j.is_array() => {
            redact_json(&mut j);
            format!("{prefix}{j}")
        }
        _ => v.to_string(),
    }
}

/// The effective settings of the deepest subcommand of `argv` (parsed by `cmd`).
pub fn effective(cmd: &Command, argv: Vec<String>) -> Result<Vec<Entry>> {
    let layered = layer(cmd, argv)?;
    let m = cmd.clone().try_get_matches_from(&layered.argv)?;
    let (sub, sm) = deepest(cmd, &m);
    let mut out = Vec::new();
    for arg in sub.get_arguments() {
        let (id, Some(long)) = (arg.get_id().as_str(), arg.get_long()) else { continue };
        if NOT_SETTINGS.contains(&id) {
            continue;
        }
        let raw: Vec<String> =
            sm.get_raw(id).map(|r| r.map(|v| v.to_string_lossy().into_owned()).collect()).unwrap_or_default();
        let value = if secret_flag(long) && !raw.is_empty() {
            vec!["<redacted>".to_string()]
        } else {
            raw.iter().map(|v| redact_value(v)).collect()
        };
        let source = match (layered.from_file.get(id), sm.value_source(id)) {
            (Some(path), _) => format!("file ({path})"),
            (None, Some(ValueSource::CommandLine)) => "flag".into(),
            (None, Some(ValueSource::EnvVariable)) => "env".into(),
            (None, Some(ValueSource::DefaultValue)) => "default".into(),
            (None, _) => "unset".into(),
        };
        out.push(Entry { key: long.to_string(), value, source });
    }
    Ok(out)
}

/// The entries as an aligned table.
pub fn table(entries: &[Entry]) -> String {
    let width = entries.iter().map(|e| e.key.len()).max().unwrap_or(0);
    let mut s = String::new();
    for e in entries {
        let v = if e.value.is_empty() { "-".to_string() } else { e.value.join(" ") };
        s += &format!("{:width$}  {v}  [{}]\n", e.key, e.source);
    }
    s
}
