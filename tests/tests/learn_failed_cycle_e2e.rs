//! A learn.outcome cycle that dies after it resolved outcomes, end to end: the real
//! `nthlayer-host` with only `learn.wasm`, the real nthlayer-core behind a loopback proxy
//! (tests/src/core_proxy.rs) that holds one `GET /verdicts/{id}/descendants` unanswered.
//!
//! Twenty lineage verdicts (each a signal and a resolution) and three expired ones (a
//! resolution only). The proxy holds the eleventh descendants look-up, so the cycle has
//! already posted signals and resolved outcomes when it hangs; the host is then SIGKILLed.
//! A hung call cannot fail the cycle on its wall limit here: the host cuts each call at the
//! cycle's deadline and learn treats the error as "still open", so the cycle would race the
//! deadline and might commit. A kill mid-cycle is the failure that cannot commit.
//!
//! Everything a scheduled cycle does to core is held and committed with it, so the killed
//! cycle must have delivered nothing: no `out-<id>`, no signal. The restarted host (same
//! state directory, the proxy passing everything) runs the cycle again: every verdict ends
//! with exactly one resolution and, on the lineage path, exactly one signal.
//!
//! Needs `target/debug/nthlayer-host` and `dist/modules/learn.wasm` (scripts/build-modules).

use std::collections::BTreeMap;
use std::time::Duration;

use nthlayer_tests::core::Core;
use nthlayer_tests::core_proxy::CoreProxy;
use nthlayer_tests::host::{interval_args, HostProcess};
use nthlayer_tests::modules;
use nthlayer_tests::util::{fixtures_dir, unix_now};
use nthlayer_tests::wait::wait_until;
use serde_json::{json, Value};

/// A hang guard, not a limit on speed.
const WAIT: Duration = Duration::from_secs(120);
const SHUTDOWN: Duration = Duration::from_secs(15);
const DEAD_PROMETHEUS: &str = "http://127.0.0.1:9";
const DAY: f64 = 86_400.0;
const INSTANCE: &str = "learn-failed-cycle";
const LINEAGE: usize = 20;
const EXPIRED: usize = 3;
/// The descendants look-up the proxy holds: ten verdicts were handled before it.
const STALL_AT: u64 = 11;

fn iso(t: f64) -> String {
    let micros = (t * 1e6).round() as i64;
    chrono::DateTime::from_timestamp_micros(micros).unwrap().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn post(core: &Core, body: Value) {
    let (st, resp) = core.post_json("/verdicts", &body).unwrap();
    assert_eq!(st, 201, "POST /verdicts {body}: {resp}");
}

fn triage(id: &str, t: f64) -> Value {
    json!({"id": id, "version": 1, "created_at": iso(t), "type": "triage", "service": "checkout",
           "producer": {"system": "nthlayer-respond"}, "judgment": {"action": "flag", "confidence": 0.7},
           "outcome": {"status": "pending"}, "parent_ids": []})
}

/// The verdict ids learn resolves: lineage ones (confirmed, with a signal) and expired ones.
fn seed(core: &Core) -> (Vec<String>, Vec<String>) {
    let now = unix_now();
    let t0 = now - 2.0 * DAY;
    let lineage: Vec<String> = (0..LINEAGE).map(|i| format!("vrd-lf-{i:02}")).collect();
    for (i, id) in lineage.iter().enumerate() {
        post(core, triage(id, t0 + i as f64 * 10.0));
        post(
            core,
            json!({"id": format!("vrd-lf-exec-{i:02}"), "created_at": iso(t0 + i as f64 * 10.0 + 1.0),
                   "type": "execution", "service": "checkout", "parent_ids": [id]}),
        );
    }
    let expired: Vec<String> = (0..EXPIRED).map(|i| format!("vrd-lf-old-{i}")).collect();
    for (i, id) in expired.iter().enumerate() {
        post(core, triage(id, now - 8.0 * DAY + i as f64));
    }
    (lineage, expired)
}

fn serve_learn(core_url: &str) -> HostProcess {
    let m = modules::LEARN.built().display().to_string();
    let mut extra = interval_args(&[("outcome", 1), ("retrospective", 3600)]);
    extra.extend(
        ["--calibration-sample-rate", "0", "--retrospective-delay-seconds", "0", "--start-jitter-ms", "0"]
            .map(String::from),
    );
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    HostProcess::serve_modules(core_url, DEAD_PROMETHEUS, INSTANCE, &[m.as_str()], &extra)
}

/// Resolved verdict id -> how many outcome_resolutions core holds for it.
fn resolutions(core: &Core) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for v in core.verdicts(None, Some("outcome_resolution")) {
        for p in v.parent_ids.unwrap_or_default() {
            *out.entry(p).or_insert(0) += 1;
        }
    }
    out
}

/// Verdict id -> how many calibration signals core holds for it.
fn signals(core: &Core) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for s in core.assessments(None, Some("calibration_signal")) {
        *out.entry(s.d("verdict_id").as_str().unwrap_or("?").to_string()).or_insert(0) += 1;
    }
    out
}

fn outcome_cycles_ok(host: &HostProcess) -> usize {
    host.log().lines().filter(|l| l.contains("cycle ok") && l.contains("learn.outcome")).count()
}

#[test]
fn a_killed_outcome_cycle_delivers_nothing_and_the_next_one_everything_once() {
    let core = Core::start(&fixtures_dir().join("learn/manifests"));
    let (lineage, expired) = seed(&core);
    let proxy = CoreProxy::start(&core.url());
    proxy.stall_nth(STALL_AT, |method, path| method == "GET" && path.contains("/descendants"));

    // --- the cycle hangs on a look-up after it posted signals and resolved outcomes ---
    let mut host = serve_learn(proxy.url());
    wait_until("the descendants look-up held", WAIT, || {
        assert!(host.is_running(), "host exited: {}", host.log_tail(30));
        (proxy.stalled() == 1).then_some(())
    });
    let posted = host.log().matches("learn_calibration_signal").count();
    assert!(posted > 0, "the cycle had made no signal before it hung:\n{}", host.log_tail(40));
    host.kill();
    proxy.release();
    assert_eq!(outcome_cycles_ok(&host), 0, "a cycle committed before the kill:\n{}", host.log_tail(40));
    eprintln!("killed cycle: {posted} signals posted (held) before the hang");
    // Nothing of the killed cycle reached core: no resolution without its signal, no signal.
    assert_eq!(resolutions(&core), BTreeMap::new(), "the killed cycle's resolutions reached core");
    assert_eq!(signals(&core), BTreeMap::new(), "the killed cycle's signals reached core");

    // --- the restarted host (same state directory) runs the cycle again and commits ---
    let mut host = serve_learn(proxy.url());
    let all = LINEAGE + EXPIRED;
    wait_until("every verdict resolved", WAIT, || {
        assert!(host.is_running(), "host exited: {}", host.log_tail(30));
        (resolutions(&core).len() >= all && signals(&core).len() >= LINEAGE).then_some(())
    });
    // A few more cycles: they find everything settled and write nothing again.
    let before = outcome_cycles_ok(&host);
    wait_until("three more outcome cycles", WAIT, || (outcome_cycles_ok(&host) >= before + 3).then_some(()));
    host.terminate(SHUTDOWN);

    let once = |ids: &[String]| -> BTreeMap<String, usize> { ids.iter().map(|id| (id.clone(), 1)).collect() };
    let every: Vec<String> = lineage.iter().chain(&expired).cloned().collect();
    assert_eq!(resolutions(&core), once(&every), "one resolution per verdict, none twice, none missing");
    assert_eq!(signals(&core), once(&lineage), "one signal per lineage resolution, none twice, none missing");
    let statuses: BTreeMap<String, String> = core
        .verdicts(None, Some("outcome_resolution"))
        .into_iter()
        .map(|v| {
            (
                v.parent_ids.unwrap_or_default().join(","),
                v.extra.get("outcome_status").and_then(Value::as_str).unwrap_or("?").to_string(),
            )
        })
        .collect();
    for id in &lineage {
        assert_eq!(statuses[id], "confirmed", "{id}");
    }
    for id in &expired {
        assert_eq!(statuses[id], "expired", "{id}");
    }
    assert_eq!(proxy.stalled(), 0);
}
