//! End-to-end: the real `nthlayer-host` with only `learn.wasm`, against the real nthlayer-core
//! seeded directly (learn's producers, correlate and respond, are not needed to test it).
//!
//! One core holds a whole incident (breach -> snapshot -> respond's verdicts with
//! `service: null` -> execution), one verdict per remaining resolution path, bad input, and
//! six correlation snapshots. The same contents go into a second core for the Python
//! reference (nthlayer-workers 3.0.3); the paths both implement are compared.
//!
//! Needs `target/debug/nthlayer-host` and `dist/modules/learn.wasm` (scripts/build-modules).

use std::collections::BTreeMap;
use std::time::Duration;

use nthlayer_tests::core::{Assessment, Core};
use nthlayer_tests::host::{interval_args, HostProcess, ReferenceWorkers};
use nthlayer_tests::modules;
use nthlayer_tests::util::{fixtures_dir, unix_now};
use nthlayer_tests::wait::{assert_stays, wait_until};
use serde_json::{json, Value};

const RECORDS: Duration = Duration::from_secs(90);
const SHUTDOWN: Duration = Duration::from_secs(15);
const DEAD_PROMETHEUS: &str = "http://127.0.0.1:9";

fn iso(t: f64) -> String {
    let micros = (t * 1e6).round() as i64;
    chrono::DateTime::from_timestamp_micros(micros).unwrap().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn post(core: &Core, path: &str, body: Value) {
    let (st, resp) = core.post_json(path, &body).unwrap();
    assert_eq!(st, 201, "POST {path} {body}: {resp}");
}

/// A full-shape (Verdict v1) pending verdict.
fn full(id: &str, t: f64, vtype: &str, service: Value, action: &str, conf: f64, producer: &str) -> Value {
    json!({"id": id, "version": 1, "created_at": iso(t), "type": vtype,
           "producer": {"system": producer, "instance": null, "model": null, "prompt_version": null},
           "subject": {"type": vtype, "ref": "INC-FRAUD-DETECT-1", "summary": "s", "agent": null, "service": null,
                       "environment": null, "content_hash": null},
           "judgment": {"action": action, "confidence": conf, "score": null, "dimensions": null, "reasoning": "r", "tags": null},
           "outcome": {"status": "pending", "resolution": null, "override": null, "ground_truth": null, "closed_at": null},
           "lineage": {"parent": null, "children": [], "context": []},
           "metadata": {"ttl": 7776000, "custom": {}}, "pipeline_latency_ms": null, "chain_depth": 0,
           "parent_ids": [], "service": service})
}

fn respond(id: &str, t: f64, role: &str, conf: f64, parents: &[&str], context: &[&str]) -> Value {
    let action = if conf < 0.3 { "escalate" } else { "flag" };
    let mut v = full(id, t, role, Value::Null, action, conf, "nthlayer-respond");
    v["parent_ids"] = json!(parents);
    v["lineage"]["context"] = json!(context);
    v["lineage"]["parent"] = json!(parents.first().filter(|_| parents.len() == 1));
    v
}

fn breach(id: &str, t: f64, service: &str) -> Value {
    json!({"id": id, "created_at": iso(t), "type": "quality_breach", "service": service,
           "producer": "nthlayer-measure", "data": {"slo_name": "reversal_rate", "current_value": 0.2, "target": 0.05}})
}

fn snapshot(id: &str, service: &str, created: f64, opened: f64, parents: &[&str], affected: &[&str]) -> Value {
    json!({"id": id, "created_at": iso(created), "kind": "correlation_snapshot", "service": service,
           "data": {"domain": {"service": service, "environment": "production"},
                    "window": {"opened_at": iso(opened), "closed_at": iso(created), "duration_seconds": created - opened,
                               "close_reason": "trigger"},
                    "event_count": parents.len() + 1, "event_types": {"quality_score": parents.len()},
                    "peak_severity": 0.9, "affected_services": affected, "environment_source": "default",
                    "parent_ids": parents, "nl_summary": null}})
}

fn slo_status(id: &str, t: f64, service: &str, status: &str) -> Value {
    json!({"id": id, "created_at": iso(t), "kind": "slo_status", "service": service, "producer": "nthlayer-observe",
           "data": {"slo_name": "availability", "objective": 99.9, "window": "30d", "status": status}})
}

/// An hour, in seconds.
const H: f64 = 3600.0;

/// Seeds `core`; every timestamp is relative to `now`, so two cores seeded with the same
/// `now` hold identical contents. `bad_input` adds a malformed outcome, which the reference
/// cannot survive (see the parity section of the test), and a parent cycle.
fn seed(core: &Core, now: f64, bad_input: bool) {
    let t0 = now - 3.0 * H;
    // The incident: breach -> snapshot -> respond's triage/investigation -> an execution.
    post(core, "/verdicts", breach("vrd-breach-fd-1", t0, "fraud-detect"));
    post(
        core,
        "/assessments",
        snapshot(
            "csn-fraud-detect-production-e2e00001",
            "fraud-detect",
            t0 + 10.0,
            t0 - 60.0,
            &["vrd-breach-fd-1"],
            &["fraud-detect"],
        ),
    );
    let ctx = ["csn-fraud-detect-production-e2e00001", "vrd-breach-fd-1"];
    post(core, "/verdicts", respond("vrd-resp-triage", t0 + 40.0, "triage", 0.0, &ctx, &ctx));
    post(core, "/verdicts", respond("vrd-resp-invest", t0 + 50.0, "investigation", 0.8, &["vrd-resp-triage"], &ctx));
    post(
        core,
        "/verdicts",
        json!({"id": "vrd-exec-1", "created_at": iso(t0 + 70.0), "type": "execution",
                                   "service": null, "parent_ids": ["vrd-resp-invest"]}),
    );
    // Divergence: an approval whose descendant was overridden.
    post(
        core,
        "/verdicts",
        full("vrd-div-1", t0 + 100.0, "approval", json!("checkout"), "approve", 0.9, "nthlayer-measure"),
    );
    let mut ov =
        full("vrd-div-1-review", t0 + 110.0, "approval", json!("checkout"), "approve", 0.6, "nthlayer-measure");
    ov["parent_ids"] = json!(["vrd-div-1"]);
    ov["outcome"]["status"] = json!("overridden");
    ov["outcome"]["override"] = json!({"by": "bob", "action": "reject"});
    post(core, "/verdicts", ov);
    // Calibration sampling: a reviewer's in-place answer.
    let mut cs = full("vrd-sampled-1", t0 + 120.0, "triage", json!("payments"), "flag", 0.7, "nthlayer-respond");
    cs["outcome"]["status"] = json!("overridden");
    cs["outcome"]["override"] = json!({"by": "alice", "action": "approve"});
    post(core, "/verdicts", cs);
    // Downstream signal: payments' SLO was CRITICAL at the breach and HEALTHY since.
    let tb = t0 + 130.0;
    post(core, "/verdicts", breach("vrd-breach-pay-1", tb, "payments"));
    post(core, "/assessments", slo_status("asm-e2e-pay-1", tb - 60.0, "payments", "CRITICAL"));
    post(core, "/assessments", slo_status("asm-e2e-pay-2", tb + 600.0, "payments", "HEALTHY"));
    // Expiry: eight days old, no signal.
    post(
        core,
        "/verdicts",
        full("vrd-old-1", now - 8.0 * 24.0 * H, "triage", json!("checkout"), "flag", 0.6, "nthlayer-respond"),
    );
    if bad_input {
        seed_bad_input(core, t0);
    }
    // Five more snapshots (checkout, the newest last) and one without a window.
    for i in 0..5 {
        let c = now - 2.0 * H + i as f64 * 60.0;
        let affected: &[&str] =
            if i == 4 { &["checkout", "fraud-detect", "payments", "ledger"] } else { &["checkout"] };
        post(
            core,
            "/assessments",
            snapshot(&format!("csn-checkout-production-e2e0000{i}"), "checkout", c, c - 300.0, &[], affected),
        );
    }
    let mut nowin =
        snapshot("csn-checkout-production-nowindow", "checkout", now - 2.5 * H, now - 2.6 * H, &[], &["checkout"]);
    nowin["data"].as_object_mut().unwrap().remove("window");
    post(core, "/assessments", nowin);
}

/// A malformed outcome and a parent cycle.
fn seed_bad_input(core: &Core, t0: f64) {
    let mut bad = full("vrd-bad-outcome", t0 + 140.0, "triage", json!("checkout"), "flag", 0.5, "nthlayer-respond");
    bad["outcome"] = json!("garbage");
    post(core, "/verdicts", bad);
    let mut c1 = full("vrd-cycle-a", t0 + 150.0, "triage", json!("checkout"), "flag", 0.5, "nthlayer-respond");
    c1["parent_ids"] = json!(["vrd-cycle-b"]);
    let mut c2 = full("vrd-cycle-b", t0 + 151.0, "triage", json!("checkout"), "flag", 0.5, "nthlayer-respond");
    c2["parent_ids"] = json!(["vrd-cycle-a"]);
    post(core, "/verdicts", c1);
    post(core, "/verdicts", c2);
}

/// verdict id -> (resolution_path, observed_outcome, service, calibration_delta) we expect.
fn expected_signals() -> BTreeMap<&'static str, (&'static str, &'static str, &'static str, Value)> {
    BTreeMap::from([
        ("vrd-breach-fd-1", ("lineage", "confirmed", "fraud-detect", Value::Null)),
        ("vrd-resp-triage", ("lineage", "confirmed", "fraud-detect", json!(1.0))),
        ("vrd-resp-invest", ("lineage", "confirmed", "fraud-detect", json!(0.2))),
        ("vrd-div-1", ("divergence", "overridden", "checkout", json!(0.9))),
        ("vrd-div-1-review", ("calibration_sampling", "overridden", "checkout", json!(0.6))),
        ("vrd-sampled-1", ("calibration_sampling", "overridden", "payments", json!(0.7))),
        ("vrd-breach-pay-1", ("downstream_signal", "confirmed", "payments", Value::Null)),
    ])
}

fn signals(core: &Core) -> Vec<Assessment> {
    core.assessments(None, Some("calibration_signal"))
}

fn resolutions(core: &Core) -> BTreeMap<String, Value> {
    core.verdicts(None, Some("outcome_resolution"))
        .into_iter()
        .map(|v| (v.parent_ids.unwrap_or_default().join(","), Value::Object(v.extra)))
        .collect()
}

fn serve_learn(core: &Core, instance: &str) -> HostProcess {
    let m = modules::LEARN.built().display().to_string();
    // One cycle of each task at start-up, then none for an hour: everything below must
    // happen in that one cycle.
    let mut extra = interval_args(&[("outcome", 3600), ("retrospective", 3600)]);
    extra.extend(
        ["--calibration-sample-rate", "1", "--retrospective-delay-seconds", "0", "--start-jitter-ms", "0"]
            .map(String::from),
    );
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    HostProcess::serve_modules(&core.url(), DEAD_PROMETHEUS, instance, &[m.as_str()], &extra)
}

fn cycles_ok(host: &HostProcess, task: &str) -> usize {
    host.log().lines().filter(|l| l.contains("cycle ok") && l.contains(task)).count()
}

#[test]
fn five_paths_signals_retrospectives_and_restart_without_duplicates() {
    let manifests = fixtures_dir().join("learn/manifests");
    let core = Core::start(&manifests);
    let now = unix_now();
    seed(&core, now, true);
    let mut host = serve_learn(&core, "learn-e2e-1");

    // --- learn.outcome: one signal per real resolution, each path at least once ---
    let want = expected_signals();
    let got = wait_until("calibration signals for every path", RECORDS, || {
        let s = signals(&core);
        (s.len() >= want.len()).then_some(s)
    });
    let mut by_verdict = BTreeMap::new();
    for s in &got {
        let vid = s.d("verdict_id").as_str().unwrap().to_string();
        assert!(by_verdict.insert(vid.clone(), s.clone()).is_none(), "two signals for {vid}");
    }
    assert_eq!(by_verdict.keys().map(String::as_str).collect::<Vec<_>>(), want.keys().copied().collect::<Vec<_>>());
    for (vid, (path, outcome, service, delta)) in &want {
        let s = &by_verdict[*vid];
        assert_eq!(s.d("resolution_path"), &json!(path), "{vid}: {s:?}");
        assert_eq!(s.d("observed_outcome"), &json!(outcome), "{vid}");
        assert_eq!(s.service, *service, "{vid}: service:null verdicts take the incident's service");
        assert_eq!(s.d("calibration_delta"), delta, "{vid}");
        assert!(s.id.starts_with(&format!("cal-{vid}-")), "{}", s.id);
    }

    // Outcomes: every resolution learn made is in core, expiry included (without a signal);
    // reviewed-in-place verdicts need none.
    let res = wait_until("outcome resolutions", RECORDS, || {
        let r = resolutions(&core);
        (r.len() >= 6).then_some(r)
    });
    let status = |parent: &str| res.get(parent).map(|r| r["outcome_status"].clone());
    assert_eq!(status("vrd-breach-fd-1"), Some(json!("confirmed")));
    assert_eq!(status("vrd-resp-triage"), Some(json!("confirmed")));
    assert_eq!(status("vrd-resp-invest"), Some(json!("confirmed")));
    assert_eq!(status("vrd-div-1"), Some(json!("overridden")));
    assert_eq!(status("vrd-breach-pay-1"), Some(json!("confirmed")));
    assert_eq!(status("vrd-old-1"), Some(json!("expired")));
    assert_eq!(res["vrd-old-1"]["resolution"], "No outcome signal within threshold");
    assert_eq!(res.len(), 6, "{res:#?}");
    assert!(!by_verdict.contains_key("vrd-old-1"), "expiry is not a quality signal");

    // --- learn.retrospective: all six snapshots with a window, in one cycle ---
    wait_until("the first retrospective cycle", RECORDS, || {
        (cycles_ok(&host, "learn.retrospective") >= 1).then_some(())
    });
    let retros = core.assessments(None, Some("retrospective"));
    assert_eq!(retros.len(), 6, "all written by the first cycle");
    assert_eq!(cycles_ok(&host, "learn.retrospective"), 1);
    let by_snap: BTreeMap<String, &Assessment> =
        retros.iter().map(|r| (r.d("correlation_snapshot_id").as_str().unwrap().to_string(), r)).collect();
    assert!(!by_snap.contains_key("csn-checkout-production-nowindow"));
    let incident = by_snap["csn-fraud-detect-production-e2e00001"];
    let ids: Vec<&str> = incident.d("timeline").as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["vrd-breach-fd-1", "vrd-resp-triage", "vrd-resp-invest", "vrd-exec-1"],
        "respond's verdicts in the timeline"
    );
    // learn.outcome runs alongside, so the breach and respond's two verdicts are resolved
    // either all or not yet; the execution carries no outcome.
    let cov = incident.d("outcome_coverage");
    assert_eq!(cov["total"], 4);
    let resolved = cov["resolved"].as_u64().unwrap();
    assert!(resolved <= 3 && resolved + cov["pending"].as_u64().unwrap() == 4, "{cov}");
    assert_eq!(incident.d("decisions_affected"), &json!(1));
    let wide = by_snap["csn-checkout-production-e2e00004"];
    assert_eq!(wide.d("trigger_service"), &json!("checkout"));
    assert_eq!(wide.d("declared_dependencies_by_service"), &json!({"checkout": ["fraud-detect"]}));
    assert_eq!(
        wide.d("recommendations"),
        &json!([{"type": "dependency_review", "detail": "Blast radius of 4 services suggests tight coupling"}])
    );

    // Bad input was logged with its id and skipped.
    let log = host.log();
    for needle in [
        "learn_outcome_malformed",
        "vrd-bad-outcome",
        "learn_lineage_cycle",
        "vrd-cycle-a",
        "learn_retrospective_skipped",
        "csn-checkout-production-nowindow",
    ] {
        assert!(log.contains(needle), "host log lacks {needle}");
    }

    // --- restart: state comes back from core; nothing is written twice ---
    let before = (signals(&core).len(), resolutions(&core).len(), core.assessments(None, Some("retrospective")).len());
    host.terminate(SHUTDOWN);
    let host = serve_learn(&core, "learn-e2e-2");
    wait_until("a cycle of each task after the restart", RECORDS, || {
        (cycles_ok(&host, "learn.outcome") >= 1 && cycles_ok(&host, "learn.retrospective") >= 1).then_some(())
    });
    assert_stays("no duplicate signal, outcome or retrospective", Duration::from_secs(3), || {
        (signals(&core).len(), resolutions(&core).len(), core.assessments(None, Some("retrospective")).len()) == before
    });

    // --- parity: the reference on identical contents, for the paths both implement ---
    let ref_core = Core::start(&manifests);
    // Without the malformed outcome: on it the reference's cycle dies (AttributeError outside
    // its try) after moving its cursor past it, so every older verdict is never resolved.
    seed(&ref_core, now, false);
    let mut reference = ReferenceWorkers::serve(
        &ref_core.url(),
        DEAD_PROMETHEUS,
        &[
            ("outcome", 1),
            ("retrospective", 1),
            ("collect", 1_000_000_000),
            ("drift", 1_000_000_000),
            ("topology", 1_000_000_000),
        ],
    );
    let ref_res = wait_until("the reference's outcome resolutions", RECORDS, || {
        let r = resolutions(&ref_core);
        (r.contains_key("vrd-div-1") && r.contains_key("vrd-old-1")).then_some(r)
    });
    let ref_sig = wait_until("the reference's divergence signal", RECORDS, || {
        signals(&ref_core).into_iter().find(|s| s.d("verdict_id") == &json!("vrd-div-1"))
    });
    // Same signal data for divergence; same outcome for expiry.
    assert_eq!(ref_sig.data, by_verdict["vrd-div-1"].data);
    assert_eq!(ref_sig.service, by_verdict["vrd-div-1"].service);
    for k in ["outcome_status", "resolution"] {
        assert_eq!(ref_res["vrd-old-1"][k], res["vrd-old-1"][k]);
        assert_eq!(ref_res["vrd-div-1"][k], res["vrd-div-1"][k]);
    }
    // Intended differences (docs/PARITY.md): the reference has no sampling or downstream path,
    // skips measure's breaches, and loses respond's signals to HTTP 500.
    let ref_paths: Vec<String> =
        signals(&ref_core).iter().map(|s| s.d("verdict_id").as_str().unwrap().to_string()).collect();
    assert_eq!(ref_paths, ["vrd-div-1"], "the reference emits only the divergence signal here");
    assert!(ref_res.contains_key("vrd-resp-triage"), "the reference resolves respond's verdict by lineage…");
    assert!(
        reference.log().contains("calibration_signal_submit_failed"),
        "…and loses its signal (service: null, HTTP 500)"
    );
    reference.terminate(SHUTDOWN);
    // The reference writes one retrospective, for the newest snapshot, and skips the rest;
    // for a snapshot without incident verdicts both write the same data.
    let ref_retros = ref_core.assessments(None, Some("retrospective"));
    assert_eq!(ref_retros.len(), 1, "{ref_retros:#?}");
    assert_eq!(ref_retros[0].d("correlation_snapshot_id"), &json!("csn-checkout-production-e2e00004"));
    assert_eq!(ref_retros[0].data, wide.data, "retrospective of the same snapshot");
    assert_eq!(ref_retros[0].service, wide.service);
}
