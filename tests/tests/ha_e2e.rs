//! High availability end to end (docs/HA.md): real etcd members on loopback, the real
//! nthlayer-core, the real binary as several replicas, real components. The scenarios are
//! tests of one binary so they overlap; leases are 3 s to keep them short.
//! - three replicas running measure (open breach) and spooler: each task runs on exactly one;
//!   SIGKILL the leader of measure → another takes over, core gets no second
//!   `quality_breach`/`autonomy_change`; SIGSTOP the next leader past its lease → the third
//!   takes over; SIGCONT → the stale replica commits nothing (its counters in core's
//!   heartbeats do not move, core holds no duplicate);
//! - etcd quorum: one member of three lost → cycles go on; two lost → no replica starts a
//!   cycle (both report `lease_held: false` in core); members back → cycles resume; no
//!   record twice;
//! - the spool is per replica: the leader is SIGKILLed with committed cycles undelivered
//!   (core down); the next leader continues from the state the dead one fenced, and the dead
//!   one, restarted, delivers its spool: every cycle once in core, none twice, none lost;
//! - event wake across replicas: a breach delivered by one replica wakes the hourly
//!   subscriber that another one runs;
//! - shards: three replicas run measure as four shards over twelve services, each shard led
//!   by one replica; a fourth joins and takes its shards; one replica stops (SIGTERM) and one
//!   is SIGKILLed and their shards move to the others; through all of it no service is
//!   evaluated twice in one interval and no breach is posted twice.
//!
//! Needs `target/debug/nthlayer-host`, `scripts/build-modules` output and etcd
//! (`scripts/setup`).

use std::collections::BTreeMap;
use std::time::Duration;

use nthlayer_tests::components;
use nthlayer_tests::core::Core;
use nthlayer_tests::etcd::EtcdCluster;
use nthlayer_tests::host::HostProcess;
use nthlayer_tests::measure_scenario::{manifests_dir, measure_module, MeasureStack, AGENT_A};
use nthlayer_tests::util::{fixtures_dir, parse_iso, unix_now};
use nthlayer_tests::wait::{assert_stays, wait_for, wait_until};
use serde_json::Value;

/// The spooler's constants (tests/components/spooler/src/lib.rs).
const RECORDS: u64 = 10;
const LAST: u64 = 30;
/// Loading (the first start compiles components) plus many cycles on a loaded machine.
const WAIT: Duration = Duration::from_secs(180);
/// Short, to keep failovers quick; 3 s rather than 2 leaves a 1 s margin per etcd call on a
/// loaded CI machine (a call is bounded by half the 2 s renew deadline).
const LEASE: &str = "3";

fn replica(core: &Core, prometheus: &str, etcd: &EtcdCluster, instance: &str, modules: &[&str]) -> HostProcess {
    replica_with(core, prometheus, etcd, instance, modules, &[])
}

fn replica_with(
    core: &Core,
    prometheus: &str,
    etcd: &EtcdCluster,
    instance: &str,
    modules: &[&str],
    extra: &[&str],
) -> HostProcess {
    let endpoints = etcd.endpoints();
    let mut flags = vec![
        "--ha-etcd",
        endpoints.as_str(),
        "--ha-prefix",
        "/nthlayer-host/ha-e2e",
        "--ha-lease-seconds",
        LEASE,
        "--grant",
        "spooler=core,assessment:spool_probe",
        "--grant",
        "wake-emitter=core,verdict:quality_breach",
        "--grant",
        "wake-subscriber=core,assessment:correlation_snapshot",
        "--measure-interval",
        "2",
        "--failed-cycle-retry-seconds",
        "1",
        "--start-jitter-ms",
        "0",
        "--log-format",
        "json",
    ];
    flags.extend_from_slice(extra);
    HostProcess::serve_modules_env(
        &core.url(),
        prometheus,
        instance,
        modules,
        &flags,
        &[("MEASURE_THRESHOLD_INTERVAL", "2")],
    )
}

fn spooler() -> String {
    components::SPOOLER.built().display().to_string()
}

fn events(h: &HostProcess) -> Vec<Value> {
    h.log().lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).collect()
}

fn field<'a>(e: &'a Value, key: &str) -> &'a str {
    e["fields"][key].as_str().unwrap_or_default()
}

/// Cycles of `task` the replica committed ("cycle ok").
fn cycles(h: &HostProcess, task: &str) -> usize {
    events(h).iter().filter(|e| field(e, "message") == "cycle ok" && field(e, "task") == task).count()
}

fn count(hs: &[&HostProcess], task: &str) -> usize {
    hs.iter().map(|h| cycles(h, task)).sum()
}

/// A replica's HA section and task counters as core holds them (its last heartbeat).
fn heartbeat(core: &Core, instance: &str) -> Value {
    core.heartbeat("workers", instance).map(|h| h.state).unwrap_or(Value::Null)
}

fn pause(h: &HostProcess, sig: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    unsafe { libc::kill(h.pid().expect("running") as libc::pid_t, sig) };
}

/// The spooler's records in core: cycle -> the `i` of each record (with repeats).
fn by_cycle(core: &Core) -> BTreeMap<u64, Vec<u64>> {
    let mut m: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for a in core.assessments(Some("spooler"), Some("spool_probe")) {
        m.entry(a.data["cycle"].as_u64().unwrap()).or_default().push(a.data["i"].as_u64().unwrap());
    }
    m.values_mut().for_each(|is| is.sort());
    m
}

/// No (cycle, i) twice; with `upto`, every cycle 1..=upto complete.
fn assert_once(core: &Core, upto: Option<u64>) {
    let got = by_cycle(core);
    for (c, is) in &got {
        let mut d = is.clone();
        d.dedup();
        assert_eq!(&d, is, "cycle {c}: a record is in core twice (two replicas ran the cycle): {is:?}");
    }
    if let Some(upto) = upto {
        let want: Vec<u64> = (0..RECORDS).collect();
        for c in 1..=upto {
            assert_eq!(got.get(&c), Some(&want), "cycle {c}: not exactly one set of records in core: {got:?}");
        }
    }
}

fn breaches(core: &Core) -> (usize, usize) {
    let b = core.verdicts(None, Some("quality_breach"));
    let slo = b.iter().filter(|v| v.service.as_deref() == Some(AGENT_A) && v.id.starts_with("vrd-breach-")).count();
    (slo, core.verdicts(None, Some("autonomy_change")).len())
}

/// The one replica (index) that committed cycles of `task`; panics if several did.
fn leader(hs: &[&HostProcess], task: &str) -> usize {
    let ran: Vec<usize> = (0..hs.len()).filter(|i| cycles(hs[*i], task) > 0).collect();
    assert_eq!(ran.len(), 1, "task {task} ran on replicas {ran:?}, not exactly one");
    ran[0]
}

#[test]
fn one_replica_per_task_failover_on_sigkill_and_a_paused_leader_commits_nothing() {
    let etcd = EtcdCluster::start(3);
    let stack = MeasureStack::start();
    let dir = manifests_dir(false);
    let core = Core::start(dir.path());
    let (m, s) = (measure_module().display().to_string(), spooler());
    let mods = [m.as_str(), s.as_str()];
    let mut r: Vec<HostProcess> =
        (1..=3).map(|i| replica(&core, &stack.prometheus_url(), &etcd, &format!("ha-r{i}"), &mods)).collect();

    wait_for("the breach, its autonomy change and a few spooler cycles", WAIT, || {
        let (slo, auto) = breaches(&core);
        slo >= 1 && auto >= 1 && count(&r.iter().collect::<Vec<_>>(), "spooler") >= 3
    });
    let all: Vec<&HostProcess> = r.iter().collect();
    let first = leader(&all, "measure");
    leader(&all, "spooler");
    assert_eq!(breaches(&core), (1, 1), "one breach, one autonomy change");

    // SIGKILL measure's leader during the open breach.
    let killed = unix_now();
    r[first].kill();
    let rest: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    let second = wait_until("another replica runs measure", WAIT, || {
        rest.iter().copied().find(|i| cycles(&r[*i], "measure") > 0)
    });
    let started = cycles(&r[second], "measure");
    // Reported, not asserted (timing depends on the machine): kill -> first cycle there, and
    // the longest pause between measure's evaluations in core around it.
    let first_there = events(&r[second])
        .iter()
        .filter(|e| field(e, "message") == "cycle ok" && field(e, "task") == "measure")
        .filter_map(|e| e["timestamp"].as_str().and_then(parse_iso))
        .find(|t| *t > killed);
    eprintln!("failover (lease {LEASE} s, measure every 2 s): {:.2} s", first_there.unwrap_or(f64::NAN) - killed);
    wait_for("three measure cycles on the new leader", WAIT, || cycles(&r[second], "measure") >= started + 3);
    assert_eq!(breaches(&core), (1, 1), "the new leader continued from the handed-over state: nothing fired twice");
    let third = rest.into_iter().find(|i| *i != second).unwrap();
    assert_eq!(cycles(&r[third], "measure"), 0, "measure ran on one replica at a time");

    // SIGSTOP the new leader well past its lease; the third replica takes over.
    let stale = format!("ha-r{}", second + 1);
    let before = heartbeat(&core, &stale)["tasks"]["measure"]["ok"].as_u64().unwrap_or(0);
    pause(&r[second], libc::SIGSTOP);
    wait_for("the third replica runs measure", WAIT, || cycles(&r[third], "measure") >= 2);
    let stopped_at = cycles(&r[second], "measure");
    pause(&r[second], libc::SIGCONT);
    wait_for("the resumed replica knows it lost measure", WAIT, || {
        heartbeat(&core, &stale)["ha"]["led_by_others"]["measure"].is_string()
    });
    let now = cycles(&r[third], "measure");
    wait_for("three more measure cycles on the third replica", WAIT, || cycles(&r[third], "measure") >= now + 3);
    assert_eq!(cycles(&r[second], "measure"), stopped_at, "the stale replica committed a measure cycle after SIGCONT");
    let after = heartbeat(&core, &stale)["tasks"]["measure"]["ok"].as_u64().unwrap_or(0);
    assert!(
        after <= before + 1,
        "core's heartbeat of the stale replica counts new measure cycles: {before} -> {after}"
    );
    assert_eq!(breaches(&core), (1, 1), "no duplicate quality_breach / autonomy_change in core");
    assert_once(&core, None);
    let mut at: Vec<f64> = core
        .assessments(Some(AGENT_A), Some("judgment_slo_evaluation"))
        .iter()
        .filter_map(|a| parse_iso(&a.created_at))
        .collect();
    at.sort_by(f64::total_cmp);
    let gap = at.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    eprintln!("longest pause between measure's evaluations in core (kill and pause included): {gap:.2} s");
}

#[test]
fn quorum_lost_stops_every_replica_and_cycles_resume_with_it() {
    let mut etcd = EtcdCluster::start(3);
    let core = Core::start(&fixtures_dir().join("manifests"));
    let s = spooler();
    let r: Vec<HostProcess> =
        (1..=2).map(|i| replica(&core, "http://127.0.0.1:9", &etcd, &format!("ha-q{i}"), &[s.as_str()])).collect();
    let all: Vec<&HostProcess> = r.iter().collect();
    wait_for("spooler cycles", WAIT, || count(&all, "spooler") >= 3);

    etcd.kill(0);
    let n = count(&all, "spooler");
    wait_for("cycles go on with one etcd member of three down", WAIT, || count(&all, "spooler") >= n + 3);

    etcd.kill(1);
    etcd.wait_no_quorum(2);
    wait_for("both replicas report they hold no lease", WAIT, || {
        (1..=2).all(|i| heartbeat(&core, &format!("ha-q{i}"))["ha"]["lease_held"] == false)
    });
    let frozen = count(&all, "spooler");
    assert_stays("no replica starts a cycle without quorum", Duration::from_secs(5), || {
        count(&all, "spooler") == frozen
    });

    etcd.restart(0);
    etcd.restart(1);
    etcd.wait_healthy();
    wait_for("cycles resume with quorum", WAIT, || count(&all, "spooler") >= frozen + 3);
    leader(&all, "spooler");
    assert_once(&core, None);
}

#[test]
fn a_leader_killed_while_core_is_down_delivers_its_spool_when_it_returns() {
    let etcd = EtcdCluster::start(1);
    let mut core = Core::start(&fixtures_dir().join("manifests"));
    let s = spooler();
    let mut r: Vec<HostProcess> =
        (1..=2).map(|i| replica(&core, "http://127.0.0.1:9", &etcd, &format!("ha-s{i}"), &[s.as_str()])).collect();
    wait_for("three spooler cycles delivered", WAIT, || by_cycle(&core).len() >= 3);
    let first = leader(&r.iter().collect::<Vec<_>>(), "spooler");
    let other = 1 - first;

    core.stop();
    let n = cycles(&r[first], "spooler");
    wait_for("two cycles committed to the leader's spool only", WAIT, || cycles(&r[first], "spooler") >= n + 2);
    r[first].kill();
    wait_for("the other replica commits two cycles", WAIT, || cycles(&r[other], "spooler") >= 2);

    core.restart();
    // The dead leader comes back under its own id, finds its spool and delivers it.
    r[first] = replica(&core, "http://127.0.0.1:9", &etcd, &format!("ha-s{}", first + 1), &[s.as_str()]);
    wait_until("every spooler cycle in core", WAIT, || {
        let got = by_cycle(&core);
        (1..=LAST).all(|c| got.get(&c).is_some_and(|is| is.len() as u64 >= RECORDS)).then_some(())
    });
    assert_once(&core, Some(LAST));
    assert!(cycles(&r[first], "spooler") == 0, "the returned replica is a follower: the task has a leader");
}

#[test]
fn a_record_delivered_by_one_replica_wakes_a_task_another_one_leads() {
    let etcd = EtcdCluster::start(1);
    let core = Core::start(&fixtures_dir().join("manifests"));
    let (emitter, subscriber) = (
        components::WAKE_EMITTER.built().display().to_string(),
        components::WAKE_SUBSCRIBER.built().display().to_string(),
    );
    // Each replica loads one module, so each leads the only task it has.
    let sub = replica(&core, "http://127.0.0.1:9", &etcd, "ha-w1", &[subscriber.as_str()]);
    wait_for("the subscriber's start-up cycle", WAIT, || cycles(&sub, "wake-subscriber") >= 1);
    let emit = replica(&core, "http://127.0.0.1:9", &etcd, "ha-w2", &[emitter.as_str()]);
    // The subscriber runs hourly: a second and third cycle can only come from wakes, and the
    // breaches that cause them are delivered by the other replica.
    wait_for("the hourly subscriber woken twice through the other replica", WAIT, || {
        cycles(&sub, "wake-subscriber") >= 3
    });
    assert!(cycles(&emit, "wake-emitter") >= 2);
    assert_eq!(cycles(&emit, "wake-subscriber") + cycles(&sub, "wake-emitter"), 0);
    assert!(core.assessments(Some("wake-svc"), Some("correlation_snapshot")).len() >= 3);
}

/// Twelve services, each with one judgment SLO in breach (their indicator is x1's 0.5).
/// Their names fall 3, 5, 2 and 2 into the four shards; the replicas' names were picked so
/// that with rendezvous hashing three replicas all lead a shard (x1 two), a fourth takes
/// shard 4 from x1, and x3 and x4 split all four once x1 and x2 are gone (ring.rs's hash
/// is pinned by its unit test).
fn shard_manifests() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("shard-manifests-").tempdir().unwrap();
    for i in 1..=SERVICES {
        let yaml = format!(
            "apiVersion: srm/v1\nkind: ServiceReliabilityManifest\nmetadata:\n  name: svc-{i:02}\n  team: t\n  tier: standard\n\
             spec:\n  type: ai-gate\n  slos:\n    reversal_rate:\n      target: 98.5\n      window: 7d\n      indicator:\n\
             \x20       query: test_judgment{{service=\"x1\",slo=\"many\"}}\n"
        );
        std::fs::write(dir.path().join(format!("svc-{i:02}.yaml")), yaml).unwrap();
    }
    dir
}

const SERVICES: usize = 12;
const SHARDS: usize = 4;

/// Shard -> replicas whose last heartbeat says they lead it, over the replicas `up`.
fn shard_leaders(core: &Core, up: &[&str]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in up {
        if let Some(led) = heartbeat(core, r)["ha"]["leader_of"].as_object() {
            for shard in led.keys().filter(|k| k.starts_with("measure#")) {
                m.entry(shard.clone()).or_default().push(r.to_string());
            }
        }
    }
    m
}

/// Every shard led by exactly one of `up`, each of `must` leading at least one.
fn settled(core: &Core, up: &[&str], must: &[&str]) -> bool {
    let m = shard_leaders(core, up);
    m.len() == SHARDS && m.values().all(|rs| rs.len() == 1) && must.iter().all(|r| m.values().any(|rs| rs[0] == *r))
}

/// Service -> creation times (s) of its judgment SLO evaluations in core.
fn evaluations(core: &Core) -> BTreeMap<String, Vec<f64>> {
    let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 1..=SERVICES {
        let svc = format!("svc-{i:02}");
        for a in core.assessments(Some(&svc), Some("judgment_slo_evaluation")) {
            if let Some(t) = parse_iso(&a.created_at) {
                m.entry(svc.clone()).or_default().push(t);
            }
        }
    }
    m.values_mut().for_each(|ts| ts.sort_by(f64::total_cmp));
    m
}

#[test]
fn shards_spread_over_the_replicas_and_move_on_join_and_leave_without_running_twice() {
    let etcd = EtcdCluster::start(1);
    let stack = MeasureStack::start();
    let dir = shard_manifests();
    let core = Core::start(dir.path());
    let m = measure_module().display().to_string();
    let start = |i: usize| {
        let flags = ["--ha-shards", "measure=4"];
        replica_with(&core, &stack.prometheus_url(), &etcd, &format!("ha-x{i}"), &[m.as_str()], &flags)
    };
    let mut r: Vec<HostProcess> = (1..=3).map(start).collect();
    wait_for("four shards, each led by one of three replicas, all three leading", WAIT, || {
        settled(&core, &["ha-x1", "ha-x2", "ha-x3"], &["ha-x1", "ha-x2", "ha-x3"])
    });
    wait_for("every service evaluated", WAIT, || evaluations(&core).len() == SERVICES);

    let joined = unix_now();
    r.push(start(4));
    let all = ["ha-x1", "ha-x2", "ha-x3", "ha-x4"];
    wait_for("the fourth replica leads a shard", WAIT, || settled(&core, &all, &["ha-x4"]));
    eprintln!("rebalance on join (lease {LEASE} s, measure every 2 s): {:.2} s", unix_now() - joined);

    // x1 stops (its lease is revoked), x2 dies (its lease expires).
    let left = unix_now();
    r[0].sigterm();
    r[1].kill();
    wait_for("x3 and x4 lead every shard", WAIT, || settled(&core, &["ha-x3", "ha-x4"], &["ha-x3", "ha-x4"]));
    eprintln!("rebalance on SIGTERM + SIGKILL (lease {LEASE} s): {:.2} s", unix_now() - left);
    let then = evaluations(&core);
    wait_for("every service evaluated twice more", WAIT, || {
        let now = evaluations(&core);
        then.iter().all(|(svc, ts)| now.get(svc).is_some_and(|n| n.len() >= ts.len() + 2))
    });

    // No service evaluated twice in one interval (2 s): a shard that moved waited out the
    // interval since its last fenced cycle. Half an interval absorbs the cycles' own jitter.
    let evals = evaluations(&core);
    assert_eq!(evals.len(), SERVICES, "{evals:?}");
    for (svc, ts) in &evals {
        let closest = ts.windows(2).map(|w| w[1] - w[0]).fold(f64::MAX, f64::min);
        assert!(closest >= 1.0, "{svc} evaluated twice {closest:.2} s apart (interval 2 s): {ts:?}");
    }
    let b = core.verdicts(None, Some("quality_breach"));
    for i in 1..=SERVICES {
        let svc = format!("svc-{i:02}");
        let n = b.iter().filter(|v| v.service.as_deref() == Some(svc.as_str())).count();
        assert_eq!(n, 1, "{svc}: {n} quality_breach verdicts; the breach must be posted once across moves");
    }
}
