//! Shard ownership on etcd: each replica's presence key `<prefix>/replicas/<replica>`,
//! bound to its lease (so a replica that stops or dies leaves the live set with its lease),
//! read every round while the replica wants shards; and the release of a shard this replica
//! holds but should no longer own (ring.rs), once its cycle in flight is fenced.

use std::collections::BTreeSet;
use std::time::Instant;

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};

use super::elector::{bounded, key, Elector};

/// The replicas with a live presence key; puts this replica's own if it is missing (the
/// first round of a lease, or after etcd lost it).
pub async fn live(el: &Elector, c: &mut Client, lease: i64) -> Result<BTreeSet<String>, String> {
    let dir = format!("{}/replicas/", el.prefix);
    let r = bounded(el.call, c.get(dir.as_str(), Some(GetOptions::new().with_prefix()))).await?;
    let mut live: BTreeSet<String> =
        r.kvs().iter().map(|kv| String::from_utf8_lossy(&kv.key()[dir.len()..]).to_string()).collect();
    if !live.contains(&el.replica) {
        let put = c.put(
            key(&el.prefix, "replicas", &el.replica),
            el.replica.as_str(),
            Some(PutOptions::new().with_lease(lease)),
        );
        bounded(el.call, put).await?;
        live.insert(el.replica.clone());
    }
    let mut v = el.view();
    if v.live != live {
        tracing::info!(replica = %el.replica, live = ?live, "live replicas changed; shard ownership follows");
        v.live = live.clone();
        drop(v);
        el.changed.notify_one();
    }
    Ok(live)
}

/// Gives up `task` (a shard held under `token`) to its rightful owner: no new cycle starts
/// from now; once none is in flight the leader key is deleted (if it is still this term's),
/// and the owner takes it at its next round, continuing from the state this one fenced.
pub async fn release(
    el: &Elector,
    c: &mut Client,
    task: &str,
    token: i64,
    live: &BTreeSet<String>,
) -> Result<(), String> {
    {
        let mut v = el.view();
        let Some(term) = v.led.get_mut(task) else { return Ok(()) };
        if !term.releasing {
            term.releasing = true;
            tracing::info!(%task, replica = %el.replica, "shard belongs to another replica now; releasing it after its cycle in flight");
        }
        // A cycle that never reached `after` (its replica is stopping) does not hold the
        // release longer than a lease.
        if term.busy.is_some_and(|since| since.elapsed() < el.timing.lease) {
            return Ok(());
        }
    }
    let k = key(&el.prefix, "leader", task);
    let txn = Txn::new()
        .when([Compare::create_revision(k.as_str(), CompareOp::Equal, token)])
        .and_then([TxnOp::delete(k.as_str(), None)]);
    let t = Instant::now();
    bounded(el.call, c.txn(txn)).await?;
    let owner = super::ring::owner(task, live).cloned().unwrap_or_default();
    el.lose(task, "released to its owner");
    el.view().others.insert(task.to_string(), owner.clone());
    tracing::info!(%task, replica = %el.replica, to = %owner, us = t.elapsed().as_micros() as u64, "shard released");
    Ok(())
}
