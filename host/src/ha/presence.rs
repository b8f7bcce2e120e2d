//! The etcd requests of shard ownership, and the helpers every etcd call of HA shares. Each
//! replica holds a presence key `<prefix>/replicas/<replica>` bound to its lease (so a
//! replica that stops or dies leaves the live set with its lease), read every round while it
//! runs shards; a shard this replica should no longer own (ring.rs) is released by deleting
//! its leader key, only if it is still this term's.

use std::collections::BTreeSet;
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp};

pub(super) fn key(prefix: &str, what: &str, task: &str) -> String {
    format!("{prefix}/{what}/{task}")
}

/// Bounds one etcd call: a member without quorum may not answer at all.
pub(super) async fn bounded<T>(
    d: Duration,
    f: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(d, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer from etcd within {} ms", d.as_millis())),
    }
}

/// A deployment's keys, each call bounded by `call`.
pub(super) struct Etcd<'a> {
    pub prefix: &'a str,
    pub call: Duration,
}

impl Etcd<'_> {
    /// The replicas with a live presence key; puts `me`'s if it is missing (the first round
    /// of a lease, or after etcd lost it).
    pub async fn live(&self, c: &mut Client, me: &str, lease: i64) -> Result<BTreeSet<String>, String> {
        let dir = format!("{}/replicas/", self.prefix);
        let r = bounded(self.call, c.get(dir.as_str(), Some(GetOptions::new().with_prefix()))).await?;
        let mut live: BTreeSet<String> =
            r.kvs().iter().map(|kv| String::from_utf8_lossy(&kv.key()[dir.len()..]).to_string()).collect();
        if !live.contains(me) {
            let put = c.put(key(self.prefix, "replicas", me), me, Some(PutOptions::new().with_lease(lease)));
            bounded(self.call, put).await?;
            live.insert(me.to_string());
        }
        Ok(live)
    }

    /// Deletes the leader key of `task` if its create revision is still `token`.
    pub async fn delete_own(&self, c: &mut Client, task: &str, token: i64) -> Result<(), String> {
        let k = key(self.prefix, "leader", task);
        let txn = Txn::new()
            .when([Compare::create_revision(k.as_str(), CompareOp::Equal, token)])
            .and_then([TxnOp::delete(k.as_str(), None)]);
        bounded(self.call, c.txn(txn)).await.map(drop)
    }
}
