//! The status page at `/`: one server-rendered HTML page that refreshes itself, for a
//! human with a browser and no Grafana. maud escapes every interpolated value, so module
//! names, versions and error texts (which a module controls) cannot inject markup.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use super::Ops;
use crate::lifecycle::status::{HostStatus, TaskStats};

/// Seconds between the page's own reloads.
const REFRESH_SECONDS: u32 = 10;

pub fn routes() -> Router<Ops> {
    Router::new().route("/", get(page))
}

async fn page(State(ops): State<Ops>) -> Markup {
    let body = match ops.status() {
        None => html! { p { "Starting: modules are loading." } },
        Some(s) => status(s),
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(REFRESH_SECONDS);
                title { "nthlayer-host" }
                style { (STYLE) }
            }
            body {
                h1 { "nthlayer-host " (env!("CARGO_PKG_VERSION")) }
                (body)
            }
        }
    }
}

const STYLE: &str =
    "body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:1.5em}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#f4f4f4}\
.ok{color:#186a18}.failed{color:#b00020}.err{max-width:40em;white-space:pre-wrap;font-size:12px}";

fn status(s: &HostStatus) -> Markup {
    let ready = s.not_ready();
    html! {
        p id="summary" {
            "Up " (s.uptime().as_secs()) " s · "
            @match &ready { None => span class="ok" { "ready" }, Some(why) => span class="failed" { (why) } }
        }
        h2 { "Modules" }
        (modules(s))
        h2 { "Tasks" }
        (tasks(s))
        h2 { "Outbox" }
        (outbox(&s.outbox()))
        h2 { "LLM spend" }
        (llm(s))
    }
}

fn text(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn modules(s: &HostStatus) -> Markup {
    let versions = s.registry().versions();
    let rejected = s.registry().rejected();
    html! {
        table id="modules" {
            tr { th { "module" } th { "version" } th { "contract" } th { "sha256" } th { "trust" } th { "grants" } th { "probation" } }
            @for m in versions.as_array().into_iter().flatten() {
                tr {
                    td { (text(m, "name")) } td { (text(m, "version")) } td { (text(m, "contract")) }
                    td { code { (text(m, "sha256").get(..12).unwrap_or_default()) } }
                    td { (text(m, "trust")) }
                    td { (m["grants"].as_array().map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                    td { @if m["probation"] == true { "on probation" } }
                }
            }
        }
        @if let Some(r) = rejected.as_object().filter(|r| !r.is_empty()) {
            table id="rejected" {
                tr { th { "refused file" } th { "why" } }
                @for (file, why) in r { tr { td { (file) } td class="err" { (why.as_str().unwrap_or_default()) } } }
            }
        }
    }
}

fn tasks(s: &HostStatus) -> Markup {
    let budgets: std::collections::BTreeMap<String, u64> =
        s.registry().all().into_iter().map(|(name, slot)| (name, slot.serving().limits.cpu_ms)).collect();
    html! {
        table id="tasks" {
            tr { th { "task" } th { "module" } th { "version" } th { "ok" } th { "failed" } th { "last cycles (newest last)" }
                 th { "CPU ms (last / budget)" } th { "next run" } th { "last error" } }
            @for (name, t) in s.task_stats() {
                tr {
                    td { (name) } td { (t.module) } td { (t.version) } td { (t.ok) } td { (t.failed) }
                    td { (recent(&t)) }
                    td { (t.last_cpu_ms) " / " (budgets.get(&t.module).map(u64::to_string).unwrap_or_default()) }
                    td { (t.next_run_at.clone().unwrap_or_default()) }
                    td class="err" { (t.last_error.clone().unwrap_or_default()) }
                }
            }
        }
    }
}

fn recent(t: &TaskStats) -> Markup {
    html! {
        @for r in &t.recent {
            @let (class, word) = if r.ok { ("ok", "ok") } else { ("failed", "failed") };
            span class=(class) title=(r.at) { (word) " " (r.ms) "ms" } " "
        }
    }
}

fn outbox(o: &Value) -> Markup {
    if o.is_null() {
        return html! { p { "No spool." } };
    }
    html! {
        table id="outbox" {
            tr { th { "records waiting" } th { "entries" } th { "bytes" } th { "oldest (s)" } th { "set aside" } th { "retrying" } th { "full" } th { "last error" } }
            tr {
                td { (text(o, "records")) } td { (text(o, "entries")) } td { (text(o, "bytes")) } td { (text(o, "oldest_age_seconds")) }
                td { (text(o, "rejected")) } td { (text(o, "retrying")) } td { (text(o, "full")) } td class="err" { (text(o, "last_error")) }
            }
        }
    }
}

fn llm(s: &HostStatus) -> Markup {
    let m = s.llm().metrics();
    let budgets = s.llm().budgets();
    html! {
        table id="llm" {
            tr { th { "module" } th { "model" } th { "calls" } th { "input tokens" } th { "output tokens" } th { "errors" } }
            @for x in m["series"].as_array().into_iter().flatten() {
                tr {
                    td { (text(x, "module")) } td { (text(x, "model")) } td { (text(x, "calls")) }
                    td { (text(x, "input_tokens")) } td { (text(x, "output_tokens")) } td { (x["errors"].to_string()) }
                }
            }
        }
        @if !budgets.is_empty() {
            table id="budgets" {
                tr { th { "module" } th { "tokens this hour" } th { "hourly budget" } }
                @for (module, limit, used) in &budgets { tr { td { (module) } td { (used) } td { (limit) } } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::backend::llm::LlmService;
    use crate::lifecycle::registry::Registry;
    use crate::lifecycle::status::HostStatus;

    /// Task names, module names and error texts come from modules: none may become markup.
    #[test]
    fn module_controlled_text_is_escaped() {
        let s = HostStatus::new(Arc::new(Registry::default()), LlmService::default());
        s.record_task("evil.<b>task</b>", |t| {
            t.module = "<script>alert(1)</script>".into();
            t.last_error = Some("</td><img src=x onerror=alert(1)>".into());
            t.push_recent(false, 5, 1);
        });
        let html = super::status(&s).into_string();
        assert!(!html.contains("<script>") && !html.contains("<img") && !html.contains("<b>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("&lt;/td&gt;&lt;img src=x onerror=alert(1)&gt;"), "{html}");
        assert!(html.contains("evil.&lt;b&gt;task&lt;/b&gt;"), "{html}");
    }
}
