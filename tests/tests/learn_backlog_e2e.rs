//! learn on a large backlog, end to end: the real `nthlayer-host` with only `learn.wasm`
//! against the real nthlayer-core, seeded directly (thousands of records, posted by a few
//! threads). Every cycle must stay inside its limits (no failed cycle) and the backlog must
//! drain, each record handled exactly once:
//! - 5,000 open verdicts: all past the expiry, the newest 100 also with a downstream
//!   execution (lineage). learn.outcome looks at a bounded number per cycle;
//! - 2,500 correlation snapshots over five services, 500 each, more than core's one-page
//!   answer (1000) for all services together, as correlate writes them: one per closed
//!   window of a domain, the domains interleaved in time. A handful of services is what a
//!   busy incident day looks like; 500 each keeps every one inside what core hands out per
//!   service (its newest 1000), which is the only way anyone, learn or this test, can reach
//!   them.
//!
//! The two tests run side by side (one binary), each with its own core and host.
//!
//! Needs `target/debug/nthlayer-host` and `dist/modules/learn.wasm` (scripts/build-modules).

use std::collections::BTreeSet;
use std::time::Duration;

use nthlayer_tests::core::Core;
use nthlayer_tests::host::{interval_args, HostProcess};
use nthlayer_tests::modules;
use nthlayer_tests::util::{fixtures_dir, unix_now};
use nthlayer_tests::wait::wait_until;
use serde_json::{json, Value};

const DRAIN: Duration = Duration::from_secs(600);
const SHUTDOWN: Duration = Duration::from_secs(15);
const DEAD_PROMETHEUS: &str = "http://127.0.0.1:9";
const DAY: f64 = 86_400.0;

fn iso(t: f64) -> String {
    let micros = (t * 1e6).round() as i64;
    chrono::DateTime::from_timestamp_micros(micros).unwrap().format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

/// POSTs every record, four connections at a time.
fn post_all(core: &Core, path: &str, records: Vec<Value>) {
    let chunk = records.len().div_ceil(4).max(1);
    std::thread::scope(|s| {
        for part in records.chunks(chunk) {
            s.spawn(move || {
                for r in part {
                    let (st, resp) = core.post_json(path, r).unwrap();
                    assert_eq!(st, 201, "POST {path} {r}: {resp}");
                }
            });
        }
    });
}

fn serve_learn(core: &Core, instance: &str, intervals: &[(&str, u64)]) -> HostProcess {
    let m = modules::LEARN.built().display().to_string();
    let mut extra = interval_args(intervals);
    extra.extend(
        ["--calibration-sample-rate", "0", "--retrospective-delay-seconds", "0", "--start-jitter-ms", "0"]
            .map(String::from),
    );
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    HostProcess::serve_modules(&core.url(), DEAD_PROMETHEUS, instance, &[m.as_str()], &extra)
}

/// `(ok, failed, slowest ms, most guest CPU ms)` of `task`'s cycles, from the host's log.
fn cycles(log: &str, task: &str) -> (usize, usize, u64, u64) {
    let field = |l: &str, k: &str| -> u64 {
        l.split_whitespace().find_map(|w| w.strip_prefix(&format!("{k}="))).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    let plain = strip_ansi(log);
    let mine: Vec<&str> = plain.lines().filter(|l| l.contains(&format!("task={task} "))).collect();
    let ok: Vec<&&str> = mine.iter().filter(|l| l.contains("cycle ok")).collect();
    let failed = mine.iter().filter(|l| l.contains("cycle failed")).count();
    let ms = ok.iter().map(|l| field(l, "ms")).max().unwrap_or(0);
    let cpu = ok.iter().map(|l| field(l, "cpu_ms")).max().unwrap_or(0);
    (ok.len(), failed, ms, cpu)
}

/// The log without its colour codes (`ESC [ … m`).
fn strip_ansi(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().take_while(|c| *c != 'm').for_each(drop);
        } else {
            out.push(c);
        }
    }
    out
}

fn state(core: &Core, task: &str) -> Option<Value> {
    core.component_state(task).and_then(|r| r.pointer("/hysteresis_state/state").cloned())
}

/// Every outcome_resolution in core, paged downwards by time (core answers at most 1000).
fn resolutions(core: &Core) -> Vec<Value> {
    let (mut out, mut seen) = (Vec::new(), BTreeSet::new());
    let mut before: Option<String> = None;
    loop {
        let mut q = vec![("type", "outcome_resolution".to_string()), ("limit", "1000".to_string())];
        if let Some(b) = &before {
            q.push(("created_before", b.clone()));
        }
        let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let page = core.get_json("/verdicts", &q).unwrap();
        let page = page.as_array().unwrap();
        let fresh: Vec<&Value> = page.iter().filter(|v| seen.insert(v["id"].as_str().unwrap().to_string())).collect();
        out.extend(fresh.iter().map(|v| (*v).clone()));
        if page.len() < 1000 || fresh.is_empty() {
            return out;
        }
        before = page.iter().filter_map(|v| v["created_at"].as_str()).min().map(str::to_string);
    }
}

fn triage(id: &str, t: f64) -> Value {
    json!({"id": id, "version": 1, "created_at": iso(t), "type": "triage", "service": "checkout",
           "producer": {"system": "nthlayer-respond"}, "judgment": {"action": "flag", "confidence": 0.7},
           "outcome": {"status": "pending"}, "parent_ids": []})
}

#[test]
fn five_thousand_open_verdicts_drain_in_bounded_cycles() {
    let core = Core::start(&fixtures_dir().join("learn/manifests"));
    let now = unix_now();
    let t0 = now - 8.0 * DAY;
    let n = 5000;
    let verdicts: Vec<Value> = (0..n).map(|i| triage(&format!("vrd-bl-{i:05}"), t0 + i as f64)).collect();
    let newest = verdicts[n - 1]["created_at"].as_str().unwrap().to_string();
    let executions: Vec<Value> = (n - 100..n)
        .map(|i| {
            json!({"id": format!("vrd-bl-exec-{i:05}"), "created_at": iso(t0 + i as f64 + 0.5), "type": "execution",
                   "service": "checkout", "parent_ids": [format!("vrd-bl-{i:05}")]})
        })
        .collect();
    post_all(&core, "/verdicts", verdicts);
    post_all(&core, "/verdicts", executions);

    let mut host = serve_learn(&core, "learn-backlog-outcome", &[("outcome", 1), ("retrospective", 3600)]);
    wait_until("the cursor at the newest verdict", DRAIN, || {
        assert!(host.is_running(), "host exited: {}", host.log_tail(30));
        state(&core, "learn.outcome").filter(|s| s["cursor"].as_str() >= Some(newest.as_str()))
    });
    host.terminate(SHUTDOWN);
    let (ok, failed, ms, cpu) = cycles(&host.log(), "learn.outcome");
    eprintln!("learn.outcome backlog of {n}: {ok} cycles, slowest {ms} ms, most guest CPU {cpu} ms");
    assert_eq!(failed, 0, "a cycle failed:\n{}", host.log_tail(40));
    assert!(ok >= 10, "5,000 look-ups take ten cycles of 500 at least: {ok}");

    let res = resolutions(&core);
    let mut parents: Vec<String> = res.iter().map(|r| r["parent_ids"][0].as_str().unwrap().to_string()).collect();
    parents.sort();
    parents.dedup();
    assert_eq!((res.len(), parents.len()), (n, n), "every verdict resolved once");
    let status = |s: &str| res.iter().filter(|r| r["outcome_status"] == s).count();
    // The executions are also triage's descendants, so lineage (confirmed) wins over expiry.
    assert_eq!((status("confirmed"), status("expired")), (100, n - 100));
    let signals = core.assessments(Some("checkout"), Some("calibration_signal"));
    let ids: BTreeSet<&str> = signals.iter().map(|s| s.id.as_str()).collect();
    assert_eq!((signals.len(), ids.len()), (100, 100), "one signal per lineage resolution");
}

fn snapshot(id: &str, service: &str, created: f64) -> Value {
    json!({"id": id, "created_at": iso(created), "kind": "correlation_snapshot", "service": service,
           "data": {"domain": {"service": service, "environment": "production"},
                    "window": {"opened_at": iso(created - 300.0), "closed_at": iso(created), "duration_seconds": 300.0,
                               "close_reason": "quiet"},
                    "event_count": 1, "event_types": {"quality_score": 1}, "peak_severity": 0.5,
                    "affected_services": [service], "environment_source": "default", "parent_ids": [],
                    "nl_summary": null}})
}

#[test]
fn twenty_five_hundred_snapshots_get_one_retrospective_each() {
    let core = Core::start(&fixtures_dir().join("learn/manifests"));
    let services = ["checkout", "fraud-detect", "payments", "ledger", "search"];
    let t0 = unix_now() - DAY;
    let snaps: Vec<Value> = (0..2500)
        .map(|i| {
            let svc = services[i % services.len()];
            snapshot(&format!("csn-{svc}-production-bl{i:05}"), svc, t0 + i as f64 * 10.0)
        })
        .collect();
    post_all(&core, "/assessments", snaps);

    let mut host = serve_learn(&core, "learn-backlog-retro", &[("outcome", 3600), ("retrospective", 1)]);
    let count = |core: &Core| -> usize {
        services.iter().map(|s| core.assessments(Some(s), Some("retrospective")).len()).sum()
    };
    wait_until("2,500 retrospectives", DRAIN, || {
        assert!(host.is_running(), "host exited: {}", host.log_tail(30));
        (count(&core) >= 2500).then_some(())
    });
    // A few more cycles: nothing more is written.
    let before = cycles(&host.log(), "learn.retrospective").0;
    wait_until("three more retrospective cycles", DRAIN, || {
        (cycles(&host.log(), "learn.retrospective").0 >= before + 3).then_some(())
    });
    host.terminate(SHUTDOWN);
    let (ok, failed, ms, cpu) = cycles(&host.log(), "learn.retrospective");
    eprintln!("learn.retrospective backlog of 2500: {ok} cycles, slowest {ms} ms, most guest CPU {cpu} ms");
    assert_eq!(failed, 0, "a cycle failed:\n{}", host.log_tail(40));
    for s in services {
        let retros = core.assessments(Some(s), Some("retrospective"));
        let of: BTreeSet<&str> = retros.iter().filter_map(|r| r.d("correlation_snapshot_id").as_str()).collect();
        assert_eq!((retros.len(), of.len()), (500, 500), "{s}: one retrospective per snapshot, none twice");
    }
    assert!(!host.log().contains("learn_snapshots_beyond_reach"));
}
