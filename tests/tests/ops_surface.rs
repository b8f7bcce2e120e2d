//! The operations surface on one real stack: the real binary serving observe against the
//! real nthlayer-core and a real Prometheus, which also scrapes the host's `/metrics`.
//!
//! One host, one Prometheus, one core for every check below (they are slow to start):
//! the probes; `/metrics` scraped by Prometheus and read back through PromQL; the status
//! page loaded by headless Chromium (DOM text asserted, screenshot kept under
//! `target/nthlayer-tests/ops-surface/`); the JSON log lines' fields; and, with the `otel`
//! feature, the cycle and host-call spans received over OTLP/HTTP by a loopback receiver.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nthlayer_tests::core::Core;
use nthlayer_tests::host::{interval_args, observe_module, HostProcess, FAST_OBSERVE};
use nthlayer_tests::prometheus::{PromOpts, Prometheus};
use nthlayer_tests::scenario::{self, default_slis, exporter_text, SLI_METRIC};
use nthlayer_tests::util::{free_port, http_client, workspace_root};
use nthlayer_tests::wait::wait_until;
use serde_json::Value;

/// First cycles, first scrapes, first delivery.
const SETTLE: Duration = Duration::from_secs(90);

fn get(url: &str) -> (u16, String) {
    match http_client().get(url).send() {
        Ok(r) => (r.status().as_u16(), r.text().unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

/// The observe module's version as `/metrics` reports it (what the page must show too).
fn observe_version(metrics: &str) -> String {
    let line = metrics.lines().find(|l| l.starts_with("nthlayer_module_info{") && l.contains("module=\"observe\""));
    let line = line.unwrap_or_else(|| panic!("no nthlayer_module_info for observe in:\n{metrics}"));
    let v = line.split("version=\"").nth(1).and_then(|r| r.split('"').next()).expect("version label");
    v.to_string()
}

#[test]
fn probes_metrics_page_logs_and_traces() {
    let exporter = nthlayer_tests::exporter::Exporter::start(exporter_text(&default_slis()));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let prom = Prometheus::start(PromOpts {
        scrape_targets: vec![exporter.target()],
        host_targets: vec![listen.clone()],
        wait_for: vec![SLI_METRIC.into()],
        ..PromOpts::default()
    });
    let core = Core::start(&scenario::manifests_dir());
    #[cfg(feature = "otel")]
    let receiver = nthlayer_tests::otlp::Receiver::start();
    #[cfg(feature = "otel")]
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), receiver.url())];
    #[cfg(not(feature = "otel"))]
    let env: [(String, String); 0] = [];
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--core-url".into(),
        core.url(),
        "--prometheus-url".into(),
        prom.url(),
        "--instance-id".into(),
        "ops-surface".into(),
        "--no-builtin".into(),
        "--modules".into(),
        observe_module().display().to_string(),
        "--listen".into(),
        listen.clone(),
        "--log-format".into(),
        "json".into(),
        "--start-jitter-ms".into(),
        "0".into(),
    ];
    args.extend(interval_args(&FAST_OBSERVE));
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut host = HostProcess::spawn_with_env(args, &env_ref);
    let base = format!("http://{listen}");

    // Probes: health as soon as the listener is up, ready once start-up is done.
    wait_until("/health 200", SETTLE, || (get(&format!("{base}/health")) == (200, "ok\n".into())).then_some(()));
    wait_until("/ready 200", SETTLE, || (get(&format!("{base}/ready")).0 == 200).then_some(()));

    // /metrics directly: OpenMetrics, observe's cycles counted.
    let r = http_client().get(format!("{base}/metrics")).send().expect("GET /metrics");
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ctype.starts_with("application/openmetrics-text"), "content-type {ctype}");
    let text = r.text().unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF:\n{text}");
    let version = observe_version(&text);

    // Through Prometheus: the scrape works and the series say what happened.
    let q = |promql: &str| prom.query_value(promql).unwrap_or(f64::NAN);
    wait_until("Prometheus scrapes the host", SETTLE, || (q("up{job=\"nthlayer-host\"}") == 1.0).then_some(()));
    for promql in [
        "sum(nthlayer_cycles_total{job=\"nthlayer-host\",task=\"observe.collect\",outcome=\"ok\"})",
        "sum(nthlayer_records_committed_total{module=\"observe\",kind=\"assessment\"})",
        "sum(nthlayer_host_calls_total{module=\"observe\",interface=\"prometheus\",outcome=\"ok\"})",
        "sum(nthlayer_outbox_delivered_total{what=\"assessment\"})",
        "sum(nthlayer_cycle_duration_seconds_count{task=\"observe.collect\"})",
        "sum(nthlayer_instantiate_duration_seconds_count{task=\"observe.collect\"})",
    ] {
        wait_until(&format!("{promql} > 0"), SETTLE, || (q(promql) > 0.0).then_some(()));
    }
    assert_eq!(q("nthlayer_modules_loaded{job=\"nthlayer-host\"}"), 1.0);
    assert_eq!(q(&format!("nthlayer_module_info{{module=\"observe\",version=\"{version}\"}}")), 1.0);
    assert_eq!(q("count(nthlayer_build_info{job=\"nthlayer-host\"})"), 1.0);
    assert!(q("nthlayer_uptime_seconds{job=\"nthlayer-host\"}") > 0.0);
    // The start-up load counts as a successful (re)load, as Prometheus's own series do.
    assert_eq!(q("nthlayer_config_last_reload_successful{job=\"nthlayer-host\"}"), 1.0);
    assert!(q("time() - nthlayer_config_last_reload_success_timestamp_seconds{job=\"nthlayer-host\"}") < 3600.0);
    // Bounded labels: no series of the host carries a service (or record id) label.
    let leaked = prom.query("{job=\"nthlayer-host\",service!=\"\"}").expect("query");
    assert!(leaked.is_empty(), "series labelled by service: {leaked:?}");

    status_page(&base, &version);
    json_logs(&host.log(), &version);
    #[cfg(feature = "otel")]
    receiver.assert_cycle_and_host_call_spans(SETTLE);

    host.terminate(Duration::from_secs(15));
}

/// The page in real headless Chromium: its rendered DOM names the module, its version and
/// the collect task's last outcome; the screenshot is kept as an artifact.
fn status_page(base: &str, version: &str) {
    let chromium = |extra: &[&str]| {
        let mut c = Command::new("chromium");
        c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"]);
        c.args(extra).arg(format!("{base}/"));
        let out = c.output().expect("run chromium (scripts/setup installs it)");
        assert!(out.status.success(), "chromium {extra:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = chromium(&["--dump-dom"]);
    let text = dom_text(&dom);
    for want in ["nthlayer-host", "Modules", "observe", version, "observe.collect", "Outbox", "LLM spend"] {
        assert!(text.contains(want), "status page lacks {want:?}; text:\n{text}");
    }
    // The task's row: its module, the version it ran on, and its last cycles' outcome.
    let collect_row = text.lines().find(|l| l.contains("observe.collect")).unwrap_or_default();
    for want in ["observe ", &format!(" {version} "), " ok "] {
        assert!(collect_row.contains(want), "observe.collect's row lacks {want:?}: {collect_row:?}");
    }
    let dir = workspace_root().join("target/nthlayer-tests/ops-surface");
    std::fs::create_dir_all(&dir).unwrap();
    let shot: PathBuf = dir.join("status-page.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&[&format!("--screenshot={}", shot.display()), "--window-size=1400,1000"]);
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG at {}", shot.display());
}

/// The DOM's text, one table row per line, cells separated by spaces.
fn dom_text(dom: &str) -> String {
    let dom = dom.replace("</tr>", "\n").replace("</td>", " ").replace("</th>", " ").replace("</p>", "\n");
    let mut out = String::new();
    let mut in_tag = false;
    for c in dom.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

/// Every line is one JSON object; lines written inside a cycle carry module, version and
/// task as top-level keys (from the cycle's span), not only inside the message; the event's
/// own fields stay under `fields`, where the other suites read them.
fn json_logs(log: &str, version: &str) {
    let lines: Vec<Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}")))
        .collect();
    let ok: Vec<&Value> =
        lines.iter().filter(|l| l["fields"]["message"] == "cycle ok" && l["task"] == "observe.collect").collect();
    assert!(!ok.is_empty(), "no 'cycle ok' line for observe.collect among {} lines", lines.len());
    for l in ok {
        assert_eq!(l["module"], "observe", "{l}");
        assert_eq!(l["version"], version, "{l}");
        assert_eq!(l["level"], "INFO", "{l}");
        assert!(l["timestamp"].is_string(), "{l}");
        assert_eq!(l["span"], "cycle", "{l}");
        assert!(l["fields"]["emitted"].is_u64(), "event fields keep their types: {l}");
    }
}
