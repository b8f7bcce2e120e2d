//! The outbox's delivery end to end (docs/OUTBOX.md "Delivery"), with the real
//! `nthlayer-host`, the real nthlayer-core behind a loopback proxy that makes it fail on cue
//! (tests/src/core_proxy.rs), and the spooler test component:
//! - core answering 500 for two minutes (`NTHLAYER_TEST_500_SECONDS`, as core 4.0.1 does for
//!   any store error): every record reaches core exactly once, nothing is set aside;
//! - a record core refuses (400) is set aside and listed by `outbox list`; one is requeued
//!   with a corrected body while the host serves and reaches core, another is dropped and
//!   never does;
//! - a 50,000-record backlog (core refusing writes while `spooler-flood` commits them) drains
//!   completely after a restart with no further commits: delivery never waits for one.
//!
//! The three overlap: one binary, independent cores, hosts and state directories.
//! Needs `target/debug/nthlayer-host` and `scripts/build-modules` output.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::core_proxy::{CoreProxy, Mode};
use nthlayer_tests::host::{host_command, state_dir, HostProcess};
use nthlayer_tests::util::{fixtures_dir, venv_dir};
use nthlayer_tests::wait::{wait_for, wait_until};
use serde_json::{json, Value};

/// The spooler's constants (tests/components/spooler/src/lib.rs).
const RECORDS: u64 = 10;
const LAST: u64 = 30;
const FLOOD_RECORDS: u64 = 5_000;
const FLOOD_LAST: u64 = 10;
const WAIT: Duration = Duration::from_secs(300);
/// A hang guard for the backlog's drain, not a limit on its speed.
const DRAIN_GUARD: Duration = Duration::from_secs(3600);
const SHUTDOWN: Duration = Duration::from_secs(30);

fn serve(module: nthlayer_tests::Component, core_url: &str, instance: &str, extra: &[&str]) -> HostProcess {
    HostProcess::serve_spooler(&module.built(), core_url, instance, extra)
}

fn events(log: &str) -> Vec<Value> {
    log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

fn logged(host: &HostProcess, message: &str) -> usize {
    events(&host.log()).iter().filter(|e| e["fields"]["message"] == message).count()
}

fn core_state_n(core: &Core) -> Option<u64> {
    core.component_state("spooler")?.pointer("/hysteresis_state/state/n")?.as_u64()
}

/// The spooler's records in core's store: (cycle, i) -> how many, and whether fixed by hand.
/// Read from core's SQLite file (its API lists at most 1,000).
fn in_core(core: &Core) -> BTreeMap<(u64, u64), (u64, bool)> {
    let script = "import sqlite3, sys, json\n\
        db = sqlite3.connect(sys.argv[1])\n\
        rows = db.execute(\"SELECT json_extract(content, '$.data.cycle'), json_extract(content, '$.data.i'), \
        COUNT(*), MAX(COALESCE(json_extract(content, '$.data.fixed'), 0)) FROM assessments \
        WHERE kind = 'spool_probe' GROUP BY 1, 2\").fetchall()\n\
        print(json.dumps(rows))";
    let out = std::process::Command::new(venv_dir().join("bin/python"))
        .args(["-c", script])
        .arg(core.store_path())
        .output()
        .expect("run the venv's python");
    assert!(out.status.success(), "reading core's store: {}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<(Option<u64>, Option<u64>, u64, u64)> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter()
        .map(|(c, i, n, fixed)| {
            ((c.expect("record without data.cycle"), i.expect("record without data.i")), (n, fixed == 1))
        })
        .collect()
}

/// `nthlayer-host outbox <args…> --state-dir <instance's>`; stdout, or a panic with stderr.
fn outbox(instance: &str, args: &[&str]) -> String {
    let dir = state_dir(instance).display().to_string();
    let mut a = vec!["outbox"];
    a.extend_from_slice(args);
    a.extend(["--state-dir", dir.as_str()]);
    let o = host_command(&a);
    assert_eq!(o.code, 0, "outbox {args:?}: {}", o.stderr);
    o.stdout
}

fn set_aside(instance: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(&outbox(instance, &["list", "--json"])).unwrap().as_array().unwrap().clone()
}

/// As [`set_aside`], None until the host has made its spool.
fn try_set_aside(instance: &str) -> Option<Vec<Value>> {
    state_dir(instance).join("spool.db").exists().then(|| set_aside(instance))
}

fn all_delivered(got: &BTreeMap<(u64, u64), (u64, bool)>, cycles: u64, records: u64) -> bool {
    (1..=cycles).all(|c| (0..records).all(|i| got.contains_key(&(c, i))))
}

#[test]
fn core_answering_500_for_two_minutes_loses_nothing_and_sets_nothing_aside() {
    let outage: u64 = std::env::var("NTHLAYER_TEST_500_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(120);
    let core = Core::start(&fixtures_dir().join("manifests"));
    let proxy = CoreProxy::start(&core.url());
    let instance = "delivery-500";
    let mut host = serve(components::SPOOLER, proxy.url(), instance, &[]);
    wait_for("a first cycle in core", WAIT, || core_state_n(&core).is_some());

    proxy.set_mode(Mode::FailAll);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(outage) {
        assert!(host.is_running(), "host exited while core answered 500");
        std::thread::sleep(Duration::from_secs(1));
    }
    proxy.set_mode(Mode::Forward);
    let failed = proxy.failed();
    wait_until("every cycle in core after the 500s", WAIT, || {
        assert!(host.is_running(), "host exited");
        (core_state_n(&core) == Some(LAST) && all_delivered(&in_core(&core), LAST, RECORDS)).then_some(())
    });
    let aside = set_aside(instance);
    let set_aside_logged =
        logged(&host, "spooled entry set aside; kept in the spool's rejected table (nthlayer-host outbox list)");
    assert!(host.terminate(SHUTDOWN).success());
    eprintln!("outbox 500s: {outage} s of 500, {failed} requests answered 500, {} set aside", aside.len());
    assert!(failed > 0, "the proxy never answered 500");
    assert!(aside.is_empty(), "entries set aside after a transient outage: {aside:?}");
    assert_eq!(set_aside_logged, 0);
    let got = in_core(&core);
    assert_eq!(got.len() as u64, LAST * RECORDS, "records of cycles that never committed are in core");
    assert!(got.values().all(|(n, _)| *n == 1), "a record reached core twice");
}

/// The two records core refuses: cycle 2's i = 3 (to be fixed) and i = 4 (to be dropped).
fn refused(v: &Value) -> bool {
    let d = |k: &str| v.pointer(&format!("/data/data/{k}")).cloned();
    d("cycle") == Some(json!(2)) && matches!(d("i"), Some(i) if i == 3 || i == 4) && d("fixed") != Some(json!(true))
}

#[test]
fn a_refused_record_is_set_aside_listed_and_requeued_fixed_or_dropped_while_the_host_serves() {
    let core = Core::start(&fixtures_dir().join("manifests"));
    let proxy = CoreProxy::start_refusing(&core.url(), refused);
    let instance = "delivery-400";
    let mut host = serve(components::SPOOLER, proxy.url(), instance, &[]);
    let aside = wait_until("two entries set aside and the rest in core", WAIT, || {
        assert!(host.is_running(), "host exited");
        let aside = try_set_aside(instance)?;
        (aside.len() == 2 && core_state_n(&core) == Some(LAST)).then_some(aside)
    });
    let mut by_i = BTreeMap::new();
    for a in &aside {
        assert_eq!(a["status"], 400, "{a}");
        assert_eq!(a["task"], "spooler", "{a}");
        assert!(a["error"].as_str().unwrap().contains("assessment_invalid"), "{a}");
        let id = a["id"].as_i64().unwrap().to_string();
        let full: Value = serde_json::from_str(&outbox(instance, &["show", &id])).unwrap();
        assert_eq!(full["error"]["error"], "assessment_invalid", "{full}");
        assert_eq!(full["record_id"], a["record_id"]);
        by_i.insert(full["body"]["data"]["i"].as_u64().unwrap(), (id, full["body"].clone()));
    }
    let (fix_id, mut body) = by_i.remove(&3).expect("cycle 2's i=3 set aside");
    let (drop_id, _) = by_i.remove(&4).expect("cycle 2's i=4 set aside");

    // Fixed by hand, requeued while the host serves.
    body["data"]["fixed"] = json!(true);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body.to_string()).unwrap();
    let said = outbox(instance, &["requeue", &fix_id, "--body", &file.path().display().to_string()]);
    assert!(said.contains(&format!("requeued entry {fix_id}")), "{said}");
    let said = outbox(instance, &["drop", &drop_id]);
    assert!(said.contains(&format!("dropped entry {drop_id}")), "{said}");
    wait_for("the fixed record in core", WAIT, || in_core(&core).get(&(2, 3)).is_some_and(|(_, fixed)| *fixed));
    let left = set_aside(instance);
    let gone = host_command(&["outbox", "show", &drop_id, "--state-dir", &state_dir(instance).display().to_string()]);
    assert!(host.terminate(SHUTDOWN).success());
    assert!(left.is_empty(), "{left:?}");
    assert_ne!(gone.code, 0);
    assert!(gone.stderr.contains(&format!("no set-aside entry {drop_id}")), "{}", gone.stderr);
    let got = in_core(&core);
    assert!(!got.contains_key(&(2, 4)), "the dropped record reached core");
    assert_eq!(got.len() as u64, LAST * RECORDS - 1);
    assert!(got.values().all(|(n, _)| *n == 1), "a record reached core twice");
    assert_eq!(proxy.refused(), 2, "core was asked again for a set-aside record");
}

#[test]
fn a_backlog_of_50000_records_drains_completely_without_further_commits() {
    let total = FLOOD_RECORDS * FLOOD_LAST;
    let core = Core::start(&fixtures_dir().join("manifests"));
    // Core takes no write while the flood commits: every record waits in the spool.
    let proxy = CoreProxy::start(&core.url());
    proxy.set_mode(Mode::FailWrites);
    let instance = "delivery-backlog";
    let mut host = serve(components::SPOOLER_FLOOD, proxy.url(), instance, &[]);
    wait_for("the flood's last cycle committed", WAIT, || {
        assert!(host.is_running(), "host exited");
        events(&host.log()).iter().any(|e| e["fields"]["message"] == "cycle ok" && e["fields"]["emitted"] == 0)
    });
    assert!(host.terminate(SHUTDOWN).success());
    assert!(in_core(&core).is_empty(), "records reached core through a failing proxy");

    // Core takes writes again; the task runs once at start, then not for an hour: the
    // backlog drains with no commit to wake the sender.
    proxy.set_mode(Mode::Forward);
    let t0 = Instant::now();
    let mut host = serve(components::SPOOLER_FLOOD, proxy.url(), instance, &["--interval", "spooler=3600"]);
    wait_until("all 50,000 records in core", DRAIN_GUARD, || {
        assert!(host.is_running(), "host exited");
        let got = in_core(&core);
        (got.len() as u64 == total).then_some(())
    });
    let secs = t0.elapsed().as_secs_f64();
    let hb = wait_until("a heartbeat with an empty spool", WAIT, || {
        core.heartbeat("workers", instance).filter(|h| h.state["outbox"]["entries"] == 0)
    });
    let commits = logged(&host, "cycle ok");
    assert!(host.terminate(SHUTDOWN).success());
    eprintln!(
        "outbox backlog: {total} records drained in {secs:.0} s ({:.0} records/s), {commits} commits meanwhile",
        total as f64 / secs
    );
    assert_eq!(hb.state["outbox"]["rejected"], 0, "{:?}", hb.state["outbox"]);
    assert!(in_core(&core).values().all(|(n, _)| *n == 1), "a record reached core twice");
    assert!(set_aside(instance).is_empty());
    // The heartbeat says how delivery went: every record (and the state) counted once as
    // delivered by this run, with its lag, never more requests in flight than allowed.
    let pace = &hb.state["outbox"]["delivery"];
    eprintln!("outbox backlog: heartbeat delivery {pace}");
    assert!(pace["delivered_total"].as_u64().is_some_and(|n| n >= total), "{pace}");
    assert!(pace["max_lag_ms"].as_i64().is_some_and(|l| l > 0), "{pace}");
    let peak = pace["peak_in_flight"].as_u64().unwrap_or(0);
    assert!((1..=pace["concurrency"].as_u64().unwrap()).contains(&peak), "{pace}");
}
