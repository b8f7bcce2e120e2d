//! The durable outbox end to end (docs/OUTBOX.md), with the real `nthlayer-host`, the real
//! nthlayer-core (stopped and restarted on the same port and store) and real components:
//! - SIGKILL at random points while `spooler` (tests/components/spooler: ten records under
//!   fresh random ids per cycle, one cycle in four failing half-way) runs: after restarts,
//!   core holds every committed cycle's records exactly once, none of a failed attempt, and
//!   core's state never runs ahead of the records it has;
//! - core down for a minute (`NTHLAYER_TEST_OUTAGE_SECONDS`) while the real observe collects
//!   every 2 s: cycles keep committing from the last good manifests, and once core is back it
//!   has one portfolio per committed cycle, every cycle's records, each once, in order;
//! - start-up with core down and a tiny spool cap: the task runs from its local state at
//!   once, fills the spool, is refused further cycles (nothing dropped), and drains when core
//!   returns;
//! - a replay: a spool whose entries were delivered is put back as it was before delivery
//!   (what a crash between sending and removing leaves), and sending it again adds nothing
//!   to core — the ids were spooled with the records, core answers 409.
//!
//! Needs `target/debug/nthlayer-host` and `scripts/build-modules` output.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::host::{observe_module, state_dir, HostProcess, POSTED_LOG};
use nthlayer_tests::scenario::{self, Observe};
use nthlayer_tests::util::{asm_seq, fixtures_dir, parse_iso, unix_now};
use nthlayer_tests::wait::{wait_for, wait_until};
use serde_json::Value;

/// The spooler's constants (tests/components/spooler/src/lib.rs).
const RECORDS: u64 = 10;
const LAST: u64 = 30;
/// Loading (the first start compiles components) plus many cycles on a loaded machine.
const WAIT: Duration = Duration::from_secs(180);
const SHUTDOWN: Duration = Duration::from_secs(30);

fn serve_spooler(core: &Core, instance: &str, extra: &[&str]) -> HostProcess {
    HostProcess::serve_spooler(&components::SPOOLER.built(), &core.url(), instance, extra)
}

/// A random number from the standard library's randomly seeded hasher.
fn random(below: u64) -> u64 {
    std::collections::hash_map::RandomState::new().build_hasher().finish() % below
}

fn events(log: &str) -> Vec<Value> {
    log.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

fn field<'a>(e: &'a Value, key: &str) -> &'a str {
    e["fields"][key].as_str().unwrap_or_default()
}

/// The task's state as core holds it (`hysteresis_state.state`), if any.
fn core_state(core: &Core, task: &str) -> Option<Value> {
    let s = core.component_state(task)?.get("hysteresis_state")?.get("state")?.clone();
    (!s.is_null()).then_some(s)
}

/// The spooler's records in core: cycle -> the `i` of each record (with repeats).
fn by_cycle(core: &Core) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for a in core.assessments(Some("spooler"), Some("spool_probe")) {
        let (c, i) = (a.data["cycle"].as_u64().unwrap(), a.data["i"].as_u64().unwrap());
        m.entry(c).or_default().push(i);
    }
    for is in m.values_mut() {
        is.sort();
    }
    m
}

/// Every cycle `1..=upto` has its records exactly once; no other cycle has any.
fn assert_every_cycle_once(got: &BTreeMap<u64, Vec<u64>>, upto: u64) {
    let want: Vec<u64> = (0..RECORDS).collect();
    for c in 1..=upto {
        assert_eq!(got.get(&c), Some(&want), "cycle {c}: records in core (by i) are not exactly one set of {RECORDS}");
    }
    let extra: Vec<&u64> = got.keys().filter(|c| **c > upto).collect();
    assert!(extra.is_empty(), "records of cycles beyond the state ({upto}) are in core: {extra:?}");
}

fn complete(got: &BTreeMap<u64, Vec<u64>>, c: u64) -> bool {
    got.get(&c).is_some_and(|is| is.len() as u64 == RECORDS)
}

#[test]
fn sigkill_at_random_points_leaves_every_record_in_core_once_and_the_state_consistent() {
    let core = Core::start(&fixtures_dir().join("manifests"));
    let instance = "outbox-sigkill";
    let (mut kills, mut logs) = (0, Vec::new());
    while kills < 12 {
        let mut host = serve_spooler(&core, instance, &[]);
        std::thread::sleep(Duration::from_millis(300 + random(2500)));
        host.kill();
        kills += 1;
        logs.push(host.log());
        // Core's view at any moment: its state never runs ahead of the records it has (the
        // state is sent after its cycle's records, in one lane).
        let got = by_cycle(&core);
        let n = core_state(&core, "spooler").and_then(|s| s["n"].as_u64()).unwrap_or(0);
        for c in 1..=n {
            assert!(
                complete(&got, c),
                "after kill {kills}: core's state says {n} cycles but cycle {c} is incomplete: {got:?}"
            );
        }
        if n >= LAST {
            break;
        }
    }
    let mut host = serve_spooler(&core, instance, &[]);
    wait_until("every cycle of the spooler delivered", WAIT, || {
        assert!(host.is_running(), "host exited");
        let done = core_state(&core, "spooler").and_then(|s| s["n"].as_u64()) == Some(LAST);
        let got = by_cycle(&core);
        (done && (1..=LAST).all(|c| complete(&got, c))).then_some(())
    });
    assert!(host.terminate(SHUTDOWN).success());
    logs.push(host.log());
    assert_every_cycle_once(&by_cycle(&core), LAST);

    let ev: Vec<Value> = logs.iter().flat_map(|l| events(l)).collect();
    let failed = ev
        .iter()
        .filter(|e| field(e, "message") == "cycle failed; previous state kept, none of its records delivered")
        .count();
    let local =
        ev.iter().filter(|e| field(e, "message").starts_with("restored task state from the local spool")).count();
    let replays =
        ev.iter().filter(|e| field(e, "message") == "posted assessment" && e["fields"]["duplicate"] == true).count();
    eprintln!("outbox sigkill: {kills} kills, {failed} failed attempts, {local} local restores, {replays} replays core answered 409");
    assert!(local >= 1, "no restart restored the task's state from the local spool");
}

#[test]
fn core_down_for_a_minute_observe_keeps_producing_and_core_gets_every_cycle_once_in_order() {
    let outage: u64 = std::env::var("NTHLAYER_TEST_OUTAGE_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
    let obs = Observe::start_with(false);
    let mut core = Core::start(&scenario::manifests_dir());
    let instance = "outbox-outage";
    // Several requests in flight: a cycle's slo_status records go out side by side.
    let flags = [
        "--collect-interval",
        "2",
        "--drift-interval",
        "3600",
        "--topology-interval",
        "3600",
        "--log-format",
        "json",
        "--delivery-concurrency",
        "6",
    ];
    let observe = observe_module().display().to_string();
    let env = [("RUST_LOG", POSTED_LOG)];
    let mut host =
        HostProcess::serve_modules_env(&core.url(), &obs.prometheus_url(), instance, &[&observe], &flags, &env);
    wait_for("a first portfolio in core", WAIT, || !core.assessments(None, Some("portfolio_status")).is_empty());

    core.stop();
    let (down, t0) = (unix_now(), std::time::Instant::now());
    while t0.elapsed() < Duration::from_secs(outage) {
        assert!(host.is_running(), "host exited while core was down");
        std::thread::sleep(Duration::from_secs(1));
    }
    core.restart();
    let up = unix_now();
    let portfolios_in_outage = |core: &Core| {
        core.assessments(None, Some("portfolio_status"))
            .into_iter()
            .filter(|a| parse_iso(&a.created_at).is_some_and(|t| t > down && t < up))
            .count()
    };
    // Collect every 2 s: expect half the outage's cycles at least, on a loaded machine.
    let floor = (outage / 2 / 2) as usize;
    wait_for("the outage's portfolios delivered", WAIT, || portfolios_in_outage(&core) >= floor);
    assert!(host.terminate(SHUTDOWN).success());

    let ev = events(&host.log());
    let collect_ok =
        ev.iter().filter(|e| field(e, "message") == "cycle ok" && field(e, "task") == "observe.collect").count();
    let stale = ev.iter().filter(|e| field(e, "message") == "core cannot answer; serving the last good copy").count();
    let all = core.assessments(None, None);
    let portfolios: Vec<_> = all.iter().filter(|a| a.kind == "portfolio_status").collect();
    let in_outage = portfolios_in_outage(&core);
    eprintln!("outbox outage: {outage} s, {collect_ok} collect cycles committed, {} portfolios in core ({in_outage} made while core was down), {stale} reads served from the last good copy", portfolios.len());
    // Cycle for cycle: one portfolio per committed collect cycle, none missing, none twice.
    assert_eq!(portfolios.len(), collect_ok, "portfolios in core vs collect cycles committed");
    assert!(stale > 0, "no manifest read was served from the last good copy");
    // Every cycle's records: each portfolio's slo_status parents are all in core, and
    // collect's id sequence has no hole and no repeat.
    let ids: BTreeSet<&str> = all.iter().map(|a| a.id.as_str()).collect();
    for p in &portfolios {
        for parent in p.data["parent_ids"].as_array().unwrap() {
            assert!(ids.contains(parent.as_str().unwrap()), "portfolio {} names {parent}, which is not in core", p.id);
        }
    }
    let mut seqs: Vec<u64> = all
        .iter()
        .filter(|a| a.kind == "slo_status" || a.kind == "portfolio_status")
        .filter_map(|a| asm_seq(&a.id))
        .collect();
    seqs.sort();
    let (first, last) = (seqs[0], *seqs.last().unwrap());
    assert_eq!(seqs, (first..=last).collect::<Vec<_>>(), "collect's id sequence has holes or repeats");
    // Per-task order where it matters (a replay core answered 409 for is not a delivery):
    // a cycle's slo_status records may arrive in any order among themselves, but each
    // portfolio after every record made before it and before every record made after it —
    // so its parents are in core first and no cycle overtakes another.
    let posted: Vec<(u64, bool)> = ev
        .iter()
        .filter(|e| field(e, "message") == "posted assessment" && field(e, "task") == "observe.collect")
        .filter(|e| e["fields"]["duplicate"] != true)
        .filter_map(|e| Some((asm_seq(field(e, "id"))?, field(e, "kind") == "portfolio_status")))
        .collect();
    for (i, &(p, _)) in posted.iter().enumerate().filter(|(_, (_, portfolio))| *portfolio) {
        assert!(posted[..i].iter().all(|&(s, _)| s < p), "a record made after portfolio {p} was delivered before it");
        assert!(
            posted[i + 1..].iter().all(|&(s, _)| s > p),
            "a record made before portfolio {p} was delivered after it"
        );
    }
    let mut unique: Vec<u64> = posted.iter().map(|&(s, _)| s).collect();
    unique.sort();
    unique.dedup();
    assert_eq!((posted.len(), unique.len()), (seqs.len(), seqs.len()), "every collect record posted once");
    let overtaken = posted.windows(2).filter(|w| w[0].0 > w[1].0).count();
    eprintln!("outbox outage: {overtaken} slo_status deliveries overtook an earlier one of their cycle (order-free)");
}

#[test]
fn with_core_down_a_full_spool_refuses_cycles_loses_nothing_and_drains_when_core_returns() {
    let mut core = Core::start(&fixtures_dir().join("manifests"));
    let instance = "outbox-full";
    // About three cycles of records fill this spool.
    let cap = ["--spool-max-bytes", "4000"];
    let mut host = serve_spooler(&core, instance, &cap);
    wait_for("two cycles in core", WAIT, || core_state(&core, "spooler").is_some_and(|s| s["n"].as_u64() >= Some(2)));
    assert!(host.terminate(SHUTDOWN).success());

    // Start-up with core down: the task's state is in the local spool, so it runs at once.
    core.stop();
    let mut host = serve_spooler(&core, instance, &cap);
    let refused = |host: &HostProcess| {
        events(&host.log()).into_iter().any(|e| {
            field(&e, "message") == "cycle skipped by a before-cycle hook"
                && field(&e, "reason").starts_with("spool full")
        })
    };
    wait_for("cycles refused by the full spool", WAIT, || {
        assert!(host.is_running(), "host exited");
        refused(&host)
    });
    let ev = events(&host.log());
    assert!(
        ev.iter().any(|e| field(e, "message").starts_with("restored task state from the local spool")),
        "the task did not start from its local state"
    );
    let ok = |host: &HostProcess| events(&host.log()).iter().filter(|e| field(e, "message") == "cycle ok").count();
    let before = ok(&host);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(ok(&host), before, "cycles kept committing into a full spool");
    assert!(before > 0, "no cycle ran with core down");

    core.restart();
    wait_until("every cycle delivered after core returned", WAIT, || {
        assert!(host.is_running(), "host exited");
        let got = by_cycle(&core);
        let done = core_state(&core, "spooler").and_then(|s| s["n"].as_u64()) == Some(LAST);
        (done && (1..=LAST).all(|c| complete(&got, c))).then_some(())
    });
    let hb = wait_until("a heartbeat with an empty spool", WAIT, || {
        core.heartbeat("workers", instance).filter(|h| h.state["outbox"]["records"] == 0)
    });
    assert!(hb.state["outbox"]["full"].is_null(), "{:?}", hb.state["outbox"]);
    assert!(host.terminate(SHUTDOWN).success());
    assert_every_cycle_once(&by_cycle(&core), LAST);
}

/// Copies the files of one directory into another (the spool: spool.db and its WAL).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_replayed_spool_adds_nothing_to_core_because_ids_travel_with_the_records() {
    let mut core = Core::start(&fixtures_dir().join("manifests"));
    let instance = "outbox-replay";
    let mut host = serve_spooler(&core, instance, &[]);
    wait_for("a first cycle in core", WAIT, || core_state(&core, "spooler").is_some());
    // Core down until the spooler has made all its cycles: they wait in the spool.
    core.stop();
    wait_for("the spooler's last cycle committed", WAIT, || {
        assert!(host.is_running(), "host exited");
        events(&host.log()).iter().any(|e| field(e, "message") == "cycle ok" && e["fields"]["emitted"] == 0)
    });
    assert!(host.terminate(SHUTDOWN).success());
    let spool = state_dir(instance);
    let before = tempfile::tempdir().unwrap();
    copy_dir(&spool, before.path());

    core.restart();
    let mut host = serve_spooler(&core, instance, &[]);
    wait_until("every cycle delivered", WAIT, || {
        let got = by_cycle(&core);
        let done = core_state(&core, "spooler").and_then(|s| s["n"].as_u64()) == Some(LAST);
        (done && (1..=LAST).all(|c| complete(&got, c))).then_some(())
    });
    assert!(host.terminate(SHUTDOWN).success());
    let delivered = events(&host.log())
        .iter()
        .filter(|e| field(e, "message") == "posted assessment" && e["fields"]["duplicate"] != true)
        .count();

    // The spool as it was before any of that was delivered: everything is sent again.
    std::fs::remove_dir_all(&spool).unwrap();
    copy_dir(before.path(), &spool);
    let mut host = serve_spooler(&core, instance, &[]);
    let replayed = wait_until("the old spool sent again", WAIT, || {
        assert!(host.is_running(), "host exited");
        let dups = events(&host.log())
            .iter()
            .filter(|e| field(e, "message") == "posted assessment" && e["fields"]["duplicate"] == true)
            .count();
        (dups >= delivered).then_some(dups)
    });
    assert!(host.terminate(SHUTDOWN).success());
    eprintln!("outbox replay: {delivered} records delivered after the outage, {replayed} sent again, all answered 409");
    assert!(delivered > 0);
    assert_every_cycle_once(&by_cycle(&core), LAST);
}
