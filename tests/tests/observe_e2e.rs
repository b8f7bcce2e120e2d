//! End-to-end: the real `nthlayer-host` binary with `observe.wasm`, against the real
//! nthlayer-core and a real (backfilled) Prometheus, in the canonical scenario.
//!
//! Needs `target/debug/nthlayer-host` (or `$NTHLAYER_HOST_BIN`) and `dist/modules/observe.wasm`
//! (or `$NTHLAYER_MODULES_DIR`). Expected numbers are what nthlayer-workers 3.0.3 posted for
//! the same scenario (see `harness.rs::reference_workers_observe_scenario`).

use std::collections::BTreeSet;
use std::time::Duration;

use nthlayer_tests::core::{Assessment, Core};
use nthlayer_tests::host::{gate, interval_args, HostProcess, FAST_OBSERVE};
use nthlayer_tests::parity::{diff, latest_by, report, service_slo_key};
use nthlayer_tests::scenario::{self, expected, Observe, CHECKOUT, FRAUD, PAYMENT, SERVICES};
use nthlayer_tests::util::{asm_seq, parse_iso, unix_now};
use nthlayer_tests::wait::{assert_stays, wait_for, wait_until};
use serde_json::{json, Value};

/// Generous: the first drift/topology cycles plus a few collect cycles.
const RECORDS: Duration = Duration::from_secs(90);
/// SIGTERM → exit.
const SHUTDOWN: Duration = Duration::from_secs(15);

fn fast() -> Vec<String> {
    interval_args(&FAST_OBSERVE)
}

fn serve(core: &Core, obs: &Observe, instance: &str) -> HostProcess {
    let extra = fast();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    HostProcess::serve(&core.url(), &obs.prometheus_url(), instance, &extra)
}

fn values(recs: &[Assessment]) -> Vec<Value> {
    recs.iter().map(Assessment::to_value).collect()
}

/// Wait until core holds slo_status for every scenario SLO, a portfolio, both drift signals
/// and a dependency graph for every service.
fn wait_all_observe_kinds(core: &Core) {
    wait_until("slo_status/portfolio/drift/dependency_graph", RECORDS, || {
        let keys = |k: &str| -> BTreeSet<String> {
            core.assessments(None, Some(k)).iter().map(|a| service_slo_key(&a.to_value())).collect()
        };
        let slo = keys("slo_status");
        let drift = keys("drift_signal");
        let dg = keys("dependency_graph");
        let ok = expected::slo_status().iter().all(|(k, _)| slo.contains(*k))
            && !keys("portfolio_status").is_empty()
            && expected::drift_signal().iter().all(|(k, _)| drift.contains(*k))
            && SERVICES.iter().all(|s| dg.contains(*s));
        ok.then_some(())
    });
}

/// Ids (and their asm sequence numbers) of every assessment currently in core.
fn all_ids(core: &Core) -> BTreeSet<String> {
    core.assessments(None, None).into_iter().map(|a| a.id).collect()
}

/// observe.collect's ids (slo_status + portfolio_status): one task, one sequence. Each task
/// keeps its own counter in its own state (docs/PARITY.md), so sequences are per task.
fn collect_ids(core: &Core) -> BTreeSet<String> {
    core.assessments(None, None)
        .into_iter()
        .filter(|a| a.kind == "slo_status" || a.kind == "portfolio_status")
        .map(|a| a.id)
        .collect()
}

fn max_seq(ids: &BTreeSet<String>) -> u64 {
    ids.iter().filter_map(|i| asm_seq(i)).max().unwrap_or(0)
}

/// observe.collect's persisted state in core, once it has the host's format.
fn wait_host_state(core: &Core) -> Value {
    wait_until("component-state/observe.collect with format nthlayer-host/1", RECORDS, || {
        let st = core.component_state("observe.collect")?;
        let h = st.get("hysteresis_state")?;
        (h.get("format") == Some(&json!("nthlayer-host/1"))).then(|| st.clone())
    })
}

#[test]
fn observe_posts_reference_records_heartbeats_and_stops_cleanly() {
    let obs = Observe::start();
    let core = Core::start(&scenario::manifests_dir());
    let instance = "host-e2e-1";
    let mut host = serve(&core, &obs, instance);
    wait_all_observe_kinds(&core);
    assert!(host.is_running(), "host exited early");

    // slo_status: exact numbers, producer, id format.
    let slo = core.assessments(None, Some("slo_status"));
    for a in &slo {
        assert_eq!(a.extra.get("producer"), Some(&json!("nthlayer-observe")), "{a:?}");
        assert!(asm_seq(&a.id).is_some(), "observe id format: {}", a.id);
    }
    let latest = latest_by(&values(&slo), service_slo_key);
    let mut diffs = Vec::new();
    for (key, data) in expected::slo_status() {
        for d in diff(&data, &latest[key]["data"]) {
            diffs.push(format!("slo_status {key}: {d}"));
        }
    }

    // portfolio_status: counts, and parent_ids = the slo_status ids of that cycle, in
    // submit order (services sorted, SLOs in manifest order).
    let pf = core.assessments(Some("__portfolio__"), Some("portfolio_status"));
    let p = &pf[0];
    assert!(asm_seq(&p.id).is_some());
    let mut pdata = p.data.clone();
    let parents = pdata.as_object_mut().unwrap().remove("parent_ids").expect("portfolio parent_ids");
    for d in diff(&expected::portfolio_status(), &pdata) {
        diffs.push(format!("portfolio_status: {d}"));
    }
    let by_id: std::collections::HashMap<&str, &Assessment> = slo.iter().map(|a| (a.id.as_str(), a)).collect();
    let parent_keys: Vec<String> = parents
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let a = by_id
                .get(id.as_str().unwrap())
                .unwrap_or_else(|| panic!("portfolio parent {id} is not a slo_status id"));
            service_slo_key(&a.to_value())
        })
        .collect();
    let want: Vec<String> = expected::slo_status().iter().map(|(k, _)| k.to_string()).collect();
    assert_eq!(parent_keys, want, "portfolio parent_ids");

    // drift_signal and dependency_graph: exact data.
    let drift = latest_by(&values(&core.assessments(None, Some("drift_signal"))), service_slo_key);
    assert_eq!(drift.len(), 2, "no drift signal without history: {drift:?}");
    for (key, data) in expected::drift_signal() {
        for d in diff(&data, &drift[key]["data"]) {
            diffs.push(format!("drift_signal {key}: {d}"));
        }
    }
    let c = &drift["checkout-api/availability"]["data"];
    assert_eq!(c["severity"], "critical");
    assert_eq!(c["pattern"], "gradual_decline");
    assert_eq!(c["days_until_exhaustion"], 60);
    let dg = latest_by(&values(&core.assessments(None, Some("dependency_graph"))), service_slo_key);
    for (key, data) in expected::dependency_graph() {
        for d in diff(&data, &dg[key]["data"]) {
            diffs.push(format!("dependency_graph {key}: {d}"));
        }
    }
    assert!(diffs.is_empty(), "{}", report(&diffs));

    // Heartbeats as the workers send them.
    let hb = wait_until("heartbeat", RECORDS, || core.heartbeat("workers", instance));
    assert_eq!(hb.health, "healthy");

    // SIGTERM: exit 0 within 15 s, and a final heartbeat at or after the signal (core's
    // `last_seen` is the server clock on this machine; same machine).
    let signalled_at = unix_now();
    let st = host.terminate(SHUTDOWN);
    assert!(st.success(), "exit status {st}");
    let after = core.heartbeat("workers", instance).unwrap().last_seen;
    assert!(
        parse_iso(&after).unwrap() >= signalled_at - 0.001,
        "no final heartbeat: last_seen {after} < SIGTERM at {signalled_at}"
    );
}

#[test]
fn state_survives_restart() {
    let obs = Observe::start_with(false);
    let core = Core::start(&scenario::manifests_dir());
    let instance = "host-e2e-restart";
    let mut host = serve(&core, &obs, instance);
    wait_for("first slo_status", RECORDS, || !core.assessments(None, Some("slo_status")).is_empty());
    let st = wait_host_state(&core);
    assert!(!st["hysteresis_state"].is_null());
    assert!(host.terminate(SHUTDOWN).success());
    // Only ids from cycles whose state was persisted count: observe.collect's, up to the
    // sequence its saved state says comes next.
    let first = collect_ids(&core);
    let seq1 = max_seq(&first);
    assert!(seq1 >= 1, "no asm ids: {first:?}");
    let saved_next =
        core.component_state("observe.collect").unwrap()["hysteresis_state"]["state"]["seq"].as_u64().unwrap();
    assert_eq!(saved_next, seq1 + 1, "saved state does not continue the sequence");

    let mut host = serve(&core, &obs, instance);
    let new = wait_until("new slo_status after restart", RECORDS, || {
        let now = collect_ids(&core);
        let new: BTreeSet<String> = now.difference(&first).cloned().collect();
        (!new.is_empty()).then_some(new)
    });
    let min_new = new.iter().filter_map(|i| asm_seq(i)).min().unwrap();
    assert!(
        min_new > seq1,
        "asm sequence restarted: first run reached {seq1}, second run began at {min_new} ({new:?})"
    );
    wait_host_state(&core);
    assert!(host.terminate(SHUTDOWN).success());
}

#[test]
fn gate_decisions_and_exit_codes() {
    let core = Core::start(&scenario::manifests_dir());
    let seeded = scenario::seed_slo_status(&core);

    // payment-api: 10 % consumed → 90 % remaining → APPROVED, exit 0.
    let (code, out, err) = gate(&core.url(), &["--service", PAYMENT]);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let v: Value = serde_json::from_str(&out).expect("gate stdout is JSON");
    assert_eq!(v["decision"], "APPROVED");
    assert_eq!(v["service"], PAYMENT);
    assert_eq!(v["tier"], "standard");
    assert_eq!(v["budget_remaining_pct"], json!(90.0));

    // fraud-detect (standard): 533 % consumed → 0 remaining → WARNING (no block), exit 0.
    let (code, out, err) = gate(&core.url(), &["--service", FRAUD]);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "WARNING");
    assert!(err.starts_with("WARNING:"), "stderr: {err}");

    // checkout-api (critical): avg(50, 300) → 0 remaining → BLOCKED, exit 2.
    let (code, out, err) = gate(&core.url(), &["--service", CHECKOUT, "--commit-sha", "abc123"]);
    assert_eq!(code, 2, "stdout {out}\nstderr {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"], "BLOCKED");
    assert_eq!(v["budget_remaining_pct"], json!(0.0));

    // --tier overrides the manifest: checkout as standard only warns.
    let (code, _, err) = gate(&core.url(), &["--service", CHECKOUT, "--tier", "standard"]);
    assert_eq!(code, 0, "{err}");

    // Unknown service (no --tier): the manifest fetch fails → exit 1.
    let (code, out, err) = gate(&core.url(), &["--service", "no-such-service"]);
    assert_eq!(code, 1, "stdout {out}\nstderr {err}");

    // The decisions were recorded as deploy_gate assessments.
    let g = core.assessments(Some(CHECKOUT), Some("deploy_gate"));
    let blocked = g.iter().find(|a| a.d("decision") == "blocked").expect("deploy_gate blocked for checkout-api");
    assert_eq!(blocked.d("commit_sha"), "abc123");
    let parents: BTreeSet<String> = blocked.parent_ids().into_iter().collect();
    let want: BTreeSet<String> = seeded[..3].iter().cloned().collect();
    assert_eq!(parents, want, "parent_ids = all fetched slo_status ids");
    let p = core.assessments(Some(PAYMENT), Some("deploy_gate"));
    assert_eq!(p[0].d("decision"), "approved");
}

#[test]
fn bad_module_files_are_skipped_logged_and_counted() {
    let obs = Observe::start_with(false);
    let core = Core::start(&scenario::manifests_dir());
    let junk_dir = tempfile::tempdir().unwrap();
    let junk = junk_dir.path().join("not-a-component.wasm");
    std::fs::write(&junk, b"this is not a wasm component\n").unwrap();
    // A real component that imports an interface no nthlayer host offers.
    let bad_import = nthlayer_tests::components::BAD_IMPORT.built();
    let observe = nthlayer_tests::host::observe_module().display().to_string();
    let junk_s = junk.display().to_string();
    let bad_import_s = bad_import.display().to_string();
    let extra = fast();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let mut host = HostProcess::serve_modules(
        &core.url(),
        &obs.prometheus_url(),
        "host-e2e-badmod",
        &[observe.as_str(), junk_s.as_str(), bad_import_s.as_str()],
        &extra,
    );
    wait_for("slo_status despite the bad module", RECORDS, || {
        core.assessments(Some(PAYMENT), Some("slo_status")).iter().any(|a| a.d("status") == "HEALTHY")
    });
    assert!(host.is_running(), "host must keep serving");
    let log = host.log();
    assert!(
        log.lines().any(|l| l.contains("not-a-component.wasm") && l.contains("not a WebAssembly component")),
        "no log line names the bad file and why:\n{}",
        host.log_tail(40)
    );
    assert!(
        log.lines().any(|l| l.contains("bad-import.wasm") && l.contains("evil:host/filesystem")),
        "no log line names the component and the import the host lacks:\n{}",
        host.log_tail(40)
    );
    // Counted where operators look: the heartbeat lists rejected files with the reason.
    let rejected = wait_until("heartbeat listing rejected files", RECORDS, || {
        core.heartbeat("workers", "host-e2e-badmod")
            .and_then(|h| h.state.get("rejected").cloned())
            .filter(|r| r.as_object().is_some_and(|o| o.len() == 2))
    });
    assert!(rejected.to_string().contains("evil:host/filesystem"), "{rejected}");
    assert!(host.terminate(SHUTDOWN).success());
}

#[test]
fn prometheus_down_gives_error_records_and_host_keeps_running() {
    let mut obs = Observe::start_with(false);
    let core = Core::start(&scenario::manifests_dir());
    let mut host = serve(&core, &obs, "host-e2e-promdown");
    let latest_avail = |core: &Core| -> Option<Assessment> {
        core.assessments(Some(CHECKOUT), Some("slo_status")).into_iter().find(|a| a.slo_name() == "availability")
    };
    wait_for("HEALTHY checkout availability", RECORDS, || {
        latest_avail(&core).is_some_and(|a| a.d("status") == "HEALTHY")
    });

    obs.prometheus.stop();
    let err = wait_until("ERROR slo_status", RECORDS, || latest_avail(&core).filter(|a| a.d("status") == "ERROR"));
    assert!(err.d("error").as_str().is_some_and(|s| !s.is_empty()), "ERROR record carries the error: {:?}", err.data);
    for k in ["current_sli", "burned_minutes", "percent_consumed"] {
        assert!(err.data.get(k).is_none(), "{k} must be absent on ERROR");
    }
    assert_eq!(err.d("objective"), &json!(99.9));
    assert_eq!(err.d("total_budget_minutes"), &json!(43.199999999997544));
    // Throughput has no query: still NO_DATA, not ERROR.
    let thr = core
        .assessments(Some(CHECKOUT), Some("slo_status"))
        .into_iter()
        .find(|a| a.slo_name() == "throughput")
        .unwrap();
    assert_eq!(thr.d("status"), "NO_DATA");
    // Portfolio: every service ERROR, counted in no bucket, collection_errors 0.
    let pf = wait_until("all-ERROR portfolio", RECORDS, || {
        core.assessments(None, Some("portfolio_status"))
            .into_iter()
            .next()
            .filter(|p| p.d("services").as_array().is_some_and(|s| s.iter().all(|x| x["overall_status"] == "ERROR")))
    });
    for k in ["healthy_count", "warning_count", "critical_count", "exhausted_count"] {
        assert_eq!(pf.d(k), 0, "{k}");
    }
    assert_eq!(pf.d("collection_errors"), 0);
    assert_stays("host keeps running without Prometheus", Duration::from_secs(5), || host.is_running());

    // Prometheus back → HEALTHY again.
    obs.prometheus.restart();
    wait_for("HEALTHY again after Prometheus restart", RECORDS, || {
        latest_avail(&core).is_some_and(|a| a.d("status") == "HEALTHY")
    });
    assert!(host.terminate(SHUTDOWN).success());
}

#[test]
fn core_down_at_startup_then_up_keeps_state() {
    let obs = Observe::start_with(false);
    let mut core = Core::start(&scenario::manifests_dir());
    let instance = "host-e2e-coredown";

    // A first run leaves state in core.
    let mut host = serve(&core, &obs, instance);
    wait_for("first slo_status", RECORDS, || !core.assessments(None, Some("slo_status")).is_empty());
    wait_host_state(&core);
    assert!(host.terminate(SHUTDOWN).success());
    let first = all_ids(&core);
    let seq1 = max_seq(&first);

    // Core down; the host starts and must wait, not exit.
    core.stop();
    let mut host = serve(&core, &obs, instance);
    assert_stays("host waits for core", Duration::from_secs(8), || host.is_running());

    // Core back (same store, same port): cycles start, continuing from the saved state.
    core.restart();
    let new = wait_until("slo_status once core is up", RECORDS, || {
        let now = core.try_assessments(None, Some("slo_status")).ok()?;
        let new: BTreeSet<String> = now.into_iter().map(|a| a.id).filter(|i| !first.contains(i)).collect();
        (!new.is_empty()).then_some(new)
    });
    let min_new = new.iter().filter_map(|i| asm_seq(i)).min().unwrap();
    assert!(min_new > seq1, "state lost: first run reached seq {seq1}, after core came up the host began at {min_new}");
    let hb = wait_until("heartbeat after core came up", RECORDS, || core.heartbeat("workers", instance));
    assert_eq!(hb.health, "healthy");
    assert!(host.terminate(SHUTDOWN).success());
}

#[test]
fn sigterm_with_core_down_exits_cleanly() {
    let obs = Observe::start_with(false);
    let mut core = Core::start(&scenario::manifests_dir());
    let mut host = serve(&core, &obs, "host-e2e-sigterm-coredown");
    wait_for("first slo_status", RECORDS, || !core.assessments(Some(PAYMENT), Some("slo_status")).is_empty());
    core.stop();
    // Let cycles start failing against the dead core (retries in flight), then stop.
    std::thread::sleep(Duration::from_secs(6));
    host.sigterm();
    // The reference needs ~7 s per core call once core is down; ours gives in-flight cycles
    // the grace period and makes single bounded attempts for state and the final heartbeat.
    let status = host.wait_with_timeout(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "host did not exit 0 after SIGTERM with core down:\n{}",
        host.log_tail(30)
    );
    assert!(host.log().contains("stopped"), "shutdown did not complete:\n{}", host.log_tail(30));
}
