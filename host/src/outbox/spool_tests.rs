//! The spool's tests: commits, reopen, order, supersession (spool.rs).

use serde_json::json;

use super::*;

fn rec(id: &str) -> NewEntry {
    NewEntry {
        what: What::Assessment,
        component: "observe".into(),
        record_id: id.into(),
        body: json!({"id": id}).to_string(),
    }
}

fn state(n: u64) -> (LocalState, NewEntry) {
    let local = LocalState {
        module: "m".into(),
        version: "1".into(),
        state: json!({"n": n}).into(),
        saved_at: None,
        core: None,
    };
    let put = NewEntry { what: What::State, component: "m".into(), record_id: String::new(), body: format!("{n}") };
    (local, put)
}

#[test]
fn commits_survive_reopen_in_order_and_states_supersede() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut s = Spool::open(dir.path()).unwrap();
        let (l1, p1) = state(1);
        s.commit("t", &[rec("a"), rec("b")], Some((&l1, p1))).unwrap();
        let (l2, p2) = state(2);
        s.commit("t", &[rec("c")], Some((&l2, p2))).unwrap();
        s.commit("u", &[rec("x")], None).unwrap();
    }
    let mut s = Spool::open(dir.path()).unwrap();
    let head = s.head("t", 10).unwrap();
    let order: Vec<(&str, What)> = head.iter().map(|e| (e.record_id.as_str(), e.what)).collect();
    // State 1 was superseded by state 2, which follows the records of its cycle.
    assert_eq!(order, [("a", What::Assessment), ("b", What::Assessment), ("c", What::Assessment), ("", What::State)]);
    assert_eq!(head[3].body, "2");
    assert_eq!(s.local_state("t").unwrap().unwrap().state.to_value(), json!({"n": 2}));
    assert_eq!(s.local_state("u").unwrap(), None);
    let b = s.backlog().unwrap();
    assert_eq!((b.records, b.entries), (4, 5));
    s.delivered(&[head[0].seq, head[1].seq]).unwrap();
    s.reject(&head[2], 422, "bad").unwrap();
    let b = s.backlog().unwrap();
    assert_eq!((b.records, b.entries, b.rejected), (1, 2, 1));
    assert_eq!(s.lane_records("t").unwrap(), 0);
    let mut lanes = s.lanes().unwrap();
    lanes.sort();
    assert_eq!(lanes, ["t", "u"]);
}

#[test]
fn only_the_newest_heartbeat_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path()).unwrap();
    s.heartbeat("1").unwrap();
    s.heartbeat("2").unwrap();
    let head = s.head(HEARTBEAT_LANE, 10).unwrap();
    assert_eq!(head.len(), 1);
    assert_eq!(head[0].body, "2");
    assert_eq!(s.drop_heartbeats().unwrap(), 1);
}

#[test]
fn a_second_process_cannot_share_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let _first = Spool::open(dir.path()).unwrap();
    let second = Spool::open(dir.path()).err().expect("second open must fail");
    assert!(second.to_string().contains("in use by another process"), "{second:#}");
}

#[test]
fn cache_keeps_the_last_copy() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Spool::open(dir.path()).unwrap();
    assert_eq!(s.cache_get("manifests").unwrap(), None);
    s.cache_put("manifests", "[1]").unwrap();
    s.cache_put("manifests", "[2]").unwrap();
    assert_eq!(s.cache_get("manifests").unwrap().unwrap().0, "[2]");
}
