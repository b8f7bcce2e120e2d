//! End-to-end: the real `nthlayer-host` with `measure.wasm` only, against the real
//! nthlayer-core and a real Prometheus (live judgment SLIs and ECE from an exporter, a
//! backfilled 30-day feedback-latency histogram). See `measure_scenario.rs` for the data.
//!
//! Short cadences make the 900 s threshold phase testable: `--measure-interval 2` and
//! `MEASURE_THRESHOLD_INTERVAL=2` (the reference's own knob), so re-arming takes three
//! in-bounds evaluations over at least 6 s.

use std::collections::BTreeMap;
use std::time::Duration;

use nthlayer_tests::core::{Core, Verdict};
use nthlayer_tests::host::{HostProcess, ReferenceWorkers};
use nthlayer_tests::measure_scenario::{manifests_dir, measure_module, MeasureStack, AGENT_A, AGENT_B, AGENT_C};
use nthlayer_tests::parity::{compare_keyed, oldest_by, report, Allowed};
use nthlayer_tests::wait::{assert_stays, wait_for, wait_until};
use serde_json::{json, Value};

const RECORDS: Duration = Duration::from_secs(60);
const SHUTDOWN: Duration = Duration::from_secs(20);
const ENV: [(&str, &str); 1] = [("MEASURE_THRESHOLD_INTERVAL", "2")];
const CAL_KEY: &str = "agent-a:calibration:e8d1ecdadaae";

fn serve(core: &Core, stack: &MeasureStack, instance: &str) -> HostProcess {
    let m = measure_module().display().to_string();
    HostProcess::serve_modules_env(
        &core.url(),
        &stack.prometheus_url(),
        instance,
        &[m.as_str()],
        &["--measure-interval", "2"],
        &ENV,
    )
}

fn verdicts(core: &Core, t: &str) -> Vec<Verdict> {
    core.verdicts(None, Some(t))
}

fn data(v: &Verdict) -> &Value {
    v.extra.get("data").unwrap_or(&Value::Null)
}

/// SLO breaches (vrd-breach-) and threshold breaches (vrd-tbreach-) of a service.
fn breaches(core: &Core, service: &str) -> (Vec<Verdict>, Vec<Verdict>) {
    verdicts(core, "quality_breach")
        .into_iter()
        .filter(|v| v.service.as_deref() == Some(service))
        .partition(|v| v.id.starts_with("vrd-breach-"))
}

fn jse_count(core: &Core, service: &str) -> usize {
    core.assessments(Some(service), Some("judgment_slo_evaluation")).len()
}

/// measure's own state, as the host packed it into core.
fn measure_state(core: &Core) -> Option<Value> {
    core.component_state("measure")?.get("hysteresis_state")?.get("state").cloned()
}

#[test]
fn breach_survives_restart_without_refiring_and_refires_after_recovery() {
    let stack = MeasureStack::start();
    let dir = manifests_dir(false);
    let core = Core::start(dir.path());
    let mut host = serve(&core, &stack, "measure-e2e-1");

    // reversal_rate 0.92 against 98.5 and ECE 0.08 over 0.05: one SLO breach, one threshold
    // breach, one autonomy change (threshold breaches do not govern by default).
    wait_for("SLO breach, threshold breach and autonomy change", RECORDS, || {
        let (slo, thr) = breaches(&core, AGENT_A);
        !slo.is_empty() && !thr.is_empty() && !verdicts(&core, "autonomy_change").is_empty()
    });
    let (slo, thr) = breaches(&core, AGENT_A);
    assert_eq!((slo.len(), thr.len()), (1, 1));
    assert_eq!(
        data(&slo[0]),
        &json!({"slo_name": "reversal_rate", "slo_key": "agent-a:reversal_rate", "severity": "high",
            "judgment_type": "reversal_rate", "target": 98.5, "current_value": 92.0})
    );
    let parent = &slo[0].parent_ids.as_ref().unwrap()[0];
    assert!(parent.starts_with("jse-agent-a-reversal_rate-"), "{parent}");
    assert!(core.assessments(Some(AGENT_A), None).iter().any(|a| &a.id == parent), "parent jse stored");
    assert_eq!(data(&thr[0])["threshold_key"], CAL_KEY);
    assert_eq!(
        data(&thr[0])["summary"],
        "calibration threshold breach on agent-a: maximum_expected_calibration_error 0.08 > 0.05"
    );
    let ac = verdicts(&core, "autonomy_change");
    assert_eq!(ac.len(), 1);
    assert_eq!(ac[0].parent_ids, Some(vec![slo[0].id.clone()]));
    assert_eq!(
        data(&ac[0]),
        &json!({"previous_level": "fully_autonomous", "new_level": "limited_autonomous", "breaching_slo_count": 1,
            "reason": "Autonomy reduced: 1 SLO/threshold breach(es)"})
    );

    // The open breach is in measure's persisted state before the restart.
    wait_for("breach decision persisted", RECORDS, || {
        measure_state(&core).is_some_and(|s| s["breach_decisions"].get("agent-a:reversal_rate").is_some())
    });

    // Restart: SIGTERM, start again on the same core.
    assert!(host.terminate(SHUTDOWN).success(), "clean exit on SIGTERM");
    let before = jse_count(&core, AGENT_A);
    let mut host = serve(&core, &stack, "measure-e2e-1");
    wait_for("three cycles after the restart", RECORDS, || jse_count(&core, AGENT_A) >= before + 6);
    let (slo, thr) = breaches(&core, AGENT_A);
    assert_eq!((slo.len(), thr.len()), (1, 1), "no breach re-fired after the restart");
    assert_eq!(verdicts(&core, "autonomy_change").len(), 1, "no second autonomy change after the restart");
    let newest = core.assessments(Some(AGENT_A), Some("judgment_slo_evaluation"));
    assert!(newest.iter().take(2).any(|a| a.d("status") == "breach"), "still evaluated as breach");

    // Recovery: the SLO clears at once; the threshold must be within for 3 runs over 6 s.
    stack.set_judgment(AGENT_A, "reversal_rate", 0.99);
    stack.set_ece(0.01);
    wait_for("recovered and re-armed", RECORDS, || {
        measure_state(&core).is_some_and(|s| {
            s["slo_status"]["agent-a:reversal_rate"] == "healthy"
                && s["breach_decisions"].get("agent-a:reversal_rate").is_none()
                && s["threshold_state"][CAL_KEY]["armed"] == true
        })
    });
    let st = measure_state(&core).unwrap();
    assert_eq!(st["autonomy_levels"][AGENT_A], "limited_autonomous", "recovery never raises autonomy");
    assert!(st["threshold_state"][CAL_KEY]["within_count"].as_u64().unwrap() >= 3);
    assert_eq!(verdicts(&core, "autonomy_change").len(), 1);

    // Re-breach: 0.97 consumes 100 % of budget (low: one step), ECE over its bound again.
    stack.set_judgment(AGENT_A, "reversal_rate", 0.97);
    stack.set_ece(0.09);
    wait_for("second SLO breach, threshold breach and autonomy change", RECORDS, || {
        let (slo, thr) = breaches(&core, AGENT_A);
        slo.len() == 2 && thr.len() == 2 && verdicts(&core, "autonomy_change").len() == 2
    });
    let (slo, thr) = breaches(&core, AGENT_A);
    assert_eq!(data(&slo[0])["severity"], "low");
    assert_eq!(
        data(&thr[0])["breaching_bounds"],
        json!([{"bound": "maximum_expected_calibration_error", "measured": 0.09, "limit": 0.05}])
    );
    let ac = verdicts(&core, "autonomy_change");
    assert_eq!(
        (data(&ac[0])["previous_level"].as_str(), data(&ac[0])["new_level"].as_str()),
        (Some("limited_autonomous"), Some("advisor"))
    );
    // And it stays at one each while the breach is open.
    assert_stays("no further breach while open", Duration::from_secs(5), || {
        breaches(&core, AGENT_A).0.len() == 2 && verdicts(&core, "autonomy_change").len() == 2
    });
    assert!(host.terminate(SHUTDOWN).success());
}

#[test]
fn prometheus_down_bad_input_and_latency_thresholds() {
    let mut stack = MeasureStack::start();
    let dir = manifests_dir(true);
    let core = Core::start(dir.path());
    let mut host = serve(&core, &stack, "measure-e2e-2");

    // Bad SLOs are skipped with a log line naming service and SLO; the valid one is evaluated.
    wait_for("agent-c audit_sampling evaluated and latency threshold breached", RECORDS, || {
        jse_count(&core, AGENT_C) >= 2 && !breaches(&core, AGENT_B).1.is_empty()
    });
    let c = core.assessments(Some(AGENT_C), Some("judgment_slo_evaluation"));
    assert!(c.iter().all(|a| a.slo_name() == "audit_sampling"), "only the valid SLO: {c:?}");
    let log = host.log();
    for slo in ["escalation", "outcomes"] {
        assert!(
            log.lines().any(|l| l.contains("measure_prometheus_failed") && l.contains(AGENT_C) && l.contains(slo)),
            "log line for {slo}:\n{}",
            host.log_tail(40)
        );
    }

    // Feedback latency from the backfilled buckets: p50 interpolated (2400 s, within 1h),
    // p90 beyond the 7200 s top bucket (a lower-bound breach of 2h); stability has no series.
    let jte = core.assessments(Some(AGENT_B), Some("judgment_threshold_evaluation"));
    let lat = jte.iter().find(|a| a.d("outcome")["type"] == "feedback_latency").expect("latency jte");
    let b = &lat.d("outcome")["bounds"];
    assert_eq!(b[0]["status"], "within");
    assert!((b[0]["measured"].as_f64().unwrap() - 2400.0).abs() < 1e-6, "p50 {}", b[0]["measured"]);
    assert_eq!(
        b[1],
        json!({"bound": "maximum_p90", "status": "breach", "measured": 7200.0, "limit": "2h", "reason": "lower_bound"})
    );
    let stab = jte.iter().find(|a| a.d("outcome")["type"] == "stability").expect("stability jte");
    assert_eq!(stab.d("outcome")["status"], "not_evaluable");
    assert_eq!(stab.d("outcome")["bounds"][0]["reason"], "no_data_source");
    let tb = &breaches(&core, AGENT_B).1[0];
    assert_eq!(
        data(tb)["summary"],
        "feedback_latency threshold breach on agent-b: maximum_p90 7200s >= 2h (lower bound)"
    );

    // Prometheus down: no evaluations, no crash, the open breach carried forward.
    wait_for("agent-a breach open", RECORDS, || !breaches(&core, AGENT_A).0.is_empty());
    stack.prometheus.stop();
    std::thread::sleep(Duration::from_secs(1));
    let jse_before = core.assessments(None, Some("judgment_slo_evaluation")).len();
    let cycles =
        |h: &HostProcess| h.log().lines().filter(|l| l.contains("cycle ok") && l.contains("measure.wasm")).count();
    let c0 = cycles(&host);
    wait_for("three measure cycles with Prometheus down", RECORDS, || cycles(&host) >= c0 + 3);
    assert!(host.is_running(), "host survived Prometheus going away");
    assert!(
        core.assessments(None, Some("judgment_slo_evaluation")).len() <= jse_before + 3,
        "no evaluations without Prometheus"
    );
    assert_eq!(measure_state(&core).unwrap()["slo_status"]["agent-a:reversal_rate"], "breach");

    // Back: evaluations resume, the breach is still the same one.
    stack.prometheus.restart();
    let n = jse_count(&core, AGENT_A);
    wait_for("evaluations resume", RECORDS, || jse_count(&core, AGENT_A) >= n + 2);
    assert_eq!(breaches(&core, AGENT_A).0.len(), 1, "no false transition after the outage");
    assert_eq!(verdicts(&core, "autonomy_change").len(), 1);
    assert!(host.terminate(SHUTDOWN).success());
}

/// Intended differences between the reference and the host for measure (docs/PARITY.md).
const ALLOWED: &[Allowed] = &[
    // Both compute p50 from `increase(…[30d])`, which Prometheus extrapolates from the query
    // time; the two processes query seconds apart, so the last bits may differ (checked
    // separately to 1e-9 relative).
    Allowed {
        kind: "judgment_threshold_evaluation",
        path: "data.outcome.bounds[0].measured",
        reason: "query-time extrapolation",
    },
    // The threshold breach carries the same outcome (seen in CI: 2399.9999999999995 vs
    // 2400.0000000000005).
    Allowed { kind: "quality_breach", path: "data.outcome.bounds[0].measured", reason: "query-time extrapolation" },
    // Every record the host forwards names the module and version that made it.
    Allowed { kind: "*", path: "emitted_by", reason: "producing module stamped by the host" },
];

fn by_kind(core: &Core) -> BTreeMap<&'static str, BTreeMap<String, Value>> {
    let asm = |k: &str, key: fn(&Value) -> String| {
        let recs: Vec<Value> = core.assessments(None, Some(k)).iter().map(|a| a.to_value()).collect();
        oldest_by(&recs, key)
    };
    let ver = |t: &str, key: fn(&Value) -> String| {
        let recs: Vec<Value> = verdicts(core, t).iter().map(|v| serde_json::to_value(v).unwrap()).collect();
        oldest_by(&recs, key)
    };
    let slo_key = |r: &Value| {
        format!("{}/{}", r["service"].as_str().unwrap_or("?"), r["data"]["slo_name"].as_str().unwrap_or("?"))
    };
    let tkey = |r: &Value| r["data"]["threshold_key"].as_str().unwrap_or("?").to_string();
    let qb_key = |r: &Value| {
        r["data"]["slo_key"].as_str().or_else(|| r["data"]["threshold_key"].as_str()).unwrap_or("?").to_string()
    };
    let svc = |r: &Value| r["service"].as_str().unwrap_or("?").to_string();
    BTreeMap::from([
        ("judgment_slo_evaluation", asm("judgment_slo_evaluation", slo_key)),
        ("judgment_threshold_evaluation", asm("judgment_threshold_evaluation", tkey)),
        ("quality_breach", ver("quality_breach", qb_key)),
        ("autonomy_change", ver("autonomy_change", svc)),
    ])
}

fn complete(m: &BTreeMap<&'static str, BTreeMap<String, Value>>) -> bool {
    m["judgment_slo_evaluation"].len() == 2
        && m["judgment_threshold_evaluation"].len() == 3
        && m["quality_breach"].len() == 3
        && m["autonomy_change"].len() == 1
}

#[test]
fn measure_payloads_match_reference() {
    let stack = MeasureStack::start();
    let dir = manifests_dir(false);
    let ref_core = Core::start(dir.path());
    let host_core = Core::start(dir.path());
    // The reference's observe tasks are quieted too; its measure runs every 2 s (the machine
    // has been up longer than that, so it runs on the first tick as well).
    let quiet = [("collect", 1_000_000_000), ("drift", 1_000_000_000), ("topology", 1_000_000_000), ("measure", 2)];
    let mut reference =
        ReferenceWorkers::serve_as_env("reference-measure", &ref_core.url(), &stack.prometheus_url(), &quiet, &ENV);
    let mut host = serve(&host_core, &stack, "host-measure-parity");

    let r = wait_until("reference measure records", RECORDS, || Some(by_kind(&ref_core)).filter(complete));
    let h = wait_until("host measure records", RECORDS, || Some(by_kind(&host_core)).filter(complete));
    assert!(reference.terminate(Duration::from_secs(30)).success());
    assert!(host.terminate(SHUTDOWN).success());

    let mut diffs = Vec::new();
    for (kind, recs) in &r {
        diffs.extend(compare_keyed(kind, recs, &h[kind], ALLOWED));
    }
    // Parent ids point at the record of the same kind and key on each side.
    for side in [&r, &h] {
        let qb = &side["quality_breach"]["agent-a:reversal_rate"];
        assert!(qb["parent_ids"][0].as_str().unwrap().starts_with("jse-agent-a-reversal_rate-"));
        assert_eq!(side["autonomy_change"][AGENT_A]["parent_ids"], json!([qb["id"]]));
    }
    // The p50 each side measured, in the threshold evaluation and in the breach it raised.
    let lat = |m: &BTreeMap<&str, BTreeMap<String, Value>>, kind: &str| -> f64 {
        let rec = m[kind].values().find(|v| v["data"]["outcome"]["type"] == "feedback_latency");
        rec.unwrap_or_else(|| panic!("{kind}: no feedback_latency outcome"))["data"]["outcome"]["bounds"][0]["measured"]
            .as_f64()
            .unwrap()
    };
    for kind in ["judgment_threshold_evaluation", "quality_breach"] {
        let (a, b) = (lat(&r, kind), lat(&h, kind));
        assert!(((a - b) / a).abs() < 1e-9, "{kind}: p50 {a} vs {b}");
    }
    assert!(diffs.is_empty(), "{}", report(&diffs));
}

/// Local state belongs to one core. One instance breaches against core A and stops; started
/// with the same instance id (same spool) against a fresh core B, it must not restore
/// measure's hysteresis from the spool (every breach "already fired"): B receives the
/// breach and the autonomy change, as it would from the reference (whose state is in core),
/// and the host's warning names the task and both cores.
#[test]
fn a_fresh_core_receives_the_breach_the_old_core_got() {
    let stack = MeasureStack::start();
    let dir = manifests_dir(false);
    let core_a = Core::start(dir.path());
    let mut host = serve(&core_a, &stack, "measure-e2e-cores");
    wait_for("breach and autonomy change on core A", RECORDS, || {
        !breaches(&core_a, AGENT_A).0.is_empty() && !verdicts(&core_a, "autonomy_change").is_empty()
    });
    wait_for("breach decision delivered to core A", RECORDS, || {
        measure_state(&core_a).is_some_and(|s| s["breach_decisions"].get("agent-a:reversal_rate").is_some())
    });
    assert!(host.terminate(SHUTDOWN).success(), "clean exit on SIGTERM");

    let core_b = Core::start(dir.path());
    let host = serve(&core_b, &stack, "measure-e2e-cores");
    wait_for("core B receives the breach and the autonomy change", RECORDS, || {
        !breaches(&core_b, AGENT_A).0.is_empty() && verdicts(&core_b, "autonomy_change").len() == 1
    });
    let marker = |c: &Core| {
        c.component_state("nthlayer-host.core-identity").and_then(|r| r["last_cursor"].as_str().map(str::to_string))
    };
    let (a, b) = (marker(&core_a).expect("core A marked"), marker(&core_b).expect("core B marked"));
    assert_ne!(a, b);
    let log = plain(&host.log());
    let warning = log
        .lines()
        .find(|l| l.contains("delivered to a core that no longer holds it") && l.contains("task=measure"))
        .unwrap_or_else(|| panic!("no warning naming the task:\n{}", host.log_tail(40)));
    for part in [core_a.url(), a, core_b.url(), b] {
        assert!(warning.contains(&part), "warning lacks {part}: {warning}");
    }
}

/// The log without its colour codes.
fn plain(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut rest = log;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        rest = rest[i..].find('m').map_or("", |j| &rest[i + j + 1..]);
    }
    out.push_str(rest);
    out
}
