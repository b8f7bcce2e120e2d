//! correlate end to end: the real `nthlayer-host` running only `correlate.wasm` against the
//! real nthlayer-core (seeded by POSTing breaches and SLO states) and the real Prometheus;
//! Tempo and the LLM provider are loopback fakes speaking their wire protocols.
//!
//! Needs `target/debug/nthlayer-host` and `dist/modules/correlate.wasm`
//! (`cargo build -p nthlayer-host && scripts/build-modules`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use nthlayer_tests::core::{Assessment, Core};
use nthlayer_tests::exporter::{sample, Exporter};
use nthlayer_tests::host::HostProcess;
use nthlayer_tests::llm_fake::{openai_tool_call, FakeLlm, LlmHost};
use nthlayer_tests::modules;
use nthlayer_tests::prometheus::{PromOpts, Prometheus};
use nthlayer_tests::tempo_fake::{FakeTempo, Mode};
use nthlayer_tests::util::{fixtures_dir, iso_now};
use nthlayer_tests::wait::{assert_stays, wait_for, wait_until};

/// Core start, component compile, first cycles.
const FIRST: Duration = Duration::from_secs(90);
const QUIET: &str = "100000";

fn correlate_module() -> String {
    modules::CORRELATE.built().display().to_string()
}

fn manifests() -> PathBuf {
    fixtures_dir().join("correlate/manifests")
}

fn snapshots(core: &Core, service: &str) -> Vec<Assessment> {
    core.assessments(Some(service), Some("correlation_snapshot"))
}

fn post(core: &Core, path: &str, record: Value) {
    let (st, body) = core.post_json(path, &record).expect("POST to core");
    assert_eq!(st, 201, "POST {path}: {body}");
}

fn breach(core: &Core, id: &str, service: &str) -> String {
    let at = iso_now();
    post(
        core,
        "/verdicts",
        json!({"id": id, "type": "quality_breach", "service": service, "created_at": at,
               "producer": "nthlayer-measure", "subject": {"summary": "reversal_rate breach"}}),
    );
    at
}

fn slo_status(core: &Core, id: &str, service: &str, status: &str) {
    post(
        core,
        "/assessments",
        json!({"id": id, "kind": "slo_status", "service": service, "created_at": iso_now(),
               "producer": "nthlayer-observe", "data": {"slo_name": "availability", "status": status}}),
    );
}

/// The `correlate` task's persisted state (unpacked) and when it was saved.
fn task_state(core: &Core) -> Option<(String, Value)> {
    let row = core.component_state("correlate")?;
    let h = row.get("hysteresis_state")?;
    Some((h.get("saved_at")?.as_str()?.to_string(), h.get("state")?.clone()))
}

/// Waits until `n` more cycles have saved their state (distinct `saved_at`), returns the last state.
fn wait_cycles(core: &Core, n: usize, what: &str) -> Value {
    let mut seen = BTreeSet::new();
    let mut last = Value::Null;
    wait_until(&format!("{n} correlate cycles ({what})"), FIRST, || {
        if let Some((at, st)) = task_state(core) {
            seen.insert(at);
            last = st;
        }
        (seen.len() > n).then_some(())
    });
    last
}

fn serve(core: &Core, instance: &str, extra: &[&str]) -> HostProcess {
    let m = correlate_module();
    let mut args = vec!["--start-jitter-ms", "0"];
    args.extend_from_slice(extra);
    HostProcess::serve_modules(&core.url(), "http://127.0.0.1:9", instance, &[m.as_str()], &args)
}

/// The headline: one breach, many 1 s cycles, exactly one snapshot; a restarted host picks
/// up the persisted cursor and snapshots nothing again, yet still sees the next breach.
/// (nthlayer-workers 3.0.3 emits a new snapshot for the same breach every cycle.)
#[test]
fn one_snapshot_per_window_over_many_cycles_and_none_after_restart() {
    let core = Core::start(&manifests());
    // The breach is the newest event, so it sits exactly at the cursor: core's inclusive
    // `created_after` returns it on every later poll.
    slo_status(&core, "asm-ledger-exhausted-1", "ledger", "EXHAUSTED");
    let at = breach(&core, "vrd-breach-ledger-0001", "ledger");
    let flags = ["--correlate-interval", "1", "--topology-drift-interval", "1", "--contract-interval", QUIET];
    let mut host = serve(&core, "corr-e2e-1", &flags);

    let snap = wait_until("first correlation_snapshot", FIRST, || snapshots(&core, "ledger").into_iter().next());
    let state = wait_cycles(&core, 12, "after the snapshot");
    let all = snapshots(&core, "ledger");
    assert_eq!(all.len(), 1, "snapshots: {all:#?}\nhost log:\n{}", host.log_tail(40));

    let d = &snap.data;
    assert!(snap.id.starts_with("csn-ledger-production-"), "{}", snap.id);
    assert_eq!(d["domain"], json!({"service": "ledger", "environment": "production"}));
    assert_eq!(d["window"]["close_reason"], "trigger");
    assert_eq!(d["event_count"], 2);
    assert_eq!(d["event_types"].to_string(), r#"{"quality_score":1,"metric_breach":1}"#);
    assert_eq!(d["peak_severity"], json!(1.0));
    assert_eq!(d["affected_services"], json!(["ledger"]));
    assert_eq!(d["environment_source"], "default");
    assert_eq!(d["parent_ids"], json!(["vrd-breach-ledger-0001"]));
    assert_eq!(d["nl_summary"], Value::Null, "no LLM configured");
    assert_eq!(state["cursor_ids"], json!(["vrd-breach-ledger-0001"]));
    assert_eq!(state["cursor"], json!(at), "{state}");

    // No --tempo-endpoint: topology is a logged no-op.
    let log = host.log();
    assert!(log.contains("topology_module_no_trace_backend"), "{}", host.log_tail(40));
    assert!(core.assessments(None, Some("topology_drift")).is_empty());

    assert!(host.terminate(Duration::from_secs(15)).success(), "host did not stop cleanly");
    let mut again = serve(&core, "corr-e2e-1", &flags);
    wait_cycles(&core, 6, "after the restart");
    assert_eq!(snapshots(&core, "ledger").len(), 1, "re-snapshotted after restart:\n{}", again.log_tail(40));

    // The restored cursor still lets a new breach through, once.
    breach(&core, "vrd-breach-ledger-0002", "ledger");
    wait_for("second snapshot", FIRST, || snapshots(&core, "ledger").len() >= 2);
    wait_cycles(&core, 4, "after the second snapshot");
    let all = snapshots(&core, "ledger");
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_eq!(all[0].data["parent_ids"], json!(["vrd-breach-ledger-0002"]));
    assert_eq!(all[0].data["event_count"], 1);
    let _ = again.terminate(Duration::from_secs(15));
}

/// The summary through a loopback OpenAI-compatible provider: the first answer breaks the
/// schema, the host re-asks once, the second lands in `nl_summary` with our prompt version.
#[test]
fn summary_from_a_loopback_openai_provider_after_one_reask() {
    let core = Core::start(&manifests());
    let fake = FakeLlm::start(|req, earlier| {
        let name = req.tool_name().unwrap_or("?").to_owned();
        let args = if earlier.is_empty() {
            json!({"summary": "Ledger breached.", "confidence": 7})
        } else {
            json!({"summary": "ledger: one quality breach and an exhausted availability budget within seconds.",
                   "notable_omissions": ["no trace data"], "confidence": 0.6})
        };
        (200, openai_tool_call(&name, &args.to_string(), 300, 60))
    });
    breach(&core, "vrd-breach-ledger-llm", "ledger");
    slo_status(&core, "asm-ledger-llm", "ledger", "CRITICAL");
    let m = correlate_module();
    let base = fake.openai_base();
    let _host = LlmHost::serve(
        &core.url(),
        "corr-llm",
        &[m.as_str()],
        &["--correlate-interval", "1", "--topology-drift-interval", QUIET, "--contract-interval", QUIET],
        &[
            ("NTHLAYER_MODEL", "openai/gpt-fake"),
            ("OPENAI_API_BASE", &base),
            ("OPENAI_API_KEY", "sk-proj-TESTSECRETopenai0123456789abcdef"),
        ],
    );
    let snap = wait_until("snapshot with summary", FIRST, || snapshots(&core, "ledger").into_iter().next());
    assert_eq!(
        snap.data["nl_summary"],
        json!({"summary": "ledger: one quality breach and an exhausted availability budget within seconds.",
               "notable_omissions": ["no trace data"], "confidence": 0.6, "prompt_version": "correlate-summary/1"})
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "one call plus one re-ask");
    assert_eq!(reqs[0].tool_name(), Some("SnapshotSummary"));
    assert!(reqs[1].message_count() > reqs[0].message_count(), "the re-ask carries the failed turn");
    let system = reqs[0].body["messages"][0]["content"].as_str().unwrap_or_default();
    assert!(system.starts_with("You write the opening note"), "{system}");
    let user = reqs[0].body["messages"][1]["content"].as_str().unwrap_or_default();
    assert!(user.contains("Domain: service ledger in production") && user.contains("quality_score=1"), "{user}");
    let params = &reqs[0].body["tools"][0]["function"]["parameters"];
    assert_eq!(params["required"], json!(["summary"]));
}

/// Topology from recorded Tempo answers (tenant header from TEMPO_ORG_ID), contract
/// divergence from the real Prometheus, and both surviving Tempo down / answering garbage
/// and a manifest with a malformed contract.
#[test]
fn topology_from_tempo_and_contracts_from_prometheus() {
    let exporter = Exporter::start(
        [
            sample("contract_sli", &[("service", "ledger"), ("kind", "availability")], 0.995),
            sample("contract_sli", &[("service", "ledger"), ("kind", "latency_p99_seconds")], 0.35),
            sample("contract_sli", &[("service", "rates"), ("kind", "availability")], 0.999),
            sample("contract_sli", &[("service", "sloppy"), ("kind", "availability")], 0.5),
            sample("contract_sli", &[("service", "sloppy"), ("kind", "latency_p99_seconds")], 9.0),
        ]
        .concat(),
    );
    let prom = Prometheus::start(PromOpts {
        scrape_targets: vec![exporter.target()],
        wait_for: vec![r#"contract_sli{service="ledger",kind="latency_p99_seconds"}"#.into()],
        ..Default::default()
    });
    let core = Core::start(&manifests());
    let tempo = FakeTempo::start(&fixtures_dir().join("correlate/tempo"));
    let (m, core_url, prom_url) = (correlate_module(), core.url(), prom.url());
    let args: Vec<String> = [
        "serve",
        "--core-url",
        core_url.as_str(),
        "--prometheus-url",
        prom_url.as_str(),
        "--instance-id",
        "corr-topo",
        "--start-jitter-ms",
        "0",
        "--tempo-endpoint",
        tempo.url(),
        "--correlate-interval",
        QUIET,
        "--topology-drift-interval",
        "1",
        "--contract-interval",
        "1",
        "--modules",
        m.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let host = HostProcess::spawn_with_env(args, &[("TEMPO_ORG_ID", "tenant-7")]);

    let drift =
        wait_until("topology_drift", FIRST, || core.assessments(None, Some("topology_drift")).into_iter().next());
    assert_eq!(drift.service, "__topology__");
    assert_eq!(
        drift.data,
        json!({"declared_not_observed": [],
               "observed_not_declared": [{"source": "ledger", "target": "ledger-db"}, {"source": "rates", "target": "fx-feed"}],
               "guarantee_mismatches": [], "total_declared": 2, "total_observed": 3, "drift_detected": true}),
        "host log:\n{}",
        host.log_tail(30)
    );
    let reqs = tempo.requests();
    let qr = reqs.iter().find(|r| r.path == "/api/metrics/query_range").expect("a query_range call");
    assert_eq!(qr.header("x-scope-orgid"), Some("tenant-7"));
    assert_eq!(qr.query["step"], "180s");
    let span: i64 = qr.query["end"].parse::<i64>().unwrap() - qr.query["start"].parse::<i64>().unwrap();
    assert!((3599..=3600).contains(&span), "{:?}", qr.query);
    assert!(qr.query["q"].ends_with("&& span.kind = server } | count_over_time() by (resource.service.name)"));
    assert!(qr.query["q"].contains(r#"resource.service.name = "ledger""#), "{:?}", qr.query);
    let search = reqs.iter().find(|r| r.path == "/api/search").expect("a search call");
    assert_eq!(search.query["limit"], "1000");
    assert!(search.query["q"].ends_with("&& span.kind = client }"));

    let div = wait_until("contract_divergence for ledger", FIRST, || {
        core.assessments(Some("ledger"), Some("contract_divergence")).into_iter().next()
    });
    assert_eq!(
        div.data.to_string(),
        json!({"contract_name": "ledger-api", "divergences": [
            {"metric": "availability", "promised": 0.999, "observed": 0.995, "window": "30d"},
            {"metric": "latency_p99", "promised": "200ms", "observed": "350ms", "window": "30d"}],
            "total_promises": 2, "divergence_count": 2})
        .to_string()
    );
    // Promises kept (rates) and a malformed contract (sloppy: 99.9, "fast") emit nothing.
    wait_for("sloppy's contract rejected in the log", FIRST, || {
        host.log().lines().any(|l| l.contains("contract_availability_not_ratio") && l.contains("service=sloppy"))
    });
    assert!(core.assessments(Some("rates"), Some("contract_divergence")).is_empty());
    assert!(core.assessments(Some("sloppy"), Some("contract_divergence")).is_empty());

    for mode in [Mode::Down, Mode::Garbage] {
        tempo.set_mode(mode);
        let before = host.log().matches("topology_trace_query_failed").count();
        wait_for(&format!("topology_trace_query_failed with Tempo {mode:?}"), FIRST, || {
            host.log().matches("topology_trace_query_failed").count() > before + 1
        });
        let n = core.assessments(None, Some("topology_drift")).len();
        let c = core.assessments(Some("ledger"), Some("contract_divergence")).len();
        assert_stays("no topology_drift while Tempo is broken", Duration::from_secs(3), || {
            core.assessments(None, Some("topology_drift")).len() == n
        });
        // The other task keeps going.
        assert!(core.assessments(Some("ledger"), Some("contract_divergence")).len() > c, "contract stopped");
    }
}

/// Side by side with nthlayer-workers 3.0.3 on identical core contents and Prometheus: the
/// first snapshot and the contract divergence agree field by field (bar ids, close times and
/// the LLM-dependent `nl_summary`); the reference then keeps re-snapshotting the same breach,
/// nthlayer-host does not (docs/PARITY.md, correlate).
#[test]
fn parity_with_the_reference_on_the_same_core_contents() {
    use nthlayer_tests::host::ReferenceWorkers;
    let exporter = Exporter::start(
        [
            sample("contract_sli", &[("service", "ledger"), ("kind", "availability")], 0.995),
            sample("contract_sli", &[("service", "ledger"), ("kind", "latency_p99_seconds")], 0.35),
            sample("contract_sli", &[("service", "rates"), ("kind", "availability")], 0.999),
        ]
        .concat(),
    );
    let prom = Prometheus::start(PromOpts {
        scrape_targets: vec![exporter.target()],
        wait_for: vec![r#"contract_sli{service="ledger",kind="latency_p99_seconds"}"#.into()],
        ..Default::default()
    });
    let ref_core = Core::start(&manifests());
    let host_core = Core::start(&manifests());
    let at = iso_now();
    let seeds = [
        (
            "/verdicts",
            json!({"id": "vrd-breach-ledger-p1", "type": "quality_breach", "service": "ledger", "created_at": at}),
        ),
        (
            "/assessments",
            json!({"id": "asm-ledger-p1", "kind": "slo_status", "service": "ledger", "created_at": at,
                   "data": {"status": "EXHAUSTED"}}),
        ),
    ];
    for core in [&ref_core, &host_core] {
        for (path, r) in &seeds {
            post(core, path, r.clone());
        }
    }
    let quiet = 1_000_000_000;
    let mut reference = ReferenceWorkers::serve(
        &ref_core.url(),
        &prom.url(),
        &[("collect", quiet), ("drift", quiet), ("topology", quiet), ("correlate", 1), ("contract", 1)],
    );
    let m = correlate_module();
    let flags = ["--start-jitter-ms", "0", "--correlate-interval", "1", "--contract-interval", "1"];
    let mut host = HostProcess::serve_modules(&host_core.url(), &prom.url(), "corr-parity", &[m.as_str()], &flags);

    let first = |core: &Core| {
        let mut s = snapshots(core, "ledger");
        s.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        s.into_iter().next()
    };
    let r = wait_until("reference snapshot", FIRST, || first(&ref_core));
    let h = wait_until("host snapshot", FIRST, || first(&host_core));
    let strip = |a: &Assessment| {
        let mut d = a.data.clone();
        let w = d["window"].as_object_mut().unwrap();
        let opened = w.remove("opened_at").and_then(|v| v.as_str().and_then(nthlayer_tests::util::parse_iso));
        w.remove("closed_at");
        w.remove("duration_seconds");
        d.as_object_mut().unwrap().remove("nl_summary");
        (a.kind.clone(), a.service.clone(), opened, d)
    };
    assert_eq!(strip(&r), strip(&h));
    assert!(r.id.starts_with("csn-ledger-production-") && h.id.starts_with("csn-ledger-production-"));

    let div = |core: &Core| core.assessments(Some("ledger"), Some("contract_divergence")).into_iter().next();
    let rd = wait_until("reference contract_divergence", FIRST, || div(&ref_core));
    let hd = wait_until("host contract_divergence", FIRST, || div(&host_core));
    assert_eq!(rd.data.to_string(), hd.data.to_string());

    // The defect: the reference re-snapshots the same breach; the host never does.
    wait_for("reference re-snapshots the breach", FIRST, || snapshots(&ref_core, "ledger").len() >= 3);
    wait_cycles(&host_core, 5, "host after the reference's repeats");
    assert_eq!(snapshots(&host_core, "ledger").len(), 1);
    assert!(reference.terminate(Duration::from_secs(30)).success());
    assert!(host.terminate(Duration::from_secs(15)).success());
}
