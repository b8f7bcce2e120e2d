//! `nthlayer-host status [--json]`: what the status page shows, read from a running host's
//! admin API, for terminals and scripts.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The admin API of the host to ask (its `--admin-listen`).
    #[arg(long, env = "NTHLAYER_ADMIN_URL", default_value = "http://127.0.0.1:9465")]
    pub admin_url: String,
    /// The admin token file (as `serve --admin-token-file`).
    #[arg(long, env = "NTHLAYER_ADMIN_TOKEN_FILE", value_name = "FILE")]
    pub admin_token_file: PathBuf,
    /// The admin API's JSON as it is.
    #[arg(long)]
    pub json: bool,
}

pub async fn status(a: StatusArgs) -> Result<()> {
    let token = crate::ops::admin::read_token(&a.admin_token_file)?;
    let url = format!("{}/-/admin/status", a.admin_url.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(String::from_utf8_lossy(&token))
        .send()
        .await
        .with_context(|| format!("cannot reach the admin API at {url}"))?;
    let code = resp.status();
    let body: Value = resp.json().await.with_context(|| format!("{url}: answer is not JSON"))?;
    if !code.is_success() {
        bail!("{url}: {code}: {}", body["error"].as_str().unwrap_or("no reason given"));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        print!("{}", render(&body));
    }
    Ok(())
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The report as text: modules and tasks, the outbox, LLM spend.
pub fn render(r: &Value) -> String {
    let host = &r["host"];
    let mut out = format!("{} {}\n\n", s(&host["host"]["name"]), s(&host["host"]["version"]));
    for m in r["modules"].as_array().into_iter().flatten() {
        out += &format!(
            "{} {}  sha256 {:.12}  {}  loaded {}\n",
            s(&m["name"]),
            s(&m["version"]),
            s(&m["sha256"]),
            s(&m["origin"]),
            s(&m["loaded_at"])
        );
        for t in m["tasks"].as_array().into_iter().flatten() {
            let state = if t["paused"] == true {
                "paused"
            } else if t["scheduled"] == false {
                "on-demand"
            } else {
                match t["last_ok"].as_bool() {
                    Some(true) => "ok",
                    Some(false) => "failed",
                    None => "not run yet",
                }
            };
            out += &format!(
                "  {:<28} {:<11} ok {} failed {}  last {}  next {}  cpu {} ms\n",
                s(&t["name"]),
                state,
                s(&t["ok"]),
                s(&t["failed"]),
                s(&t["last_run_at"]),
                s(&t["next_run_at"]),
                s(&t["last_cpu_ms"])
            );
            if let Some(e) = t["last_error"].as_str() {
                out += &format!("  {:<28} last error: {}\n", "", e.lines().next().unwrap_or(e));
            }
        }
    }
    out += &format!("\noutbox: {}\n", s(&host["outbox"]));
    out += &format!("llm: {}\n", s(&host["llm"]));
    if let Some(rej) = host["rejected"].as_object().filter(|o| !o.is_empty()) {
        out += "rejected files:\n";
        for (f, why) in rej {
            out += &format!("  {f}: {}\n", s(why));
        }
    }
    out
}
