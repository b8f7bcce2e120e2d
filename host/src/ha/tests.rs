//! The election and the fence against a real etcd (Debian's `etcd-server`, started here on
//! loopback; the e2e suites in tests/tests/ha_e2e.rs drive the binary).

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::config::HaConfig;
use super::elector::Elector;
use super::timing::Timing;
use crate::capability::core::shard::Shard;

/// The member, its data directory (removed on drop), its client URL.
struct Etcd(Child, #[allow(dead_code)] tempfile::TempDir, String);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One member on loopback, with a leader.
async fn etcd() -> Etcd {
    let dir = tempfile::tempdir().unwrap();
    let (c, p) = (port(), port());
    let client = format!("http://127.0.0.1:{c}");
    let peer = format!("http://127.0.0.1:{p}");
    let child = Command::new(std::env::var("NTHLAYER_ETCD_BIN").unwrap_or_else(|_| "etcd".into()))
        .args(["--name", "m0", "--data-dir"])
        .arg(dir.path().join("m0"))
        .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
        .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
        .args(["--initial-cluster", &format!("m0={peer}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("etcd (Debian etcd-server; scripts/setup installs it)");
    let e = Etcd(child, dir, client);
    for _ in 0..200 {
        if let Ok(mut k) = etcd_client::Client::connect([&e.2], None).await {
            if k.status().await.is_ok_and(|s| s.leader() != 0) {
                return e;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("etcd on {} did not come up", e.2);
}

async fn elector(etcd: &Etcd, replica: &str, lease: u64) -> (Arc<Elector>, CancellationToken) {
    let cfg = HaConfig {
        endpoints: vec![etcd.2.clone()],
        prefix: "/nthlayer-host/test".into(),
        timing: Timing::from_lease_seconds(lease).unwrap(),
        shards: Default::default(),
    };
    let e = Elector::new(&cfg, replica).await.unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(e.clone().run(stop.clone()));
    (e, stop)
}

async fn until_leads(e: &Elector, task: &str) -> i64 {
    for _ in 0..400 {
        if let Ok(t) = e.leads(task) {
            return t.token;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{} never led {task}: {}", e.replica, e.status());
}

/// A paused leader — its loop frozen, its own clock still saying "leader" — whose lease etcd
/// dropped while another replica took the task: its fence fails in etcd, its state is not
/// handed over, and the new leader starts from the last state the old one fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_leader_fails_the_fence_and_the_new_one_starts_from_the_fenced_state() {
    let etcd = etcd().await;
    // A's renew deadline (40 s) outlives the test: only etcd can tell it that it lost.
    let (a, a_stop) = elector(&etcd, "a", 60).await;
    let token_a = until_leads(&a, "t").await;
    let (b, _b_stop) = elector(&etcd, "b", 2).await;
    let why = b.leads("t").unwrap_err();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(b.leads("t").unwrap_err().contains("replica a leads task t"), "{why} / {}", b.status());

    a.fence("t", "m", "1", Some(&json!({"n": 1}).into()), Duration::ZERO).await.expect("the leader's fence passes");
    // A freezes (SIGSTOP) and its lease runs out in etcd meanwhile (revoked here: the same
    // keys go away as at expiry).
    a_stop.cancel();
    let mut admin = etcd_client::Client::connect([&etcd.2], None).await.unwrap();
    let leases = admin.leases().await.unwrap();
    let a_lease = leases.leases().iter().map(|l| l.id()).collect::<Vec<_>>();
    let b_lease = b.lease_id();
    for id in a_lease.into_iter().filter(|id| Some(*id) != b_lease) {
        admin.lease_revoke(id).await.unwrap();
    }
    let token_b = until_leads(&b, "t").await;
    assert!(token_b > token_a, "fencing tokens grow: {token_a} then {token_b}");
    b.takeover("t", Duration::ZERO).await.expect("A's last cycle was more than its (zero) interval ago");
    assert_eq!(b.handed_state("t", "m"), Some(json!({"n": 1})), "handover of the fenced state");
    assert_eq!(b.handed_state("t", "other"), None, "another module's state is never handed over");

    assert!(a.leads("t").is_ok(), "A's own clock still says leader: only the fence can stop it");
    let e = a.fence("t", "m", "1", Some(&json!({"n": 2}).into()), Duration::ZERO).await.unwrap_err();
    assert!(e.contains("is gone"), "{e}");
    assert!(a.leads("t").is_err(), "a failed fence ends the term");
    b.fence("t", "m", "1", Some(&json!({"n": 2}).into()), Duration::ZERO).await.unwrap();
    let kv = admin.get("/nthlayer-host/test/state/t", None).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(kv.kvs()[0].value()).unwrap();
    assert_eq!((v["replica"].as_str(), &v["state"]), (Some("b"), &json!({"n": 2})));
    assert_eq!(b.handed_state("t", "m"), None, "taken up once: the term's own state rules after");
}

/// Without etcd answering, a leader stops counting as one at its renew deadline (judged on
/// its own clock, not on etcd's word, which never comes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_etcd_stops_before_its_lease_ends() {
    let mut etcd = etcd().await;
    let (a, _stop) = elector(&etcd, "a", 2).await;
    until_leads(&a, "t").await;
    let _ = etcd.0.kill();
    let _ = etcd.0.wait();
    // Polled, not timed: what matters is that it stops, and why.
    for _ in 0..2000 {
        if a.leads("t").is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(a.leads("t").unwrap_err().contains("renew deadline"));
}

/// Which of `es` lead `task` now.
fn leaders<'a>(es: &[&'a Elector], task: &str) -> Vec<&'a str> {
    es.iter().filter(|e| e.leads(task).is_ok()).map(|e| e.replica.as_str()).collect()
}

/// Polls until every shard is led by exactly its rendezvous owner among `es`.
async fn until_owned(es: &[&Elector], shards: &[String]) {
    let live: std::collections::BTreeSet<String> = es.iter().map(|e| e.replica.clone()).collect();
    for _ in 0..800 {
        let ok = shards.iter().all(|s| leaders(es, s) == [super::ring::owner(s, &live).unwrap().as_str()]);
        if ok {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let got: Vec<_> = shards.iter().map(|s| (s, leaders(es, s))).collect();
    panic!("shards not led by their owners among {live:?}: {got:?}");
}

/// Shards follow the live replicas: two replicas split eight shards by rendezvous hashing; a
/// third joins and takes its shards (released by their holders, never led twice), whose
/// first cycle waits out the interval since the previous holder's last fenced one; a
/// replica that resigns leaves its shards to the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_follow_the_live_replicas_and_move_on_join_and_leave() {
    let etcd = etcd().await;
    let shards: Vec<String> = (1..=8).map(|k| Shard::name("measure", k, 8)).collect();
    let want = |e: &Elector| shards.iter().for_each(|s| drop(e.leads(s)));
    let (a, a_stop) = elector(&etcd, "a", 2).await;
    let (b, _b_stop) = elector(&etcd, "b", 2).await;
    let watch = |es: &[&Elector]| {
        for s in &shards {
            assert!(leaders(es, s).len() <= 1, "{s} led twice: {:?}", leaders(es, s));
        }
    };
    want(&a);
    want(&b);
    until_owned(&[&a, &b], &shards).await;
    for s in &shards {
        for e in [&a, &b] {
            if e.leads(s).is_ok() {
                e.busy(s, true);
                e.fence(s, "measure", "1", Some(&json!({"s": s}).into()), Duration::from_secs(600)).await.unwrap();
                let early = e.takeover(s, Duration::from_secs(600)).await.unwrap_err();
                assert!(early.contains("less than its interval"), "{early}");
            }
        }
    }
    // Every shard has a cycle in flight (its busy clock restarted): a holder that must
    // release one waits for it (at most a lease, 2 s here) and starts no new cycle meanwhile.
    for s in &shards {
        a.busy(s, true);
        b.busy(s, true);
    }
    let (c, _c_stop) = elector(&etcd, "c", 2).await;
    want(&c);
    for _ in 0..40 {
        watch(&[&a, &b, &c]);
        assert!(shards.iter().all(|s| c.leads(s).is_err()), "a shard moved while its cycle was in flight");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let releasing: Vec<&String> =
        shards.iter().filter(|s| [&a, &b].iter().any(|e| e.leads(s).is_err_and(|w| w.contains("released")))).collect();
    assert!(!releasing.is_empty(), "no holder is releasing a shard to c");
    for s in &shards {
        a.busy(s, false);
        b.busy(s, false);
    }
    until_owned(&[&a, &b, &c], &shards).await;
    let moved: Vec<&String> = shards.iter().filter(|s| c.leads(s).is_ok()).collect();
    assert!(!moved.is_empty(), "c took no shard");
    for s in &moved {
        let e = c.takeover(s, Duration::from_secs(600)).await.unwrap_err();
        assert!(e.contains("less than its interval ago"), "{e}");
        assert_eq!(c.handed_state(s, "measure"), Some(json!({"s": s})), "the shard's state chain continues");
    }
    a_stop.cancel();
    a.resign().await;
    until_owned(&[&b, &c], &shards).await;
}
