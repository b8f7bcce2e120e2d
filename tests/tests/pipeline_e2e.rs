//! The pipeline's first hop with real modules: measure's `quality_breach` wakes correlate.
//!
//! The real `nthlayer-host` serves `measure.wasm` and `correlate.wasm` against the real
//! nthlayer-core and a real Prometheus (the measure scenario, `measure_scenario.rs`).
//! correlate's interval is an hour, so after its start-up cycle only a wake can make it
//! run: when measure posts a breach through the host, correlate must close the breach's
//! window and post its `correlation_snapshot` within seconds. The latency from the breach's
//! `created_at` to the snapshot's is printed (the figure for docs/BENCH.md), not asserted.

use std::time::Duration;

use nthlayer_tests::core::Core;
use nthlayer_tests::host::HostProcess;
use nthlayer_tests::measure_scenario::{manifests_dir, measure_module, MeasureStack, AGENT_A};
use nthlayer_tests::modules;
use nthlayer_tests::util::parse_iso;
use nthlayer_tests::wait::{wait_for, wait_until};
use serde_json::Value;

const START: Duration = Duration::from_secs(90);
/// Generous on a loaded 2-core machine; with wake the snapshot follows in about a second,
/// without it correlate would not run again for an hour.
const WAKE: Duration = Duration::from_secs(60);

fn events(log: &str) -> Vec<Value> {
    log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

#[test]
fn a_breach_from_measure_wakes_correlate_which_snapshots_it_once() {
    let stack = MeasureStack::start();
    // Healthy first: reversal_rate within 98.5 and ECE within its 0.05 bound, so the
    // start-up cycles of both modules see nothing to report.
    stack.set_judgment(AGENT_A, "reversal_rate", 0.995);
    stack.set_ece(0.01);
    wait_for("Prometheus sees the healthy values", START, || {
        stack.value(&format!("test_judgment{{service=\"{AGENT_A}\",slo=\"reversal_rate\"}}")) == Some(0.995)
            && stack.value("gen_ai_calibration_ece") == Some(0.01)
    });
    let dir = manifests_dir(false);
    let core = Core::start(dir.path());
    let measure = measure_module().display().to_string();
    let correlate = modules::CORRELATE.built().display().to_string();
    let mut host = HostProcess::serve_modules(
        &core.url(),
        &stack.prometheus_url(),
        "pipeline-e2e",
        &[measure.as_str(), correlate.as_str()],
        &["--log-format", "json", "--measure-interval", "2", "--correlate-interval", "3600"],
    );

    // Both start-up cycles done (state saved), no breach yet.
    wait_for("measure and correlate ran their start-up cycles", START, || {
        assert!(host.is_running(), "host exited");
        core.component_state("measure").is_some_and(|s| !s["hysteresis_state"].is_null())
            && core.component_state("correlate").is_some_and(|s| !s["hysteresis_state"].is_null())
    });
    // (agent-b's feedback-latency threshold breaches from the start, by design of the
    // scenario; agent-a's reversal_rate is the SLO this test turns bad.)
    let slo_breach = |core: &Core| {
        core.verdicts(Some(AGENT_A), Some("quality_breach")).into_iter().find(|v| v.id.starts_with("vrd-breach-"))
    };
    assert!(slo_breach(&core).is_none(), "agent-a breached before its SLI went bad");

    // The SLI goes bad: measure breaches on its next cycle, and the breach wakes correlate.
    stack.set_judgment(AGENT_A, "reversal_rate", 0.92);
    let breach = wait_until("measure posts agent-a's quality_breach", WAKE, || slo_breach(&core));
    let snap = wait_until("correlate snapshots the breach", WAKE, || {
        assert!(host.is_running(), "host exited");
        core.assessments(Some(AGENT_A), Some("correlation_snapshot"))
            .into_iter()
            .find(|s| s.parent_ids().contains(&breach.id))
    });
    assert_eq!(snap.data["window"]["close_reason"], "trigger", "{}", snap.data);

    let ev = events(&host.log());
    let wakes: Vec<&Value> = ev
        .iter()
        .filter(|e| e["fields"]["message"] == "woken by a submitted record" && e["fields"]["task"] == "correlate")
        .collect();
    assert!(!wakes.is_empty(), "correlate's snapshot did not come from a wake (interval is 3600 s)");
    assert!(
        wakes.iter().any(|w| w["fields"]["by"].as_str().is_some_and(|b| b.starts_with("measure quality_breach"))),
        "no wake names measure's breach: {wakes:?}"
    );

    // Still one snapshot for the situation after more measure cycles (the breach stays open,
    // measure does not re-fire it, and correlate does not re-snapshot it).
    std::thread::sleep(Duration::from_secs(8));
    let snaps: Vec<_> = core
        .assessments(Some(AGENT_A), Some("correlation_snapshot"))
        .into_iter()
        .filter(|s| s.parent_ids().contains(&breach.id))
        .collect();
    assert_eq!(snaps.len(), 1, "one breach, one snapshot: {snaps:?}");

    let created = |s: &str| parse_iso(s).expect("core timestamps parse");
    let latency_ms = (created(&snap.created_at) - created(&breach.created_at)) * 1000.0;
    eprintln!("pipeline wake latency, measure breach created -> correlate snapshot created: {latency_ms:.0} ms");
    host.sigterm();
    assert!(host.wait_with_timeout(Duration::from_secs(20)).is_some_and(|s| s.success()), "host did not stop cleanly");
}
